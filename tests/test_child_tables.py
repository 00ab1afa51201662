"""`reactions` and `files` beside `messages`: exactly the workspace's, following their message
(a lost reaction and a deleted message take their rows with them), at no extra Slack call, from
the API and from an export alike."""

import logging
from datetime import datetime, timezone

from orchestration.loading import load_messages
from slack_source import slack_source
from slack_source.import_export import import_export_source
from tests.helpers import (
    DATASET,
    LOOKBACK_DAYS,
    SMALL_SPEC,
    TOKEN,
    backfill_date,
    load_daily,
    load_source,
    loaded_files,
    loaded_messages,
    loaded_reactions,
    make_test_pipeline,
    query,
    readable_channel_ids,
    thread_with_age,
    truth_files,
    truth_messages,
    truth_reactions,
)
from tests.test_source import RecordedWarnings
from tooling.slack_emulator import Workspace, WorkspaceSpec
from tooling.slack_emulator.export import write_export


def recent_plain(workspace, channels, field, days=5.0):
    """Top-level messages without a thread, younger than `days`, that carry `field`."""
    cutoff = datetime.now(timezone.utc).timestamp() - days * 86400
    return sorted(
        (m["channel_id"], m["ts"])
        for m in workspace.ground_truth()
        if m["channel_id"] in channels
        and not m.get("thread_ts")
        and m.get(field)
        and float(m["ts"]) > cutoff
    )


def assert_children_equal_truth(pipeline, workspace, readable):
    assert loaded_reactions(pipeline) == truth_reactions(workspace, readable)
    assert loaded_files(pipeline) == truth_files(workspace, readable)
    for table in ("reactions", "files"):  # markers delete, they are never inserted
        flagged = query(pipeline, f"SELECT COUNT(*) FROM {DATASET}.{table} WHERE is_deleted")
        assert flagged == [(0,)]


def test_backfill_into_empty_then_merge_equals_ground_truth(emulator, tmp_path):
    workspace, server = emulator
    readable = readable_channel_ids(workspace)
    pipeline = make_test_pipeline(tmp_path)
    load_source(pipeline, server, start_date=backfill_date(), append_into_empty=True)
    reactions, files = truth_reactions(workspace, readable), truth_files(workspace, readable)
    assert len(reactions) > 100 and len(files) > 10
    assert_children_equal_truth(pipeline, workspace, readable)
    # appended: no marker rows were written at all
    counts = pipeline.last_trace.last_normalize_info.row_counts
    assert counts["reactions"] == len(reactions) and counts["files"] == len(files)
    posted = query(
        pipeline,
        f"SELECT COUNT(*) FROM {DATASET}.reactions r JOIN {DATASET}.messages m"
        " USING (channel_id, ts) WHERE r.posted_at = m.posted_at",
    )
    assert posted == [(len(reactions),)]

    load_source(pipeline, server, start_date=backfill_date())  # the same window, merged
    assert_children_equal_truth(pipeline, workspace, readable)


def recent_children_workspace() -> Workspace:
    """A SMALL_SPEC workspace (the first fitting seed from SMALL_SPEC's) that holds, inside the
    daily run's window, two plain messages with reactions and one with files: generated data
    is dated from now, so a fixed seed alone may leave none there."""
    for seed in range(SMALL_SPEC["seed"], SMALL_SPEC["seed"] + 50):
        workspace = Workspace(WorkspaceSpec(**dict(SMALL_SPEC, seed=seed)))
        readable = readable_channel_ids(workspace)
        if len(recent_plain(workspace, readable, "reactions")) >= 2 and recent_plain(
            workspace, readable, "files"
        ):
            return workspace
    raise AssertionError("no seed gives recent messages with reactions and files")


def test_lost_reactions_and_deleted_messages_take_their_rows(start_emulator, tmp_path):
    server = start_emulator(recent_children_workspace())
    workspace = server.workspace
    readable = readable_channel_ids(workspace)
    channel = sorted(readable)[0]
    thread = thread_with_age(workspace, channel, 2)
    reply = next(
        m["ts"]
        for m in workspace.ground_truth(channel)
        if m.get("thread_ts") == thread and m["ts"] != thread
    )
    workspace.add_reaction(channel, reply, "eyes", workspace.users()[0]["id"])
    pipeline = make_test_pipeline(tmp_path)
    load_daily(pipeline, server, start_date=backfill_date(), append_into_empty=True)
    assert_children_equal_truth(pipeline, workspace, readable)

    with_reactions = recent_plain(workspace, readable, "reactions")
    with_files = recent_plain(workspace, readable, "files")
    truth = {(m["channel_id"], m["ts"]): m for m in workspace.ground_truth()}
    bare_ch, bare_ts = with_reactions[0]
    # a message that keeps a reaction after one user's is removed: two (reaction, user) pairs;
    # which recent messages have them depends on the hour the workspace is generated at
    less_ch, less_ts = next(
        (k for k in with_reactions[1:] if sum(len(r["users"]) for r in truth[k]["reactions"]) > 1),
        (None, None),
    )
    assert less_ch, "no recent message with two reactions or two users of one"
    gone_ch, gone_ts = with_files[0]
    for reaction in truth[(bare_ch, bare_ts)]["reactions"]:  # every reaction removed
        for user in reaction["users"]:
            workspace.remove_reaction(bare_ch, bare_ts, reaction["name"], user)
    first = truth[(less_ch, less_ts)]["reactions"][0]  # one user's reaction removed
    workspace.remove_reaction(less_ch, less_ts, first["name"], first["users"][0])
    workspace.delete_message(gone_ch, gone_ts)  # a message with a file
    workspace.delete_message(channel, reply)  # a reply with a reaction

    load_daily(pipeline, server)
    assert_children_equal_truth(pipeline, workspace, readable)
    loaded = loaded_reactions(pipeline)
    assert not {r for r in loaded if r[:2] in {(bare_ch, bare_ts), (channel, reply)}}
    assert (less_ch, less_ts, first["name"], first["users"][0]) not in loaded
    assert {r for r in loaded if r[:2] == (less_ch, less_ts)}  # its other reactions stay
    assert not {f for f in loaded_files(pipeline) if f[:2] == (gone_ch, gone_ts)}
    assert (gone_ch, gone_ts) not in truth_messages(workspace, readable)


def test_child_tables_cost_no_call_and_can_be_switched_off(emulator, tmp_path):
    workspace, server = emulator
    readable = readable_channel_ids(workspace)
    runs = {}
    for on in (False, True):
        pipeline = make_test_pipeline(tmp_path / str(on), name=f"slack_{on}")
        _, backfill = load_daily(pipeline, server, start_date=backfill_date(), child_tables=on)
        workspace.post_message(sorted(readable)[0], text=f"a new message ({on})")
        _, daily = load_daily(pipeline, server, child_tables=on)
        runs[on] = (backfill, daily, pipeline)
    tables = {r[0] for r in query(runs[False][2], "SELECT table_name FROM duckdb_tables()")}
    assert not {"reactions", "files"} & tables
    assert loaded_reactions(runs[True][2]) == truth_reactions(workspace, readable)
    parents = [p for p in workspace.thread_parents() if p[0] in readable]
    expected = {
        "users.list": 1,
        "conversations.list": 1,
        "conversations.history": len(readable),  # one page per channel
        "conversations.replies": len(parents),  # each thread once
    }
    assert runs[False][0] == runs[True][0] == expected
    quiet = {**expected, "conversations.replies": 0} if parents else expected
    assert runs[False][1] == runs[True][1] == {k: v for k, v in quiet.items() if v}
    assert LOOKBACK_DAYS  # the daily runs above read with the tests' lookback


def test_an_export_fills_the_same_child_tables(emulator, tmp_path):
    workspace, _ = emulator
    path = write_export(workspace, tmp_path / "export.zip").path
    pipeline = make_test_pipeline(tmp_path)

    def export(append_into_empty):
        return import_export_source(str(path), append_into_empty=append_into_empty)

    load_messages(pipeline, export, append_into_empty=True)
    channels = {c["id"] for c in workspace.channels()}
    exported = {
        r[0] for r in query(pipeline, f"SELECT DISTINCT channel_id FROM {DATASET}.messages")
    }
    assert exported <= channels
    assert_children_equal_truth(pipeline, workspace, exported)
    load_messages(pipeline, export, append_into_empty=True)  # merged the second time
    assert_children_equal_truth(pipeline, workspace, exported)


def test_a_batch_of_new_channels_appends_and_a_batch_of_loaded_ones_merges(emulator, tmp_path):
    """`append_into_empty` is decided per batch of channels: the flow's second batch of a first
    backfill appends too (no marker rows), a batch with a channel already loaded merges, and a
    new channel after a merge appends again; the tables stay exactly the workspace's."""
    workspace, server = emulator
    readable = sorted(readable_channel_ids(workspace))
    first, second, third = readable[:1], readable[1:2], readable[2:]
    assert third
    pipeline = make_test_pipeline(tmp_path)

    def batch(channel_ids):
        def source(append_into_empty):
            return slack_source(
                access_token=TOKEN,
                api_base_url=server.base_url,
                rate_limit_profile="off",
                channels=channel_ids,
                start_date=backfill_date(),
                append_into_empty=append_into_empty,
            )

        load_messages(pipeline, source, append_into_empty=True, channel_ids=channel_ids)
        counts = pipeline.last_trace.last_normalize_info.row_counts
        return pipeline.default_schema.get_table("messages")["write_disposition"], counts

    def markers_written(channel_ids, counts):
        return counts["reactions"] - len(truth_reactions(workspace, set(channel_ids)))

    assert batch(first)[0] == "append"
    disposition, counts = batch(second)  # a first backfill's second batch: appended
    assert (disposition, markers_written(second, counts)) == ("append", 0)
    disposition, counts = batch(first + second)  # loaded before: merged, with markers
    assert disposition == "merge" and markers_written(first + second, counts) > 0
    warnings = RecordedWarnings()
    logging.getLogger("dlt").addHandler(warnings)
    try:
        disposition, counts = batch(third)  # a new channel after a merge
    finally:
        logging.getLogger("dlt").removeHandler(warnings)
    assert (disposition, markers_written(third, counts)) == ("append", 0)
    assert not [m for m in warnings.messages if "hard_delete" in m]
    assert_children_equal_truth(pipeline, workspace, set(readable))
    assert loaded_messages(pipeline) == truth_messages(workspace, set(readable))
    batch(readable)  # and a daily merge of all of them changes nothing
    assert_children_equal_truth(pipeline, workspace, set(readable))
    assert loaded_messages(pipeline) == truth_messages(workspace, set(readable))
