"""Run tessera and the re-created reference approach on the same keys and
print build time, peak RSS, manifest load time and lookup latency, with ratios."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl"


def run(cmd, **kw):
    """Run a command; return (seconds, peak RSS in MiB, stdout)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024, out


def median_runs(cmd, n):
    runs = [run(cmd) for _ in range(n)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--lookup", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="1000000 10000000")
    a = ap.parse_args()
    py = sys.executable
    rows = []
    for n in [int(s) for s in a.sizes.split()]:
        keys = os.path.join(a.out, f"keys-{n}.txt")
        queries = os.path.join(a.out, f"queries-{n}.tsv")
        if not os.path.exists(keys):
            print(f"== generating {n:,} keys", flush=True)
            subprocess.check_call([py, os.path.join(HERE, "gen.py"), str(n), keys, queries])
        size_mb = os.path.getsize(keys) / 1e6
        t_manifest = os.path.join(a.out, f"tessera-{n}.parquet")
        r_manifest = os.path.join(a.out, f"reference-{n}.parquet")
        reps = 5 if n <= 1_000_000 else 3
        print(f"== {n:,} keys ({size_mb:.0f} MB): tessera build x{reps}", flush=True)
        t_build, t_rss, _ = median_runs(
            [a.tessera, "manifest", "build", keys, "-o", t_manifest, "--template", TEMPLATE, "-q"], reps
        )
        print(f"== {n:,} keys: reference build x{min(reps, 3)}", flush=True)
        r_build, r_rss, _ = median_runs([py, os.path.join(HERE, "reference_build.py"), keys, r_manifest], min(reps, 3))
        print(f"== {n:,} keys: lookups", flush=True)
        t_look = json.loads(run([a.lookup, t_manifest, queries])[2])
        r_look = json.loads(run([py, os.path.join(HERE, "reference_lookup.py"), r_manifest, queries])[2])
        rows.append(
            dict(
                n=n,
                t_build=t_build, r_build=r_build, t_rss=t_rss, r_rss=r_rss,
                t_load=t_look["load_s"], r_load=r_look["load_s"],
                t_ns=t_look["lookup_ns"], t_pns=t_look["prepared_lookup_ns"], r_ns=r_look["lookup_ns"],
                t_size=os.path.getsize(t_manifest) / 1e6, r_size=os.path.getsize(r_manifest) / 1e6,
            )
        )
    print()
    print("manifest benchmark (medians; reference = regex + pandas + pyarrow build, DuckDB lookups)")
    hdr = f"{'keys':>11} | {'metric':<22} | {'tessera':>12} | {'reference':>12} | {'ratio':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        def line(metric, t, ref, unit, better_low=True):
            ratio = ref / t if better_low and t > 0 else (t / ref if ref else float("nan"))
            print(f"{r['n']:>11,} | {metric:<22} | {t:>10.3f}{unit:>2} | {ref:>10.3f}{unit:>2} | {ratio:>7.1f}x")
        line("build time", r["t_build"], r["r_build"], "s")
        line("build peak RSS", r["t_rss"], r["r_rss"], "MB")
        line("manifest size", r["t_size"], r["r_size"], "MB")
        line("load time", r["t_load"], r["r_load"], "s")
        line("lookup latency", r["t_ns"] / 1000, r["r_ns"] / 1000, "us")
        line("lookup (prepared)", r["t_pns"] / 1000, r["r_ns"] / 1000, "us")
    print("(ratio = reference / tessera: higher is better for tessera)")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
