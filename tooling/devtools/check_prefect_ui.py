"""Check that a flow run of ours shows as Completed in the Prefect UI, in a real headless browser.

Starts `prefect server start` in a temporary PREFECT_HOME, runs the offline demo against it, then
renders the UI's runs page with Debian's `chromium` (plain command line, no Playwright) and looks
for the run's name with "Completed" next to it in the rendered DOM. With `--screenshots DIR` it
also saves the runs page, the flow run page and the `slack-load-summary` artifact page as PNGs.

    ./run.sh python -m tooling.devtools.check_prefect_ui [--screenshots docs/images]

Exit code 0: shown as Completed; 1: not shown, or the server or demo failed; 2: no chromium.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import requests

from orchestration.prefect_server import local_prefect_server, stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]

FLOW_NAME = "slack_pipeline"
ARTIFACT_KEY = "slack-load-summary"
INSTALL_HINT = "chromium not found: install it with `sudo apt-get install -y chromium`"
# The UI is a single-page app that renders after several API calls: give it virtual time.
VIRTUAL_TIME_BUDGET_MS = 15000
WINDOW_SIZE = "1600,1000"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # root in containers and CI
    "--disable-gpu",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes the renderer
    "--disable-background-networking",
    "--no-first-run",
    "--hide-scrollbars",
    f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
]
FINAL_STATE_TYPES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
DEMO_DEADLINE_S = 300.0
STATE_DEADLINE_S = 60.0
RENDER_DEADLINE_S = 120.0
CHROMIUM_TIMEOUT_S = 90.0
SCREENSHOTS = {
    "runs": "prefect_ui_runs.png",
    "flow_run": "prefect_ui_flow_run.png",
    "artifact": "prefect_ui_artifact.png",
}


class CheckFailed(Exception):
    """The UI does not show what the API says, or something on the way there failed.

    `details` (a log's tail) is printed before the one-line verdict."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


@dataclass
class FlowRun:
    id: str
    name: str
    state_name: str


def find_chromium() -> Optional[str]:
    """Debian names the binary `chromium`, Ubuntu's snap wrapper `chromium-browser`."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(chromium: str, profile: Path, args: Sequence[str]) -> str:
    """Run headless chromium once with a throwaway profile; return its stdout.

    Own session so that a hung browser and its helper processes are all killed on timeout."""
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        stop_process_group(process)
        raise CheckFailed(f"chromium did not finish in {CHROMIUM_TIMEOUT_S:.0f} s") from exc
    if process.returncode != 0:
        raise CheckFailed(f"chromium exited {process.returncode}", stderr[-2000:])
    return stdout


def run_demo(client_env: Dict[str, str], output: Path) -> None:
    """The offline demo in a child process, recording its flow run on our server."""
    log_path = output.parent / "demo.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tooling.demo", "--output", str(output)],
            cwd=REPO_ROOT,
            env={**os.environ, **client_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=DEMO_DEADLINE_S)
        except subprocess.TimeoutExpired:
            stop_process_group(process)
            code = None
    if code != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        last = tail.strip().splitlines()[-1:] or ["no output"]
        raise CheckFailed(
            f"demo failed (exit {code}): {last[0]}", f"end of the demo output:\n{tail}"
        )


def api_post(api_url: str, path: str, body: dict) -> list:
    response = requests.post(f"{api_url}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def wait_for_finished_run(api_url: str) -> FlowRun:
    """The newest run of our flow once it is in a final state (polled: the API may lag)."""
    body = {
        "flows": {"name": {"any_": [FLOW_NAME]}},
        "sort": "START_TIME_DESC",
        "limit": 1,
    }
    deadline = time.monotonic() + STATE_DEADLINE_S
    runs: list = []
    while time.monotonic() < deadline:
        runs = api_post(api_url, "/flow_runs/filter", body)
        if runs and runs[0]["state"] and runs[0]["state"]["type"] in FINAL_STATE_TYPES:
            break
        time.sleep(0.5)
    if not runs:
        raise CheckFailed(f"no run of flow {FLOW_NAME!r} recorded on {api_url}")
    run = FlowRun(id=runs[0]["id"], name=runs[0]["name"], state_name=runs[0]["state_name"])
    if run.state_name != "Completed":
        raise CheckFailed(f"flow run {run.name!r} is {run.state_name!r} in the API")
    return run


def find_artifact_id(api_url: str, flow_run_id: str) -> str:
    body = {
        "artifacts": {"key": {"any_": [ARTIFACT_KEY]}, "flow_run_id": {"any_": [flow_run_id]}},
        "limit": 1,
    }
    artifacts = api_post(api_url, "/artifacts/filter", body)
    if not artifacts:
        raise CheckFailed(f"flow run {flow_run_id} published no {ARTIFACT_KEY!r} artifact")
    return artifacts[0]["id"]


def ui_base_url(server_url: str) -> str:
    """Where the default UI lives: Prefect 3.9 serves the new UI under /v2 and the old one at /."""
    settings = requests.get(f"{server_url}/ui-settings", timeout=10).json()
    base = settings.get(f"{settings.get('default_ui', 'v1')}_base_url") or "/"
    return server_url + base.rstrip("/")


class _LinksAndText(HTMLParser):
    """The rendered DOM flattened to ("a", href) and ("text", data) events, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: List[Tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        if tag == "a":
            self.events.append(("a", dict(attrs).get("href") or ""))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.events.append(("text", data.strip()))


def state_shown_for_run(dom: str, run: FlowRun) -> Optional[str]:
    """The state badge text in the run's row: the texts after the link to the run (whose text
    is the run's name) up to the link to the next flow run. None when the run is not listed."""
    parser = _LinksAndText()
    parser.feed(dom)
    events = parser.events
    run_href = f"/runs/flow-run/{run.id}"
    for i, (kind, value) in enumerate(events):
        if kind != "a" or not value.endswith(run_href):
            continue
        if i + 1 >= len(events) or events[i + 1] != ("text", run.name):
            continue
        row: List[str] = []
        for kind_after, value_after in events[i + 2 : i + 60]:
            if kind_after == "a" and "/runs/flow-run/" in value_after:
                break
            if kind_after == "text":
                row.append(value_after)
        states = ("Completed", "Failed", "Crashed", "Cancelled", "Running", "Pending")
        return next((text for text in row if text in states), "")
    return None


def assert_completed_in_ui(chromium: str, profile: Path, runs_url: str, run: FlowRun) -> None:
    """Render the runs page until the run's row shows a state (or the deadline passes)."""
    deadline = time.monotonic() + RENDER_DEADLINE_S
    shown: Optional[str] = None
    while time.monotonic() < deadline:
        shown = state_shown_for_run(run_chromium(chromium, profile, ["--dump-dom", runs_url]), run)
        if shown:
            break
    if shown != "Completed":
        seen = "not listed" if shown is None else f"shown as {shown or 'no state'!r}"
        raise CheckFailed(f"flow run {run.name!r} {seen} on {runs_url}")


def take_screenshots(chromium: str, profile: Path, urls: Dict[str, str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for page, url in urls.items():
        path = (folder / SCREENSHOTS[page]).resolve()
        run_chromium(
            chromium, profile, [f"--window-size={WINDOW_SIZE}", f"--screenshot={path}", url]
        )
        if not path.exists() or path.stat().st_size == 0:
            raise CheckFailed(f"chromium wrote no screenshot of {url} to {path}")
        print(f"  screenshot {path}")


def check(chromium: str, screenshots: Optional[Path]) -> str:
    """Server -> demo -> API -> browser. Returns the verdict; raises CheckFailed with the end
    of the server's log (the temporary home is gone afterwards)."""
    with tempfile.TemporaryDirectory(prefix="prefect-ui-check-") as tmp:
        server_log = Path(tmp) / "server.log"
        try:
            return _check_in(Path(tmp), server_log, chromium, screenshots)
        except (RuntimeError, TimeoutError, requests.RequestException) as exc:
            tail = server_log.read_text(errors="replace")[-1500:] if server_log.exists() else ""
            raise CheckFailed(str(exc), f"end of the server log:\n{tail}") from exc


def _check_in(tmp_path: Path, server_log: Path, chromium: str, screenshots: Optional[Path]) -> str:
    started = time.monotonic()
    with local_prefect_server(tmp_path / "prefect_home", log_path=server_log) as server:
        print(f"  server {server.ui_url} up after {time.monotonic() - started:.1f} s")
        run_demo(server.client_environment(), tmp_path / "demo_output")
        print(f"  demo finished after {time.monotonic() - started:.1f} s")
        run = wait_for_finished_run(server.api_url)
        ui = ui_base_url(server.ui_url)
        profile = tmp_path / "chromium_profile"
        assert_completed_in_ui(chromium, profile, f"{ui}/runs", run)
        print(f"  runs page checked after {time.monotonic() - started:.1f} s")
        if screenshots is not None:
            artifact_id = find_artifact_id(server.api_url, run.id)
            urls = {
                "runs": f"{ui}/runs",
                "flow_run": f"{ui}/runs/flow-run/{run.id}",
                "artifact": f"{ui}/artifacts/artifact/{artifact_id}",
            }
            take_screenshots(chromium, profile, urls, screenshots)
        elapsed = time.monotonic() - started
        return f"flow run {run.name!r} shown as Completed on {ui}/runs ({elapsed:.0f} s)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshots", type=Path, help="folder for PNGs of the UI pages")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print(INSTALL_HINT)
        return 2
    try:
        verdict = check(chromium, args.screenshots)
    except CheckFailed as exc:
        if exc.details:
            print(exc.details)
        print(f"FAIL: {exc}")
        return 1
    print(f"PASS: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
