#!/usr/bin/env python3
"""Helpers of bench/load/run.sh (standard library only).

  load.py requests URL OUT        the request mix for mixed.lua (OUT.tsv) and its
                                  description (OUT.json); every distinct request is
                                  sent once first and must answer as its kind says
  load.py report ...              read wrk's output, /metrics before and after, the
                                  RSS samples and the drain check; print the summary
                                  table; exit 1 if a check failed
  load.py drain ...               the drain check: a server under load gets SIGTERM
                                  while requests are in flight (see cmd_drain())
  load.py stall ...               SIGTERM while a client has stopped reading a streamed
                                  answer: is the exit still bounded?
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# -- the request mix -----------------------------------------------------------


@dataclass
class Req:
    """One request of the mix."""

    kind: str  # "ok": must succeed; "bad": a deliberate client mistake (4xx)
    method: str
    path: str
    route: str  # the route label tessera's /metrics uses
    body: str = ""
    weight: int = 1


def q(**params: Any) -> str:
    """A query string (repeated keys from lists)."""
    return urllib.parse.urlencode(params, doseq=True, quote_via=urllib.parse.quote)


def call(url: str, method: str = "GET", body: str = "", timeout: float = 30) -> tuple[int, bytes]:
    """Send one request; return the status and body (errors included)."""
    data = body.encode() if body else None
    headers = {"Content-Type": "application/json"} if body else {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cursors(url: str, path: str, count: int) -> list[str]:
    """The first ``count`` next_cursor values of a paged rows query."""
    out: list[str] = []
    cur = ""
    for _ in range(count):
        status, body = call(url + path + (f"&{q(cursor=cur)}" if cur else ""))
        if status != 200:
            raise SystemExit(f"{path}: {status} {body[:200]!r}")
        cur = json.loads(body).get("next_cursor") or ""
        if not cur:
            break
        out.append(cur)
    if not out:
        raise SystemExit(f"{path}: no next_cursor in the answer")
    return out


def build_requests(url: str) -> list[Req]:
    """The mix, from the demo store: the reference endpoint's pages, table rows
    with filters, sorts and cursors, dataset reads, manifest lookups, slices,
    SQL, the small endpoints and a few deliberate mistakes."""
    rs: list[Req] = []
    add = rs.append
    rows = "/v1/tables/{table}/rows"
    # The reference app's endpoint: pages of the 1000-row sales file.
    for page in (0, 1, 7, 13, 24, 49):
        add(Req("ok", "GET", "/query-parquet?" + q(statename="california", dname="sales", page=page, page_size=20),
                "/query-parquet", weight=2))
    # Table pages: filters, sorts, columns, pages, cursors.
    add(Req("ok", "GET", "/v1/tables/sales/rows?" + q(filter="amount:gte:900", sort="-amount", limit=10), rows, weight=3))
    add(Req("ok", "GET", "/v1/tables/sales/rows?" + q(filter=["region:in:north,east", "amount:lt:500"],
                                                      sort="region,-amount", limit=20, page=2), rows, weight=3))
    add(Req("ok", "GET", "/v1/tables/sales/rows?" + q(columns="id,amount", limit=20, page=11), rows, weight=2))
    add(Req("ok", "GET", "/v1/tables/sales/rows?" + q(filter="product:like:Product A%", limit=5, format="csv"), rows))
    base = "/v1/tables/sales/rows?" + q(filter="amount:gte:100", sort="-amount,id", limit=25)
    for c in cursors(url, base, 6):
        add(Req("ok", "GET", f"{base}&{q(cursor=c)}", rows))
    add(Req("ok", "GET", "/v1/tables/events/rows?" + q(filter="event_date:eq:2024-03-05", sort="-amount", limit=20),
            rows, weight=3))
    add(Req("ok", "GET", "/v1/tables/events/rows?" + q(filter=["kind:in:buy,share", "amount:gte:1000"],
                                                       columns="event_id,amount,kind", limit=100, page=3), rows, weight=2))
    add(Req("ok", "GET", "/v1/tables/events/rows?" + q(filter=["kind:eq:click", "user_id:lt:5000"],
                                                       sort="-score,event_id", limit=50), rows, weight=2))
    ebase = "/v1/tables/events/rows?" + q(filter="event_date:eq:2024-03-20", sort="score,event_id", limit=30)
    for c in cursors(url, ebase, 4):
        add(Req("ok", "GET", f"{ebase}&{q(cursor=c)}", rows))
    add(Req("ok", "GET", "/v1/tables/orders/rows?" + q(filter="order_date:eq:2024-03-02", sort="-amount", limit=10), rows))
    # Datasets: partition-pruned reads, the last load, history, info, the list.
    ds = "/v1/datasets/{name}"
    for day in (3, 11, 27):
        add(Req("ok", "GET", "/v1/datasets/events?" + q(where=f"event_date = '2024-03-{day:02d}' AND user_id < 20000",
                                                         columns="event_id,user_id,score"), ds, weight=2))
    add(Req("ok", "GET", "/v1/datasets/demo/orders?last&" + q(columns="order_id,amount"), ds, weight=2))
    add(Req("ok", "GET", "/v1/datasets/events?" + q(view="history"), ds))
    add(Req("ok", "GET", "/v1/datasets/demo/orders?" + q(view="info"), ds))
    add(Req("ok", "GET", "/v1/datasets", "/v1/datasets"))
    # Manifest lookups from the in-memory index (hits and misses), distinct values.
    status, body = call(url + "/v1/manifests/models/unique/gene_id")
    genes = json.loads(body)["values"] if status == 200 else []
    if len(genes) < 8:
        raise SystemExit(f"the demo manifest has too few genes: {status} {body[:200]!r}")
    look = "/v1/manifests/{manifest}/lookup"
    for k, g in enumerate(genes[:: max(1, len(genes) // 8)][:8]):
        add(Req("ok", "GET", "/v1/manifests/models/lookup?" + q(gene_id=g), look, weight=2))
        add(Req("ok", "GET", "/v1/manifests/models/lookup?" + q(gene_id=g, tissue_id=1 + 7 * k), look))
    add(Req("ok", "GET", "/v1/manifests/models/lookup?" + q(gene_id="NOPE"), look))
    add(Req("ok", "GET", "/v1/manifests/models/unique/tissue_id", "/v1/manifests/{manifest}/unique/{field}", weight=2))
    add(Req("ok", "GET", "/v1/manifests", "/v1/manifests"))
    add(Req("ok", "GET", "/v1/tables", "/v1/tables"))
    add(Req("ok", "GET", "/v1/tables/events/schema", "/v1/tables/{table}/schema"))
    # Slices of the demo FASTQ.gz: plans and data.
    add(Req("ok", "POST", "/v1/slices/plan", "/v1/slices/plan", json.dumps({"object": "raw/reads.fastq.gz", "count": 8}),
            weight=2))
    for s in (2, 7, 12):  # the demo file has checkpoints for 14 slices
        add(Req("ok", "GET", "/v1/slices/data?" + q(object="raw/reads.fastq.gz", count=14, slice=s), "/v1/slices/data"))
    add(Req("ok", "GET", "/v1/slices/data?" + q(object="raw/tile.las", count=16, slice=5), "/v1/slices/data"))
    # SQL.
    add(Req("ok", "POST", "/v1/sql", "/v1/sql", json.dumps(
        {"sql": "SELECT kind, count(*) AS n, avg(amount) AS a FROM events WHERE user_id < 50000 GROUP BY kind ORDER BY kind"}),
        weight=2))
    add(Req("ok", "POST", "/v1/sql", "/v1/sql", json.dumps(
        {"sql": "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region"})))
    # The small ones.
    add(Req("ok", "GET", "/healthz", "/healthz", weight=4))
    add(Req("ok", "GET", "/openapi.json", "/openapi.json", weight=2))
    add(Req("ok", "GET", "/metrics", "/metrics"))
    # Deliberate mistakes: each must be a 4xx (never a 5xx).
    add(Req("bad", "GET", "/v1/tables/nope/rows", rows))
    add(Req("bad", "GET", "/v1/tables/sales/rows?" + q(filter="amount:gte:abc"), rows))
    add(Req("bad", "GET", "/v1/tables/sales/rows?" + q(sort="-nocolumn"), rows))
    add(Req("bad", "GET", "/query-parquet?" + q(statename="california", dname="sales", page=0, page_size=100000),
            "/query-parquet"))
    add(Req("bad", "GET", "/v1/manifests/models/lookup?" + q(tissue_id="xx"), look))
    add(Req("bad", "POST", "/v1/sql", "/v1/sql", json.dumps({"sql": "DROP TABLE sales"})))
    return rs


def cmd_requests(args: argparse.Namespace) -> int:
    """Build the mix, check every distinct request once, write OUT.tsv and OUT.json."""
    url = args.url.rstrip("/")
    rs = build_requests(url)
    wrong = []
    for r in rs:
        status, body = call(url + r.path, r.method, r.body)
        good = 200 <= status < 300 if r.kind == "ok" else 400 <= status < 500 and status != 429
        if not good:
            wrong.append(f"{r.kind} {r.method} {r.path} -> {status} {body[:200]!r}")
    if wrong:
        print("requests that do not answer as expected:\n  " + "\n  ".join(wrong), file=sys.stderr)
        return 1
    out = Path(args.out)
    with open(out.with_suffix(".tsv"), "w") as f:
        for r in rs:
            for _ in range(r.weight):
                f.write(f"{r.kind}\t{r.method}\t{r.path}\t{r.body}\n")
    out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in rs], indent=1))
    total = sum(r.weight for r in rs)
    bad = sum(r.weight for r in rs if r.kind == "bad")
    print(f"== {len(rs)} distinct requests ({total} lines, {bad} deliberate mistakes), each checked once")
    return 0


# -- reading the results -------------------------------------------------------


def wrk_json(path: Path) -> dict[str, Any]:
    """The LOAD_JSON line mixed.lua prints at the end of a wrk run."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("LOAD_JSON "):
            return json.loads(line[len("LOAD_JSON "):])
    raise SystemExit(f"{path}: no LOAD_JSON line (did wrk run mixed.lua?):\n{path.read_text()[-2000:]}")


SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>.*)\}\s+(?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metrics(path: Path) -> dict[str, Counter[tuple[str, ...]]]:
    """From a /metrics scrape: ``requests`` by (method, route, status), and the
    latency ``sum`` (seconds) and ``count`` by (method, route)."""
    out: dict[str, Counter[tuple[str, ...]]] = {"requests": Counter(), "sum": Counter(), "count": Counter()}
    for line in path.read_text().splitlines():
        m = SAMPLE.match(line.strip())
        if not m:
            continue
        labels = dict(LABEL.findall(m["labels"]))
        key = (labels.get("method", ""), labels.get("route", ""))
        value = float(m["value"])
        if m["name"] == "tessera_http_requests_total":
            out["requests"][(*key, labels.get("status", ""))] += int(value)
        elif m["name"] == "tessera_http_request_duration_seconds_sum":
            out["sum"][key] += value  # type: ignore[assignment]
        elif m["name"] == "tessera_http_request_duration_seconds_count":
            out["count"][key] += int(value)
    return out


def ms(us: float) -> str:
    """Microseconds as milliseconds text."""
    return f"{us / 1000:.2f} ms"


def cmd_report(args: argparse.Namespace) -> int:
    """Print the summary table of the load run and the drain check."""
    w = wrk_json(Path(args.wrk))
    reqs = [Req(**r) for r in json.loads(Path(args.requests).read_text())]
    bad_routes = {r.route for r in reqs if r.kind == "bad"}
    before, after = metrics(Path(args.metrics_before)), metrics(Path(args.metrics_after))
    diff = after["requests"] - before["requests"]
    busy = {k: after["sum"][k] - before["sum"][k] for k in after["sum"]}
    counts = {k: after["count"][k] - before["count"][k] for k in after["count"]}
    rss = [int(x) for x in Path(args.rss_samples).read_text().split()] if args.rss_samples else []
    secs = w["duration_us"] / 1e6
    e = w["errors"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    checks: list[tuple[str, bool, str]] = []

    print()
    print(f"== load: {secs:.0f} s, {args.connections} connections, {len(reqs)} distinct requests "
          f"({sum(r.weight for r in reqs if r.kind == 'bad')} of {sum(r.weight for r in reqs)} in the mix are mistakes)")
    rows = [
        ("requests/s", f"{w['requests'] / secs:,.0f}"),
        ("requests answered", f"{w['requests']:,}"),
        ("transfer", f"{w['bytes'] / secs / 2**20:,.1f} MiB/s"),
        ("2xx", f"{w['s2xx']:,}"),
        ("4xx to deliberate mistakes", f"{w['s4xx']:,} (mistakes sent: {w['sent_bad']:,})"),
        ("429 / 5xx / 3xx / other", f"{w['s429']} / {w['s5xx']} / {w['s3xx']} / {w['sother']}"),
        ("socket errors connect/read/write/timeout", f"{e['connect']}/{e['read']}/{e['write']}/{e['timeout']}"),
        ("latency p50", ms(w["latency_us"]["p50"])),
        ("latency p90", ms(w["latency_us"]["p90"])),
        ("latency p99", ms(w["latency_us"]["p99"])),
        ("latency p99.9 / max", f"{ms(w['latency_us']['p999'])} / {ms(w['latency_us']['max'])}"),
    ]
    if args.rss_warm and args.rss_after:
        warm, end = int(args.rss_warm), int(args.rss_after)
        growth = (end - warm) / warm * 100
        rows += [
            ("RSS after warm-up", f"{warm / 1024:,.1f} MiB"),
            ("RSS after the run", f"{end / 1024:,.1f} MiB ({growth:+.1f} %)"),
        ]
        if args.rss_idle:
            rows.append(("RSS after 10 s idle", f"{int(args.rss_idle) / 1024:,.1f} MiB"))
        if args.hwm:
            rows.append(("peak RSS (VmHWM)", f"{int(args.hwm) / 1024:,.1f} MiB"))
        if len(rss) >= 4:
            half = rss[len(rss) // 2:]
            rows.append(("RSS during the run (MiB)", " ".join(f"{x / 1024:.0f}" for x in rss[:: max(1, len(rss) // 8)])))
            second_half = (half[-1] - half[0]) / half[0] * 100
            rows.append(("RSS change, 2nd half of the run", f"{second_half:+.1f} %"))
        checks.append(("RSS growth after warm-up below the limit",
                       growth <= args.max_rss_growth, f"{growth:+.1f} % (limit {args.max_rss_growth:.0f} %)"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")

    print()
    print("== answers by route, from the server's /metrics (the run only; time = the server's, summed)")
    by_route: dict[tuple[str, str], Counter[str]] = {}
    for (method, route, status), n in diff.items():
        if n:
            by_route.setdefault((method, route), Counter())[status] += n
    total_busy = sum(busy.values()) or 1.0
    print(f"  {'route':<46} {'mean':>9} {'time':>6}  answers")
    for key in sorted(by_route, key=lambda k: -busy.get(k, 0.0)):
        n = counts.get(key, 0)
        mean = f"{busy.get(key, 0.0) / n * 1000:.1f} ms" if n else "-"
        share = f"{busy.get(key, 0.0) / total_busy * 100:.0f} %"
        print(f"  {key[0] + ' ' + key[1]:<46} {mean:>9} {share:>6}  "
              + ", ".join(f"{s}: {c:,}" for s, c in sorted(by_route[key].items())))

    unexpected_4xx = {k: n for k, n in diff.items() if n and k[2].startswith("4") and (k[1] not in bad_routes or k[2] == "429")}
    server_5xx = {k: n for k, n in diff.items() if n and k[2].startswith("5")}
    server_4xx = sum(n for k, n in diff.items() if k[2].startswith("4") and k[2] != "429")
    checks += [
        ("no 5xx", w["s5xx"] == 0 and not server_5xx, f"wrk {w['s5xx']}, server {sum(server_5xx.values())}"),
        ("no 429, 3xx or other statuses", w["s429"] + w["s3xx"] + w["sother"] == 0, f"{w['s429'] + w['s3xx'] + w['sother']}"),
        ("no socket errors", socket_errors == 0, f"connect {e['connect']}, read {e['read']}, write {e['write']}, timeout {e['timeout']}"),
        ("4xx only to deliberate mistakes (count)", w["s4xx"] <= w["sent_bad"] and w["s4xx"] >= w["sent_bad"] - int(args.connections),
         f"{w['s4xx']} 4xx for {w['sent_bad']} mistakes sent"),
        ("4xx only on the routes of the mistakes", not unexpected_4xx, str(unexpected_4xx or "none elsewhere")),
        ("server and wrk agree on 4xx", 0 <= server_4xx - w["s4xx"] <= int(args.connections),
         f"server {server_4xx}, wrk {w['s4xx']}"),
    ]
    if args.server_log:
        log = Path(args.server_log).read_text(errors="replace")
        checks.append(("no panic in the server log", "panicked" not in log, f"{log.count('panicked')} panics"))

    ok = print_checks("load", checks)
    if args.drain:
        ok = report_drain(json.loads(Path(args.drain).read_text())) and ok
    if args.stall:
        ok = report_stall(json.loads(Path(args.stall).read_text())) and ok
    print()
    print("== all checks passed" if ok else "== SOME CHECKS FAILED")
    return 0 if ok else 1


def print_checks(title: str, checks: list[tuple[str, bool, str]]) -> bool:
    """Print PASS/FAIL lines; True if all passed."""
    print()
    print(f"== checks ({title})")
    for name, good, detail in checks:
        print(f"  {'PASS' if good else 'FAIL'}  {name}: {detail}")
    return all(good for _, good, _ in checks)


# -- the drain check -----------------------------------------------------------


@dataclass
class Attempt:
    """One request (or bare connection) of the drain check, times relative to SIGTERM
    once known (monotonic seconds until then)."""

    kind: str
    start: float
    connected: float | None = None
    sent: float | None = None
    first_byte: float | None = None
    end: float | None = None
    status: int | None = None
    body_bytes: int = 0
    complete: bool = False
    outcome: str = ""  # ok | refused | error:<type> | bad-status | bad-body
    detail: str = ""


@dataclass
class Target:
    """What a client thread asks for and how it reads the answer."""

    kind: str
    method: str
    path: str
    body: str = ""
    read_chunk: int = 0  # > 0: read this much at a time ...
    read_pause: float = 0.0  # ... with this pause (a slow reader)
    rcvbuf: int = 0  # a small receive buffer, so the server cannot hand the body to the kernel at once
    expect_lines: int | None = None
    expect_bytes: int | None = None
    pause: float = 0.0  # between requests


def attempt(port: int, t: Target, timeout: float) -> Attempt:
    """One request on a fresh connection, timed and classified."""
    a = Attempt(t.kind, time.monotonic())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if t.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, t.rcvbuf)
    sock.settimeout(timeout)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            a.outcome, a.end = "refused", time.monotonic()
            return a
        a.connected = time.monotonic()
        conn.sock = sock
        headers = {"Connection": "close"}
        if t.body:
            headers["Content-Type"] = "application/json"
        conn.request(t.method, t.path, body=t.body.encode() if t.body else None, headers=headers)
        a.sent = time.monotonic()
        resp = conn.getresponse()
        a.first_byte, a.status = time.monotonic(), resp.status
        lines = 0
        while True:
            chunk = resp.read(t.read_chunk or 65536)
            if not chunk:
                break
            a.body_bytes += len(chunk)
            lines += chunk.count(b"\n")
            if t.read_pause:
                time.sleep(t.read_pause)
        a.end = time.monotonic()
        a.complete = True
        if resp.status != 200:
            a.outcome, a.detail = "bad-status", str(resp.status)
        elif t.expect_bytes is not None and a.body_bytes != t.expect_bytes:
            a.outcome, a.detail = "bad-body", f"{a.body_bytes} bytes, expected {t.expect_bytes}"
        elif t.expect_lines is not None and lines != t.expect_lines:
            a.outcome, a.detail = "bad-body", f"{lines} lines, expected {t.expect_lines}"
        else:
            a.outcome = "ok"
    except Exception as e:  # every failure is a result here
        a.end = time.monotonic()
        a.outcome, a.detail = f"error:{type(e).__name__}", str(e)[:200]
    finally:
        conn.close()
        sock.close()
    return a


def probe(port: int) -> Attempt:
    """A bare connection: accepted or refused."""
    a = Attempt("probe", time.monotonic())
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            a.connected = a.end = time.monotonic()
            a.outcome = "accepted"
    except ConnectionRefusedError:
        a.end, a.outcome = time.monotonic(), "refused"
    except OSError as e:
        a.end, a.outcome, a.detail = time.monotonic(), f"error:{type(e).__name__}", str(e)
    return a


def socket_queues(port: int) -> dict[str, int]:
    """Just before the signal (with `ss`): connections waiting in the listen
    queue (not accepted yet), and server-side connections holding request
    bytes the server has not read (accepted or not)."""
    def ss(*args: str) -> list[str]:
        try:
            out = subprocess.run(["ss", "-tnH", *args], capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [line.split() for line in out.splitlines() if line.strip()]  # type: ignore[misc]

    def recv_q(fields: list[str]) -> int:
        # The first number: Recv-Q (a State column comes first unless a state is given).
        return next((int(f) for f in fields if f.isdigit()), 0)

    listen = ss("-l", f"sport = :{port}")
    established = ss("state", "established", f"sport = :{port}")
    return {
        "accept_queue": sum(recv_q(f) for f in listen),
        "connections": len(established),
        "unread": sum(1 for f in established if recv_q(f) > 0),
    }


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Until /healthz answers 200."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited early with {proc.returncode}")
        try:
            if call(f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not come up")


def cmd_drain(args: argparse.Namespace) -> int:
    """Start the server, load it with wrk, keep slow requests in flight, send
    SIGTERM mid-load, and record what every client saw; write JSON."""
    port = free_port()
    log = open(args.server_log, "wb")
    server = subprocess.Popen([args.bin, "serve", "--config", args.config, "--bind", f"127.0.0.1:{port}", "-q"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_up(port, server)
        base = f"http://127.0.0.1:{port}"
        # The slow reader's answer, read whole once before the load: its size and lines.
        slow_path = "/v1/datasets/events?" + q(where="event_date <= '2024-03-06'", format="csv")
        status, body = call(base + slow_path, timeout=60)
        if status != 200:
            raise SystemExit(f"{slow_path}: {status}")
        slow_sql = json.dumps({"sql": "SELECT count(DISTINCT concat(a.note, b.kind, b.event_id)) AS n "
                                      "FROM events a CROSS JOIN (SELECT * FROM events LIMIT 40) b"})
        targets = [
            # Slow to compute (a second or more under load).
            *[Target("slow-sql", "POST", "/v1/sql", slow_sql) for _ in range(3)],
            # Slow to consume: a few MB of CSV read at about 1.5 MB/s through a small buffer.
            *[Target("slow-read", "GET", slow_path, read_chunk=16384, read_pause=0.01, rcvbuf=16384,
                     expect_bytes=len(body), expect_lines=body.count(b"\n")) for _ in range(2)],
            # Quick requests on fresh connections, one after the other.
            *[Target("quick", "GET", "/healthz", pause=0.005) for _ in range(2)],
            *[Target("quick", "GET", "/v1/manifests/models/unique/tissue_id", pause=0.005) for _ in range(2)],
        ]
        wrk_out = open(args.wrk_out, "wb")
        wrk = subprocess.Popen(["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s",
                                "--timeout", args.wrk_timeout, "-s", args.lua, base, "--", args.requests],
                               stdout=wrk_out, stderr=subprocess.STDOUT)
        stop = threading.Event()
        results: list[Attempt] = []
        lock = threading.Lock()

        def client(t: Target, delay: float) -> None:
            time.sleep(delay)
            while not stop.is_set():
                a = attempt(port, t, timeout=args.exit_timeout + 30)
                with lock:
                    results.append(a)
                time.sleep(t.pause if a.outcome != "refused" else 0.02)

        def prober() -> None:
            while not stop.is_set():
                a = probe(port)
                with lock:
                    results.append(a)
                time.sleep(0.02)

        threads = [threading.Thread(target=client, args=(t, 0.3 * k), daemon=True) for k, t in enumerate(targets)]
        threads.append(threading.Thread(target=prober, daemon=True))
        time.sleep(2)  # wrk's connections up and busy
        for th in threads:
            th.start()
        sig_at = time.monotonic() + args.signal_after
        # A burst of quick requests on fresh connections around the signal,
        # from 250 ms before it to 50 ms after, written by one thread on a
        # fixed schedule and read afterwards: what happens to requests the
        # server has accepted but not read yet.
        def burster() -> None:
            sent: list[tuple[Attempt, socket.socket]] = []
            request = b"GET /v1/manifests/models/unique/tissue_id HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            for k in range(60):
                time.sleep(max(0.0, sig_at - 0.25 + 0.005 * k - time.monotonic()))
                a = Attempt("burst", time.monotonic())
                sock = socket.socket()
                sock.settimeout(args.exit_timeout + 30)
                try:
                    sock.connect(("127.0.0.1", port))
                    a.connected = time.monotonic()
                    sock.sendall(request)
                    a.sent = time.monotonic()
                    sent.append((a, sock))
                except ConnectionRefusedError:
                    a.end, a.outcome = time.monotonic(), "refused"
                    sock.close()
                except OSError as e:
                    a.end, a.outcome, a.detail = time.monotonic(), f"error:{type(e).__name__}", str(e)[:200]
                    sock.close()
                with lock:
                    results.append(a)
            for a, sock in sent:
                try:
                    resp = http.client.HTTPResponse(sock)
                    resp.begin()
                    a.first_byte, a.status = time.monotonic(), resp.status
                    a.body_bytes = len(resp.read())
                    a.end, a.complete = time.monotonic(), True
                    a.outcome = "ok" if resp.status == 200 else "bad-status"
                except Exception as e:  # every failure is a result here
                    a.end, a.outcome, a.detail = time.monotonic(), f"error:{type(e).__name__}", str(e)[:200]
                finally:
                    sock.close()

        burst_thread = threading.Thread(target=burster, daemon=True)
        burst_thread.start()
        threads.append(burst_thread)
        time.sleep(max(0.0, sig_at - time.monotonic()))
        queues = socket_queues(port)
        sig = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            code: int | None = server.wait(timeout=args.exit_timeout)
        except subprocess.TimeoutExpired:
            code = None
        exited = time.monotonic()
        time.sleep(0.3)  # the last probes see the port closed
        stop.set()
        for th in threads:
            th.join(timeout=args.exit_timeout + 40)
        if wrk.poll() is None:
            wrk.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
        try:
            wrk.wait(timeout=30)
        except subprocess.TimeoutExpired:
            wrk.kill()
        wrk_out.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()

    def rel(x: float | None) -> float | None:
        return None if x is None else round(x - sig, 4)

    out = []
    for a in sorted(results, key=lambda a: a.start):
        d = asdict(a)
        for k in ("start", "connected", "sent", "first_byte", "end"):
            d[k] = rel(d[k])
        out.append(d)
    wrk_summary: dict[str, Any] | None
    try:
        wrk_summary = wrk_json(Path(args.wrk_out))
    except SystemExit:
        wrk_summary = None
    doc = {
        "exit_code": code,
        "exit_after_s": None if code is None else round(exited - sig, 3),
        "exit_timeout_s": args.exit_timeout,
        "signal_after_s": args.signal_after,
        "attempts": out,
        "wrk": wrk_summary,
        "server_log_panics": Path(args.server_log).read_text(errors="replace").count("panicked"),
        "at_signal": queues,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"== drain: SIGTERM after {args.signal_after:.0f} s of load; exit code {code}"
          f"{'' if code is None else f' after {exited - sig:.2f} s'}; {len(out)} client attempts recorded")
    return 0


LATE = 0.5  # seconds before the signal: "just written" rather than "in progress"


def report_drain(d: dict[str, Any]) -> bool:
    """Judge the drain check from its JSON; print the table; True if it passed."""
    at = [Attempt(**a) for a in d["attempts"]]
    reqs = [a for a in at if a.kind != "probe"]
    # In flight at the signal: the request was written before it and not answered in full yet.
    inflight = [a for a in reqs if a.sent is not None and a.sent < 0 and (a.end is None or a.end > 0)]
    # ... and among them, those written in the last LATE seconds before the signal: the
    # server may have accepted their connection but not read them yet.
    late = [a for a in inflight if a.sent is not None and a.sent >= -LATE and (a.first_byte is None or a.first_byte > 0)]
    busy = [a for a in inflight if a not in late]
    busy_bad = [a for a in busy if a.outcome != "ok"]
    late_bad = [a for a in late if a.outcome != "ok"]
    before_ok = [a for a in reqs if a.end is not None and a.end <= 0 and a.outcome == "ok"]
    before_bad = [a for a in reqs if a.end is not None and a.end <= 0 and a.outcome != "ok"]
    # Connected before the signal but the request written after it.
    edge = [a for a in reqs if a.connected is not None and a.connected < 0 and a.sent is not None and a.sent >= 0]
    after = [a for a in at if a.start >= 0]
    refused = [a for a in after if a.outcome == "refused"]
    first_refused = min((a.start for a in refused), default=None)
    accepted_after = [a for a in after if a.connected is not None]
    accepted_after_close = [a for a in accepted_after if first_refused is not None and a.connected is not None
                            and a.connected > first_refused]
    slow_busy = [a for a in busy if a.kind.startswith("slow")]
    longest = max((a.end for a in inflight if a.end is not None), default=0.0)

    def kinds(xs: list[Attempt]) -> str:
        return ", ".join(f"{k}: {n}" for k, n in sorted(Counter(a.kind for a in xs).items()))

    print()
    print(f"== drain: SIGTERM after {d['signal_after_s']:.0f} s under load")
    rows = [
        ("requests answered before the signal", f"{len(before_ok)} ok, {len(before_bad)} failed"),
        ("in progress at the signal", f"{len(busy)} ({kinds(busy)}): {len(busy) - len(busy_bad)} finished whole"
         + (f", the last {longest:.2f} s after the signal" if inflight else "")),
        (f"written in the last {LATE * 1000:.0f} ms before it", f"{len(late)} ({kinds(late)}): "
         f"{len(late) - len(late_bad)} answered, {len(late_bad)} failed"),
        ("connected before, written after it", f"{len(edge)}: " + ", ".join(f"{k} {n}" for k, n in
                                                                             Counter(a.outcome for a in edge).items())),
        ("at the signal (ss)", "not measured" if not d.get("at_signal") else
         f"{d['at_signal']['accept_queue']} in the listen queue; {d['at_signal']['connections']} connections, "
         f"{d['at_signal']['unread']} with request bytes not read yet"),
        ("first refused connection", "none" if first_refused is None else f"{first_refused * 1000:.0f} ms after the signal"),
        ("connections after the signal", f"{len(after)}: {len(refused)} refused, {len(accepted_after)} accepted"
         f" ({len(accepted_after_close)} after the first refusal)"),
        ("server exit", "still running at the deadline" if d["exit_code"] is None
         else f"status {d['exit_code']} after {d['exit_after_s']:.2f} s (limit {d['exit_timeout_s']:.0f} s)"),
    ]
    if d.get("wrk"):
        e = d["wrk"]["errors"]
        rows.append(("wrk during the drain (information)",
                     f"{d['wrk']['requests']:,} answers, 5xx {d['wrk']['s5xx']}, socket errors "
                     f"connect {e['connect']} read {e['read']} write {e['write']} timeout {e['timeout']}"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    for a in sorted(busy_bad + late_bad + before_bad, key=lambda a: a.sent or 0)[:12]:
        print(f"    failed: {a.kind:<9} connected {a.connected:+.3f} s, written {a.sent:+.3f} s"
              f" -> {a.outcome} {a.detail}")

    checks = [
        ("slow requests were in progress at the signal", len(slow_busy) > 0, f"{len(slow_busy)}"),
        ("every request in progress at the signal finished whole", not busy_bad,
         f"{len(busy_bad)} of {len(busy)} failed" + (f": {dict(Counter(a.outcome for a in busy_bad))}" if busy_bad else "")),
        (f"every request written in the last {LATE * 1000:.0f} ms before the signal was answered", not late_bad,
         f"{len(late_bad)} of {len(late)} failed" + (f": {dict(Counter(a.outcome for a in late_bad))}" if late_bad else "")),
        ("every request before the signal succeeded", not before_bad, f"{len(before_bad)} failed"),
        ("new connections refused after the signal", first_refused is not None and first_refused < 1.0
         and not accepted_after_close,
         f"first refusal {'never' if first_refused is None else f'{first_refused * 1000:.0f} ms'}, "
         f"{len(accepted_after_close)} accepted after it"),
        ("exit status 0 within the limit", d["exit_code"] == 0, f"{d['exit_code']} after {d['exit_after_s']} s"),
        ("no panic in the server log", d["server_log_panics"] == 0, f"{d['server_log_panics']}"),
    ]
    return print_checks("drain", checks)


def cmd_stall(args: argparse.Namespace) -> int:
    """A client asks for a large streamed answer and stops reading it; the server
    gets SIGTERM. Does it still exit within the limit? Writes JSON."""
    port = free_port()
    with open(args.server_log, "wb") as log:
        server = subprocess.Popen([args.bin, "serve", "--config", args.config, "--bind", f"127.0.0.1:{port}", "-q"],
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_up(port, server)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = sock.recv(64)
            time.sleep(1)  # the server fills the socket buffers and waits
            sig = time.monotonic()
            server.send_signal(signal.SIGTERM)
            try:
                code: int | None = server.wait(timeout=args.exit_timeout)
            except subprocess.TimeoutExpired:
                code = None
            took = time.monotonic() - sig
            sock.close()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    doc = {"exit_code": code, "exit_after_s": round(took, 3), "exit_timeout_s": args.exit_timeout,
           "answer_started": head.startswith(b"HTTP/1.1 200")}
    Path(args.out).write_text(json.dumps(doc))
    print(f"== stalled reader: exit code {code} after {took:.1f} s (limit {args.exit_timeout:.0f} s)")
    return 0


def report_stall(d: dict[str, Any]) -> bool:
    """Judge the stalled-reader drain; True if the server exited in time."""
    return print_checks("drain with a client that stops reading", [
        ("the stalled answer had started", bool(d["answer_started"]), str(d["answer_started"])),
        ("exit status 0 within the limit", d["exit_code"] == 0,
         "still running at the limit, killed" if d["exit_code"] is None
         else f"status {d['exit_code']} after {d['exit_after_s']} s"),
    ])


# -- the command line ----------------------------------------------------------


def main() -> int:
    """Dispatch the subcommands."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("requests")
    r.add_argument("url")
    r.add_argument("out", help="path without extension: OUT.tsv and OUT.json are written")
    rep = sub.add_parser("report")
    rep.add_argument("--wrk", required=True)
    rep.add_argument("--requests", required=True, help="OUT.json of `requests`")
    rep.add_argument("--metrics-before", required=True)
    rep.add_argument("--metrics-after", required=True)
    rep.add_argument("--connections", type=int, required=True)
    rep.add_argument("--rss-warm")
    rep.add_argument("--rss-after")
    rep.add_argument("--rss-idle")
    rep.add_argument("--hwm")
    rep.add_argument("--rss-samples")
    rep.add_argument("--max-rss-growth", type=float, default=25.0)
    rep.add_argument("--server-log")
    rep.add_argument("--drain")
    rep.add_argument("--stall")
    dr = sub.add_parser("drain")
    dr.add_argument("--bin", required=True)
    dr.add_argument("--config", required=True)
    dr.add_argument("--lua", required=True)
    dr.add_argument("--requests", required=True, help="the .tsv of `requests`")
    dr.add_argument("--connections", type=int, default=256)
    dr.add_argument("--threads", type=int, default=2)
    dr.add_argument("--seconds", type=int, default=60, help="wrk's duration (the signal comes before its end)")
    dr.add_argument("--wrk-timeout", default="35s")
    dr.add_argument("--signal-after", type=float, default=10)
    dr.add_argument("--exit-timeout", type=float, default=60)
    dr.add_argument("--server-log", required=True)
    dr.add_argument("--wrk-out", required=True)
    dr.add_argument("--out", required=True)
    st = sub.add_parser("stall")
    st.add_argument("--bin", required=True)
    st.add_argument("--config", required=True)
    st.add_argument("--path", default="/v1/datasets/events?format=csv")
    st.add_argument("--exit-timeout", type=float, default=30)
    st.add_argument("--server-log", required=True)
    st.add_argument("--out", required=True)
    a = p.parse_args()
    return {"requests": cmd_requests, "report": cmd_report, "drain": cmd_drain, "stall": cmd_stall}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
