"""The run summary: returned by the flow and published as a Prefect artifact.

It carries counts only (rows, calls, 429s, skipped channels), never message text or secrets.
"""

from collections import Counter
from typing import Any, Dict, List

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from .run_settings import RunSettings


def merge_results(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    rows: Counter = Counter()
    merged: Dict[str, Any] = {
        "api_calls": Counter(),
        "ratelimited_429": Counter(),
        "retries": Counter(),
        "messages_per_channel": Counter(),
        "replies_per_channel": Counter(),
        "deleted_per_channel": Counter(),
        "skipped_channels": {},
        "failed_channels": {},
        "channel_names": {},
        "joined_channels": [],
        "recovered_packages": [],
        "incomplete_threads": [],
        "threads_refreshed": 0,
        "seconds_waited_for_limits": 0.0,
        "detected_rate_limits": None,
        "detected_by": None,
    }
    for result in results:
        rows.update(result.get("rows", {}))
        stats = result.get("stats", {})
        for key in ("api_calls", "ratelimited_429", "retries") + tuple(
            k for k in merged if k.endswith("_per_channel")
        ):
            merged[key].update(stats.get(key, {}))
        merged["skipped_channels"].update(stats.get("skipped_channels", {}))
        merged["failed_channels"].update(stats.get("failed_channels", {}))
        merged["channel_names"].update(stats.get("channel_names", {}))
        merged["joined_channels"].extend(stats.get("joined_channels", []))
        merged["recovered_packages"].extend(result.get("recovered_packages", []))
        merged["incomplete_threads"].extend(result.get("incomplete_threads", []))
        merged["threads_refreshed"] += stats.get("threads_refreshed", 0)
        merged["seconds_waited_for_limits"] += stats.get("seconds_waited_for_limits", 0.0)
        if merged["detected_rate_limits"] is None and stats.get("detected_rate_limits"):
            merged["detected_rate_limits"] = stats["detected_rate_limits"]
            merged["detected_by"] = stats.get("detected_by")
    summary = {key: dict(v) if isinstance(v, Counter) else v for key, v in merged.items()}
    summary["rows_loaded"] = dict(rows)
    return summary


def summary_markdown(summary: Dict[str, Any], title: str = "Slack load") -> str:
    lines = [f"# {title}", "", "| table | rows loaded |", "|---|---|"]
    lines += [f"| {t} | {n} |" for t, n in sorted(summary["rows_loaded"].items())]
    lines += ["", "| channel | messages read | replies | deleted |", "|---|---|---|---|"]
    names = summary.get("channel_names", {})
    for channel, n in sorted(summary["messages_per_channel"].items()):
        replies = summary["replies_per_channel"].get(channel, 0)
        deleted = summary["deleted_per_channel"].get(channel, 0)
        label = f"#{names[channel]} ({channel})" if channel in names else channel
        lines.append(f"| {label} | {n} | {replies} | {deleted} |")
    lines += ["", "| API method | calls | 429s |", "|---|---|---|"]
    for method, n in sorted(summary["api_calls"].items()):
        lines.append(f"| {method} | {n} | {summary['ratelimited_429'].get(method, 0)} |")
    lines += [
        "",
        f"Threads refreshed: {summary['threads_refreshed']}  ",
        f"Seconds waited for rate limits: {summary['seconds_waited_for_limits']:.1f}  ",
        f"Elapsed: {summary.get('elapsed_seconds', 0):.1f} s  ",
        "Rate limits detected: "
        + (
            f"{summary['detected_rate_limits']} ({summary['detected_by']}); set"
            f' sources.slack.rate_limit_profile = "{summary["detected_rate_limits"]}"  '
            if summary.get("detected_rate_limits")
            else "none  "
        ),
    ]
    skipped = summary["skipped_channels"]
    lines.append(
        "Skipped channels: "
        + (", ".join(f"#{c} ({why})" for c, why in sorted(skipped.items())) or "none")
    )
    failed = summary["failed_channels"]
    lines.append(
        "Failed channels: "
        + (", ".join(f"#{c} ({why})" for c, why in sorted(failed.items())) or "none")
        + "  "
    )
    lines += incomplete_threads_markdown(summary)
    recovered = summary["recovered_packages"]
    lines.append(
        "Finished for an earlier, interrupted run: "
        + (f"{len(recovered)} load package(s) ({', '.join(recovered)})" if recovered else "none")
    )
    return "\n".join(lines)


def incomplete_threads_markdown(summary: Dict[str, Any]) -> List[str]:
    """The threads whose replies did not add up after the load (orchestration/reconcile.py)."""
    incomplete = summary.get("incomplete_threads") or []
    if not incomplete:
        return ["Incomplete threads: none  "]
    names = summary.get("channel_names", {})
    lines = [
        "",
        f"Incomplete threads (fetched again by the next run): {len(incomplete)}",
        "",
        "| channel | thread | expected | loaded |",
        "|---|---|---|---|",
    ]
    for t in incomplete:
        channel = (
            f"#{names[t['channel']]} ({t['channel']})" if t["channel"] in names else t["channel"]
        )
        lines.append(f"| {channel} | {t['thread']} | {t['expected']} | {t['loaded']} |")
    return lines + [""]


COUNTS_KEY = "slack-load-counts"


def counts_table(summary: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The summary's counts as rows (`kind`, `name`, `count`): what a parent flow reads back
    from each child run through the API, whatever machine the child ran on."""
    rows = [{"kind": "rows", "name": t, "count": n} for t, n in summary["rows_loaded"].items()]
    rows += [{"kind": "calls", "name": m, "count": n} for m, n in summary["api_calls"].items()]
    rows += [{"kind": "429s", "name": m, "count": n} for m, n in summary["ratelimited_429"].items()]
    rows.append({"kind": "seconds", "name": "elapsed", "count": summary["elapsed_seconds"]})
    if summary.get("detected_rate_limits"):
        rows.append({"kind": "detected", "name": summary["detected_rate_limits"], "count": 1})
    return rows


def publish_summary(
    settings: RunSettings,
    results: List[Dict[str, Any]],
    elapsed_seconds: float,
    artifact_key: str = "slack-load-summary",
    title: str = "Slack load",
) -> Dict[str, Any]:
    """Merge task results, log the outcome, publish the artifact, return the summary."""
    summary = merge_results(results)
    summary["elapsed_seconds"] = round(elapsed_seconds, 2)
    summary["destination"] = settings.destination
    summary["dataset_name"] = settings.dataset_name
    logger = get_run_logger()
    logger.info(
        "Loaded rows per table: %s; API calls: %s",
        summary["rows_loaded"],
        summary["api_calls"],
    )
    if summary["skipped_channels"]:
        logger.warning(
            "Skipped channels (not loaded): %s",
            ", ".join(f"#{c} ({why})" for c, why in sorted(summary["skipped_channels"].items())),
        )
    if summary["incomplete_threads"]:
        logger.warning(
            "%d incomplete thread(s), fetched again by the next run: %s",
            len(summary["incomplete_threads"]),
            ", ".join(f"{t['channel']}/{t['thread']}" for t in summary["incomplete_threads"]),
        )
    create_markdown_artifact(
        key=artifact_key,
        markdown=summary_markdown(summary, title),
        description="Rows, API calls and skipped channels of this Slack load",
    )
    create_table_artifact(
        key=COUNTS_KEY,
        table=counts_table(summary),
        description="Rows, API calls and 429s of this Slack load, one row each",
    )
    return summary
