"""Backfill from a Slack export: one Prefect flow run that loads the ZIP into the tables and the
state the daily `slack_pipeline` continues from.

    python slack_pipeline_with_prefect.py import-export slack-export.zip   # ./run.sh import-export

The flow shows up in the Prefect UI as `slack_import_export`, with a `slack-import-export`
summary artifact (rows per table, messages per channel, folders not loaded). Bad input (not a
ZIP, not an export, a malformed day file) fails it with the file's name, before the destination
is written.
"""

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.states import State

from orchestration.failures import causes, failed_run
from orchestration.loading import import_export
from orchestration.prepare import prepare_import
from orchestration.run_logs import attach_dlt_logs, flush_run_logs
from orchestration.run_settings import RunSettings
from orchestration.summary import publish_summary
from slack_source.import_export import ExportLayout, SlackExportError

ARTIFACT_KEY = "slack-import-export"


@task
def load_export(settings: RunSettings, path: str, layout: ExportLayout) -> Any:
    """Stream the export's users, channels and day files into the destination in one dlt run.

    No retries: the input is a file, and a failure is either bad input or a broken destination.
    A malformed day file (found before anything is written) fails the task with the file's name
    as its message, not with a traceback: it is bad input, not a crash."""
    try:
        return import_export(settings, path, layout)
    except Exception as error:  # noqa: BLE001 - dlt wraps the source's error in its step error
        cause = next((e for e in causes(error) if isinstance(e, SlackExportError)), None)
        if cause is None:
            raise
        return failed_run(str(cause), cause)


@flow(
    name="slack_import_export",
    log_prints=True,
    on_completion=[flush_run_logs],
    on_failure=[flush_run_logs],
)
def slack_import_export(path: str) -> Any:
    """Check the export (nothing is written when it is bad), load it, publish the summary."""
    started = time.monotonic()
    attach_dlt_logs()
    settings, layout = prepare_import(path)
    get_run_logger().info(
        "Importing %s: %d channel folder(s), %d day file(s)",
        path,
        len(layout.conversations),
        layout.day_files,
    )
    loaded: State = load_export(settings, path, layout, return_state=True)
    if loaded.is_failed():
        return failed_run(
            loaded.message or "the export did not load", loaded.result(raise_on_failure=False)
        )
    return publish_summary(
        settings,
        [loaded.result()],
        time.monotonic() - started,
        artifact_key=ARTIFACT_KEY,
        title="Slack export import",
    )
