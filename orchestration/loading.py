"""One dlt pipeline per run settings; each load returns the rows it wrote per table.

Loads are serialized: two `pipeline.run` calls on one pipeline share its working folder and
state, and DuckDB allows one writer per file.
"""

import gc
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Iterator, List, Optional

import dlt
from dlt.common.configuration.utils import get_resolved_traces
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.common.pipeline import LoadInfo
from dlt.common.runtime.collector import NULL_COLLECTOR as _NULL_COLLECTOR
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.extract.source import DltSource

from slack_source.import_export import (
    ExportLayout,
    direct_kinds,
    import_export_source,
    open_export,
)
from slack_source.run_stats import RunStats

from .bigquery_layout import apply_bigquery_layout
from .progress import RunProgress
from .run_settings import RunSettings, duckdb_settings, source_settings

_LOAD_LOCK = threading.Lock()
logger = logging.getLogger("dlt.slack")

# Python's cyclic garbage collector during a load: a pass after every 50,000 new container
# objects instead of 700, and full passes rarely (Python's defaults: 700, 10, 10).
LOAD_GC_THRESHOLD = (50_000, 20, 100)


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Python's default thresholds for the duration of a load, then back as they were.

    Parsing Slack's pages makes dozens of dicts, lists and strings per message, which reference
    counting frees (they form no cycles); with the defaults the collector still walks the live
    heap over and over during a load (figures: tooling/bench/RESULTS.md). Loads are serialized
    (`_LOAD_LOCK`), so restoring is safe."""
    before = gc.get_threshold()
    gc.set_threshold(*LOAD_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def duckdb_destination(database: Optional[str] = None) -> Any:
    """DuckDB, its load jobs run one at a time (dlt's default runs up to 20 at once).

    DuckDB has one writer anyway; in parallel, the state row's INSERT (SQL holding the whole
    source state) is parsed beside the messages insert, which raises peak RSS for no gain in
    wall (tooling/bench/RESULTS.md, "What the profile said first").

    The file goes in as credentials whose `database` is set: dlt parses a string as a
    connection URL first, with SQLAlchemy, whose import costs a one-off run ~0.8 s of CPU.
    `[destination.duckdb.credentials]` settings (the memory limit) still apply."""
    credentials = None
    if database is not None:
        credentials = DuckDbCredentials()
        credentials.database = database
    return dlt.destinations.duckdb(
        credentials=credentials, loader_parallelism_strategy="sequential"
    )


def duckdb_file(settings: RunSettings) -> str:
    """The DuckDB file a run loads into, as an absolute path: `slack_pipeline.duckdb_file`, else
    the `destination.duckdb.credentials` set in the environment or secrets.toml, else
    `<pipeline_name>.duckdb`; a relative one is in the working folder of the run.

    Always handed to dlt: .dlt/config.toml holds `[destination.duckdb.credentials]` settings (the
    memory limit), which dlt would otherwise take for the credentials themselves ("config.toml
    cannot hold secret values"). Absolute: dlt resolves a relative path against the folder the
    pipeline was first run from (its local state's `initial_cwd`), not the run's working folder,
    so a run from another folder (a worker's) would load into another file than `check` names."""
    return os.path.abspath(_configured_duckdb_file(settings))


def _configured_duckdb_file(settings: RunSettings) -> str:
    if settings.duckdb_file:
        return settings.duckdb_file
    configured = duckdb_settings().credentials
    if isinstance(configured, dict):  # a [destination.duckdb.credentials] table in secrets.toml
        configured = configured.get("database")
    if isinstance(configured, str) and configured:
        return configured
    return f"{settings.pipeline_name}.duckdb"


def make_pipeline(settings: RunSettings, stats: Optional[RunStats] = None) -> dlt.Pipeline:
    """The run's dlt pipeline; `stats`: the Slack calls its progress lines count."""
    kwargs = {}
    if settings.pipelines_dir:
        kwargs["pipelines_dir"] = settings.pipelines_dir
    if settings.staging:
        # Load files go to the bucket of `[destination.filesystem]` and BigQuery loads them from
        # there instead of from uploads by this process: the way dlt loads large backfills.
        kwargs["staging"] = settings.staging
    destination: Any = settings.destination
    if settings.destination == "duckdb":
        destination = duckdb_destination(duckdb_file(settings))
    return dlt.pipeline(
        pipeline_name=settings.pipeline_name,
        destination=destination,
        dataset_name=settings.dataset_name,
        progress=run_progress(settings, stats),
        **kwargs,
    )


def run_progress(settings: RunSettings, stats: Optional[RunStats]) -> Any:
    """One progress line per stage every `progress_seconds` in the run's log (dlt's default
    prints blocks on stdout, outside the run's log); `_NULL_COLLECTOR` when set to 0."""
    if settings.progress_seconds <= 0:
        return _NULL_COLLECTOR
    source = source_settings()
    return RunProgress(
        settings.progress_seconds,
        stats,
        rate_limit_profile=source.rate_limit_profile,
        minute_seconds=source.rate_limit_minute_seconds,
    )


def preferred_file_format(pipeline: dlt.Pipeline) -> Optional[str]:
    """Parquet for DuckDB: far faster to load and far less memory than dlt's default INSERT
    statements (figures: tooling/bench/RESULTS.md, "Figures moved from code comments")."""
    if pipeline.destination is not None and pipeline.destination.destination_name == "duckdb":
        return "parquet"
    return None


def finish_pending(pipeline: dlt.Pipeline) -> List[str]:
    """Normalize and load the packages a killed run left behind; return their load ids.

    `pipeline.run` with pending packages loads those and silently skips the data it was
    given, so each load finishes them explicitly first and then extracts its own."""
    extracted = list(pipeline.list_extracted_load_packages())
    normalized = list(pipeline.list_normalized_load_packages())
    if not extracted and not normalized:
        return []
    logger.warning(
        "Finishing %d load package(s) an earlier run left behind: %s",
        len(extracted) + len(normalized),
        ", ".join(extracted + normalized),
    )
    if extracted:
        pipeline.normalize()
    pipeline.load().raise_on_failed_jobs()
    return extracted + normalized


def sql_literals(client: Any, values: Collection[str]) -> str:
    """`values`, sorted, as the destination's escaped SQL literals for an `IN (...)` list."""
    literal = client.capabilities.escape_literal
    return ", ".join(literal(value) for value in sorted(values))


def has_messages(pipeline: dlt.Pipeline, channel_ids: Optional[Collection[str]] = None) -> bool:
    """Whether the destination's `messages` table holds a row (of one of `channel_ids`, or of
    any channel when None); a read, nothing is created."""
    try:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name("messages")
            where = ""
            if channel_ids is not None:
                if not channel_ids:
                    return False
                where = f" WHERE channel_id IN ({sql_literals(client, channel_ids)})"
            return bool(client.execute_sql(f"SELECT 1 FROM {table}{where} LIMIT 1"))
    except (DestinationUndefinedEntity, DatabaseUndefinedRelation):
        return False


@contextmanager
def without_config_traces() -> Iterator[None]:
    """dlt's log of config lookups emptied before a load and after it (and what runs with it).

    dlt logs every lookup with its configuration; a partially resolved one holds the exception
    of its missing field, whose traceback holds the frames up the stack and their locals. dlt
    empties the log when a `pipeline.run` ends, so what is looked up between runs (the thread
    check after a load, the next batch's pipeline) stays for the whole next run: at 1M, four
    copies of the thread marks; emptied, Python holds 978k blocks before the second batch
    instead of 1,083k (tooling/bench/RESULTS.md, "Under 400 MB at 1M"). Only the trace of the
    config values read outside a run is lost."""
    get_resolved_traces().clear()
    try:
        yield
    finally:
        get_resolved_traces().clear()


def load(pipeline: dlt.Pipeline, source: DltSource) -> Dict[str, Any]:
    """Finish any pending packages, then extract, normalize and load `source`.

    Returns `rows` (rows written per table by this load, dlt tables excluded) and
    `recovered_packages` (load ids finished for an earlier, interrupted run)."""
    with _LOAD_LOCK:
        recovered = finish_pending(pipeline)
        return _run(pipeline, source, recovered)


def load_messages(
    pipeline: dlt.Pipeline,
    build: Callable[[bool], DltSource],
    append_into_empty: bool,
    after: Optional[Callable[[dlt.Pipeline], Dict[str, Any]]] = None,
    channel_ids: Optional[Collection[str]] = None,
) -> Dict[str, Any]:
    """`load` for a source of `messages`, built by `build(append_into_empty)`: where the
    destination has no `messages` row of the load's channels (`channel_ids`, all when None) it
    appends instead of merging when `append_into_empty`. Same result: a merge only touches rows
    of the same (`channel_id`, `ts`), so a first backfill's second batch of channels appends
    too. Decided after a killed run's packages are finished, since those may write rows.
    `after(pipeline)`
    runs once the load is done, still holding the load lock (it may commit state: the thread
    check of orchestration/reconcile.py); what it returns is added to the result."""
    with _LOAD_LOCK, without_config_traces():
        recovered = finish_pending(pipeline)
        into_empty = append_into_empty and not has_messages(pipeline, channel_ids)
        result = _run(pipeline, build(into_empty), recovered)
        if after is not None:
            result.update(after(pipeline))
        return result


def _run(pipeline: dlt.Pipeline, source: DltSource, recovered: List[str]) -> Dict[str, Any]:
    # BigQuery: partition/cluster hints (orchestration/bigquery_layout.py); DuckDB gets none.
    if pipeline.destination is not None and pipeline.destination.destination_name == "bigquery":
        apply_bigquery_layout(source)
    with fewer_gc_passes():
        info: LoadInfo = pipeline.run(source, loader_file_format=preferred_file_format(pipeline))
    info.raise_on_failed_jobs()
    trace = pipeline.last_trace
    normalized = trace.last_normalize_info if trace else None
    counts = normalized.row_counts if normalized else {}
    rows = {table: n for table, n in counts.items() if not table.startswith("_dlt")}
    return {"rows": rows, "recovered_packages": recovered}


def table_row_counts(pipeline: dlt.Pipeline) -> Dict[str, int]:
    """Rows now in each data table of the dataset (for summaries and the demo)."""
    counts: Dict[str, int] = {}
    schema = pipeline.default_schema if pipeline.default_schema_name else None
    if schema is None:
        return counts
    with pipeline.sql_client() as client:
        for table in schema.data_table_names():
            try:
                rows = client.execute_sql(
                    f"SELECT COUNT(*) FROM {client.make_qualified_table_name(table)}"
                )
            except Exception:  # noqa: BLE001 - a table declared but never created has no rows
                continue
            counts[table] = int(rows[0][0])
    return counts


def import_export(
    settings: RunSettings,
    path: "str | Path",
    layout: Optional[ExportLayout] = None,
    **source_kwargs: Any,
) -> Dict[str, Any]:
    """Load the export into `settings`' pipeline; rows per table and counts for the summary.

    One dlt load, so that bad input writes nothing: dlt extracts everything into its local
    working folder before normalize and load touch the destination, and every day file is
    parsed during that extract, so a malformed one (named in the error) stops the run first.
    A separate parse-only pass would find the same files at the cost of reading the export
    twice (the largest part of the import's CPU time).

    `source_kwargs` go to `import_export_source` (e.g. `pii_mode`); unset ones come from
    `sources.slack.*` config like the API source's.
    """
    if layout is None:
        kinds = source_kwargs.get("conversation_types", source_settings().conversation_types)
        layout = open_export(path, direct_kinds(kinds))
    stats = RunStats()
    pipeline = make_pipeline(settings, stats)

    def export(append_into_empty: bool) -> Any:
        kwargs = {"append_into_empty": append_into_empty, **source_kwargs}
        return import_export_source(str(path), layout=layout, stats=stats, **kwargs)

    result = {
        **load_messages(pipeline, export, settings.append_into_empty),
        "stats": stats.as_dict(),
    }
    result["stats"]["day_files"] = layout.day_files
    return result
