"""Every benchmark at a tiny size, one after another; non-zero exit if any fails.

python -m tooling.bench.smoke        (what `./run.sh bench` runs in CI)
"""

from __future__ import annotations

import subprocess
import sys
import time

from .common import ROOT

SMALL = ["--channels", "6", "--messages", "1000", "--threads", "25"]
RUNS = [
    ("backfill_vs_bound", [*SMALL, "--name", "smoke_backfill_vs_bound"]),
    ("incremental_day", [*SMALL, "--name", "smoke_incremental_day"]),
    ("throughput", ["--channels", "6", "--messages", "1000", "--name", "smoke_throughput"]),
    ("prefect_overhead", ["--channels", "6", "--messages", "1000", "--name", "smoke_prefect"]),
    ("bare_fetch_ratio", ["--channels", "6", "--messages", "1000", "--name", "smoke_bare_fetch"]),
    ("import_export", ["--channels", "6", "--messages", "1000", "--name", "smoke_import_export"]),
    # every way a user starts the flow (run.sh, a server, the flow file, serve, a worker)
    ("end_to_end", [*SMALL, "--repeat", "1", "--export", "--name", "smoke_end_to_end"]),
]


def main() -> int:
    failed = []
    for module, args in RUNS:
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"tooling.bench.{module}", *args], cwd=ROOT)
        print(f"== {module}: exit {code} in {time.perf_counter() - started:.1f} s", flush=True)
        if code:
            failed.append(module)
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    print("all benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
