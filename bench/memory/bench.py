"""Peak memory and time of loads into many partitions (see run.sh)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BUDGET = 1 << 30


def generate(path: Path, rows: int) -> None:
    """Events in random order over 3,650 days and a million users."""
    marker = path.parent.parent.parent / "events.rows"
    if path.exists() and marker.exists() and marker.read_text() == str(rows):
        return
    rng = random.Random(20261201)
    base = dt.date(2015, 1, 1)
    days = [(base + dt.timedelta(days=d)).isoformat() for d in range(3650)]
    kinds = [f"k{i}" for i in range(20)]
    with path.open("w") as f:
        f.write("event_id,user_id,event_date,kind,amount,note\n")
        chunk = []
        for i in range(rows):
            chunk.append(
                f"{i},{rng.randrange(1_000_000)},{days[rng.randrange(3650)]},"
                f"{kinds[rng.randrange(20)]},{rng.randrange(10_000) / 100},n{rng.randrange(1_000_000)}\n"
            )
            if len(chunk) == 100_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    marker.write_text(str(rows))


def measure(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss * 1024


def files_under(p: Path) -> int:
    return sum(1 for f in p.rglob("*.parquet"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--before")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    land = out / "land" / "events"
    land.mkdir(parents=True, exist_ok=True)
    csv = land / "events.csv"
    print(f"== generating {a.rows:,} rows", flush=True)
    generate(csv, a.rows)
    print(f"   {csv.stat().st_size / 1e6:.0f} MB of CSV", flush=True)

    binaries = [("tessera", a.tessera)] + ([("before", a.before)] if a.before else [])
    cases = [
        ("put, 3,650 days", ["put", "ev", str(csv), "--date-key", "event_date", "-q"], "put"),
        ("put, 10,000 ID ranges", ["put", "ev", str(csv), "--id-key", "user_id:100", "-q"], "put"),
        ("pack, 3,650 days", ["pack", str(out / "land"), None, "events", "--partition-by",
                              "event_date", "--output-ext", "parquet", "-q"], "pack"),
    ]
    results: dict[tuple[str, str], tuple[float, int, int]] = {}
    for label, args, kind in cases:
        for who, binary in binaries:
            walls, peaks, files = [], [], 0
            for _ in range(a.runs):
                store = out / "store"
                shutil.rmtree(store, ignore_errors=True)
                cmd = [binary] + [str(store) if x is None else x for x in args]
                if kind == "put":
                    cmd += ["--store", str(store)]
                wall, peak = measure(cmd)
                walls.append(wall)
                peaks.append(peak)
                files = files_under(store)
            results[(label, who)] = (statistics.median(walls), int(statistics.median(peaks)), files)
            w, p, f = results[(label, who)]
            print(f"   {label:<24} {who:<8} {w:7.2f} s  peak {p / 2**20:7.0f} MiB  {f:6d} files", flush=True)
        shutil.rmtree(out / "store", ignore_errors=True)

    print()
    print(f"{a.rows:,} rows, {csv.stat().st_size / 1e6:.0f} MB CSV; medians of {a.runs} runs; budget 1 GiB")
    head = f"{'load':<24} {'time s':>8} {'peak MiB':>9} {'files':>7} {'under 1 GiB':>12}"
    if a.before:
        head += f" {'before s':>9} {'before MiB':>11} {'time ratio':>11} {'memory ratio':>13}"
    print(head)
    for label, _, _ in cases:
        w, p, f = results[(label, "tessera")]
        line = f"{label:<24} {w:8.2f} {p / 2**20:9.0f} {f:7d} {'yes' if p < BUDGET else 'NO':>12}"
        if a.before:
            bw, bp, _ = results[(label, "before")]
            line += f" {bw:9.2f} {bp / 2**20:11.0f} {bw / w:10.2f}x {bp / p:12.2f}x"
        print(line)


if __name__ == "__main__":
    main()
