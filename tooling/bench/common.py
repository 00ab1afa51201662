"""Shared helpers: emulator subprocess, dlt+DuckDB loads in a child process, result files."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from .process_tree import PeriodicSampler

# quiet dlt logs in every process that imports this module (children inherit the env)
os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
# The allocator settings: each load's process applies them (orchestration/memory.py).

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TOKEN = "xoxb-emulator-token"
PAGE = 999
# Workspace shapes (emulator options): `bundled` is the generator's default; `long_tail` the
# workspace issue #27 measured (threads = messages / 50 with up to ~900 replies, ~25 % replies,
# ~660 bytes of JSON a message, no user_profile).
SHAPES: Dict[str, Dict[str, Any]] = {
    "bundled": {},
    "long_tail": {
        "reply_share": 0.25,
        "thread_alpha": 0.8,
        "thread_cap": 1000.0,
        "no_user_profiles": True,
    },
}


def shaped_workspace(args: Any) -> Dict[str, Any]:
    """Emulator options of the workspace a fetch-vs-pipeline benchmark reads: `args.channels`
    public member channels of `args.messages` (threads = messages / 50 by default), shaped as
    `args.shape`."""
    return dict(
        seed=args.seed,
        channels=args.channels,
        messages=args.messages,
        threads=args.threads or max(1, args.messages // 50),
        private_channels=0,
        non_member_channels=0,
        **SHAPES[args.shape],
    )


ALLOWANCE = {
    "users.list": 20,
    "conversations.list": 20,
    "conversations.history": 50,
    "conversations.replies": 50,
}


class Emulator:
    """`python -m tooling.slack_emulator serve` in a subprocess; use as a context manager."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.proc: Optional[subprocess.Popen] = None
        self.base_url = ""
        self.control_url = ""

    def start(self) -> Emulator:
        args = [sys.executable, "-m", "tooling.slack_emulator", "serve", "--port", "0"]
        args += ["--token", TOKEN]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif isinstance(value, (list, tuple)):  # a repeatable flag
                for item in value:
                    args += [flag, str(item)]
            elif value is not None and value is not False:
                args += [flag, str(value)]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"emulator did not start: {args}")
        urls = json.loads(line)
        self.base_url, self.control_url = urls["base_url"], urls["control_url"]
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remote(self) -> Any:
        from tooling.slack_emulator import RemoteEmulator

        return RemoteEmulator(self.control_url)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def add_workspace_arguments(
    parser: Any, messages: int, threads: int, time_scale: float, channels: int = 10
) -> None:
    """The size of the emulated workspace and Slack's time compression, as every tiers
    benchmark takes them."""
    parser.add_argument("--channels", type=int, default=channels)
    parser.add_argument("--messages", type=int, default=messages)
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--time-scale", type=float, default=time_scale)


def tiers_emulator(args: Any, **options: Any) -> Emulator:
    """An emulator of that size enforcing Slack's tiers, compressed by `args.time_scale`
    (its Retry-After is whole seconds, as Slack's: a rare 429 costs at least a second)."""
    return Emulator(
        channels=args.channels,
        messages=args.messages,
        threads=args.threads,
        rate_limits="tiers",
        time_scale=args.time_scale,
        **options,
    )


def days_ago(days: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)


def make_pipeline(pipelines_dir: str, name: str) -> Any:
    """A dlt pipeline writing to a DuckDB file inside `pipelines_dir`."""
    import dlt

    from orchestration.loading import duckdb_destination

    return dlt.pipeline(
        pipeline_name=name,
        destination=duckdb_destination(str(Path(pipelines_dir) / f"{name}.duckdb")),
        dataset_name="slack",
        pipelines_dir=pipelines_dir,
    )


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB (ru_maxrss is KB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class RssSampler(PeriodicSampler):
    """Samples this process's RSS every `interval` s on a thread, to name the stage where the
    peak happens (`ru_maxrss` gives only the peak). Use as a context manager."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(interval)
        self.samples: List[tuple] = []
        self._page = os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> None:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * self._page / 2**20
        self.samples.append((time.time(), resident))

    def peak_by_stage(self, pipeline: Any) -> Dict[str, float]:
        """Highest sampled RSS (MB) within each of extract/normalize/load of the last run."""
        out: Dict[str, float] = {}
        trace = pipeline.last_trace
        for step in trace.steps if trace else []:
            if step.step in ("extract", "normalize", "load") and step.finished_at:
                lo, hi = step.started_at.timestamp(), step.finished_at.timestamp()
                inside = [rss for t, rss in self.samples if lo <= t <= hi]
                out[step.step] = round(max(inside, default=0.0), 1)
        return out


def stage_seconds(pipeline: Any) -> Dict[str, float]:
    """Durations of extract/normalize/load of the pipeline's last run."""
    out: Dict[str, float] = {}
    trace = pipeline.last_trace
    for step in trace.steps if trace else []:
        if step.step in ("extract", "normalize", "load") and step.finished_at:
            out[f"{step.step}_s"] = round((step.finished_at - step.started_at).total_seconds(), 3)
    return out


def load_job(
    base_url: str, pipelines_dir: str, name: str, source_kwargs: Dict[str, Any]
) -> Dict[str, Any]:
    """Run one dlt load (runs in the child process); return timings, calls, rows and peak RSS."""
    from orchestration.loading import fewer_gc_passes, has_messages, preferred_file_format
    from slack_source import RunStats, slack_source

    stats = RunStats()
    pipeline = make_pipeline(pipelines_dir, name)
    # as the flow's history task does: a first load into an empty table appends
    source_kwargs = {"append_into_empty": not has_messages(pipeline), **source_kwargs}
    source = slack_source(access_token=TOKEN, api_base_url=base_url, stats=stats, **source_kwargs)
    started, cpu_started = time.perf_counter(), time.process_time()
    with RssSampler() as rss, fewer_gc_passes():  # as orchestration.loading runs a load
        info = pipeline.run(source, loader_file_format=preferred_file_format(pipeline))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    info.raise_on_failed_jobs()
    rows = pipeline.last_trace.last_normalize_info.row_counts
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "calls": dict(stats.calls),
        "ratelimited": dict(stats.ratelimited),
        "rows": {k: v for k, v in rows.items() if not k.startswith("_dlt")},
        "skipped_channels": dict(stats.skipped_channels),
        "stages": stage_seconds(pipeline),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_by_stage": rss.peak_by_stage(pipeline),
    }


def _child(queue: Any, func: Any, kwargs: Dict[str, Any]) -> None:
    try:
        queue.put(("ok", func(**kwargs)))
    except BaseException as exc:  # report to the parent, which re-raises
        import traceback

        queue.put(("error", f"{exc!r}\n{traceback.format_exc()}"))


def run_in_child(func: Any, **kwargs: Any) -> Dict[str, Any]:
    """Call module-level `func(**kwargs)` in a fresh (spawned) process; return its dict."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, func, kwargs))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"child failed: {value}")
    return value


def temp_dir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"bench_{prefix}_")


def top_level_per_channel(
    truth: Iterator[Dict[str, Any]], since_ts: float = 0.0
) -> tuple[Counter, Dict[tuple, int]]:
    """Top-level messages (history rows) per channel newer than `since_ts`, replies per thread."""
    top: Counter = Counter()
    replies: Dict[tuple, int] = Counter()
    for msg in truth:
        ts, thread_ts = msg.get("ts"), msg.get("thread_ts")
        is_reply = thread_ts is not None and thread_ts != ts
        if is_reply:
            replies[(msg["channel_id"], thread_ts)] += 1
            if msg.get("subtype") != "thread_broadcast":
                continue
        if float(ts) >= since_ts:
            top[msg["channel_id"]] += 1
    return top, replies


def readable_channels(channels: List[Dict[str, Any]]) -> List[str]:
    """Public channels the bot is a member of (archived included: the source reads them)."""
    return [c["id"] for c in channels if not c.get("is_private") and c.get("is_member")]


def pages(n: int) -> int:
    return max(1, math.ceil(n / PAGE))


def size_label(messages: int) -> str:
    """Size suffix of result keys: `1m`, `100k` or `small`."""
    return "1m" if messages >= 1_000_000 else "100k" if messages >= 100_000 else "small"


def load_figures(
    messages: int, run: Dict[str, Any], rate_key: str, rss_1m_key: str, **extra: Any
) -> Dict[str, Any]:
    """The flat result of one load run in a child (`load_job`-style dict): rows, wall and CPU
    time, messages/s under `rate_key`, peak RSS (also under `rss_1m_key` at 1M) and stages."""
    loaded = run["rows"].get("messages", 0)
    result = {
        "messages": messages,
        "rows_messages": loaded,
        **extra,
        "wall_s": round(run["wall_s"], 3),
        "cpu_s": round(run["cpu_s"], 3),
        rate_key: round(loaded / run["wall_s"], 1),
        "peak_rss_mb": round(run["peak_rss_mb"], 1),
        **{f"peak_rss_mb_{k}": v for k, v in run.get("peak_rss_mb_by_stage", {}).items()},
        **{f"stage_{k}": v for k, v in run["stages"].items()},
    }
    if messages >= 1_000_000:
        result[rss_1m_key] = result["peak_rss_mb"]
    return result


def write_result(name: str, data: Dict[str, Any]) -> Path:
    """Flat JSON in tooling/bench/results/NAME.json: one current file per benchmark (and size)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    flat = {
        "name": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        **data,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path
