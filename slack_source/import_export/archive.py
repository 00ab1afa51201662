"""A Slack export ZIP: its layout checked from the central directory, its files read one at a time.

What an export holds (Slack help, "How to read Slack data exports"): `users.json`
(`org_users.json` on Enterprise Grid), `channels.json` (public channels) and, in full exports,
`groups.json` (private), `dms.json` and `mpims.json`; one folder per conversation with one
`YYYY-MM-DD.json` per day of activity. Messages carry no channel id: a folder's name maps to its
channel through `channels.json`/`groups.json` (DM folders are named by their id in `dms.json`,
group DMs by their name in `mpims.json`).

`open_export` decides everything that needs no message: that the file is a ZIP (its central
directory), that it is a Slack export, that every folder belongs to a conversation and every
file in it is a day file. Day files are parsed later, one at a time, by `read_day`; a malformed
one raises `SlackExportError` naming it. Nothing is ever extracted to disk, and at most one
member is in memory.
"""

import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple

import orjson

from ..errors import SlackConfigError

DAY_FILE = re.compile(r"\d{4}-\d{2}-\d{2}\.json\Z")
TS = re.compile(r"\d{1,12}\.\d{1,6}\Z")
USERS_FILES = ("users.json", "org_users.json")
# What reading a damaged member raises: a CRC mismatch or a bad header (BadZipFile), deflate
# data that does not inflate (zlib.error), a member cut short (EOFError), ...
UNREADABLE_MEMBER = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError)
CHANNEL_FILES = {"channels.json": "public_channel", "groups.json": "private_channel"}
# file -> (its kind of conversation, the entry field that names its folders)
DM_FILES = {"dms.json": ("im", "id"), "mpims.json": ("mpim", "name")}
IGNORED = ("__MACOSX/",)


class SlackExportError(SlackConfigError):
    """The file is not a Slack export we can load; nothing was written."""


@dataclass(frozen=True)
class Conversation:
    """A channel folder of the export and its day files, oldest first."""

    id: str
    name: str
    folder: str
    kind: str  # public_channel, private_channel, mpim or im (slack_source.conversations)
    entry: Dict[str, Any]
    days: Tuple[str, ...]

    @property
    def is_private(self) -> bool:
        return self.kind != "public_channel"


@dataclass
class ExportLayout:
    """The validated table of contents of an export."""

    path: Path
    users_member: str
    conversations: List[Conversation]
    skipped: Dict[str, str] = field(default_factory=dict)  # folder -> why it is not loaded

    @property
    def day_files(self) -> int:
        return sum(len(c.days) for c in self.conversations)


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise SlackExportError(f"{path}: no such file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise SlackExportError(f"{path} is not a ZIP file ({error})") from None


def read_json(archive: zipfile.ZipFile, member: str) -> Any:
    """One member parsed; a clear error naming it when it is not JSON."""
    try:
        return orjson.loads(archive.read(member))
    except orjson.JSONDecodeError as error:
        raise SlackExportError(f"{member} in the export is not valid JSON ({error})") from None
    except UNREADABLE_MEMBER as error:
        raise SlackExportError(f"{member} in the export cannot be read ({error})") from None


def _root(names: List[str]) -> str:
    """The folder holding `channels.json`: the archive root, or the single folder a re-zipped
    export was wrapped in."""
    if "channels.json" in names:
        return ""
    roots = {n[: -len("channels.json")] for n in names if n.endswith("/channels.json")}
    roots = {r for r in roots if r.count("/") == 1 and not r.startswith(IGNORED)}
    return roots.pop() if len(roots) == 1 else ""


def _entries(archive: zipfile.ZipFile, member: str) -> List[Dict[str, Any]]:
    value = read_json(archive, member)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SlackExportError(f"{member} in the export is not a JSON array of objects")
    return value


def open_export(path: "str | Path", direct_kinds: Iterable[str] = ()) -> ExportLayout:
    """Check the export's layout without reading any message; raise `SlackExportError`.

    `direct_kinds`: which of `im` (dms.json) and `mpim` (mpims.json) to load; the folders of
    the others are skipped and listed."""
    direct = frozenset(direct_kinds)
    path = Path(path)
    with _open_zip(path) as archive:
        names = [n for n in archive.namelist() if not n.startswith(IGNORED)]
        root = _root(names)
        present = set(names)
        users_member = next((root + u for u in USERS_FILES if root + u in present), None)
        if root + "channels.json" not in present or users_member is None:
            raise SlackExportError(
                f"{path} is not a Slack export: it has no channels.json and users.json "
                "(download it from Workspace settings > Import/Export Data > Export)"
            )
        by_folder: Dict[str, Tuple[Dict[str, Any], str]] = {}
        ids: Dict[str, str] = {}
        listed = [(member, kind, "name") for member, kind in CHANNEL_FILES.items()]
        listed += [
            (member, kind, key) for member, (kind, key) in DM_FILES.items() if kind in direct
        ]
        for member, kind, key in listed:
            if root + member not in present:
                continue
            for entry in _entries(archive, root + member):
                if not isinstance(entry.get("id"), str) or not isinstance(entry.get(key), str):
                    raise SlackExportError(f"{member} in the export has an entry without id/{key}")
                if entry["id"] in ids:
                    raise SlackExportError(
                        f"channel id {entry['id']} is listed twice ({ids[entry['id']]}, "
                        f"{entry[key]})"
                    )
                ids[entry["id"]] = entry[key]
                by_folder[entry[key]] = (entry, kind)
        not_loaded: Dict[str, str] = {}
        for member, (kind, key) in DM_FILES.items():
            if kind not in direct and root + member in present:
                for entry in _entries(archive, root + member):
                    if isinstance(entry.get(key), str):
                        not_loaded[entry[key]] = f"{member}; sources.slack.conversation_types"
                        not_loaded[entry[key]] += f" without {kind}"
        days: Dict[str, List[str]] = {}
        skipped: Dict[str, str] = {}
        for name in names:
            if not name.startswith(root) or name.endswith("/"):
                continue
            relative = name[len(root) :]
            folder, slash, file_name = relative.partition("/")
            if not slash:
                continue  # top-level files: users, channels, integration logs, canvases...
            if folder in not_loaded:
                skipped[folder] = f"direct messages ({not_loaded[folder]}): not loaded"
                continue
            if folder not in by_folder:
                raise SlackExportError(
                    f"folder '{folder}/' in the export has no entry in channels.json"
                    + (" or groups.json" if root + "groups.json" in present else "")
                )
            if not DAY_FILE.match(file_name):
                raise SlackExportError(
                    f"{relative} in the export is not a day file"
                    f" (expected {folder}/YYYY-MM-DD.json)"
                )
            days.setdefault(folder, []).append(name)
        conversations = [
            Conversation(
                id=entry["id"],
                name=entry.get("name") or entry["id"],
                folder=folder,
                kind=kind,
                entry=entry,
                days=tuple(sorted(days.get(folder, ()))),
            )
            for folder, (entry, kind) in by_folder.items()
        ]
        return ExportLayout(path, users_member, conversations, skipped)


def read_day(archive: zipfile.ZipFile, member: str) -> List[Dict[str, Any]]:
    """The messages of one day file; `SlackExportError` naming the file when it is malformed."""
    messages = read_json(archive, member)
    if not isinstance(messages, list):
        raise SlackExportError(f"{member} in the export is not a JSON array of messages")
    match = TS.match
    for message in messages:
        ts = message.get("ts") if isinstance(message, dict) else None
        if not isinstance(ts, str) or not match(ts):
            raise SlackExportError(f"{member} in the export has a message without a valid ts")
    return messages


def users(archive: zipfile.ZipFile, layout: ExportLayout) -> List[Dict[str, Any]]:
    return _entries(archive, layout.users_member)
