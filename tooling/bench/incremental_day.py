"""A day of incremental loading after a backfill (rate limits off, for speed).

    python -m tooling.bench.incremental_day [--channels 10 --messages 5000 --threads 200]

After the backfill: new messages in 20% of channels and replies to a few threads from the last
7 days; then one run with start_date=None, lookback_days=7. Compares calls per method to the
minimum (replies: one per distinct thread that got a reply).
"""

from __future__ import annotations

import argparse
import math
import random
import time

from .common import (
    Emulator,
    days_ago,
    load_job,
    readable_channels,
    run_in_child,
    temp_dir,
    write_result,
)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--replied-threads", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--name", default="incremental_day")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    emulator = Emulator(
        seed=args.seed, channels=args.channels, messages=args.messages, threads=args.threads
    )
    with emulator, temp_dir("incremental") as tmp:
        remote = emulator.remote()
        common = {"base_url": emulator.base_url, "pipelines_dir": tmp, "name": "incremental"}
        off = {"rate_limit_profile": "off"}
        backfill = run_in_child(
            load_job, **common, source_kwargs={"start_date": days_ago(40), **off}
        )

        readable = readable_channels(remote.channels())
        busy = rng.sample(readable, max(1, math.ceil(0.2 * len(readable))))
        for channel in busy:
            for i in range(5):
                remote.post_message(channel, text=f"day message {i}")
        week_ago = time.time() - 7 * 86400
        recent = [(c, ts) for c, ts in remote.thread_parents() if c in readable]
        recent = [(c, ts) for c, ts in recent if float(ts) >= week_ago]
        replied = rng.sample(recent, min(args.replied_threads, len(recent)))
        for channel, ts in replied:
            remote.post_reply(channel, ts, text="a reply today")

        remote.reset_stats()
        day = run_in_child(
            load_job, **common, source_kwargs={"start_date": None, "lookback_days": 7, **off}
        )
        calls = remote.stats().get("requests") or day["calls"]

    # one history page per readable channel covers a day of new messages (plus the lookback)
    minimum = {
        "users.list": 1,
        "conversations.list": 1,
        "conversations.history": len(readable),
        "conversations.replies": len({tuple(t) for t in replied}),
    }
    wasted = calls.get("conversations.replies", 0) - minimum["conversations.replies"]
    result = {
        "channels": args.channels,
        "messages": args.messages,
        "threads": args.threads,
        "channels_with_new_messages": len(busy),
        "threads_replied": minimum["conversations.replies"],
        "recent_threads": len(recent),
        "backfill_wall_s": round(backfill["wall_s"], 3),
        "incremental_wall_s": round(day["wall_s"], 3),
        "incremental_wasted_replies_calls": wasted,
        "incremental_rows_messages": day["rows"].get("messages", 0),
    }
    print(f"{'method':24} {'calls':>7} {'min':>7}")
    for method, n in minimum.items():
        key = method.replace(".", "_")
        result[f"calls_{key}"] = calls.get(method, 0)
        result[f"min_calls_{key}"] = n
        print(f"{method:24} {calls.get(method, 0):7} {n:7}")
    print(f"wasted replies calls: {wasted} (threads in last 7 days: {len(recent)})")
    write_result(args.name, result)
    return result


if __name__ == "__main__":
    main()
