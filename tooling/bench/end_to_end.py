"""The product as users start it, against a bare fetch loop in the same run (issue #27).

Each mode is a run started the way a user starts it, in a fresh process:

- `run_sh`:         `./run.sh run --start-date D` (a temporary Prefect server, prepared home)
- `running_server`: the same against a running `prefect server` (`PREFECT_API_URL`)
- `flow_file`:      `python slack_pipeline_with_prefect.py run --start-date D`, no wrapper,
                    no memory variables in the environment (the page this repository comes from)
- `serve`:          a run of the served deployment (`python slack_pipeline_with_prefect.py`)
- `worker`:         a run of prefect.yaml's deployment on a process worker
                    (`prefect worker start --pool slack-pool`)

The first three are timed from `Popen` to exit. The last two run against the running server and
are timed from the run's creation to its final state (`deployed_runs`), so they leave out the
serving process's start, and include the pick-up (polled every second) and the flow run's own
process start. The yardstick is `bare_fetch_ratio.bare_fetch`: a plain `requests`
loop over the same history and replies, in its own process, against the same emulator.

Peak memory: `pipeline` is the largest single process of the run's tree (`ru_maxrss` from
`wait4`: the flow's process; for `serve` and `worker`, the highest sampled `VmHWM` in the tree,
which is the flow run's own process); `tree` is the highest sampled sum of the tree's RSS (the
temporary server included). Every run must leave as many `messages` rows as the bare loop (or
the bare parse) read, else the benchmark stops there.

`--export` adds the export import (`./run.sh import-export ZIP`, a fresh process) against a bare
single-threaded inflate + `orjson` parse of every member of the same ZIP.

Shapes: `bundled` (the tests' generator defaults) and `long_tail` (issue #27's workspace:
threads = messages / 50 with up to ~900 replies, ~25 % replies, ~660 bytes of JSON a message,
no `user_profile`).

python -m tooling.bench.end_to_end [--messages 100000] [--shape long_tail] [--repeat 3]
    [--modes run_sh,running_server,flow_file,serve,worker] [--export] [--name NAME]

Writes results/end_to_end_<shape>_<size>.json: medians, and every run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List

from .bare_fetch_ratio import bare_fetch
from .common import (
    ROOT,
    SHAPES,
    TOKEN,
    Emulator,
    days_ago,
    run_in_child,
    shaped_workspace,
    size_label,
    temp_dir,
    write_result,
)
from .deployed_runs import DEPLOYED_MODES, create_pool, deployed_run
from .process_tree import TreeSampler

MODES = ("run_sh", "running_server", "flow_file", *DEPLOYED_MODES)
# What a user's shell does not have: none of the project's settings, none of the memory
# variables run.sh used to export (orchestration.memory applies them in the process).
DROPPED = ("SOURCES__", "DESTINATION__", "SLACK_PIPELINE__", "PREFECT_", "MALLOC_", "ARROW_")


def user_environment(**settings: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env.update(settings)
    return env


def timed(args: List[str], env: Dict[str, str], log: Path) -> Dict[str, Any]:
    """Run `args` to its end; wall, the largest single process's peak RSS, the tree's."""
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        with TreeSampler(proc.pid) as tree:
            _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}; see {log}")
    return {
        "wall_s": round(wall, 2),
        "pipeline_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "tree_peak_rss_mb": round(tree.peak_mb, 1),
    }


def prepared_home(where: Path) -> Path:
    """A Prefect home whose database is migrated (as run.sh prepares ~/.prefect once)."""
    home = where / "prefect_home"
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run(
        [python, "-m", "orchestration.prefect_server", "prepare-home", str(home)],
        cwd=ROOT,
        env=user_environment(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return home


def run_mode(
    mode: str, emulator: Emulator, start: str, tmp: Path, k: int, api: str, expected: int
) -> dict:
    """One pipeline run of `mode` into a new DuckDB file and pipelines folder, which must
    hold the `expected` messages afterwards."""
    where = tmp / f"{mode}_{k}"
    where.mkdir()
    settings = {
        "SOURCES__SLACK__ACCESS_TOKEN": TOKEN,
        "SOURCES__SLACK__API_BASE_URL": emulator.base_url,
        "SOURCES__SLACK__RATE_LIMIT_PROFILE": "off",
        "DESTINATION__DUCKDB__CREDENTIALS": str(where / "slack.duckdb"),
        "SLACK_PIPELINE__PIPELINES_DIR": str(where / "pipelines"),
        "PREFECT_HOME": str(tmp / "prefect_home"),
    }
    env = user_environment(**settings)
    if mode in DEPLOYED_MODES:
        run = deployed_run(mode, api, env, start, where / "console.log")
    else:
        if mode == "running_server":
            env["PREFECT_API_URL"] = api
        if mode == "flow_file":
            args = [str(ROOT / ".venv" / "bin" / "python"), "slack_pipeline_with_prefect.py"]
        else:
            args = [str(ROOT / "run.sh")]
        run = timed(args + ["run", "--start-date", start], env, where / "console.log")
    return {**run, "messages_loaded": expect_loaded(where / "slack.duckdb", expected, mode)}


def loaded_messages(database: Path) -> int:
    """The `messages` rows a run left in its DuckDB file (each run is a whole backfill)."""
    import duckdb

    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute("SELECT count(*) FROM slack_data.messages").fetchone()[0]


def expect_loaded(database: Path, expected: int, what: str) -> int:
    """Stop the benchmark at once when a run did not load every message."""
    loaded = loaded_messages(database)
    if loaded != expected:
        raise RuntimeError(f"{what} loaded {loaded} messages, not {expected}: {database}")
    return loaded


def bare_parse(path: str) -> Dict[str, Any]:
    """Inflate and parse every JSON member of the ZIP, one after another (runs in a child)."""
    import orjson

    started = time.perf_counter()
    messages = 0
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(".json"):
                value = orjson.loads(archive.read(name))
                if "/" in name:
                    messages += len(value)
    return {"wall_s": time.perf_counter() - started, "messages": messages}


def export_import(emulator_options: Dict[str, Any], tmp: Path, repeat: int) -> Dict[str, Any]:
    """The export of the same workspace: bare parse vs `./run.sh import-export` (medians)."""
    path = tmp / "export.zip"
    args = [sys.executable, "-m", "tooling.slack_emulator", "export", str(path)]
    for key, value in emulator_options.items():
        if key in ("rate_limits",):
            continue
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    bare, runs = [], []
    for k in range(repeat):
        bare.append(run_in_child(bare_parse, path=str(path)))
        where = tmp / f"import_{k}"
        where.mkdir()
        env = user_environment(
            DESTINATION__DUCKDB__CREDENTIALS=str(where / "slack.duckdb"),
            SLACK_PIPELINE__PIPELINES_DIR=str(where / "pipelines"),
            PREFECT_HOME=str(tmp / "prefect_home"),
        )
        runs.append(timed([str(ROOT / "run.sh"), "import-export", str(path)], env, where / "log"))
        loaded = expect_loaded(where / "slack.duckdb", bare[-1]["messages"], "the export import")
        runs[-1]["messages_loaded"] = loaded
        print(f"  export: bare parse {bare[-1]['wall_s']:.2f} s, import {runs[-1]['wall_s']} s")
    bare_wall = statistics.median(b["wall_s"] for b in bare)
    wall = statistics.median(r["wall_s"] for r in runs)
    return {
        "export_messages": bare[0]["messages"],
        "export_bare_parse_wall_s": round(bare_wall, 2),
        "export_import_wall_s": wall,
        "export_import_over_bare_parse": round(wall / bare_wall, 3),
        "export_import_pipeline_peak_rss_mb": statistics.median(
            r["pipeline_peak_rss_mb"] for r in runs
        ),
        "export_runs": runs,
    }


def main(argv: Any = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="default: messages / 50")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="long_tail")
    parser.add_argument("--modes", default=",".join(MODES), help="empty: only --export")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--export", action="store_true", help="also the export import")
    parser.add_argument("--name")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    options = shaped_workspace(args)
    start = days_ago(40)
    result: Dict[str, Any] = {"messages": args.messages, "shape": args.shape, **options}
    from orchestration.prefect_server import local_prefect_server

    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(Emulator(rate_limits="off", **options))
        tmp = Path(stack.enter_context(temp_dir("end_to_end")))
        prepared_home(tmp)
        api = ""
        if {"running_server", *DEPLOYED_MODES} & set(modes):
            # no scheduler: the deployments' midnight schedules would start runs of their own
            quiet = {"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
            server = local_prefect_server(tmp / "server_home", extra_env=quiet)
            api = stack.enter_context(server).api_url
        if "worker" in modes:
            create_pool(
                user_environment(PREFECT_API_URL=api, PREFECT_HOME=str(tmp / "prefect_home"))
            )
        runs: Dict[str, List[dict]] = {m: [] for m in modes}
        bare: List[dict] = []
        day = start.strftime("%Y-%m-%d")
        for k in range(args.repeat if modes else 0):
            bare.append(
                run_in_child(bare_fetch, base_url=emulator.base_url, oldest=start.timestamp())
            )
            line = [f"bare {bare[-1]['wall_s']:.2f} s"]
            fetched = bare[-1]["history_messages"] + bare[-1]["replies"]
            for mode in modes:
                runs[mode].append(run_mode(mode, emulator, day, tmp, k, api, fetched))
                line.append(f"{mode} {runs[mode][-1]['wall_s']} s")
            print(f"run {k + 1}/{args.repeat}: " + ", ".join(line), flush=True)
        if bare:
            bare_wall = statistics.median(b["wall_s"] for b in bare)
            result.update(
                bare_wall_s=round(bare_wall, 2),
                bare_messages=fetched,
                bare_calls=bare[0]["calls"],
                bare_peak_rss_mb=round(bare[0]["peak_rss_mb"], 1),
            )
        for mode, mode_runs in runs.items():
            wall = statistics.median(r["wall_s"] for r in mode_runs)
            result[f"{mode}_wall_s"] = wall
            result[f"{mode}_over_bare"] = round(wall / bare_wall, 3)
            result[f"{mode}_msgs_per_s"] = round(fetched / wall, 1)
            for key in ("pipeline_peak_rss_mb", "tree_peak_rss_mb"):
                result[f"{mode}_{key}"] = statistics.median(r[key] for r in mode_runs)
            result[f"{mode}_runs"] = mode_runs
        if args.export:
            result.update(export_import(options, tmp, args.repeat))
    for key in sorted(result):
        if not key.endswith("_runs"):
            print(f"{key}: {result[key]}")
    write_result(args.name or f"end_to_end_{args.shape}_{size_label(args.messages)}", result)
    return result


if __name__ == "__main__":
    main()
