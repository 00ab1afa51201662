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
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import runpy
import sys
import time
from collections import Counter
from typing import Any, Callable

from .common import ROOT

FLOW_FILE = ROOT / "slack_pipeline_with_prefect.py"


def memory() -> str:
    status = {}
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                status[key] = int(value.split()[0]) // 1024
    return f"rss {status['VmRSS']} MB, peak {status['VmHWM']} MB"


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


def wrapped(name: str, stage: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(stage)
    def measured(*args: Any, **kwargs: Any) -> Any:
        if name == "extract":
            what_survives()
        reset_peak()
        started = time.perf_counter()
        report(f"> {name}: {memory()}")
        try:
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
