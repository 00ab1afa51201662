"""Unthrottled end-to-end throughput: emulator process -> extract/normalize/load (child) -> DuckDB.

python -m tooling.bench.throughput [--messages 100000]    (writes results/throughput_100k.json)
"""

from __future__ import annotations

import argparse

from .common import (
    Emulator,
    days_ago,
    load_figures,
    load_job,
    run_in_child,
    size_label,
    temp_dir,
    write_result,
)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--name", help="default: throughput_ and the size (100k, 1m or small)")
    args = parser.parse_args(argv)

    emulator = Emulator(
        seed=args.seed,
        channels=args.channels,
        messages=args.messages,
        threads=max(1, args.messages // 40),
        # every channel readable: all `--messages` are loaded (the archived one is read too)
        private_channels=0,
        non_member_channels=0,
    )
    with emulator, temp_dir("throughput") as tmp:
        run = run_in_child(
            load_job,
            base_url=emulator.base_url,
            pipelines_dir=tmp,
            name="throughput",
            source_kwargs={"start_date": days_ago(40), "rate_limit_profile": "off"},
        )
    loaded = run["rows"].get("messages", 0)
    rate = loaded / run["wall_s"]
    key = f"unthrottled_msgs_per_s_{size_label(args.messages)}"
    result = load_figures(args.messages, run, key, "peak_rss_mb_1m")
    print(
        f"{loaded} message rows in {run['wall_s']:.2f} s = {rate:.0f} msgs/s "
        f"(load process CPU {run['cpu_s']:.1f} s), "
        f"peak RSS {run['peak_rss_mb']:.0f} MB, stages {run['stages']}"
    )
    write_result(args.name or f"throughput_{size_label(args.messages)}", result)
    return result


if __name__ == "__main__":
    main()
