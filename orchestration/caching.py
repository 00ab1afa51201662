"""Prefect cache keys for the reference data (users, channel list): one load per day and target.

A re-run or a retry of the same day's flow reuses the cached task result instead of calling
Slack again. The key names the day and the target (destination, dataset, DuckDB file, Slack
base URL), so a different workspace or database never reuses another's result.
"""

import os
from datetime import datetime, timedelta, timezone
from typing import Any, Dict

import dlt


def daily_target_key(context: Any, parameters: Dict[str, Any]) -> str:
    settings = parameters["settings"]
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    target = "|".join(
        str(part)
        for part in (
            settings.destination,
            settings.dataset_name,
            settings.pipeline_name,
            os.environ.get("DESTINATION__DUCKDB__CREDENTIALS", ""),
            dlt.config.get("sources.slack.api_base_url") or "",
            sorted(parameters.get("channels") or []),
            parameters.get("include_private", False),
        )
    )
    return f"{context.task.name}:{day}:{target}"


def cache_expiration() -> timedelta:
    """`slack_pipeline.cache_hours` (env SLACK_PIPELINE__CACHE_HOURS), default 20 hours."""
    hours = dlt.config.get("slack_pipeline.cache_hours")
    return timedelta(hours=float(hours if hours is not None else 20))
