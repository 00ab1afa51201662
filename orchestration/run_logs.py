"""dlt's log lines in the flow run's logs, on every infrastructure.

`PREFECT_LOGGING_EXTRA_LOGGERS=dlt` is read when Prefect is imported, and a process worker
imports Prefect (`python -m prefect.engine`) before the flow's module, so a default set there is
too late: dlt's lines then reach the worker's stdout, not the run. The flow attaches this
handler itself when it starts, whatever started it (serve, a worker, a container, a test).

dlt formats the first handler it finds on its logger with its own pipe-separated line
(`time|[LEVEL]|pid|thread|dlt|file|...`); the run logs get the message alone, like Prefect's
own records; on the console dlt shows its warnings and errors in its own format.
"""

import logging
from typing import Any, Optional
from uuid import UUID

from prefect.context import FlowRunContext, get_run_context
from prefect.exceptions import MissingContextError
from prefect.logging.handlers import APILogHandler, APILogWorker

DLT_LOGGER = "dlt"


class RunLogHandler(APILogHandler):
    """Prefect's API log handler for dlt's records, from any thread: dlt's extract workers
    run outside Prefect's context, so their records are sent to the flow run that attached it."""

    def __init__(self, flow_run_id: Optional[UUID]) -> None:
        super().__init__()
        self.flow_run_id = flow_run_id

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "flow_run_id", None):
            try:
                get_run_context()
            except MissingContextError:
                if self.flow_run_id is None:
                    return
                record.flow_run_id = self.flow_run_id
        super().emit(record)


def attach_dlt_logs() -> None:
    """Send the `dlt` logger's records (the source's `dlt.slack` included) to this flow run."""
    context = FlowRunContext.get()
    flow_run_id = context.flow_run.id if context and context.flow_run else None
    logger = logging.getLogger(DLT_LOGGER)
    for handler in list(logger.handlers):
        if isinstance(handler, RunLogHandler):
            handler.flow_run_id = flow_run_id
            return
        if type(handler) is APILogHandler:  # from PREFECT_LOGGING_EXTRA_LOGGERS: one is enough
            logger.removeHandler(handler)
    if not logger.handlers:
        # dlt formats the first handler it finds: let it be a console one, for warnings and
        # errors only (the run's logs get every line; the console is not flooded by dlt's INFO)
        console = logging.StreamHandler()
        console.setLevel(logging.WARNING)
        logger.addHandler(console)
    logger.addHandler(RunLogHandler(flow_run_id))


def flush_run_logs(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook (completion, failure): send the run's queued log lines now. A process
    worker's flow-run process can end before Prefect's exit-time drain has sent the last
    batch, and the run summary is among the last lines."""
    APILogWorker.drain_all(timeout=5)
