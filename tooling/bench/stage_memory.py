"""Where a flow run's memory goes: RSS and its high-water mark around each dlt stage (issue #27).

Runs `python slack_pipeline_with_prefect.py ARGS` in this process, the flow file as users start
it, with dlt's `Pipeline.extract`/`normalize`/`load` and the thread check wrapped: each stage
prints the RSS it starts at, its own peak (the kernel's high-water mark, reset at each stage
through /proc/self/clear_refs) and the RSS it leaves; before each extract, the memory Python's
cyclic collector and glibc's `malloc_trim` can give back, and Python's allocated blocks (what
survives from the stage before). Linux only. Settings come from the environment, as for a run:

    SOURCES__SLACK__API_BASE_URL=http://127.0.0.1:PORT/api/ SOURCES__SLACK__ACCESS_TOKEN=... \\
    SOURCES__SLACK__RATE_LIMIT_PROFILE=off \\
    ./run.sh python -m tooling.bench.stage_memory run --start-date 2026-10-23

(an emulator for it: `./run.sh python -m tooling.slack_emulator serve --port PORT ...`, with
the shape's options, see `tooling.bench.common.SHAPES`).

More, each asked for with a variable (tooling/bench/RESULTS.md, "Where the memory stays"):
- STAGE_MEMORY_TYPES=1: the object types that grew, glibc's and Python's allocator statistics;
- STAGE_MEMORY_PINS=1: the objects left in nearly empty arenas (with PYTHONTRACEMALLOC=6,
  where each was allocated);
- STAGE_MEMORY_MEMRAY=DIR: each load recorded by memray (DuckDB's allocations included).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import itertools
import os
import runpy
import sys
import time
import tracemalloc
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List

from .common import ROOT
from .process_tree import memory_kb

FLOW_FILE = ROOT / "slack_pipeline_with_prefect.py"


def status() -> Dict[str, int]:
    """This process's RSS and its high-water mark (`VmRSS`, `VmHWM`), in MB."""
    return {key: kb // 1024 for key, kb in memory_kb("self").items()}


def memory() -> str:
    now = status()
    return f"rss {now['VmRSS']} MB, peak {now['VmHWM']} MB"


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS


def report(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} stage_memory: {line}", file=sys.stderr, flush=True)


_CENSUS: Counter = Counter()


def what_survives() -> None:
    """Before an extract: what the collector and glibc give back, what Python still holds
    (with STAGE_MEMORY_TYPES=1, also the object types that grew most since the last extract,
    and the allocators' own statistics: glibc's arenas, Python's arenas and empty pools)."""
    libc = ctypes.CDLL("libc.so.6")
    before = memory()
    gc.collect()
    collected = memory()
    libc.malloc_trim(0)
    report(
        f"before extract: {before}; after gc.collect {collected}; after malloc_trim {memory()};"
        f" Python blocks {sys.getallocatedblocks():,}"
    )
    if os.environ.get("STAGE_MEMORY_TYPES"):
        census = Counter(type(o).__qualname__ for o in gc.get_objects())
        grown = (census - _CENSUS).most_common(12)
        report(
            "objects grown since the last extract: " + ", ".join(f"{t} +{n:,}" for t, n in grown)
        )
        _CENSUS.clear()
        _CENSUS.update(census)
        sys.stderr.flush()
        libc.malloc_stats()  # glibc's arenas: system and in-use bytes
        sys._debugmallocstats()  # Python's arenas, blocks and unused pools
    if os.environ.get("STAGE_MEMORY_PINS"):
        report(
            f"objects in arenas of <= {SPARSE_POOLS} used pools (of {POOLS_PER_ARENA}): "
            + pinning_objects()
        )


POOL_BITS, ARENA_BITS = 14, 20  # CPython 3.10+ on 64-bit: 16 KiB pools, 1 MiB arenas
POOLS_PER_ARENA = 1 << (ARENA_BITS - POOL_BITS)
SPARSE_POOLS = 16  # an arena with this many used pools or fewer counts as nearly empty


def sparse_arena_objects() -> List[Any]:
    """The objects found in nearly empty arenas, the ones that keep Python's empty pools resident.

    An arena goes back to the system only when every pool in it is empty, so a few objects left
    in it keep the whole MiB: long-lived ones made while a page's rows filled it, or ones made
    later in the holes the rows left (at 1M, copies of the state: RESULTS.md, "What the 1M
    peak is made of"). Objects are found from the collector's containers and what they refer
    to (so strings and ints too); arenas are approximated by their 1 MiB-aligned window, pools
    by their 16 KiB one."""
    objects = gc.get_objects()
    seen = {id(o): o for o in objects}
    for container in objects:
        for referent in gc.get_referents(container):
            seen.setdefault(id(referent), referent)
    arenas: Dict[int, Dict[int, List[Any]]] = {}
    for address, obj in seen.items():
        if sys.getsizeof(obj) <= 512:  # larger ones come from malloc, not from an arena
            pools = arenas.setdefault(address >> ARENA_BITS, {})
            pools.setdefault(address >> POOL_BITS, []).append(obj)
    report(f"{len(arenas)} arena windows hold small objects")
    return [
        o
        for pools in arenas.values()
        if len(pools) <= SPARSE_POOLS
        for p in pools.values()
        for o in p
    ]


def pinning_objects(top: int = 25) -> str:
    """Types of the objects in nearly empty arenas; where each was allocated when the run
    was started with PYTHONTRACEMALLOC=N (N frames)."""
    pinning = sparse_arena_objects()
    if not tracemalloc.is_tracing():
        census = Counter(type(o).__qualname__ for o in pinning)
        return ", ".join(f"{t} {n:,}" for t, n in census.most_common(top))
    origins: Counter = Counter()
    for obj in pinning:
        frames = tracemalloc.get_object_traceback(obj)
        where = " < ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in frames or ())
        origins[f"{type(obj).__qualname__} @ {where or 'untraced'}"] += 1
    return "\n  " + "\n  ".join(f"{n:,} {w}" for w, n in origins.most_common(top))


_LOAD_NUMBERS = itertools.count(1)


@contextlib.contextmanager
def load_capture(stage: str) -> Iterator[None]:
    """With STAGE_MEMORY_MEMRAY=DIR, each load under `memray` (DIR/load-N.bin): every
    allocation, DuckDB's included, with the Python stack that made it. `memray summary
    DIR/load-N.bin` then names what was allocated at the load's peak. memray is not a
    dependency of the project (`pip install memray==1.20.0`, the version used)."""
    out = os.environ.get("STAGE_MEMORY_MEMRAY")
    if not out or stage != "load":
        yield
        return
    import memray

    path = os.path.join(out, f"load-{next(_LOAD_NUMBERS)}.bin")
    if os.path.exists(path):
        os.remove(path)
    report(f"memray capture of this load: {path}")
    with memray.Tracker(path, native_traces=False, follow_fork=False):
        yield


def wrapped(name: str, stage: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(stage)
    def measured(*args: Any, **kwargs: Any) -> Any:
        if name == "extract":
            what_survives()
        reset_peak()
        started = time.perf_counter()
        report(f"> {name}: {memory()}")
        try:
            with load_capture(name):
                return stage(*args, **kwargs)
        finally:
            report(f"< {name} {time.perf_counter() - started:.1f} s: {memory()}")

    return measured


def main() -> None:
    from dlt.pipeline.pipeline import Pipeline

    import orchestration.reconcile as reconcile

    for name in ("extract", "normalize", "load"):
        setattr(Pipeline, name, wrapped(name, getattr(Pipeline, name)))
    reconcile.count_threads = wrapped("thread check", reconcile.count_threads)
    sys.argv = [str(FLOW_FILE), *sys.argv[1:]]
    runpy.run_path(str(FLOW_FILE), run_name="__main__")


if __name__ == "__main__":
    main()
