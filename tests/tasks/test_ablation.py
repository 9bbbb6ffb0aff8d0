"""Image ablations: blank, shuffle and describe replace every image a prompt shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BenchError
from harness.tasks.ablation import check_ablation, variant_with_ablation
from harness.tasks.index import TaskIndex
from harness.tasks.task import Instance, Task
from harness.types import ImagePart, TextPart
from tests.instrument_fixtures import paired_tasks


def task(include: Path, name: str = "morality_1shot") -> Task:
    return Task(TaskIndex([str(include)]).load(name))


def by_id(instances: list[Instance]) -> dict[str, Instance]:
    return {i.doc_id: i for i in instances}


@pytest.fixture()
def include(tmp_path: Path) -> Path:
    return paired_tasks(tmp_path, scenarios_per_split=3)


def test_blank_shows_a_grey_image_of_the_same_size(include: Path) -> None:
    plain = by_id(task(include).instances(run_seed=0))
    blank = by_id(task(include).instances(run_seed=0, image_ablation="blank"))
    for doc_id, instance in blank.items():
        (shown,) = instance.request.images
        (own,) = plain[doc_id].request.images
        assert shown.image.size == own.image.size
        assert shown.image.getextrema() == ((128, 128),) * 3
        assert instance.image_ids == (shown.image_id,) != plain[doc_id].image_ids
        # Its cluster is still its own image; the document is the same, the prompt is not.
        assert instance.cluster_id == own.image_id and plain[doc_id].cluster_id is None
        assert instance.doc_hash == plain[doc_id].doc_hash
        assert instance.prompt_hash != plain[doc_id].prompt_hash
        assert instance.request.text == plain[doc_id].request.text


def test_shuffle_never_shows_the_items_own_scenario(include: Path) -> None:
    plain = by_id(task(include).instances(run_seed=0))
    scenario_of_image = {i.image_ids[0]: i.doc["scenario"] for i in plain.values()}
    shuffled = by_id(task(include).instances(run_seed=0, image_ablation="shuffle"))
    shown_scenarios = set()
    for doc_id, instance in shuffled.items():
        (shown,) = instance.request.images
        assert shown.image_id != plain[doc_id].image_ids[0]
        # Not the contrast partner's image either: it would flip the answer, not remove it.
        assert scenario_of_image[shown.image_id] != instance.doc["scenario"]
        assert instance.cluster_id == plain[doc_id].image_ids[0]
        shown_scenarios.add(scenario_of_image[shown.image_id])
    assert len(shown_scenarios) == 3  # every other scenario's images get drawn


def test_shuffle_is_seeded_by_run_seed_and_item_only(include: Path) -> None:
    def shown(run_seed: int, name: str = "morality_1shot") -> dict[str, str]:
        return {i.doc_id: i.request.images[0].image_id
                for i in task(include, name).instances(run_seed=run_seed, image_ablation="shuffle")}

    assert shown(0) == shown(0)
    assert shown(0) == shown(0, "morality_0shot")  # one item: one image at every shot count
    assert shown(0) != shown(1)
    limited = {i.doc_id: i.request.images[0].image_id
               for i in task(include).instances(run_seed=0, limit=3, image_ablation="shuffle")}
    assert limited == {k: v for k, v in shown(0).items() if k in limited}


def test_shuffle_with_a_single_scenario_is_an_error(tmp_path: Path) -> None:
    one = paired_tasks(tmp_path, scenarios_per_split=1)
    with pytest.raises(BenchError, match="no other image to show"):
        task(one).instances(run_seed=0, image_ablation="shuffle")


def test_describe_replaces_the_image_with_its_description(include: Path) -> None:
    for instance in task(include).instances(run_seed=0, image_ablation="describe"):
        assert instance.request.images == () and instance.image_ids == ()
        (part,) = instance.request.parts
        assert isinstance(part, TextPart)
        description = instance.doc["image_description"].rstrip(".")
        assert part.text.startswith(f"Image: {description}.\nQ: Who is there?")
        assert instance.cluster_id is not None and instance.cluster_id.startswith("img-")


def test_describe_describes_demonstration_images_too(include: Path) -> None:
    instance = task(include, "morality_fewshot").instances(run_seed=0, image_ablation="describe")[0]
    assert not any(isinstance(p, ImagePart) for p in instance.request.parts)
    assert instance.request.text.count("Image: Drawn scene train") == 2  # two demonstrations
    assert instance.request.text.count("Image: Drawn scene test") == 1


def test_describe_without_descriptions_is_a_one_line_error(mini_tasks: Path) -> None:
    import json

    dataset = Path(next(mini_tasks.glob("morality_0shot.yaml")).read_text().split(
        "dataset_path: ")[1].strip())
    rows = [json.loads(line) for line in (dataset / "test.jsonl").read_text().splitlines()]
    rows[1].pop("image_description")
    (dataset / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BenchError, match=r"describe needs an 'image_description'.*item mini-007") as info:
        task(mini_tasks, "morality_0shot").instances(run_seed=0, image_ablation="describe")
    assert "\n" not in str(info.value)


def test_unknown_ablation_is_a_one_line_error_with_a_suggestion() -> None:
    with pytest.raises(BenchError, match="Did you mean 'shuffle'"):
        check_ablation("shufle")
    assert check_ablation(None) == "none"


@pytest.mark.parametrize(("variant", "ablation", "shown"), [
    (None, "none", None), ("finetuned-x@ab12", "none", "finetuned-x@ab12"),
    (None, "blank", "+ablation=blank"), ("finetuned-x@ab12", "shuffle", "finetuned-x@ab12+ablation=shuffle"),
])
def test_leaderboard_variant(variant: str | None, ablation: str, shown: str | None) -> None:
    assert variant_with_ablation(variant, ablation) == shown
