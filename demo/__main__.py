"""`python -m demo` (what `./run.sh demo` runs): the offline demo, with Prefect's API started
before the heavy imports, so that the two start-ups overlap.

A one-off flow run without `PREFECT_API_URL` makes Prefect start a temporary server and wait
5-8 s for it. Started here first, as a subprocess, it boots while Python imports Prefect, dlt
and the flow (~4 s). Its database is your Prefect home (`~/.prefect`, or `PREFECT_HOME`), so
`prefect server start` shows the demo's runs afterwards. With `PREFECT_API_URL` set, the demo
uses that server instead.
"""

import atexit
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

from devtools.prefect_server import (
    STARTUP_DEADLINE_SECONDS,
    LocalPrefectServer,
    start_prefect_server,
    stop_process_group,
    wait_until_healthy,
)


def main(argv: Optional[List[str]] = None) -> int:
    started = time.monotonic()
    if os.environ.get("PREFECT_API_URL"):
        return run_demo(argv, started, None)
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    server = start_prefect_server(home, log_path=home / "demo_server.log")
    os.environ["PREFECT_API_URL"] = server.api_url  # before Prefect is imported below
    # Stopped at exit, after Prefect's own exit-time work (it sends the last logs and events
    # from threads that are drained before `atexit` callbacks run).
    atexit.register(stop_process_group, server.process)
    return run_demo(argv, started, server)


def run_demo(
    argv: Optional[List[str]], started: float, server: Optional[LocalPrefectServer]
) -> int:
    from demo import demo
    from orchestration.cli import parse_command_line
    from slack_pipeline_with_prefect import slack_pipeline

    command = parse_command_line(["demo", *(sys.argv[1:] if argv is None else argv)])
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
