"""Prefect defaults for this project, applied before Prefect is imported.

Offline and quiet (no analytics), a start-up timeout that survives a cold 2-core machine, and
dlt's log lines routed into Prefect's run logs. Each is only a default: the environment wins.
"""

import os

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "dlt",
    "PREFECT_UI_ENABLED": "true",
    "RUNTIME__LOG_LEVEL": "INFO",
}


def configure_prefect_defaults() -> None:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
