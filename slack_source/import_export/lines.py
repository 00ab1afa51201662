"""A day file's JSON array as newline-delimited JSON: one message per line, split exactly or not
at all.

Why: DuckDB reads newline-delimited JSON with much less CPU than the same messages as one
array per file (a parse of each line instead of the whole document, and a single read that
fails on a field it was not told about, where the array needs a second pass to list the fields;
figures in tooling/bench/RESULTS.md, "Night"). Slack writes exports pretty-printed, so the
messages of a day file are told apart by the file's own indentation: `},` + newline + indent +
`{` occurs between two top-level messages and nowhere else in a file laid out that way.

Exact by construction, whatever the file holds:
- every line break becomes a tab. Between tokens both are blanks; inside a string both are
  invalid JSON (a raw control character), so a malformed file stays malformed;
- a split is made at `},<indent>{` only. A split anywhere else (inside a nested value, or a
  string) leaves a line that is not one complete JSON value, and a top-level separator that is
  not in that form leaves two messages on one line: DuckDB rejects both, and the batch is then
  read as arrays (`pages`).
Files on one line (no indentation to go by) and anything not an array are left to that path.
"""

import re
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc

ARRAY_START = re.compile(rb"\s*\[(\s*)")
BLANKS = b" \t\r\n"


def _conversion_pool() -> pa.MemoryPool:
    """jemalloc where pyarrow has it: with pyarrow's default (mimalloc) the converted buffers'
    pages go back to the system between two batches and are faulted in again, which makes the
    conversion much slower (tooling/bench/RESULTS.md, "Night")."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # builds without jemalloc (pyarrow's macOS wheels)
        return pa.default_memory_pool()


POOL = _conversion_pool()


def element_lines(data: bytes) -> Optional[pa.Buffer]:
    """The array's elements one per line (no trailing newline; empty for an empty array), or
    None when the file is not split here (see the module docstring)."""
    start = ARRAY_START.match(data)
    end = len(data)
    while end and data[end - 1] in BLANKS:
        end -= 1
    if start is None or end == 0 or data[end - 1] != ord("]"):
        return None
    body_start, body_end = start.end(), end - 1
    if body_start >= body_end:
        return pa.py_buffer(b"")
    indent = start.group(1)
    if b"\n" not in indent:
        return None
    body = pa.Array.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.array([0, body_end - body_start], pa.int64()).buffers()[1],
         pa.py_buffer(data)[body_start:body_end]],
    )  # fmt: skip
    # pyarrow's kernels run without the GIL: the conversion overlaps the threads that hold it
    tabs = pc.replace_substring(body, b"\n", b"\t", memory_pool=POOL)
    separator = b"}," + indent.replace(b"\n", b"\t") + b"{"
    lines = pc.replace_substring(tabs, separator, b"}\n{", memory_pool=POOL)
    _, offsets, values = lines.buffers()
    size = pa.Array.from_buffers(pa.int64(), 2, [None, offsets])[1].as_py()
    return values[:size]  # the one value, without the copy `lines[0]` makes
