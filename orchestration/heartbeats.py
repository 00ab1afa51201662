"""A one-off run's flow heartbeats: off unless asked for.

Prefect sends a flow run's heartbeat from a thread that sleeps in one-second steps, and the
flow's end waits for that thread (up to 2 s): 0.5-1 s at the end of every run, 8 % of a 100k
one-off run on a fast host (tooling/bench/RESULTS.md, "The end of a one-off run"). Heartbeats
let a server's automation mark a run crashed when its process vanished; a served deployment
and a worker keep them (they run flows through Prefect's runner, not `run_flow`). A one-off
run from the command line ends with its process and prints why; whoever wants heartbeats
there too sets `PREFECT_FLOWS_HEARTBEAT_FREQUENCY`, which is then left as it is.
"""

import os
from contextlib import contextmanager
from typing import Iterator

HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


@contextmanager
def one_off_heartbeats() -> Iterator[None]:
    """No heartbeat thread for the flow run inside, unless the environment asks for one."""
    if any(os.environ.get(name) for name in HEARTBEAT_VARIABLES):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
