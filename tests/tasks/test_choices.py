"""lm-eval's multiple-choice requests beyond one context: multiple input and acc_mutual_info."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from harness.judges.metrics import parse_metric_list, score_metrics
from harness.tasks.config import build_task_config
from harness.tasks.task import Task
from harness.tasks.yaml_io import resolve_includes
from harness.types import TextPart

# lm-eval's winogrande functions, as its wheel ships them.
WINOGRANDE_FUNCTIONS = '''
def doc_to_text(doc):
    answer_to_num = {"1": 0, "2": 1}
    return answer_to_num[doc["answer"]]


def doc_to_target(doc):
    idx = doc["sentence"].index("_") + 1
    return doc["sentence"][idx:].strip()


def doc_to_choice(doc):
    idx = doc["sentence"].index("_")
    options = [doc["option1"], doc["option2"]]
    return [doc["sentence"][:idx] + opt for opt in options]
'''
ROWS = [{"sentence": "The cup did not fit in the box because _ was too big.", "option1": "the cup",
         "option2": "the box", "answer": "1"},
        {"sentence": "Ann thanked Mia because _ had helped.", "option1": "Ann", "option2": "Mia",
         "answer": "2"}]


def winogrande(tmp_path: Path, extra: str = "") -> Task:
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "validation"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "preprocess_winogrande.py").write_text(WINOGRANDE_FUNCTIONS)
    path = tmp_path / "wino.yaml"
    path.write_text(f"task: wino\ndataset_path: {data}\noutput_type: multiple_choice\n"
                    "training_split: train\nvalidation_split: validation\n"
                    "doc_to_text: !function preprocess_winogrande.doc_to_text\n"
                    "doc_to_target: !function preprocess_winogrande.doc_to_target\n"
                    "doc_to_choice: !function preprocess_winogrande.doc_to_choice\n" + extra)
    return Task(build_task_config(resolve_includes(path), path))


def _text(parts: tuple) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def test_multiple_input_scores_one_continuation_after_each_context(tmp_path: Path) -> None:
    task = winogrande(tmp_path)
    assert task.multiple_input and not task.mutual_info
    first, second = task.instances(run_seed=0)
    request = first.request
    assert [_text(c) for c in request.contexts] == ["The cup did not fit in the box because the cup",
                                                   "The cup did not fit in the box because the box"]
    assert request.continuations == (" was too big.", " was too big.")
    assert first.gold == 0 and second.gold == 1
    assert first.choices == tuple(_text(c) for c in request.contexts)
    assert second.target == "Ann thanked Mia because Mia"
    assert first.prompt_hash != second.prompt_hash  # the contexts are part of the prompt


def test_multiple_input_demonstrations_are_the_right_context_and_its_continuation(tmp_path: Path) -> None:
    task = winogrande(tmp_path, "num_fewshot: 1\nfewshot_config: {sampler: first_n}\n")
    request = task.instances(run_seed=0)[1].request
    shot = "The cup did not fit in the box because the cup was too big.\n\n"
    assert [_text(c) for c in request.contexts] == [shot + "Ann thanked Mia because Ann",
                                                   shot + "Ann thanked Mia because Mia"]


def test_acc_mutual_info_adds_each_choice_after_an_empty_context(tmp_path: Path) -> None:
    task = winogrande(tmp_path, "metric_list: [{metric: acc}, {metric: acc_mutual_info}]\n")
    request = task.instances(run_seed=0)[0].request
    assert request.continuations == (" was too big.",) * 2 + (" The cup did not fit in the box "
                                                               "because the cup",
                                                               " The cup did not fit in the box "
                                                               "because the box")
    assert [_text(c) for c in request.contexts][2:] == ["", ""]


def test_acc_mutual_info_is_the_argmax_of_conditional_minus_unconditional() -> None:
    _, metrics = parse_metric_list([{"metric": "acc"}, {"metric": "acc_mutual_info"}],
                                   "multiple_choice", "t.yaml", [], {})
    # Conditional: choice 0 likelier; unconditional: choice 0 far likelier still, so the
    # information the context adds favours choice 1.
    sample = SimpleNamespace(error=None, loglikelihoods=(-2.0, -3.0, -1.0, -5.0),
                             choices=("a", "b"), gold=1, response=None, target="", doc={},
                             doc_id="0", repeat=0)
    scores = score_metrics(metrics, [sample], "multiple_choice", [])
    assert scores["acc,none"]["value"] == 0.0
    assert scores["acc_mutual_info,none"]["value"] == 1.0


def test_digits_from_a_template_are_an_index_but_a_column_is_a_prompt(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "test.jsonl").write_text(json.dumps({"sentence": "12", "a": "x"}) + "\n")
    path = tmp_path / "t.yaml"
    path.write_text(f"task: t\ndataset_path: {data}\ntest_split: test\noutput_type: multiple_choice\n"
                    "doc_to_text: '{{sentence}}'\ndoc_to_choice: ['no', 'yes']\ndoc_to_target: 0\n")
    task = Task(build_task_config(resolve_includes(path), path))
    # lm-eval reads a template that renders to digits as an index: so does this harness.
    assert task.multiple_input
    path.write_text(path.read_text().replace("'{{sentence}}'", "sentence"))
    assert not Task(build_task_config(resolve_includes(path), path)).multiple_input  # a column
