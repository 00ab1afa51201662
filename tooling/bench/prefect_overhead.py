"""The same small load through the Prefect flow vs a bare dlt pipeline.

    python -m tooling.bench.prefect_overhead [--messages 3000]

Each side runs in its own fresh process. The flow is run twice: the first run pays the one-off
start-up (imports, ephemeral Prefect server); the second is the steady-state overhead. A third
process runs the flow against an already running `prefect server` (PREFECT_API_URL), the way to
avoid the ephemeral server's start-up on every one-off run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from orchestration.prefect_server import local_prefect_server

from .common import TOKEN, Emulator, days_ago, load_job, run_in_child, temp_dir, write_result


def flow_job(base_url: str, workdir: str, start_date: str, api_url: str = "") -> dict:
    """In the child: import the flow module, run the flow twice on fresh pipelines."""
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url
    os.environ.update(
        {
            "SOURCES__SLACK__ACCESS_TOKEN": TOKEN,
            "SOURCES__SLACK__API_BASE_URL": base_url,
            "SOURCES__SLACK__RATE_LIMIT_PROFILE": "off",
            "SLACK_PIPELINE__DESTINATION": "duckdb",
            "SLACK_PIPELINE__PIPELINES_DIR": str(Path(workdir) / "pipelines"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    started = time.perf_counter()
    from slack_pipeline_with_prefect import slack_pipeline

    import_s = time.perf_counter() - started
    walls = []
    for i in range(2):
        name = f"flow_{'server' if api_url else 'ephemeral'}_{i}"
        os.environ["SLACK_PIPELINE__PIPELINE_NAME"] = name
        os.environ["DESTINATION__DUCKDB__CREDENTIALS"] = str(Path(workdir) / f"{name}.duckdb")
        t0 = time.perf_counter()
        slack_pipeline(start_date=start_date)
        walls.append(time.perf_counter() - t0)
    return {"import_s": import_s, "first_s": walls[0], "warm_s": walls[1]}


def bare_job(base_url: str, workdir: str, start_date) -> dict:
    started = time.perf_counter()
    import dlt  # noqa: F401

    import slack_source  # noqa: F401

    import_s = time.perf_counter() - started
    run = load_job(
        base_url, workdir, "bare", {"start_date": start_date, "rate_limit_profile": "off"}
    )
    return {"import_s": import_s, "wall_s": run["wall_s"]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--name", default="prefect_overhead")
    args = parser.parse_args(argv)

    start = days_ago(40)
    emulator = Emulator(
        seed=args.seed,
        channels=args.channels,
        messages=args.messages,
        threads=max(1, args.messages // 40),
    )
    with emulator, temp_dir("prefect") as tmp:
        bare = run_in_child(bare_job, base_url=emulator.base_url, workdir=tmp, start_date=start)
        flow = run_in_child(
            flow_job,
            base_url=emulator.base_url,
            workdir=tmp,
            start_date=start.strftime("%Y-%m-%d"),
        )
        with local_prefect_server(Path(tmp) / "prefect_home") as server:
            served = run_in_child(
                flow_job,
                base_url=emulator.base_url,
                workdir=tmp,
                start_date=start.strftime("%Y-%m-%d"),
                api_url=server.api_url,
            )
    result = {
        "messages": args.messages,
        "bare_import_s": round(bare["import_s"], 3),
        "bare_wall_s": round(bare["wall_s"], 3),
        "flow_import_s": round(flow["import_s"], 3),
        "flow_first_run_s": round(flow["first_s"], 3),
        "flow_warm_run_s": round(flow["warm_s"], 3),
        "prefect_overhead_ratio": round(flow["warm_s"] / bare["wall_s"], 3),
        "prefect_startup_s": round(
            flow["import_s"] - bare["import_s"] + flow["first_s"] - flow["warm_s"], 3
        ),
        "flow_with_server_first_run_s": round(served["first_s"], 3),
        "flow_with_server_warm_run_s": round(served["warm_s"], 3),
        "prefect_startup_with_server_s": round(
            served["import_s"] - bare["import_s"] + served["first_s"] - served["warm_s"], 3
        ),
    }
    print(
        f"bare dlt {bare['wall_s']:.2f} s; flow warm {flow['warm_s']:.2f} s "
        f"(ratio {result['prefect_overhead_ratio']}); one-off start-up "
        f"{result['prefect_startup_s']:.2f} s (import {flow['import_s']:.2f} s, "
        f"first run {flow['first_s']:.2f} s); with a running server: start-up "
        f"{result['prefect_startup_with_server_s']:.2f} s, warm run {served['warm_s']:.2f} s"
    )
    write_result(args.name, result)
    return result


if __name__ == "__main__":
    main()
