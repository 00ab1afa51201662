"""The end of a run on the console: rows per table, channels not loaded, where the data is and
how to query it. The same report ends `run`, `import-export` and the demo."""

from typing import Any, Dict, List

from .loading import duckdb_file, make_pipeline, table_row_counts
from .run_settings import RunSettings, bigquery_credentials

TABLES = ("users", "channels", "messages")


def report_lines(
    summary: Dict[str, Any], settings: RunSettings, title: str = "Slack load"
) -> List[str]:
    """A short report of a finished run (counts only: no message text, no secrets)."""
    counts = table_row_counts(make_pipeline(settings))
    where = destination_name(settings)
    lines = ["", f"{title}: finished in {summary.get('elapsed_seconds', 0):.1f} s into {where}"]
    loaded = summary.get("rows_loaded", {})
    for table in [*TABLES, *sorted(set(counts) - set(TABLES))]:
        written = f"  ({loaded[table]} written by this run)" if loaded.get(table) else ""
        lines.append(f"  {table:<22}{counts.get(table, 0):>8} rows{written}")
    calls = ", ".join(f"{m} {n}" for m, n in sorted(summary.get("api_calls", {}).items()))
    if calls:
        lines.append(f"  API calls: {calls}")
    for label, key in (("Skipped", "skipped_channels"), ("Failed", "failed_channels")):
        channels = summary.get(key) or {}
        if channels:
            named = ", ".join(f"#{c} ({why})" for c, why in sorted(channels.items()))
            lines.append(f"  {label} channels: {named}")
    lines += ["", "Query it:", f"  {query_hint(settings)}"]
    return lines


def destination_name(settings: RunSettings) -> str:
    if settings.destination == "duckdb":
        return f"{duckdb_file(settings)}, dataset {settings.dataset_name}"
    return f"BigQuery dataset {settings.dataset_name}"


PER_CHANNEL = "select channel_id, count(*) as messages from {table} group by 1"


def query_hint(settings: RunSettings) -> str:
    """A command or a query to copy: messages per channel."""
    sql = PER_CHANNEL.format(table=f"{settings.dataset_name}.messages")
    if settings.destination == "duckdb":
        file = duckdb_file(settings)
        return f"./run.sh python -c \"import duckdb; print(duckdb.connect('{file}').sql('{sql}'))\""
    project = bigquery_credentials().project_id
    table = f"{project}.{settings.dataset_name}" if project else settings.dataset_name
    sql = PER_CHANNEL.format(table=f"`{table}.messages`")
    return f"bq query --use_legacy_sql=false '{sql}'"
