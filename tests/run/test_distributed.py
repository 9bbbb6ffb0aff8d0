"""Process sharding read from launcher environments."""

from __future__ import annotations

import pytest

from harness.errors import BenchError
from harness.run.distributed import ProcessShard, current_shard, wait_for_everyone


def test_no_launcher_means_one_process() -> None:
    shard = current_shard({})
    assert shard == ProcessShard(0, 1) and shard.is_main and not shard.distributed


@pytest.mark.parametrize("environ,expected", [
    ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}, ProcessShard(1, 2)),
    ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3"}, ProcessShard(2, 3)),
    ({"PMI_RANK": "0", "PMI_SIZE": "4"}, ProcessShard(0, 4)),
    # torchrun's variables win over MPI's when both are present.
    ({"RANK": "0", "WORLD_SIZE": "2", "PMI_RANK": "3", "PMI_SIZE": "4"}, ProcessShard(0, 2)),
])
def test_launcher_variables(environ: dict[str, str], expected: ProcessShard) -> None:
    assert current_shard(environ) == expected


@pytest.mark.parametrize("environ", [
    {"RANK": "2", "WORLD_SIZE": "2"},
    {"RANK": "-1", "WORLD_SIZE": "2"},
    {"RANK": "x", "WORLD_SIZE": "2"},
    {"RANK": "0", "WORLD_SIZE": "0"},
])
def test_inconsistent_variables_are_a_bench_error(environ: dict[str, str]) -> None:
    with pytest.raises(BenchError, match="launch through accelerate launch or torchrun"):
        current_shard(environ)


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_shards_partition_the_items_in_order(count: int) -> None:
    items = [f"task/{i}/0" for i in range(11)]
    shards = [ProcessShard(i, count).select(items) for i in range(count)]
    assert sorted(x for shard in shards for x in shard) == sorted(items)
    assert sum(len(s) for s in shards) == len(items)
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1
    assert all(s == sorted(s, key=items.index) for s in shards)


def test_waiting_alone_needs_no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # importing torch would now fail
    wait_for_everyone(ProcessShard())


def test_several_processes_without_a_meeting_point(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch.distributed")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(BenchError, match="no MASTER_ADDR"):
        wait_for_everyone(ProcessShard(0, 2))
