"""The BigQuery emulator for tests: `bqemulator` from its own venv, on a free loopback port.

`./run.sh test` installs it into `.venv-bqemu` (pinned in `requirements-bqemu.txt`): it needs a
DuckDB and sqlglot that dlt's environment cannot share. The process gets its own HOME (where
DuckDB looks for the spatial extension, linked here from the wheel, so nothing is downloaded)
and TMPDIR (its uploads). Clients reach it the way a user's code reaches Google: through
`BIGQUERY_EMULATOR_HOST` and an `authorized_user` key file in GOOGLE_APPLICATION_CREDENTIALS.
"""

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import requests

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-bqemu"
EXECUTABLE = VENV / "bin" / "bqemulator"
PROJECT = "test-project"
DUCKDB_VERSION = "v1.5.5"
START_TIMEOUT_S = 60.0


class EmulatorMissing(RuntimeError):
    """`.venv-bqemu` is not set up: `./run.sh test` creates it."""


@dataclass
class BigQueryEmulator:
    url: str
    project: str
    credentials_file: Path
    process: subprocess.Popen
    log_file: Path

    def env(self) -> Dict[str, str]:
        """What a user's environment holds for BigQuery (here pointed at the emulator)."""
        return {
            "BIGQUERY_EMULATOR_HOST": self.url,
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.credentials_file),
            "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID": self.project,
            # The emulator cannot read gzipped load files (dlt writes its state table gzipped).
            "NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION": "true",
        }

    def client(self):  # -> google.cloud.bigquery.Client
        from google.cloud import bigquery
        from google.oauth2.credentials import Credentials

        return bigquery.Client(
            project=self.project,
            credentials=Credentials(token="emulator"),
            client_options={"api_endpoint": self.url},
        )

    def job_queries(self) -> List[str]:
        """Every query job's SQL the emulator ran, DDL included (it keeps no table layout)."""
        jobs = self.client().list_jobs(all_users=True)
        return [job.query for job in jobs if getattr(job, "query", None)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class BigQueryDataset:
    """One dataset on the emulator, read back with Google's own client."""

    emulator: BigQueryEmulator
    name: str

    @property
    def staging(self) -> str:
        return f"{self.name}_staging"

    def query(self, sql: str) -> List[Tuple[Any, ...]]:
        return [tuple(row.values()) for row in self.emulator.client().query(sql).result()]

    def table(self, table: str, dataset: Optional[str] = None) -> str:
        return f"`{self.emulator.project}.{dataset or self.name}.{table}`"

    def tables(self, dataset: Optional[str] = None) -> List[str]:
        return sorted(t.table_id for t in self.emulator.client().list_tables(dataset or self.name))

    def columns(self, table: str, dataset: Optional[str] = None) -> List[str]:
        ref = f"{self.emulator.project}.{dataset or self.name}.{table}"
        return [field.name for field in self.emulator.client().get_table(ref).schema]

    def row_count(self, table: str, dataset: Optional[str] = None) -> int:
        """COUNT(*): the emulator's table metadata always says 0 rows."""
        return int(self.query(f"SELECT COUNT(*) FROM {self.table(table, dataset)}")[0][0])

    def create_table_sql(self, table: str) -> str:
        """The CREATE TABLE statement for `table` that reached the emulator (job history)."""
        head = f"CREATE TABLE `{self.emulator.project}`.`{self.name}`.`{table}`"
        statements = [
            statement.strip()
            for query in self.emulator.job_queries()
            for statement in query.split(";")
            if statement.strip().startswith(head)
        ]
        assert len(statements) == 1, f"{len(statements)} CREATE TABLE for {table}"
        return statements[0]


def spatial_extension() -> Path:
    pattern = "lib/python*/site-packages/duckdb_extension_spatial/extensions/{}/spatial.*"
    found = sorted(VENV.glob(pattern.format(DUCKDB_VERSION)))
    if not found:
        raise EmulatorMissing(f"the spatial extension is missing from {VENV}")
    return found[0]


def write_credentials(path: Path, project: str) -> Path:
    """An `authorized_user` key with a valid token: google-auth never refreshes it (no network)."""
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "emulator",
                "client_secret": "emulator",
                "refresh_token": "emulator",
                "token": "emulator",
                "expiry": "2999-01-01T00:00:00Z",
                "quota_project_id": project,
            }
        )
    )
    return path


def start_bigquery_emulator(workdir: Path, project: str = PROJECT) -> BigQueryEmulator:
    """Start `bqemulator` with ports chosen by the OS; return once its REST API answers."""
    if not EXECUTABLE.exists():
        raise EmulatorMissing(
            f"BigQuery emulator not installed ({EXECUTABLE} missing): run `./run.sh test`, "
            "which sets up .venv-bqemu from requirements-bqemu.txt"
        )
    home, tmp = workdir / "home", workdir / "tmp"
    extensions = home / ".duckdb" / "extensions" / DUCKDB_VERSION / "linux_amd64"
    extensions.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    link = extensions / "spatial.duckdb_extension"
    if not link.exists():
        link.symlink_to(spatial_extension())
    log_file = workdir / "bqemulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "BIGQUERY_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp))
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            [
                str(EXECUTABLE),
                "start",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
                "0",
                "--grpc-port",
                "0",
                "--project",
                project,
                "--log-format",
                "json",
                "--log-level",
                "info",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    emulator = None
    try:
        url = _wait_until_ready(process, log_file, time.monotonic() + START_TIMEOUT_S)
        emulator = BigQueryEmulator(
            url, project, write_credentials(workdir / "adc.json", project), process, log_file
        )
        return emulator
    finally:
        if emulator is None:
            process.kill()
            process.wait()


def _wait_until_ready(process: subprocess.Popen, log_file: Path, deadline: float) -> str:
    """The REST port from the emulator's `rest.listen` log line, then `/readyz` answering."""
    url: Optional[str] = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bqemulator exited ({process.returncode}):\n{_tail(log_file)}")
        if url is None:
            url = _listening_url(log_file)
        if url is not None:
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url
            except requests.RequestException:
                pass
        time.sleep(0.1)  # poll interval, not a wait for readiness
    raise RuntimeError(f"bqemulator not ready after {START_TIMEOUT_S:.0f} s:\n{_tail(log_file)}")


def _listening_url(log_file: Path) -> Optional[str]:
    for line in log_file.read_text(errors="replace").splitlines():
        if '"rest.listen"' in line:
            event = json.loads(line)
            return f"http://{event['host']}:{event['port']}"
    return None


def _tail(log_file: Path, lines: int = 20) -> str:
    return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
