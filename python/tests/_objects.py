"""Objects on a local folder or on the test S3 server, for the tests.

Every helper takes a local path or an ``s3://bucket/key`` URL. S3 objects go
through pyarrow's S3 filesystem, set up from the ``AWS_*`` variables that
``scripts/garage.sh`` exports (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` and ``AWS_ENDPOINT_URL``). Objects
are written and read as they are (``compression=None``: pyarrow would
otherwise compress or decompress by the key's extension, e.g. ``.gz``).

A test reaches S3 only through a fixture that skips without a test server
(``s3_base`` in ``conftest.py``); without pyarrow an S3 call skips too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem

_S3 = "s3://"


def s3_filesystem() -> S3FileSystem:
    """pyarrow's S3 filesystem for the test server.

    The keys and region come from ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY`` and ``AWS_REGION`` (default ``us-east-1``);
    ``AWS_ENDPOINT_URL`` (e.g. ``http://127.0.0.1:3900``), when set, is the
    endpoint and scheme, otherwise pyarrow's default endpoint is used.
    """
    fs = pytest.importorskip("pyarrow.fs")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    where: dict[str, str] = {}
    if endpoint:
        scheme, host = endpoint.split("://", 1)
        where = {"endpoint_override": host.rstrip("/"), "scheme": scheme}
    return fs.S3FileSystem(
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region=os.environ.get("AWS_REGION", "us-east-1"),
        **where,
    )


def _path(url: str) -> str:
    """An ``s3://`` URL as pyarrow's S3 filesystem names it (``bucket/key``)."""
    return url[len(_S3) :]


def put(url: str, data: bytes) -> None:
    """Write an object (a local file, with its folders, or an S3 object)."""
    if url.startswith(_S3):
        with s3_filesystem().open_output_stream(_path(url), compression=None) as f:
            f.write(data)
    else:
        p = Path(url)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def overwrite(url: str, data: bytes) -> None:
    """Change an object's bytes: an S3 object is written anew, a local file
    in place (the same file, so its identity stays and only its contents
    and modification time say it changed)."""
    if url.startswith(_S3):
        put(url, data)
    else:
        with open(url, "r+b") as f:
            f.write(data)
            f.truncate()


def put_at(base: str, key: str, data: bytes) -> str:
    """Write ``data`` at ``base/key`` (a local folder or an ``s3://`` prefix)
    and return the object's URL (for a local folder, its path)."""
    url = f"{base}/{key}" if base.startswith(_S3) else str(Path(base) / key)
    put(url, data)
    return url


def put_file(url: str, source: Path) -> None:
    """Copy a local file to an object (a local file or an S3 object)."""
    if url.startswith(_S3):
        fs = s3_filesystem()
        with source.open("rb") as src, fs.open_output_stream(_path(url), compression=None) as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
    else:
        p = Path(url)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, p)


def get(url: str) -> bytes:
    """Read a whole object (a local file or an S3 object)."""
    if url.startswith(_S3):
        with s3_filesystem().open_input_stream(_path(url), compression=None) as f:
            data: bytes = f.read()
            return data
    return Path(url).read_bytes()


def exists(url: str) -> bool:
    """Whether an object exists (a local file or an S3 object)."""
    if url.startswith(_S3):
        fs = pytest.importorskip("pyarrow.fs")
        return bool(s3_filesystem().get_file_info(_path(url)).type == fs.FileType.File)
    return Path(url).is_file()


def names_in(folder: str) -> list[str]:
    """Names of the objects directly in a folder (empty when there is none)."""
    if folder.startswith(_S3):
        fs = pytest.importorskip("pyarrow.fs")
        selector = fs.FileSelector(_path(folder), allow_not_found=True)
        infos = s3_filesystem().get_file_info(selector)
        return sorted(i.base_name for i in infos if i.type == fs.FileType.File)
    p = Path(folder)
    return sorted(c.name for c in p.iterdir() if c.is_file()) if p.is_dir() else []
