"""BigQuery faults: a proxy (tests/bigquery_faults.py) between dlt and the BigQuery emulator
answers job inserts, job polls, queries and uploads with 5xx, 403/429 `rateLimitExceeded` or a
dropped connection. A backfill and a daily run are exact after google-cloud-bigquery's retries;
a fault that outlives them fails the load with one line, and the next run is exact again (no
duplicate row, no lost state)."""

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List

import pytest

from orchestration.cli import describe_failure
from orchestration.loading import load_messages, make_pipeline
from orchestration.run_settings import load_run_settings
from slack_source import slack_source
from tests.bigquery_emulator import BigQueryDataset
from tests.bigquery_faults import QUERY, UPLOAD, Fault, FaultProxy
from tests.helpers import LOOKBACK_DAYS, readable_channel_ids, truth_messages

BACKFILL = datetime.now(timezone.utc) - timedelta(days=40)  # before the first message
COLUMNS = ("thread_ts", "text", "subtype", "reply_count", "latest_reply")


@pytest.fixture
def proxy(bigquery_env: BigQueryDataset, bigquery_emulator, monkeypatch):
    proxied = FaultProxy(bigquery_emulator.url)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxied.url)
    yield proxied
    proxied.stop()


def run(start_date: Any = None) -> Dict[str, Any]:
    """One load of users, channels and messages, as the flow's tasks load them (pending
    packages finished first, appended into an empty `messages` table)."""
    settings = load_run_settings()

    def source(append_into_empty: bool) -> Any:
        return slack_source(
            start_date=start_date, lookback_days=LOOKBACK_DAYS, append_into_empty=append_into_empty
        )

    return load_messages(make_pipeline(settings), source, settings.append_into_empty)


def bq_messages(bq: BigQueryDataset) -> Dict[tuple, Dict[str, Any]]:
    rows = bq.query(f"SELECT channel_id, ts, {', '.join(COLUMNS)} FROM {bq.table('messages')}")
    return {(r[0], r[1]): dict(zip(COLUMNS, r[2:], strict=True)) for r in rows}


def assert_exact(bq: BigQueryDataset, workspace) -> None:
    total, distinct = bq.query(
        f"SELECT COUNT(*), COUNT(DISTINCT CONCAT(channel_id, '/', ts)) FROM {bq.table('messages')}"
    )[0]
    assert total == distinct > 0, "a duplicate row"
    assert bq_messages(bq) == truth_messages(workspace, readable_channel_ids(workspace))
    users = bq.query(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {bq.table('users')}")[0]
    assert users == (len(workspace.users()),) * 2


def day_of_changes(workspace) -> None:
    channel = sorted(readable_channel_ids(workspace))[0]
    workspace.post_message(channel, text="posted between the runs")


# dlt's BigQuery traffic, seen through the proxy: a load job is inserted by its upload (the
# file and the job in one multipart POST), SQL runs through `jobs.query` (POST .../queries), and
# a job would be polled (GET .../jobs/<id>) when not done at insert, which this emulator never
# is (the proxy can fault polls; no test here reaches one).
FAULTS: Dict[str, Callable[[], List[Fault]]] = {
    "query": lambda: [
        Fault("POST", QUERY, "503"),
        Fault("POST", QUERY, "403"),
        Fault("POST", QUERY, "drop"),
    ],  # fmt: skip
    "upload": lambda: [
        Fault("POST", UPLOAD, "503"),
        Fault("POST", UPLOAD, "429"),
        Fault("POST", UPLOAD, "drop"),
    ],  # fmt: skip
    # BigQuery's 403 rateLimitExceeded on a load job insert: not in resumable-media's retryable
    # statuses, so it reaches dlt's loader as a failed job attempt
    "upload_403": lambda: [Fault("POST", UPLOAD, "403")],
    # the emulator created the messages load job, the client never heard: the retried upload
    # carries the same job id (dlt's, from the file name), so its rows are not loaded twice
    "upload_answer_lost": lambda: [
        Fault("POST", UPLOAD, "drop_after", contains=b'"tableId": "messages"')
    ],
}


@pytest.mark.parametrize("where", sorted(FAULTS))
def test_backfill_and_daily_run_are_exact_after_retries(where, proxy, bigquery_env, slack_env):
    workspace, _ = slack_env
    proxy.faults = FAULTS[where]()
    run(BACKFILL)
    assert all(f.injected == f.times for f in proxy.faults), proxy.faults
    assert_exact(bigquery_env, workspace)

    day_of_changes(workspace)
    proxy.faults = FAULTS[where]()
    run()
    assert all(f.injected == f.times for f in proxy.faults), proxy.faults
    assert_exact(bigquery_env, workspace)


def test_a_fault_that_outlives_the_retries_fails_in_one_line_then_the_next_run_is_exact(
    proxy, bigquery_env, slack_env, monkeypatch
):
    workspace, _ = slack_env
    monkeypatch.setenv("DESTINATION__BIGQUERY__RETRY_DEADLINE", "3")
    proxy.faults = [Fault("POST", UPLOAD, "503", times=10_000)]
    with pytest.raises(Exception) as raised:
        run(BACKFILL)
    line = describe_failure(raised.value)
    print(f"console: error: {line}")
    assert line == (
        "BigQuery failed after the retries: HTTP 503 on POST "
        f"/upload/bigquery/v2/projects/{bigquery_env.emulator.project}/jobs;"
        " the next run finishes the unfinished load"
    )
    proxy.faults = []
    monkeypatch.delenv("DESTINATION__BIGQUERY__RETRY_DEADLINE")
    result = run(BACKFILL)
    assert result["recovered_packages"], "the failed run's package is finished first"
    assert_exact(bigquery_env, workspace)
