"""A fixed run gives the same samples.jsonl, results.json and leaderboard rows as the stored run.

The stored run (tests/data/golden_run/), with two image-ablated runs beside it, was written by
main's harness before the run-folder refactor (issue 10) was merged with it; a refactor that
changes any byte of what a run writes, apart from dates, versions and the temporary folder's
path, fails here. Regenerate on purpose only, with
``PYTHONPATH=. python tests/run/test_golden_run.py`` (and say why in the commit).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from harness.paths import PROJECT_ROOT, TASKS_DIR
from tests.conftest import build_dataset

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_run"
#: Fields that differ from one day or machine (or invocation: stage timing) to the next.
VOLATILE = {"created", "versions", "git_sha", "date", "timing"}


def produce(folder: Path) -> dict[str, Any]:
    """Run the fixed command in ``folder``; the run's files with volatile fields taken out."""
    from harness.run.evaluate import evaluate

    # Dataset paths relative to the YAML (or the project): task hashes, hence the run's
    # name, must not depend on where the temporary folder is.
    build_dataset(folder / "mini")
    include = folder / "tasks"
    include.mkdir()
    for name in ("morality_0shot", "morality_1shot_mc", "morality_fewshot"):
        (include / f"{name}.yaml").write_text(
            f"include: {next(TASKS_DIR.rglob(f'{name}.yaml'))}\ntask: {name}\n"
            "dataset_path: ../mini\n")
    (include / "ethics_cm.yaml").write_text(
        f"include: {TASKS_DIR / 'ethics' / 'ethics_cm.yaml'}\ntask: ethics_cm\n"
        "dataset_path: tests/data/ethics_cm\n")
    (include / "morality_filtered.yaml").write_text(
        f"include: {TASKS_DIR / 'morality' / 'morality_0shot.yaml'}\ntask: morality_filtered\n"
        "dataset_path: ../mini\n"
        "filter_list: [{name: yesno, filter: [{function: regex, regex_pattern: '(Yes|No)'},"
        " {function: lowercase}]}]\n")
    result = evaluate("random", ["morality_0shot", "morality_1shot_mc", "morality_fewshot",
                                 "ethics_cm", "morality_filtered"],
                      repeats=2, seed=7, output_dir=folder / "output", include_paths=[include],
                      use_cache=False)
    run_dir = result.run_dir
    # Image ablations: another item's image (demonstrations' too) and a description instead.
    ablated = {ablation: evaluate("random", tasks, repeats=1, seed=7, output_dir=folder / "output",
                                  include_paths=[include], use_cache=False,
                                  image_ablation=ablation).run_dir
               for ablation, tasks in (("shuffle", ["morality_0shot", "morality_1shot_mc",
                                                    "morality_fewshot"]),
                                       ("describe", ["morality_fewshot"]))}
    return {
        "samples": [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()],
        "samples_bytes": (run_dir / "samples.jsonl").read_text(encoding="utf-8"),
        "results": _stable(json.loads((run_dir / "results.json").read_text())),
        **{f"{ablation}_{name}": _stable(json.loads((path / f"{name}.json").read_text()))
           if name == "results" else (path / f"{name}.jsonl").read_text(encoding="utf-8")
           for ablation, path in ablated.items() for name in ("samples", "results")},
        "leaderboard": [_stable(json.loads(line)) for line in
                        (folder / "output" / "leaderboard.jsonl").read_text().splitlines()],
        "journal": sorted((run_dir / "responses.jsonl").read_text().splitlines()),
    }


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _relative(text: str, folder: Path) -> str:
    return text.replace(str(folder.resolve()), "<tmp>").replace(str(folder), "<tmp>").replace(
        str(PROJECT_ROOT), "<root>")


def _dump(files: dict[str, Any], folder: Path) -> dict[str, str]:
    """Each file as stored text; ``samples_bytes`` (the samples.jsonl file itself) as it is."""
    return {name: _relative(value if isinstance(value, str) else
                            json.dumps(value, indent=1, ensure_ascii=False), folder)
            for name, value in files.items()}


def test_a_fixed_run_writes_what_it_wrote_before(tmp_path: Path) -> None:
    produced = _dump(produce(tmp_path), tmp_path)
    for name, text in produced.items():
        stored = (GOLDEN / f"{name}.json").read_text(encoding="utf-8")
        assert text + "\n" == stored, f"{name} differs from tests/data/golden_run/{name}.json"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, content in _dump(produce(Path(tmp)), Path(tmp)).items():
            (GOLDEN / f"{file_name}.json").write_text(content + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
