"""A load SIGKILLed at a random point, then re-run, ends equal to the ground truth."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.helpers import (
    ROOT,
    SMALL_SPEC,
    TOKEN,
    loaded_messages,
    readable_channel_ids,
    truth_messages,
)

LOAD_SCRIPT = textwrap.dedent(
    f"""
    import sys
    from datetime import datetime, timedelta, timezone
    import dlt
    from slack_source import slack_source
    base_url, workdir = sys.argv[1], sys.argv[2]
    pipeline = dlt.pipeline(
        "killable", destination=dlt.destinations.duckdb(workdir + "/slack.duckdb"),
        dataset_name="slack_data", pipelines_dir=workdir + "/pipelines",
    )
    source = slack_source(
        access_token="{TOKEN}", api_base_url=base_url, rate_limit_profile="tiers",
        rate_limit_minute_seconds=3.0,
        start_date=datetime.now(timezone.utc) - timedelta(days=40),
    )
    pipeline.run(source, loader_file_format="parquet").raise_on_failed_jobs()
    """
)


def wait_for(predicate, deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_mid_run_then_rerun_equals_ground_truth(seed, tmp_path, start_emulator):
    server = start_emulator(
        dict(SMALL_SPEC, messages=1200, threads=80), rate_limits="tiers", time_scale=0.05
    )
    workspace = server.workspace
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNTIME__LOG_LEVEL": "ERROR"}
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    cmd = [sys.executable, str(script), server.base_url, str(tmp_path)]
    child = subprocess.Popen(cmd, env=env, cwd=ROOT)
    kill_after = random.Random(seed).randint(5, 30)  # replies calls paced 50 per 3 s
    reached = wait_for(
        lambda: (
            server.request_counts().get("conversations.replies", 0) >= kill_after
            or child.poll() is not None
        ),
        120,
    )
    assert reached and child.poll() is None, "the load was still running when killed"
    child.send_signal(signal.SIGKILL)
    child.wait(30)

    rerun = subprocess.run(cmd, env=env, cwd=ROOT, timeout=300)
    assert rerun.returncode == 0
    assert loaded_messages(tmp_path / "slack.duckdb") == truth_messages(
        workspace, readable_channel_ids(workspace)
    )
