"""`DayFileReader.pages`: three stages on their own threads (inflate, parse, the caller), run
ahead across channels. Pages come back in job order with their channel's id; a bad file is
named at its own page, after the pages before it; stopping early leaves no inflated file."""

import json
import zipfile
from pathlib import Path
from typing import List, Tuple

import pytest

from slack_source.export_archive import SlackExportError
from slack_source.export_pages import DayFileReader

JOBS = [  # (channel id, day file): one batch per day file
    ("C1", "general/2026-01-01.json"),
    ("C1", "general/2026-01-02.json"),
    ("C1", "general/2026-01-03.json"),  # no messages
    ("C2", "random/2026-01-01.json"),
    ("C2", "random/2026-01-02.json"),
]


def day(*stamps: str) -> bytes:
    return json.dumps([{"type": "message", "ts": ts, "text": f"at {ts}"} for ts in stamps]).encode()


def write_zip(path: Path, broken: str = "") -> Path:
    contents = {
        "general/2026-01-01.json": day("1767225600.000100", "1767225601.000200"),
        "general/2026-01-02.json": day("1767312000.000300"),
        "general/2026-01-03.json": b"[\n  \n]",
        "random/2026-01-01.json": day("1767225602.000400"),
        "random/2026-01-02.json": day("1767312001.000500", "1767312002.000600"),
    }
    if broken:
        contents[broken] = contents[broken][:-5]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
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
