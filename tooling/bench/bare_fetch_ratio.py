"""The pipeline against the limit, on one emulator workspace in one run (issue #17).

1. Bare fetch: a plain `requests.Session` pages `conversations.history` of every readable
   channel and `conversations.replies` of every thread, parses each body with `orjson`, and
   does nothing else: the wall no loader can beat from one process on this machine.
2. The pipeline: what `tooling.bench.throughput` measures, `slack_source` extract + normalize +
   load into DuckDB, in a fresh spawned process.

Both run in spawned children against the same emulator process, rate limits off on both ends.
Prints both walls and `pipeline / bare`; the goal is <= 2.

python -m tooling.bench.bare_fetch_ratio [--messages 100000 --channels 50 --threads 2000]

Writes results/bare_fetch_ratio_100k.json (`_1m` at 1M messages); give a `--merge` run its own
`--name`, so that it does not replace the current figures.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, List

from .common import (
    PAGE,
    SHAPES,
    TOKEN,
    Emulator,
    days_ago,
    load_figures,
    load_job,
    peak_rss_mb,
    run_in_child,
    shaped_workspace,
    size_label,
    temp_dir,
    write_result,
)


def _pages(session: Any, url: str, params: Dict[str, Any]) -> List[List[Dict[str, Any]]]:
    """Every page of one cursor-paginated call, parsed; no other processing."""
    import orjson

    out = []
    query = dict(params)
    while True:
        body = orjson.loads(session.get(url, params=query).content)
        out.append(body.get("messages") or [])
        cursor = (body.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return out
        query["cursor"] = cursor


def bare_fetch(base_url: str, oldest: float) -> Dict[str, Any]:
    """History of every readable channel, then replies of every thread (runs in a child)."""
    import requests

    base = base_url.rstrip("/") + "/"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    started, cpu_started = time.perf_counter(), time.process_time()
    channels = session.get(base + "conversations.list", params={"limit": PAGE}).json()["channels"]
    readable = [c["id"] for c in channels if c.get("is_member") and not c.get("is_private")]
    calls = {"conversations.history": 0, "conversations.replies": 0}
    messages = replies = 0
    threads = []
    for channel in readable:
        params = {"channel": channel, "oldest": f"{oldest:.6f}", "limit": PAGE}
        for page in _pages(session, base + "conversations.history", params):
            calls["conversations.history"] += 1
            messages += len(page)
            threads += [(channel, m["ts"]) for m in page if m.get("reply_count")]
    for channel, ts in threads:
        params = {"channel": channel, "ts": ts, "limit": PAGE}
        for page in _pages(session, base + "conversations.replies", params):
            calls["conversations.replies"] += 1
            # a broadcast was counted in history already: count each message once
            replies += sum(
                1 for m in page if m["ts"] != ts and m.get("subtype") != "thread_broadcast"
            )
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu_started,
        "calls": calls,
        "history_messages": messages,
        "replies": replies,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="default: messages / 50")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="bundled")
    parser.add_argument(
        "--name", help="default: bare_fetch_ratio_ and the size (100k, 1m or small)"
    )
    parser.add_argument(
        "--merge", action="store_true", help="merge even into the empty table (the old way)"
    )
    args = parser.parse_args(argv)
    options = shaped_workspace(args)
    threads = options["threads"]
    emulator = Emulator(rate_limits="off", **options)
    start = days_ago(40)
    with emulator, temp_dir("bare_fetch_ratio") as tmp:
        bare = run_in_child(bare_fetch, base_url=emulator.base_url, oldest=start.timestamp())
        run = run_in_child(
            load_job,
            base_url=emulator.base_url,
            pipelines_dir=tmp,
            name="bare_fetch_ratio",
            source_kwargs={
                "start_date": start,
                "rate_limit_profile": "off",
                **({"append_into_empty": False} if args.merge else {}),
            },
        )
    label = size_label(args.messages)
    result = load_figures(args.messages, run, f"pipeline_msgs_per_s_{label}", "peak_rss_mb_1m")
    ratio = run["wall_s"] / bare["wall_s"]
    fetched = bare["history_messages"] + bare["replies"]
    result.update(
        threads=threads,
        channels=args.channels,
        bare_wall_s=round(bare["wall_s"], 3),
        bare_cpu_s=round(bare["cpu_s"], 3),
        bare_calls=bare["calls"],
        bare_messages=fetched,
        bare_msgs_per_s=round(fetched / bare["wall_s"], 1),
        bare_peak_rss_mb=round(bare["peak_rss_mb"], 1),
        pipeline_calls=run["calls"],
        merged_into_empty_table=args.merge,
        shape=args.shape,
        **{f"pipeline_over_bare_{label}": round(ratio, 3)},
    )
    print(
        f"bare fetch: {fetched} messages ({bare['calls']}) in {bare['wall_s']:.2f} s "
        f"(CPU {bare['cpu_s']:.1f} s)\n"
        f"pipeline:   {result['rows_messages']} rows in {run['wall_s']:.2f} s "
        f"(CPU {run['cpu_s']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB "
        f"{run['peak_rss_mb_by_stage']}, {run['stages']})\n"
        f"ratio pipeline / bare = {ratio:.2f} (goal <= 2)"
    )
    write_result(args.name or f"bare_fetch_ratio_{size_label(args.messages)}", result)
    return result


if __name__ == "__main__":
    main()
