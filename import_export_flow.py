"""Backfill from a Slack export: one Prefect flow run that loads the ZIP into the tables and the
state the daily `slack_pipeline` continues from.

    python slack_pipeline_with_prefect.py import-export slack-export.zip   # ./run.sh import-export

The flow shows up in the Prefect UI as `import_slack_export`, with a `slack-export-import`
summary artifact (rows per table, messages per channel, folders not loaded).
"""

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.states import Failed, State

from orchestration.export_import import SlackExportError, check_export, import_export
from orchestration.retry_policy import causes
from orchestration.run_logs import attach_dlt_logs, flush_run_logs
from orchestration.settings import (
    RunSettings,
    load_run_settings,
    validate_destination_credentials,
)
from orchestration.summary import publish_summary

ARTIFACT_KEY = "slack-export-import"


@task
def load_export(settings: RunSettings, path: str) -> Any:
    """Stream the export's users, channels and day files into the destination in one dlt run.

    No retries: the input is a file, and a failure is either bad input or a broken destination.
    A malformed day file (found before anything is written) ends the task Failed with the
    file's name as its message, not with a traceback: it is bad input, not a crash."""
    try:
        return import_export(settings, path)
    except Exception as error:  # noqa: BLE001 - dlt wraps the source's error in its step error
        cause = next((e for e in causes(error) if isinstance(e, SlackExportError)), None)
        if cause is None:
            raise
        return Failed(message=str(cause), data=cause)


@flow(
    name="import_slack_export",
    log_prints=True,
    on_completion=[flush_run_logs],
    on_failure=[flush_run_logs],
)
def import_slack_export(path: str) -> Any:
    """Check the export (nothing is written when it is bad), load it, publish the summary."""
    started = time.monotonic()
    attach_dlt_logs()
    settings = load_run_settings()
    validate_destination_credentials(settings)
    layout = check_export(path)
    get_run_logger().info(
        "Importing %s: %d channel folder(s), %d day file(s)",
        path,
        len(layout.conversations),
        layout.day_files,
    )
    loaded: State = load_export(settings, path, return_state=True)
    if loaded.is_failed():
        return loaded  # the run ends Failed; the caller gets the export's error raised
    return publish_summary(
        settings,
        [loaded.result()],
        time.monotonic() - started,
        artifact_key=ARTIFACT_KEY,
        title="Slack export import",
    )
