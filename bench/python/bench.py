"""The Python package against its Python peers, on the same generated data.

Run through bench/python/run.sh. Three parts, each selectable with --parts:

* ``datasets``: the 10-million-row table of bench/datasets (same generator),
  read into pandas with ``tessera.Datasets(store).get(name).to_pandas()``,
  with the reference tool's storage (100K-row csv.gz chunks per date folder,
  ``read_csv`` + ``concat``) and with ``deltalake`` (``DeltaTable.to_pandas``);
  into pyarrow (tessera ``get`` against ``to_pyarrow_table``); and one day of
  the year (a ``where=`` predicate on the date key, a partition filter for
  deltalake, one date folder for the csv.gz chunks).
* ``manifest``: the keys of bench/manifest (same generator), one
  ``Manifest.exists(gene_id=..., tissue_id=...)`` call per lookup from
  Python, against the reference tool's DuckDB lookup
  (bench/manifest/reference_lookup.py, run on fewer queries: it is slow).
* ``slices``: the FASTQ.gz of bench/slice (same generator), a 64-slice plan
  evaluated on a 2-worker Dask ``LocalCluster`` (processes), against fetching
  the same slices one after the other in one process, and against reading
  the whole file with Python's ``gzip`` module (and ``gzip -dc``). A
  ``multiprocessing`` pool of as many processes evaluates the same plan
  without Dask, to tell Dask's own cost per task from tessera's.

Every measured case is a fresh process (this file run as
``bench.py case NAME PARAMS``): its peak RSS comes from ``os.wait4`` and does
not mix with another case's. A case times its own work after its imports
(the "seconds" column); "wall" is the whole process, interpreter start and
imports included (pandas is imported before the clock in every read case,
pyarrow included: pyarrow imports pandas at its first table when pandas is
installed, about 0.2 s). Medians of --runs runs; the peak RSS is the largest
of the runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)

# The dataset part: the name bench/datasets stores the table under, and the
# day it reads.
DAY = "2023-06-15"
NAME = "bench/events"
# bench/manifest's template for its generated keys.
TEMPLATE = "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl"

Params = dict[str, Any]
Result = dict[str, Any]


def sibling(name: str) -> ModuleType:
    """Load bench/NAME/bench.py (its generators and the reference steps)."""
    path = os.path.join(BENCH, name, "bench.py")
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ================================================================ cases
# Each runs in its own process and returns a JSON-able dict; "seconds" is the
# measured work, imports excluded.


def case_ds_generate(p: Params) -> Result:
    """Generate bench/datasets' table as one Parquet file."""
    sibling("datasets").step_generate(p["path"], p["rows"])
    return {}


def case_ds_csvgz_write(p: Params) -> Result:
    """Store the table as the reference tool does: csv.gz chunks per date."""
    step = sibling("datasets").step_csvgz_write
    start = time.perf_counter()
    step(p["src"], p["root"])
    return {"seconds": time.perf_counter() - start}


def case_ds_delta_write(p: Params) -> Result:
    """Store the table with Python deltalake, partitioned by date."""
    step = sibling("datasets").step_delta_write
    start = time.perf_counter()
    step(p["src"], p["root"])
    return {"seconds": time.perf_counter() - start}


def case_ds_tessera_put(p: Params) -> Result:
    """Store the table with tessera.Datasets.put (as `tessera put` does in bench/datasets)."""
    import tessera

    start = time.perf_counter()
    tessera.Datasets(p["store"], single_writer=True).put(NAME, p["src"], date_key="date", version="bench")
    return {"seconds": time.perf_counter() - start}


def case_pd_tessera(p: Params) -> Result:
    """tessera.Datasets(store).get(name[, where=]).to_pandas()."""
    import pandas  # noqa: F401  (imported before the clock in every read case)
    import tessera

    start = time.perf_counter()
    df = tessera.Datasets(p["store"]).get(NAME, where=p.get("where")).to_pandas()
    return {"seconds": time.perf_counter() - start, "rows": len(df)}


def case_pd_csvgz(p: Params) -> Result:
    """The reference tool's read: read_csv of every 100K-row csv.gz chunk, then concat."""
    import glob

    import pandas as pd

    start = time.perf_counter()
    pattern = os.path.join(p["root"], "date", p.get("day") or "*", "*.csv.gz")
    df = pd.concat([pd.read_csv(f) for f in sorted(glob.glob(pattern))], ignore_index=True)
    return {"seconds": time.perf_counter() - start, "rows": len(df)}


def case_pd_delta(p: Params) -> Result:
    """deltalake: DeltaTable(path).to_pandas([partitions=])."""
    import pandas  # noqa: F401
    from deltalake import DeltaTable

    start = time.perf_counter()
    dt = DeltaTable(p["root"])
    day = p.get("day")
    df = dt.to_pandas(partitions=[("date", "=", day)]) if day else dt.to_pandas()
    return {"seconds": time.perf_counter() - start, "rows": len(df)}


def case_pa_tessera(p: Params) -> Result:
    """tessera.Datasets(store).get(name[, where=]) -> pyarrow.Table."""
    import pandas  # noqa: F401  (pyarrow imports it at its first table when installed)
    import pyarrow  # noqa: F401
    import tessera

    start = time.perf_counter()
    table = tessera.Datasets(p["store"]).get(NAME, where=p.get("where"))
    return {"seconds": time.perf_counter() - start, "rows": table.num_rows}


def case_pa_delta(p: Params) -> Result:
    """deltalake: DeltaTable(path).to_pyarrow_table([partitions=])."""
    import pandas  # noqa: F401  (pyarrow imports it at its first table when installed)
    import pyarrow  # noqa: F401
    from deltalake import DeltaTable

    start = time.perf_counter()
    dt = DeltaTable(p["root"])
    day = p.get("day")
    table = dt.to_pyarrow_table(partitions=[("date", "=", day)]) if day else dt.to_pyarrow_table()
    return {"seconds": time.perf_counter() - start, "rows": table.num_rows}


def read_queries(path: str) -> list[tuple[str, int]]:
    """bench/manifest's queries file: gene_id TAB tissue_id per line."""
    out = []
    with open(path) as f:
        for line in f:
            gene, tissue = line.rstrip("\n").split("\t")
            out.append((gene, int(tissue)))
    return out


def case_mf_build(p: Params) -> Result:
    """tessera.build_manifest over bench/manifest's paths file."""
    import tessera

    start = time.perf_counter()
    report = tessera.build_manifest(p["keys"], p["out"], TEMPLATE)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "report": json.loads(json.dumps(dict(report), default=str))}


def _noop(**fields: Any) -> bool:
    """The cheapest Python call with the same keywords as a lookup."""
    return False


def case_mf_lookup(p: Params) -> Result:
    """Manifest.open, then exists() / location() once per query, from Python."""
    import tessera

    queries = read_queries(p["queries"])
    n = p["lookups"]
    qs = (queries * (n // len(queries) + 1))[:n]
    start = time.perf_counter()
    m = tessera.Manifest.open(p["manifest"])
    load = time.perf_counter() - start
    exists, location = m.exists, m.location
    # The same first queries the DuckDB peer answers, to compare hits.
    check_hits = sum(1 for g, t in queries[: p["check"]] if exists(gene_id=g, tissue_id=t))

    def rounds(fn: Callable[..., Any], test: Callable[[Any], bool]) -> tuple[float, int]:
        per_call, hits = [], 0
        for _ in range(p["rounds"]):
            hits = 0
            t0 = time.perf_counter()
            for g, t in qs:
                if test(fn(gene_id=g, tissue_id=t)):
                    hits += 1
            per_call.append((time.perf_counter() - t0) / n * 1e6)
        return statistics.median(per_call), hits

    truthy: Callable[[Any], bool] = bool
    exists_us, hits = rounds(exists, truthy)
    location_us, loc_hits = rounds(location, lambda r: r is not None)
    floor_us, _ = rounds(_noop, truthy)
    return {
        "seconds": exists_us,
        "load_s": load,
        "exists_us": exists_us,
        "location_us": location_us,
        "floor_us": floor_us,
        "hits": hits,
        "location_hits": loc_hits,
        "check_hits": check_hits,
        "lookups": n,
        "records": len(m),
    }


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def case_sl_index(p: Params) -> Result:
    """tessera.index of the FASTQ.gz (saved beside it)."""
    import tessera

    start = time.perf_counter()
    tessera.index(p["gz"])
    return {"seconds": time.perf_counter() - start}


def case_sl_gzip(p: Params) -> Result:
    """The whole file through Python's gzip module, 4 MiB reads."""
    import gzip

    total = 0
    cpu, start = _cpu_s(), time.perf_counter()
    with gzip.open(p["gz"], "rb") as f:
        while chunk := f.read(1 << 22):
            total += len(chunk)
    return {"seconds": time.perf_counter() - start, "cpu": _cpu_s() - cpu, "bytes": total}


def case_sl_plan_fetch(p: Params) -> Result:
    """A plan of p["count"] slices, every slice fetched in this process, in order."""
    import tessera

    start = time.perf_counter()
    slices = tessera.plan(p["gz"], count=p["count"])
    plan_s = time.perf_counter() - start
    total = 0
    cpu, start = _cpu_s(), time.perf_counter()
    for s in slices:
        total += len(s.fetch())
    return {"seconds": time.perf_counter() - start, "cpu": _cpu_s() - cpu, "plan_s": plan_s,
            "bytes": total, "slices": len(slices)}


def _fetch_len(s: Any) -> int:
    """Dask task: fetch one slice on the worker, return its size (not its bytes)."""
    return len(s.fetch())


def _import_tessera() -> None:
    """Import the package on a worker before the clock starts."""
    import tessera  # noqa: F401


def _peak_rss_mib() -> float:
    """This process's peak RSS in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fetch_len_cpu(s: Any) -> tuple[int, float]:
    """Pool task: fetch one slice, return its size and the CPU seconds the fetch took."""
    cpu = _cpu_s()
    n = len(s.fetch())
    return n, _cpu_s() - cpu


def _import_tessera_in_pool(_: int) -> None:
    """Import the package in a pool process before the clock starts."""
    _import_tessera()


def case_sl_pool(p: Params) -> Result:
    """The plan evaluated on a multiprocessing (spawn) pool: Dask's work without Dask."""
    import multiprocessing

    import tessera

    slices = tessera.plan(p["gz"], count=p["count"])
    with multiprocessing.get_context("spawn").Pool(p["workers"]) as pool:
        pool.map(_import_tessera_in_pool, range(p["workers"]), chunksize=1)
        cpu, start = _cpu_s(), time.perf_counter()
        done = pool.map(_fetch_len_cpu, slices, chunksize=1)
        seconds = time.perf_counter() - start
        driver_cpu = _cpu_s() - cpu
    tasks_cpu = sum(c for _, c in done)
    return {"seconds": seconds, "cpu": driver_cpu + tasks_cpu, "driver_cpu": driver_cpu, "tasks_cpu": tasks_cpu,
            "bytes": sum(n for n, _ in done), "slices": len(slices)}


def case_sl_dask(p: Params) -> Result:
    """The plan evaluated on a 2-worker Dask LocalCluster (one process and thread each)."""
    import logging
    import pickle

    from distributed import Client, LocalCluster

    import tessera

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=p["workers"], processes=True, threads_per_worker=1,
        host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    client.run(_import_tessera)
    cluster_s = time.perf_counter() - start
    start = time.perf_counter()
    slices = tessera.plan(p["gz"], count=p["count"])
    plan_s = time.perf_counter() - start
    pickled = len(pickle.dumps(slices))
    workers_cpu = client.run(_cpu_s)
    cpu, start = _cpu_s(), time.perf_counter()
    futures = client.map(_fetch_len, slices, pure=False)
    total = sum(client.gather(futures))
    seconds = time.perf_counter() - start
    driver_cpu = _cpu_s() - cpu
    workers_cpu = {k: v - workers_cpu[k] for k, v in client.run(_cpu_s).items()}
    workers = sorted(client.run(_peak_rss_mib).values())
    client.close()
    cluster.close()
    return {
        "seconds": seconds, "plan_s": plan_s, "cluster_s": cluster_s, "bytes": total,
        "cpu": driver_cpu + sum(workers_cpu.values()), "driver_cpu": driver_cpu,
        "workers_cpu": sorted(workers_cpu.values()),
        "slices": len(slices), "pickled": pickled, "workers_rss": workers, "driver_rss": _peak_rss_mib(),
    }


CASES: dict[str, Callable[[Params], Result]] = {
    name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_") and callable(fn)
}


# ================================================================ measuring


@dataclass
class Run:
    """One finished process: wall seconds, peak RSS (MiB) and its result."""

    wall: float
    rss: float
    cpu: float
    result: Result = field(default_factory=dict)


def spawn(cmd: list[str], capture: bool = True) -> tuple[Run, str]:
    """Run a command to its end; its peak RSS comes from wait4 (itself and the children it reaped).

    With capture=False its standard output goes to /dev/null (and "" is returned for it).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out if capture else subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if code != 0:
        sys.exit(f"command failed ({code}): {' '.join(cmd)}\n{stderr[-4000:]}")
    return Run(wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime), stdout


def case(name: str, **params: Any) -> Run:
    """Run one case in a fresh interpreter."""
    run, stdout = spawn([sys.executable, os.path.abspath(__file__), "case", name, json.dumps(params)])
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        sys.exit(f"case {name} printed no result:\n{stdout[-2000:]}")
    run.result = json.loads(lines[-1][len("RESULT "):])
    return run


class Table:
    """Runs of named cases, summarised as medians (peak RSS: the largest run)."""

    def __init__(self) -> None:
        self.runs: dict[str, list[Run]] = {}

    def add(self, label: str, run: Run) -> Run:
        """Record one run of the case `label`."""
        self.runs.setdefault(label, []).append(run)
        return run

    def seconds(self, label: str) -> float:
        """Median of the case's own measured seconds (the process wall time if it has none)."""
        return statistics.median(r.result.get("seconds", r.wall) for r in self.runs[label])

    def wall(self, label: str) -> float:
        """Median wall time of the case's processes."""
        return statistics.median(r.wall for r in self.runs[label])

    def cpu(self, label: str) -> float:
        """Median CPU seconds of the case's own work (the whole process's if it has none)."""
        return statistics.median(r.result.get("cpu", r.cpu) for r in self.runs[label])

    def rss(self, label: str) -> float:
        """Largest peak RSS of the case's processes, MiB."""
        return max(r.rss for r in self.runs[label])

    def last(self, label: str) -> Result:
        """The last run's result."""
        return self.runs[label][-1].result

    def print(self, extra: Callable[[str], str] | None = None) -> None:
        """One line per case: seconds, wall, peak RSS (and an extra column)."""
        print(f"  {'case':58} {'seconds':>9} {'wall s':>8} {'peak RSS MiB':>13}")
        for label in self.runs:
            tail = f"  {extra(label)}" if extra else ""
            print(f"  {label:58} {self.seconds(label):9.3f} {self.wall(label):8.2f} {self.rss(label):13.0f}{tail}")

    def ratio(self, what: str, peer: str, ours: str) -> None:
        """Print peer / tessera for time and for peak RSS (higher = tessera better)."""
        t = self.seconds(peer) / self.seconds(ours)
        m = self.rss(peer) / self.rss(ours)
        print(f"  {what:58} time {t:7.2f}x   peak RSS {m:6.2f}x")


FAILURES: list[str] = []


def check(what: str, values: dict[str, Any]) -> None:
    """Every tool must have returned the same number (rows, bytes, hits)."""
    if len(set(values.values())) != 1:
        FAILURES.append(f"{what} differ: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def note(msg: str) -> None:
    """A progress line."""
    print(msg, flush=True)


# ================================================================ parts


def part_datasets(a: argparse.Namespace) -> None:
    """Reads into pandas and pyarrow: tessera, csv.gz chunks, deltalake."""
    rows = a.rows
    src = os.path.join(a.out, f"input-{rows}.parquet")
    if not os.path.exists(src):
        note(f"== generating {rows:,} rows (bench/datasets' generator) into {src}")
        case("ds_generate", path=src + ".tmp", rows=rows)
        os.rename(src + ".tmp", src)
    note(f"== datasets: {rows:,} rows, {os.path.getsize(src) / 1e6:.0f} MB Parquet; one day = {DAY}")

    setup = Table()
    store = os.path.join(a.out, "tessera-store")
    shutil.rmtree(store, ignore_errors=True)
    note("   storing with tessera.Datasets.put")
    setup.add("tessera Datasets.put (date_key=date)", case("ds_tessera_put", store=store, src=src))
    # The peers' copies do not depend on tessera: kept between invocations.
    csvgz = os.path.join(a.out, f"csvgz-{rows}")
    delta = os.path.join(a.out, f"delta-{rows}")
    for label, name, root in (
        ("csv.gz chunks (pandas to_csv)", "ds_csvgz_write", csvgz),
        ("deltalake write_deltalake (partition_by=date)", "ds_delta_write", delta),
    ):
        if not os.path.exists(root + ".complete"):
            note(f"   storing with {label}")
            shutil.rmtree(root, ignore_errors=True)
            setup.add(label, case(name, src=src, root=root))
            open(root + ".complete", "w").close()
        else:
            note(f"   reusing {root}")

    where = f"date = '{DAY}'"
    pd_full = {
        "pandas: tessera get().to_pandas()": ("pd_tessera", {"store": store}),
        "pandas: csv.gz chunks read_csv + concat": ("pd_csvgz", {"root": csvgz}),
        "pandas: deltalake DeltaTable.to_pandas()": ("pd_delta", {"root": delta}),
    }
    pa_full = {
        "pyarrow: tessera get()": ("pa_tessera", {"store": store}),
        "pyarrow: deltalake to_pyarrow_table()": ("pa_delta", {"root": delta}),
    }
    pa_day = {
        "1 day, pyarrow: tessera get(where=)": ("pa_tessera", {"store": store, "where": where}),
        "1 day, pyarrow: deltalake to_pyarrow_table(partitions=)": ("pa_delta", {"root": delta, "day": DAY}),
    }
    pd_day = {
        "1 day, pandas: tessera get(where=).to_pandas()": ("pd_tessera", {"store": store, "where": where}),
        "1 day, pandas: csv.gz chunks of the day's folder": ("pd_csvgz", {"root": csvgz, "day": DAY}),
        "1 day, pandas: deltalake to_pandas(partitions=)": ("pd_delta", {"root": delta, "day": DAY}),
    }
    cli = a.tessera if a.tessera and os.access(a.tessera, os.X_OK) else None
    cli_label = "pyarrow: tessera CLI get --format arrow > /dev/null"
    t = Table()
    for i in range(a.runs):
        for group in (pd_full, pa_full, pa_day, pd_day):
            for label, (name, params) in group.items():
                t.add(label, case(name, **params))
        if cli:
            t.add(cli_label, spawn([cli, "get", NAME, "--format", "arrow", "--store", store], capture=False)[0])
        note(f"   run {i + 1}: " + ", ".join(f"{k.split(': ', 1)[-1]} {v[-1].result.get('seconds', v[-1].wall):.2f}s"
                                            for k, v in t.runs.items()))

    for group in (pd_full, pa_full):
        check("full-read rows", {k: t.last(k)["rows"] for k in group} | {"generated": rows})
    check("one-day rows", {k: t.last(k)["rows"] for k in (*pa_day, *pd_day)})

    print("\n== datasets: setup (one run each; the peers' copies are reused when present)")
    setup.print()
    print(f"\n== datasets: medians of {a.runs} run(s), {rows:,} rows ({t.last(list(pa_day)[0])['rows']:,} on {DAY})")
    print("  (seconds: the read in the process, imports excluded; wall: the whole process)")
    t.print()
    print("\n== datasets: ratios (peer / tessera; higher = tessera faster or smaller)")
    k = list(pd_full)
    t.ratio("pandas: csv.gz chunks / tessera", k[1], k[0])
    t.ratio("pandas: deltalake / tessera", k[2], k[0])
    k = list(pa_full)
    t.ratio("pyarrow: deltalake / tessera", k[1], k[0])
    if cli:
        print(f"  {'pyarrow: Python get() process / CLI get process (wall)':58} "
              f"{t.wall(k[0]) / t.wall(cli_label):7.2f}x   (above 1: the Python route is slower)")
    k = list(pa_day)
    t.ratio("1 day, pyarrow: deltalake / tessera", k[1], k[0])
    k = list(pd_day)
    t.ratio("1 day, pandas: csv.gz chunks / tessera", k[1], k[0])
    t.ratio("1 day, pandas: deltalake / tessera", k[2], k[0])


def part_manifest(a: argparse.Namespace) -> None:
    """Manifest lookups from Python against the reference tool's DuckDB lookups."""
    n = a.keys
    here = os.path.join(BENCH, "manifest")
    keys = os.path.join(a.out, f"keys-{n}.txt")
    queries = os.path.join(a.out, f"queries-{n}.tsv")
    if not os.path.exists(keys):
        note(f"== generating {n:,} keys (bench/manifest's generator)")
        subprocess.check_call([sys.executable, os.path.join(here, "gen.py"), str(n), keys + ".tmp", queries])
        os.rename(keys + ".tmp", keys)
    # reference_lookup.py answers the first 20,000 queries of its file at most.
    peer_n = min(a.peer_lookups, 20_000)
    peer_queries = os.path.join(a.out, f"queries-{n}-first-{peer_n}.tsv")
    with open(queries) as f, open(peer_queries, "w") as out:
        for i, line in zip(range(peer_n), f):
            out.write(line)
    note(f"== manifest: {n:,} keys; tessera: {a.lookups:,} lookups x {a.rounds} rounds; "
         f"DuckDB: {peer_n:,} lookups x 3 rounds")

    t_manifest = os.path.join(a.out, f"tessera-{n}.parquet")
    r_manifest = os.path.join(a.out, f"reference-{n}.parquet")
    setup = Table()
    note("   building with tessera.build_manifest")
    setup.add("tessera build_manifest", case("mf_build", keys=keys, out=t_manifest))
    if not os.path.exists(r_manifest):
        note("   building the reference manifest (bench/manifest/reference_build.py)")
        setup.add("reference build (regex + pandas + pyarrow)",
                  spawn([sys.executable, os.path.join(here, "reference_build.py"), keys, r_manifest])[0])

    t = Table()
    ours, peer = "tessera Manifest.exists()", "DuckDB parameterised SELECT (reference)"
    for i in range(a.runs):
        t.add(ours, case("mf_lookup", manifest=t_manifest, queries=queries, lookups=a.lookups,
                         check=peer_n, rounds=a.rounds))
        run, stdout = spawn([sys.executable, os.path.join(here, "reference_lookup.py"), r_manifest, peer_queries])
        run.result = json.loads(stdout.strip().splitlines()[-1])
        run.result["seconds"] = run.result["lookup_ns"] / 1000
        t.add(peer, run)
        note(f"   run {i + 1}: tessera {t.runs[ours][-1].result['exists_us']:.2f} us, "
             f"DuckDB {run.result['seconds']:.1f} us per lookup")
    check(f"hits over the first {peer_n:,} queries",
          {"tessera": t.last(ours)["check_hits"], "DuckDB": t.last(peer)["hits"]})
    check("exists() and location() hits", {"exists": t.last(ours)["hits"], "location": t.last(ours)["location_hits"]})

    med = lambda label, key: statistics.median(r.result[key] for r in t.runs[label])  # noqa: E731
    print("\n== manifest: setup (one run each; the reference manifest is reused when present)")
    setup.print()
    print(f"\n== manifest: medians of {a.runs} run(s), {n:,} keys ({t.last(ours)['records']:,} records)")
    print(f"  {'':50} {'tessera':>14} {'DuckDB':>14} {'ratio':>9}")

    def line(metric: str, ours_v: float, peer_v: float, unit: str, digits: int = 3) -> None:
        print(f"  {metric:50} {ours_v:10.{digits}f} {unit:<3} {peer_v:10.{digits}f} {unit:<3} {peer_v / ours_v:8.1f}x")

    line("open / load (Manifest.open; CREATE TABLE + INDEX)", med(ours, "load_s"), med(peer, "load_s"), "s")
    line("exists() per call vs one SELECT", med(ours, "exists_us"), t.seconds(peer), "us")
    line("location() per call vs one SELECT", med(ours, "location_us"), t.seconds(peer), "us")
    line("peak RSS of the lookup process", t.rss(ours), t.rss(peer), "MiB", 0)
    print(f"  (a Python loop calling a no-op with the same keywords: {med(ours, 'floor_us'):.3f} us per call; "
          f"hits: {t.last(ours)['hits']:,} of {a.lookups:,})")
    print("  (ratio = DuckDB / tessera: higher = tessera faster or smaller)")


def part_slices(a: argparse.Namespace) -> None:
    """A 64-slice plan of a FASTQ.gz on a 2-worker Dask cluster, sequentially, and gzip."""
    gz = os.path.join(a.out, f"reads-{a.fastq_mb}MB.fastq.gz")
    if not os.path.exists(gz):
        fq = gz[: -len(".gz")]
        note(f"== generating a {a.fastq_mb} MB FASTQ (bench/slice's generator) and compressing it (-6)")
        reads = sibling("slice").gen_fastq(fq, a.fastq_mb)
        tool = "pigz" if shutil.which("pigz") else "gzip"
        with open(gz + ".tmp", "wb") as out:
            subprocess.run([tool, "-6", "-c", fq], stdout=out, check=True)
        os.rename(gz + ".tmp", gz)
        os.remove(fq)
        note(f"   {reads:,} reads")
    gz_mb = os.path.getsize(gz) / 1e6
    note(f"== slices: {os.path.basename(gz)}, {gz_mb:.0f} MB compressed; {a.slices} slices; "
         f"Dask LocalCluster(n_workers={a.workers}, processes=True, threads_per_worker=1)")

    setup = Table()
    note("   indexing with tessera.index")
    setup.add("tessera.index", case("sl_index", gz=gz))

    labels = {
        "py_gzip": "whole file: Python gzip module",
        "gzip": "whole file: gzip -dc > /dev/null",
        "whole": "whole file: tessera 1-slice plan, fetch()",
        "seq": f"{a.slices} slices, fetch() one after another, 1 process",
        "dask": f"{a.slices} slices, Dask LocalCluster, {a.workers} workers",
        "pool": f"{a.slices} slices, multiprocessing Pool({a.workers}) (no Dask)",
    }
    have_gzip = shutil.which("gzip") is not None
    t = Table()
    for i in range(a.runs):
        t.add(labels["py_gzip"], case("sl_gzip", gz=gz))
        if have_gzip:
            t.add(labels["gzip"], spawn(["gzip", "-dc", gz], capture=False)[0])
        t.add(labels["whole"], case("sl_plan_fetch", gz=gz, count=1))
        t.add(labels["seq"], case("sl_plan_fetch", gz=gz, count=a.slices))
        t.add(labels["dask"], case("sl_dask", gz=gz, count=a.slices, workers=a.workers))
        t.add(labels["pool"], case("sl_pool", gz=gz, count=a.slices, workers=a.workers))
        note(f"   run {i + 1}: " + ", ".join(f"{k.split(': ', 1)[-1]} {v[-1].result.get('seconds', v[-1].wall):.2f}s"
                                            for k, v in t.runs.items()))
    check("decompressed bytes", {k: t.last(labels[k])["bytes"] for k in ("py_gzip", "whole", "seq", "dask", "pool")})
    # count= asks for about that many slices: both cases planned the same ones.
    check("slice count", {"sequential": t.last(labels["seq"])["slices"], "dask": t.last(labels["dask"])["slices"]})

    print("\n== slices: setup (one run)")
    setup.print()
    print(f"\n== slices: medians of {a.runs} run(s); {gz_mb:.0f} MB compressed, "
          f"{t.last(labels['seq'])['bytes'] / 1e6:.0f} MB of records; the plan for count={a.slices} "
          f"has {t.last(labels['seq'])['slices']} slices")
    print("  (seconds: the read in the process, plan and cluster start excluded; wall: the whole process)")
    t.print(lambda label: f"{gz_mb / t.seconds(label):7.0f} MB/s compressed, {t.cpu(label):6.2f} CPU s")
    print("  (CPU s: of the timed work; the pool's counts its tasks' fetches and the driver, not the pool's own "
          "plumbing in the workers; gzip -dc's is the whole process)")
    d = t.last(labels["dask"])
    dask_runs = t.runs[labels["dask"]]
    print(f"  Dask: cluster start {statistics.median(r.result['cluster_s'] for r in dask_runs):.2f} s, "
          f"plan {d['plan_s'] * 1000:.1f} ms, the plan pickles to {d['pickled'] / 1024:.0f} KiB; "
          f"peak RSS driver {d['driver_rss']:.0f} MiB, workers "
          + " + ".join(f"{w:.0f}" for w in d["workers_rss"])
          + f" MiB (all processes: {d['driver_rss'] + sum(d['workers_rss']):.0f} MiB); CPU s driver "
          + f"{d['driver_cpu']:.2f} (scheduler and client), workers "
          + " + ".join(f"{w:.2f}" for w in d["workers_cpu"]))
    print("\n== slices: speed-ups (time of the first / time of the second)")
    sec = t.seconds
    pairs = [("sequential slices / Dask", "seq", "dask"), ("Python gzip whole file / Dask", "py_gzip", "dask")]
    if have_gzip:
        pairs.append(("gzip -dc whole file / Dask", "gzip", "dask"))
    pairs += [("tessera 1-slice whole file / Dask", "whole", "dask"),
              ("sequential slices / multiprocessing Pool (no Dask)", "seq", "pool"),
              ("Python gzip whole file / sequential slices", "py_gzip", "seq")]
    for what, first, second in pairs:
        print(f"  {what:52} {sec(labels[first]) / sec(labels[second]):6.2f}x")


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "datasets": part_datasets,
    "manifest": part_manifest,
    "slices": part_slices,
}


def main() -> None:
    """Run a case (`bench.py case NAME PARAMS`) or the benchmark."""
    if len(sys.argv) > 1 and sys.argv[1] == "case":
        result = CASES[sys.argv[2]](json.loads(sys.argv[3]))
        print("RESULT " + json.dumps(result), flush=True)
        sys.stderr.flush()
        # deltalake's background runtime can abort the interpreter at exit
        # (see bench/datasets); the case is done.
        os._exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the generated data and the stores")
    ap.add_argument("--tessera", help="the tessera CLI binary (an extra reference row); optional")
    ap.add_argument("--parts", default="datasets manifest slices", help="any of: " + " ".join(PARTS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the dataset table")
    ap.add_argument("--keys", type=int, default=1_000_000, help="keys of the manifest")
    ap.add_argument("--lookups", type=int, default=1_000_000, help="tessera lookups per round")
    ap.add_argument("--rounds", type=int, default=3, help="tessera lookup rounds per process (median)")
    ap.add_argument("--peer-lookups", type=int, default=10_000, help="DuckDB lookups per round (at most 20,000)")
    ap.add_argument("--fastq-mb", type=int, default=1000, help="size of the FASTQ before compression")
    ap.add_argument("--slices", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    parts = a.parts.replace(",", " ").split()
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        ap.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    if a.runs < 1 or min(a.rows, a.keys, a.lookups, a.rounds, a.peer_lookups, a.fastq_mb, a.slices, a.workers) < 1:
        ap.error("sizes and counts must be at least 1")
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    print(f"== python {sys.version.split()[0]}; output in {a.out}; parts: {' '.join(parts)}", flush=True)
    for p in parts:
        PARTS[p](a)
        print(flush=True)
    if FAILURES:
        print("== CHECKS FAILED (the tools did not return the same data):")
        for f in FAILURES:
            print("  " + f)
        sys.exit(1)
    print("== checks: every tool returned the same rows / bytes / hits")


if __name__ == "__main__":
    main()
