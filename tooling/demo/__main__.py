"""`python -m tooling.demo` (what `./run.sh demo` runs): the offline demo, with Prefect's API
started
before the heavy imports, so that the two start-ups overlap.

A one-off flow run without `PREFECT_API_URL` makes Prefect start a temporary server and wait
5-8 s for it. Started here first, as a subprocess, it boots while Python imports Prefect, dlt
and the flow (~4 s). Its database is your Prefect home (`~/.prefect`, or `PREFECT_HOME`), so
`prefect server start` shows the demo's runs afterwards. With `PREFECT_API_URL` set, the demo
uses that server instead.
"""

import atexit
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

from orchestration.prefect_server import (
    ONE_RUN_SERVER_SETTINGS,
    STARTUP_DEADLINE_SECONDS,
    LocalPrefectServer,
    start_prefect_server,
    stop_process_group,
    wait_until_healthy,
)

# The status `stop_server_and_exit` ends the process with: a failure until the demo returned.
_exit_code = 1


def main(argv: Optional[List[str]] = None) -> int:
    global _exit_code
    started = time.monotonic()
    if os.environ.get("PREFECT_API_URL"):
        return run_demo(argv, started, None)
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    server = start_prefect_server(
        home, log_path=home / "demo_server.log", extra_env=ONE_RUN_SERVER_SETTINGS
    )
    os.environ["PREFECT_API_URL"] = server.api_url  # before Prefect is imported below
    # Registered before Prefect is imported, so it runs after Prefect's own exit-time work
    # (`atexit` runs last-in first-out: Prefect sends the last events and logs first).
    atexit.register(stop_server_and_exit, server.process)
    try:
        _exit_code = run_demo(argv, started, server)
    except SystemExit as stop:  # bad input ends in one line and its own status (2)
        _exit_code = stop.code if isinstance(stop.code, int) else 1
        raise
    return _exit_code


def stop_server_and_exit(process: "subprocess.Popen") -> None:
    """The demo's last step: stop its server, then end the process without the interpreter's
    teardown of Prefect's, dlt's and DuckDB's modules (~0.5 s of a ~10 s demo, nothing left to
    save: every exit-time callback but this one has run, and stdout/stderr are flushed)."""
    stop_process_group(process)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_code)


def run_demo(
    argv: Optional[List[str]], started: float, server: Optional[LocalPrefectServer]
) -> int:
    from slack_pipeline_with_prefect import slack_pipeline
    from tooling.demo import demo, parse_demo_command_line

    command = parse_demo_command_line(sys.argv[1:] if argv is None else argv)
    if server is not None:
        try:
            wait_until_healthy(server.api_url, server.process, STARTUP_DEADLINE_SECONDS)
        except (RuntimeError, TimeoutError) as error:
            print(f"error: Prefect's API did not start ({error}); see {server.home}",
                  file=sys.stderr)  # fmt: skip
            return 1
    demo(slack_pipeline, command, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
