"""Pseudonymize or drop personal fields of users (and of `user_profile` on messages).

`pii_mode` (config `sources.slack.pii_mode`, env `SOURCES__SLACK__PII_MODE`):
- `off` (default): rows are loaded as Slack returns them.
- `hash`: each personal field becomes the hex HMAC-SHA256 of its value keyed with the secret
  `sources.slack.pii_salt`; equal values give equal hashes, so joins and distinct counts still
  work, but nobody without the salt can test a guessed email against the table.
- `drop`: the fields are removed before the rows reach the destination.

Fields: email, name, real_name, display_name (plus their `_normalized` forms, first_name,
last_name, phone and skype) at the top level of a row, in its `profile` and in a message's
`user_profile`. Empty values are kept as they are. Rows are copied, never changed in place,
so a row seen twice (a resource and its transformer) is never hashed twice.
"""

import hashlib
import hmac
from typing import Any, Callable, Dict, Optional

from .errors import SlackConfigError

PII_MODES = ("off", "hash", "drop")
PII_FIELDS = frozenset(
    {
        "email",
        "name",
        "real_name",
        "real_name_normalized",
        "display_name",
        "display_name_normalized",
        "first_name",
        "last_name",
        "phone",
        "skype",
    }
)
NESTED_PROFILES = ("profile", "user_profile")

Row = Dict[str, Any]


def check_pii_mode(mode: Optional[str], salt: Optional[str]) -> str:
    """The normalized mode; a clear error for an unknown mode or `hash` without a salt."""
    normalized = (mode or "off").strip().lower()
    if normalized not in PII_MODES:
        raise SlackConfigError(
            f"Unknown pii_mode '{mode}': set SOURCES__SLACK__PII_MODE to one of "
            f"{', '.join(PII_MODES)}"
        )
    if normalized == "hash" and not salt:
        raise SlackConfigError(
            "pii_mode 'hash' needs a secret salt: set sources.slack.pii_salt in"
            " .dlt/secrets.toml (or SOURCES__SLACK__PII_SALT)"
        )
    return normalized


def _scrub(record: Row, transform: Optional[Callable[[str], str]]) -> Row:
    """A copy of `record` with PII fields hashed (`transform`) or removed (None)."""
    out: Row = {}
    for key, value in record.items():
        if key in PII_FIELDS:
            if transform is None:
                continue
            if isinstance(value, str) and value:
                value = transform(value)
        elif key in NESTED_PROFILES and isinstance(value, dict):
            value = _scrub(value, transform)
        out[key] = value
    return out


def pseudonymize_users(mode: str = "off", salt: Optional[str] = None) -> Callable[[Row], Row]:
    """A map step (`resource.add_map(...)`) applying `mode` to users and message rows."""
    mode = check_pii_mode(mode, salt)
    if mode == "off":
        return lambda row: row
    transform: Optional[Callable[[str], str]] = None
    if mode == "hash":
        key = str(salt).encode("utf-8")

        def transform(value: str) -> str:
            return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def scrub(row: Row) -> Row:
        return _scrub(row, transform) if isinstance(row, dict) else row

    return scrub


def pseudonymize_messages(mode: str = "off", salt: Optional[str] = None) -> Callable[[Row], Row]:
    """Same map for message rows: their `user_profile` holds personal fields, and so does the
    parent's copy inside a broadcast's `root`; cheap for rows without either (returned
    unchanged)."""
    users_map = pseudonymize_users(mode, salt)

    def scrub(row: Row) -> Row:
        if not isinstance(row, dict):
            return row
        out = row
        if isinstance(row.get("user_profile"), dict):
            out = {**out, "user_profile": users_map(row["user_profile"])}
        root = row.get("root")
        if isinstance(root, dict) and isinstance(root.get("user_profile"), dict):
            out = {**out, "root": {**root, "user_profile": users_map(root["user_profile"])}}
        return out

    return scrub
