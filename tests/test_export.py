"""Backfill from a Slack export: the emulator's export ZIP, the reader, the hand-over to the
daily API run, idempotency, PII, and bad input (one line, exit 2, nothing written)."""

import functools
import json
import tempfile
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from orchestration.loading import load_messages
from slack_source import import_export as export_module
from slack_source.import_export import import_export_source
from slack_source.import_export.archive import SlackExportError, open_export
from slack_source.import_export.handover import advance_channel_state, merge_thread_marks
from slack_source.import_export.pages import batches
from slack_source.message_rows import pack_ts, unpack_ts
from tests.helpers import (
    DATASET,
    LOOKBACK_DAYS,
    ROOT,
    clean_environment,
    latest_artifact,
    load_daily,
    loaded_messages,
    make_test_pipeline,
    pipeline_cli,
    query,
    readable_channel_ids,
    truth_messages,
)
from tooling.slack_emulator.export import write_export

SALT = "test-salt-not-secret"


def day_before(days: float) -> "datetime.date":
    return (datetime.now(timezone.utc) - timedelta(days=days)).date()


def now() -> float:
    return datetime.now(timezone.utc).timestamp()


def end_of(day) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() + 86400


def import_zip(pipeline, path, **kwargs):
    """As `import_export` does: appended into an empty `messages` table, merged otherwise."""

    def export(append_into_empty):
        return import_export_source(
            str(path), lookback_days=LOOKBACK_DAYS, append_into_empty=append_into_empty, **kwargs
        )

    return load_messages(pipeline, export, append_into_empty=True)["rows"]


def daily_run(pipeline, server, **kwargs):
    """The daily API run (the same lookback as the import); returns its `RunStats`."""
    return load_daily(pipeline, server, **kwargs)[0]


def all_rows(pipeline, table):
    """Every row (dlt's per-load bookkeeping columns aside), columns in name order: two loads
    may have added a table's columns in a different order."""
    columns = sorted(
        r[0]
        for r in query(
            pipeline,
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = '{DATASET}' AND table_name = '{table}'",
        )
        if r[0] not in ("_dlt_load_id", "_dlt_id")
    )
    select = ", ".join(f'"{c}"' for c in columns)
    return query(pipeline, f"SELECT {select} FROM {DATASET}.{table} ORDER BY ALL")


def assert_unique(pipeline):
    total, distinct = query(
        pipeline, f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages"
    )[0]
    assert total == distinct


# -- the emulator's export -------------------------------------------------------------------
def test_emulator_writes_slacks_export_layout(emulator, tmp_path):
    workspace, _ = emulator
    full = write_export(workspace, tmp_path / "full.zip")
    with zipfile.ZipFile(full.path) as archive:
        names = archive.namelist()
        channels = json.loads(archive.read("channels.json"))
        groups = json.loads(archive.read("groups.json"))
        users = json.loads(archive.read("users.json"))
        assert {"users.json", "channels.json", "groups.json", "dms.json", "mpims.json"} <= set(
            names
        )
        assert {c["id"] for c in channels + groups} == {c["id"] for c in workspace.channels()}
        assert all("members" in c and "is_member" not in c for c in channels)
        assert [u["id"] for u in users] == [u["id"] for u in workspace.users()]
        days = sorted(n for n in names if n.startswith("general/"))
        messages = [m for n in days for m in json.loads(archive.read(n))]
    stamps = [m["ts"] for m in messages]
    assert stamps == sorted(stamps)
    for name in days:  # UTC days
        day = name.split("/")[1][:-5]
        for m in json.loads(zipfile.ZipFile(full.path).read(name)):
            moment = datetime.fromtimestamp(float(m["ts"]), timezone.utc)
            assert moment.strftime("%Y-%m-%d") == day
    replies = [m for m in messages if m.get("thread_ts") not in (None, m["ts"])]
    parents = [m for m in messages if m.get("reply_count")]
    assert replies and all("parent_user_id" in m for m in replies)
    assert parents and all(len(p["replies"]) == p["reply_count"] for p in parents)
    assert full.messages == workspace.message_count()

    cut = day_before(10)
    public = write_export(workspace, tmp_path / "free.zip", end=cut, public_only=True)
    with zipfile.ZipFile(public.path) as archive:
        names = archive.namelist()
        assert "groups.json" not in names
        private = [c["name"] for c in workspace.channels() if c["is_private"]]
        assert not [n for n in names if n.split("/")[0] in private]
        last = max(m["ts"] for n in names if "/" in n for m in json.loads(archive.read(n)))
    assert float(last) < end_of(cut)


# -- same rows as the API path ---------------------------------------------------------------
def test_export_rows_equal_api_rows(slack_env, tmp_path):
    workspace, server = slack_env
    api = make_test_pipeline(tmp_path / "api")
    daily_run(api, server, start_date=datetime.now(timezone.utc) - timedelta(days=40))
    exported = make_test_pipeline(tmp_path / "export")
    import_zip(exported, write_export(workspace, tmp_path / "export.zip").path)

    readable = sorted(readable_channel_ids(workspace))
    in_list = ", ".join(f"'{c}'" for c in readable)
    api_columns = [
        r[0]
        for r in query(
            api,
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = '{DATASET}' AND table_name = 'messages'",
        )
    ]
    export_types = dict(
        query(
            exported,
            "SELECT column_name, data_type FROM information_schema.columns"
            f" WHERE table_schema = '{DATASET}' AND table_name = 'messages'",
        )
    )
    api_types = dict(
        query(
            api,
            "SELECT column_name, data_type FROM information_schema.columns"
            f" WHERE table_schema = '{DATASET}' AND table_name = 'messages'",
        )
    )
    assert {c: export_types[c] for c in api_types} == api_types  # same columns, same types
    assert set(export_types) - set(api_types) == {"replies"}
    # the fields only exports carry; every other column must be equal, row for row
    export_only = {"replies", "user_profile"}
    api_columns = [c for c in api_columns if c not in export_only]
    select = ", ".join(f'"{c}"' for c in api_columns)
    sql = f"SELECT {select} FROM {DATASET}.messages WHERE channel_id IN ({in_list}) ORDER BY ALL"
    api_rows, export_rows = query(api, sql), query(exported, sql)
    assert len(api_rows) == len(truth_messages(workspace, set(readable)))
    assert export_rows == api_rows
    assert query(exported, f"SELECT COUNT(user_profile) FROM {DATASET}.messages")[0][0] > 0
    user_sql = f"SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM {DATASET}.users ORDER BY id"
    assert query(exported, user_sql) == query(api, user_sql)


# -- the hand-over ---------------------------------------------------------------------------
def test_export_until_d_then_daily_run_equals_ground_truth(slack_env, tmp_path):
    workspace, server = slack_env
    cut = day_before(4)  # export up to day D: four days of history (and late replies) after it
    readable = readable_channel_ids(workspace)
    # a thread that started before D (inside the daily window) and gets replies after D
    before_d = [
        (ch, ts)
        for ch, ts in workspace.thread_parents()
        if ch in readable and end_of(cut) - 6 * 86400 < float(ts) < end_of(cut)
    ]
    assert before_d
    channel, old_thread = before_d[0]
    # a reply after D that exists when the export is made: the parent in the export counts it
    # (its fields are a snapshot), the day files up to D do not hold it
    other_thread = workspace.ts_at_days_ago(channel, (now() - end_of(cut)) / 86400 + 2)
    assert other_thread != old_thread and float(other_thread) > end_of(cut) - 6 * 86400
    reply_after_d = workspace.post_reply(
        channel, other_thread, text="after D, before the export", ts=f"{end_of(cut) + 3600:.6f}"
    )
    exported = write_export(workspace, tmp_path / "export.zip", end=cut)
    late_reply = workspace.post_reply(channel, old_thread, text="reply after the export")
    new_message = workspace.post_message(channel, text="posted after the export")

    pipeline = make_test_pipeline(tmp_path)
    rows = import_zip(pipeline, exported.path)
    assert rows["messages"] == exported.messages
    state = pipeline.state["sources"]["slack"]
    for channel_id, newest in exported.newest_ts.items():
        assert state["channels"][channel_id]["newest_ts"] <= newest
        assert float(state["channels"][channel_id]["newest_ts"]) < end_of(cut)
    assert old_thread in state["threads"][channel]

    stats = daily_run(pipeline, server)

    loaded = loaded_messages(pipeline)
    truth = truth_messages(workspace)
    assert loaded[(channel, late_reply)]["text"] == "reply after the export"
    assert (channel, new_message) in loaded
    assert loaded[(channel, old_thread)]["latest_reply"] == late_reply
    assert loaded[(channel, reply_after_d)]["text"] == "after D, before the export"
    # channels the API reads: export + daily run == the API's ground truth, exactly
    assert {k: v for k, v in loaded.items() if k[0] in readable} == {
        k: v for k, v in truth.items() if k[0] in readable
    }
    # channels the bot cannot read keep what the export holds (up to D)
    assert {k: v for k, v in loaded.items() if k[0] not in readable} == {
        k: v for k, v in truth.items() if k[0] not in readable and float(k[1]) < end_of(cut)
    }
    assert_unique(pipeline)
    assert stats.threads_refreshed >= 1


def test_importing_the_same_export_twice_changes_nothing(slack_env, tmp_path):
    workspace, server = slack_env
    path = write_export(workspace, tmp_path / "export.zip", end=day_before(3)).path
    pipeline = make_test_pipeline(tmp_path)
    import_zip(pipeline, path)
    before = {t: all_rows(pipeline, t) for t in ("messages", "channels", "users")}
    state_before = json.dumps(pipeline.state["sources"]["slack"], sort_keys=True)
    import_zip(pipeline, path)
    assert {t: all_rows(pipeline, t) for t in ("messages", "channels", "users")} == before
    assert json.dumps(pipeline.state["sources"]["slack"], sort_keys=True) == state_before
    assert_unique(pipeline)


def test_older_export_after_api_data_never_moves_state_back(slack_env, tmp_path):
    workspace, server = slack_env
    pipeline = make_test_pipeline(tmp_path)
    daily_run(pipeline, server, start_date=datetime.now(timezone.utc) - timedelta(days=40))
    channels_before = json.loads(json.dumps(pipeline.state["sources"]["slack"]["channels"]))
    threads_before = json.loads(json.dumps(pipeline.state["sources"]["slack"]["threads"]))
    import_zip(pipeline, write_export(workspace, tmp_path / "old.zip", end=day_before(12)).path)
    state = pipeline.state["sources"]["slack"]
    moved = [c for c, before in channels_before.items() if before.get("newest_ts")]
    assert moved
    for channel_id in moved:
        before = channels_before[channel_id]
        assert state["channels"][channel_id]["newest_ts"] == before["newest_ts"]
        assert set(unpack_ts(before["recent"])) <= set(
            unpack_ts(state["channels"][channel_id]["recent"])
        )
    for channel_id, marks in threads_before.items():
        for parent, mark in marks.items():
            assert state["threads"][channel_id][parent] == mark
    channel = sorted(readable_channel_ids(workspace))[0]
    workspace.post_message(channel, text="after the old import")
    daily_run(pipeline, server)
    readable = readable_channel_ids(workspace)
    assert {k: v for k, v in loaded_messages(pipeline).items() if k[0] in readable} == (
        truth_messages(workspace, readable)
    )
    assert_unique(pipeline)


def test_state_helpers_only_move_forward():
    state = {"newest_ts": "1700000100.000000", "recent": pack_ts(["1700000050.000000"])}
    advance_channel_state(state, "1700000000.000000", ["1699999990.000000"], 86400)
    assert state["newest_ts"] == "1700000100.000000"
    assert unpack_ts(state["recent"]) == ["1699999990.000000", "1700000050.000000"]
    advance_channel_state(state, "1700090000.000000", ["1700090000.000000"], 3600)
    assert state["newest_ts"] == "1700090000.000000"
    assert unpack_ts(state["recent"]) == ["1700090000.000000"]
    threads = {"1.1": ["1.5", 3]}
    merge_thread_marks(threads, {"1.1": ["1.4", 2], "2.1": ["2.2", 1]})
    assert threads == {"1.1": ["1.5", 3], "2.1": ["2.2", 1]}
    merge_thread_marks(threads, {"1.1": ["1.6", 4]})
    assert threads["1.1"] == ["1.6", 4]


# -- PII -------------------------------------------------------------------------------------
def test_pii_hash_applies_to_imported_users_and_messages(emulator, tmp_path):
    workspace, _ = emulator
    pipeline = make_test_pipeline(tmp_path)
    import_zip(
        pipeline, write_export(workspace, tmp_path / "e.zip").path, pii_mode="hash", pii_salt=SALT
    )
    tables = [
        t[0]
        for t in query(
            pipeline,
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{DATASET}'",
        )
    ]
    values = []
    for table in tables:
        columns = query(
            pipeline,
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = '{DATASET}' AND table_name = '{table}'",
        )
        for (column,) in columns:
            rows = query(pipeline, f'SELECT CAST("{column}" AS VARCHAR) FROM {DATASET}."{table}"')
            values.extend(r[0] for r in rows if r[0] is not None)
    text = "\n".join(values)
    emails = [u["profile"]["email"] for u in workspace.users() if u["profile"].get("email")]
    real_names = [u["real_name"] for u in workspace.users() if not u["is_bot"]]
    assert emails and real_names
    assert not [e for e in emails if e in text]
    assert not [n for n in real_names if f'"{n}"' in text or n in values]
    assert query(pipeline, f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0] > 0


# -- bad input -------------------------------------------------------------------------------
def bad_exports(workspace, tmp_path):
    good = write_export(workspace, tmp_path / "good.zip").path
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("this is not a zip file\n")
    not_export = tmp_path / "photos.zip"
    with zipfile.ZipFile(not_export, "w") as archive:
        archive.writestr("holiday/2026-01-01.json", "[]")
    orphan = tmp_path / "orphan.zip"
    malformed = tmp_path / "malformed.zip"
    with zipfile.ZipFile(good) as source:
        members = [(n, source.read(n)) for n in source.namelist()]
    day = sorted(n for n, _ in members if n.startswith("general/"))[-1]
    with zipfile.ZipFile(orphan, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
        archive.writestr("lost-channel/2026-01-01.json", "[]")
    with zipfile.ZipFile(malformed, "w") as archive:
        for name, data in members:
            archive.writestr(name, data[:-40] if name == day else data)
    damaged = tmp_path / "damaged.zip"  # a day file's compressed bytes changed on the way
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    with zipfile.ZipFile(damaged) as archive:
        info = archive.getinfo(day)
    raw = bytearray(damaged.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + info.compress_size // 3, start + info.compress_size // 2):
        raw[offset] ^= 0x55
    damaged.write_bytes(bytes(raw))
    return [
        (not_zip, "is not a ZIP file"),
        (not_export, "is not a Slack export"),
        (orphan, "folder 'lost-channel/' in the export has no entry in channels.json"),
        (malformed, f"{day} in the export is not valid JSON"),
        (damaged, f"{day} in the export cannot be read"),
    ]


def test_bad_exports_fail_before_anything_is_written(emulator, tmp_path):
    workspace, _ = emulator
    for path, message in bad_exports(workspace, tmp_path):
        pipeline = make_test_pipeline(tmp_path / path.stem, name=f"bad_{path.stem}")
        with pytest.raises(Exception) as raised:
            open_export(path)
            import_zip(pipeline, path)
        assert message in str(raised.value), path
        database = tmp_path / path.stem / "slack.duckdb"
        if database.exists():
            assert query(database, "SELECT COUNT(*) FROM information_schema.tables")[0][0] == 0
        assert not pipeline.state.get("sources", {}).get("slack")


def test_day_files_read_in_many_batches_give_the_same_rows(emulator, tmp_path, monkeypatch):
    """Batches of one day file each: every batch but a channel's first is inflated on the second
    thread while the one before is read. Same rows as one batch per channel; a bad day file in a
    later batch is still named; no temporary file is left behind."""
    workspace, _ = emulator
    exported = write_export(workspace, tmp_path / "export.zip")
    path = exported.path
    whole = make_test_pipeline(tmp_path / "whole", name="whole")
    assert import_zip(whole, path)["messages"] == exported.messages
    temp_before = set(Path(tempfile.gettempdir()).glob("slack_export_*"))
    monkeypatch.setattr(export_module, "batches", functools.partial(batches, limit=1))
    batched = make_test_pipeline(tmp_path / "batched", name="batched")
    import_zip(batched, path)
    assert all_rows(batched, "messages") == all_rows(whole, "messages")
    assert len(all_rows(batched, "messages")) == exported.messages
    malformed, message = bad_exports(workspace, tmp_path)[3]
    with pytest.raises(Exception) as raised:  # dlt wraps it: the CLI unwraps it to one line
        import_zip(make_test_pipeline(tmp_path / "bad", name="bad"), malformed)
    assert message in str(raised.value)
    assert set(Path(tempfile.gettempdir()).glob("slack_export_*")) == temp_before


def test_a_batch_of_empty_days_padded_with_blanks_gives_no_rows(emulator, tmp_path, monkeypatch):
    """An empty day with blanks inside its brackets is read like `[]`: no rows, no error, even
    when it is a batch of its own. `[{}]` is still a message without a `ts`, named."""
    workspace, _ = emulator
    exported = write_export(workspace, tmp_path / "export.zip")
    monkeypatch.setattr(export_module, "batches", functools.partial(batches, limit=1))

    def with_day(name: str, content: str) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(exported.path) as source, zipfile.ZipFile(path, "w") as target:
            for member in source.namelist():
                target.writestr(member, source.read(member))
            target.writestr("general/2020-01-01.json", content)
        return path

    padded = with_day("padded.zip", "[\n" + " " * 200 + "\n]\n")
    loaded = import_zip(make_test_pipeline(tmp_path / "padded", name="padded"), padded)
    assert loaded["messages"] == exported.messages
    keyless = with_day("keyless.zip", "[{}]")
    with pytest.raises(Exception) as raised:
        import_zip(make_test_pipeline(tmp_path / "keyless", name="keyless"), keyless)
    assert "general/2020-01-01.json in the export has a message without a valid ts" in str(
        raised.value
    )


@pytest.mark.parametrize("limit", [None, 1], ids=["same_batch", "next_batch"])
def test_a_message_in_two_day_files_is_one_row_and_hands_over_once(
    emulator, tmp_path, monkeypatch, limit
):
    """The newest day's messages again in the day before (same batch, or the batch before with
    one day file per batch): one row each, and the same hand-over state as the export without
    the copies."""
    workspace, _ = emulator
    exported = write_export(workspace, tmp_path / "export.zip")
    if limit:
        monkeypatch.setattr(export_module, "batches", functools.partial(batches, limit=limit))
    repeated = tmp_path / "repeated.zip"
    with zipfile.ZipFile(exported.path) as source, zipfile.ZipFile(repeated, "w") as target:
        days = sorted(n for n in source.namelist() if n.startswith("general/"))
        newest = json.loads(source.read(days[-1]))
        for member in source.namelist():
            data = source.read(member)
            if member == days[-2]:
                data = json.dumps(json.loads(data) + newest).encode()
            target.writestr(member, data)
    states = []
    for name, path in (("plain", exported.path), ("repeated", repeated)):
        pipeline = make_test_pipeline(tmp_path / name, name=name)
        assert import_zip(pipeline, path)["messages"] == exported.messages
        assert_unique(pipeline)
        states.append(pipeline.state["sources"]["slack"])
    assert states[0] == states[1]


def run_cli(tmp_path, *args):
    environment = clean_environment(
        {
            "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "cli.duckdb"),
            "SLACK_PIPELINE__PIPELINES_DIR": str(tmp_path / "pipelines"),
            "PREFECT_HOME": str(tmp_path / "prefect"),
        }
    )
    # cwd: as ./run.sh runs it, Prefect reads prefect.toml from there
    return pipeline_cli("import-export", *args, cwd=ROOT, env=environment, timeout=300)


@pytest.mark.slow
def test_cli_bad_input_is_one_line_and_exit_2(emulator, tmp_path):
    workspace, _ = emulator
    for path, message in bad_exports(workspace, tmp_path):
        result = run_cli(tmp_path, str(path))
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert "Traceback" not in result.stderr
        database = tmp_path / "cli.duckdb"
        if database.exists():
            assert query(database, "SELECT COUNT(*) FROM information_schema.tables")[0][0] == 0


def test_open_export_reports_folder_and_file_names(emulator, tmp_path):
    workspace, _ = emulator
    for path, message in bad_exports(workspace, tmp_path)[:3]:
        with pytest.raises(SlackExportError) as raised:
            open_export(path)
        assert message in str(raised.value)


# -- the flow --------------------------------------------------------------------------------
def test_import_flow_publishes_summary(prefect_harness, emulator, tmp_path, monkeypatch):
    from slack_import_export_with_prefect import ARTIFACT_KEY, slack_import_export

    workspace, _ = emulator
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "flow.duckdb"))
    monkeypatch.setenv("SLACK_PIPELINE__PIPELINES_DIR", str(tmp_path / "pipelines"))
    exported = write_export(workspace, tmp_path / "e.zip")
    summary = slack_import_export(str(exported.path))
    assert summary["rows_loaded"]["messages"] == exported.messages
    assert summary["rows_loaded"]["users"] == len(workspace.users())
    assert sum(summary["messages_per_channel"].values()) == exported.messages

    markdown = latest_artifact(ARTIFACT_KEY)
    assert "| messages |" in markdown.data
