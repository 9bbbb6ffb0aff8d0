"""The model registry: names, cards, arguments."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.errors import BenchError
from harness.models.base import Model
from harness.registry import load_model, model_cards, register_model
from harness.types import Request, Response


@register_model("echo-served")
class EchoServed(Model):
    """A generic adapter whose ``served`` argument says which model it serves."""

    identity_arg = "served"

    def __init__(self, served: str = "default-model", temperature: float = 0.0) -> None:
        self.served = served

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(r.request_id, text=self.served) for r in requests]


def test_the_served_model_names_a_generic_adapter() -> None:
    assert load_model("echo-served").registry_name == "echo-served"
    named = load_model("echo-served", {"served": "org/vlm-7b"})
    assert named.registry_name == "echo-served:org/vlm-7b"
    other = load_model("echo-served", {"served": "org/vlm-13b"})
    assert named.fingerprint() != other.fingerprint()
    # Other arguments do not rename it.
    assert load_model("echo-served", {"temperature": 1.0}).registry_name == "echo-served"


def test_a_card_keeps_its_name_unless_the_user_names_the_served_model(tmp_path: Path,
                                                                      monkeypatch) -> None:
    import harness.registry as registry

    (tmp_path / "my-vlm.yaml").write_text("adapter: echo-served\nargs:\n  served: org/a\n")
    monkeypatch.setattr(registry, "MODEL_CARDS_DIR", tmp_path)
    assert model_cards()["my-vlm"].args == {"served": "org/a"}
    card_model = load_model("my-vlm")
    assert card_model.registry_name == "my-vlm" and card_model.served == "org/a"
    overridden = load_model("my-vlm", {"served": "org/b"})
    assert overridden.registry_name == "my-vlm:org/b" and overridden.served == "org/b"


def test_a_card_named_like_its_adapter_still_applies_its_args(tmp_path: Path, monkeypatch) -> None:
    """models/magma.yaml is the card 'magma' on the adapter 'magma': `--model magma` must run
    with the card's sampler and top_p, not the adapter's bare defaults."""
    import harness.registry as registry

    (tmp_path / "echo-served.yaml").write_text("adapter: echo-served\nargs:\n  served: org/card\n")
    monkeypatch.setattr(registry, "MODEL_CARDS_DIR", tmp_path)
    assert load_model("echo-served").served == "org/card"
    assert load_model("echo-served", {"served": "org/user"}).served == "org/user"


def test_model_magma_with_a_local_checkpoint_runs_the_cards_sampler() -> None:
    from harness.models.magma.tiny import ensure_tiny

    checkpoint, tokenizer = ensure_tiny(0)
    model = load_model("magma", {"checkpoint": str(checkpoint), "tokenizer": str(tokenizer),
                                 "dtype": "float32", "device_map": "cpu"})
    assert (model.sampler, model.top_p) == ("original", 0.9)  # models/magma.yaml's, not the adapter's


def test_a_wrong_argument_names_the_accepted_ones() -> None:
    with pytest.raises(BenchError, match=r"unknown argument for model 'echo-served': 'servd'.*"
                                         r"Did you mean 'served'"):
        load_model("echo-served", {"servd": "x"})


def test_a_card_without_an_adapter_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    import harness.registry as registry

    (tmp_path / "broken.yaml").write_text("args: {a: 1}\n")
    monkeypatch.setattr(registry, "MODEL_CARDS_DIR", tmp_path)
    with pytest.raises(BenchError, match="broken.yaml: a model card needs an 'adapter' key"):
        model_cards()


@register_model("expensive-to-load")
class ExpensiveToLoad(Model):
    """Stands for a 13 GB checkpoint: building it is the mistake this test catches."""

    built = 0

    def __init__(self) -> None:
        ExpensiveToLoad.built += 1

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(r.request_id, text="Yes.") for r in requests]


def test_a_misspelt_task_or_judge_fails_before_the_model_loads(capsys) -> None:
    from harness.commands.cli import main

    assert main(["--model", "expensive-to-load", "--tasks", "moralty_1shot"]) == 2
    assert "unknown task 'moralty_1shot'" in capsys.readouterr().err
    assert main(["--model", "expensive-to-load", "--tasks", "morality_1shot",
                 "--judges", "refrence"]) == 2
    assert "Did you mean 'reference'" in capsys.readouterr().err
    assert ExpensiveToLoad.built == 0


def test_cards_in_include_path_folders_are_found_beside_task_yamls(
        mini_tasks: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import harness.registry as registry
    from harness.commands.cli import main

    monkeypatch.setattr(registry, "_card_dirs", [])
    (mini_tasks / "cards").mkdir()
    (mini_tasks / "cards" / "served-here.yaml").write_text(
        "adapter: echo-served\nargs:\n  served: org/here\n  temperature: 0.5\n")
    assert "served-here" not in model_cards()
    assert main(["--list-models", "--include-path", str(mini_tasks)]) == 0
    assert "served-here" in capsys.readouterr().out.split()
    assert main(["--model", "served-here", "--tasks", "morality_0shot", "--include-path",
                 str(mini_tasks), "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 0
    sample = (next((tmp_path / "out" / "runs").iterdir()) / "samples.jsonl").read_text()
    assert '"response": "org/here"' in sample


def test_nested_user_args_merge_into_a_cards_mapping_args() -> None:
    from harness.registry import merge_args

    card = {"model": "m", "extra_body": {"a": 1, "b": {"c": 2}}}
    assert merge_args(card, {"extra_body": {"b": {"d": 3}}}) == {
        "model": "m", "extra_body": {"a": 1, "b": {"c": 2, "d": 3}}}
    assert card["extra_body"] == {"a": 1, "b": {"c": 2}}  # the card is not changed
