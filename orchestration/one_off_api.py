"""A one-off run's Prefect API, started before the heavy imports so that both start-ups overlap.

Without `PREFECT_API_URL`, a flow call makes Prefect start a temporary server only when the
flow is called, after Python has imported Prefect, dlt and the flow (and the client imports
Prefect's server code to do it), and waits 5-8 s for it; it stops it at exit. `run` and
`import-export` from the command line instead start the same local server as a subprocess at
the top of the flow file: it boots while the imports and the pre-flight run, and the flow
call finds it ready. Its database is your Prefect home (`~/.prefect` or `PREFECT_HOME`), as the
temporary server's is, so `prefect server start` shows the runs afterwards. With
`PREFECT_API_URL` (your own server), or on a Prefect home that `run.sh` has not prepared yet,
nothing is started here.
"""

import atexit
import os
import sys
from pathlib import Path
from typing import List, Optional

from . import fast_exit
from .prefect_server import (
    ONE_RUN_SERVER_SETTINGS,
    STARTUP_DEADLINE_SECONDS,
    LocalPrefectServer,
    is_prepared,
    start_prefect_server,
    stop_process_group,
    wait_until_healthy,
)

# The command-line commands that run one flow in this process and end.
ONE_OFF_COMMANDS = ("run", "import-export")
FLOW_FILES = ("slack_pipeline_with_prefect.py",)


class PrefectApiUnavailable(RuntimeError):
    """The one-off run's API did not start (a run failure, exit 1: not bad input)."""


_started: List[LocalPrefectServer] = []
_healthy: List[bool] = []


def start_one_off_api(argv: Optional[List[str]] = None) -> Optional[LocalPrefectServer]:
    """Start the API when this process is a flow file run as `run` or `import-export` without
    a server of its own; None otherwise (imported by a worker, `serve`, tests, `--help`)."""
    own_process = argv is None
    argv = sys.argv if argv is None else argv
    if len(argv) < 2 or Path(argv[0]).name not in FLOW_FILES or argv[1] not in ONE_OFF_COMMANDS:
        return None
    if {"-h", "--help"} & set(argv) or _started:
        return None
    if own_process:
        fast_exit.arm()  # before Prefect's exit-time handlers and the API's stop: runs last
    if os.environ.get("PREFECT_API_URL") or os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"):
        return None
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    if not is_prepared(home):
        # A new home's first start migrates its database: left to Prefect's own temporary
        # server, so that a run ended early by bad input never stops a migration half way.
        return None
    server = start_prefect_server(
        home, log_path=home / "one_off_server.log", extra_env=ONE_RUN_SERVER_SETTINGS
    )
    os.environ["PREFECT_API_URL"] = server.api_url  # before Prefect is imported
    os.environ.setdefault("PREFECT_HOME", str(home))
    # Registered before Prefect is imported, so it runs after Prefect's own exit-time work
    # (atexit is last-in first-out: Prefect sends its last events and logs first).
    atexit.register(stop_process_group, server.process)
    _started.append(server)
    return server


def wait_for_one_off_api() -> Optional[str]:
    """Before the first use of Prefect's API (the flow call, the token store): the started API
    answers; an error line when it did not start."""
    if not _started or _healthy:
        return None
    server = _started[0]
    try:
        wait_until_healthy(server.api_url, server.process, STARTUP_DEADLINE_SECONDS)
    except (RuntimeError, TimeoutError) as error:
        return f"Prefect's API did not start ({error}); see {server.home / 'one_off_server.log'}"
    _healthy.append(True)
    return None
