"""Day files of an export as Arrow pages, parsed by DuckDB's JSON reader instead of Python.

Why not `orjson` + `arrow_pages.rows_to_table`, as the API path does: an export is read at disk
speed, not at Slack's, and there the Python objects are the cost. Measured on 100k emulated
messages (109 MB of day files): `orjson.loads` alone took 1.1 s and building the Arrow columns
from the dicts (and JSON text back from the nested values) 2.5 s more, i.e. ~40 s per million
messages on one core. DuckDB parses the same files in C++ on both cores and hands nested values
over as JSON text without building them in Python: ~6 s per million.

The pages have the columns `rows_to_table` would give the same messages (the tests compare the
rows of an import with the API path's, column by column):
- every top-level field a column; nested values (and the `MESSAGE_JSON_COLUMNS`) as compact JSON
  text; a field whose values mix types as JSON text too;
- `ts` and the other ids as Slack's strings; `posted_at` (UTC, microseconds) derived from `ts`;
  `channel_id` from the folder's entry in `channels.json`.

DuckDB reads files, not ZIP members: each batch of day files of one channel is written to a
private temporary folder, read, and deleted (at most two batches, `2 * BATCH_BYTES`, on disk,
never the export). The work runs as three stages, one thread each, across channels: while the
caller (dlt, writing parquet) handles one page, DuckDB parses the next batch and zlib inflates
the one after it. zlib and DuckDB release the GIL; one stage after the other, the two cores were
busy ~1.5 of 2 during an import's extract (bench/RESULTS.md).
"""

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

from .arrow_pages import KEY_COLUMNS, TIMESTAMP_UTC
from .export_archive import UNREADABLE_MEMBER, SlackExportError, read_day
from .message_rows import ts_micros

# Uncompressed day-file bytes per batch: one DuckDB read each, one dlt item each.
BATCH_BYTES = 32 * 1024 * 1024
TS_RE2 = r"^\d{1,12}\.\d{1,6}$"  # `export_archive.TS`, in the syntax pyarrow's RE2 reads
# How a field's first value character decides its column type, as `rows_to_table` decides from
# Python values: strings, booleans and numbers stay scalars; objects, arrays or a mix -> JSON.
LEADING_TYPES = {'"': "VARCHAR", "t": "BOOLEAN", "f": "BOOLEAN", "{": "JSON", "[": "JSON"}
NUMBER_LEADS = frozenset("-0123456789")


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


def _inflate_member(archive: zipfile.ZipFile, member: str, path: Path) -> bool:
    """Inflate one member into `path`; False for a day without messages (`[]`), which is not
    written. One member in memory at a time (measured: streaming it through a 1 MiB buffer
    caused as many page faults and took as long, bench/RESULTS.md)."""
    try:
        data = archive.read(member)
    except UNREADABLE_MEMBER as error:
        raise SlackExportError(f"{member} in the export cannot be read ({error})") from None
    if data.strip() == b"[]":
        return False
    path.write_bytes(data)
    return True


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
        self._inflater = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slack_inflate")
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slack_parse")
        self._staged = 0  # batches written so far: each gets its own file names

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
                if future.exception() is None:
                    _unlink(future.result())

    def _page(
        self, archive: zipfile.ZipFile, job: Tuple[str, List[str]], staged: Future
    ) -> Optional[pa.Table]:
        """Parse one inflated batch (on the parsing thread) and remove its files."""
        channel_id, batch = job
        files = staged.result()
        try:
            return self._parse(archive, batch, files, channel_id)
        finally:
            _unlink(files)

    def _stage(self, archive: zipfile.ZipFile, batch: List[str]) -> List[Path]:
        """Inflate a batch's members one at a time into the temporary folder (never all in
        memory); days without messages are left out."""
        self._staged += 1
        files: List[Path] = []
        try:
            for i, member in enumerate(batch):
                path = self.folder / f"{self._staged:06d}-{i:05d}.json"
                if _inflate_member(archive, member, path):
                    files.append(path)
        except BaseException:
            _unlink(files)
            raise
        return files

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
        as JSON text, typed from their values, and remembered for the next batches."""
        new = [k for k in keys if k not in self.types and k != "ts"]
        columns = {k: self.types.get(k, "JSON") for k in keys}
        columns["ts"] = "VARCHAR"
        table = self.con.sql(
            "SELECT * FROM read_json($files, format='array', columns=$columns)",
            params={"files": files, "columns": columns},
        ).to_arrow_table()
        if not new:
            return table
        decided: Dict[str, str] = {}
        for key in new:
            values = pc.drop_null(table.column(key))
            if len(values) == 0:
                continue  # only nulls so far: typed when a value shows up
            leads = set(pc.unique(pc.utf8_slice_codeunits(values, 0, 1)).to_pylist())
            fraction = bool(pc.any(pc.match_substring_regex(values, "[.eE]")).as_py())
            kind = "JSON" if key in self.json_columns else decide_type(leads, fraction)
            decided[key] = self.types[key] = kind
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
