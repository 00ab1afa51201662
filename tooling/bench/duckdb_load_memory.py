"""What DuckDB itself takes to load a run's messages, under given settings (issue #27).

A flow run's peak RSS is its last history load. This replays that load's part in DuckDB
alone: the `messages` parquet files of a pipeline's loaded packages, inserted one package at a
time into a new database the way dlt's copy job does (`INSERT INTO ... BY NAME SELECT * FROM
read_parquet(...)`), each through its own connection, printing the RSS each insert starts at,
its peak over that (insert, then close: the checkpoint) and what the close leaves:

    ./run.sh python -m tooling.bench.duckdb_load_memory PIPELINES_DIR/slack [threads=1 ...]

Settings are DuckDB's (`memory_limit=32MB`, `threads=1`, ...), on top of the ones a run gets
from .dlt/config.toml (`[destination.duckdb.credentials] global_config`). Linux only
(the peak is the kernel's high-water mark, reset before each insert).
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile
import time
import tomllib
from typing import Any, Dict, List

import duckdb

from .common import ROOT
from .stage_memory import reset_peak, status


def configured() -> Dict[str, Any]:
    """The DuckDB settings a run gets from .dlt/config.toml."""
    with open(ROOT / ".dlt" / "config.toml", "rb") as config:
        return tomllib.load(config)["destination"]["duckdb"]["credentials"]["global_config"]


def message_files(pipeline_dir: str) -> List[str]:
    """The loaded `messages` parquet files, oldest package first."""
    pattern = os.path.join(
        pipeline_dir, "load", "loaded", "*", "completed_jobs", "messages.*.parquet"
    )
    return sorted(glob.glob(pattern), key=lambda path: path.split(os.sep)[-3])


def replay(files: List[str], settings: Dict[str, str]) -> None:
    config = {**configured(), **settings}
    with tempfile.TemporaryDirectory() as where:
        database = os.path.join(where, "replay.duckdb")
        for number, path in enumerate(files, 1):
            reset_peak()
            start = status()["VmRSS"]
            started = time.perf_counter()
            connection = duckdb.connect(database, config=config)
            source = f"read_parquet('{path}', union_by_name=true)"
            if number == 1:
                connection.execute(f"CREATE TABLE messages AS SELECT * FROM {source} LIMIT 0")
            connection.execute(f"INSERT INTO messages BY NAME SELECT * FROM {source}")
            inserted = status()["VmHWM"]
            rows = connection.execute("SELECT count(*) FROM messages").fetchone()[0]
            connection.close()
            after = status()
            print(
                f"load {number}: starts at {start} MB; insert peak +{inserted - start} MB,"
                f" with the close +{after['VmHWM'] - start} MB;"
                f" leaves +{after['VmRSS'] - start} MB;"
                f" {time.perf_counter() - started:.1f} s; {rows:,} rows in the table",
                flush=True,
            )


def main(argv: List[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    files = message_files(argv[0])
    if not files:
        raise SystemExit(f"no loaded messages parquet files under {argv[0]}")
    settings = dict(arg.split("=", 1) for arg in argv[1:])
    print(
        f"{len(files)} package(s); DuckDB {duckdb.__version__};"
        f" settings {configured()} with {settings or 'nothing else'}"
    )
    replay(files, settings)


if __name__ == "__main__":
    main(sys.argv[1:])
