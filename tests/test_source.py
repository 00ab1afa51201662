"""The dlt source against the emulated workspace: complete, exact, no duplicates, clear errors."""

import logging
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from slack_source import SlackAuthError, SlackConfigError, SlackScopeError, slack_source
from slack_source.import_export import import_export_source
from tests.helpers import (
    DATASET,
    TOKEN,
    load_source,
    loaded_messages,
    make_test_pipeline,
    query,
    readable_channel_ids,
    truth_messages,
)

BACKFILL = datetime.now(timezone.utc) - timedelta(days=40)


def backfill(pipeline, server, **kwargs):
    return load_source(pipeline, server, start_date=BACKFILL, **kwargs)[0]


def test_backfill_loads_every_message_once_with_exact_text(emulator, tmp_path):
    workspace, server = emulator
    pipeline = make_test_pipeline(tmp_path)
    stats = backfill(pipeline, server)

    truth = truth_messages(workspace, readable_channel_ids(workspace))
    loaded = loaded_messages(pipeline)
    assert len(truth) > 500
    assert set(loaded) == set(truth)
    assert loaded == truth
    total, distinct = query(
        pipeline, f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages"
    )[0]
    assert total == distinct == len(truth)
    replies = [k for k, v in truth.items() if v["thread_ts"] and v["thread_ts"] != k[1]]
    assert replies, "the workspace must contain thread replies"
    assert set(stats.skipped_channels.values()) == {"not_in_channel"}


def test_posted_at_is_exactly_ts_and_json_columns_are_not_exploded(emulator, tmp_path):
    _, server = emulator
    pipeline = make_test_pipeline(tmp_path)
    backfill(pipeline, server)
    mismatches = query(
        pipeline,
        f"""SELECT COUNT(*) FROM {DATASET}.messages WHERE
            epoch_us(posted_at) != CAST(replace(ts, '.', '') AS BIGINT)""",
    )[0][0]
    assert mismatches == 0
    tables = {r[0] for r in query(pipeline, "SELECT table_name FROM information_schema.tables")}
    assert not {t for t in tables if t.startswith("messages__")}, "nested fields stay JSON"
    json_columns = {
        r[0]
        for r in query(
            pipeline,
            """SELECT column_name FROM information_schema.columns
               WHERE table_name = 'messages' AND data_type = 'JSON'""",
        )
    }
    assert {"blocks", "reactions", "edited", "files", "attachments"} <= json_columns
    with_blocks = query(
        pipeline, f"SELECT COUNT(*) FROM {DATASET}.messages WHERE blocks IS NOT NULL"
    )[0][0]
    assert with_blocks > 0


def test_reactions_match_ground_truth(emulator, tmp_path):
    workspace, server = emulator
    pipeline = make_test_pipeline(tmp_path)
    backfill(pipeline, server)
    readable = readable_channel_ids(workspace)
    expected = sorted(
        (m["channel_id"], m["ts"], r["name"], r["count"])
        for m in workspace.ground_truth()
        if m["channel_id"] in readable
        for r in m.get("reactions", [])
    )
    assert expected, "the workspace must contain reactions"
    loaded = sorted(
        query(
            pipeline,
            f"""SELECT channel_id, ts, r.name, r.count FROM (
                  SELECT channel_id, ts, unnest(from_json(reactions,
                         '[{{"name": "VARCHAR", "count": "BIGINT"}}]')) AS r
                  FROM {DATASET}.messages WHERE reactions IS NOT NULL)""",
        )
    )
    assert loaded == expected


def test_backfill_appended_into_empty_table_then_merged_equals_ground_truth(emulator, tmp_path):
    """`append_into_empty`: the first load appends (no merge), the next one merges as usual;
    after both every message is there once, exactly as Slack has it."""
    workspace, server = emulator
    pipeline = make_test_pipeline(tmp_path)
    warnings = RecordedWarnings()
    logging.getLogger("dlt").addHandler(warnings)
    try:
        backfill(pipeline, server, append_into_empty=True)
    finally:
        logging.getLogger("dlt").removeHandler(warnings)
    assert not [m for m in warnings.messages if "hard_delete" in m]  # no hint an append ignores
    schema = pipeline.default_schema.get_table("messages")
    assert schema["write_disposition"] == "append"
    channel = sorted(readable_channel_ids(workspace))[0]
    gone = next(ts for (ch, ts), m in loaded_messages(pipeline).items() if ch == channel)
    workspace.delete_message(channel, gone)
    backfill(pipeline, server)  # a merge: deletion rows remove their key again
    assert (channel, gone) not in loaded_messages(pipeline)
    truth = truth_messages(workspace, readable_channel_ids(workspace))
    assert loaded_messages(pipeline) == truth
    total, distinct = query(
        pipeline, f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages"
    )[0]
    assert total == distinct == len(truth)


class RecordedWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_second_identical_run_adds_no_rows_and_fetches_no_threads(emulator, tmp_path):
    _, server = emulator
    pipeline = make_test_pipeline(tmp_path)
    backfill(pipeline, server)
    before = query(pipeline, f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0]
    reactions_sql = f"SELECT SUM(json_array_length(reactions)) FROM {DATASET}.messages"
    reactions_before = query(pipeline, reactions_sql)[0][0]
    server.reset_stats()
    stats = backfill(pipeline, server)
    assert query(pipeline, f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0] == before
    assert query(pipeline, reactions_sql)[0][0] == reactions_before > 0
    assert server.request_counts().get("conversations.replies", 0) == 0
    assert stats.threads_refreshed == 0


def test_users_and_channels_one_row_per_id(emulator, tmp_path):
    workspace, server = emulator
    pipeline = make_test_pipeline(tmp_path)
    backfill(pipeline, server)
    backfill(pipeline, server)
    users = query(pipeline, f"SELECT id FROM {DATASET}.users")
    assert sorted(r[0] for r in users) == sorted(u["id"] for u in workspace.users())
    channels = query(pipeline, f"SELECT id, name, is_private, is_archived FROM {DATASET}.channels")
    public = [c for c in workspace.channels() if not c.get("is_private")]
    assert sorted(r[0] for r in channels) == sorted(c["id"] for c in public)
    assert any(r[3] for r in channels), "an archived channel is listed"


def test_channel_selection_by_name_and_id(emulator, tmp_path):
    workspace, server = emulator
    readable = [c for c in workspace.channels() if c.get("is_member") and not c["is_private"]]
    by_name, by_id = readable[0], readable[1]
    pipeline = make_test_pipeline(tmp_path)
    backfill(pipeline, server, channels=[f"#{by_name['name']}", by_id["id"]])
    loaded_channels = {r[0] for r in query(pipeline, f"SELECT channel_id FROM {DATASET}.messages")}
    assert loaded_channels == {by_name["id"], by_id["id"]}


def test_unknown_channel_names_are_listed_in_one_error(emulator, tmp_path):
    _, server = emulator
    with pytest.raises(Exception) as raised:
        backfill(make_test_pipeline(tmp_path), server, channels=["general", "nope-1", "nope-2"])
    text = str(raised.value)
    assert "Unknown Slack channel(s): nope-1, nope-2" in text
    assert "general" not in text.split("Unknown Slack channel(s):")[1].split(".")[0]


def test_private_channels_only_with_flag(emulator, tmp_path):
    workspace, server = emulator
    private = {c["id"] for c in workspace.channels() if c["is_private"] and c.get("is_member")}
    assert private
    pipeline = make_test_pipeline(tmp_path)
    backfill(pipeline, server, include_private=True)
    loaded_channels = {r[0] for r in query(pipeline, f"SELECT channel_id FROM {DATASET}.messages")}
    assert private <= loaded_channels


def test_not_in_channel_is_skipped_or_joined(emulator, tmp_path):
    workspace, server = emulator
    outside = [c for c in workspace.channels() if not c.get("is_member")]
    assert outside, "the workspace has a public channel the bot is not in"
    members = [c for c in workspace.channels() if c.get("is_member") and not c["is_private"]]
    server.reset_stats()
    stats = backfill(make_test_pipeline(tmp_path, "skip"), server)
    assert stats.skipped_channels == {outside[0]["name"]: "not_in_channel"}
    # conversations.list said so: no history call that could only answer not_in_channel
    assert server.request_counts()["conversations.history"] == len(members)

    # a channel list without membership (given by the caller): learnt from the history call
    unknown = [{k: v for k, v in outside[0].items() if k != "is_member"}]
    server.reset_stats()
    stats = backfill(make_test_pipeline(tmp_path, "ask"), server, channel_list=unknown)
    assert stats.skipped_channels == {outside[0]["name"]: "not_in_channel"}
    assert server.request_counts()["conversations.history"] == 1

    stats = backfill(make_test_pipeline(tmp_path, "join"), server, join_public_channels=True)
    assert stats.skipped_channels == {}
    assert stats.joined_channels == [outside[0]["name"]]
    assert server.request_counts().get("conversations.join") == 1


def test_invalid_token_fails_fast_without_leaking_it(emulator, tmp_path):
    _, server = emulator
    wrong = "xoxb-this-token-is-wrong"
    with pytest.raises(Exception) as raised:
        pipeline = make_test_pipeline(tmp_path)
        pipeline.run(
            slack_source(access_token=wrong, api_base_url=server.base_url).with_resources("users")
        )
    chain = [raised.value]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    auth = [e for e in chain if isinstance(e, SlackAuthError)]
    assert auth and auth[0].error == "invalid_auth"
    assert "users.list" in str(auth[0])
    assert all(wrong not in str(e) for e in chain)
    assert server.request_counts().get("users.list") == 1, "no retries on invalid_auth"


def test_missing_scope_names_the_scope_to_add(tmp_path, start_emulator):
    server = start_emulator(scopes=("channels:read", "channels:history"))
    with pytest.raises(Exception) as raised:
        make_test_pipeline(tmp_path).run(
            slack_source(access_token=TOKEN, api_base_url=server.base_url).with_resources("users")
        )
    error = raised.value
    while not isinstance(error, SlackScopeError) and (error.__cause__ or error.__context__):
        error = error.__cause__ or error.__context__
    assert isinstance(error, SlackScopeError)
    assert "add the OAuth scope 'users:read'" in str(error)


@pytest.mark.parametrize("token", ["", "not-a-slack-token", "xoxb-has spaces"])
def test_missing_or_malformed_token_is_a_config_error(token):
    with pytest.raises(SlackConfigError) as raised:
        slack_source(access_token=token, api_base_url="http://127.0.0.1:9/api/")
    assert "token" in str(raised.value).lower()
    if token:
        assert token not in str(raised.value)


@pytest.mark.parametrize(
    "lookback", [{"lookback_days": -1}, {"max_lookback_days": "soon"}], ids=["negative", "text"]
)
def test_a_lookback_that_would_skip_messages_is_a_config_error(lookback, tmp_path):
    """Below 0 the next run would start after the newest message loaded: what was posted in
    between would never be read. Both sources refuse it before anything is read."""
    for make in (
        lambda: slack_source(
            access_token=TOKEN, api_base_url="http://127.0.0.1:9/api/", **lookback
        ),
        lambda: import_export_source(
            str(tmp_path / "never-opened.zip"), layout=object(), **lookback
        ),
    ):
        with pytest.raises(SlackConfigError, match="a number of days, 0 or more"):
            make()


def test_history_pages_are_joined_into_items_unless_they_come_slowly():
    from slack_source import batched_pages

    pages = [[{"ts": f"{p}.{i}"} for i in range(3)] for p in range(5)]
    joined = list(batched_pages(iter(pages), min_rows=5, max_wait_s=60))
    assert [sum(map(len, group)) for group in joined] == [6, 6, 3]
    assert [r["ts"] for g in joined for p in g for r in p] == [r["ts"] for p in pages for r in p]
    # pages spaced out by rate limits go on one by one (their replies are fetched meanwhile)
    assert [len(g) for g in batched_pages(iter(pages), min_rows=5, max_wait_s=0)] == [1] * 5
    # Arrow pages are counted by their rows
    tables = [pa.table({"ts": [r["ts"] for r in p]}) for p in pages]
    groups = list(batched_pages(iter(tables), min_rows=7, rows_of=lambda t: t.num_rows))
    assert [[t.num_rows for t in g] for g in groups] == [[3, 3, 3], [3, 3]]


def test_thread_parents_are_read_from_arrow_pages_and_unjoinable_pages_stay_whole():
    from slack_source.arrow_pages import concat_pages, rows_with_replies

    cols = ("ts", "reply_count")
    page = pa.table({"ts": ["1.1", "1.2", "1.3"], "reply_count": [0, 3, None], "x": [1, 2, 3]})
    assert rows_with_replies(page, cols) == [{"ts": "1.2", "reply_count": 3}]
    # a page whose counts are JSON text (mixed types) is not filtered: every row is checked
    mixed = pa.table({"ts": ["2.1", "2.2"], "reply_count": ["0", '"2"']})
    assert [r["ts"] for r in rows_with_replies(mixed, cols)] == ["2.1", "2.2"]
    # pages that cannot be joined stay a list, and are read and joined again as a list
    other = pa.table({"ts": ["3.1"], "x": ["text"]})
    unjoined = concat_pages([page, other])
    assert isinstance(unjoined, list) and [t.num_rows for t in unjoined] == [3, 1]
    # (a page without counts is not filtered either: `threads_to_refresh` checks each row)
    assert [r["ts"] for r in rows_with_replies(unjoined, cols)] == ["1.2", "3.1"]
    assert [t.num_rows for t in concat_pages([unjoined, mixed])] == [3, 1, 2]


def test_slack_errors_survive_pickling_with_their_message():
    """Prefect pickles a failed run's exception; a copy must be the same error, hint included."""
    import pickle

    from slack_source import SlackApiError, SlackChannelError, SlackTransientError

    errors = [
        SlackAuthError("auth.test", "invalid_auth").naming("SLACK_PIPELINE__WORKSPACES__A__X"),
        SlackScopeError("users.list", "missing_scope", {"needed": "users:read", "provided": ""}),
        SlackChannelError("conversations.history", "not_in_channel"),
        SlackApiError("users.list", "fatal_error"),
        SlackTransientError("conversations.replies", "HTTP 429 ratelimited", None, 3.0),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    assert "check SLACK_PIPELINE__WORKSPACES__A__X" in str(errors[0])
    assert pickle.loads(pickle.dumps(errors[-1])).retry_after == 3.0
