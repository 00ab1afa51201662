"""One log for a run: dlt's and the source's records as Prefect's own, on the console and in
the flow run's logs, on every infrastructure.

The flow attaches this itself when it starts, whatever started it (the CLI, serve, a worker, a
container, a test): a process worker imports Prefect (`python -m prefect.engine`) before the
flow's module, so a setting such as `PREFECT_LOGGING_EXTRA_LOGGERS` would come too late there.

What a user reads:
- the source's lines (`dlt.slack`: one per channel, progress, warnings) at their own level, in
  Prefect's format: time, level, the flow or task run they belong to, the message alone;
- dlt's own records (pool set-up, job bookkeeping) only at DEBUG, and Prefect's hook plumbing
  ("Running hook ...") too; dlt's warnings and errors stay at their level;
- `--verbose` (or `PREFECT_LOGGING_LEVEL=DEBUG`) brings the details back.
"""

import logging
import os
import sys
from typing import Any, Dict, List, Optional

from prefect.context import FlowRunContext
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.logging.handlers import APILogHandler, APILogWorker, PrefectConsoleHandler

DLT_LOGGER = "dlt"
SOURCE_LOGGER = "dlt.slack"  # the source's own records: kept at their level
PREFECT_LOGGER = "prefect"
# Prefect's records about its own machinery that a user need not read on every run.
PREFECT_INTERNALS = ("Running hook ", "Hook '")


def set_verbose(verbose: bool) -> None:
    """`--verbose`: dlt's and Prefect's details at DEBUG, here and in flow runs started from
    this process (serve's and a worker's subprocesses read the environment)."""
    if verbose:
        os.environ["PREFECT_LOGGING_LEVEL"] = "DEBUG"
        logging.getLogger(PREFECT_LOGGER).setLevel(logging.DEBUG)


def is_verbose() -> bool:
    return logging.getLogger(PREFECT_LOGGER).isEnabledFor(logging.DEBUG)


class RunLogHandler(APILogHandler):
    """dlt's records in the run's log, from any thread (dlt's extract workers run outside
    Prefect's context: their records go to the flow run that attached the handler).

    The API gets each record under its own logger name (`dlt`, `dlt.slack`); the console gets
    it in Prefect's run format, as if the flow or task run had logged it."""

    def __init__(self, flow_run: Any) -> None:
        super().__init__()
        self.flow_run = flow_run
        # outside any flow run: warnings and errors on stderr, in Prefect's plain format
        self.outside_runs = _Stderr()
        self.outside_runs.setFormatter(
            logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s", "%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelno
        if level < logging.WARNING and not record.name.startswith(SOURCE_LOGGER):
            level = logging.DEBUG  # dlt's internals
        if not logging.getLogger(PREFECT_LOGGER).isEnabledFor(level):
            return
        extra = self._run_fields()
        if extra is None:
            if record.levelno >= logging.WARNING:
                self.outside_runs.handle(record)
            return
        fields = {
            **record.__dict__,
            **extra,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": record.getMessage(),
            "args": None,
            "exc_info": None,
            "exc_text": None,
        }
        super().emit(logging.makeLogRecord(fields))
        run_logger = "prefect.task_runs" if "task_run_id" in extra else "prefect.flow_runs"
        console = logging.makeLogRecord({**fields, "name": run_logger})
        for handler in _console_handlers():
            if level >= handler.level:
                handler.handle(console)

    def format(self, record: logging.LogRecord) -> str:
        """The message alone: dlt sets its pipe-separated formatter on the first handler of its
        logger, which this one is; the run's log never shows it."""
        return record.getMessage()

    def _run_fields(self) -> Optional[Dict[str, Any]]:
        try:
            return dict(get_run_logger().extra or {})
        except MissingContextError:
            if self.flow_run is None:
                return None
            return {
                "flow_run_id": str(self.flow_run.id),
                "flow_run_name": self.flow_run.name,
            }


class _Stderr(logging.StreamHandler):
    """A stream handler on whatever `sys.stderr` is when it writes (as `logging.lastResort`)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _console_handlers() -> List[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]


class QuietInternals(logging.Filter):
    """Prefect's hook plumbing at DEBUG: dropped unless the run is verbose."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith(PREFECT_INTERNALS):
            return is_verbose()
        return True


def attach_dlt_logs() -> None:
    """Route the `dlt` logger (the source's `dlt.slack` included) into this flow run's log.

    dlt formats the first handler it finds on its logger and adds a console handler of its own
    when there is none: this one being the only handler, no line reaches the console in
    dlt's pipe-separated format."""
    context = FlowRunContext.get()
    flow_run = context.flow_run if context else None
    logger = logging.getLogger(DLT_LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(RunLogHandler(flow_run))
    logger.propagate = False
    flow_runs = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(f, QuietInternals) for f in flow_runs.filters):
        flow_runs.addFilter(QuietInternals())


def flush_run_logs(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook (completion, failure): send the run's queued log lines now. A process
    worker's flow-run process can end before Prefect's exit-time drain has sent the last
    batch, and the run summary is among the last lines. Then dlt's logger is as it was."""
    APILogWorker.drain_all(timeout=5)
    detach_dlt_logs()


def detach_dlt_logs() -> None:
    """After the run: dlt's records (a test, a script calling the source) no longer go to it;
    its warnings and errors go to stderr (`RunLogHandler.outside_runs`)."""
    for handler in logging.getLogger(DLT_LOGGER).handlers:
        if isinstance(handler, RunLogHandler):
            handler.flow_run = None
