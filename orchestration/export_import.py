"""Import a Slack export into the pipeline the daily run uses (no Prefect here: the flow in
`import_export_flow.py` wraps it, the benchmark and the tests call it directly).

Order of work, so that bad input writes nothing:
1. `check_export` reads the ZIP's central directory, `channels.json`/`groups.json` and the
   folder names: not a ZIP, not an export, a folder without a channel -> `SlackExportError`.
2. `import_export` runs one dlt load. dlt extracts everything first, into its local working
   folder, before normalize and load touch the destination; every day file is parsed during
   that extract, so a malformed one (named in the error) stops the run before the destination
   is written. A separate parse-only pass would find the same files at the cost of reading
   and parsing the whole export twice (the largest part of the import's CPU time).
"""

from pathlib import Path
from typing import Any, Dict, Optional

from slack_source.export import slack_export_source
from slack_source.export_archive import ExportLayout, SlackExportError, open_export
from slack_source.run_stats import RunStats

from .loading import load_messages, make_pipeline
from .settings import RunSettings


def check_export(path: "str | Path") -> ExportLayout:
    """Everything that can be decided without reading a message (see the module docstring)."""
    return open_export(path)


def import_export(
    settings: RunSettings,
    path: "str | Path",
    layout: Optional[ExportLayout] = None,
    **source_kwargs: Any,
) -> Dict[str, Any]:
    """Load the export into `settings`' pipeline; rows per table and counts for the summary.

    `source_kwargs` go to `slack_export_source` (e.g. `pii_mode`); unset ones come from
    `sources.slack.*` config like the API source's.
    """
    layout = layout or check_export(path)
    stats = RunStats()
    pipeline = make_pipeline(settings)

    def export(into_empty_table: bool) -> Any:
        kwargs = {"into_empty_table": into_empty_table, **source_kwargs}
        return slack_export_source(str(path), layout=layout, stats=stats, **kwargs)

    result = {
        **load_messages(pipeline, export, settings.append_into_empty),
        "stats": stats.as_dict(),
    }
    result["stats"]["day_files"] = layout.day_files
    return result


__all__ = ["SlackExportError", "check_export", "import_export"]
