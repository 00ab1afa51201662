"""Backfill from a Slack export end to end: the emulator writes an export ZIP, a fresh (spawned)
process imports it into DuckDB through `orchestration.loading.import_export` (what
`./run.sh import-export` runs inside its flow), and we report messages/s and that process's
peak RSS (`ru_maxrss`: the whole process, DuckDB and dlt included).

python -m tooling.bench.import_export [--messages 1000000]    (writes results/import_export_1m.json)

The export is written once per size and seed into tooling/bench/work/ and reused (writing 1M
messages takes about a minute and is not what is measured).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

from .common import (
    ROOT,
    load_figures,
    peak_rss_mb,
    run_in_child,
    size_label,
    stage_seconds,
    temp_dir,
    write_result,
)

WORK = Path(__file__).resolve().parent / "work"


def export_path(messages: int, channels: int, seed: int) -> Path:
    """The export ZIP for these options, written by `python -m tooling.slack_emulator export`
    if new."""
    path = WORK / f"export_{messages}_{channels}_{seed}.zip"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        args = [
            sys.executable, "-m", "tooling.slack_emulator", "export", str(partial),
            "--seed", str(seed), "--channels", str(channels), "--messages", str(messages),
            "--threads", str(max(1, messages // 40)), "--private-channels", "0",
            "--non-member-channels", "0", "--days", "30",
        ]  # fmt: skip
        subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        partial.rename(path)
    return path


def import_job(path: str, pipelines_dir: str, name: str) -> Dict[str, Any]:
    """One import (runs in the child process): timings, rows, stages and peak RSS."""
    import dlt

    from orchestration.loading import import_export
    from orchestration.run_settings import RunSettings

    os.environ["DESTINATION__DUCKDB__CREDENTIALS"] = str(Path(pipelines_dir) / f"{name}.duckdb")
    settings = RunSettings(pipeline_name=name, pipelines_dir=pipelines_dir)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = import_export(settings, path)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    pipeline = dlt.attach(pipeline_name=name, pipelines_dir=pipelines_dir)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "rows": result["rows"],
        "stages": stage_seconds(pipeline),
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: Any = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--name", help="default: import_export_ and the size (100k, 1m or small)")
    args = parser.parse_args(argv)

    path = export_path(args.messages, args.channels, args.seed)
    with temp_dir("import_export") as tmp:
        run = run_in_child(import_job, path=str(path), pipelines_dir=tmp, name="import_export")
    loaded = run["rows"].get("messages", 0)
    rate = loaded / run["wall_s"]
    result = load_figures(
        args.messages,
        run,
        f"export_msgs_per_s_{size_label(args.messages)}",
        "export_peak_rss_mb_1m",
        export_mb=round(path.stat().st_size / 2**20, 1),
    )
    print(
        f"{loaded} message rows from a {result['export_mb']} MB export in {run['wall_s']:.2f} s"
        f" = {rate:.0f} msgs/s (import process CPU {run['cpu_s']:.1f} s),"
        f" peak RSS {run['peak_rss_mb']:.0f} MB, stages {run['stages']}"
    )
    write_result(args.name or f"import_export_{size_label(args.messages)}", result)
    return result


if __name__ == "__main__":
    main()
