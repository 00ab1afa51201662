"""Load a Slack workspace into BigQuery or DuckDB every day: dlt does the loading, Prefect the
scheduling, retries and observability.

    python slack_pipeline_with_prefect.py            # serve the daily deployment (cron 0 0 * * *)
    python slack_pipeline_with_prefect.py run        # one flow run now
    python slack_pipeline_with_prefect.py check      # token, scopes, channels; loads nothing
    python slack_pipeline_with_prefect.py import-export slack-export.zip   # backfill from an export

Offline, with no Slack token: `./run.sh demo` runs this flow against the bundled emulator.
"""

from orchestration.one_off_api import start_one_off_api

# `run` and `import-export` from the command line: Prefect's API boots while the imports below
# run, instead of after them (orchestration/one_off_api.py).
start_one_off_api()

import time
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from prefect import flow, get_run_logger, task

from orchestration.failures import TRANSIENT_RETRIES, failed_run
from orchestration.loading import load, load_messages, make_pipeline
from orchestration.prepare import prepare_run
from orchestration.reconcile import reconcile_threads
from orchestration.run_logs import attach_dlt_logs, flush_run_logs
from orchestration.run_settings import DateLike, RunSettings
from orchestration.summary import publish_summary
from orchestration.workspaces import workspace_connection
from orchestration.workspaces.slot import workspace_slot
from slack_source import (
    RunStats,
    directory_resources,
    history_resources,
    list_channels,
    make_client,
    select_channels,
    slack_source,
)


@task(**TRANSIENT_RETRIES)
def get_users(settings: RunSettings) -> Dict[str, Any]:
    """Load every user of the workspace (deleted ones included: old messages name them).

    Never cached: a task that writes to the warehouse runs, whatever an earlier run wrote."""
    stats = RunStats()
    source = slack_source(stats=stats, **workspace_connection(settings)).with_resources("users")
    loaded = load(make_pipeline(settings, stats), source)
    return {**loaded, "stats": stats.as_dict()}


@task(**TRANSIENT_RETRIES)
def get_channels(
    settings: RunSettings, channels: Optional[List[str]], conversation_types: Tuple[str, ...]
) -> Dict[str, Any]:
    """Load the channel list (every kind of conversation the run reads: public and private
    channels, group DMs, DMs) and resolve the channels to read (unknown names fail here);
    with `sources.slack.channel_members` / `user_groups` on, who is in them too."""
    stats = RunStats()
    connection = workspace_connection(settings)
    visible = list_channels(make_client(stats=stats, **connection), conversation_types)
    selected = select_channels(visible, channels)
    source = slack_source(
        channel_list=visible,
        channels=[channel["id"] for channel in selected],
        stats=stats,
        **connection,
    )
    source = source.with_resources("channels", *directory_resources(source))
    loaded = load(make_pipeline(settings, stats), source)
    return {**loaded, "stats": stats.as_dict(), "selected": selected}


@task(**TRANSIENT_RETRIES)
def get_channel_history(
    settings: RunSettings,
    channels: List[Dict[str, Any]],
    start: Optional[datetime] = None,
    end: Optional[datetime] = None,
    lookback_days: Optional[float] = None,
    rate_limit_profile: Optional[str] = None,
) -> Dict[str, Any]:
    """Load history and changed threads of a batch of channels in one dlt run (appended
    instead of merged while `messages` has no row of these channels: `append_into_empty`).
    Channels not started once `messages_per_load` messages are read come back in
    `stats["deferred_channels"]`, for the next batch.

    `rate_limit_profile`: what an earlier batch of this run detected (None: the configured)."""
    stats = RunStats()
    channel_ids = [channel["id"] for channel in channels]
    lookback = {} if lookback_days is None else {"lookback_days": lookback_days}
    if rate_limit_profile is not None:
        lookback["rate_limit_profile"] = rate_limit_profile

    def history(append_into_empty: bool) -> Any:
        source = slack_source(
            channels=channel_ids,
            channel_list=channels,
            start_date=start,
            end_date=end,
            stats=stats,
            append_into_empty=append_into_empty,
            messages_per_load=settings.messages_per_load,
            **lookback,
            **workspace_connection(settings),
        )
        return source.with_resources(*history_resources(source))  # messages, reactions, files

    def check_threads(pipeline: Any) -> Dict[str, Any]:
        """Every tracked thread of the channels loaded against the replies loaded (a mismatch
        is fetched again by the next run: orchestration/reconcile.py)."""
        deferred = set(stats.deferred_channels)
        incomplete = reconcile_threads(pipeline, [c for c in channel_ids if c not in deferred])
        for thread in incomplete:
            get_run_logger().warning(
                "Incomplete thread %s in %s: %d replies expected, %d loaded; the next run"
                " fetches it again",
                thread["thread"],
                stats.channel_names.get(thread["channel"], thread["channel"]),
                thread["expected"],
                thread["loaded"],
            )
        return {"incomplete_threads": incomplete}

    loaded = load_messages(
        make_pipeline(settings, stats),
        history,
        settings.append_into_empty,
        after=check_threads,
        channel_ids=channel_ids,
    )
    return {**loaded, "stats": stats.as_dict()}


@flow(
    name="slack_pipeline",
    log_prints=True,
    on_completion=[flush_run_logs],
    on_failure=[flush_run_logs],
)
def slack_pipeline(
    channels: Optional[List[str]] = None,
    start_date: DateLike = None,
    end_date: DateLike = None,
    include_private: bool = False,
    lookback_days: Optional[float] = None,
    workspace: Optional[str] = None,
) -> Dict[str, Any]:
    """Check access, then users, channels and each batch of channels' history with its
    changed threads.

    `workspace` names one of several configured workspaces (`[slack_pipeline.workspaces.<name>]`,
    see orchestration/workspaces/): its own token, dataset and dlt state, one run at a time.
    None is the single workspace of `sources.slack.*`.

    `start_date=None` continues each channel from its stored state, re-reading at least
    `lookback_days` (default from config) and the rest of the page that reaches it; a channel
    never loaded starts one day back. Dates are resolved at run time, never at import, so a
    long-running `.serve` process always loads the current day.
    """
    started = time.monotonic()
    attach_dlt_logs()  # dlt's and the source's lines in this run's logs, on any infrastructure
    logger = get_run_logger()
    # Before any task writes: bad input, or a bad, revoked or under-scoped token, fails here.
    run = prepare_run(workspace, channels, start_date, end_date, include_private, lookback_days)
    settings = run.settings
    logger.info(run.access.describe())

    with workspace_slot(workspace):  # never two runs of one workspace at once
        results = [get_users(settings)]
        listed = get_channels(settings, run.channels, run.conversation_types)
        results.append(listed)
        selected = listed["selected"]
        logger.info("Loading history of %d channel(s)", len(selected))
        batch = max(1, settings.channels_per_load)
        detected = None  # Slack's caps found by a batch hold for the batches after it
        pending = list(selected)
        while pending:  # a batch starts at least one channel: this ends
            chunk, pending = pending[:batch], pending[batch:]
            history = get_channel_history(
                settings, chunk, run.start, run.end, run.lookback_days, detected
            )
            results.append(history)
            detected = detected or history["stats"].get("detected_rate_limits")
            deferred = set(history["stats"].get("deferred_channels", ()))
            pending = [channel for channel in chunk if channel["id"] in deferred] + pending
    summary = publish_summary(settings, results, time.monotonic() - started)
    if summary["failed_channels"]:
        # The other channels are loaded; the run still must not look like a success.
        failed = ", ".join(f"#{name} ({why})" for name, why in summary["failed_channels"].items())
        return failed_run(f"Slack channels not loaded after retries: {failed}")
    return summary


if __name__ == "__main__":
    from orchestration.cli import main

    main(slack_pipeline)
