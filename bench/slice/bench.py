#!/usr/bin/env python3
"""Slicing benchmark: tessera against gztool (gzip indexing) and samtools
faidx (FASTA indexing), and fetching 64 slices against reading the whole
file. See run.sh."""

import argparse
import concurrent.futures
import os
import random
import statistics
import subprocess
import sys
import time


def run(cmd, stdout=subprocess.DEVNULL):
    """Run a command; return (seconds, peak RSS in MB)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if status != 0:
        sys.exit(f"failed ({status}): {' '.join(cmd)}\n{err}")
    return seconds, usage.ru_maxrss / 1024


def median_run(label, cmd, runs, before=None):
    times, rss = [], []
    for _ in range(runs):
        if before:
            before()
        t, m = run(cmd)
        times.append(t)
        rss.append(m)
    t = statistics.median(times)
    print(f"  {label:44s} {t:8.2f} s  peak {max(rss):7.0f} MB", flush=True)
    return t


def rm(*paths):
    def go():
        for p in paths:
            if os.path.exists(p):
                os.remove(p)
    return go


def gen_fastq(path, mb):
    rnd = random.Random(1)
    table = bytes.maketrans(bytes(range(256)), b"ACGT" * 64)
    qtable = bytes.maketrans(bytes(range(256)), bytes(33 + (i % 41) for i in range(256)))
    target = mb * 1_000_000
    written = 0
    i = 0
    with open(path, "wb", buffering=1 << 22) as f:
        while written < target:
            chunk = []
            for _ in range(10000):
                n = rnd.randint(100, 150)
                raw = rnd.randbytes(n)
                rec = b"@read%d/1 length=%d\n%s\n+\n%s\n" % (i, n, raw.translate(table), rnd.randbytes(n).translate(qtable))
                chunk.append(rec)
                i += 1
            data = b"".join(chunk)
            f.write(data)
            written += len(data)
    return i


def gen_fasta(path, mb):
    rnd = random.Random(2)
    table = bytes.maketrans(bytes(range(256)), b"ACGT" * 64)
    target = mb * 1_000_000
    written = 0
    k = 0
    with open(path, "wb", buffering=1 << 22) as f:
        while written < target:
            n = rnd.randint(1_000_000, 5_000_000)
            seq = rnd.randbytes(n).translate(table)
            lines = [b">seq%d chromosome-like sequence %d\n" % (k, k)]
            lines += [seq[j:j + 60] + b"\n" for j in range(0, n, 60)]
            data = b"".join(lines)
            f.write(data)
            written += len(data)
            k += 1
    return k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fastq-mb", type=int, default=1000)
    ap.add_argument("--fasta-mb", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    T = a.tessera
    os.makedirs(a.out, exist_ok=True)
    fq = os.path.join(a.out, f"reads-{a.fastq_mb}MB.fastq")
    gz = fq + ".gz"
    fa = os.path.join(a.out, f"genome-{a.fasta_mb}MB.fa")

    if not os.path.exists(gz):
        print(f"== generating a {a.fastq_mb} MB FASTQ and gzip-compressing it (pigz -6)", flush=True)
        n = gen_fastq(fq, a.fastq_mb)
        with open(gz + ".tmp", "wb") as out:
            subprocess.run(["pigz", "-6", "-c", fq], stdout=out, check=True)
        os.rename(gz + ".tmp", gz)
        os.remove(fq)
        print(f"   {n} reads", flush=True)
    if not os.path.exists(fa):
        print(f"== generating a {a.fasta_mb} MB multi-sequence FASTA", flush=True)
        k = gen_fasta(fa + ".tmp", a.fasta_mb)
        os.rename(fa + ".tmp", fa)
        print(f"   {k} sequences", flush=True)

    gz_mb = os.path.getsize(gz) / 1e6
    fa_mb = os.path.getsize(fa) / 1e6
    print(f"\n== input: {os.path.basename(gz)} {gz_mb:.0f} MB compressed; {os.path.basename(fa)} {fa_mb:.0f} MB; {a.runs} runs, medians")

    print("\n== indexing the FASTQ.gz")
    gzi = gz + "i"
    tidx = gz + ".tessera-index.json"
    one = ["taskset", "-c", "0"]
    t_gztool = median_run("gztool -i -x", ["gztool", "-i", "-x", "-f", gz], a.runs, rm(gzi))
    t_tess1 = median_run("tessera index, one core (taskset -c 0)", one + [T, "index", gz, "-q"], a.runs, rm(tidx))
    t_tess = median_run("tessera index, two cores (inflate | scan)", [T, "index", gz, "-q"], a.runs, rm(tidx))
    t_tess10 = median_run("tessera index --spacing 10MiB (gztool's span)", [T, "index", gz, "-q", "--spacing", "10MiB"], a.runs, rm(tidx))

    print("\n== indexing the FASTA")
    fai = fa + ".fai"
    t_sam = median_run("samtools faidx", ["samtools", "faidx", fa], a.runs, rm(fai))
    t_tfa = median_run("tessera index --fai", [T, "index", fa, "--fai", "-q"], a.runs, rm(fai))
    t_tfa1 = median_run("tessera index --fai, one core", one + [T, "index", fa, "--fai", "-q"], a.runs, rm(fai))

    print("\n== fetching every slice of a 64-slice plan (the FASTQ.gz)")
    run([T, "index", gz, "-q"])
    s64 = os.path.join(a.out, "slices-64.json")
    s1 = os.path.join(a.out, "slices-1.json")
    run([T, "slice", gz, "--count", "64", "-o", s64])
    run([T, "slice", gz, "--count", "1", "-o", s1])
    t_gunzip = median_run("whole file: gzip -dc", ["gzip", "-dc", gz], a.runs)
    t_whole = median_run("whole file: tessera slice get (1-slice plan)", [T, "slice", "get", s1, "--slice", "0"], a.runs)

    def all_slices(workers):
        def go():
            with concurrent.futures.ThreadPoolExecutor(workers) as ex:
                list(ex.map(lambda i: run([T, "slice", "get", s64, "--slice", str(i)]), range(64)))
        times = []
        for _ in range(a.runs):
            start = time.perf_counter()
            go()
            times.append(time.perf_counter() - start)
        t = statistics.median(times)
        print(f"  {'64 slices, ' + str(workers) + ' worker(s)':44s} {t:8.2f} s", flush=True)
        return t

    starts = []
    for _ in range(30):
        start = time.perf_counter()
        subprocess.run([T, "--version"], stdout=subprocess.DEVNULL, check=True)
        starts.append(time.perf_counter() - start)
    t_start = statistics.median(starts)
    print(f"  {'one process start (tessera --version, 30 runs)':44s} {t_start * 1000:8.1f} ms", flush=True)

    t_s1 = all_slices(1)
    t_s2 = all_slices(2)

    print("\n== results (medians)")
    print(f"  gzip index:  gztool {gz_mb / t_gztool:6.0f} MB/s   tessera one core {gz_mb / t_tess1:6.0f} MB/s ({t_gztool / t_tess1:.2f}x)"
          f"   two cores {gz_mb / t_tess:6.0f} MB/s ({t_gztool / t_tess:.2f}x)   same span as gztool {gz_mb / t_tess10:.0f} MB/s ({t_gztool / t_tess10:.2f}x)")
    print(f"  FASTA index: samtools {fa_mb / t_sam:6.0f} MB/s   tessera {fa_mb / t_tfa:6.0f} MB/s ({t_sam / t_tfa:.2f}x), one core {fa_mb / t_tfa1:6.0f} MB/s ({t_sam / t_tfa1:.2f}x)")
    print(f"  64 slices vs one sequential read of the whole file (compressed MB/s):")
    print(f"    sequential gzip -dc {gz_mb / t_gunzip:6.0f}   tessera 1 slice {gz_mb / t_whole:6.0f}")
    print(f"    64 slices, 1 worker {gz_mb / t_s1:6.0f} ({t_gunzip / t_s1:.0%} of gzip -dc, {t_whole / t_s1:.0%} of tessera's whole-file read)")
    print(f"    of which process starts: 64 x {t_start * 1000:.1f} ms = {64 * t_start:.2f} s")
    print(f"    64 slices, 2 workers {gz_mb / t_s2:5.0f} ({t_gunzip / t_s2:.0%} of gzip -dc, {t_whole / t_s2:.0%} of tessera's whole-file read)")


if __name__ == "__main__":
    main()
