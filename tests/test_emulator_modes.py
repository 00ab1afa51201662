"""The pipeline in each emulator mode where Slack's docs are silent: the last page's
`response_metadata` (absent, `{}` or `{"next_cursor": ""}`) and whether every page of
`conversations.replies` repeats the thread's parent. A backfill loads exactly the ground truth
in each."""

from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import (
    DATASET,
    SMALL_SPEC,
    load_source,
    loaded_messages,
    make_test_pipeline,
    query,
    readable_channel_ids,
    truth_messages,
)

BACKFILL = datetime.now(timezone.utc) - timedelta(days=40)
MODES_SPEC = dict(SMALL_SPEC, messages=400, threads=20)
LONG_THREAD = 40  # replies added to one thread: 3 pages of 15


@pytest.mark.parametrize("repeat_parent", [True, False], ids=["repeat-parent", "parent-once"])
@pytest.mark.parametrize("last_page", ["absent", "empty", "present"])
def test_backfill_equals_ground_truth_in_every_mode(
    last_page, repeat_parent, tmp_path, start_emulator
):
    server = start_emulator(
        MODES_SPEC, last_page_metadata=last_page, replies_repeat_parent=repeat_parent
    )
    workspace = server.workspace
    readable = readable_channel_ids(workspace)
    cid, parent = next((c, ts) for c, ts in workspace.thread_parents() if c in readable)
    for n in range(LONG_THREAD):
        workspace.post_reply(cid, parent, text=f"late reply {n}")
    pipeline = make_test_pipeline(tmp_path)
    # 15 a page (the non-Marketplace page size), unpaced: history and replies take
    # several pages, the long thread at least three
    _, calls = load_source(
        pipeline,
        server,
        start_date=BACKFILL,
        rate_limit_profile="non_marketplace",
        rate_limit_minute_seconds=0,
    )
    threads = [p for p in workspace.thread_parents() if p[0] in readable]
    assert calls["conversations.replies"] >= len(threads) + 2
    assert loaded_messages(pipeline) == truth_messages(workspace, readable)
    messages = f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages"
    total, distinct = query(pipeline, messages)[0]
    assert total == distinct
    users = query(pipeline, f"SELECT id FROM {DATASET}.users")
    assert sorted(r[0] for r in users) == sorted(u["id"] for u in workspace.users())
