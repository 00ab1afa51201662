"""Shape Slack messages into `messages` rows: Slack's fields untouched, plus where and when.

`posted_at` is added when a page becomes an Arrow table (`arrow_pages`), from `ts_micros`."""

import itertools
import operator
import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ts_micros(ts: str) -> int:
    """Microseconds since the epoch of a Slack `ts` ("1700000000.123456"), without float
    rounding."""
    seconds, _, micros = ts.partition(".")
    return int(seconds) * 1_000_000 + int((micros + "000000")[:6])


def datetime_to_ts(moment: datetime) -> str:
    """A Slack-style `ts` string for a moment, for `oldest`/`latest` arguments."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    micros = delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def shift_ts(ts: str, seconds: float) -> str:
    """`ts` moved by `seconds` (negative goes back), still a Slack `ts` string."""
    seconds_part, _, micros = ts.partition(".")
    total = int(seconds_part) * 1_000_000 + int((micros + "000000")[:6]) + round(seconds * 1e6)
    return f"{total // 1_000_000}.{total % 1_000_000:06d}"


# `pack_ts` output: DELTA_MARK, the first value's microseconds, then each next value's distance
# from the one before, all in hex. The plain form (`ts` joined by spaces) never starts so.
DELTA_MARK = "+"
# What the delta form can give back exactly: Slack's own `ts` form, seconds and 6 digits.
_CANONICAL_TS = re.compile(r"(?:[1-9][0-9]*|0)\.[0-9]{6}(?: (?:[1-9][0-9]*|0)\.[0-9]{6})*")


def pack_ts(values: Iterable[str]) -> str:
    """Sorted `ts` values as one string: the way state keeps long lists.

    A large backfill remembers hundreds of thousands of `ts` (thread replies, the lookback's
    top-level messages). As one string per thread or channel they cost far less memory than
    lists of strings, and dlt's deep copy of the state at commit shares strings instead of
    copying every list. As hex distances between neighbours (`DELTA_MARK`) the state is smaller
    than the `ts` themselves, and dlt compresses the whole state at zlib level 9 on every load
    (figures: tooling/bench/RESULTS.md). A value not in Slack's form ("1700000000.000100")
    keeps the whole list in the plain form, `ts` joined by spaces."""
    joined = " ".join(values)
    if not joined:
        return ""
    if not _CANONICAL_TS.fullmatch(joined):
        return " ".join(sorted(joined.split(" ")))
    micros = sorted(map(int, joined.replace(".", "").split(" ")))
    hex_form = DELTA_MARK + ("%x " * len(micros))[:-1]  # one format call, not one per value
    return hex_form % (micros[0], *map(operator.sub, micros[1:], micros))


def unpack_ts(packed: Optional[str]) -> List[str]:
    """The `ts` values of `pack_ts`, in either of its forms."""
    if not packed:
        return []
    if not packed.startswith(DELTA_MARK):
        return packed.split(" ")
    micros = itertools.accumulate(int(h, 16) for h in packed[1:].split(" "))
    return [f"{m // 1_000_000}.{m % 1_000_000:06d}" for m in micros]


def to_rows(messages: Iterable[Dict[str, Any]], channel_id: str) -> List[Dict[str, Any]]:
    """Add `channel_id` to each message, in place."""
    rows = []
    for message in messages:
        message["channel_id"] = channel_id
        rows.append(message)
    return rows


def is_thread_parent(message: Dict[str, Any]) -> bool:
    """A parent has replies and `thread_ts == ts` (tombstoned parents keep their thread)."""
    return bool(message.get("reply_count")) and message.get("thread_ts") == message.get("ts")


def deletion_row(channel_id: str, ts: str) -> Dict[str, Any]:
    """A row that makes dlt's merge remove (`channel_id`, `ts`) from the destination."""
    return {"channel_id": channel_id, "ts": ts, "is_deleted": True}
