"""Slack-style opaque cursors and ``limit`` handling.

Cursors look like Slack's: base64 of ``next_ts:<microseconds>`` (messages), ``team:<channel
id>`` (conversations.list) or ``user:<user id>`` (users.list, conversations.members).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


class SlackError(Exception):
    """An ``ok:false`` answer: ``error`` code plus extra top-level fields."""

    def __init__(self, error: str, **extra: object) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def payload(self) -> dict:
        """The JSON body Slack sends for this error."""
        return {"ok": False, "error": self.error, **self.extra}


@dataclass(frozen=True)
class LimitRule:
    """Default and maximum ``limit`` of a method (``default=0`` means "everything")."""

    default: int
    maximum: int


def encode_cursor(prefix: str, value: str) -> str:
    """Opaque cursor for the next page."""
    return base64.b64encode(f"{prefix}:{value}".encode()).decode()


def decode_cursor(cursor: str | None, prefix: str) -> str | None:
    """The value inside a cursor, ``None`` when absent; ``invalid_cursor`` when malformed."""
    if not cursor:
        return None
    try:
        raw = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SlackError("invalid_cursor") from None
    head, sep, value = raw.partition(":")
    if head != prefix or not sep or not value:
        raise SlackError("invalid_cursor")
    return value


def decode_ts_cursor(cursor: str | None) -> int | None:
    """Microsecond ts inside a ``next_ts`` cursor."""
    value = decode_cursor(cursor, "next_ts")
    if value is None:
        return None
    if not value.isdigit():
        raise SlackError("invalid_cursor")
    return int(value)


def parse_limit(raw: str | None, rule: LimitRule, strict: bool) -> int:
    """Page size: absent/0 -> default, over maximum -> clamp (or ``invalid_limit``)."""
    if raw is None or raw == "":
        value = 0
    else:
        try:
            value = int(raw)
        except ValueError:
            raise SlackError("invalid_limit") from None
    if value < 0:
        raise SlackError("invalid_limit")
    if value == 0:
        return rule.default
    if value > rule.maximum:
        if strict:
            raise SlackError("invalid_limit")
        return rule.maximum
    return value
