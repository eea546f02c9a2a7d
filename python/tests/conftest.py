"""Shared fixtures of the Python tests.

The test script (scripts/test.sh) installs the package into a throw-away
virtual environment, starts a Garage S3 server and exports:

- ``TESSERA_TEST_S3``: a bucket URL such as ``s3://tessera-test`` (with the
  ``AWS_*`` variables for it); with ``TESSERA_REQUIRE_S3=1`` a missing server
  is a failure, not a skip.
- ``TESSERA_BIN``: the ``tessera`` binary built from the same tree (server
  and CLI peers).
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from pathlib import Path

import pytest

_counter = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test, run or process uses (for a shared bucket)."""
    return f"{prefix}-{int(time.time() * 1000)}-{os.getpid()}-{next(_counter)}"


@pytest.fixture
def s3_base() -> str:
    """A fresh prefix on the test S3 server, e.g. ``s3://tessera-test/py-…``."""
    base = os.environ.get("TESSERA_TEST_S3")
    if not base:
        if os.environ.get("TESSERA_REQUIRE_S3") == "1":
            pytest.fail("TESSERA_TEST_S3 is not set but TESSERA_REQUIRE_S3=1")
        pytest.skip("no test S3 server (TESSERA_TEST_S3)")
    return f"{base.rstrip('/')}/{unique('py')}"


@pytest.fixture(params=["local", "s3"])
def store_base(request, tmp_path) -> str:
    """The same test on a local folder and on the test S3 server."""
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("s3_base")


@pytest.fixture
def tessera_bin() -> Path:
    """The tessera command-line binary of this tree."""
    explicit = os.environ.get("TESSERA_BIN")
    if explicit:
        return Path(explicit)
    found = shutil.which("tessera")
    if found:
        return Path(found)
    here = Path(__file__).resolve().parents[2]
    for p in (here / "target" / "debug" / "tessera", here / "target" / "release" / "tessera"):
        if p.exists():
            return p
    pytest.fail("no tessera binary: set TESSERA_BIN")
