"""Backfill under Slack's tier limits (time compressed) vs the lower bound from the workspace.

    python -m tooling.bench.backfill_vs_bound [--channels 10 --messages 20000 --threads 500]
                                      [--time-scale 0.01]

`--time-scale 0.01` makes Slack's minute 0.6 s. Only Slack's side is compressed, so at small
scales our own CPU time (parsing, normalize, load) weighs far more against the bound than it
does against real Slack, where a 5k-thread backfill is bound at 100 minutes.

Bound: per method, the fewest calls the data needs divided by the method's allowance per
(scaled) minute; methods run in parallel, so the bound is the slowest method.
"""

from __future__ import annotations

import argparse

from .common import (
    ALLOWANCE,
    add_workspace_arguments,
    days_ago,
    load_job,
    pages,
    readable_channels,
    run_in_child,
    temp_dir,
    tiers_emulator,
    top_level_per_channel,
    write_result,
)

DEFAULT_TIME_SCALE = 0.01


def minimum_calls(remote) -> dict:
    """Fewest calls per method that a backfill of every readable public channel needs."""
    readable = set(readable_channels(remote.channels()))
    top, replies = top_level_per_channel(remote.ground_truth())
    threads = [key for key in replies if key[0] in readable]
    return {
        "users.list": 1,
        "conversations.list": 1,
        "conversations.history": sum(pages(top[c]) for c in readable),
        # the parent comes back on every replies page, so it counts toward the page
        "conversations.replies": sum(pages(replies[t] + 1) for t in threads),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    add_workspace_arguments(parser, messages=20000, threads=500, time_scale=DEFAULT_TIME_SCALE)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--name", default="backfill_vs_bound")
    args = parser.parse_args(argv)
    minute_s = 60 * args.time_scale

    emulator = tiers_emulator(args, seed=args.seed)
    with emulator, temp_dir("backfill") as tmp:
        remote = emulator.remote()
        minimum = minimum_calls(remote)
        remote.reset_stats(rate_limits=True)
        run = run_in_child(
            load_job,
            base_url=emulator.base_url,
            pipelines_dir=tmp,
            name="backfill",
            source_kwargs={
                "start_date": days_ago(40),
                "rate_limit_profile": "tiers",
                "rate_limit_minute_seconds": minute_s,
            },
        )
        server = remote.stats()

    calls = server.get("requests") or run["calls"]
    limited = server.get("ratelimited") or run["ratelimited"]
    per_method_bound = {m: n / ALLOWANCE[m] * minute_s for m, n in minimum.items()}
    bound = max(per_method_bound.values())
    min_total = sum(minimum.values())
    made_total = sum(calls.get(m, 0) for m in minimum)
    result = {
        "channels": args.channels,
        "messages": args.messages,
        "threads": args.threads,
        "time_scale": args.time_scale,
        "backfill_wall_s": round(run["wall_s"], 3),
        "backfill_bound_s": round(bound, 3),
        "backfill_wall_over_bound": round(run["wall_s"] / bound, 3),
        "backfill_calls_over_min": round(made_total / min_total, 3),
        "backfill_429s": sum(limited.values()),
        "peak_rss_mb": round(run["peak_rss_mb"], 1),
        "rows_messages": run["rows"].get("messages", 0),
    }
    for method, n in minimum.items():
        key = method.replace(".", "_")
        result[f"calls_{key}"] = calls.get(method, 0)
        result[f"min_calls_{key}"] = n
        result[f"bound_s_{key}"] = round(per_method_bound[method], 3)
    for stage, seconds in run["stages"].items():
        result[f"stage_{stage}"] = seconds

    print(f"{'method':24} {'calls':>7} {'min':>7} {'bound s':>8}")
    for method, n in minimum.items():
        print(f"{method:24} {calls.get(method, 0):7} {n:7} {per_method_bound[method]:8.2f}")
    print(
        f"wall {run['wall_s']:.2f} s, bound {bound:.2f} s, "
        f"wall/bound {result['backfill_wall_over_bound']}, "
        f"calls/min {result['backfill_calls_over_min']}, 429s {result['backfill_429s']}"
    )
    write_result(args.name, result)
    return result


if __name__ == "__main__":
    main()
