"""A killed run's leftover package is finished by the next task, which then does its own work.

`pipeline.run` with pending packages loads those and silently drops the data it was given;
`orchestration.loading.load` finishes them first. The leftovers are made the way a kill leaves
them: a messages package extracted (killed while normalizing) or normalized (killed while
loading), never loaded.
"""

import os

import pytest

from orchestration.loading import make_pipeline
from orchestration.run_settings import load_run_settings
from slack_source import slack_source
from tests.helpers import (
    DATASET,
    backfill_start,
    loaded_messages,
    query,
    readable_channel_ids,
    task_runs_of,
    truth_messages,
)

START_DAY = backfill_start()


@pytest.fixture
def flow(prefect_harness):
    from slack_pipeline_with_prefect import slack_pipeline

    return slack_pipeline


def leave_a_package(stage: str) -> str:
    """Extract (and for `normalized`, normalize) the messages of a run that then died."""
    pipeline = make_pipeline(load_run_settings())
    pipeline.extract(slack_source().with_resources("messages"))
    if stage == "normalized":
        pipeline.normalize()
    pending = pipeline.list_extracted_load_packages() or pipeline.list_normalized_load_packages()
    assert pipeline.has_pending_data and len(pending) == 1
    return pending[0]


@pytest.mark.parametrize("stage", ["extracted", "normalized"])
def test_next_run_finishes_the_leftover_then_loads_its_own_data(flow, slack_env, stage):
    workspace, server = slack_env
    flow(start_date=START_DAY)
    channel = sorted(readable_channel_ids(workspace))[0]
    left_ts = workspace.post_message(channel, text="read by the run that was killed")
    package = leave_a_package(stage)
    newcomer = workspace.add_user("newcomer")
    after_ts = workspace.post_message(channel, text="posted after the kill")
    server.reset_stats()

    state = flow(return_state=True)

    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["recovered_packages"] == [package]
    runs = task_runs_of(state)
    assert runs and all(run.run_count == 1 for run in runs.values()), runs
    assert server.request_counts()["users.list"] == 1
    database = os.environ["DESTINATION__DUCKDB__CREDENTIALS"]
    users = {r[0] for r in query(database, f"SELECT id FROM {DATASET}.users")}
    assert newcomer in users and len(users) == len(workspace.users())
    assert summary["rows_loaded"]["users"] == len(workspace.users())
    loaded = loaded_messages(database)
    assert (channel, left_ts) in loaded and (channel, after_ts) in loaded
    assert loaded == truth_messages(workspace, readable_channel_ids(workspace))
    total, distinct = query(
        database, f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages"
    )[0]
    assert total == distinct
    assert not make_pipeline(load_run_settings()).has_pending_data
