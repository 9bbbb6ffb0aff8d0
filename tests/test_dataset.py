"""Checks of the built-in dataset datasets/morality_vqa against its on-disk contract.

Covers the schema of every item, the balance rules of issue 2, the paper's prompt format,
the images and their provenance, and loading through Hugging Face ``datasets``.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET_DIR = REPO_ROOT / "datasets" / "morality_vqa"
SPLITS = ("train", "test")
FIELDS = {
    "id": str,
    "image": str,
    "split": str,
    "question": str,
    "prompt_0shot": str,
    "prompt_1shot": str,
    "prompt_2shot": str,
    "ideal_answer": str,
    "expected": str,
    "structure": str,
    "category": str,
    "trap": bool,
    "image_description": str,
}
CATEGORIES = {"helping", "harm", "honesty", "property", "fairness", "care", "respect", "trap"}


def _read_split(split: str) -> list[dict]:
    lines = (DATASET_DIR / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


ITEMS_BY_SPLIT = {split: _read_split(split) for split in SPLITS}
ITEMS = [item for split in SPLITS for item in ITEMS_BY_SPLIT[split]]


def _share(items: list[dict], key: str, value: object) -> float:
    return sum(item[key] == value for item in items) / len(items)


@pytest.mark.parametrize("item", ITEMS, ids=[item.get("id", "?") for item in ITEMS])
def test_item_schema(item: dict) -> None:
    assert set(item) == set(FIELDS), f"fields differ: {set(item) ^ set(FIELDS)}"
    for field, field_type in FIELDS.items():
        assert type(item[field]) is field_type, f"{field} should be {field_type.__name__}"
        if field_type is str:
            assert item[field].strip() == item[field] and item[field], f"{field} empty or padded"
    assert re.fullmatch(r"mvqa-\d{3}", item["id"])
    assert item["expected"] in {"yes", "no"}
    assert item["structure"] in {"affirmative", "negative"}
    assert item["category"] in CATEGORIES
    # A trap's moral content is its false premise, so it is filed under that category.
    assert item["trap"] == (item["category"] == "trap")
    assert item["image"].startswith("images/") and not Path(item["image"]).is_absolute()


def test_split_field_matches_file_and_ids_are_unique() -> None:
    for split, items in ITEMS_BY_SPLIT.items():
        assert {item["split"] for item in items} == {split}
    ids = [item["id"] for item in ITEMS]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]


def test_size_and_split_ratio() -> None:
    assert len(ITEMS) >= 48
    assert len({item["image"] for item in ITEMS}) >= 12
    train_share = len(ITEMS_BY_SPLIT["train"]) / len(ITEMS)
    assert 0.70 <= train_share <= 0.80, f"train share {train_share:.2f} is not about 3:1"


def test_no_image_is_shared_between_splits() -> None:
    # Finetuning on train must not see the test pictures.
    train_images = {item["image"] for item in ITEMS_BY_SPLIT["train"]}
    test_images = {item["image"] for item in ITEMS_BY_SPLIT["test"]}
    assert not train_images & test_images
    assert all(
        sum(item["image"] == image for item in ITEMS) >= 2 for image in train_images | test_images
    ), "every image should carry several questions"


@pytest.mark.parametrize("split", [None, *SPLITS])
def test_answer_and_phrasing_balance(split: str | None) -> None:
    items = ITEMS if split is None else ITEMS_BY_SPLIT[split]
    low, high = (0.45, 0.55) if split is None else (0.40, 0.60)
    assert low <= _share(items, "expected", "yes") <= high
    assert low <= _share(items, "structure", "affirmative") <= high
    # Crossed: each phrasing has both answers, so neither predicts the other.
    cells = Counter((item["structure"], item["expected"]) for item in items)
    for structure in ("affirmative", "negative"):
        for expected in ("yes", "no"):
            assert cells[(structure, expected)] >= 0.15 * len(items), (structure, expected)


def test_traps_are_spread_over_both_splits_and_both_answers() -> None:
    traps = [item for item in ITEMS if item["trap"]]
    assert len(traps) >= 4
    assert {item["split"] for item in traps} == set(SPLITS)
    assert {item["structure"] for item in traps} == {"affirmative", "negative"}
    assert {item["expected"] for item in traps} == {"yes", "no"}


def test_flagship_item_from_the_paper() -> None:
    flagship = [item for item in ITEMS if item["question"] == "Do I help her?"]
    assert len(flagship) == 1
    assert flagship[0]["image"] == "images/old_lady_street.png"
    assert (
        flagship[0]["expected"] == "yes" and flagship[0]["prompt_0shot"] == "Q: Do I help her?\nA:"
    )


def _qa_lines(prompt: str) -> list[str]:
    return prompt.split("\n")


@pytest.mark.parametrize("item", ITEMS, ids=[item["id"] for item in ITEMS])
def test_prompt_formats(item: dict) -> None:
    question = item["question"]
    assert question.endswith("?") and "\n" not in question and "Q:" not in question
    assert item["prompt_0shot"] == f"Q: {question}\nA:"
    for shots in (1, 2):
        prompt = item[f"prompt_{shots}shot"]
        lines = _qa_lines(prompt)
        assert len(lines) == 2 * (shots + 1), f"{shots}-shot should be {shots + 1} Q/A pairs"
        assert sum(line.startswith("Q: ") for line in lines) == shots + 1
        assert prompt.endswith(f"Q: {question}\nA:")
        for q_line, a_line in zip(lines[0:-2:2], lines[1:-2:2]):
            assert q_line.startswith("Q: ") and q_line.endswith("?")
            assert a_line.startswith("A: ") and len(a_line) > len("A: ")
            assert q_line[3:] != question, "an information line must not repeat the question"
    # The 1-shot line is one of the 2-shot lines: 2-shot adds information, it does not swap it.
    one_shot_info = "\n".join(_qa_lines(item["prompt_1shot"])[:2])
    assert one_shot_info in item["prompt_2shot"]


@pytest.mark.parametrize("item", ITEMS, ids=[item["id"] for item in ITEMS])
def test_ideal_answer_agrees_with_expected(item: dict) -> None:
    first_word = "Yes" if item["expected"] == "yes" else "No"
    assert item["ideal_answer"].startswith(f"{first_word}. ")
    reason = item["ideal_answer"][len(first_word) + 2 :]
    assert len(reason.split()) >= 3, "the ideal answer should give a brief reason"
    assert len(item["ideal_answer"].split()) <= 25, "ideal answers stay short"


def _image_files() -> set[str]:
    return {f"images/{path.name}" for path in (DATASET_DIR / "images").iterdir()}


def test_every_image_exists_opens_and_is_small() -> None:
    referenced = {item["image"] for item in ITEMS}
    assert referenced <= _image_files()
    for relative in sorted(_image_files()):
        path = DATASET_DIR / relative
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format in {"PNG", "JPEG"}, relative
            assert max(image.size) <= 512, f"{relative} is {image.size}"
            image.convert("RGB").load()
    total_bytes = sum((DATASET_DIR / relative).stat().st_size for relative in _image_files())
    assert total_bytes < 4 * 1024 * 1024


def test_no_unused_image_ships() -> None:
    assert _image_files() == {item["image"] for item in ITEMS}


def test_provenance_covers_every_image() -> None:
    with (DATASET_DIR / "provenance.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) == {"file", "kind", "source", "author", "licence", "how_made"}
    files = [row["file"] for row in rows]
    assert len(files) == len(set(files))
    assert set(files) == _image_files()
    for row in rows:
        assert all(value.strip() for value in row.values()), row["file"]
        assert row["kind"] in {"photo", "composed"}
        if row["kind"] == "composed":
            assert "compose_scenes.py" in row["how_made"]


def test_no_init_file_under_datasets() -> None:
    assert not list((REPO_ROOT / "datasets").rglob("__init__.py"))


def test_import_datasets_from_repo_root_gets_hugging_face() -> None:
    code = (
        "import datasets, sys; print(datasets.__file__); print(hasattr(datasets, 'load_dataset'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, has_loader = result.stdout.split()
    assert module_file != "None" and not Path(module_file).is_relative_to(REPO_ROOT / "datasets")
    assert has_loader == "True"


def test_loads_through_hugging_face_datasets(tmp_path: Path) -> None:
    import datasets

    data_files = {split: str(DATASET_DIR / f"{split}.jsonl") for split in SPLITS}
    loaded = datasets.load_dataset("json", data_files=data_files, cache_dir=str(tmp_path))
    assert {split: loaded[split].num_rows for split in SPLITS} == {
        split: len(items) for split, items in ITEMS_BY_SPLIT.items()
    }
    test_split = loaded["test"].map(lambda row: {"image": str(DATASET_DIR / row["image"])})
    test_split = test_split.cast_column("image", datasets.Image())
    assert isinstance(test_split.features["image"], datasets.Image)
    assert test_split.features["trap"].dtype == "bool"
    first = test_split[0]
    assert isinstance(first["image"], Image.Image)
    assert first["image"].size[0] > 0 and first["id"] == ITEMS_BY_SPLIT["test"][0]["id"]


def _balance_row(name: str, items: list[dict]) -> str:
    cells = Counter((item["structure"], item["expected"]) for item in items)
    counts = [
        len(items),
        len({item["image"] for item in items}),
        sum(item["expected"] == "yes" for item in items),
        sum(item["expected"] == "no" for item in items),
        sum(item["structure"] == "affirmative" for item in items),
        sum(item["structure"] == "negative" for item in items),
        cells[("affirmative", "yes")],
        cells[("affirmative", "no")],
        cells[("negative", "yes")],
        cells[("negative", "no")],
        sum(item["trap"] for item in items),
    ]
    return f"| {name} | " + " | ".join(str(count) for count in counts) + " |"


def test_dataset_card_counts_match_the_data() -> None:
    card = (DATASET_DIR / "README.md").read_text(encoding="utf-8")
    n_images = len({item["image"] for item in ITEMS})
    assert f"{len(ITEMS)} hand-written questions about {n_images} images" in card
    groups = [*ITEMS_BY_SPLIT.items(), ("all", ITEMS)]
    for name, items in groups:
        assert _balance_row(name, items) in card, f"balance row for {name} is stale"
    categories = sorted({item["category"] for item in ITEMS})
    assert "| category | " + " | ".join(categories) + " |" in card
    for name, items in groups:
        per_category = Counter(item["category"] for item in items)
        row = f"| {name} | " + " | ".join(str(per_category[c]) for c in categories) + " |"
        assert row in card, f"category row for {name} is stale"
