"""The bad-input catalogue: each mistake is one line through the CLI, exit 2, no traceback,
and no leaderboard row (so a failed run never half-lands on the leaderboard)."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.paths import TASKS_DIR
from tests.conftest import build_dataset

ZERO_SHOT_YAML = next(TASKS_DIR.rglob("morality_0shot.yaml"))


class Bench:
    """A tiny task over a dataset the test may break, and a way to run the CLI on it."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.capsys = capsys
        self.dataset = build_dataset(root / "data")
        self.tasks = root / "tasks"
        self.tasks.mkdir()
        self.out = root / "out"
        self.write_task()

    def write_task(self, extra: str = "", name: str = "tiny") -> Path:
        path = self.tasks / f"{name}.yaml"
        path.write_text(f"include: {ZERO_SHOT_YAML}\ntask: {name}\n"
                        f"dataset_path: {self.dataset}\n{extra}")
        return path

    def items(self, split: str = "test") -> list[dict]:
        return [json.loads(x) for x in (self.dataset / f"{split}.jsonl").read_text().splitlines()]

    def write_items(self, items: list[dict], split: str = "test") -> None:
        (self.dataset / f"{split}.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))

    def fails(self, *argv: str, match: str, model: str = "always-yes", tasks: str = "tiny") -> str:
        """Run the CLI, expect a one-line error matching ``match``; return the line."""
        self.capsys.readouterr()
        args = ["--model", model, "--tasks", tasks, "--include-path", str(self.tasks),
                "--output-dir", str(self.out), "--no-cache", *argv]
        code = main(args)
        err = self.capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, err
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ") and "Traceback" not in err
        assert _search(match, lines[0]), lines[0]
        assert not (self.out / "leaderboard.jsonl").exists() or \
            (self.out / "leaderboard.jsonl").read_text() == ""
        return lines[0]


def _search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


@pytest.fixture()
def bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Bench:
    return Bench(tmp_path, capsys)


def test_the_fixture_task_runs(bench: Bench) -> None:
    # The baseline the catalogue breaks: unbroken, the same command succeeds.
    assert main(["--model", "always-yes", "--tasks", "tiny", "--include-path", str(bench.tasks),
                 "--output-dir", str(bench.out), "--no-cache"]) == 0
    assert (bench.out / "leaderboard.jsonl").read_text().count("\n") == 1


def test_missing_image(bench: Bench) -> None:
    items = bench.items()
    items[1]["image"] = "images/nowhere.png"
    bench.write_items(items)
    bench.fails(match=r"item mini-007: image file .*nowhere\.png not found")


def test_corrupt_image(bench: Bench) -> None:
    path = bench.dataset / "images" / "scene_3.png"
    path.write_bytes(path.read_bytes()[:40])  # a PNG cut short
    bench.fails(match=r"scene_3\.png is damaged .*; replace it")


def test_unknown_image_format(bench: Bench) -> None:
    (bench.dataset / "images" / "scene.xyz").write_bytes(b"\x00\x01not an image at all" * 10)
    items = bench.items()
    items[0]["image"] = "images/scene.xyz"
    bench.write_items(items)
    bench.fails(match=r"scene\.xyz is not an image in a known format")


def test_empty_dataset(bench: Bench) -> None:
    bench.write_items([])
    bench.fails(match=r"\(test\): the split is empty; add items")


def test_duplicate_item_ids(bench: Bench) -> None:
    items = bench.items()
    items[2]["id"] = items[0]["id"]
    bench.write_items(items)
    bench.fails(match=f"duplicate item id '{items[0]['id']}'")


def test_template_references_a_missing_field(bench: Bench) -> None:
    bench.write_task('doc_to_text: "Q: {{ questoin }}\\nA:"\n')
    bench.fails(match=r"questoin")


def test_unknown_task(bench: Bench) -> None:
    bench.fails(tasks="tinny", match=r"unknown task 'tinny'\. Did you mean 'tiny'")


def test_unknown_model(bench: Bench) -> None:
    bench.fails(model="always-yse", match=r"unknown model 'always-yse'\. Did you mean 'always-yes'")


def test_unknown_judge(bench: Bench) -> None:
    bench.fails("--judges", "refrence", match=r"unknown judge 'refrence'\. Did you mean 'reference'")


def test_unknown_yaml_key(bench: Bench) -> None:
    bench.write_task("num_fewshots: 1\n")
    bench.fails(match=r"tiny\.yaml:num_fewshots: unknown task key\. Did you mean 'num_fewshot'")


def test_malformed_yaml(bench: Bench) -> None:
    bench.write_task("generation_kwargs: {max_new_tokens: 5\n")
    bench.fails(match=r"tiny\.yaml.*not valid YAML")


def test_include_cycle(bench: Bench) -> None:
    (bench.tasks / "a.yaml").write_text("include: b.yaml\ntask: a\n")
    (bench.tasks / "b.yaml").write_text("include: a.yaml\n")
    bench.fails(tasks="a", match=r"include cycle")


@pytest.mark.parametrize("model_args,match", [
    ("temperature=1", r"temperature"),
    ("novalue", r"--model-args"),
])
def test_bad_model_args(bench: Bench, model_args: str, match: str) -> None:
    bench.fails("--model-args", model_args, match=match)


def test_output_dir_is_a_file(bench: Bench) -> None:
    blocker = bench.root / "blocker"
    blocker.write_text("")
    bench.out = blocker / "out"
    bench.fails(match=r"--output-dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_output_dir_without_write_permission(bench: Bench) -> None:
    bench.out.mkdir()
    bench.out.chmod(0o500)
    try:
        bench.fails(match=r"--output-dir")
    finally:
        bench.out.chmod(0o700)


def _raise_on(target: Callable[..., object], code: int,
              when: Callable[..., bool]) -> Callable[..., object]:
    def wrapper(*args: object, **kwargs: object) -> object:
        if when(*args, **kwargs):
            raise OSError(code, os.strerror(code))
        return target(*args, **kwargs)

    return wrapper


def test_output_dir_permission_denied_simulated(bench: Bench,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Works under root too: folder creation under the output folder fails with EACCES.
    out = str(bench.out)
    monkeypatch.setattr(Path, "mkdir", _raise_on(Path.mkdir, errno.EACCES,
                                                 lambda self, *a, **k: str(self).startswith(out)))
    bench.fails(match=r"(Permission denied).*--output-dir")


class FullDisk:
    """A file opened on a full disk: writes are buffered, flushing fails with ENOSPC."""

    def __init__(self, handle: object) -> None:
        self._handle = handle

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> object:
        return getattr(self._handle, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()  # type: ignore[attr-defined]


def test_disk_full_while_journaling(bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    def open_on_full_disk(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        handle = real_open(self, mode, *args, **kwargs)
        return FullDisk(handle) if self.name == "responses.jsonl" and "a" in mode else handle

    monkeypatch.setattr(Path, "open", open_on_full_disk)
    bench.fails(match=r"responses\.jsonl: No space left on device.*free disk space")


def test_disk_full_while_writing_the_report(bench: Bench,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The journal succeeds; writing samples.jsonl / results.json then fails.
    import harness.files

    real_replace = os.replace
    monkeypatch.setattr(harness.files.os, "replace",
                        _raise_on(real_replace, errno.ENOSPC, lambda *a: True))
    bench.fails(match=r"No space left on device")
    runs = list((bench.out / "runs").iterdir())
    assert not any((run / "results.json").exists() for run in runs)


@pytest.mark.parametrize("flag,value,match", [
    ("--batch-size", "0", r"--batch-size must be at least 1"),
    ("--repeats", "0", r"--repeats must be at least 1"),
    ("--limit", "0", r"--limit must be positive"),
])
def test_bad_numbers(bench: Bench, flag: str, value: str, match: str) -> None:
    bench.fails(flag, value, match=match)


def test_missing_include_path(bench: Bench) -> None:
    bench.tasks = bench.root / "no-such-folder"
    bench.fails(match=r"--include-path")


def test_dataset_path_that_does_not_exist(bench: Bench) -> None:
    bench.write_task().write_text(f"include: {ZERO_SHOT_YAML}\ntask: tiny\n"
                                  f"dataset_path: {bench.root / 'nope'}\n")
    bench.fails(match=r"nope")


def test_more_shots_than_the_pool_holds(bench: Bench) -> None:
    fewshot = next(TASKS_DIR.rglob("morality_fewshot.yaml"))
    (bench.tasks / "few.yaml").write_text(f"include: {fewshot}\ntask: few\n"
                                          f"dataset_path: {bench.dataset}\n")
    bench.fails("--num-fewshot", "50", tasks="few", match=r"50")


def test_checkpoint_that_is_not_a_checkpoint(bench: Bench) -> None:
    pytest.importorskip("harness.models.magma.adapter")
    import torch

    path = bench.root / "magma.pt"
    torch.save({"lm.transformer.wte.weight": torch.zeros(8, 4)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # a download cut short
    bench.fails("--model-args", f"checkpoint={path}", model="magma",
                match=r"magma\.pt is damaged or truncated.*download it again")


@pytest.mark.parametrize("content,match", [
    (b"model weights: see the hub\n", r"notes\.pt is not a torch checkpoint \(neither a zip"),
    (None, r"is a folder; pass the checkpoint file in it"),
])
def test_magma_checkpoint_that_is_a_text_file_or_a_folder(bench: Bench, content: bytes | None,
                                                          match: str) -> None:
    pytest.importorskip("harness.models.magma.adapter")
    path = bench.root / "notes.pt"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    bench.fails("--model-args", f"checkpoint={path}", model="magma", match=match)


@pytest.mark.parametrize("argv,match", [
    (("--batch-size", "x"), r"argument --batch-size/--batch_size: 'x' is not a number or 'auto'; see run_bench\.py -h"),
    (("--bogus-flag",), r"unrecognized arguments: --bogus-flag"),
    (("--num-fewshot", "-1"), r"--num-fewshot must be 0 or more, got -1"),
])
def test_usage_mistakes_are_one_line(bench: Bench, argv: tuple[str, ...], match: str) -> None:
    bench.fails(*argv, match=match)


def test_subcommand_usage_mistake_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", "--format", "pdf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: argument --format: invalid choice: 'pdf'")
    assert err[0].endswith("see run_bench.py leaderboard -h")


def test_dataset_line_that_is_not_json(bench: Bench) -> None:
    with (bench.dataset / "test.jsonl").open("a") as handle:
        handle.write('{"id": "mini-099", broken\n')
    bench.fails(match=r"test\.jsonl:7: not valid JSON \(.*\); fix the line")


def test_task_yaml_that_is_not_text(bench: Bench) -> None:
    (bench.tasks / "tiny.yaml").write_bytes(b"\xff\xfe\x00task: tiny\n")
    bench.fails(match=r"tiny\.yaml: not UTF-8 text \(byte 0\); save the YAML as UTF-8")


def test_image_path_that_is_a_folder(bench: Bench) -> None:
    (bench.dataset / "images" / "folder.png").mkdir()
    items = bench.items()
    items[0]["image"] = "images/folder.png"
    bench.write_items(items)
    bench.fails(match=r"folder\.png is damaged .*Is a directory.*; replace it")


@pytest.mark.parametrize("make,match", [
    (lambda root: root / "no-such-model", r"hf: no folder .*no-such-model; pass --model-args"),
    (lambda root: root, r"hf: cannot load '.*': .*Check the hub id or folder"),
])
def test_hf_model_folder_that_is_not_a_model(bench: Bench, make: Callable[[Path], Path],
                                             match: str) -> None:
    pytest.importorskip("harness.models.hf")
    empty = bench.root / "empty-model"
    empty.mkdir()
    bench.fails("--model-args", f"pretrained={make(empty)}", model="hf", match=match)


# -- from untrusted hands (issue 12): task files, datasets, numbers, names -------------------
# Each case below failed on the red-team pass (a traceback, code run, or silent acceptance);
# each is now one line, exit 2, no leaderboard row. Output escaping and secret scrubbing,
# which are not errors, are in tests/test_safety.py; run folders in tests/commands/test_scoring.py.

def test_template_that_reaches_for_code_is_refused(bench: Bench) -> None:
    owned = bench.root / "owned.txt"
    bench.write_task(f"doc_to_text: \"{{{{ cycler.__init__.__globals__.os.popen('id > {owned}')"
                     ".read() }}\"\n")
    bench.fails(match=r"tiny\.yaml:doc_to_text: template refused by the sandbox \(.*\); "
                      r"templates may only read")
    assert not owned.exists()


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ question.__class__ }}",
    "{% set x = [] %}{{ x.append(1) }}{{ question }}",  # the immutable sandbox: no mutation
])
def test_other_sandbox_escapes_are_refused(bench: Bench, template: str) -> None:
    bench.write_task(f"doc_to_text: \"{template}\"\n")
    bench.fails(match=r"tiny\.yaml:doc_to_text: template refused by the sandbox")


@pytest.mark.parametrize("settings,match", [
    ("temperature: .nan", r"generation_kwargs\.temperature: must be a finite number, got nan"),
    ("top_p: -3", r"generation_kwargs\.top_p: must be greater than 0, got -3"),
    ("top_p: .inf", r"generation_kwargs\.top_p: must be a finite number, got inf"),
    ("top_p: 1.5", r"generation_kwargs\.top_p: must be at most 1, got 1\.5"),
    ("max_new_tokens: 2.9", r"generation_kwargs\.max_new_tokens: must be an integer, got 2\.9"),
    ("max_gen_toks: abc", r"generation_kwargs\.max_gen_toks: must be an integer, got 'abc'"),
    ("temperature: -1", r"generation_kwargs\.temperature: must be at least 0, got -1"),
])
def test_generation_numbers_are_finite_and_in_range(bench: Bench, settings: str,
                                                    match: str) -> None:
    bench.write_task(f"generation_kwargs: {{{settings}}}\n")
    bench.fails(match=match)


def test_yaml_alias_bomb_is_refused_at_once(bench: Bench) -> None:
    # 533 bytes that expand to 9**9 strings: it took 65 s and 2.6 GB, then a MemoryError.
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"  {level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]\n"
    bomb = bomb.replace("a: &a", "  a: &a")
    bench.write_task("metadata:\n" + bomb)
    bench.fails(match=r"tiny\.yaml:\d+: YAML aliases \(\*a\) are not allowed in task files")


def test_include_of_a_huge_file_is_not_read(bench: Bench) -> None:
    huge = bench.tasks / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(300_000_000)  # sparse: 300 MB to stat, nothing on disk
    (bench.tasks / "tiny.yaml").write_text("include: huge.yaml\ntask: tiny\n")
    bench.fails(match=r"huge\.yaml: 300000000 bytes, more than the 1000000 a task YAML may have")


def test_function_through_a_symlink_out_of_the_folder_is_refused(bench: Bench) -> None:
    outside = bench.root / "elsewhere"
    outside.mkdir()
    marker = bench.root / "ran.txt"
    (outside / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\ndef docs(d):\n    return d\n")
    (bench.tasks / "helpers.py").symlink_to(outside / "evil.py")
    bench.write_task("process_docs: !function helpers.docs\n")
    bench.fails(match=r"tiny\.yaml:process_docs: !function file .*helpers\.py resolves to "
                      r".*elsewhere/evil\.py, outside .*tasks; keep it inside its folder")
    assert not marker.exists()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (no pixel data is needed to fail)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("size,match", [
    ((30000, 30000), r"item mini-006: image file .*bomb\.png has more pixels than the 40 "
                     r"million allowed; shrink it"),
    ((12000, 12000), r"item mini-006: image file .*bomb\.png is 12000x12000 \(144 megapixels\), "
                     r"more than the 40 allowed; shrink it"),
])
def test_huge_images_are_refused_before_decoding(bench: Bench, size: tuple[int, int],
                                                 match: str) -> None:
    (bench.dataset / "images" / "bomb.png").write_bytes(_png_header(*size))
    items = bench.items()
    items[0]["image"] = "images/bomb.png"
    bench.write_items(items)
    bench.fails(match=match)


def test_image_column_holding_a_number(bench: Bench) -> None:
    items = bench.items()
    for item in items:
        item["image"] = 5
    bench.write_items(items)
    bench.fails(match=r"item mini-006: 'image' must be a file path inside .*, got 5; fix the item")


def test_image_path_outside_the_dataset_folder(bench: Bench) -> None:
    from PIL import Image

    secret = bench.root / "private.png"
    Image.new("RGB", (4, 4)).save(secret)
    items = bench.items()
    items[0]["image"] = str(secret)
    bench.write_items(items)
    bench.fails(match=r"item mini-006: image file .*private\.png resolves to .*, outside "
                      r".*data; keep it inside its folder")


@pytest.mark.parametrize("value,match", [
    ("nan", r"argument --limit: 'nan' is not a finite number"),
    ("inf", r"argument --limit: 'inf' is not a finite number"),
    ("1e400", r"argument --limit: '1e400' is not a finite number"),
    ("0.0000001", r"--limit 1e-07 selects none of the 6 items of task 'tiny'; raise it"),
])
def test_limit_that_is_not_finite_or_selects_nothing(bench: Bench, value: str, match: str) -> None:
    bench.fails("--limit", value, match=match)


@pytest.mark.parametrize("model_args,match", [
    ("tiny_seed=abc", r"model 'magma': tiny_seed: must be an integer, got 'abc'"),
    ("batch_size=abc", r"model 'magma': batch_size: must be an integer, got 'abc'"),
    ("top_p=abc", r"model 'magma': top_p: must be a number, got 'abc'"),
    ("top_p=nan", r"model 'magma': top_p: must be a finite number, got nan"),
    ("batch_size=0", r"model 'magma': batch_size: must be at least 1, got 0"),
])
def test_magma_arguments_are_checked(bench: Bench, model_args: str, match: str) -> None:
    pytest.importorskip("harness.models.magma.adapter")
    bench.fails("--model-args", model_args, model="magma", match=match)


@pytest.mark.parametrize("model_args,match", [
    ("base_url=http://127.0.0.1:9/v1,api_key_env=none",
     r"model 'openai' needs the argument 'model': pass --model-args model=\.\.\."),
    ("model=m,base_url=notaurl,api_key_env=none",
     r"openai: base_url 'notaurl' is not an http\(s\) URL"),
    ("model=m,base_url=http://127.0.0.1:9/v1,api_key_env=none,max_concurrency=inf",
     r"model 'openai': max_concurrency: must be an integer, got inf"),
])
def test_openai_arguments_are_checked(bench: Bench, model_args: str, match: str) -> None:
    bench.fails("--model-args", model_args, model="openai", match=match)


def test_api_key_with_a_newline_inside_is_one_line_that_does_not_show_it(
        bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMB_BAD_KEY", "sk-live-abc\ndef123456")
    line = bench.fails("--model-args", "model=m,base_url=http://127.0.0.1:9/v1,"
                       "api_key_env=VMB_BAD_KEY", model="openai",
                       match=r"openai: the API key in VMB_BAD_KEY has a space, a control "
                             r"character or a non-ASCII character at position 12")
    assert "abc" not in line and "def123" not in line


def test_misspelt_judge_model_is_caught_before_generation(bench: Bench) -> None:
    bench.fails("--judges", "vlm-judge", "--judge-args", "vlm-judge.model=nonexistent-model",
                match=r"unknown judge model 'nonexistent-model'\..*--list-models")
    assert not (bench.out / "runs").exists()  # nothing generated, nothing half-written


def test_judge_numbers_are_checked(bench: Bench) -> None:
    bench.fails("--judges", "vlm-judge", "--judge-args",
                "vlm-judge.model=always-yes,vlm-judge.max_new_tokens=2.9",
                match=r"judge 'vlm-judge': max_new_tokens: must be an integer, got 2\.9")


def test_rubric_that_reaches_for_code_is_refused(bench: Bench) -> None:
    rubric = bench.root / "evil.jinja"
    rubric.write_text("{{ boundary }}{{ response.__class__.__mro__ }}{{ boundary }}\n")
    bench.fails("--judges", "vlm-judge", "--judge-args",
                f"vlm-judge.model=always-yes,vlm-judge.rubric={rubric}",
                match=r"evil\.jinja: template refused by the sandbox")


def test_disk_full_reports_the_first_error_not_the_close_one(
        bench: Bench, monkeypatch: pytest.MonkeyPatch) -> None:
    # /dev/full fails the flush *and* the close: the close's error must not hide the first.
    real_open = Path.open

    def open_on_full_disk(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if self.name == "responses.jsonl" and "a" in mode:
            return real_open(Path("/dev/full"), "w", *args, **kwargs)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_on_full_disk)
    bench.fails(match=r"cannot write \S+: No space left on device; free disk space")


def test_a_second_copy_of_a_running_command_says_so(bench: Bench) -> None:
    from filelock import FileLock

    assert main(["--model", "always-yes", "--tasks", "tiny", "--include-path", str(bench.tasks),
                 "--output-dir", str(bench.out), "--no-cache"]) == 0
    (run_dir,) = list((bench.out / "runs").iterdir())
    (bench.out / "leaderboard.jsonl").unlink()
    with FileLock(str(run_dir / ".lock")):  # as if the first copy were still generating
        bench.fails(match=r"runs/always-yes-\w+ is being written by another process \(the same "
                          r"command is running\); wait for it to finish")


def test_broken_yaml_is_reported_by_its_own_task_only(bench: Bench,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (bench.tasks / "broken.yaml").write_text("task: broken\ndoc_to_text: [unclosed\n")
    assert main(["--list-tasks", "--include-path", str(bench.tasks)]) == 0
    captured = capsys.readouterr()
    assert "  tiny\n" in captured.out and "  morality_0shot\n" in captured.out
    (warning,) = captured.err.strip().splitlines()
    assert warning.startswith("warning: ") and "broken.yaml:3: not valid YAML" in warning
    assert warning.endswith("; skipped")
    # A run of another task goes ahead; a run of the broken one gets its error.
    assert main(["--model", "always-yes", "--tasks", "tiny", "--include-path", str(bench.tasks),
                 "--output-dir", str(bench.out), "--no-cache", "--no-progress"]) == 0
    (bench.out / "leaderboard.jsonl").unlink()
    bench.fails(tasks="broken", match=r"broken\.yaml:3: not valid YAML")


def test_annotate_port_out_of_range(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", str(bench.root), "--port", "99999"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: argument --port: 99999 is not a port (0 to 65535")
