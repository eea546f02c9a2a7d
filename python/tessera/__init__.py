"""tessera: data in object storage, from Python.

One Rust library behind the ``tessera`` command, its server and this
package: every call here is one library operation, with the GIL released
while it works.

- Listing and manifests: :func:`ls`, :func:`build_manifest`, :class:`Manifest`.
- Packing files into evenly sized tables: :func:`pack`, :func:`compact`.
- Versioned, partitioned datasets: :class:`Datasets` (pandas and Arrow in,
  ``pyarrow.Table`` / ``RecordBatchReader`` out).
- SQL over files, folders, datasets, manifests and Arrow data: :func:`sql`.
- Byte-range slices for parallel workers: :func:`index`, :func:`plan`,
  :class:`Slice` (picklable: hand them to Dask, Ray or multiprocessing).
- A client for a running ``tessera serve``: :class:`Client`.

Every function that takes a URL accepts a local path, ``file://``,
``s3://``, ``gs://``, ``az://`` or ``memory://``, and the store settings as
keywords (``profile=``, ``endpoint=``, ``region=``, ``max_retries=``,
``config=``) or as ``store=StoreOptions(...)``; unset settings come from the
environment (``AWS_PROFILE``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, keys …)
exactly as for the command line.
"""

from __future__ import annotations

import datetime as _dt
import os as _os
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from . import _tessera
from ._tessera import Index, Slice, StoreOptions
from .errors import (
    AccessDeniedError,
    AlreadyExistsError,
    ConflictError,
    InternalError,
    InvalidInputError,
    NotFoundError,
    SchemaError,
    StaleIndexError,
    StoreError,
    TesseraError,
)

__version__: str = _tessera.__version__

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "Client",
    "ConflictError",
    "DatasetTable",
    "Datasets",
    "Index",
    "InternalError",
    "InvalidInputError",
    "Manifest",
    "NotFoundError",
    "Report",
    "SchemaError",
    "Slice",
    "StaleIndexError",
    "StoreError",
    "StoreOptions",
    "TesseraError",
    "build_manifest",
    "compact",
    "fetch",
    "index",
    "ls",
    "open_index",
    "pack",
    "plan",
    "sql",
]

PathLike = Union[str, "_os.PathLike[str]"]

_STORE_KEYS = ("profile", "endpoint", "region", "max_retries", "config")


class Report(dict):
    """What an operation did: a ``dict`` whose keys are also attributes
    (``report.rows`` is ``report["rows"]``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.keys()))


def _report(value: Any) -> Any:
    if isinstance(value, dict):
        return Report({k: _report(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_report(v) for v in value]
    return value


def _store(store: Optional[StoreOptions], kw: dict) -> Optional[StoreOptions]:
    """The store options: ``store=`` or the store keywords, not both."""
    given = {k: kw.pop(k) for k in _STORE_KEYS if k in kw}
    if kw:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(kw))}")
    if store is not None and not isinstance(store, StoreOptions):
        raise TypeError(f"store must be a tessera.StoreOptions, not {type(store).__name__}")
    if given:
        if store is not None:
            raise TypeError("give store=StoreOptions(...) or store keywords, not both")
        return StoreOptions(**given)
    return store


def _path(p: PathLike) -> str:
    if isinstance(p, str):
        return p
    if isinstance(p, _os.PathLike):
        return _os.fspath(p)
    raise TypeError(f"expected a path or URL string, not {type(p).__name__}")


# ---------------------------------------------------------------- listing


def ls(url: PathLike, *, detail: bool = False, store: Optional[StoreOptions] = None, **kw: Any) -> list:
    """The objects under a prefix (recursively), as URLs sorted by key; with
    ``detail=True`` as :class:`Report` items with ``url``, ``size`` and
    ``last_modified`` (a timezone-aware ``datetime``)."""
    rows = _tessera.ls(_path(url), store=_store(store, kw))
    if not detail:
        return [u for u, _, _ in rows]
    return [
        Report(url=u, size=size, last_modified=_dt.datetime.fromisoformat(t))
        for u, size, t in rows
    ]


def fetch(
    url: PathLike, *, cache_dir: Optional[PathLike] = None, store: Optional[StoreOptions] = None, **kw: Any
):
    """Download an object into the local cache and return its
    ``pathlib.Path`` (``cache_dir``, else ``TESSERA_CACHE`` or
    ``~/.cache/tessera``); a cached copy is reused while the object's ETag is
    unchanged, and a local file is returned as it is."""
    return _tessera.fetch(
        _path(url), cache_dir=None if cache_dir is None else _path(cache_dir), store=_store(store, kw)
    )


# -------------------------------------------------------------- manifests


def build_manifest(
    source: PathLike,
    out: PathLike,
    template: str,
    *,
    location_column: str = "file_path",
    strict: bool = False,
    store: Optional[StoreOptions] = None,
    **kw: Any,
) -> Report:
    """Build a manifest: match every path of ``source`` (a paths file, one
    key or URL per line, or a prefix to list) against ``template`` (e.g.
    ``"data/{gene_id}/{tissue_id:int32}.parquet"``), and publish the sorted
    records as Parquet at ``out``. Returns the summary (``read``,
    ``matched``, ``skipped``, ``duplicates``, examples, ``bytes_written``)."""
    return _report(
        _tessera.build_manifest(
            _path(source),
            _path(out),
            template,
            location_column=location_column,
            strict=strict,
            store=_store(store, kw),
        )
    )


class Manifest:
    """A manifest opened for lookups (all records in memory, indexed).

    >>> m = Manifest.open("s3://bucket/manifest.parquet")      # doctest: +SKIP
    >>> m.exists(gene_id="GENE123", tissue_id=45)               # doctest: +SKIP
    True
    """

    def __init__(self, inner: "_tessera.Manifest") -> None:
        self._m = inner
        # Lookups go straight to the native methods (about a microsecond a
        # call): these instance attributes shadow the documented methods below.
        self.exists = inner.exists
        self.location = inner.location
        self.locations = inner.locations
        self.count = inner.count
        self.records = inner.records
        self.unique = inner.unique

    @classmethod
    def open(
        cls,
        url: PathLike,
        *,
        location_column: Optional[str] = None,
        store: Optional[StoreOptions] = None,
        **kw: Any,
    ) -> "Manifest":
        """Open a manifest (tessera's, or another tool's Parquet file with
        the field columns and a location column)."""
        return cls(
            _tessera.Manifest.open(
                _path(url), location_column=location_column, store=_store(store, kw)
            )
        )

    @property
    def url(self) -> str:
        """Where the manifest was read from."""
        return self._m.url

    @property
    def fields(self) -> list[str]:
        """The field columns."""
        return self._m.fields

    @property
    def location_column(self) -> str:
        """The column holding each record's location."""
        return self._m.location_column

    def __len__(self) -> int:
        return len(self._m)

    def __repr__(self) -> str:
        return repr(self._m)

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def exists(self, **fields: Any) -> bool:
        """Whether a record has every ``field=value`` given (values: str,
        int or ``datetime.date``, compared as the column's type)."""
        return self._m.exists(**fields)

    def location(self, **fields: Any) -> Optional[str]:
        """The location of the first matching record, or ``None``."""
        return self._m.location(**fields)

    def locations(self, **fields: Any) -> list[str]:
        """The locations of every matching record."""
        return self._m.locations(**fields)

    def count(self, **fields: Any) -> int:
        """How many records match."""
        return self._m.count(**fields)

    def records(self, **fields: Any):
        """The matching records as a ``pyarrow.Table`` (all without conditions)."""
        return self._m.records(**fields)

    def unique(self, field: str) -> list:
        """The distinct values of a field, sorted."""
        return self._m.unique(field)

    def fetch(self, *, cache_dir: Optional[PathLike] = None, **fields: Any):
        """Download the first matching object through the local cache and
        return its ``pathlib.Path`` (``cache_dir``, else ``TESSERA_CACHE`` or
        ``~/.cache/tessera``). :class:`NotFoundError` when nothing matches."""
        return self._m.fetch(cache_dir=None if cache_dir is None else _path(cache_dir), **fields)


# ---------------------------------------------------------------- packing


def _partition(partition: Optional[Mapping[str, Any]]) -> Optional[dict]:
    if partition is None:
        return None
    if not isinstance(partition, Mapping):
        raise TypeError("partition must be a mapping such as {'day': '2024-03-01'}")
    return {str(k): str(v) for k, v in partition.items()}


def pack(
    input_base: PathLike,
    output_base: PathLike,
    table: str,
    *,
    suffix: Optional[str] = None,
    output_format: Optional[str] = None,
    input_format: Optional[str] = None,
    max_file_size: Union[int, str, None] = None,
    partition: Optional[Mapping[str, Any]] = None,
    partition_by: Optional[str] = None,
    schema: Any = None,
    force: bool = False,
    single_writer: bool = False,
    row_group_bytes: Union[int, str, None] = None,
    dry_run: bool = False,
    store: Optional[StoreOptions] = None,
    memory: Union[int, str, None] = None,
    **kw: Any,
) -> Report:
    """Pack the files under ``input_base/table/`` into evenly sized files
    (default 256 MB of snappy Parquet) under ``output_base/table/``, each
    input exactly once, however often it is run. The options are the
    ``tessera pack`` command's: ``output_format``/``input_format`` are file
    extensions (``"snappy.parquet"``, ``"csv.gz"``), ``partition`` a dict of
    partition folders, ``schema`` a ``pyarrow.Schema``, ``memory`` what a
    ``partition_by`` split may use (default 1 GiB; rows beyond a share of it
    wait on local disk). ``dry_run=True``
    returns the plan without writing. Returns the report (``rows``,
    ``outputs``, ``inputs``, ``already_packed`` …)."""
    return _report(
        _tessera.pack(
            _path(input_base),
            _path(output_base),
            table,
            suffix=suffix,
            output_format=output_format,
            input_format=input_format,
            max_file_size=max_file_size,
            partition=_partition(partition),
            partition_by=partition_by,
            schema=schema,
            force=force,
            single_writer=single_writer,
            row_group_bytes=row_group_bytes,
            dry_run=dry_run,
            store=_store(store, kw),
            memory=memory,
        )
    )


def compact(
    output_base: PathLike,
    table: str,
    *,
    suffix: Optional[str] = None,
    output_format: Optional[str] = None,
    max_file_size: Union[int, str, None] = None,
    partition: Optional[Mapping[str, Any]] = None,
    single_writer: bool = False,
    row_group_bytes: Union[int, str, None] = None,
    dry_run: bool = False,
    store: Optional[StoreOptions] = None,
    **kw: Any,
) -> Report:
    """Rebalance the files of ``output_base/table/`` into evenly sized
    files (``tessera pack --compact``)."""
    return _report(
        _tessera.compact(
            _path(output_base),
            table,
            suffix=suffix,
            output_format=output_format,
            max_file_size=max_file_size,
            partition=_partition(partition),
            single_writer=single_writer,
            row_group_bytes=row_group_bytes,
            dry_run=dry_run,
            store=_store(store, kw),
        )
    )


# --------------------------------------------------------------- datasets


def _arrow(data: Any) -> Any:
    """Arrow data from what users hand in (pandas, Polars, pyarrow …)."""
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return data
    mod = type(data).__module__
    if mod.startswith("pandas"):
        import pyarrow as pa

        if type(data).__name__ == "DataFrame":
            return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, (int, float, bool, bytes)) or data is None:
        raise TypeError(
            "data must be a pandas DataFrame, Arrow data (pyarrow Table, RecordBatch, "
            "RecordBatchReader, or anything with __arrow_c_stream__), or file paths; "
            f"not {type(data).__name__}"
        )
    if isinstance(data, Mapping):
        import pyarrow as pa

        return pa.table(data)
    raise TypeError(
        "data must be a pandas DataFrame, Arrow data (pyarrow Table, RecordBatch, "
        f"RecordBatchReader, or anything with __arrow_c_stream__), or file paths; not {type(data).__name__}"
    )


def _date_key(k: Any) -> Optional[tuple]:
    if k is None:
        return None
    if isinstance(k, str):
        col, _, unit = k.partition(":")
        return (col, unit or "day") if ":" in k and unit else (k, "day")
    if isinstance(k, tuple) and len(k) == 2:
        return (str(k[0]), str(k[1]))
    raise TypeError("date_key must be a column name or (column, 'day'|'month'|'year')")


def _id_key(k: Any) -> Optional[tuple]:
    if k is None:
        return None
    if isinstance(k, str):
        return (k, 100_000)
    if isinstance(k, tuple) and len(k) == 2 and isinstance(k[1], int) and not isinstance(k[1], bool):
        if k[1] <= 0:
            raise InvalidInputError(f"ID key '{k[0]}': the width must be a positive integer, not {k[1]}")
        return (str(k[0]), k[1])
    raise TypeError("id_key must be a column name or (column, width)")


class DatasetTable:
    """A dataset as a table of :func:`sql` (see :meth:`Datasets.table`)."""

    __slots__ = ("datasets", "name", "version")

    def __init__(self, datasets: "Datasets", name: str, version: Optional[int] = None) -> None:
        self.datasets = datasets
        self.name = name
        self.version = version

    def __repr__(self) -> str:
        v = "" if self.version is None else f", version={self.version}"
        return f"DatasetTable({self.datasets.url!r}, {self.name!r}{v})"


class Datasets:
    """The versioned, partitioned datasets (Delta tables) of one namespace
    of a store.

    >>> ds = Datasets("s3://bucket/warehouse")                  # doctest: +SKIP
    >>> ds.put("sales", df, date_key="day", version="2024-03")  # doctest: +SKIP
    >>> ds.get("sales", where="day >= '2024-03-01'").to_pandas()  # doctest: +SKIP
    """

    __slots__ = ("_d",)

    def __init__(
        self,
        url: PathLike,
        *,
        namespace: Optional[str] = None,
        single_writer: bool = False,
        store: Optional[StoreOptions] = None,
        **kw: Any,
    ) -> None:
        self._d = _tessera.Datasets(
            _path(url), namespace=namespace, single_writer=single_writer, store=_store(store, kw)
        )

    @property
    def url(self) -> str:
        """The store."""
        return self._d.url

    @property
    def namespace(self) -> str:
        """The namespace."""
        return self._d.namespace

    def __repr__(self) -> str:
        return repr(self._d)

    def location(self, name: str) -> str:
        """Where a dataset's Delta table is (readable by any Delta reader)."""
        return self._d.location(name)

    def put(
        self,
        name: str,
        data: Any,
        *,
        date_key: Any = None,
        id_key: Any = None,
        version: Optional[str] = None,
        keep_last: bool = False,
        target_size: Union[int, str, None] = None,
        input_format: Optional[str] = None,
        memory: Union[int, str, None] = None,
    ) -> Report:
        """Load rows as a new version of ``name`` (created on first load).

        ``data``: a pandas DataFrame, Arrow data (``pyarrow.Table``,
        ``RecordBatch``, ``RecordBatchReader``, Polars, anything with
        ``__arrow_c_stream__``), or a file path/URL or list of them (CSV,
        TSV, JSON Lines, Parquet; ``input_format`` names their extension when
        the names do not tell). ``date_key``: a column partitioned by day, or
        ``(column, "day"|"month"|"year")``; ``id_key``: ``(column, width)``
        ID ranges; both fixed by the first load. ``version``: the version key
        (default: the load time); ``keep_last``: make this the only version.
        ``memory``: what the load may use (bytes or ``"512MB"``, default
        1 GiB): rows beyond a share of it are spilled to local disk, so
        memory does not grow with the number of partitions.
        The load commits whole or not at all."""
        if isinstance(data, (str, _os.PathLike)) or (
            isinstance(data, (list, tuple)) and data and all(isinstance(d, (str, _os.PathLike)) for d in data)
        ):
            files = [_path(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
            return _report(
                self._d.put(
                    name, files, files=True, date_key=_date_key(date_key), id_key=_id_key(id_key),
                    version=version, keep_last=keep_last, target_size=target_size,
                    input_format=input_format, memory=memory,
                )
            )
        return _report(
            self._d.put(
                name, _arrow(data), date_key=_date_key(date_key), id_key=_id_key(id_key),
                version=version, keep_last=keep_last, target_size=target_size,
                memory=memory,
            )
        )

    @staticmethod
    def _as_of(as_of: Any) -> Any:
        if isinstance(as_of, _dt.datetime) and as_of.tzinfo is None:
            return as_of.replace(tzinfo=_dt.timezone.utc).isoformat()
        return as_of

    def get(
        self,
        name: str,
        *,
        version: Optional[str] = None,
        last: bool = False,
        as_of: Any = None,
        where: Optional[str] = None,
        columns: Optional[Sequence[str]] = None,
    ):
        """Read rows into a ``pyarrow.Table`` (``.to_pandas()`` for pandas).

        ``version``: only the rows of that version key; ``last``: only the
        newest load's; ``as_of``: the dataset as it was at a Delta version
        (int) or a time (``datetime`` or string; naive times are UTC);
        ``where``: a SQL predicate (partitions it excludes are not read);
        ``columns``: the columns to return."""
        return self._d.get(
            name, version=version, last=last, as_of=self._as_of(as_of), filter=where,
            columns=None if columns is None else list(columns),
        )

    def scan(
        self,
        name: str,
        *,
        version: Optional[str] = None,
        last: bool = False,
        as_of: Any = None,
        where: Optional[str] = None,
        columns: Optional[Sequence[str]] = None,
    ):
        """Like :meth:`get`, as a streaming ``pyarrow.RecordBatchReader``
        (memory bounded by batches, not by the dataset)."""
        return self._d.scan(
            name, version=version, last=last, as_of=self._as_of(as_of), filter=where,
            columns=None if columns is None else list(columns),
        )

    def history(self, name: str, *, limit: Optional[int] = None) -> list[Report]:
        """The dataset's versions, newest first (``version``, ``time``,
        ``operation``, ``version_key``, ``rows`` …)."""
        return _report(self._d.history(name, limit=limit))

    def list(self, prefix: str = "") -> list[Report]:
        """The datasets whose names start with ``prefix``, with their sizes."""
        return _report(self._d.list(prefix))

    def names(self, prefix: str = "") -> list[str]:
        """The dataset names that start with ``prefix``."""
        return self._d.names(prefix)

    def info(self, name: str) -> Report:
        """A dataset's current version, files, bytes, rows and partitioning."""
        return _report(self._d.info(name))

    def exists(self, name: str) -> bool:
        """Whether a dataset exists."""
        return self._d.exists(name)

    def remove(self, name: str) -> Report:
        """Delete a dataset and all its objects."""
        return _report(self._d.remove(name))

    def vacuum(self, name: str, *, retain: Any = None, dry_run: bool = False) -> Report:
        """Delete files no version within ``retain`` (seconds, a
        ``timedelta`` or ``"7d"``; default 7 days) needs."""
        return _report(self._d.vacuum(name, retain=retain, dry_run=dry_run))

    def compact(self, name: str, *, target_size: Union[int, str, None] = None) -> Report:
        """Rewrite small files into files of about ``target_size`` bytes (a
        new version with the same rows)."""
        return _report(self._d.compact(name, target_size=target_size))

    def table(self, name: str, version: Optional[int] = None) -> DatasetTable:
        """This dataset as a table for :func:`sql` (at a Delta version if given)."""
        return DatasetTable(self, name, version)


# -------------------------------------------------------------------- SQL


def sql(
    query: str,
    tables: Optional[Mapping[str, Any]] = None,
    *,
    limit: Optional[int] = None,
    store: Optional[StoreOptions] = None,
    **kw: Any,
):
    """Run one read-only query (SELECT, WITH, VALUES, EXPLAIN; DataFusion
    SQL) and return a ``pyarrow.Table``.

    ``tables`` maps each table name to its source: a file or folder URL
    (Parquet, CSV, TSV, JSON Lines; a folder's ``key=value`` partition
    folders become columns), a ``(url, format)`` pair, a :class:`Manifest`,
    ``Datasets.table(name)``, or Arrow data (pandas DataFrame, pyarrow
    Table, anything with ``__arrow_c_stream__``)."""
    files: list = []
    datasets: list = []
    arrow: list = []
    for name, src in (tables or {}).items():
        if not isinstance(name, str):
            raise TypeError("table names must be strings")
        if isinstance(src, (str, _os.PathLike)):
            files.append((name, _path(src), None))
        elif isinstance(src, tuple) and len(src) == 2 and isinstance(src[1], str):
            files.append((name, _path(src[0]), src[1]))
        elif isinstance(src, Manifest):
            files.append((name, src.url, "parquet"))
        elif isinstance(src, DatasetTable):
            datasets.append((name, src.datasets._d, src.name, src.version))
        elif isinstance(src, Datasets):
            raise TypeError(f"table '{name}': use datasets.table(name) for a dataset")
        else:
            arrow.append((name, _arrow(src)))
    return _tessera.sql(
        query, files=files, datasets=datasets, arrow=arrow, limit=limit, store=_store(store, kw)
    )


# ---------------------------------------------------------------- slicing


def index(
    url: PathLike,
    format: Optional[str] = None,
    *,
    spacing: Union[int, str, None] = None,
    header: bool = True,
    spatial: bool = False,
    index_store: Optional[str] = None,
    store: Optional[StoreOptions] = None,
    **kw: Any,
) -> Index:
    """Index an object and save the index beside it (or under
    ``index_store``): text formats (CSV, TSV, text, JSON Lines, FASTA,
    FASTQ, VCF; plain, gzip or BGZF) in one pass; LAS/LAZ point clouds and
    Cloud-Optimized GeoTIFFs (``cog``) from their headers and tables with a
    few ranged reads. ``format`` is guessed from the name when not given.
    ``spatial=True`` (LAS/LAZ) also reads every point once to record where
    the points lie, so that ``plan(grid=(columns, rows))`` can cut the
    cloud into cells."""
    return _tessera.index(
        _path(url), format, spacing=spacing, header=header, spatial=spatial, index_store=index_store,
        store=_store(store, kw),
    )


def open_index(
    url: PathLike, *, index_store: Optional[str] = None, store: Optional[StoreOptions] = None, **kw: Any
) -> Index:
    """The saved index of an object (:class:`StaleIndexError` if the object
    changed since, :class:`NotFoundError` if it was never indexed)."""
    return _tessera.open_index(_path(url), index_store=index_store, store=_store(store, kw))


def plan(
    url: PathLike,
    *,
    count: Optional[int] = None,
    bytes: Union[int, str, None] = None,
    records: Optional[int] = None,
    grid: Optional[tuple[int, int]] = None,
    level: Optional[int] = None,
    interval: Union[float, str, _dt.timedelta, None] = None,
    index_store: Optional[str] = None,
    store: Optional[StoreOptions] = None,
    **kw: Any,
) -> list[Slice]:
    """Plan slices of an indexed object from its index alone: exactly one
    of ``count`` (about this many even slices), ``bytes`` (about this many
    stored bytes each), ``records`` (this many records each: LAS/LAZ
    points, COG tiles, MeasurementSet rows over whole timestamps), ``grid``
    (``(columns, rows)``: COG tile-aligned windows, COPC nodes, LAS/LAZ
    points after ``index(..., spatial=True)``) or ``interval``
    (MeasurementSets: whole timestamps spanning less than this each, in
    seconds, a ``timedelta`` or a string such as ``"10min"``); ``level``
    (COG: an overview level, 0 the full resolution; COPC: a level of
    detail) cuts that level into ``count`` slices. Fetched in order, the
    slices give every record exactly once; a LAS/LAZ slice fetches as a
    standalone LAS/LAZ file, a COG slice as a standalone GeoTIFF, an imzML
    or MeasurementSet slice as a tar stream of its files."""
    return _tessera.plan(
        _path(url), count=count, bytes=bytes, records=records, grid=grid, level=level,
        interval=interval, index_store=index_store, store=_store(store, kw),
    )


def __getattr__(name: str) -> Any:
    # The HTTP client imports urllib and pyarrow.ipc only when used.
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'tessera' has no attribute {name!r}")
