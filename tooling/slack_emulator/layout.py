"""Where generated messages sit in time: arithmetic top-level timelines and thread plans.

Top-level ``ts`` values are a pure function of the index, so a channel of a million messages
costs a few integers. Only threads (parents, reply timestamps) are materialised, as plain ints.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .rng import MASK64, US_PER_S, hash_of, mix64

BROADCAST_PERCENT = 6
LATE_THREAD_PROBABILITY = 0.15
# Thread sizes have a long tail, as in real workspaces: a few busy channels (Pareto "chattiness"
# per channel) and, within a channel, Pareto-weighted threads; at 100k messages in 2,000 threads
# the largest hold several hundred replies (an independent Slack server's longest was 862).
CHANNEL_CHATTINESS_ALPHA = 1.5
CHANNEL_CHATTINESS_CAP = 20.0
THREAD_WEIGHT_ALPHA = 1.1
THREAD_WEIGHT_CAP = 200.0


@dataclass(frozen=True)
class Timeline:
    """``n`` top-level timestamps evenly spread from ``start_us`` with per-index jitter."""

    n: int
    start_us: int
    step: int
    jit: int
    key: int

    @classmethod
    def spread(cls, n: int, start_us: int, end_us: int, key: int) -> Timeline:
        """``n`` strictly increasing timestamps in ``[start_us, end_us)``."""
        step = max(1, (end_us - start_us) // max(n, 1))
        return cls(n=n, start_us=start_us, step=step, jit=max(1, step // 2), key=key)

    def ts(self, i: int) -> int:
        """Microsecond timestamp of index ``i``."""
        return self.start_us + i * self.step + (hash((self.key, i)) & MASK64) % self.jit

    def last_at_or_before(self, t: int) -> int:
        """Largest index with ``ts(i) <= t`` (``-1`` if none)."""
        if self.n == 0 or t < self.start_us:
            return -1
        i = min((t - self.start_us) // self.step, self.n - 1)
        return i if self.ts(i) <= t else i - 1

    def index_of(self, t: int) -> int | None:
        """Index whose timestamp is exactly ``t``."""
        i = self.last_at_or_before(t)
        return i if i >= 0 and self.ts(i) == t else None

    @property
    def last_ts(self) -> int:
        """Timestamp of the newest index (or ``start_us - 1`` when empty)."""
        return self.ts(self.n - 1) if self.n else self.start_us - 1


@dataclass
class ChannelPlan:
    """Generated content of one channel: timeline, threads and broadcast replies."""

    timeline: Timeline
    threads: dict[int, list[int]] = field(default_factory=dict)
    reply_parent: dict[int, int] = field(default_factory=dict)
    broadcasts: list[int] = field(default_factory=list)
    max_ts: int = 0


def is_broadcast(channel_key: int, ts_us: int) -> bool:
    """Whether a generated reply is also sent to the channel (``thread_broadcast``)."""
    return mix64(channel_key ^ ts_us ^ 0x5BD1E995) % 100 < BROADCAST_PERCENT


def split(total: int, weights: list[float], caps: list[int] | None = None) -> list[int]:
    """Largest-remainder split of ``total`` over ``weights`` (optionally capped per slot)."""
    wsum = sum(weights)
    if total <= 0 or wsum <= 0:
        return [0] * len(weights)
    raw = [total * w / wsum for w in weights]
    out = [int(r) for r in raw]
    if caps is not None:
        out = [min(o, c) for o, c in zip(out, caps, strict=True)]
    order = sorted(range(len(weights)), key=lambda k: raw[k] - int(raw[k]), reverse=True)
    left = total - sum(out)
    while left > 0:
        progressed = False
        for k in order:
            if left == 0:
                break
            if weights[k] > 0 and (caps is None or out[k] < caps[k]):
                out[k] += 1
                left -= 1
                progressed = True
        if not progressed:
            raise ValueError("cannot place all items under the caps")
    return out


@dataclass(frozen=True)
class Shape:
    """How replies sit in a workspace (``WorkspaceSpec``'s shape options; the defaults are
    the bundled workspace's): the share of all messages that are replies, and the Pareto tail
    of thread sizes (a lower ``thread_alpha`` and a higher ``thread_cap`` make longer threads)."""

    reply_share: float = 0.2
    thread_alpha: float = THREAD_WEIGHT_ALPHA
    thread_cap: float = THREAD_WEIGHT_CAP


def plan_counts(
    seed: int, n_channels: int, messages: int, threads: int, shape: Shape = Shape()
) -> list[tuple[int, int, int]]:
    """Per channel ``(top_level, threads, replies)``: replies are ``shape.reply_share`` of
    all messages (at least one per thread)."""
    rng = random.Random(hash_of(seed, 30))
    replies = 0
    if threads:
        share = messages * round(shape.reply_share * 10_000) // 10_000  # exact for 0.2: // 5
        replies = max(threads, min(messages - threads, share))
    tops = messages - replies
    weights = [2.0] + [0.5 + rng.random() for _ in range(n_channels - 1)]
    top_counts = split(tops, weights)
    thread_counts = split(threads, [float(c) for c in top_counts], caps=top_counts)
    chattiness = [
        t * min(rng.paretovariate(CHANNEL_CHATTINESS_ALPHA), CHANNEL_CHATTINESS_CAP)
        for t in thread_counts
    ]
    extra = split(replies - threads, chattiness)
    return [(c, t, t + e) for c, t, e in zip(top_counts, thread_counts, extra, strict=True)]


def plan_channel(
    seed: int,
    index: int,
    key: int,
    counts: tuple[int, int, int],
    start_us: int,
    now_us: int,
    shape: Shape = Shape(),
) -> ChannelPlan:
    """Place a channel's top-level messages, pick thread parents and time their replies."""
    n_top, n_threads, n_replies = counts
    tl = Timeline.spread(n_top, start_us, now_us, key)
    plan = ChannelPlan(timeline=tl, max_ts=tl.last_ts)
    if n_threads == 0:
        return plan
    rng = random.Random(hash_of(seed, 40, index))
    parents = sorted(rng.sample(range(n_top), n_threads))
    weights = [min(rng.paretovariate(shape.thread_alpha), shape.thread_cap) for _ in parents]
    sizes = [1 + e for e in split(n_replies - n_threads, weights)]
    reply_parent = plan.reply_parent
    max_ts = plan.max_ts
    for i, size in zip(parents, sizes, strict=True):
        p = tl.ts(i)
        gaps = [int(rng.expovariate(1.0) * 900 * US_PER_S) + 1000 for _ in range(size)]
        if rng.random() < LATE_THREAD_PROBABILITY:
            gaps[rng.randrange(size)] += int(rng.uniform(1.0, 6.0) * 86400 * US_PER_S)
        total = sum(gaps)
        room = now_us - 1 - p
        scale = room / total if total > room else 1.0
        replies: list[int] = []
        t = p
        acc = 0
        for g in gaps:
            acc += g
            r = max(p + int(acc * scale), t + 1)
            while tl.index_of(r) is not None or r in reply_parent:
                r += 1
            replies.append(r)
            reply_parent[r] = p
            t = r
        plan.threads[p] = replies
        if t > max_ts:
            max_ts = t
        plan.broadcasts.extend(r for r in replies if is_broadcast(key, r))
    plan.broadcasts.sort()
    plan.max_ts = max_ts
    return plan
