"""Shared fixtures: an emulated Slack workspace on 127.0.0.1, pipelines on temporary DuckDB, and
the BigQuery emulator with a fresh dataset per test."""

import itertools
import os
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple
from urllib.parse import parse_qs

import dlt
import duckdb
import pytest

from slack_source import RunStats, slack_source
from tests.bigquery_emulator import BigQueryDataset, BigQueryEmulator
from tooling.slack_emulator import EmulatorConfig, EmulatorServer, Workspace, WorkspaceSpec

TOKEN = "xoxb-emulator-token"
DATASET = "slack_data"

SMALL_SPEC = dict(
    seed=11,
    users=10,
    channels=5,
    private_channels=1,
    archived_channels=1,
    messages=800,
    threads=40,
    days=30,
    non_member_channels=1,
)


@pytest.fixture(scope="session")
def prefect_harness():
    """One in-process Prefect test server for the whole session (it takes ~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


# Environment variables of this project's settings (dlt reads `<SECTION>__<KEY>`).
PROJECT_SETTINGS = ("SOURCES__", "DESTINATION__", "SLACK_PIPELINE__")


@pytest.fixture(autouse=True)
def _isolated_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's .dlt secrets or writes to ~/.dlt."""
    for key in list(os.environ):
        if key.startswith(PROJECT_SETTINGS):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "WARNING")


def clean_environment(settings: Dict[str, str]) -> Dict[str, str]:
    """The environment of a command-line subprocess: this one's without any project setting,
    plus `settings`, so the command sees only what its test gives it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_SETTINGS)}
    environment.update(settings)
    return environment


def start_emulator(
    spec: Optional[Dict[str, Any]] = None, **config: Any
) -> Tuple[Workspace, EmulatorServer]:
    workspace = Workspace(WorkspaceSpec(**(spec or SMALL_SPEC)))
    server = EmulatorServer(workspace, EmulatorConfig(tokens=(TOKEN,), **config))
    server.__enter__()
    return workspace, server


@pytest.fixture
def emulator() -> Iterator[Tuple[Workspace, EmulatorServer]]:
    workspace, server = start_emulator()
    try:
        yield workspace, server
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def slack_env(
    emulator: Tuple[Workspace, EmulatorServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Tuple[Workspace, EmulatorServer]:
    """Point dlt config at the emulator and a fresh DuckDB file."""
    _, server = emulator
    monkeypatch.setenv("SOURCES__SLACK__ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__SLACK__API_BASE_URL", server.base_url)
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_PROFILE", "off")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "slack.duckdb"))
    monkeypatch.setenv("SLACK_PIPELINE__PIPELINES_DIR", str(tmp_path / "pipelines"))
    return emulator


def load_source(
    pipeline: dlt.Pipeline, server: EmulatorServer, **kwargs: Any
) -> Tuple[RunStats, Dict[str, int]]:
    """Build the `slack` source against the emulator (unpaced unless `rate_limit_profile` is
    given) and run it into `pipeline` as the flow does (parquet for DuckDB); return the run's
    stats and the emulator's request counts of this run alone."""
    stats = RunStats()
    server.reset_stats()
    kwargs.setdefault("rate_limit_profile", "off")
    source = slack_source(access_token=TOKEN, api_base_url=server.base_url, stats=stats, **kwargs)
    pipeline.run(source, loader_file_format="parquet").raise_on_failed_jobs()
    return stats, server.request_counts()


def make_test_pipeline(tmp_path: Path, name: str = "slack_test") -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(tmp_path / "slack.duckdb")),
        dataset_name=DATASET,
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def query(pipeline_or_path: Any, sql: str) -> list:
    path = (
        pipeline_or_path
        if isinstance(pipeline_or_path, (str, Path))
        else pipeline_or_path.destination_client().config.credentials.database
    )
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def loaded_messages(pipeline_or_path: Any) -> Dict[Tuple[str, str], Dict[str, Any]]:
    rows = query(
        pipeline_or_path,
        f"SELECT channel_id, ts, thread_ts, text, subtype, reply_count, latest_reply"
        f" FROM {DATASET}.messages",
    )
    return {
        (r[0], r[1]): {
            "thread_ts": r[2],
            "text": r[3],
            "subtype": r[4],
            "reply_count": r[5],
            "latest_reply": r[6],
        }
        for r in rows
    }


def truth_messages(workspace: Workspace, channel_ids: Optional[set] = None) -> Dict[tuple, dict]:
    truth = {}
    for m in workspace.ground_truth():
        if channel_ids is not None and m["channel_id"] not in channel_ids:
            continue
        truth[(m["channel_id"], m["ts"])] = {
            "thread_ts": m.get("thread_ts"),
            "text": m.get("text"),
            "subtype": m.get("subtype"),
            "reply_count": m.get("reply_count"),
            "latest_reply": m.get("latest_reply"),
        }
    return truth


def readable_channel_ids(workspace: Workspace, include_private: bool = False) -> set:
    """Channels the bot can read without joining."""
    return {
        c["id"]
        for c in workspace.channels()
        if c.get("is_member") and (include_private or not c.get("is_private"))
    }


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    """One BigQuery emulator for the session. Missing, it fails the tests that need it: a skip
    would let CI pass with BigQuery untested."""
    from tests.bigquery_emulator import EmulatorMissing, start_bigquery_emulator

    try:
        emulator = start_bigquery_emulator(tmp_path_factory.mktemp("bigquery_emulator"))
    except EmulatorMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    try:
        yield emulator
    finally:
        emulator.stop()


_DATASETS = itertools.count(1)


@pytest.fixture
def bigquery_env(
    slack_env: Tuple[Workspace, EmulatorServer],
    bigquery_emulator: BigQueryEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> BigQueryDataset:
    """`slack_env` with the flow configured for BigQuery as a user does it (destination, key
    file, project id), into a dataset of its own on the shared emulator."""
    from dlt.common.configuration.specs.gcp_credentials import GcpDefaultCredentials

    dataset = BigQueryDataset(bigquery_emulator, f"{DATASET}_{next(_DATASETS)}")
    for key, value in bigquery_emulator.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SLACK_PIPELINE__DESTINATION", "bigquery")
    monkeypatch.setenv("SLACK_PIPELINE__DATASET_NAME", dataset.name)
    # dlt remembers for 10 minutes that Application Default Credentials were not found (an
    # earlier test without them); this test has them.
    monkeypatch.setattr(GcpDefaultCredentials, "_LAST_FAILED_DEFAULT", 0.0)
    return dataset


class Outage:
    """ASGI wrapper around the emulator's Slack app: answers HTTP 503 to the first `times`
    requests of `method` whose query has every `match` argument, then lets requests through.

    FaultSpec draws are per request number, so a run that fails and is retried would see
    different faults; this outage is keyed on the request itself and ends deterministically.
    """

    def __init__(
        self, server: EmulatorServer, method: str, times: int, match: Dict[str, str]
    ) -> None:
        self.app = server.app.slack
        self.path = f"/api/{method}"
        self.left = times
        self.match = match
        self.failed = 0
        server.app.slack = self  # type: ignore[assignment]

    def _matches(self, scope: Dict[str, Any]) -> bool:
        if scope["path"] != self.path:
            return False
        args = parse_qs(scope.get("query_string", b"").decode())
        return all(args.get(key) == [value] for key, value in self.match.items())

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if self.left > 0 and self._matches(scope):
            self.left -= 1
            self.failed += 1
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)
