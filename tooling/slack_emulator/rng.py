"""Cheap deterministic hashing, ids and Slack ``ts`` helpers.

Content is generated on demand from ``(seed, channel, ts)``; a 64-bit mixer is far cheaper than
seeding ``random.Random`` per message and gives the same answer every time it is asked.
"""

from __future__ import annotations

import re

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
US_PER_S = 1_000_000

_TS_RE = re.compile(r"^\d{1,12}(\.\d{0,9})?$")


def mix64(x: int) -> int:
    """Splitmix64 finaliser: a well-mixed 64-bit value from any integer."""
    x = (x + GOLDEN) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def hash_of(*parts: int) -> int:
    """Combine integers into one 64-bit hash (order matters)."""
    h = 0x1234567
    for p in parts:
        h = mix64(h ^ (p & MASK64))
    return h


def text_key(text: str) -> int:
    """A stable integer for a string (Python's ``hash`` is salted per process)."""
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


def slack_id(prefix: str, h: int, length: int = 10) -> str:
    """Slack-looking id (``U0…``, ``C0…``): prefix + '0' + uppercase alnum from the hash."""
    chars = []
    for _ in range(length - 1):
        h, r = divmod(h, 36)
        chars.append(ID_ALPHABET[r])
    return prefix + "0" + "".join(chars)


def fast_hash(a: int, b: int) -> int:
    """Hot-path 64-bit hash of two ints: CPython's tuple hash (xxHash rounds; ints are not
    salted per process, so it is stable across runs on 64-bit CPython >= 3.8)."""
    return hash((a, b)) & MASK64


def fmt_ts(us: int) -> str:
    """Slack ``ts`` string (``^\\d{10}\\.\\d{6}$``) from integer microseconds (>= 1e15)."""
    if us < 10**15:
        whole, frac = divmod(us, US_PER_S)
        return f"{whole}.{frac:06d}"
    s = str(us)
    return s[:-6] + "." + s[-6:]


def parse_ts(value: str) -> int | None:
    """Integer microseconds from a Slack ts / epoch string, ``None`` when malformed."""
    if not isinstance(value, str) or not _TS_RE.match(value):
        return None
    whole, _, frac = value.partition(".")
    return int(whole) * US_PER_S + int((frac + "000000")[:6])


def uuid_from(h: int) -> str:
    """A UUID4-shaped string (``client_msg_id``) from a hash."""
    h2 = mix64(h)
    a = f"{h:016x}{h2:016x}"
    return f"{a[0:8]}-{a[8:12]}-4{a[13:16]}-a{a[17:20]}-{a[20:32]}"
