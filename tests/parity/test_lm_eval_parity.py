"""Parity with lm-evaluation-harness itself: its shipped task YAMLs, run by it and by us.

Each task YAML is taken as lm-eval's wheel ships it (included by absolute path) and pointed
at a small local copy of its data in the hub's columns, written here. lm-eval's own
``simple_evaluate`` and this harness's ``evaluate`` then run the same tiny random causal LM
(built offline); per item the rendered contexts and continuations must be identical, the
log-likelihoods within 1e-4 and the generations equal, and every metric the same.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
lm_eval = pytest.importorskip("lm_eval")

from harness.tasks.index import TaskIndex  # noqa: E402
from harness.tasks.task import Task  # noqa: E402
from tests.models.tiny_lms import build_tiny_lm  # noqa: E402

WHEEL = Path(lm_eval.__file__).parent / "tasks"


def _arc(i: int) -> dict[str, Any]:
    return {"id": f"arc-{i}", "question": f"Which tool measures {['heat', 'mass', 'time'][i % 3]}?",
            "choices": {"text": ["a ruler", "a clock", "a scale", "a thermometer"],
                        "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[i % 4]}


def _arc_varied(i: int) -> dict[str, Any]:
    """ARC rows whose choices differ in length and order, so conditional and unconditional
    log-likelihoods pull apart."""
    pool = ["yes", "the quick brown fox jumps over the lazy dog", "no", "12 + 30 = 42",
            "She went to the store, then she went home.", "true"]
    choices = [pool[(i + k) % len(pool)] for k in range(4)]
    return {"id": f"mi-{i}", "question": f"Question {i}: which one?",
            "choices": {"text": choices, "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[(i * 3) % 4]}


def _hellaswag(i: int) -> dict[str, Any]:
    return {"ind": i, "activity_label": "Baking cookies", "ctx_a": "A woman puts dough on a tray.",
            "ctx_b": "she", "ctx": "A woman puts dough on a tray. she",
            "endings": ["puts the tray in the oven.", "eats the tray [title] quickly.",
                        "walks  away.", "sings to the dough."],
            "source_id": "x", "split": "val", "split_type": "indomain", "label": str(i % 4)}


MMLU_ROWS = [{"question": f" What is bone number {i}? ", "subject": "anatomy",
              "choices": ["the femur", "the ulna", "the skull", "the rib"], "answer": i % 4}
             for i in range(5)]
GSM8K_ROWS = [{"question": f"Tom has {i} apples and buys {i + 2} more. How many now?",
               "answer": f"He has {i} + {i + 2} = {2 * i + 2} apples.\n#### {2 * i + 2}"}
              for i in range(7)]
ETHICS_ROWS = [{"label": i % 2, "input": text, "is_short": True, "edited": False}
               for i, text in enumerate(["I helped my neighbour carry her groceries.",
                                         "I took the last cookie and lied about it.",
                                         "I returned the wallet I found.",
                                         "I laughed at the child who fell."])]
WINOGRANDE_ROWS = [{"sentence": "The cup did not fit in the box because _ was too big.",
                    "option1": "the cup", "option2": "the box", "answer": "1"},
                   {"sentence": "Ann thanked Mia because _ had helped her move.", "option1": "Ann",
                    "option2": "Mia", "answer": "2"},
                   {"sentence": "The fox chased the dog until _ was tired.", "option1": "the fox",
                    "option2": "the dog", "answer": "1"}]
#: bbh snarks' rows; a target of "[invalid]" is what flexible-extract's fallback gives, so that
#: pipeline can score where take_first does not.
SNARKS_ROWS = [{"input": "Which statement is sarcastic?\nOptions:\n(A) Great, more rain\n(B) Rain helps",
                "target": target} for target in ("(A)", "[invalid]", "(B)")]
WIKITEXT_ROWS = [{"page": " = Valkyria = \n The game , released in 2011 , was a success @-@ story .\n"},
                 {"page": " = Fox = \n The quick brown fox jumps over the lazy dog 's tail .\n"}]

LAMBADA_ROWS = [{"text": "The fox ran into the woods and hid under the old oak tree"},
                {"text": "She opened the door and saw her brother standing in the rain"},
                {"text": "After the long winter the river finally began to thaw"}]
GSM8K_SETTINGS = ("generation_kwargs:\n  until: ['Question:', '</s>', '<|im_end|>']\n"
                  "  do_sample: false\n  temperature: 0.0\n  max_gen_toks: 24\n")

#: task -> (the wheel's YAML, {split: rows}, extra keys for the local copy).
TASKS: dict[str, tuple[str, dict[str, list[dict[str, Any]]], str]] = {
    "arc_easy": ("arc/arc_easy.yaml", {"test": [_arc(i) for i in range(4)]}, ""),
    "arc_challenge": ("arc/arc_challenge.yaml", {"test": [_arc(i + 1) for i in range(3)]}, ""),
    "hellaswag": ("hellaswag/hellaswag.yaml", {"validation": [_hellaswag(i) for i in range(4)]}, ""),
    "piqa": ("piqa/piqa.yaml", {"validation": [
        {"goal": "How do I open a jar?", "sol1": "Twist the lid.", "sol2": "Eat the lid.",
         "label": i % 2} for i in range(3)]}, ""),
    "boolq": ("super_glue/boolq/default.yaml", {"validation": [
        {"passage": "Foxes are mammals.", "question": "are foxes mammals", "label": 1, "idx": 0},
        {"passage": "Ice is cold.", "question": "is ice hot", "label": 0, "idx": 1}]}, ""),
    "truthfulqa_mc1": ("truthfulqa/truthfulqa_mc1.yaml", {"validation": [
        {"question": "What happens if you crack your knuckles?",
         "mc1_targets": {"choices": ["Nothing in particular.", "You get arthritis."],
                         "labels": [1, 0]},
         "mc2_targets": {"choices": ["Nothing.", "Arthritis."], "labels": [1, 0]}}] * 2}, ""),
    "mmlu_anatomy": ("mmlu/default/mmlu_anatomy.yaml",
                     {"test": MMLU_ROWS[:3], "dev": MMLU_ROWS}, "num_fewshot: 5\n"),
    "gsm8k": ("gsm8k/gsm8k.yaml", {"train": GSM8K_ROWS, "test": GSM8K_ROWS[:2]},
              GSM8K_SETTINGS),
    "ethics_cm": ("hendrycks_ethics/commonsense.yaml", {"train": ETHICS_ROWS, "test": ETHICS_ROWS}, ""),
    "wikitext": ("wikitext/wikitext.yaml", {"test": WIKITEXT_ROWS}, ""),
    # Multiple input: doc_to_text is the index of the right context; one continuation.
    "winogrande": ("winogrande/default.yaml", {"train": WINOGRANDE_ROWS, "validation":
                                               WINOGRANDE_ROWS}, "num_fewshot: 1\n"),
    # A !function filter class of the task's own (flexible-extract) beside take_first.
    "bbh_zeroshot_snarks": ("bbh/zeroshot/snarks.yaml", {"test": SNARKS_ROWS},
                            "generation_kwargs:\n  until: ['</s>', 'Q:', '<|im_end|>']\n"
                            "  do_sample: false\n  temperature: 0.0\n  max_gen_toks: 12\n"),
    # acc_mutual_info (no shipped YAML uses it): each choice again after an empty context.
    "arc_mutual_info": ("arc/arc_easy.yaml", {"test": [_arc_varied(i) for i in range(8)]},
                        "metric_list:\n  - {metric: acc}\n  - {metric: acc_norm}\n"
                        "  - {metric: acc_mutual_info}\n"),
    # Bootstrapped standard errors (lm-eval's draws): perplexity, median, sacrebleu's metrics.
    "lambada_ppl": ("lambada/lambada_openai.yaml", {"test": LAMBADA_ROWS},
                    "metric_list: [{metric: perplexity, aggregation: perplexity, higher_is_better: false}]\n"),
    "ethics_median": ("hendrycks_ethics/commonsense.yaml", {"train": ETHICS_ROWS, "test": ETHICS_ROWS},
                      "metric_list: [{metric: acc, aggregation: median, higher_is_better: true}]\n"),
    "gsm8k_bleu": ("gsm8k/gsm8k.yaml", {"train": GSM8K_ROWS, "test": GSM8K_ROWS[:3]}, GSM8K_SETTINGS
                   + "metric_list: [{metric: bleu}, {metric: chrf}, {metric: ter}]\n"),
    # lm-eval keys beyond the plain ones, on ARC: gen_prefix, fewshot_config overrides, samples.
    "arc_prefixed": ("arc/arc_easy.yaml", {"test": [_arc(i) for i in range(3)]},
                     "gen_prefix: 'The answer is'\nnum_fewshot: 2\nfewshot_config:\n"
                     "  sampler: first_n\n  target_delimiter: ' => '\n"
                     "  doc_to_text: 'Q: {{question}}'\n"
                     f"  samples: {json.dumps([_arc(5), _arc(6), _arc(7)])}\n"),
}

#: Tasks whose standard errors lm-eval bootstraps.
BOOTSTRAPPED = ("lambada_ppl", "ethics_median", "gsm8k_bleu")


def _write_tasks(root: Path) -> Path:
    folder = root / "tasks"
    folder.mkdir()
    for task, (wheel_yaml, splits, extra) in TASKS.items():
        files = {}
        first = next(iter(splits.values()))
        # Every split a YAML may name exists (lm-eval loads them all); the given ones as given.
        for split, rows in {"train": first, "validation": first, "test": first, **splits}.items():
            path = root / "data" / task / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(row) + "\n" for row in rows))
            files[split] = str(path)
        (folder / f"{task}.yaml").write_text(
            f"include: {WHEEL / wheel_yaml}\ntask: {task}\ndataset_path: json\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files: {json.dumps(files)}\n{extra}")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Any, Any]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from harness.run.evaluate import evaluate

    root = tmp_path_factory.mktemp("parity")
    model_dir = build_tiny_lm(root / "lm", "llama", n_positions=1024)
    tasks = _write_tasks(root)
    model_args = f"pretrained={model_dir},dtype=float32,device=cpu"
    theirs = simple_evaluate(model="hf", model_args=model_args, tasks=list(TASKS),
                             task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
                             batch_size=4, log_samples=True)  # lm-eval's stderrs too
    ours = evaluate("hf", list(TASKS), model_args={"pretrained": str(model_dir), "dtype": "float32",
                                                    "device": "cpu"},
                    include_paths=[str(tasks)], output_dir=root / "out", use_cache=False,
                    write_leaderboard=False, batch_size=4)
    # The requests this harness sent, as its run built them (for their contexts per choice).
    index = TaskIndex([str(tasks)])
    requests = {task: {_doc_key(i.doc_id, n): i.request for n, i in enumerate(
        Task(index.load(task)).instances(run_seed=0))} for task in TASKS}
    return theirs, ours, requests


def _doc_key(doc_id: str, index: int) -> int:
    return int(doc_id) if doc_id.isdigit() else index


def _rows(request: Any) -> list[tuple[str, str]]:
    """(context, continuation) per log-likelihood row, as lm-eval's ``arguments`` list them."""
    def text(parts: Any) -> str:
        return "".join(p.text for p in parts)
    contexts = request.contexts or (request.parts,) * len(request.continuations)
    return [(text(c), cont) for c, cont in zip(contexts, request.continuations)]


def _ours_by_doc(ours: Any, task: str) -> dict[int, Any]:
    return {int(s.doc_id) if s.doc_id.isdigit() else index: s
            for index, s in enumerate(s for s in ours.samples if s.task == task)}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(TASKS))
def test_same_prompts_scores_and_metrics_as_lm_eval(runs: tuple[dict[str, Any], Any, Any],
                                                    task: str) -> None:
    theirs, ours, requests = runs
    # lm-eval logs one sample per (document, filter pipeline): the prompts are the same.
    their_samples = sorted({s["doc_id"]: s for s in theirs["samples"][task]}.values(),
                           key=lambda s: s["doc_id"])
    mine = _ours_by_doc(ours, task)
    assert len(their_samples) == len(mine) > 0
    for their in their_samples:
        sample = mine[their["doc_id"]]
        arguments = [tuple(a) for a in their["arguments"]]
        if isinstance(their["resps"][0][0], str):  # generate_until
            assert sample.prompt == arguments[0][0]
            assert sample.response == their["resps"][0][0]
        elif len(arguments[0]) == 1:  # loglikelihood_rolling: the text alone
            assert sample.prompt == arguments[0][0]
            assert sample.loglikelihoods[0] == pytest.approx(their["resps"][0][0], abs=1e-4)
        elif not sample.choices:  # loglikelihood: one continuation
            assert (sample.prompt, sample.target) == arguments[0]
            assert sample.loglikelihoods[0] == pytest.approx(their["resps"][0][0][0], abs=1e-4)
        else:  # every (context, continuation) row, in lm-eval's order
            assert _rows(requests[task][their["doc_id"]]) == [(a[0], a[1]) for a in arguments]
            their_lls = [r[0][0] for r in their["resps"]]
            assert list(sample.loglikelihoods) == pytest.approx(their_lls, abs=1e-4)
    if task == "arc_prefixed":  # the keys took effect (in both, since the prompts are equal)
        assert sample.prompt.startswith("Q: ") and sample.prompt.count(" => The answer is ") == 2
        assert sample.prompt.endswith("\nAnswer: The answer is")
    if task == "winogrande":  # the multiple-input form took effect
        assert len({a[0] for a in arguments}) == 2 and len({a[1] for a in arguments}) == 1
    if task == "arc_mutual_info":
        assert [a[0] for a in arguments][len(arguments) // 2:] == [""] * (len(arguments) // 2)
    our_metrics = ours.results["metrics"][task]
    their_metrics = {k: v for k, v in theirs["results"][task].items() if "," in k}
    assert {key for m in our_metrics for key in (m, m.replace(",", "_stderr,", 1))} == set(their_metrics)
    for key, value in their_metrics.items():
        name, _, filter_key = key.partition(",")
        if name.endswith("_stderr"):  # N/A or the same, bit for bit (the same resamples)
            mine_stderr = our_metrics[f"{name.removesuffix('_stderr')},{filter_key}"]["stderr"]
            assert mine_stderr == (None if value == "N/A" else value), key
            continue
        mine_value = our_metrics[key]["value"]
        assert mine_value == pytest.approx(value, rel=1e-6, abs=1e-9) or (
            math.isnan(value) and math.isnan(mine_value)), key
    if task in BOOTSTRAPPED:  # not N/A: the comparison above compared bootstrapped values
        assert all(isinstance(v, float) for k, v in their_metrics.items() if "_stderr," in k)
