"""Shared fixtures: an emulated Slack workspace on 127.0.0.1, pipelines on temporary DuckDB, and
the BigQuery emulator with a fresh dataset per test."""

import contextlib
import itertools
import os
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from tests.bigquery_emulator import BigQueryDataset, BigQueryEmulator
from tests.helpers import (
    DATASET,
    PROJECT_SETTINGS,
    StartEmulator,
    emulator_server,
    set_slack_env,
)
from tooling.slack_emulator import EmulatorServer, Workspace


@pytest.fixture(scope="session")
def prefect_harness():
    """One in-process Prefect test server for the whole session (it takes ~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def _isolated_dlt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's .dlt secrets or writes to ~/.dlt."""
    for key in list(os.environ):
        if key.startswith(PROJECT_SETTINGS):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "WARNING")


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators for this test: `start_emulator(served=None, config=None, **options)`
    takes `helpers.emulator_server`'s arguments and returns the running server; every server
    started is stopped when the test ends."""
    with contextlib.ExitStack() as started:
        yield lambda *args, **kwargs: started.enter_context(emulator_server(*args, **kwargs))


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> Tuple[Workspace, EmulatorServer]:
    """The small workspace (SMALL_SPEC) on an emulator that answers TOKEN."""
    server = start_emulator()
    return server.workspace, server


@pytest.fixture
def slack_env(
    emulator: Tuple[Workspace, EmulatorServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Tuple[Workspace, EmulatorServer]:
    """Point dlt config at the emulator and a fresh DuckDB file."""
    set_slack_env(monkeypatch, emulator[1], tmp_path)
    return emulator


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
