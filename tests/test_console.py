"""The console a user reads: `run` as short as the demo, in one format, with a report at the end.

dlt's own records are at DEBUG (no pipe-separated lines, no pool or job bookkeeping), Prefect's
hook plumbing too; the per-channel lines, the progress line and the summary stay; `--verbose`
brings the details back.
"""

import logging
import re
import subprocess
from pathlib import Path

import pytest

from orchestration.progress import RunProgress
from slack_source.run_stats import RunStats
from tests.helpers import ROOT, emulator_cli_env, pipeline_cli

DLT_PIPE_FORMAT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\|\[")
PREFECT_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (INFO|WARNING|ERROR|DEBUG) +\| ")
# The small workspace has 5 readable channels: ~15 lines of Prefect's and the source's, the
# report, and the temporary server's start and stop.
MOST_LINES = 40


def run_cli(server, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    environment = emulator_cli_env(
        server,
        tmp_path,
        DESTINATION__DUCKDB__CREDENTIALS=str(tmp_path / "console.duckdb"),
        RUNTIME__LOG_LEVEL="INFO",  # as .dlt/config.toml ships it (the tests' default: WARNING)
    )
    return pipeline_cli(*args, cwd=ROOT, timeout=300, env=environment)


@pytest.mark.slow
def test_run_console_is_short_in_one_format_and_ends_with_a_report(emulator, tmp_path):
    workspace, server = emulator
    done = run_cli(server, tmp_path, "run", "--start-date", "2020-01-01")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) <= MOST_LINES, "\n".join(lines)
    assert not [line for line in lines if DLT_PIPE_FORMAT.search(line)]
    assert not [line for line in lines if "Running hook" in line or "Created none pool" in line]
    logged = [line for line in lines if PREFECT_LINE.match(line)]
    channel_lines = [line for line in logged if re.search(r"Slack #\S+: \d+ messages read", line)]
    public = [
        c
        for c in workspace.channels()
        if c.get("is_member") and not c["is_archived"] and not c.get("is_private")
    ]
    assert len(channel_lines) >= len(public), "\n".join(lines)
    assert all("Task run 'get_channel_history-" in line for line in channel_lines)
    assert "Slack load: finished in " in done.stdout
    assert re.search(r"^  messages +\d+ rows", done.stdout, re.MULTILINE)
    assert "Query it:" in done.stdout and str(tmp_path / "console.duckdb") in done.stdout


@pytest.mark.slow
def test_verbose_brings_dlt_and_prefect_details_back(emulator, tmp_path):
    _, server = emulator
    done = run_cli(server, tmp_path, "run", "--start-date", "2020-01-01", "--verbose")
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout + done.stderr
    assert "Running hook 'flush_run_logs'" in text
    assert re.search(r"\| DEBUG +\| Task run '.*' - .*(pool|job|package)", text, re.IGNORECASE)
    assert not DLT_PIPE_FORMAT.search(text)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_progress_is_one_line_per_period_with_calls_and_the_tier_bound(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("orchestration.progress.time.monotonic", lambda: clock[0])
    stats = RunStats(started_at=clock[0])
    progress = RunProgress(60.0, stats, rate_limit_profile="tiers")
    logger, seen = logging.getLogger("dlt.slack.progress"), Lines()
    logger.addHandler(seen)
    monkeypatch.setattr(logger, "level", logging.INFO)
    try:
        with progress("extract"):
            for _ in range(300):  # five minutes of rows, one update a second
                clock[0] += 1
                stats.count_call("conversations.replies")
                progress.update("messages", inc=100)
    finally:
        logger.removeHandler(seen)
    lines = seen.lines
    assert len(lines) == 5
    assert lines[0] == (
        "Extract: 6,000 rows (messages 6,000), 60 Slack calls, 1 min 0 s;"
        " conversations.replies at 60/min of its 50/min bound"
    )
    assert lines[-1].startswith("Extract: 30,000 rows (messages 30,000), 300 Slack calls, 5 min")
