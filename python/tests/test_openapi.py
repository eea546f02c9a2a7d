"""The server against a test suite generated from its own OpenAPI document
(schemathesis): on the quickstart's store, with auth off and on (an admin
token), every operation,
every check but "a schema-valid request is accepted" (a valid-looking SQL
text or object key can still be wrong: those are answered 400/404, as
documented). A short, seeded run; `bench/` is the place for long ones."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _schemathesis() -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("schemathesis")
    if found:
        return [found]
    if os.environ.get("TESSERA_REQUIRE_PYTHON") == "1":
        pytest.fail("schemathesis is not installed (scripts/requirements-test.txt)")
    pytest.skip("schemathesis is not installed")


@pytest.mark.parametrize("auth", [False, True], ids=["no-auth", "auth"])
def test_generated_suite_finds_nothing(tessera_bin, tmp_path, auth):
    st = _schemathesis()
    store = tmp_path / "qs"
    subprocess.run(
        [str(tessera_bin), "quickstart", "--dir", str(store), "--no-serve"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    cmd = [str(tessera_bin), "serve", "--config", str(store / "serve.toml"), "--bind", f"127.0.0.1:{port}"]
    headers: list[str] = []
    if auth:
        made = subprocess.run(
            [str(tessera_bin), "serve", "--new-token", "--namespace", "default", "--role", "admin"],
            check=True,
            capture_output=True,
            text=True,
        )
        # The token is printed on stderr, the auth-file entry on stdout.
        token = next(w for w in made.stderr.split() if w.startswith("tsr_"))
        (tmp_path / "auth.toml").write_text(made.stdout)
        cmd += ["--auth", str(tmp_path / "auth.toml")]
        headers = ["-H", f"Authorization: Bearer {token}"]
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        out = subprocess.run(
            st
            + [
                "run", f"{base}/openapi.json", "--checks", "all",
                "--exclude-checks", "positive_data_acceptance",
                "--max-examples", "20", "--seed", "1", "--no-color",
            ]
            + headers,
            capture_output=True,
            text=True,
            timeout=600,
        )
        print(out.stdout[-3000:])
        assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
        assert " passed" in out.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
