"""Run settings from dlt config (`[slack_pipeline]` in .dlt/config.toml, or env), validated early.

`RunSettings` is a dlt configspec: dlt resolves each field from env (`SLACK_PIPELINE__<FIELD>`),
.dlt/config.toml or the default below, and coerces its type.

Everything a run could trip on later (destination name, dates, token shape, BigQuery
credentials) is checked here, before a request is sent or a row is written.
"""

import os
from datetime import date, datetime, timezone
from typing import Any, List, Optional, Union

import pendulum
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigValueCannotBeCoercedException
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

from slack_source import RotationCredentials, SlackConfigError, check_token
from slack_source.settings import DEFAULT_API_BASE_URL
from slack_source.token_rotation import check_rotation

DESTINATIONS = ("duckdb", "bigquery")
# dlt's staging destination for load files: only the filesystem (a GCS bucket for BigQuery).
STAGINGS = ("filesystem",)
DEFAULT_PIPELINE_NAME = "slack"
DEFAULT_DATASET_NAME = "slack_data"

DateLike = Union[str, date, datetime, None]


@configspec
class RunSettings(BaseConfiguration):
    """`[slack_pipeline]`: where and how a run loads."""

    destination: str = "duckdb"  # "duckdb" or "bigquery"
    dataset_name: str = DEFAULT_DATASET_NAME
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    pipelines_dir: Optional[str] = None  # dlt's working folder (default ~/.dlt/pipelines)
    # A dlt run (one Prefect task) loads at most this many channels, and starts no further
    # channel once it has read `messages_per_load` history messages: a small workspace or a
    # daily run is one load, a 1M backfill two (tooling/bench/RESULTS.md, "One load").
    channels_per_load: int = 100
    messages_per_load: int = 500_000
    staging: Optional[str] = None  # "filesystem": load files go through a bucket first
    # Several workspaces (orchestration/workspaces/): the names a fan-out loads; each has
    # its `[slack_pipeline.workspaces.<name>]`. `workspace` and `duckdb_file` are set per run.
    workspace_names: Optional[List[str]] = None
    workspace: Optional[str] = None
    duckdb_file: Optional[str] = None  # default: destination.duckdb.credentials
    # A first backfill into an empty `messages` table appends instead of merging (same rows,
    # no staging copy, so a shorter load; tooling/bench/RESULTS.md); false always merges.
    append_into_empty: bool = True
    # At most one progress line per stage this often, on long loads (0: none).
    progress_seconds: float = 60.0


@configspec
class SourceSettings(BaseConfiguration):
    """The `[sources.slack]` values a run reads around the source (the source itself gets them
    injected by dlt)."""

    access_token: Optional[TSecretStrValue] = None
    # Token rotation (orchestration/token_store.py): on when a refresh token is set
    refresh_token: Optional[TSecretStrValue] = None
    client_id: Optional[TSecretStrValue] = None
    client_secret: Optional[TSecretStrValue] = None
    api_base_url: str = DEFAULT_API_BASE_URL
    join_public_channels: bool = False
    conversation_types: Optional[List[str]] = None  # default public channels (+ include_private)
    user_groups: bool = False  # usergroups.list: needs usergroups:read (the pre-flight checks)
    rate_limit_profile: str = "tiers"
    rate_limit_minute_seconds: float = 60.0  # Slack's minute; shorter only on the emulator


@configspec
class BigQueryCredentials(BaseConfiguration):
    """`[destination.bigquery.credentials]`: the service account's fields, when set."""

    project_id: Optional[str] = None
    private_key: Optional[TSecretStrValue] = None
    client_email: Optional[str] = None


@configspec
class BigQuerySettings(BaseConfiguration):
    """`[destination.bigquery]`: what `check` names besides the credentials."""

    location: Optional[str] = None


@configspec
class FilesystemSettings(BaseConfiguration):
    """`[destination.filesystem]`: the bucket of `staging = "filesystem"`."""

    bucket_url: Optional[str] = None


@configspec
class DuckDbSettings(BaseConfiguration):
    """`[destination.duckdb]`: `credentials` is the file (a path from env or secrets.toml) or
    a table; config.toml holds only a table of DuckDB options (see `loading.duckdb_file`).
    Not typed secret: dlt would refuse config.toml's table of options."""

    credentials: Optional[Any] = None


def source_settings() -> SourceSettings:
    return resolve_configuration(SourceSettings(), sections=("sources", "slack"))


def bigquery_credentials() -> BigQueryCredentials:
    return resolve_configuration(
        BigQueryCredentials(), sections=("destination", "bigquery", "credentials")
    )


def bigquery_settings() -> BigQuerySettings:
    return resolve_configuration(BigQuerySettings(), sections=("destination", "bigquery"))


def filesystem_settings() -> FilesystemSettings:
    return resolve_configuration(FilesystemSettings(), sections=("destination", "filesystem"))


def duckdb_settings() -> DuckDbSettings:
    return resolve_configuration(DuckDbSettings(), sections=("destination", "duckdb"))


def load_run_settings() -> RunSettings:
    """Resolve `[slack_pipeline]` and fail with one line on a bad value."""
    try:
        settings = resolve_configuration(RunSettings(), sections=("slack_pipeline",))
    except ConfigValueCannotBeCoercedException as error:
        raise SlackConfigError(
            f"Bad setting slack_pipeline.{error.field_name}: cannot read {error.field_value!r}"
            f" as {getattr(error.hint, '__name__', error.hint)}"
        ) from None
    settings.destination = settings.destination.strip().lower()
    if settings.destination not in DESTINATIONS:
        raise SlackConfigError(
            f"Unknown destination '{settings.destination}': set SLACK_PIPELINE__DESTINATION to"
            f" one of {', '.join(DESTINATIONS)}"
        )
    settings.staging = (settings.staging or "").strip().lower() or None
    if settings.staging is not None and settings.staging not in STAGINGS:
        raise SlackConfigError(
            f"Unknown staging '{settings.staging}': set SLACK_PIPELINE__STAGING to "
            f"{' or '.join(STAGINGS)}, or leave it unset to load without a bucket"
        )
    return settings


def parse_date(value: DateLike, name: str) -> Optional[datetime]:
    """`YYYY-MM-DD`, an ISO timestamp, a date or a datetime -> aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    try:
        parsed = pendulum.parse(str(value), tz="UTC")
    except (ValueError, pendulum.parsing.exceptions.ParserError):
        raise SlackConfigError(
            f"Cannot parse {name} '{value}': use YYYY-MM-DD or an ISO 8601 timestamp"
        ) from None
    if not isinstance(parsed, datetime):
        raise SlackConfigError(f"Cannot parse {name} '{value}': use YYYY-MM-DD")
    return datetime.fromtimestamp(parsed.timestamp(), timezone.utc)


def validate_dates(
    start_date: DateLike, end_date: DateLike
) -> "tuple[Optional[datetime], Optional[datetime]]":
    start = parse_date(start_date, "start_date")
    end = parse_date(end_date, "end_date")
    now = datetime.now(timezone.utc)
    if start is not None and start > now:
        raise SlackConfigError(f"start_date {start.date()} is in the future")
    if start is not None and end is not None and end <= start:
        raise SlackConfigError(f"end_date {end.date()} is not after start_date {start.date()}")
    return start, end


def source_rotation_credentials(source: SourceSettings) -> Optional[RotationCredentials]:
    """`sources.slack.*`'s token rotation settings; None without a refresh token (off)."""
    if not source.refresh_token:
        return None
    return RotationCredentials(
        client_id=str(source.client_id or ""),
        client_secret=str(source.client_secret or ""),
        refresh_token=str(source.refresh_token),
        access_token=str(source.access_token or "") or None,
    )


def validate_token() -> None:
    """The token must be present and token-shaped; its value is never printed. With token
    rotation the access token is optional (the stored pair's, or refreshed from the seed)
    and the refresh token, client id and secret are checked instead."""
    source = source_settings()
    rotation = source_rotation_credentials(source)
    if rotation is None or source.access_token:
        check_token(source.access_token)
    if rotation is not None:
        check_rotation(rotation)


BIGQUERY_KEYS = ("project_id", "private_key", "client_email")


def validate_destination_credentials(settings: RunSettings) -> None:
    """BigQuery needs a service account, a key file or Application Default Credentials;
    filesystem staging needs its bucket."""
    if settings.staging == "filesystem" and not filesystem_settings().bucket_url:
        raise SlackConfigError(
            'staging = "filesystem" needs destination.filesystem.bucket_url (e.g.'
            ' "gs://my-bucket/slack") in .dlt/config.toml or DESTINATION__FILESYSTEM__BUCKET_URL'
        )
    if settings.destination != "bigquery":
        return
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        path = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]
        if not os.path.isfile(path):
            raise SlackConfigError(
                f"GOOGLE_APPLICATION_CREDENTIALS points to a missing file: {path}"
            )
        return
    credentials = bigquery_credentials()
    missing: List[str] = [key for key in BIGQUERY_KEYS if not getattr(credentials, key)]
    if missing and not _application_default_credentials_available():
        raise SlackConfigError(
            "BigQuery credentials missing: set "
            + ", ".join(f"destination.bigquery.credentials.{k}" for k in missing)
            + " in .dlt/secrets.toml (or GOOGLE_APPLICATION_CREDENTIALS, or run on GCP with"
            " Application Default Credentials)"
        )


def _application_default_credentials_available() -> bool:
    try:
        import google.auth

        google.auth.default()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no ADC here"
        return False
