"""`element_lines`: a day file's array as one message per line, for the layouts exports come
in; None (read the exact way) where the layout does not tell messages apart."""

import json

import orjson
import pytest

from slack_source.import_export.lines import element_lines

MESSAGES = [
    {"ts": "1.000001", "text": 'a "},\n  {" b', "blocks": [{"x": 1}, {"y": [{"z": 2}, {}]}]},
    {"ts": "2.000002", "files": [], "edited": {"user": "U1", "ts": "2.5"}},
    {"ts": "3.000003", "reply_count": 2, "is_locked": False},
]


@pytest.mark.parametrize(
    "data",
    [
        orjson.dumps(MESSAGES, option=orjson.OPT_INDENT_2),  # the emulator's exports
        json.dumps(MESSAGES, indent=4).encode(),  # Slack's
        json.dumps(MESSAGES, indent=4).replace("\n", "\r\n").encode(),
        b"\n  " + json.dumps(MESSAGES, indent=1).encode() + b"\n\n",
    ],
    ids=["two-spaces", "four-spaces", "crlf", "padded"],
)
def test_each_message_becomes_one_line(data):
    lines = bytes(element_lines(data)).split(b"\n")
    assert [json.loads(line) for line in lines] == MESSAGES


@pytest.mark.parametrize("data", [b"[]", b"[\n    \n]\n", b"  [ ]  "])
def test_an_empty_day_gives_no_line(data):
    assert bytes(element_lines(data)).strip() == b""


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(MESSAGES).encode(),  # one line: nothing to tell messages apart by
        b"\xef\xbb\xbf" + json.dumps(MESSAGES, indent=2).encode(),  # a byte-order mark
        b'{"ts": "1.000001"}',
        json.dumps(MESSAGES, indent=2).encode()[:-1],  # cut short
    ],
    ids=["one-line", "bom", "object", "truncated"],
)
def test_other_layouts_are_left_to_the_exact_read(data):
    assert element_lines(data) is None
