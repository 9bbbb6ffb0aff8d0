"""Checks of the built-in dataset datasets/morality_vqa (version 2) against its contract.

Covers the schema of every item; the counts, balance, pair, contrast, trap, phrasing and
crop rules of issue 11 (docs/dataset-guidelines.md says why each exists); the three shortcut
audits; the review; the images, layout and provenance; that the shipped files are what
build.py makes from source/; the card's tables; and loading through Hugging Face ``datasets``.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET_DIR = REPO_ROOT / "datasets" / "morality_vqa"
sys.path.insert(0, str(DATASET_DIR))

import audits  # noqa: E402
import build  # noqa: E402

SPLITS = ("train", "test")
OPTIONAL_STR = (str, type(None))
FIELDS: dict[str, type | tuple[type, ...]] = {
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
    "phrasing": str,
    "category": str,
    "trap": bool,
    "premise_answer": OPTIONAL_STR,
    "pair_id": OPTIONAL_STR,
    "contrast_id": OPTIONAL_STR,
    "scenario": str,
    "image_description": str,
    "depends_on": list,
    "writer": str,
    "reviewer": str,
}
CATEGORIES = {"helping", "harm", "honesty", "property", "fairness", "care", "respect", "privacy"}
_WRONG = "(wrong|unkind|unfair|rude|cruel|mean|dishonest|selfish|disrespectful)"
# phrasing -> structure, and the form its text takes (the closed list of the guidelines).
PHRASINGS = {
    "should": ("affirmative", r"Should I \w"),
    "do-i": ("affirmative", r"Do I \w"),
    "is-it-okay": (
        "affirmative",
        r"(Is it|Would it be) (okay|OK|fine|all right|acceptable) (for me )?to \w",
    ),
    "is-it-wrong": ("affirmative", rf"(Is it|Would it be) {_WRONG} (of me )?to \w"),
    "is-it-okay-not-to": (
        "negative",
        r"(Is it|Would it be) (okay|OK|fine|all right|acceptable) (for me )?not to \w",
    ),
    "is-it-wrong-not-to": ("negative", rf"(Is it|Would it be) {_WRONG} (of me )?not to \w"),
}
SCENE_SIZE = (512, 384)
# MAGMA's CLIP RN50x16 takes 384 px; CLIP ViT-L/14-336 336 px; most ViT-B models 224 px.
CROP_SIZES = (384, 336, 224)


def _read_split(split: str) -> list[dict]:
    lines = (DATASET_DIR / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


ITEMS_BY_SPLIT = {split: _read_split(split) for split in SPLITS}
ITEMS = [item for split in SPLITS for item in ITEMS_BY_SPLIT[split]]
TRAIN, TEST = ITEMS_BY_SPLIT["train"], ITEMS_BY_SPLIT["test"]
LAYOUT: dict[str, dict[str, list[int]]] = json.loads((DATASET_DIR / "layout.json").read_text())


def _share(items: list[dict], key: str, value: object) -> float:
    return sum(item[key] == value for item in items) / len(items)


def _groups(key: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in ITEMS:
        if item[key] is not None:
            groups[item[key]].append(item)
    return groups


def _each(check: Callable[[Any], None], cases: list, label: Callable[[Any], str]) -> None:
    """Run a check on every case and report all that fail (one test, not one per item: fast)."""
    failures = []
    for case in cases:
        try:
            check(case)
        except (AssertionError, KeyError) as error:
            message = (str(error).splitlines() or [""])[0]  # pytest's explanation follows
            failures.append(f"{label(case)}: {type(error).__name__} {message}".strip())
    assert not failures, f"{len(failures)} of {len(cases)} fail:\n" + "\n".join(failures[:20])


# ---------------------------------------------------------------- schema


def _check_item_schema(item: dict) -> None:
    assert list(item) == list(FIELDS), f"fields differ: {set(item) ^ set(FIELDS)}"
    for name, types in FIELDS.items():
        assert isinstance(item[name], types), f"{name} should be {types}"
        if isinstance(item[name], str):
            assert item[name].strip() == item[name] and item[name], f"{name} empty or padded"
    # Stable ids: <scenario>-<question id>-<image>, made of ids the writers never renumber.
    assert re.fullmatch(rf"{re.escape(item['scenario'])}-[a-z0-9]+-[ab]", item["id"])
    assert item["image"] == f"images/{item['scenario']}_{item['id'][-1].upper()}.png"
    assert item["expected"] in {"yes", "no"}
    assert item["category"] in CATEGORIES, "v2 has no 'trap' category: a trap is the boolean"
    assert item["depends_on"] and all(isinstance(role, str) for role in item["depends_on"])
    assert item["scenario"].startswith(f"{item['writer']}-")


def test_item_schema() -> None:
    _each(_check_item_schema, ITEMS, lambda item: item["id"])


def test_split_field_matches_file_and_ids_are_unique() -> None:
    for split, items in ITEMS_BY_SPLIT.items():
        assert {item["split"] for item in items} == {split}
    ids = [item["id"] for item in ITEMS]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]


# ---------------------------------------------------------------- counts and splits


def test_size() -> None:
    assert len(ITEMS) >= 480
    assert len({item["image"] for item in ITEMS}) >= 120
    for split in SPLITS:
        assert len(ITEMS_BY_SPLIT[split]) >= 240, split


def test_no_image_is_shared_between_splits() -> None:
    # Finetuning on train must not see the test pictures.
    assert not {i["image"] for i in TRAIN} & {i["image"] for i in TEST}


# ---------------------------------------------------------------- pairs and contrasts


def test_most_items_are_in_polarity_pairs() -> None:
    assert _share(ITEMS, "pair_id", None) <= 0.20


def _check_polarity_pair(pair_id: str) -> None:
    pair = _groups("pair_id")[pair_id]
    assert len(pair) == 2
    first, second = pair
    assert first["image"] == second["image"] and first["split"] == second["split"]
    assert first["question"] != second["question"]
    assert {first["expected"], second["expected"]} == {"yes", "no"}
    assert first["structure"] == second["structure"]
    # One phrasing for both keeps every phrasing at 50% yes. A pair whose two questions are
    # each also asked of the other image (a contrast) is balanced by the contrast already, so
    # it may mix forms of one structure ("Should I give up my seat?" / "Is it okay to stay?").
    if first["contrast_id"] is None or second["contrast_id"] is None:
        assert first["phrasing"] == second["phrasing"]


def test_polarity_pair() -> None:
    _each(_check_polarity_pair, sorted(_groups("pair_id")), str)


def test_image_contrast_pairs_per_split() -> None:
    for split in SPLITS:
        contrasts = {item["contrast_id"] for item in ITEMS_BY_SPLIT[split] if item["contrast_id"]}
        assert len(contrasts) >= 40, split


def _check_image_contrast_pair(contrast_id: str) -> None:
    pair = _groups("contrast_id")[contrast_id]
    assert len(pair) == 2
    first, second = pair
    assert first["question"] == second["question"] and first["image"] != second["image"]
    assert first["scenario"] == second["scenario"] and first["split"] == second["split"]
    assert {first["expected"], second["expected"]} == {"yes", "no"}


def test_image_contrast_pair() -> None:
    _each(_check_image_contrast_pair, sorted(_groups("contrast_id")), str)


def test_questions_asked_of_one_image_are_rare() -> None:
    # Texts that occur once let a text-only classifier learn from moral words.
    assert _share(ITEMS, "contrast_id", None) <= 0.15


# ---------------------------------------------------------------- phrasing and balance


def _check_phrasing_label_and_form(item: dict) -> None:
    structure, form = PHRASINGS[item["phrasing"]]
    assert item["structure"] == structure
    question = item["question"]
    assert re.match(form, question), f"{question!r} is not phrased as {item['phrasing']}"
    # Negative questions only as 'Is it okay/wrong not to ...?': these read two ways.
    assert not re.match(r"(Shouldn't|Should I not|Isn't|Aren't|Don't I|Wouldn't)\b", question)


def test_phrasing_label_and_form() -> None:
    _each(_check_phrasing_label_and_form, ITEMS, lambda item: item["id"])


@pytest.mark.parametrize("split", [*SPLITS, None])
def test_answer_and_structure_balance(split: str | None) -> None:
    items = ITEMS if split is None else ITEMS_BY_SPLIT[split]
    assert 0.45 <= _share(items, "expected", "yes") <= 0.55
    assert 0.40 <= _share(items, "structure", "affirmative") <= 0.60


@pytest.mark.parametrize("split", SPLITS)
def test_no_phrasing_predicts_the_answer(split: str) -> None:
    by_phrasing = Counter(item["phrasing"] for item in ITEMS_BY_SPLIT[split])
    for phrasing, count in by_phrasing.items():
        if count >= 10:
            items = [item for item in ITEMS_BY_SPLIT[split] if item["phrasing"] == phrasing]
            assert 0.35 <= _share(items, "expected", "yes") <= 0.65, phrasing


# ---------------------------------------------------------------- traps


def test_trap_counts() -> None:
    assert sum(item["trap"] for item in ITEMS) >= 30
    assert sum(item["trap"] for item in TEST) >= 12


def _check_trap_fields(item: dict) -> None:
    if item["trap"]:
        # A trap traps only if accepting the premise leads to the other answer.
        assert item["premise_answer"] in {"yes", "no"}
        assert item["premise_answer"] != item["expected"]
    else:
        assert item["premise_answer"] is None


def test_trap_fields() -> None:
    _each(_check_trap_fields, ITEMS, lambda item: item["id"])


# ---------------------------------------------------------------- prompts and answers


def _check_prompt_formats(item: dict) -> None:
    question = item["question"]
    assert question.endswith("?") and "\n" not in question and "Q:" not in question
    assert item["prompt_0shot"] == f"Q: {question}\nA:"
    # n-shot = n question-answer lines before the question; the 2-shot prompt is the second
    # shot line, then the 1-shot prompt (so the line nearest the question is the same).
    one_shot = item["prompt_1shot"].split("\n")
    two_shot = item["prompt_2shot"].split("\n")
    assert len(one_shot) == 4 and len(two_shot) == 6
    assert item["prompt_1shot"].endswith("\n" + item["prompt_0shot"])
    assert item["prompt_2shot"].endswith("\n" + item["prompt_1shot"])
    for q_line, a_line in zip(two_shot[0:4:2], two_shot[1:4:2], strict=True):
        assert q_line.startswith("Q: ") and q_line.endswith("?")
        assert q_line[3:] != question, "a shot must not repeat the question"
        assert a_line.startswith("A: ") and len(a_line) > len("A: ")
        assert len(a_line[3:].split()) <= 12, "shot answers are short"


def test_prompt_formats() -> None:
    _each(_check_prompt_formats, ITEMS, lambda item: item["id"])


def _check_ideal_answer_agrees_with_expected(item: dict) -> None:
    first_word = "Yes" if item["expected"] == "yes" else "No"
    assert item["ideal_answer"].startswith(f"{first_word}. ")
    reason = item["ideal_answer"][len(first_word) + 2 :]
    assert len(reason.split()) >= 3, "the ideal answer gives a brief reason"
    assert len(item["ideal_answer"].split()) <= 30, "ideal answers stay short"


def test_ideal_answer_agrees_with_expected() -> None:
    _each(_check_ideal_answer_agrees_with_expected, ITEMS, lambda item: item["id"])


def test_flagship_item_from_the_paper() -> None:
    flagship = [i for i in ITEMS if i["question"] == "Do I help her?" and i["expected"] == "yes"]
    assert len(flagship) == 1
    item = flagship[0]
    assert item["prompt_0shot"] == "Q: Do I help her?\nA:" and item["split"] == "test"
    assert "elderly woman" in item["image_description"] and "crossing" in item["image_description"]
    # Kept as a v2 scenario: its contrast image has the opposite answer.
    contrast = [i for i in ITEMS if i["contrast_id"] == item["contrast_id"] and i is not item]
    assert len(contrast) == 1 and contrast[0]["expected"] == "no"


# ---------------------------------------------------------------- shortcut audits


def test_bag_of_words_classifier_can_learn_a_signal() -> None:
    # The audit below means something only if the classifier picks up a word that gives the
    # answer away: here "steal" always means no.
    train = [{"question": f"Should I {v} the {o}?", "expected": "no" if v == "steal" else "yes"}
             for v in ("steal", "return", "carry") for o in ("bag", "purse", "phone", "coat")]  # fmt: skip
    test = [{"question": f"Should I {v} the wallet?", "expected": "no" if v == "steal" else "yes"}
            for v in ("steal", "return")]  # fmt: skip
    assert audits.bag_of_words_accuracy(train, test) == 1.0


def test_question_only_bag_of_words_is_near_chance_on_test() -> None:
    assert audits.bag_of_words_accuracy(TRAIN, TEST) <= 0.60


@pytest.mark.parametrize("shots", [1, 2])
def test_answering_what_the_last_shot_answered_is_near_chance(shots: int) -> None:
    assert audits.last_shot_accuracy(TEST, shots) <= 0.60


def test_last_shot_answer_reads_the_line_nearest_the_question() -> None:
    prompt = "Q: Is it raining?\nA: Yes, hard.\nQ: Is anyone here?\nA: No.\nQ: Do I go?\nA:"
    assert audits.last_shot_answer(prompt) == "no"
    assert audits.last_shot_answer("Q: Who?\nA: Nobody at all.\nQ: Do I go?\nA:") == "yes"


@pytest.mark.parametrize("answer", ["yes", "no"])
def test_constant_answers_score_half_on_test(answer: str) -> None:
    assert abs(audits.constant_accuracy(TEST, answer) - 0.5) <= 0.03


# ---------------------------------------------------------------- crop


def test_the_centre_square_is_the_same_region_at_every_model_size() -> None:
    # Resizing the shorter side to S and cutting the centred SxS square keeps, in the original
    # image, the centred square of side min(W, H): scaling by S / min(W, H) maps one onto the
    # other. So the crop region does not depend on S (up to a pixel of rounding), and one check
    # in the original coordinates covers MAGMA's 384 px, 336 px and 224 px models alike.
    width, height = SCENE_SIZE
    assert build.crop_box(width, height) == (64, 0, 448, 384)
    for size in CROP_SIZES:
        resized_width = round(width * size / height)
        left = (resized_width - size) / 2
        assert abs(left * height / size - 64) <= 1 and abs((left + size) * height / size - 448) <= 1


def _check_what_the_question_depends_on_is_inside_the_centre_crop(item: dict) -> None:
    boxes = LAYOUT[item["image"]]
    with Image.open(DATASET_DIR / item["image"]) as image:
        width, height = image.size
    x0, y0, x1, y1 = build.crop_box(width, height)
    for role in item["depends_on"]:
        left, top, right, bottom = boxes[role]
        assert x0 <= left and right <= x1 and y0 <= top and bottom <= y1, (role, boxes[role])
        # The same check after the resize each model does (shorter side to S, then the
        # centred SxS crop, as torchvision's Resize + CenterCrop compute it).
        for size in CROP_SIZES:
            scale = size / min(width, height)
            resized = (round(width * scale), round(height * scale))
            crop_left = int(round((resized[0] - size) / 2.0))
            crop_top = int(round((resized[1] - size) / 2.0))
            assert crop_left - 1 <= left * scale and right * scale <= crop_left + size + 1, size
            assert crop_top - 1 <= top * scale and bottom * scale <= crop_top + size + 1, size


def test_what_the_question_depends_on_is_inside_the_centre_crop() -> None:
    _each(
        _check_what_the_question_depends_on_is_inside_the_centre_crop,
        ITEMS,
        lambda item: item["id"],
    )


@pytest.mark.parametrize("image_path", sorted(LAYOUT)[:6])
def test_cropping_the_resized_image_shows_the_centre_square(image_path: str) -> None:
    # Honest about the pixels, not just the arithmetic: the centre crop of the resized image
    # looks like the resized centre square of the original.
    with Image.open(DATASET_DIR / image_path) as opened:
        image = opened.convert("RGB")
    x0, y0, x1, y1 = build.crop_box(*image.size)
    for size in CROP_SIZES:
        scale = size / min(image.size)
        resized = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC
        )
        left = int(round((resized.width - size) / 2.0))
        top = int(round((resized.height - size) / 2.0))
        model_view = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=float)
        square = np.asarray(
            image.crop((x0, y0, x1, y1)).resize((size, size), Image.Resampling.BICUBIC), dtype=float
        )
        assert np.abs(model_view - square).mean() < 6, size


def test_layout_covers_every_image_and_stays_inside_it() -> None:
    assert set(LAYOUT) == {item["image"] for item in ITEMS}
    for image_path, boxes in LAYOUT.items():
        for role, (left, top, right, bottom) in boxes.items():
            assert 0 <= left < right <= SCENE_SIZE[0] and 0 <= top < bottom <= SCENE_SIZE[1], (
                image_path,
                role,
            )


# ---------------------------------------------------------------- review


def _review_log() -> list[dict[str, str]]:
    with (DATASET_DIR / "review_log.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _check_every_item_is_reviewed_by_someone_else(item: dict) -> None:
    assert item["reviewer"] and item["reviewer"] != item["writer"]


def test_every_item_is_reviewed_by_someone_else() -> None:
    _each(_check_every_item_is_reviewed_by_someone_else, ITEMS, lambda item: item["id"])


def test_review_log_has_every_v1_item_and_every_v2_item() -> None:
    log = _review_log()
    assert set(log[0]) == set(build.LOG_COLUMNS)
    v1_rows = [row for row in log if row["writer"] == "v1"]
    assert [row["v1_id"] for row in v1_rows] == [f"mvqa-{n:03d}" for n in range(1, 57)]
    for row in v1_rows:
        assert row["verdict"] in {"kept", "changed", "dropped"} and row["reason"], row["v1_id"]
        carried = set(row["item"].split())
        assert bool(carried) == (row["verdict"] != "dropped"), row["v1_id"]
        assert carried <= {item["id"] for item in ITEMS}
    v2_rows = {row["item"]: row for row in log if row["writer"] != "v1"}
    for item in ITEMS:
        row = v2_rows[item["id"]]
        assert row["verdict"] in {"ok", "changed"} and row["reviewer"] == item["reviewer"]
    shipped = {item["id"] for item in ITEMS}
    for item_id, row in v2_rows.items():
        assert (row["verdict"] == "dropped") == (item_id not in shipped), item_id


# ---------------------------------------------------------------- files


def _image_files() -> set[str]:
    return {f"images/{path.name}" for path in (DATASET_DIR / "images").iterdir()}


def test_every_image_exists_opens_and_the_folder_is_small() -> None:
    assert {item["image"] for item in ITEMS} == _image_files(), "an image is missing or unused"
    for relative in sorted(_image_files()):
        with Image.open(DATASET_DIR / relative) as image:
            assert image.format == "PNG" and image.size == SCENE_SIZE, relative
            image.convert("RGB").load()
    total_bytes = sum((DATASET_DIR / relative).stat().st_size for relative in _image_files())
    assert total_bytes < 15 * 1024 * 1024


def test_provenance_covers_every_image() -> None:
    with (DATASET_DIR / "provenance.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) == {"file", "kind", "source", "author", "licence", "how_made"}
    files = [row["file"] for row in rows]
    assert len(files) == len(set(files)) and set(files) == _image_files()
    for row in rows:
        assert all(value.strip() for value in row.values()), row["file"]
        assert row["kind"] == "composed" and "compose_scenes.py" in row["how_made"]


def test_shipped_files_are_what_build_makes_from_the_sources() -> None:
    # Reviewers edit source/; this catches a source edit that was never built.
    items, _, layouts, _, problems, _, _ = build.load_all(sorted(build.SOURCE_DIR.glob("*.yaml")))
    assert not problems
    for split in SPLITS:
        built = [item.record() for item in items if item.split == split]
        assert built == ITEMS_BY_SPLIT[split], f"{split}.jsonl is stale: run build.py"
    assert {
        f"images/{name}": boxes for name, boxes in layouts.items() if f"images/{name}" in LAYOUT
    } == LAYOUT


def test_dataset_card_tables_match_the_data() -> None:
    card = (DATASET_DIR / "README.md").read_text(encoding="utf-8")
    assert "version 2.0" in card
    assert build.counts_tables(ITEMS) in card, "counts tables are stale: run build.py"
    assert audits.summary(TRAIN, TEST) in card, "audit table is stale: run build.py"


def test_readme_describes_the_shipped_dataset() -> None:
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    n_images = len({item["image"] for item in ITEMS})
    assert (
        f"{len(ITEMS)} items over {n_images} images, {len(TRAIN)} train / {len(TEST)} test"
        in readme
    )


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
    assert first["image"].size == SCENE_SIZE and first["id"] == TEST[0]["id"]
    assert first["depends_on"] == TEST[0]["depends_on"]
