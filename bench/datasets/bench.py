"""Datasets: tessera put/get vs pandas csv.gz chunks vs Python deltalake.

Run through bench/datasets/run.sh. Each measured step is its own process;
wall time and peak RSS come from wait4. The peers' helper steps are this
same file run with a step name.
"""
import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid

DAY = "2023-06-15"


# ---------------------------------------------------------------- peer steps

def step_generate(path, rows):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
                      "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi"])
    writer = None
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        days = (ids * 365) // rows  # sorted by date, like a year of appends
        t = pa.table({
            "date": pa.array(np.datetime64("2023-01-01") + days.astype("timedelta64[D]"), pa.date32()),
            "id": ids,
            "user_id": rng.integers(0, 1_000_000, n),
            "amount": np.round(rng.random(n) * 1000, 2),
            "qty": rng.integers(1, 50, n).astype(np.int32),
            "category": words[rng.integers(0, len(words), n)],
            "note": pa.array([f"order {i} {w}" for i, w in zip(ids, words[rng.integers(0, len(words), n)])]),
        })
        if writer is None:
            writer = pq.ParquetWriter(path, t.schema, compression="snappy")
        writer.write_table(t)
    writer.close()


def step_csvgz_write(src, root):
    """The reference tool's storage: a folder per date, 100K-row csv.gz chunks."""
    import pandas as pd

    df = pd.read_parquet(src)
    for day, group in df.groupby("date", sort=False):
        folder = os.path.join(root, "date", str(day))
        os.makedirs(folder, exist_ok=True)
        for s in range(0, len(group), 100_000):
            group.iloc[s:s + 100_000].to_csv(
                os.path.join(folder, f"chunk_{uuid.uuid4()}.csv.gz"), index=False, compression="gzip")


def step_csvgz_read(root, day=None):
    import pandas as pd

    pattern = os.path.join(root, "date", day or "*", "*.csv.gz")
    df = pd.concat([pd.read_csv(f) for f in sorted(glob.glob(pattern))], ignore_index=True)
    print(len(df), file=sys.stderr)


def step_delta_write(src, root):
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    write_deltalake(root, pq.read_table(src), partition_by=["date"])


def step_delta_read(root, day=None):
    from deltalake import DeltaTable

    dt = DeltaTable(root)
    if day:
        t = dt.to_pyarrow_table(partitions=[("date", "=", day)])
    else:
        t = dt.to_pyarrow_table()
    print(t.num_rows, file=sys.stderr)


# ---------------------------------------------------------------- measuring

def run(cmd, stdout=subprocess.DEVNULL):
    """Run a command; return (seconds, peak RSS in MiB, stderr)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024, err


def du(path, suffix=""):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            if f.endswith(suffix):
                total += os.path.getsize(os.path.join(d, f))
    return total


def main():
    if len(sys.argv) > 1 and sys.argv[1].startswith("step-"):
        steps = {
            "step-generate": lambda a: step_generate(a[0], int(a[1])),
            "step-csvgz-write": lambda a: step_csvgz_write(*a),
            "step-csvgz-read": lambda a: step_csvgz_read(*a),
            "step-delta-write": lambda a: step_delta_write(*a),
            "step-delta-read": lambda a: step_delta_read(*a),
        }
        steps[sys.argv[1]](sys.argv[2:])
        # deltalake's background runtime can abort the interpreter at exit
        # ("terminate called without an active exception"); the step is done.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    me = [sys.executable, os.path.abspath(__file__)]
    src = os.path.join(a.out, f"input-{a.rows}.parquet")
    if not os.path.exists(src):
        print(f"== generating {a.rows} rows into {src}")
        run(me + ["step-generate", src + ".tmp", str(a.rows)])
        os.rename(src + ".tmp", src)
    print(f"== input: {a.rows} rows, {os.path.getsize(src) / 1e6:.0f} MB Parquet; {a.runs} run(s); one day = {DAY}")

    store = os.path.join(a.out, "tessera-store")
    table = os.path.join(store, "datasets", "default", "bench", "events")
    csvgz = os.path.join(a.out, "csvgz")
    delta = os.path.join(a.out, "delta")
    tess = [a.tessera, "--store", store]
    results = {}

    def record(name, r):
        results.setdefault(name, []).append(r)

    for i in range(a.runs):
        for d in (store, csvgz, delta):
            shutil.rmtree(d, ignore_errors=True)
        t, m, _ = run([a.tessera, "put", "bench/events", src, "--date-key", "date",
                       "--store", store, "--single-writer", "--version", "bench"])
        record("tessera write", (t, m))
        t, m, _ = run(tess[:1] + ["get", "bench/events", "--format", "arrow"] + tess[1:])
        record("tessera read", (t, m))
        t, m, err = run(tess[:1] + ["get", "bench/events", "--format", "arrow", "-v",
                                    "--where", f"date = '{DAY}'"] + tess[1:])
        record("tessera read 1 day", (t, m))
        rep = re.search(r"read (\d+) of (\d+) file\(s\), ([\d.]+ \w+) of ([\d.]+ \w+)", err)

        t, m, _ = run(me + ["step-csvgz-write", src, csvgz])
        record("csv.gz write", (t, m))
        t, m, _ = run(me + ["step-csvgz-read", csvgz])
        record("csv.gz read", (t, m))
        t, m, _ = run(me + ["step-csvgz-read", csvgz, DAY])
        record("csv.gz read 1 day", (t, m))

        t, m, _ = run(me + ["step-delta-write", src, delta])
        record("deltalake write", (t, m))
        t, m, _ = run(me + ["step-delta-read", delta])
        record("deltalake read", (t, m))
        t, m, _ = run(me + ["step-delta-read", delta, DAY])
        record("deltalake read 1 day", (t, m))
        print(f"   run {i + 1}: " + ", ".join(f"{k} {v[-1][0]:.2f}s" for k, v in results.items()))

    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in results.items()}
    print(f"\n== medians of {a.runs} run(s), {a.rows} rows")
    print(f"{'step':24} {'seconds':>9} {'peak RSS MiB':>13}")
    for k, (t, m) in med.items():
        print(f"{k:24} {t:9.2f} {m:13.0f}")
    sizes = {
        "tessera": du(table, ".parquet"),
        "csv.gz": du(csvgz, ".csv.gz"),
        "deltalake": du(delta, ".parquet"),
    }
    day_bytes = {
        "csv.gz": du(os.path.join(csvgz, "date", DAY)),
        "deltalake": du(os.path.join(delta, f"date={DAY}")),
    }
    print("\n== stored size, and what one day touches")
    for k, v in sizes.items():
        line = f"{k:10} {v / 1e6:9.1f} MB"
        if k in day_bytes:
            line += f"   one day: {day_bytes[k] / 1e3:.1f} KB = {100 * day_bytes[k] / v:.3f}% of the table"
        elif rep:
            line += (f"   one day: read {rep.group(1)} of {rep.group(2)} files, "
                     f"{rep.group(3)} of {rep.group(4)}")
        print(line)
    r = lambda a_, b_: med[a_][0] / med[b_][0]
    print("\n== ratios (higher = tessera faster)")
    print(f"read:  csv.gz / tessera    = {r('csv.gz read', 'tessera read'):6.1f}x   (goal >= 20x)")
    print(f"read:  deltalake / tessera = {r('deltalake read', 'tessera read'):6.2f}x   (goal >= 1x)")
    print(f"write: csv.gz / tessera    = {r('csv.gz write', 'tessera write'):6.1f}x")
    print(f"write: deltalake / tessera = {r('deltalake write', 'tessera write'):6.2f}x")
    print(f"1 day: csv.gz / tessera    = {r('csv.gz read 1 day', 'tessera read 1 day'):6.2f}x")
    print(f"1 day: deltalake / tessera = {r('deltalake read 1 day', 'tessera read 1 day'):6.2f}x")


if __name__ == "__main__":
    main()
