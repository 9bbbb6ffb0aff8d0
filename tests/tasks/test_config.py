"""The task YAML loader: include, groups, tags, !function, safe YAML and each error."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BenchError
from harness.tasks.config import TaskConfig, build_task_config
from harness.tasks.index import TaskIndex
from harness.tasks.yaml_io import resolve_includes

BASE = "dataset_path: some/data\ntest_split: test\ndoc_to_text: 'Q: {{question}}'\ndoc_to_target: answer\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_include_merges_recursively_and_later_keys_win(tmp_path: Path) -> None:
    write(tmp_path, "_base.yaml", BASE + "repeats: 2\ngeneration_kwargs: {temperature: 0.1}\n")
    write(tmp_path, "_mid.yaml", "include: _base.yaml\nrepeats: 3\n")
    leaf = write(tmp_path, "leaf.yaml", "include: _mid.yaml\ntask: leaf\ndoc_to_text: 'X {{q}}'\n")
    config = build_task_config(resolve_includes(leaf), leaf)
    assert config.repeats == 3
    assert config.doc_to_text == "X {{q}}"
    assert config.generation_kwargs == {"temperature": 0.1}
    assert config.dataset_path == "some/data"


def test_include_cycle_is_named(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "include: b.yaml\ntask: a\n")
    write(tmp_path, "b.yaml", "include: a.yaml\n")
    with pytest.raises(BenchError, match=r"include cycle a.yaml -> b.yaml -> a.yaml"):
        resolve_includes(tmp_path / "a.yaml")


def test_missing_include_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "include: nothere.yaml\ntask: a\n")
    with pytest.raises(BenchError, match=r"a.yaml:include: 'nothere.yaml' not found"):
        resolve_includes(path)


def test_unknown_key_gives_file_key_and_suggestion(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", BASE + "task: t\ndoc_to_txt: hi\n")
    with pytest.raises(BenchError, match=r"t.yaml:doc_to_txt: unknown task key. Did you mean 'doc_to_text'"):
        TaskIndex([tmp_path], builtin=False).load("t")


def test_unknown_generation_setting_is_suggested(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", BASE + "task: t\ngeneration_kwargs: {max_new_token: 4}\n")
    with pytest.raises(BenchError, match=r"generation_kwargs.max_new_token.*'max_new_tokens'"):
        TaskIndex([tmp_path], builtin=False).load("t")


def test_bad_output_type(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", BASE + "task: t\noutput_type: multiple_choise\n")
    with pytest.raises(BenchError, match=r"t.yaml:output_type: .*Did you mean 'multiple_choice'"):
        TaskIndex([tmp_path], builtin=False).load("t")


def test_multiple_choice_needs_choices(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", BASE + "task: t\noutput_type: multiple_choice\n")
    with pytest.raises(BenchError, match=r"t.yaml:doc_to_choice"):
        TaskIndex([tmp_path], builtin=False).load("t")


def test_malformed_yaml_reports_line(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", "task: t\ndoc_to_text: [unclosed\nx: 1\n")
    with pytest.raises(BenchError, match=r"t.yaml:\d+: not valid YAML"):
        TaskIndex([tmp_path], builtin=False).load("t")  # skipped when indexed, named when asked for


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", "task: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(BenchError, match="not valid YAML"):
        TaskIndex([tmp_path], builtin=False).load("t")


def test_function_resolves_beside_the_yaml_where_it_is_written(tmp_path: Path) -> None:
    write(tmp_path, "lib/helpers.py", "def shout(doc):\n    return doc['q'].upper()\n")
    write(tmp_path, "lib/_base.yaml", BASE + "doc_to_text: !function helpers.shout\n")
    leaf = write(tmp_path, "tasks/leaf.yaml", "include: ../lib/_base.yaml\ntask: leaf\n")
    config = build_task_config(resolve_includes(leaf), leaf)
    assert config.doc_to_text.load("here")({"q": "hi"}) == "HI"


@pytest.mark.parametrize("spec", ["../evil.fn", "os.path.join", "sub/dir.fn", "nodot"])
def test_function_outside_the_yaml_folder_is_refused(tmp_path: Path, spec: str) -> None:
    path = write(tmp_path, "t.yaml", BASE + f"task: t\nprocess_docs: !function {spec}\n")
    config = build_task_config(resolve_includes(path), path)
    with pytest.raises(BenchError, match="!function"):
        config.process_docs.load("t.yaml:process_docs")


def test_function_name_typo_is_suggested(tmp_path: Path) -> None:
    write(tmp_path, "utils.py", "def process(docs):\n    return docs\n")
    path = write(tmp_path, "t.yaml", BASE + "task: t\nprocess_docs: !function utils.proces\n")
    config = build_task_config(resolve_includes(path), path)
    with pytest.raises(BenchError, match="Did you mean 'process'"):
        config.process_docs.load("x")


def test_groups_tags_and_legacy_group_key(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", BASE + "task: a\ntag: [mine]\n")
    write(tmp_path, "b.yaml", BASE + "task: b\ngroup: old_style\n")  # lm-eval < 0.4.2 spelling
    write(tmp_path, "g.yaml", "group: both\ntask: [a, b, a]\n")
    write(tmp_path, "gg.yaml", "group: nested\ntask: [both, mine]\n")
    index = TaskIndex([tmp_path], builtin=False)
    assert index.expand(["both"]) == ["a", "b"]
    assert index.expand(["mine"]) == ["a"]
    assert index.expand(["old_style"]) == ["b"]
    assert index.expand(["nested"]) == ["a", "b"]


def test_group_with_unknown_member_suggests(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", BASE + "task: alpha\n")
    write(tmp_path, "g.yaml", "group: g\ntask: [alpah]\n")
    with pytest.raises(BenchError, match="unknown task 'alpah'. Did you mean 'alpha'"):
        TaskIndex([tmp_path], builtin=False).expand(["g"])


def test_builtin_tasks_and_group() -> None:
    index = TaskIndex()
    assert index.expand(["morality"]) == ["morality_0shot", "morality_1shot", "morality_2shot"]
    for shots in (0, 1, 2):
        for suffix in ("", "_train", "_mc"):
            config = index.load(f"morality_{shots}shot{suffix}")
            assert config.doc_to_text == f"{{{{prompt_{shots}shot}}}}"
            assert dict(config.generation_kwargs) == {"max_new_tokens": 15, "temperature": 0.7, "until": [],
                                                       "top_k": 0}
    assert index.load("morality_0shot_train").eval_split == "train"
    assert index.load("morality_0shot").eval_split == "test"
    assert index.load("morality_1shot_mc").output_type == "multiple_choice"
    assert index.load("morality_fewshot").num_fewshot == 2
    assert index.load("ethics_cm").dataset_name == "commonsense"
    assert index.load("ethics_cm").dataset_path == "EleutherAI/hendrycks_ethics"  # as lm-eval
    assert index.expand(["ethics"]) == ["ethics_cm", "ethics_cm_qa"]


def test_unknown_task_suggests() -> None:
    with pytest.raises(BenchError, match="unknown task 'moralty'. Did you mean 'morality'"):
        TaskIndex().expand(["moralty"])


def test_include_path_overrides_builtin(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", BASE + "task: morality_0shot\n")
    assert TaskIndex([tmp_path]).load("morality_0shot").dataset_path == "some/data"


def test_include_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="--include-path"):
        TaskIndex([tmp_path / "missing"])


def test_lm_eval_user_yaml_loads(tmp_path: Path) -> None:
    """A task written for lm-eval (its keys and spellings) loads unchanged."""
    write(tmp_path, "utils.py", "def process_docs(dataset):\n    return dataset\n")
    write(tmp_path, "boolq_like.yaml", """
task: boolq_like
dataset_path: super_glue
dataset_name: boolq
output_type: multiple_choice
training_split: train
validation_split: validation
process_docs: !function utils.process_docs
doc_to_text: "{{passage}}\\nQuestion: {{question}}?\\nAnswer:"
doc_to_target: label
doc_to_choice: ["no", "yes"]
should_decontaminate: true
doc_to_decontamination_query: passage
num_fewshot: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
filter_list:
  - name: first
    filter:
      - function: take_first
metadata:
  version: 2.0
""")
    with pytest.warns(UserWarning, match="should_decontaminate"):
        config = TaskIndex([tmp_path], builtin=False).load("boolq_like")
    assert config.eval_split == "validation"
    assert config.doc_to_choice == ["no", "yes"]


def test_fewshot_needs_a_split(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", BASE + "task: t\nnum_fewshot: 2\n")
    with pytest.raises(BenchError, match="t.yaml:fewshot_split"):
        TaskIndex([tmp_path], builtin=False).load("t")


def test_bad_sampler_suggests(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", BASE + "task: t\nfewshot_split: train\nfewshot_config: {sampler: frist_n}\n")
    with pytest.raises(BenchError, match="Did you mean 'first_n'"):
        TaskIndex([tmp_path], builtin=False).load("t")


def test_import_datasets_gets_the_library() -> None:
    import datasets

    assert hasattr(datasets, "load_dataset")


def test_a_recorded_config_rebuilds_to_the_same_config() -> None:
    """score rebuilds a run's tasks from results.json: to_dict then from_dict changes nothing."""
    index = TaskIndex()
    names = index.expand(["morality", "ethics_cm", "morality_fewshot", "morality_0shot_mc"])
    for name in names:
        config = index.load(name)
        rebuilt = TaskConfig.from_dict(config.to_dict(), config.function_dirs())
        assert rebuilt == config, name
        assert rebuilt.config_hash() == config.config_hash()


def test_unknown_key_is_blamed_on_the_file_that_holds_it(tmp_path: Path) -> None:
    template = write(tmp_path, "_template_yaml", BASE + "shoud_decontaminate: true\n")
    write(tmp_path, "_mid.yaml", "include: _template_yaml\noutput_type: generate_until\n")
    leaf = write(tmp_path, "leaf.yaml", "include: _mid.yaml\ntask: leaf\n")
    sources: dict[str, str] = {}
    raw = resolve_includes(leaf, sources=sources)
    assert sources["shoud_decontaminate"] == str(template.resolve())
    assert sources["output_type"] == str((tmp_path / "_mid.yaml").resolve())
    assert "task" not in sources  # the task file's own key
    with pytest.raises(BenchError, match=rf"^{template.resolve()}:shoud_decontaminate: unknown task key"):
        build_task_config(raw, leaf, sources)
    # Through the index too, which is how a run loads a task.
    with pytest.raises(BenchError, match=r"_template_yaml:shoud_decontaminate"):
        TaskIndex([tmp_path], builtin=False).load("leaf")


@pytest.mark.parametrize(("key", "suggestion"), [
    ("doc_to_txt", " Did you mean 'doc_to_text'?"), ("num_fewshots", " Did you mean 'num_fewshot'?"),
    ("doc_to_audio", ""), ("process_result", " Did you mean 'process_results'?"),
    ("custom_dataset", ""), ("class", "")])
def test_close_match_suggestions_only_for_near_misses(tmp_path: Path, key: str, suggestion: str) -> None:
    leaf = write(tmp_path, "leaf.yaml", BASE + f"task: leaf\n{key}: x\n")
    with pytest.raises(BenchError) as error:
        build_task_config(resolve_includes(leaf), leaf)
    assert str(error.value) == f"{leaf}:{key}: unknown task key.{suggestion}"
