"""What the emulator's generated workspace looks like on the wire: message sizes, field
presence, thread sizes. The benchmarks' figures only mean something if this resembles real
Slack traffic (issue #17 measured ~560 bytes of JSON per message and threads of up to 862
replies on an independent server).

python -m tooling.bench.workspace_shape [--messages 100000 --channels 50 --threads 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Any, Dict, List

import orjson

from .common import write_result

FIELDS = (
    "blocks",
    "reactions",
    "user_profile",
    "files",
    "attachments",
    "edited",
    "bot_id",
    "subtype",
    "thread_ts",
    "reply_count",
)


def percentile(values: List[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


def measure(messages: int, channels: int, threads: int, seed: int = 7) -> Dict[str, Any]:
    """Sizes of every message as `conversations.history`/`.replies` serialise it."""
    from tooling.slack_emulator.config import WorkspaceSpec
    from tooling.slack_emulator.workspace import Workspace

    started = time.perf_counter()
    ws = Workspace(
        WorkspaceSpec(
            seed=seed,
            channels=channels,
            messages=messages,
            threads=threads,
            private_channels=0,
            non_member_channels=0,
        )
    )
    build_s = time.perf_counter() - started
    sizes: List[int] = []
    present: Counter = Counter()
    for msg in ws._ground_truth(None, wire=True):
        msg.pop("channel_id", None)
        sizes.append(len(orjson.dumps(msg)))
        present.update(k for k in FIELDS if k in msg)
    thread_sizes = [len(r) for ch in ws._channels for r in ch.threads.values()]
    n = len(sizes)
    return {
        "messages": n,
        "build_s": round(build_s, 2),
        "json_bytes_mean": round(statistics.fmean(sizes), 1),
        "json_bytes_median": percentile(sizes, 0.5),
        "json_bytes_p90": percentile(sizes, 0.9),
        "json_bytes_p99": percentile(sizes, 0.99),
        "json_bytes_max": max(sizes),
        **{f"has_{k}_pct": round(100 * present[k] / n, 1) for k in FIELDS},
        "threads": len(thread_sizes),
        "thread_replies_mean": round(statistics.fmean(thread_sizes), 1) if thread_sizes else 0,
        "thread_replies_median": percentile(thread_sizes, 0.5),
        "thread_replies_p99": percentile(thread_sizes, 0.99),
        "thread_replies_max": max(thread_sizes, default=0),
        "threads_over_100": sum(s > 100 for s in thread_sizes),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2_000)
    parser.add_argument("--name", default="workspace_shape")
    args = parser.parse_args(argv)
    result = measure(args.messages, args.channels, args.threads)
    for key, value in result.items():
        print(f"{key:28} {value}")
    write_result(args.name, result)
    return result


if __name__ == "__main__":
    main()
