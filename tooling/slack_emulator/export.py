"""The workspace as a Slack export ZIP, the file an admin downloads from "Import/Export Data".

Layout (Slack help, "How to read Slack data exports"):

- ``users.json``: every member, as users.list shows them (emails included);
- ``channels.json``: public channels; a full export adds ``groups.json`` (private channels),
  ``dms.json`` and ``mpims.json`` (the bot's DMs and group DMs, ``WorkspaceSpec.dms`` /
  ``group_dms``), and every export has ``integration_logs.json`` (empty here);
- one folder per conversation, named after it (a DM's folder by its id, as Slack names it),
  with one ``YYYY-MM-DD.json`` per UTC day with activity:
  a JSON array of that day's messages, oldest first, thread replies included where they were
  posted (``thread_ts``, ``parent_user_id``); parents carry ``reply_count``, ``reply_users``,
  ``latest_reply`` and ``replies: [{user, ts}]``; user messages carry ``user_profile``.

Channel entries have the export's shape (``members`` instead of ``is_member``/``num_members``),
not conversations.list's. A date range keeps the messages posted inside it (UTC days, both ends
inclusive); thread fields of a parent describe the thread when the export was written, as
Slack's do. The archive is written one member at a time, so a million messages need the
memory of one day's file, not of the export.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import orjson

from .directory import user_profiles
from .rng import US_PER_S
from .workspace import Workspace

# Slack pretty-prints its export files; 2 spaces is what orjson offers (Slack uses 4).
JSON_OPTIONS = orjson.OPT_INDENT_2


@dataclass
class ExportInfo:
    """What was written: for tests and the command line."""

    path: Path
    channels: int = 0
    day_files: int = 0
    messages: int = 0
    newest_ts: dict[str, str] = field(default_factory=dict)  # channel id -> newest ts written


def channel_entry(channel: dict, members: list[str]) -> dict:
    """A ``channels.json`` / ``groups.json`` entry: the export's fields, not the API's."""
    return {
        "id": channel["id"],
        "name": channel["name"],
        "created": channel["created"],
        "creator": channel["creator"],
        "is_archived": channel["is_archived"],
        "is_general": channel["is_general"],
        "members": members,
        "topic": channel["topic"],
        "purpose": channel["purpose"],
    }


def dm_entry(channel: dict, members: list[str]) -> dict:
    """A ``dms.json`` entry: id, created and the two members (its folder is named by id)."""
    return {"id": channel["id"], "created": channel["created"], "members": members}


def _day_bounds(start: date | None, end: date | None) -> tuple[int, int | None]:
    """Microsecond bounds ``[lo, hi)`` of the UTC days ``start..end`` (inclusive)."""
    lo = 0
    hi = None
    if start is not None:
        lo = int(datetime(start.year, start.month, start.day, tzinfo=timezone.utc).timestamp())
        lo *= US_PER_S
    if end is not None:
        after = end + timedelta(days=1)
        hi = int(datetime(after.year, after.month, after.day, tzinfo=timezone.utc).timestamp())
        hi *= US_PER_S
    return lo, hi


def _utc_day(ts: str) -> str:
    return datetime.fromtimestamp(int(ts.partition(".")[0]), timezone.utc).strftime("%Y-%m-%d")


def write_export(
    workspace: Workspace,
    path: str | Path,
    start: date | None = None,
    end: date | None = None,
    public_only: bool = False,
) -> ExportInfo:
    """Write ``workspace`` as a Slack export ZIP at ``path``.

    ``start``/``end``: UTC days, both inclusive (None: from the first / to the last message).
    ``public_only``: what a free-plan workspace gets (no ``groups.json``, no private folders).
    """
    path = Path(path)
    info = ExportInfo(path=path)
    lo, hi = _day_bounds(start, end)
    users = workspace.users()
    profiles = user_profiles(users) if workspace.spec.user_profiles else {}
    channels = workspace.channels()
    dms = [] if public_only else [c for c in channels if c.get("is_im")]
    mpims = [] if public_only else [c for c in channels if c.get("is_mpim")]
    channels = [c for c in channels if not c.get("is_im") and not c.get("is_mpim")]
    public = [c for c in channels if not c["is_private"]]
    private = [] if public_only else [c for c in channels if c["is_private"]]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def put(name: str, value: object) -> None:
            archive.writestr(name, orjson.dumps(value, option=JSON_OPTIONS))

        put("users.json", users)
        put("channels.json", [channel_entry(c, workspace.member_ids(c["id"])) for c in public])
        if not public_only:
            put("groups.json", [channel_entry(c, workspace.member_ids(c["id"])) for c in private])
            put("dms.json", [dm_entry(c, workspace.member_ids(c["id"])) for c in dms])
            put("mpims.json", [channel_entry(c, workspace.member_ids(c["id"])) for c in mpims])
        put("integration_logs.json", [])
        for channel in public + private + mpims + dms:
            folder = channel.get("name") or channel["id"]
            written = _write_channel(archive, workspace, channel, folder, profiles, lo, hi, info)
            info.channels += 1 if written else 0
    return info


def _write_channel(
    archive: zipfile.ZipFile,
    workspace: Workspace,
    channel: dict,
    folder: str,
    profiles: dict[str, dict],
    lo: int,
    hi: int | None,
    info: ExportInfo,
) -> bool:
    """One folder of day files; False when the channel had no message in the range."""
    day: str | None = None
    batch: list[dict] = []
    newest: str | None = None

    def flush() -> None:
        if batch:
            archive.writestr(f"{folder}/{day}.json", orjson.dumps(batch, option=JSON_OPTIONS))
            info.day_files += 1
            info.messages += len(batch)

    for message in workspace.channel_messages(channel["id"], lo, hi):
        message_day = _utc_day(message["ts"])
        if message_day != day:
            flush()
            day, batch = message_day, []
        profile = profiles.get(message.get("user", ""))
        if profile is not None and "bot_id" not in message:
            message["user_profile"] = profile
        batch.append(message)
        newest = message["ts"]
    flush()
    if newest is not None:
        info.newest_ts[channel["id"]] = newest
    return newest is not None


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m tooling.slack_emulator export`` (the workspace options come from
    serve)."""
    parser.add_argument("output", help="path of the ZIP to write")
    parser.add_argument("--from", dest="start", type=_parse_day, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", type=_parse_day, help="last UTC day (inclusive)")
    parser.add_argument(
        "--public-only", action="store_true", help="public channels only (a free-plan export)"
    )


def main_export(workspace: Workspace, args: argparse.Namespace) -> int:
    """Write the export and print one line of what it holds."""
    info = write_export(workspace, args.output, args.start, args.end, args.public_only)
    sys.stdout.write(
        orjson.dumps(
            {
                "path": str(info.path),
                "channels": info.channels,
                "day_files": info.day_files,
                "messages": info.messages,
            }
        ).decode()
        + "\n"
    )
    return 0
