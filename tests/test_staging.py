"""Staging on DuckDB: the staging dataset is emptied after each successful load
(`[load] truncate_staging_dataset` in .dlt/config.toml).
The BigQuery side of the truncation is in tests/test_bigquery_e2e.py."""

import os
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import DATASET, query

STAGING = f"{DATASET}_staging"


@pytest.fixture
def flow(prefect_harness):
    from slack_pipeline_with_prefect import slack_pipeline

    return slack_pipeline


def staging_rows(path: str) -> dict:
    tables = [
        t[0]
        for t in query(
            path,
            "SELECT table_name FROM information_schema.tables"
            f" WHERE table_schema = '{STAGING}' AND table_name NOT LIKE '_dlt%'",
        )
    ]
    return {t: query(path, f'SELECT COUNT(*) FROM {STAGING}."{t}"')[0][0] for t in tables}


def backfill(flow) -> str:
    flow(start_date=(datetime.now(timezone.utc) - timedelta(days=40)).strftime("%Y-%m-%d"))
    return os.environ["DESTINATION__DUCKDB__CREDENTIALS"]


def test_staging_dataset_is_emptied_after_the_flow(flow, slack_env) -> None:
    path = backfill(flow)
    rows = staging_rows(path)
    assert {"messages", "users", "channels"} <= set(rows)
    assert rows == dict.fromkeys(rows, 0)
    assert query(path, f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0] > 0


def test_without_the_setting_the_last_load_lingers(flow, slack_env, monkeypatch) -> None:
    """Control: dlt's default keeps the rows, so the check above can fail."""
    monkeypatch.setenv("LOAD__TRUNCATE_STAGING_DATASET", "false")
    path = backfill(flow)
    rows = staging_rows(path)
    loaded = query(path, f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0]
    assert rows["messages"] == loaded > 0
    print(f"staging rows without truncate_staging_dataset: {rows}")
