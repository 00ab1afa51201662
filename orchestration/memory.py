"""Allocator settings for a run, applied by the process itself however it was started.

A page of messages lives for milliseconds, but glibc keeps freed memory in one heap per
allocating thread (up to 8 per core) and raises its mmap threshold after each large free, so
Arrow's page-sized buffers end up fragmenting the heap; Arrow's default allocator (jemalloc or
mimalloc) keeps freed pages too. On the 1M-message benchmark that is the difference between
~390 MB and ~480-660 MB peak (tooling/bench/RESULTS.md, "Peak RSS at 1M").

Environment variables (`MALLOC_ARENA_MAX`, ...) only work when set before the process starts,
which a wrapper script can do but `python slack_pipeline_with_prefect.py`, a served deployment
or a worker's flow-run process do not. `mallopt` and `pyarrow.set_memory_pool` take the same
settings at run time; they are applied when `orchestration` is first imported, before any
thread of the run is started. A variable you set yourself wins.
"""

import ctypes
import ctypes.util
import os
from typing import Dict

ARENA_MAX = 2
MMAP_THRESHOLD = 128 * 1024  # fixed: glibc would otherwise raise it up to 32 MB
# mallopt parameters (glibc malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_ENV = {"MALLOC_ARENA_MAX": _M_ARENA_MAX, "MALLOC_MMAP_THRESHOLD_": _M_MMAP_THRESHOLD}
_VALUES = {"MALLOC_ARENA_MAX": ARENA_MAX, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}


def tune_allocators() -> Dict[str, str]:
    """Apply the settings not already given by the environment; returns what was applied
    (empty off glibc, e.g. on macOS, where nothing is changed)."""
    applied: Dict[str, str] = {}
    libc = _glibc()
    if libc is not None:
        for variable, parameter in _ENV.items():
            if variable not in os.environ and libc.mallopt(parameter, _VALUES[variable]) == 1:
                applied[variable] = str(_VALUES[variable])
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow

        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
        applied["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    return applied


def _glibc() -> "ctypes.CDLL | None":
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc
