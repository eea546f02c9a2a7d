"""Type stubs of the native module (the public API is `tessera`)."""

from __future__ import annotations

import datetime
import os
import pathlib
from typing import Any, Iterator, Optional, Sequence

import pyarrow

__version__: str

class StoreOptions:
    profile: Optional[str]
    endpoint: Optional[str]
    region: Optional[str]
    max_retries: Optional[int]
    from_env: bool
    config_keys: list[str]
    def __init__(
        self,
        *,
        profile: Optional[str] = None,
        endpoint: Optional[str] = None,
        region: Optional[str] = None,
        max_retries: Optional[int] = None,
        config: Optional[dict[str, str]] = None,
        from_env: bool = True,
    ) -> None: ...

def fetch(url: str, *, cache_dir: Optional[str] = None, store: Optional[StoreOptions] = None) -> pathlib.Path: ...
def ls(url: str, store: Optional[StoreOptions] = None, concurrency: int = 16) -> list[tuple[str, int, str]]: ...

class Manifest:
    url: str
    fields: list[str]
    location_column: str
    @staticmethod
    def open(url: str, *, location_column: Optional[str] = None, store: Optional[StoreOptions] = None) -> Manifest: ...
    def __len__(self) -> int: ...
    def exists(self, **fields: Any) -> bool: ...
    def location(self, **fields: Any) -> Optional[str]: ...
    def locations(self, **fields: Any) -> list[str]: ...
    def count(self, **fields: Any) -> int: ...
    def records(self, **fields: Any) -> pyarrow.Table: ...
    def unique(self, field: str) -> list[str | int | datetime.date]: ...
    def fetch(self, cache_dir: Optional[str] = None, **fields: Any) -> pathlib.Path: ...

def build_manifest(
    source: str, out: str, template: str, *, location_column: str = "file_path", strict: bool = False,
    store: Optional[StoreOptions] = None,
) -> dict[str, Any]: ...
def pack(
    input_base: str, output_base: str, table: str, *, suffix: Optional[str] = None,
    output_format: Optional[str] = None, input_format: Optional[str] = None,
    max_file_size: int | str | None = None, partition: Optional[dict[str, str]] = None,
    partition_by: Optional[str] = None, schema: Any = None, force: bool = False,
    single_writer: bool = False, row_group_bytes: int | str | None = None, dry_run: bool = False,
    store: Optional[StoreOptions] = None, memory: int | str | None = None,
) -> dict[str, Any]: ...
def compact(
    output_base: str, table: str, *, suffix: Optional[str] = None, output_format: Optional[str] = None,
    max_file_size: int | str | None = None, partition: Optional[dict[str, str]] = None,
    single_writer: bool = False, row_group_bytes: int | str | None = None, dry_run: bool = False,
    store: Optional[StoreOptions] = None,
) -> dict[str, Any]: ...

class Datasets:
    url: str
    namespace: str
    def __init__(
        self, url: str, *, namespace: Optional[str] = None, single_writer: bool = False,
        store: Optional[StoreOptions] = None,
    ) -> None: ...
    def location(self, name: str) -> str: ...
    def put(
        self, name: str, data: Any, *, files: bool = False, date_key: Optional[tuple[str, str]] = None,
        id_key: Optional[tuple[str, int]] = None, version: Optional[str] = None, keep_last: bool = False,
        target_size: int | str | None = None, input_format: Optional[str] = None,
        sources: Optional[list[str]] = None, memory: int | str | None = None,
    ) -> dict[str, Any]: ...
    def get(
        self, name: str, *, version: Optional[str] = None, last: bool = False, as_of: Any = None,
        filter: Optional[str] = None, columns: Optional[list[str]] = None,
    ) -> pyarrow.Table: ...
    def scan(
        self, name: str, *, version: Optional[str] = None, last: bool = False, as_of: Any = None,
        filter: Optional[str] = None, columns: Optional[list[str]] = None,
    ) -> pyarrow.RecordBatchReader: ...
    def history(self, name: str, *, limit: Optional[int] = None) -> list[dict[str, Any]]: ...
    def list(self, prefix: str = "") -> list[dict[str, Any]]: ...
    def names(self, prefix: str = "") -> list[str]: ...
    def info(self, name: str) -> dict[str, Any]: ...
    def exists(self, name: str) -> bool: ...
    def remove(self, name: str) -> dict[str, Any]: ...
    def vacuum(self, name: str, *, retain: Any = None, dry_run: bool = False) -> dict[str, Any]: ...
    def compact(self, name: str, *, target_size: int | str | None = None) -> dict[str, Any]: ...

def sql(
    query: str, *, files: Sequence[tuple[str, str, Optional[str]]] = ...,
    datasets: Sequence[tuple[str, Datasets, str, Optional[int]]] = ...,
    arrow: Sequence[tuple[str, Any]] = ..., limit: Optional[int] = None, store: Optional[StoreOptions] = None,
) -> pyarrow.Table: ...

class Index:
    url: str
    location: str
    format: str
    compression: Optional[str]
    records: int
    size: int
    data_size: Optional[int]
    checkpoints: Optional[int]
    def plan(
        self, *, count: Optional[int] = None, bytes: int | str | None = None, records: Optional[int] = None,
        grid: Optional[tuple[int, int]] = None, level: Optional[int] = None,
        interval: float | str | datetime.timedelta | None = None,
    ) -> list[Slice]: ...

class Slice:
    url: str
    number: int
    slices: int
    format: str
    compression: Optional[str]
    first_record: int
    record_count: int
    ranges: Optional[list[tuple[int, int]]]
    detail: dict[str, Any]
    def fetch(self, *, store: Optional[StoreOptions] = None, **store_options: Any) -> bytes: ...
    def fetch_to(
        self, folder: str | os.PathLike[str], *, store: Optional[StoreOptions] = None, **store_options: Any
    ) -> list[str]: ...
    def records(self, *, store: Optional[StoreOptions] = None, **store_options: Any) -> Iterator[bytes]: ...
    def to_arrow(
        self, *, schema: Any = None, store: Optional[StoreOptions] = None, **store_options: Any
    ) -> pyarrow.Table: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> Slice: ...

def index(
    url: str, format: Optional[str] = None, *, spacing: int | str | None = None, header: bool = True,
    spatial: bool = False, index_store: Optional[str] = None, store: Optional[StoreOptions] = None,
) -> Index: ...
def open_index(url: str, *, index_store: Optional[str] = None, store: Optional[StoreOptions] = None) -> Index: ...
def plan(
    url: str, *, count: Optional[int] = None, bytes: int | str | None = None, records: Optional[int] = None,
    grid: Optional[tuple[int, int]] = None, level: Optional[int] = None,
    interval: float | str | datetime.timedelta | None = None,
    index_store: Optional[str] = None, store: Optional[StoreOptions] = None,
) -> list[Slice]: ...
