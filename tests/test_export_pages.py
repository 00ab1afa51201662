"""`DayFileReader.pages`: three stages on their own threads (inflate, parse, the caller), run
ahead across channels. Pages come back in job order with their channel's id; a bad file is
named at its own page, after the pages before it; stopping early leaves no inflated file. Which
batches are read fast (one newline-delimited read) and which the exact way."""

import json
import zipfile
from pathlib import Path
from typing import List, Tuple

import pytest

from slack_source.import_export.archive import SlackExportError
from slack_source.import_export.pages import DayFileReader, FastReadRefused

JOBS = [  # (channel id, day file): one batch per day file
    ("C1", "general/2026-01-01.json"),
    ("C1", "general/2026-01-02.json"),
    ("C1", "general/2026-01-03.json"),  # no messages
    ("C2", "random/2026-01-01.json"),
    ("C2", "random/2026-01-02.json"),
]


def day(*stamps: str, indent: "int | None" = 4) -> bytes:
    """A day file as Slack writes them (4 spaces), or on one line with `indent=None`."""
    messages = [{"type": "message", "ts": ts, "text": f"at {ts}"} for ts in stamps]
    return json.dumps(messages, indent=indent).encode()


def write_zip(path: Path, broken: str = "") -> Path:
    contents = {
        "general/2026-01-01.json": day("1767225600.000100", "1767225601.000200"),
        "general/2026-01-02.json": day("1767312000.000300"),
        "general/2026-01-03.json": b"[\n  \n]",
        "random/2026-01-01.json": day("1767225602.000400"),
        "random/2026-01-02.json": day("1767312001.000500", "1767312002.000600", indent=None),
    }
    if broken:
        contents[broken] = contents[broken][:-5]
    return write_days(path, contents)


def write_days(path: Path, days: "dict[str, bytes]") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in days.items():
            archive.writestr(name, data)
    return path


def jobs() -> List[Tuple[str, List[str]]]:
    return [(channel, [member]) for channel, member in JOBS]


def leftovers(reader: DayFileReader) -> List[str]:
    return sorted(p.name for p in reader.folder.iterdir())


def test_pages_come_in_job_order_with_their_channel(tmp_path):
    path = write_zip(tmp_path / "export.zip")
    with zipfile.ZipFile(path) as archive, DayFileReader(frozenset()) as reader:
        pages = list(reader.pages(archive, jobs()))
        assert leftovers(reader) == []
        assert reader.exact_reads == 2  # the first batch (no type known) and the one-line file
    assert [None if p is None else p.column("ts").to_pylist() for p in pages] == [
        ["1767225600.000100", "1767225601.000200"],
        ["1767312000.000300"],
        None,
        ["1767225602.000400"],
        ["1767312001.000500", "1767312002.000600"],
    ]
    assert [None if p is None else set(p.column("channel_id").to_pylist()) for p in pages] == [
        {"C1"},
        {"C1"},
        None,
        {"C2"},
        {"C2"},
    ]


def test_stopping_after_the_first_page_leaves_no_inflated_file(tmp_path):
    """Batches 2 and 3 were inflated (and 2 parsed) while the caller had page 1."""
    path = write_zip(tmp_path / "export.zip")
    with zipfile.ZipFile(path) as archive, DayFileReader(frozenset()) as reader:
        pages = reader.pages(archive, jobs())
        assert next(pages).num_rows == 2
        pages.close()
        assert leftovers(reader) == []


def test_a_bad_file_is_named_at_its_own_page_after_the_pages_before_it(tmp_path):
    path = write_zip(tmp_path / "export.zip", broken="random/2026-01-01.json")
    with zipfile.ZipFile(path) as archive, DayFileReader(frozenset()) as reader:
        pages = reader.pages(archive, jobs())
        assert [next(pages) is None for _ in range(3)] == [False, False, True]
        with pytest.raises(SlackExportError, match="random/2026-01-01.json"):
            next(pages)
        assert leftovers(reader) == []


def varied_day(first: int, count: int, extra: "dict | None" = None) -> bytes:
    """Messages with nested objects and lists of objects (deeper than the top level's
    indentation), numbers, booleans, unicode, and text that holds the top-level separator."""
    messages = []
    for i in range(first, first + count):
        message = {
            "type": "message",
            "ts": f"17672256{i:02d}.{i:06d}",
            "text": 'quote "},\n    {" ünïcødé ✓' if i % 2 else f"plain {i}",
            "blocks": [{"type": "rich_text", "elements": [{"t": i}, {"t": i + 1}]}],
            "reply_count": i,
            "score": i + 0.5,
            "is_locked": bool(i % 2),
            "later": None,
        }
        messages.append({**message, **(extra or {})})
    return json.dumps(messages, indent=4, ensure_ascii=False).encode()


def read_all(path: Path, members: List[str], fast: bool = True, monkeypatch=None):
    with zipfile.ZipFile(path) as archive, DayFileReader(frozenset({"blocks"})) as reader:
        if not fast:
            monkeypatch.setattr(reader, "_read_fast", refuse)
        pages = list(reader.pages(archive, [("C1", [m]) for m in members]))
        return pages, reader.exact_reads


def refuse(*args):
    raise FastReadRefused()


def test_fast_reads_give_the_pages_the_exact_read_gives(tmp_path, monkeypatch):
    """Same columns, types and values, batch by batch; only the first batch is read exactly.
    A field null so far (`later`) gets its type when a value shows up, on the fast read too."""
    days = {
        "general/2026-01-01.json": varied_day(0, 3),
        "general/2026-01-02.json": varied_day(3, 4),
        "general/2026-01-03.json": varied_day(7, 2, {"later": 7}),
        "general/2026-01-04.json": varied_day(9, 3),
    }
    path = write_days(tmp_path / "export.zip", days)
    fast, fast_exact_reads = read_all(path, list(days))
    exact, exact_reads = read_all(path, list(days), fast=False, monkeypatch=monkeypatch)
    assert (fast_exact_reads, exact_reads) == (1, 4)
    for fast_page, exact_page in zip(fast, exact, strict=True):
        columns = sorted(exact_page.column_names)
        assert sorted(fast_page.column_names) == columns
        assert fast_page.select(columns).equals(exact_page.select(columns))
    assert fast[2].column("later").to_pylist() == [7, 7]
    assert fast[1].column("text").to_pylist()[0] == 'quote "},\n    {" ünïcødé ✓'


def test_a_field_first_seen_in_a_later_batch_is_read_the_exact_way(tmp_path):
    days = {
        "general/2026-01-01.json": varied_day(0, 3),
        "general/2026-01-02.json": varied_day(3, 2, {"new_field": {"x": [1, 2]}}),
        "general/2026-01-03.json": varied_day(5, 2),
    }
    path = write_days(tmp_path / "export.zip", days)
    pages, exact_reads = read_all(path, list(days))
    assert exact_reads == 2  # the first batch, and the one with the new field
    assert pages[1].column("new_field").to_pylist() == ['{"x":[1,2]}'] * 2


def test_a_raw_line_break_inside_a_string_is_a_bad_file(tmp_path):
    """Invalid JSON that the line splitting must not repair: the file is named."""
    broken = varied_day(3, 2).replace(b"plain 4", b"plain\n4")
    days = {"general/2026-01-01.json": varied_day(0, 3), "general/2026-01-02.json": broken}
    path = write_days(tmp_path / "export.zip", days)
    with pytest.raises(SlackExportError, match="general/2026-01-02.json"):
        read_all(path, ["general/2026-01-01.json", "general/2026-01-02.json"])
