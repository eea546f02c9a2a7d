"""Measuring the geo benchmarks' cases (bench.py and cog.py): each case runs
in its own process, under GNU time when /usr/bin/time is there, and its
runs are summed up as medians of wall and CPU time and the largest peak RSS.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Run:
    """One finished command: wall seconds, CPU seconds, peak RSS (MiB) and its stdout."""

    wall: float
    cpu: float
    rss: float
    stdout: str


GNU_TIME = "/usr/bin/time"


def spawn(cmd: list[str]) -> Run:
    """Run ``cmd`` to its end (exit on failure); its wall time, CPU and peak RSS.

    Through GNU time when /usr/bin/time is there (``%M``: the largest RSS of
    the command and the children it waited for, measured from a small
    process); otherwise from this process's wait4, whose figure is at least
    this (small) process's RSS when it forked.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r") as usage_file:
        timed = os.access(GNU_TIME, os.X_OK)
        full = [GNU_TIME, "-f", "%M %U %S", "-o", usage_file.name, *cmd] if timed else cmd
        start = time.perf_counter()
        p = subprocess.Popen(full, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            sys.exit(f"failed ({code}): {' '.join(cmd)}\n{stderr[-4000:]}")
        if timed:
            kb, user, system = usage_file.read().split()[-3:]
            return Run(wall, float(user) + float(system), int(kb) / 1024, stdout)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout)


class Cases:
    """Runs of named cases: medians of wall and CPU time, the largest peak RSS."""

    def __init__(self) -> None:
        self.runs: dict[str, list[Run]] = {}

    def seconds(self, label: str) -> float:
        """Median wall time."""
        return statistics.median(r.wall for r in self.runs[label])

    def cpu(self, label: str) -> float:
        """Median CPU seconds (children included)."""
        return statistics.median(r.cpu for r in self.runs[label])

    def rss(self, label: str) -> float:
        """The largest peak RSS of the case's runs, MiB."""
        return max(r.rss for r in self.runs[label])
