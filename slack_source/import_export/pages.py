"""Day files of an export as Arrow pages, parsed by DuckDB's JSON reader instead of Python.

Why not `orjson` + `arrow_pages.rows_to_table`, as the API path does: an export is read at disk
speed, not at Slack's, and there building Python objects for every message (and JSON text back
from the nested values) is the cost. DuckDB parses the same files in C++ on both cores and hands
nested values over as JSON text without building them in Python (figures:
tooling/bench/RESULTS.md).

The pages have the columns `rows_to_table` would give the same messages (the tests compare the
rows of an import with the API path's, column by column):
- every top-level field a column; nested values (and the `MESSAGE_JSON_COLUMNS`) as compact JSON
  text; a field whose values mix types as JSON text too;
- `ts` and the other ids as Slack's strings; `posted_at` (UTC, microseconds) derived from `ts`;
  `channel_id` from the folder's entry in `channels.json`.

Two ways to read a batch, the same rows either way (`tests/test_export_pages.py` compares them):
- fast: the inflating thread writes the batch as one newline-delimited file (`lines`),
  and DuckDB reads it once, told every field it knows, with its type, by two seed rows at the
  top of the file. With the types detected from those rows, DuckDB fails on any field it was not
  told about (`has unknown key`), so no field can be dropped unseen. It costs much less
  time and CPU than the exact way (tooling/bench/RESULTS.md, "Night");
- exact: the batch's day files as they are, a first DuckDB pass listing every message's
  fields, a second reading them typed. Taken by the first batch (no type known yet), and by a
  batch the fast read refused for any reason: a new field, a value DuckDB cannot convert to its
  field's type, a file not split, a bad file (which this way is named).

DuckDB reads files, not ZIP members: batches are written to a private temporary folder, read,
and deleted (at most two batches, `2 * BATCH_BYTES`, on disk, never the export). The work runs
as three stages, one thread each, across channels: while the caller (dlt, writing parquet)
handles one page, DuckDB reads the next batch and the one after it is inflated and split into
lines. zlib, pyarrow and DuckDB release the GIL, so the stages overlap on both cores instead of
taking turns (tooling/bench/RESULTS.md, "Night").
"""

import itertools
import shutil
import tempfile
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow_pages import KEY_COLUMNS, TIMESTAMP_UTC
from ..message_rows import ts_micros
from .archive import UNREADABLE_MEMBER, SlackExportError, read_day
from .lines import element_lines

# Uncompressed day-file bytes per batch: one DuckDB read each, one dlt item each. The line
# read's working memory is per batch: 16 MB is as fast as 32 MB with a lower peak RSS
# (tooling/bench/RESULTS.md, "Night").
BATCH_BYTES = 16 * 1024 * 1024
TS_RE2 = r"^\d{1,12}\.\d{1,6}$"  # `archive.TS`, in the syntax pyarrow's RE2 reads
# How a field's first value character decides its column type, as `rows_to_table` decides from
# Python values: strings, booleans and numbers stay scalars; objects, arrays or a mix -> JSON.
LEADING_TYPES = {'"': "VARCHAR", "t": "BOOLEAN", "f": "BOOLEAN", "{": "JSON", "[": "JSON"}
NUMBER_LEADS = frozenset("-0123456789")
# Blanks at the top of a staged file, overwritten by the seed rows when it is read: the file is
# written two batches ahead, the types are only known then. DuckDB skips blank lines.
HEAD_ROOM = 64 * 1024
SEED_TS = "seed"  # no message has it: `_finish` rejects a `ts` that is not Slack's number
# Two seed values per type: DuckDB's detection over them gives exactly that type (JSON: an
# object and a number, which only JSON can hold).
SEED_VALUES = {
    "VARCHAR": ('"s"', '"s"'),
    "BIGINT": ("0", "0"),
    "DOUBLE": ("0.5", "0.5"),
    "BOOLEAN": ("true", "true"),
    "JSON": ("{}", "0"),
}
ARROW_KINDS = {  # the Arrow type a column of each kind arrives as, checked on the fast read
    "VARCHAR": pa.types.is_string,
    "JSON": pa.types.is_string,
    "BIGINT": pa.types.is_int64,
    "DOUBLE": pa.types.is_float64,
    "BOOLEAN": pa.types.is_boolean,
}


def batches(
    archive: zipfile.ZipFile, members: Sequence[str], limit: int = BATCH_BYTES
) -> Iterator[List[str]]:
    """Consecutive day files of one channel in groups of about `limit` uncompressed bytes (sizes
    from the ZIP's central directory: nothing is read here)."""
    batch: List[str] = []
    size = 0
    for member in members:
        batch.append(member)
        size += archive.getinfo(member).file_size
        if size >= limit:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _inflated(archive: zipfile.ZipFile, member: str) -> bytes:
    """One member's bytes, whole: streaming it through a buffer faults as many pages and is no
    faster (tooling/bench/RESULTS.md, "Evening")."""
    try:
        return archive.read(member)
    except UNREADABLE_MEMBER as error:
        raise SlackExportError(f"{member} in the export cannot be read ({error})") from None


class FastReadRefused(Exception):
    """The fast read cannot vouch for this batch: it is read the exact way instead."""


def decide_type(leads: set, has_fraction: bool) -> str:
    """Column type from the first characters of a field's JSON values (see `LEADING_TYPES`)."""
    kinds = {
        ("DOUBLE" if has_fraction else "BIGINT")
        if c in NUMBER_LEADS
        else LEADING_TYPES.get(c, "JSON")
        for c in leads
    }
    return kinds.pop() if len(kinds) == 1 else "JSON"


class DayFileReader:
    """Turns batches of day files into Arrow pages; one in-memory DuckDB, one temp folder."""

    def __init__(self, json_columns: frozenset) -> None:
        self.json_columns = json_columns
        self.con = duckdb.connect(config={"threads": 2, "memory_limit": "128MB"})
        self.folder = Path(tempfile.mkdtemp(prefix="slack_export_"))
        self.types: Dict[str, str] = {}  # field -> column type, decided on first sight
        self.null_only: set = set()  # fields seen with null values only: typed when one shows
        self.exact_reads = 0  # batches read the exact way (see the module docstring)
        self._inflater = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slack_inflate")
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slack_parse")
        self._names = itertools.count()  # each staged file gets its own name

    def close(self) -> None:
        self._parser.shutdown(wait=True)
        self._inflater.shutdown(wait=True)
        self.con.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "DayFileReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def pages(
        self, archive: zipfile.ZipFile, jobs: Sequence[Tuple[str, List[str]]]
    ) -> Iterator[Optional[pa.Table]]:
        """One item per job (a channel id and a batch of its day files), in order: the batch's
        messages as an Arrow table, or None for a batch of empty days; `SlackExportError`
        naming a bad file. Batch i+1 is parsed and batch i+2 inflated while the caller has
        page i. Batches are parsed one after the other, in order (`types` is decided on first
        sight)."""
        staged: Dict[int, Future] = {}
        parsed: Dict[int, Future] = {}

        def stage(j: int) -> None:
            if j < len(jobs) and j not in staged:
                staged[j] = self._inflater.submit(self._stage, archive, jobs[j][1])

        def parse(j: int) -> None:
            if j < len(jobs) and j not in parsed:
                stage(j)
                parsed[j] = self._parser.submit(self._page, archive, jobs[j], staged.pop(j))

        try:
            for i in range(len(jobs)):
                parse(i)
                parse(i + 1)
                stage(i + 2)
                yield parsed.pop(i).result()  # raises what inflating or parsing raised
        finally:  # stopped early or failed: wait for the work ahead and remove its files
            for future in parsed.values():
                future.exception()  # `_page` removes its batch's files itself
            for future in staged.values():
                if future.exception() is None and future.result() is not None:
                    future.result().unlink(missing_ok=True)

    def _page(
        self, archive: zipfile.ZipFile, job: Tuple[str, List[str]], staged: Future
    ) -> Optional[pa.Table]:
        """Read one staged batch (on the parsing thread), fast if it can, and remove its
        file."""
        channel_id, batch = job
        lines = staged.result()
        try:
            if lines is not None and self.types:
                try:
                    return self._read_fast(lines, channel_id)
                except FastReadRefused:
                    pass
        finally:
            if lines is not None:
                lines.unlink(missing_ok=True)
        self.exact_reads += 1
        files = self._stage_arrays(archive, batch)
        try:
            return self._parse(archive, batch, files, channel_id)
        finally:
            _unlink(files)

    def _stage(self, archive: zipfile.ZipFile, batch: List[str]) -> Optional[Path]:
        """Inflate a batch's members one at a time (never all in memory) into one
        newline-delimited file, `HEAD_ROOM` blanks first; None when a member is not split
        (`lines`): the batch is then read the exact way."""
        path = self.folder / f"{next(self._names):06d}.ndjson"
        try:
            with path.open("wb") as out:
                out.write(b" " * HEAD_ROOM + b"\n")
                for member in batch:
                    lines = element_lines(_inflated(archive, member))
                    if lines is None:
                        break
                    out.write(lines)
                    out.write(b"\n")
                else:
                    return path
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        path.unlink()
        return None

    def _stage_arrays(self, archive: zipfile.ZipFile, batch: List[str]) -> List[Path]:
        """The batch's day files as they are, for the exact read (inflated again: only the
        first batch and the ones the fast read refused come here); days without messages are
        left out."""
        files: List[Path] = []
        try:
            for member in batch:
                path = self.folder / f"{next(self._names):06d}.json"
                data = _inflated(archive, member)
                if data.strip() != b"[]":
                    path.write_bytes(data)
                    files.append(path)
        except BaseException:
            _unlink(files)
            raise
        return files

    def _read_fast(self, path: Path, channel_id: str) -> Optional[pa.Table]:
        """One DuckDB read of a staged file, behind two seed rows naming every known field
        (written into its head room now: the types are only known now); None for a batch
        without messages; `FastReadRefused` when the exact read must decide."""
        seed = self._seed_rows()
        if len(seed) > HEAD_ROOM:
            raise FastReadRefused()
        with path.open("r+b") as head:
            head.write(seed)
        try:
            table = self.con.sql(
                "SELECT * FROM read_json($file, format='newline_delimited',"
                " sample_size=2, maximum_sample_files=1)",
                params={"file": str(path)},
            ).to_arrow_table()
        except duckdb.Error:
            raise FastReadRefused() from None
        if table.slice(0, 2).column("ts").to_pylist() != [SEED_TS, SEED_TS]:
            raise FastReadRefused()
        if set(table.column_names) != {*self.types, *self.null_only, "ts"}:
            raise FastReadRefused()  # e.g. DuckDB renamed `Id` beside `id` (`id_1`)
        for field in table.schema:
            kind = "VARCHAR" if field.name == "ts" else self.types.get(field.name, "JSON")
            if not ARROW_KINDS[kind](field.type):
                raise FastReadRefused()
        table = table.slice(2)
        if table.num_rows == 0:
            return None
        table = self._decide(table, [k for k in self.null_only if k in table.column_names])
        try:
            return _finish(table, channel_id)
        except SlackExportError:
            raise FastReadRefused() from None

    def _seed_rows(self) -> bytes:
        """Two rows naming every known field with a value of its type (`SEED_VALUES`)."""
        kinds = {**{k: "JSON" for k in self.null_only}, **self.types, "ts": "VARCHAR"}
        rows = []
        for i in (0, 1):
            fields = [
                orjson.dumps(k) + b":" + SEED_VALUES[kind][i].encode()
                for k, kind in kinds.items()
                if k != "ts"
            ]
            fields.append(b'"ts":' + orjson.dumps(SEED_TS))
            rows.append(b"{" + b",".join(fields) + b"}\n")
        return b"".join(rows)

    def _parse(
        self, archive: zipfile.ZipFile, batch: List[str], files: List[Path], channel_id: str
    ) -> Optional[pa.Table]:
        if not files:
            return None
        try:
            return self._read([str(f) for f in files], channel_id)
        except (duckdb.Error, SlackExportError) as error:
            raise self._explain(archive, batch, error) from None

    def _read(self, files: List[str], channel_id: str) -> Optional[pa.Table]:
        keys = [
            k
            for (k,) in self.con.execute(
                "SELECT DISTINCT unnest(json_keys(json))"
                " FROM read_json_objects($files, format='array')",
                {"files": files},
            ).fetchall()
        ]
        if not keys and not self._holds_messages(files):
            return None  # empty days with blanks inside the brackets: `[ ]`, `[\n]`
        if "ts" not in keys:
            raise SlackExportError("a message without ts")
        try:
            table = self._typed(files, keys)
        except duckdb.ConversionException:
            # a field's values changed type since it was typed: decide again from this batch
            for key in keys:
                self.types.pop(key, None)
            table = self._typed(files, keys)
        return _finish(table, channel_id)

    def _holds_messages(self, files: List[str]) -> bool:
        """Whether the files hold any message (`[{}]` does, `[ ]` padded with blanks not)."""
        (count,) = self.con.execute(
            "SELECT count(*) FROM read_json_objects($files, format='array')", {"files": files}
        ).fetchone()
        return count > 0

    def _typed(self, files: List[str], keys: List[str]) -> pa.Table:
        """Read the batch with the known column types; fields seen for the first time are read
        as JSON text and typed by `_decide`."""
        columns = {k: self.types.get(k, "JSON") for k in keys}
        columns["ts"] = "VARCHAR"
        table = self.con.sql(
            "SELECT * FROM read_json($files, format='array', columns=$columns)",
            params={"files": files, "columns": columns},
        ).to_arrow_table()
        return self._decide(table, [k for k in keys if k not in self.types and k != "ts"])

    def _decide(self, table: pa.Table, new: List[str]) -> pa.Table:
        """Type the `new` columns (JSON text) from their values and remember the types for the
        next batches; a column of nulls only is left out until a value shows up."""
        if not new:
            return table
        decided: Dict[str, str] = {}
        for key in new:
            values = pc.drop_null(table.column(key))
            if len(values) == 0:
                self.null_only.add(key)
                continue  # only nulls so far: typed when a value shows up
            leads = set(pc.unique(pc.utf8_slice_codeunits(values, 0, 1)).to_pylist())
            fraction = bool(pc.any(pc.match_substring_regex(values, "[.eE]")).as_py())
            kind = "JSON" if key in self.json_columns else decide_type(leads, fraction)
            decided[key] = self.types[key] = kind
            self.null_only.discard(key)
        convert = {
            "VARCHAR": "json_extract_string({0}, '$')",
            "BOOLEAN": "CAST({0} AS BOOLEAN)",
            "BIGINT": "CAST({0} AS BIGINT)",
            "DOUBLE": "CAST({0} AS DOUBLE)",
        }
        replace = [
            f"{convert[kind].format(_quoted(key))} AS {_quoted(key)}"
            for key, kind in decided.items()
            if kind in convert
        ]
        dropped = [k for k in new if k not in decided]
        if dropped:
            table = table.drop_columns(dropped)
        if replace:
            self.con.register("page", table)
            table = self.con.sql(
                f"SELECT * REPLACE ({', '.join(replace)}) FROM page"
            ).to_arrow_table()
            self.con.unregister("page")
        return table

    def _explain(
        self, archive: zipfile.ZipFile, batch: List[str], error: Exception
    ) -> SlackExportError:
        """Which file was bad: each one parsed on its own (only on this error path)."""
        for member in batch:
            read_day(archive, member)  # raises naming the member
        return SlackExportError(f"a day file of {batch[0].rsplit('/', 1)[0]}/: {error}")


def _unlink(files: List[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _finish(table: pa.Table, channel_id: str) -> pa.Table:
    """Check `ts`; add `channel_id` and `posted_at`; give keys and text the types
    `rows_to_table` gives them."""
    ts = table.column("ts")
    if ts.null_count or not pc.all(pc.match_substring_regex(ts, TS_RE2)).as_py():
        raise SlackExportError("a message without a valid ts")
    if pc.all(pc.equal(pc.utf8_length(ts), pc.add(pc.find_substring(ts, "."), 7))).as_py():
        micros = pc.cast(pc.replace_substring(ts, ".", ""), pa.int64())  # Slack's 6 digits
    else:
        micros = pa.array([ts_micros(t) for t in ts.to_pylist()], pa.int64())
    fields, arrays = [], []
    for field, array in zip(table.schema, table.columns, strict=True):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            field = pa.field(field.name, pa.string(), nullable=field.name not in KEY_COLUMNS)
            array = array.cast(pa.string())
        fields.append(field)
        arrays.append(array)
    fields.append(pa.field("channel_id", pa.string(), nullable=False))
    arrays.append(pa.array([channel_id] * table.num_rows, pa.string()))
    fields.append(pa.field("posted_at", TIMESTAMP_UTC))
    arrays.append(micros.cast(TIMESTAMP_UTC))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def scrub_json_column(
    table: pa.Table, column: str, scrub: Callable[[Dict[str, Any]], Dict[str, Any]]
) -> pa.Table:
    """Apply a PII map to the objects of one JSON text column (e.g. `user_profile`)."""
    if column not in table.column_names:
        return table
    values = table.column(column).to_pylist()
    out = [None if v is None else orjson.dumps(scrub(orjson.loads(v))).decode() for v in values]
    index = table.column_names.index(column)
    return table.set_column(index, table.schema.field(column), pa.array(out, pa.string()))
