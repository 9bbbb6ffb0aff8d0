"""Data parallel over processes: which items this process generates, and waiting for the rest.

A launcher (``accelerate launch``, ``torchrun``, ``mpirun``) starts N copies of one command and
tells each its rank through the environment. Every copy builds the same list of items (it
depends only on the command), generates those whose position modulo N is its rank and
appends them to the run folder's one journal. Then all wait for each other, and the main
process (rank 0) reads the complete journal, judges, and writes the run folder and the
leaderboard rows once. Outputs cannot depend on N: every request carries its own seed.

This module imports torch only when there is more than one process, and knows nothing of
tasks, models or judges.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from harness.errors import BenchError

T = TypeVar("T")

#: (rank, world size) variables, in the order they are trusted: torchrun and accelerate set
#: the first pair, Open MPI and MPICH (accelerate's multi-CPU launcher) the others.
RANK_VARIABLES = (("RANK", "WORLD_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                  ("PMI_RANK", "PMI_SIZE"))
#: How long a process waits for the others to finish generating before giving up.
TIMEOUT_VARIABLE = "VMB_DISTRIBUTED_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 6 * 3600


@dataclass(frozen=True)
class ProcessShard:
    """This process's rank ``index`` among ``count`` processes."""

    index: int = 0
    count: int = 1

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @property
    def distributed(self) -> bool:
        return self.count > 1

    def take(self, items: Iterable[T]) -> Iterator[T]:
        """The items this process generates, one at a time: every ``count``-th, from ``index``."""
        return itertools.islice(items, self.index, None, self.count)

    def select(self, items: Iterable[T]) -> list[T]:
        """``take`` as a list."""
        return list(self.take(items))


def current_shard(environ: Mapping[str, str] | None = None) -> ProcessShard:
    """The shard the launcher gave this process; one process when no launcher did."""
    environ = os.environ if environ is None else environ
    for rank_name, size_name in RANK_VARIABLES:
        if size_name not in environ:
            continue
        try:
            index, count = int(environ.get(rank_name, "0")), int(environ[size_name])
        except ValueError:
            raise BenchError(f"{rank_name}={environ.get(rank_name)!r} / {size_name}="
                             f"{environ[size_name]!r} are not whole numbers; launch through "
                             "accelerate launch or torchrun") from None
        if count < 1 or not 0 <= index < count:
            raise BenchError(f"{rank_name}={index} is not a rank among {size_name}={count} "
                             "processes; launch through accelerate launch or torchrun")
        return ProcessShard(index, count)
    return ProcessShard()


def wait_for_everyone(shard: ProcessShard) -> None:
    """Block until every process has reached this point (a no-op for one process)."""
    if not shard.distributed:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise BenchError(f"{shard.count} processes but no MASTER_ADDR / MASTER_PORT to "
                             "meet at; launch through accelerate launch or torchrun")
        timeout = float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S))
        # gloo runs on any machine; a barrier needs no GPU collective.
        dist.init_process_group("gloo", rank=shard.index, world_size=shard.count,
                                timeout=timedelta(seconds=timeout))
    dist.barrier()


def finish(shard: ProcessShard) -> None:
    """Leave the process group this module joined, so processes exit cleanly."""
    if not shard.distributed:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
