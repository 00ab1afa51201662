"""The memory of a process and all its descendants, sampled from /proc (Linux only).

A served deployment or a worker runs each flow run in a child process of its own, which the
benchmark cannot `wait4`: its peak is read from the kernel's high-water mark (`VmHWM`) while it
lives, so a peak between two samples still counts.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Dict, Iterable, List, Self


def descendants(pid: int) -> List[int]:
    """`pid` and every process below it."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def memory_kb(pid: int | str) -> Dict[str, int]:
    """`VmRSS` and `VmHWM` of `pid` (or "self") in kB; empty once it has exited."""
    values: Dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as lines:
            for line in lines:
                if line.startswith(("VmRSS", "VmHWM")):
                    key, value = line.split(":")
                    values[key] = int(value.split()[0])
    except OSError:
        return {}
    return values


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL what is left of `pids` (a tree's processes seen a moment ago)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class PeriodicSampler:
    """Calls `sample()` every `interval` s on a thread while used as a context manager."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


class TreeSampler(PeriodicSampler):
    """The summed RSS of the tree (`peak_mb`, its highest sample) and the largest single
    process's high-water mark (`process_peak_mb`, of process `process_peak_pid`)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(interval)
        self.pid = self.process_peak_pid = pid
        self.peak_mb = self.process_peak_mb = 0.0

    def sample(self) -> None:
        total = 0
        for pid in descendants(self.pid):
            values = memory_kb(pid)
            total += values.get("VmRSS", 0)
            if values.get("VmHWM", 0) / 1024 > self.process_peak_mb:
                self.process_peak_mb, self.process_peak_pid = values["VmHWM"] / 1024, pid
        self.peak_mb = max(self.peak_mb, total / 1024)
