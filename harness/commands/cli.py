"""Command-line interface: argument parsing only, one function per sub-command.

``run_bench.py --model M --tasks T`` runs a benchmark; ``run_bench.py SUBCOMMAND ...`` runs a
sub-command module from ``SUBCOMMANDS`` (imported lazily, each exposing ``add_arguments`` and
``run``). A ``BenchError`` prints as one line on stderr and exits 2. Listing tasks, models or
judges imports no torch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from harness.api_keys import scrub
from harness.arguments import parse_judge_args, parse_key_values
from harness.errors import BenchError
from harness.paths import DEFAULT_OUTPUT_DIR
from harness.safety import terminal_text

SUBCOMMANDS: dict[str, str] = {
    "score": "harness.commands.score",
    "annotate": "harness.commands.annotate",
    "view": "harness.commands.view",
    "agreement": "harness.commands.agreement",
    "leaderboard": "harness.commands.leaderboard",
    "compare": "harness.commands.compare",
    "finetune": "harness.commands.finetune",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage mistakes are one-line ``BenchError``s, like every other mistake."""

    def error(self, message: str) -> NoReturn:
        raise BenchError(f"{message}; see {self.prog} -h")


def _batch_size(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or 'auto'") from None


def _gen_kwargs(text: str | None) -> dict[str, Any]:
    if text and text.strip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise BenchError("--gen-kwargs: not valid JSON; or write k=v,...") from None
        if not isinstance(value, dict):
            raise BenchError("--gen-kwargs: JSON must be an object")
        return value
    return parse_key_values(text, "--gen-kwargs")


def _limit(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return int(value) if value >= 1 and value.is_integer() else value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="run_bench.py",
        description="Evaluate a vision-language model's commonsense morality. "
                    f"Sub-commands: {', '.join(SUBCOMMANDS)} (run_bench.py SUBCOMMAND -h).")
    add = parser.add_argument
    add("--model", help="model adapter or model card name (see --list-models)")
    add("--model-args", "--model_args", dest="model_args", help="k=v,... passed to the model")
    add("--tasks", help="task, group or tag names, comma-separated (see --list-tasks)")
    add("--judges", help="judge names, comma-separated (default: each task's metric_list)")
    add("--judge-args", "--judge_args", dest="judge_args", help="judge.key=value,...")
    add("--batch-size", "--batch_size", dest="batch_size", type=_batch_size, default=None,
        help="requests per model call (default: the model's own, e.g. 8 for MAGMA), or "
             "'auto': the largest that fits, halving on out-of-memory; never changes the results")
    add("--limit", type=_limit, help="first N items per task (or a fraction below 1)")
    add("--repeats", type=int, help="samples per item (default: the task's repeats)")
    add("--num-fewshot", "--num_fewshot", dest="num_fewshot", type=int,
        help="override num_fewshot (demonstrations drawn from the fewshot split)")
    add("--seed", default="0",
        help="run seed (every request's seed derives from it), or lm-eval's "
             "python,numpy,torch,fewshot form: the first is the run seed, the fourth the "
             "tasks' few-shot seed")
    add("--gen-kwargs", "--gen_kwargs", dest="gen_kwargs",
        help="k=v,... (or JSON) over every generate_until task's generation_kwargs, e.g. "
             "temperature=0,max_gen_toks=32; part of the run's identity")
    add("--apply-chat-template", "--apply_chat_template", dest="apply_chat_template",
        action="store_true", help="render prompts with the model's chat template (hf)")
    add("--system-instruction", "--system_instruction", dest="system_instruction",
        help="a system message before each prompt (adapters with chat templates: hf, openai)")
    add("--predict-only", "--predict_only", "-x", dest="predict_only", action="store_true",
        help="generate and save the responses; run no judge")
    add("--log-samples", "--log_samples", "-s", dest="log_samples", action="store_true",
        help="accepted for lm-eval habits: samples are always logged")
    add("--write-out", "--write_out", "-w", dest="write_out", action="store_true",
        help="print the first rendered prompts of each task and run nothing")
    add("--show-config", "--show_config", dest="show_config", action="store_true",
        help="print the resolved run and task configs and run nothing")
    add("--samples", "-E", dest="samples",
        help='JSON: only these items, e.g. \'{"morality_0shot": ["item-001", 3]}\' '
             "(item ids, or positions in the split); not with --limit")
    add("--image-ablation", "--image_ablation", dest="image_ablation", default="none",
        metavar="{none,blank,shuffle,describe}",
        help="show instead of each image: nothing changed (none), a grey image (blank), another "
             "item's image (shuffle) or the text 'Image: <image_description>.' (describe, for "
             "text-only models)")
    add("--output-dir", "--output_dir", "--output_path", "--output-path", dest="output_dir",
        default=DEFAULT_OUTPUT_DIR, help="folder for runs/, cache/ and leaderboard.jsonl")
    add("--include-path", "--include_path", dest="include_path", action="append", default=[],
        help="extra folder of task YAMLs and model cards (repeatable)")
    add("--no-cache", "--no_cache", dest="no_cache", action="store_true",
        help="do not read or write the cross-run response cache")
    add("--no-progress", dest="no_progress", action="store_true", help="hide progress bars")
    add("--list-tasks", "--list_tasks", dest="list_tasks", action="store_true")
    add("--list-models", "--list_models", dest="list_models", action="store_true")
    add("--list-judges", "--list_judges", dest="list_judges", action="store_true")
    return parser


def list_tasks(include_paths: Sequence[str]) -> int:
    from harness.tasks.index import TaskIndex

    index = TaskIndex(include_paths)
    for error in index.broken.values():
        print(terminal_text("warning: " + " ".join(error.split()) + "; skipped"), file=sys.stderr)
    print("tasks:")
    for name in index.task_names:
        print(terminal_text(f"  {name}"))
    for label, names in (("groups", index.group_names), ("tags", index.tag_names)):
        if names:
            print(f"{label}:")
            for name in names:
                print(terminal_text(f"  {name}: {', '.join(index.group_members(name))}"))
    return 0


def list_models(include_paths: Sequence[str] = ()) -> int:
    from harness.registry import add_card_dirs, model_cards, model_names

    add_card_dirs(include_paths)
    cards = model_cards()
    for name in model_names():
        card = cards.get(name)
        print(terminal_text(f"{name}" + (f"  ({card.description})" if card and card.description
                                          else "")))
    return 0


def list_judges() -> int:
    from harness.registry import judge_names
    from harness.run.samples import LOGLIKELIHOOD

    for name in judge_names():
        print(name)
    print(f"{LOGLIKELIHOOD}  (judge-free, multiple_choice tasks)")
    return 0


def run_benchmark(args: argparse.Namespace) -> int:
    if not args.model and not (args.write_out or args.show_config):
        raise BenchError("--model is required (see --list-models)")
    if not args.tasks:
        raise BenchError("--tasks is required (see --list-tasks)")
    from harness.run.overrides import parse_seed

    seed, fewshot_seed = parse_seed(args.seed)
    gen_kwargs = _gen_kwargs(args.gen_kwargs)
    model_args = parse_key_values(args.model_args, "--model-args")
    if args.write_out or args.show_config:
        from harness.commands.preview import preview

        preview(args.tasks, include_paths=args.include_path, num_fewshot=args.num_fewshot,
                gen_kwargs=gen_kwargs, seed=seed, fewshot_seed=fewshot_seed, limit=args.limit,
                repeats=args.repeats, sample_ids=args.samples, write_out=args.write_out,
                show_config=args.show_config, out=sys.stdout,
                image_ablation=args.image_ablation, run_settings={
                    "model": args.model, "model_args": model_args, "judges": args.judges,
                    "judge_args": parse_judge_args(args.judge_args), "seed": seed,
                    "fewshot_seed": fewshot_seed, "gen_kwargs": gen_kwargs,
                    "batch_size": args.batch_size, "limit": args.limit, "repeats": args.repeats,
                    "num_fewshot": args.num_fewshot, "samples": args.samples,
                    "apply_chat_template": args.apply_chat_template,
                    "system_instruction": args.system_instruction,
                    "predict_only": args.predict_only, "output_dir": args.output_dir,
                    "include_paths": args.include_path, "use_cache": not args.no_cache,
                    "image_ablation": args.image_ablation})
        return 0
    from harness.run.evaluate import evaluate
    from harness.run.folder import Results
    from harness.run.report import print_summary

    result = evaluate(
        args.model, args.tasks, args.judges,
        model_args=model_args,
        judge_args=parse_judge_args(args.judge_args),
        batch_size=args.batch_size, limit=args.limit, repeats=args.repeats, seed=seed,
        num_fewshot=args.num_fewshot, output_dir=args.output_dir,
        include_paths=args.include_path, use_cache=not args.no_cache,
        progress=not args.no_progress and sys.stderr.isatty(),
        gen_kwargs=gen_kwargs or None, sample_ids=args.samples, fewshot_seed=fewshot_seed,
        predict_only=args.predict_only, apply_chat_template=args.apply_chat_template,
        system_instruction=args.system_instruction,
        image_ablation=args.image_ablation,
    )
    if result.results:  # empty on the helper processes of a data-parallel run
        print_summary(Results.from_dict(result.results), result.run_dir)
    return 0


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]])
        parser = OneLineParser(prog=f"run_bench.py {argv[0]}",
                                         description=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(parser)
        return int(module.run(parser.parse_args(argv[1:])))
    args = build_parser().parse_args(argv)
    if args.list_tasks:
        return list_tasks(args.include_path)
    if args.list_models:
        return list_models(args.include_path)
    if args.list_judges:
        return list_judges()
    return run_benchmark(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``run_bench.py`` and the ``vlm-morality-bench`` console script."""
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except BenchError as exc:
        print(terminal_text("error: " + " ".join((scrub(str(exc)) or "").split())),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
