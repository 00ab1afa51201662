"""Staging on DuckDB and the GCS staging switch: the staging dataset is emptied after each
successful load (`[load] truncate_staging_dataset` in .dlt/config.toml), and
`[slack_pipeline] staging = "filesystem"` builds a pipeline that stages load files in a bucket.
The BigQuery side of the truncation is in tests/test_bigquery_e2e.py."""

import os
from datetime import datetime, timedelta, timezone

import pytest

from orchestration.loading import make_pipeline
from orchestration.run_settings import load_run_settings, validate_destination_credentials
from slack_source import SlackConfigError
from tests.helpers import DATASET, query

STAGING = f"{DATASET}_staging"


@pytest.fixture
def flow(prefect_harness, monkeypatch):
    """The flow with every load merged: a first backfill would append `messages` into the empty
    table without staging (`append_into_empty`); these tests are about what a merge leaves."""
    monkeypatch.setenv("SLACK_PIPELINE__APPEND_INTO_EMPTY", "false")
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


@pytest.fixture
def bigquery_with_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    """BigQuery with staging switched on by configuration alone (env here, config.toml alike)."""
    monkeypatch.setenv("SLACK_PIPELINE__DESTINATION", "bigquery")
    monkeypatch.setenv("SLACK_PIPELINE__STAGING", "filesystem")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", "gs://my-bucket/slack")
    for key, value in {
        "PROJECT_ID": "fake-project",
        "CLIENT_EMAIL": "loader@fake-project.iam.gserviceaccount.com",
        "PRIVATE_KEY": "not-a-key",
    }.items():
        monkeypatch.setenv(f"DESTINATION__BIGQUERY__CREDENTIALS__{key}", value)
        monkeypatch.setenv(f"DESTINATION__FILESYSTEM__CREDENTIALS__{key}", value)


def test_filesystem_staging_switch_builds_a_staged_pipeline(bigquery_with_bucket, tmp_path):
    settings = load_run_settings()
    assert settings.staging == "filesystem"
    settings.pipelines_dir = str(tmp_path / "pipelines")
    validate_destination_credentials(settings)
    pipeline = make_pipeline(settings)
    assert pipeline.destination.destination_name == "bigquery"
    assert pipeline.staging is not None and pipeline.staging.destination_name == "filesystem"
    # what the load step will use, resolved from config without contacting GCS
    config = pipeline.staging.configuration(None, accept_partial=True)
    assert (config.bucket_url, config.protocol) == ("gs://my-bucket/slack", "gs")
    assert config.credentials.project_id == "fake-project"


def test_no_staging_by_default(tmp_path) -> None:
    settings = load_run_settings()
    assert settings.staging is None
    settings.pipelines_dir = str(tmp_path / "pipelines")
    assert make_pipeline(settings).staging is None


def test_staging_without_a_bucket_fails_before_any_work(bigquery_with_bucket, monkeypatch):
    monkeypatch.delenv("DESTINATION__FILESYSTEM__BUCKET_URL")
    with pytest.raises(SlackConfigError, match="destination.filesystem.bucket_url"):
        validate_destination_credentials(load_run_settings())


def test_unknown_staging_is_rejected(monkeypatch) -> None:
    monkeypatch.setenv("SLACK_PIPELINE__STAGING", "s3")
    with pytest.raises(SlackConfigError, match="Unknown staging 's3'"):
        load_run_settings()
