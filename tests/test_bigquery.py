"""BigQuery layout and credentials, checked without Google: the CREATE TABLE statements dlt
would send are rendered from the normalized schema; nothing is loaded into BigQuery."""

from pathlib import Path
from typing import Dict, Tuple

import dlt
import pytest

import orchestration.run_settings as run_settings
from orchestration.bigquery_layout import apply_bigquery_layout
from orchestration.loading import load
from orchestration.run_settings import RunSettings, validate_destination_credentials
from slack_source import SlackConfigError, slack_source
from tests.helpers import TOKEN
from tooling.slack_emulator import EmulatorServer, Workspace

FAKE_KEY = "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n"


def _fake_bigquery_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID", "fake-project")
    monkeypatch.setenv(
        "DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL",
        "loader@fake-project.iam.gserviceaccount.com",
    )
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY", FAKE_KEY)


@pytest.fixture
def create_table_sql(
    emulator: Tuple[Workspace, EmulatorServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Dict[str, str]:
    """CREATE TABLE per data table, as dlt's BigQuery client renders it (extract + normalize
    only: the client is built with fake credentials and never connects)."""
    _, server = emulator
    _fake_bigquery_credentials(monkeypatch)
    source = slack_source(
        access_token=TOKEN, api_base_url=server.base_url, rate_limit_profile="off"
    )
    apply_bigquery_layout(source)
    pipeline = dlt.pipeline(
        pipeline_name="slack_bq_ddl",
        destination="bigquery",
        dataset_name="slack_data",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.extract(source)
    pipeline.normalize()
    client = pipeline.destination_client()
    schema = client.schema
    rendered = {
        table: client._get_table_update_sql(
            table, list(schema.get_table_columns(table).values()), False
        )[0]
        for table in ("messages", "users", "channels")
    }
    (load_id,) = pipeline.list_normalized_load_packages()
    jobs = pipeline.get_load_package_info(load_id).jobs["new_jobs"]
    rendered["messages_file_formats"] = " ".join(
        sorted(
            {j.job_file_info.file_format for j in jobs if j.job_file_info.table_name == "messages"}
        )
    )
    return rendered


def test_messages_partitioned_by_day_and_clustered_by_channel(
    create_table_sql: Dict[str, str],
) -> None:
    sql = create_table_sql["messages"]
    assert sql.startswith("CREATE TABLE `fake-project`.`slack_data`.`messages`")
    assert "`posted_at` TIMESTAMP" in sql
    assert "\nPARTITION BY DATE(`posted_at`)" in sql
    assert sql.rstrip().endswith("CLUSTER BY `channel_id`")


def test_messages_json_columns_load_as_json_lines(create_table_sql: Dict[str, str]) -> None:
    """BigQuery cannot load JSON columns from parquet: the Arrow pages reach it as rows."""
    sql = create_table_sql["messages"]
    for column in ("blocks", "reactions", "edited", "files"):
        assert f"`{column}` JSON" in sql
    assert create_table_sql["messages_file_formats"] == "jsonl"


@pytest.mark.parametrize("table", ["users", "channels"])
def test_users_and_channels_clustered_by_id(create_table_sql: Dict[str, str], table: str) -> None:
    sql = create_table_sql[table]
    assert "PARTITION BY" not in sql
    assert sql.rstrip().endswith("CLUSTER BY `id`")


def test_layout_only_on_bigquery(
    emulator: Tuple[Workspace, EmulatorServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`load()` on DuckDB leaves the source without BigQuery hints."""
    _, server = emulator
    source = slack_source(
        access_token=TOKEN, api_base_url=server.base_url, rate_limit_profile="off"
    ).with_resources("channels")
    pipeline = dlt.pipeline(
        pipeline_name="slack_duck",
        destination=dlt.destinations.duckdb(str(tmp_path / "slack.duckdb")),
        dataset_name="slack_data",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    load(pipeline, source)
    hints = source.resources["channels"].compute_table_schema()
    assert "x-bigquery-cluster-columns" not in hints

    apply_bigquery_layout(source)
    hints = source.resources["channels"].compute_table_schema()
    assert hints["x-bigquery-cluster-columns"] == ["id"]


def test_membership_tables_are_clustered_by_their_key(
    emulator: Tuple[Workspace, EmulatorServer],
) -> None:
    """What an analyst filters on: a channel's members, a group's members, a group by id."""
    _, server = emulator
    source = slack_source(
        access_token=TOKEN,
        api_base_url=server.base_url,
        rate_limit_profile="off",
        channel_members=True,
        user_groups=True,
    )
    apply_bigquery_layout(source)
    expected = {
        "channel_members": ["channel_id"],
        "user_group_members": ["usergroup_id"],
        "user_groups": ["id"],
    }
    for name, columns in expected.items():
        hints = source.resources[name].compute_table_schema()
        assert hints["x-bigquery-cluster-columns"] == columns, name
        assert "x-bigquery-partition" not in str(hints), name


def test_missing_bigquery_credentials_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_PIPELINE__DESTINATION", "bigquery")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setattr(run_settings, "_application_default_credentials_available", lambda: False)
    settings = run_settings.load_run_settings()
    assert settings.destination == "bigquery"
    with pytest.raises(SlackConfigError) as error:
        validate_destination_credentials(settings)
    message = str(error.value)
    for key in ("project_id", "private_key", "client_email"):
        assert f"destination.bigquery.credentials.{key}" in message


def test_only_the_missing_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_bigquery_credentials(monkeypatch)
    monkeypatch.delenv("DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setattr(run_settings, "_application_default_credentials_available", lambda: False)
    with pytest.raises(SlackConfigError) as error:
        validate_destination_credentials(RunSettings(destination="bigquery"))
    message = str(error.value)
    assert "destination.bigquery.credentials.private_key" in message
    assert "project_id" not in message and "client_email" not in message
    assert "not-a-key" not in message


def test_missing_key_file_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    with pytest.raises(SlackConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        validate_destination_credentials(RunSettings(destination="bigquery"))


def test_adc_or_complete_service_account_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setattr(run_settings, "_application_default_credentials_available", lambda: True)
    validate_destination_credentials(RunSettings(destination="bigquery"))
    monkeypatch.setattr(run_settings, "_application_default_credentials_available", lambda: False)
    _fake_bigquery_credentials(monkeypatch)
    validate_destination_credentials(RunSettings(destination="bigquery"))
