"""Processes for the crash and multi-server tests: ``tessera`` commands that
are killed at chosen instants, ``tessera serve`` processes started and
killed, plain HTTP calls, seeded randomness and store listings.

Only the command-line binary and HTTP are used (never the Python package),
so these tests check what any client sees.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import select
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from _objects import s3_filesystem

_S3 = "s3://"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without ``TESSERA_*`` settings (so that only the
    test's flags apply), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(extra)
    return env


def seeded(test: str) -> tuple[random.Random, int]:
    """A random generator for ``test`` and its seed, printed so that a run
    replays with ``TESSERA_KILL_SEED=<seed>`` (the kill instants replay;
    what a process did by then depends on the machine's speed)."""
    given = os.environ.get("TESSERA_KILL_SEED")
    seed = int(given) if given else random.SystemRandom().randrange(1 << 32)
    print(f"{test}: seed {seed} (replay with TESSERA_KILL_SEED={seed})")
    return random.Random(f"{seed}:{test}"), seed


# -- commands killed at an instant ----------------------------------------------


class Instants:
    """Kill instants drawn uniformly between 0 and the measured duration of
    an uninterrupted run. The duration is the median of the last three
    measured runs (the first ones, then every run that finished before its
    kill), so the instants follow the machine's load as it changes."""

    def __init__(self, rng: random.Random, durations: Sequence[float]) -> None:
        assert durations, "measure at least one run"
        self.rng = rng
        self.durations = [float(d) for d in durations]

    @property
    def full(self) -> float:
        """The current estimate of an uninterrupted run's duration."""
        recent = sorted(self.durations[-3:])
        return recent[len(recent) // 2]

    def next(self) -> float:
        """The next kill delay, in seconds."""
        return self.rng.uniform(0, self.full)

    def finished(self, seconds: float) -> None:
        """A run finished by itself after ``seconds``."""
        self.durations.append(seconds)


@dataclass
class Outcome:
    """How a command that was to be killed ended."""

    killed: bool
    """SIGKILL reached it while it ran (otherwise it had exited by itself)."""
    returncode: int
    stderr: str
    seconds: float
    """From the start to the kill, or to its own exit."""


@dataclass
class Kills:
    """Kills counted by a test (kills that found the process running)."""

    killed: int = 0
    finished: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, killed: bool) -> None:
        """Count one attempt of ``kind``."""
        if killed:
            self.killed += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        else:
            self.finished += 1

    def merge(self, other: Kills) -> None:
        """Add the counts of ``other``."""
        self.killed += other.killed
        self.finished += other.finished
        for kind, n in other.by_kind.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + n


def run_then_kill(
    argv: Sequence[str], delay: float, env: dict[str, str], log: Path
) -> Outcome:
    """Start ``argv``, SIGKILL it ``delay`` seconds later unless it exited
    by then, and reap it. Its stderr goes to ``log`` (a pipe could fill up
    and stall the process, which would change what is being tested)."""
    with open(log, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            proc.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            killed = True
        seconds = time.monotonic() - start
    return Outcome(killed, proc.returncode, log.read_text(errors="replace"), seconds)


Snapshot = dict[str, tuple[int, float]]


def snapshot(folder: str) -> Snapshot:
    """Every object under ``folder`` (recursively, relative names) with its
    size and modification time, to notice a write."""
    if folder.startswith(_S3):
        fs = pytest.importorskip("pyarrow.fs")
        root = folder[len(_S3) :].rstrip("/")
        sel = fs.FileSelector(root, recursive=True, allow_not_found=True)
        return {
            i.path[len(root) + 1 :]: (i.size, i.mtime.timestamp() if i.mtime else 0.0)
            for i in s3_filesystem().get_file_info(sel)
            if i.type == fs.FileType.File
        }
    out: Snapshot = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            p = os.path.join(dirpath, name)
            try:
                st = os.stat(p)
            except FileNotFoundError:  # renamed away meanwhile
                continue
            out[os.path.relpath(p, folder)] = (st.st_size, st.st_mtime_ns / 1e9)
    return out


def kill_on_write(
    argv: Sequence[str],
    env: dict[str, str],
    log: Path,
    folder: str,
    changed: Callable[[Snapshot, Snapshot], bool],
    timeout: float = 120,
) -> Outcome:
    """Start ``argv`` and SIGKILL it as soon as ``changed(before, now)``
    holds for the objects under ``folder`` (polled as fast as listing
    goes), or let it finish. This aims the kill at the instants a write is
    under way, which uniform instants rarely hit."""
    before = snapshot(folder)
    with open(log, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=err, env=env)
        while proc.poll() is None:
            if changed(before, snapshot(folder)):
                proc.send_signal(signal.SIGKILL)
                break
            if time.monotonic() - start > timeout:
                proc.kill()
                proc.wait(timeout=30)
                pytest.fail(f"{' '.join(argv)} ran more than {timeout} s")
            if not folder.startswith(_S3):
                time.sleep(0.0005)
        proc.wait(timeout=30)
        seconds = time.monotonic() - start
    # A process that exited by itself just before the signal keeps its status.
    killed = proc.returncode == -signal.SIGKILL
    return Outcome(killed, proc.returncode, log.read_text(errors="replace"), seconds)


def timed(
    argv: Sequence[str], env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``argv`` to completion (it must succeed) and return its wall time."""
    start = time.monotonic()
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=300)
    took = time.monotonic() - start
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stderr}"
    return took, proc


def cli(
    binary: Path, *args: str, env: dict[str, str], ok: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """Run ``tessera ARGS`` (bytes out); with ``ok`` it must succeed."""
    proc = subprocess.run([str(binary), *args], capture_output=True, env=env, timeout=timeout)
    if ok:
        assert proc.returncode == 0, (
            f"tessera {' '.join(args)} failed:\n{proc.stderr.decode(errors='replace')}"
        )
    assert b"panicked" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


def arrow_stream(data: bytes) -> pa.Table:
    """An Arrow IPC stream (``--format arrow`` / ``format=arrow``) as a table."""
    return ipc.open_stream(pa.py_buffer(data)).read_all()


# -- servers --------------------------------------------------------------------


@dataclass
class Server:
    """A running ``tessera serve``."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def host_port(self) -> tuple[str, int]:
        """The address it listens on."""
        u = urllib.parse.urlsplit(self.url)
        assert u.hostname and u.port
        return u.hostname, u.port

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def kill(self) -> bool:
        """SIGKILL; whether it was still running."""
        running = self.alive()
        if running:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()
        return running

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._close()

    def _close(self) -> None:
        if self.proc.stdout:
            self.proc.stdout.close()


def start_server(
    binary: Path, args: Sequence[str], log: Path, env: dict[str, str], cwd: Path
) -> Server:
    """Start ``tessera serve ARGS --bind 127.0.0.1:0`` and wait for its
    ``listening on URL`` line."""
    argv = [str(Path(binary).resolve()), "serve", *args, "--bind", "127.0.0.1:0"]
    with open(log, "ab") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        if not ready:
            proc.kill()
            proc.wait()
            pytest.fail(f"tessera serve did not start in 60 s: {log.read_text()}")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            proc.wait(timeout=15)
            pytest.fail(f"tessera serve exited: {log.read_text()}")
        line += chunk
    text = line.decode().strip()
    assert text.startswith("listening on http://"), text
    return Server(text.removeprefix("listening on "), proc, log)


@dataclass
class Reply:
    """An HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def request(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 120,
) -> Reply:
    """One HTTP request to ``server`` (a new connection each time)."""
    host, port = server.host_port
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


def dataset_path(name: str, **params: str) -> str:
    """``/v1/datasets/NAME?params`` (the name keeps its ``/``)."""
    q = urllib.parse.urlencode(params)
    return f"/v1/datasets/{urllib.parse.quote(name, safe='/')}" + (f"?{q}" if q else "")


# -- stores ---------------------------------------------------------------------


def join(base: str, *parts: str) -> str:
    """``base/part/…`` for a local folder or an ``s3://`` prefix."""
    if base.startswith(_S3):
        return "/".join([base.rstrip("/"), *parts])
    return str(Path(base, *parts))


def list_files(folder: str) -> list[str]:
    """Every object under ``folder``, recursively, as paths relative to it."""
    if folder.startswith(_S3):
        fs = pytest.importorskip("pyarrow.fs")
        root = folder[len(_S3) :].rstrip("/")
        sel = fs.FileSelector(root, recursive=True, allow_not_found=True)
        infos = s3_filesystem().get_file_info(sel)
        return sorted(
            i.path[len(root) + 1 :] for i in infos if i.type == fs.FileType.File
        )
    p = Path(folder)
    if not p.is_dir():
        return []
    return sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file())


def remove_tree(folder: str) -> None:
    """Delete everything under a local folder or an ``s3://`` prefix."""
    if folder.startswith(_S3):
        s3_filesystem().delete_dir_contents(folder[len(_S3) :].rstrip("/"), missing_dir_ok=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)


def delta_storage_options(url: str) -> dict[str, str]:
    """Options for the ``deltalake`` package to read ``url`` (the test S3
    server from the ``AWS_*`` variables; nothing for a local folder)."""
    if not url.startswith(_S3):
        return {}
    opts = {
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        opts["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    return opts
