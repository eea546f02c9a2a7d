"""tessera pack vs DuckDB COPY on the same CSV: time, memory, file sizes."""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time


def generate(land, gb, files=4):
    """About `gb` GB of CSV in `files` files: 8 columns of mixed types,
    quoted strings holding commas and quotes."""
    marker = os.path.join(land, f".done-{gb}")
    if os.path.exists(marker):
        return
    shutil.rmtree(land, ignore_errors=True)
    os.makedirs(land)
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    tails = []
    for i in range(100_000):
        customer = f'"{rng.choice(words)}, {rng.choice(words)} {rng.randint(1, 99999)}"'
        note = f'"{rng.choice(words)} said ""{rng.choice(words)}"", then {rng.randint(0, 10**6)}"'
        tails.append(
            f",{customer},{rng.random() * 1000:.2f},{rng.randint(1, 500)},"
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
            f"{'true' if rng.random() < 0.5 else 'false'},{rng.choice(words)},{note}\n"
        )
    target = gb * 1e9 / files
    row = 0
    for f in range(files):
        with open(os.path.join(land, f"part-{f}.csv"), "w") as out:
            out.write("id,customer,amount,qty,day,flag,category,note\n")
            written = 0
            while written < target:
                chunk = "".join(f"{row + k}{tails[(row + k) % 100_000]}" for k in range(200_000))
                row += 200_000
                out.write(chunk)
                written += len(chunk)
    open(marker, "w").close()


def run(cmd):
    """Run a command; return (seconds, peak RSS in MiB)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t
    err = p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def sizes(folder):
    return sorted(
        os.path.getsize(os.path.join(folder, f))
        for f in os.listdir(folder)
        if f.endswith(".parquet")
    )


def describe(name, files, limit):
    full = files if len(files) < 2 else sorted(files, reverse=True)[: len(files) - 1]
    devs = [(s - limit) / limit * 100 for s in full]
    worst = max(devs, key=abs) if devs else 0.0
    print(f"  {name}: {len(files)} files, sizes MB {[round(s / 1e6, 1) for s in sorted(files, reverse=True)]}")
    print(f"  {name}: non-last files deviate {min(devs, default=0):+.1f}% .. {max(devs, default=0):+.1f}% from the limit")
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=256_000_000)
    a = ap.parse_args()
    land = os.path.join(a.out, "land", "t")
    print(f"== generating about {a.gb} GB of CSV in {land}")
    generate(land, a.gb)
    total = sum(os.path.getsize(os.path.join(land, f)) for f in os.listdir(land) if f.endswith(".csv"))
    print(f"   {total / 1e9:.2f} GB in {len(os.listdir(land)) - 1} files; {os.cpu_count()} cores")

    t_runs, d_runs = [], []
    for i in range(a.runs):
        out_t = os.path.join(a.out, "tessera")
        shutil.rmtree(out_t, ignore_errors=True)
        t_runs.append(run([a.tessera, "pack", os.path.join(a.out, "land"), out_t, "t",
                           "--max-file-size", str(a.limit), "-q"]))
        out_d = os.path.join(a.out, "duckdb")
        shutil.rmtree(out_d, ignore_errors=True)
        sql = (f"COPY (SELECT * FROM read_csv('{land}/*.csv')) TO '{out_d}' "
               f"(FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES {a.limit})")
        d_runs.append(run([sys.executable, "-c", f"import duckdb; duckdb.sql({sql!r})"]))
        print(f"   run {i + 1}: tessera {t_runs[-1][0]:.2f} s {t_runs[-1][1]:.0f} MiB | "
              f"duckdb {d_runs[-1][0]:.2f} s {d_runs[-1][1]:.0f} MiB")

    tt = statistics.median(r[0] for r in t_runs)
    dt = statistics.median(r[0] for r in d_runs)
    tm = max(r[1] for r in t_runs)
    dm = max(r[1] for r in d_runs)
    print(f"\n== pack {total / 1e9:.2f} GB CSV -> snappy Parquet, limit {a.limit / 1e6:.0f} MB (median of {a.runs})")
    print(f"  tessera: {tt:6.2f} s  {total / tt / 1e6:6.0f} MB/s  peak RSS {tm:6.0f} MiB")
    print(f"  duckdb:  {dt:6.2f} s  {total / dt / 1e6:6.0f} MB/s  peak RSS {dm:6.0f} MiB (includes the Python interpreter)")
    print(f"  speed: tessera is {dt / tt:.2f}x DuckDB; memory: tessera uses {tm / dm:.2f}x DuckDB's")
    wt = describe("tessera", sizes(os.path.join(a.out, "tessera", "t")), a.limit)
    wd = describe("duckdb", sizes(os.path.join(a.out, "duckdb")), a.limit)
    print(f"  worst non-last deviation: tessera {wt:+.1f}%, duckdb {wd:+.1f}%")


if __name__ == "__main__":
    main()
