"""The process group of a data-parallel run: which rank this process is, and the few collectives the runner needs.

A run is data-parallel when a launcher starts several copies of the same command and tells each
its place through the environment: `torchrun` and `accelerate launch` both set RANK, WORLD_SIZE,
LOCAL_RANK (and MASTER_ADDR / MASTER_PORT for the rendezvous). Without them, or with WORLD_SIZE=1,
nothing is initialised and every function here is a no-op: a single-process run behaves exactly as
one that never imported this module.

Backend: always gloo, on the CPU, also when the model runs on CUDA. The ranks exchange nothing but a
handful of small Python objects per task (which samples are pending, whether a rank failed), never
tensors, so NCCL would buy nothing and would add its device binding and its habit of hanging, not
failing, when a peer dies. The model's device is the adapter's business (`cuda:LOCAL_RANK` for
`--device auto`/`cuda`, see `adapters/crab/adapter.py`).

Failures: an `AVBenchError` on one rank must not leave the others waiting in a collective until the
timeout. `run_on_main` and `together` pass the error's message to every rank, which then stops with
`PeerStopped`; a rank that dies outright (a bug, a kill) breaks the gloo connections, which the
others also report as `PeerStopped` (torchrun stops the rest of the group itself as well).
"""

from __future__ import annotations

import atexit
import datetime
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

from .errors import AVBenchError

T = TypeVar("T")

#: How long a rank waits in a collective for the others, e.g. while a slower rank finishes its share of
#: a task or rank 0 scores the previous one. Generous: a dead rank is noticed at once anyway (its
#: connections close), so the limit only matters for a rank that hangs.
TIMEOUT_ENV = "AVBENCH_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 4 * 3600


class PeerStopped(AVBenchError):
    """This rank stops because another rank of the run failed (its own error names the cause)."""


@dataclass(frozen=True)
class Topology:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that merges, scores, prints and writes results."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise AVBenchError(f"environment variable {name}={raw!r} is not an integer; it is set by the launcher "
                           "(torchrun, accelerate launch): unset it for a single-process run") from None


def topology() -> Topology:
    """This process's place, from the launcher's environment variables (rank 0 of 1 without them)."""
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return Topology()
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world_size:
        raise AVBenchError(f"RANK={rank} is outside WORLD_SIZE={world_size}; start the run with torchrun or accelerate launch")
    return Topology(rank, world_size, local_rank)


def is_main() -> bool:
    return topology().is_main


def init() -> Topology:
    """Join the process group of a data-parallel run (once; later calls return at once)."""
    place = topology()
    if not place.is_distributed:
        return place
    import torch.distributed as dist

    if dist.is_initialized():
        return place
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise AVBenchError(f"WORLD_SIZE={place.world_size} but {' and '.join(missing)} not set: launch data-parallel "
                           "runs with torchrun or accelerate launch (docs/distributed.md)")
    timeout = datetime.timedelta(seconds=_env_int(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    dist.init_process_group("gloo", rank=place.rank, world_size=place.world_size, timeout=timeout)
    atexit.register(_leave)
    return place


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _collective(call: Callable[[], T]) -> T:
    """Run a collective; a broken connection (a rank died) becomes `PeerStopped`, one line for the CLI."""
    try:
        return call()
    except RuntimeError:  # gloo reports a closed peer as RuntimeError (DistBackendError is one), in many words
        raise PeerStopped(f"rank {topology().rank} stops: lost contact with the other ranks (one of them stopped; "
                          "its error says why)") from None


def barrier() -> None:
    if topology().is_distributed:
        import torch.distributed as dist

        _collective(dist.barrier)


def _broadcast_from_main(value: Any) -> Any:
    import torch.distributed as dist

    box = [value]
    _collective(lambda: dist.broadcast_object_list(box, src=0))
    return box[0]


def _gather_failures(failure: str | None) -> list[str | None]:
    """Every rank's failure message (None: it did fine), on every rank."""
    import torch.distributed as dist

    failures: list[str | None] = [None] * topology().world_size
    _collective(lambda: dist.all_gather_object(failures, failure))
    return failures


def run_on_main(fn: Callable[[], T]) -> T:
    """`fn()` on rank 0 only; every rank gets its return value (it must be small and picklable).

    When `fn` raises an `AVBenchError`, rank 0 raises it and the other ranks raise `PeerStopped`
    quoting it. Single process: just `fn()`.
    """
    place = topology()
    if not place.is_distributed:
        return fn()
    if place.is_main:
        try:
            value = fn()
        except AVBenchError as exc:
            _broadcast_from_main(("failed", str(exc)))
            raise
        return _broadcast_from_main(("ok", value))[1]
    status, value = _broadcast_from_main(None)
    if status == "failed":
        raise PeerStopped(f"rank {place.rank} stops: rank 0 failed: {value}")
    return value


@contextmanager
def together() -> Iterator[None]:
    """A block every rank runs on its own, ending in a sync: if any rank's block raised an
    `AVBenchError`, every rank stops (that rank with its error, the others with `PeerStopped`).
    Single process: no sync."""
    place = topology()
    if not place.is_distributed:
        yield
        return
    try:
        yield
    except AVBenchError as exc:
        _gather_failures(f"rank {place.rank}: {exc}")
        raise
    failed = [f for f in _gather_failures(None) if f is not None]
    if failed:
        raise PeerStopped(f"rank {place.rank} stops: {failed[0]}")


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block, then the others do (e.g. rank 0 generates a cache the others then find)."""
    place = init()
    if not place.is_distributed:
        yield
        return
    if not place.is_main:
        barrier()
    yield
    if place.is_main:
        barrier()
