"""Running the ``tessera`` command line from the tests: one call, an index
read back from beside its object, a plan read back from its file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from _objects import get


def run(tessera_bin: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``tessera ARGS``; with ``ok`` it must succeed, otherwise it must
    fail with a message and without a panic."""
    proc = subprocess.run([str(tessera_bin), *args], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, f"tessera {' '.join(args)} failed:\n{proc.stderr}"
    else:
        assert proc.returncode != 0, f"tessera {' '.join(args)} succeeded:\n{proc.stdout}\n{proc.stderr}"
        assert "error" in proc.stderr.lower(), proc.stderr
        assert "panicked" not in proc.stderr, proc.stderr
    return proc


def index(tessera_bin: Path, url: str, *extra: str) -> dict[str, Any]:
    """Index ``url`` and return the index written beside it."""
    run(tessera_bin, "index", url, *extra)
    return json.loads(get(f"{url}.tessera-index.json"))


def plan(tessera_bin: Path, url: str, args: list[str], out: Path) -> list[dict[str, Any]]:
    """Plan slices of an indexed object into ``out`` and return them."""
    run(tessera_bin, "slice", url, *args, "-o", str(out))
    slices = json.loads(out.read_text())
    assert isinstance(slices, list) and slices, slices
    return slices
