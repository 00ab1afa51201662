"""A one-off run from the command line ends once its work is done, without Python's teardown.

After a `run` or `import-export`, Python's finalization (every module's objects freed one by
one: Prefect's, dlt's, DuckDB's, pyarrow's) took ~1.5 s on the 2-core machine, after the
report was printed (tooling/bench/RESULTS.md, "As users start it"). Nothing of the run needs
it: the loads are committed, the report is out, and what must happen at exit runs as `atexit`
handlers first (Prefect sends its last logs and events, the one-off API is stopped). `arm()`
registers, before any of those, a last handler that flushes the streams and logging and ends
the process with `os._exit`; it does so only when the command said `finished()` (exit 0).
A failed command (an exit code, an uncaught exception) ends the usual way.
"""

import atexit
import logging
import os
import sys
from typing import List

_finished: List[bool] = []
_armed: List[bool] = []


def arm() -> None:
    """At the top of the flow file, before Prefect is imported: atexit runs handlers last-in
    first-out, so this one runs after everything Prefect and the one-off API register."""
    if not _armed:
        _armed.append(True)
        atexit.register(_leave)


def finished() -> None:
    """The command did its work and reported it: exit 0 without the teardown."""
    _finished.append(True)


def _leave() -> None:
    if not _finished:
        return
    logging.shutdown()  # registered by `logging` itself, before us: it would run after us
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
