"""Dataplug's ``CloudObject``, data formats and partitioning strategies over tessera slicing.

The reference's partitioning example runs with one import changed::

    from tessera.compat import CloudObject, FASTQGZip, partition_reads_batches

    co = CloudObject.from_s3(FASTQGZip, "s3://genomics/SRR6052133_1.fastq.gz")
    co.preprocess(parallel_config={"backend": "dask"})    # builds tessera's index once
    data_slices = co.partition(partition_reads_batches, num_batches=200)
    fastq_reads = data_slices[0].get()                    # list of lines, as the reference

``preprocess`` runs :func:`tessera.index` (no ``gztool``, no ``.meta``
bucket: the index is a sidecar object beside the data, or under
``index_store``/``metadata_bucket``); strategies plan with :func:`tessera.plan`
from the index alone; a slice's ``get()`` fetches its byte ranges with
:meth:`tessera.Slice.fetch` and returns what the reference's slice returns
for that format:

==============  ==============  ============================================
format class    tessera format  ``get()`` returns
==============  ==============  ============================================
``FASTQGZip``   ``fastq``       ``list[str]``: the lines of whole reads
``GZipText``    ``text``        ``list[str]``: whole lines
``UTF8Text``    ``text``        ``str``: whole lines
``CSV``         ``csv``         ``str``: the header, then whole rows
``TSV``         ``tsv``         ``str``: the header, then whole rows
``VCF``         ``vcf``         ``str``: the header, then whole records
``FASTA``       ``fasta``       ``bytes``: whole sequence lines, after the
                                header line of the sequence they belong to
``JSONL``       ``jsonl``       ``list[str]``: whole lines
==============  ==============  ============================================

Compression (gzip, BGZF) is detected from the bytes, so every class reads
both plain and compressed objects. ``FASTQ``, ``TSV`` and ``JSONL`` are
tessera additions.

Slices pickle small and without credentials (a worker uses its own
environment's), so they can be shipped to Dask, Ray or Spark workers.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import namedtuple
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import tessera
from tessera.errors import NotFoundError, StaleIndexError

from .manifest import boto_to_store, merge_store

__all__ = [
    "CSV",
    "FASTA",
    "FASTQ",
    "FASTQGZip",
    "GZipText",
    "JSONL",
    "TSV",
    "UTF8Text",
    "VCF",
    "CloudObject",
    "DataFormat",
    "DataSlice",
    "partition_chunk_lines",
    "partition_chunk_size",
    "partition_chunks_strategy",
    "partition_num_chunks",
    "partition_reads_batches",
    "partition_sequences_per_chunk",
    "whole_words_strategy",
]

# s3_config keys of the reference that tune its boto3 client: tessera's
# store has its own settings (retries, timeouts), so they are dropped.
_IGNORED_S3_CONFIG = frozenset(
    {"botocore_config_kwargs", "s3_config_kwargs", "use_token", "token_duration_seconds"}
)

def _s3_config_to_store(s3_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The reference's ``s3_config`` as tessera store keywords: ``region_name``,
    ``endpoint_url``, ``credentials`` (``{"AccessKeyId", "SecretAccessKey",
    "SessionToken"}``) or the older ``aws_access_key_id``/``aws_secret_access_key``;
    client tuning keys are dropped; ``role_arn`` (STS assume-role) is refused."""
    if s3_config is None:
        return {}
    if not isinstance(s3_config, Mapping):
        raise TypeError(f"s3_config must be a dict, not {type(s3_config).__name__}")
    config = dict(s3_config)
    credentials = config.pop("credentials", None)
    if credentials is not None:
        if not isinstance(credentials, Mapping):
            raise TypeError("s3_config['credentials'] must be a dict")
        if not all(k in credentials for k in ("AccessKeyId", "SecretAccessKey")):
            raise ValueError(
                "Invalid credentials. AccessKeyId and SecretAccessKey are required "
                "if credentials are provided."
            )
        config.setdefault("aws_access_key_id", credentials["AccessKeyId"])
        config.setdefault("aws_secret_access_key", credentials["SecretAccessKey"])
        if credentials.get("SessionToken") is not None:
            config.setdefault("aws_session_token", credentials["SessionToken"])
    return boto_to_store(config, argument="s3_config", ignored=_IGNORED_S3_CONFIG)


# Store keywords that may carry secrets: kept in this process, never pickled.
_SECRET_STORE_KEYS = frozenset({"config", "store"})

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)/?(.*)$")


# -- formats -------------------------------------------------------------------


class DataFormat:
    """A data format: which tessera record format indexes the object, and
    what a slice's ``get()`` returns (``"lines"``: ``list[str]``;
    ``"text"``: ``str``; ``"bytes"``: ``bytes``)."""

    format: ClassVar[str] = "text"
    result: ClassVar[str] = "text"
    #: Lines per record, for the reference's line-numbered attributes.
    lines_per_record: ClassVar[int] = 1


class CSV(DataFormat):
    """Comma-separated values with a header line (RFC 4180 quoting: a quoted
    field may hold newlines). ``preprocess(extra_args={"separator": "\\t"})``
    reads tab-separated values, as the reference's separator argument."""

    format = "csv"
    result = "text"


class TSV(CSV):
    """Tab-separated values with a header line (a tessera addition)."""

    format = "tsv"


class UTF8Text(DataFormat):
    """Plain UTF-8 text; slices hold whole lines."""

    format = "text"
    result = "text"


class GZipText(DataFormat):
    """gzip-compressed text (plain text works too); ``get()`` gives the lines."""

    format = "text"
    result = "lines"


class FASTQGZip(GZipText):
    """FASTQ reads (4 lines each), gzip-compressed or plain; ``get()`` gives the lines."""

    format = "fastq"
    result = "lines"
    lines_per_record = 4


#: Plain FASTQ: the same class (compression is detected from the bytes).
FASTQ = FASTQGZip


class FASTA(DataFormat):
    """FASTA sequences; ``get()`` gives the slice's bytes."""

    format = "fasta"
    result = "bytes"


class VCF(DataFormat):
    """VCF (plain or BGZF-compressed); ``get()`` gives the header and whole records."""

    format = "vcf"
    result = "text"


class JSONL(DataFormat):
    """JSON Lines (a tessera addition); ``get()`` gives the lines."""

    format = "jsonl"
    result = "lines"


def _format_class(data_format: Any) -> type[DataFormat]:
    if isinstance(data_format, type) and issubclass(data_format, DataFormat):
        return data_format
    raise TypeError(
        "data_format must be one of tessera.compat's format classes "
        "(CSV, TSV, UTF8Text, GZipText, FASTQGZip, FASTA, VCF, JSONL), not "
        f"{data_format!r}"
    )


# -- paths -----------------------------------------------------------------------


class StoragePath(str):
    """An object's URL (a ``str``), with the reference's ``bucket``, ``key``
    and ``as_uri()``."""

    @property
    def bucket(self) -> str:
        """The bucket (empty for local paths)."""
        m = _URL.match(self)
        return m.group(2) if m and m.group(1).lower() != "file" else ""

    @property
    def key(self) -> str:
        """The key inside the bucket (the path for local files)."""
        m = _URL.match(self)
        if m is None:
            return str(self)
        if m.group(1).lower() == "file":
            return str(self)[len("file://") :]
        return m.group(3)

    def as_uri(self) -> str:
        """The URL as a plain ``str``."""
        return str(self)


def _local_path(url: str) -> str | None:
    """The local path of a plain path or ``file://`` URL; ``None`` for stores."""
    if url.startswith("file://"):
        return url[len("file://") :]
    if _URL.match(url):
        return None
    return url


def _index_store(url: str, metadata_bucket: str | None, index_store: str | None) -> str | None:
    if metadata_bucket is not None and index_store is not None:
        raise ValueError("give metadata_bucket= or index_store=, not both")
    if index_store is not None:
        if not isinstance(index_store, (str, os.PathLike)):
            raise TypeError(f"index_store must be a str, not {type(index_store).__name__}")
        return os.fspath(index_store)
    if metadata_bucket is None:
        return None
    if not isinstance(metadata_bucket, str) or not metadata_bucket:
        raise TypeError("metadata_bucket must be a non-empty str")
    if "://" in metadata_bucket or "/" in metadata_bucket:
        return metadata_bucket
    m = _URL.match(url)
    if m is None or m.group(1).lower() == "file":
        raise ValueError(
            f"metadata_bucket {metadata_bucket!r} names a bucket, but {url} is a local file: "
            "give a folder (or index_store=) instead"
        )
    return f"{m.group(1)}://{metadata_bucket}"


# -- slices ----------------------------------------------------------------------


def _secret_store_options(store: Mapping[str, Any]) -> Any:
    """The ``tessera.StoreOptions`` to fetch with in this process, when the
    store keywords hold settings a slice does not carry (access keys, a
    ``StoreOptions``); ``None`` lets a slice use the settings it carries
    and the environment's credentials."""
    if not _SECRET_STORE_KEYS & store.keys():
        return None
    if "store" in store:
        return store["store"]
    return tessera.StoreOptions(**store)


def _split_lines(data: bytes) -> list[str]:
    """Lines of UTF-8 text without their line ends (``\\n`` or ``\\r\\n``)."""
    if not data:
        return []
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return [(p[:-1] if p.endswith(b"\r") else p).decode("utf-8") for p in parts]


class DataSlice:
    """A lazily evaluated part of a preprocessed object: one or more
    consecutive :class:`tessera.Slice` descriptors. Nothing is read until
    :meth:`get`.

    Attributes as in the reference: ``chunk_id``, ``num_chunks``,
    ``range_0``/``range_1`` (first and last byte read, end exclusive),
    ``line_0``/``line_1`` (1-based lines, end exclusive, for line formats),
    and ``cloud_object``. ``tessera_slices`` holds the descriptors.
    """

    def __init__(
        self,
        slices: list[Any],
        data_format: type[DataFormat],
        chunk_id: int,
        num_chunks: int,
        cloud_object: CloudObject | None = None,
        store: Mapping[str, Any] | None = None,
    ) -> None:
        if not slices:
            raise ValueError("a DataSlice needs at least one tessera slice")
        self.tessera_slices: list[Any] = list(slices)
        self.data_format: type[DataFormat] = data_format
        self.chunk_id: int = chunk_id
        self.num_chunks: int = num_chunks
        self.cloud_object: CloudObject | None = cloud_object
        self._store: dict[str, Any] = dict(store or {})

    # Attributes of the reference's slices.

    @property
    def range_0(self) -> int:
        """First byte of the object this slice reads."""
        return int(self.tessera_slices[0].ranges[0][0])

    @property
    def range_1(self) -> int:
        """One past the last byte of the object this slice reads."""
        return int(self.tessera_slices[-1].ranges[-1][1])

    @property
    def first_record(self) -> int:
        """Number (0-based) of the slice's first record."""
        return int(self.tessera_slices[0].first_record)

    @property
    def record_count(self) -> int:
        """Records in this slice."""
        return sum(int(s.record_count) for s in self.tessera_slices)

    @property
    def line_0(self) -> int:
        """1-based number of the slice's first line (line formats)."""
        return self.first_record * self.data_format.lines_per_record + 1

    @property
    def line_1(self) -> int:
        """1-based number of the line after the slice's last line (line formats)."""
        return (self.first_record + self.record_count) * self.data_format.lines_per_record + 1

    # Evaluation.

    def get_bytes(self) -> bytes:
        """The slice's bytes in the source format (decompressed; with the
        header first for CSV/TSV/VCF)."""
        store = _secret_store_options(self._store)
        return b"".join(bytes(s.fetch(store=store)) for s in self.tessera_slices)

    def get(self) -> Any:
        """Fetch the slice: ``list[str]`` of lines, ``str`` or ``bytes``, as
        the reference's slice of this format returns (see the module docs)."""
        data = self.get_bytes()
        result = self.data_format.result
        if result == "bytes":
            return data
        if result == "lines":
            return _split_lines(data)
        return data.decode("utf-8")

    def iter_lines(self) -> Iterator[str]:
        """The slice's lines, one descriptor fetched at a time."""
        store = _secret_store_options(self._store)
        for s in self.tessera_slices:
            yield from _split_lines(bytes(s.fetch(store=store)))

    def to_file(self, file_name: str | os.PathLike[str]) -> None:
        """Write the slice's bytes to a local file."""
        with open(file_name, "wb") as f:
            f.write(self.get_bytes())

    def to_file_obj(self, file_obj: Any, close_fd: bool = False) -> None:
        """Write the slice to an open file object (text or binary)."""
        data = self.get_bytes()
        if isinstance(file_obj, io.TextIOBase):
            file_obj.write(data.decode("utf-8"))
        else:
            file_obj.write(data)
        if close_fd and hasattr(file_obj, "close"):
            file_obj.close()

    def to_arrow(self) -> Any:
        """The slice's rows as a ``pyarrow.Table`` (CSV, TSV, JSON Lines)."""
        import pyarrow as pa

        store = _secret_store_options(self._store)
        tables = [s.to_arrow(store=store) for s in self.tessera_slices]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def get_as_pandas(self) -> Any:
        """The slice's rows as a pandas DataFrame (CSV, TSV, JSON Lines)."""
        return self.to_arrow().to_pandas()

    # Pickling: no credentials travel.

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_store"] = {k: v for k, v in self._store.items() if k not in _SECRET_STORE_KEYS}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        first = self.tessera_slices[0]
        return (
            f"DataSlice<{self.data_format.__name__}>({first.url}, chunk {self.chunk_id}/"
            f"{self.num_chunks}, records {self.first_record}+{self.record_count})"
        )


# -- cloud objects ---------------------------------------------------------------


class CloudObject:
    """A reference to an object of a given format in any store tessera reaches.

    Build it with :meth:`from_s3` (any URL: ``s3://``, ``gs://``, ``az://``,
    a local path, …). Store keywords (``profile=``, ``endpoint=``,
    ``region=``, ``config=``) and the reference's ``s3_config`` keys
    (``region_name``, ``endpoint_url``, ``credentials``, or the older
    ``aws_access_key_id``/``aws_secret_access_key``) are used in this
    process; pickled copies keep only the non-secret ones, and workers use
    their own environment's credentials.
    """

    def __init__(
        self,
        data_format: type[DataFormat],
        storage_uri: str,
        s3_config: Mapping[str, Any] | None = None,
        *,
        metadata_bucket: str | None = None,
        index_store: str | None = None,
        **store: Any,
    ) -> None:
        if not isinstance(storage_uri, (str, os.PathLike)):
            raise TypeError(f"storage_uri must be a str, not {type(storage_uri).__name__}")
        url = os.fspath(storage_uri)
        if not url:
            raise ValueError("storage_uri must not be empty")
        self._format_cls: type[DataFormat] = _format_class(data_format)
        self._url: str = url
        self._index_store: str | None = _index_store(url, metadata_bucket, index_store)
        self._store: dict[str, Any] = merge_store(_s3_config_to_store(s3_config), store)
        self._tessera_format: str = self._format_cls.format

    @classmethod
    def from_s3(
        cls,
        data_format: type[DataFormat],
        storage_uri: str,
        fetch: bool = True,
        metadata_bucket: str | None = None,
        s3_config: Mapping[str, Any] | None = None,
        *,
        index_store: str | None = None,
        **store: Any,
    ) -> CloudObject:
        """A reference to the object at ``storage_uri`` (any tessera location).

        ``fetch`` is accepted: the object is first read by :meth:`preprocess`
        (a missing object raises :class:`FileNotFoundError` there).
        ``metadata_bucket`` (or ``index_store``) puts the index in another
        bucket or folder instead of beside the object.
        """
        if isinstance(fetch, Mapping):
            # Older releases took s3_config as the third argument.
            s3_config, fetch = fetch, True
        return cls(
            data_format,
            storage_uri,
            s3_config,
            metadata_bucket=metadata_bucket,
            index_store=index_store,
            **store,
        )

    @classmethod
    def from_bucket_key(
        cls, data_format: type[DataFormat], bucket: str, key: str, fetch: bool = True, **store: Any
    ) -> CloudObject:
        """A reference to ``s3://{bucket}/{key}``."""
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise TypeError("bucket and key must be str")
        return cls(data_format, f"s3://{bucket}/{key.lstrip('/')}", **store)

    # -- properties ------------------------------------------------------------

    @property
    def path(self) -> StoragePath:
        """The object's URL."""
        return StoragePath(self._url)

    @property
    def data_format(self) -> type[DataFormat]:
        """The format class this object was opened with."""
        return self._format_cls

    @property
    def size(self) -> int:
        """The object's size in bytes (``FileNotFoundError`` if it does not exist).
        For an object in a store this lists the folder holding it."""
        size = self._stat()
        if size is None:
            raise FileNotFoundError(f"object not found: {self._url}")
        return size

    def _stat(self) -> int | None:
        local = _local_path(self._url)
        if local is not None:
            return os.path.getsize(local) if os.path.isfile(local) else None
        parent = self._url.rsplit("/", 1)[0]
        for entry in tessera.ls(parent, detail=True, **self._store):
            if entry.url == self._url:
                return int(entry.size)
        return None

    def exists(self) -> bool:
        """Whether the object exists (for a store: by listing the folder holding it)."""
        return self._stat() is not None

    def fetch(self) -> None:
        """Check that the object exists (``FileNotFoundError`` otherwise)."""
        if not self.exists():
            raise FileNotFoundError(f"object not found: {self._url}")

    def is_preprocessed(self) -> bool:
        """Whether a current index exists (an index of a changed object does not count)."""
        try:
            self._plan(count=1)
        except (NotFoundError, StaleIndexError):
            return False
        return True

    # -- preprocessing ------------------------------------------------------------

    def preprocess(
        self,
        parallel_config: Mapping[str, Any] | None = None,
        extra_args: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
        force: bool = False,
        debug: bool = False,
    ) -> None:
        """Index the object once with :func:`tessera.index` (a no-op when a
        current index exists, unless ``force``).

        ``parallel_config``, ``chunk_size`` and ``debug`` are accepted for the
        reference's joblib backends: tessera indexes in one streaming pass,
        using all cores where the format allows. ``extra_args`` takes the CSV
        ``separator`` (``","`` or ``"\\t"``).
        """
        if parallel_config is not None and not isinstance(parallel_config, Mapping):
            raise TypeError("parallel_config must be a dict")
        if chunk_size is not None:
            _positive(chunk_size, "chunk_size")
        fmt = self._format_cls.format
        for key, value in dict(extra_args or {}).items():
            if key in ("separator", "sep") and issubclass(self._format_cls, CSV):
                if value == "\t":
                    fmt = "tsv"
                elif value == ",":
                    fmt = self._format_cls.format
                else:
                    raise ValueError(
                        f"separator {value!r} is not supported: "
                        "tessera slices ',' (CSV) and '\\t' (TSV)"
                    )
            else:
                raise ValueError(
                    f"extra_args: {key!r} is not an argument of {self._format_cls.__name__}"
                )
        self._tessera_format = fmt
        if not force and self.is_preprocessed():
            return
        tessera.index(self._url, fmt, index_store=self._index_store, **self._store)

    # -- attributes -------------------------------------------------------------

    def _plan(self, **strategy: Any) -> list[Any]:
        return list(
            tessera.plan(self._url, index_store=self._index_store, **strategy, **self._store)
        )

    def _total_records(self) -> int:
        return sum(int(s.record_count) for s in self._plan(count=1))

    def _columns(self) -> list[str]:
        # The first of many slices is small; its text starts with the header.
        slices = self._plan(count=1024)
        text = bytes(slices[0].fetch(store=_secret_store_options(self._store))).decode("utf-8")
        if issubclass(self._format_cls, VCF):
            for line in text.splitlines():
                if line.startswith("#CHROM"):
                    return line[1:].split("\t")
            raise ValueError(f"{self._url} has no #CHROM header line")
        delimiter = "\t" if self._tessera_format == "tsv" or slices[0].format == "tsv" else ","
        return next(csv.reader(io.StringIO(text), delimiter=delimiter), [])

    def _attribute_names(self) -> list[str]:
        names = ["total_records"]
        cls = self._format_cls
        if issubclass(cls, (GZipText, UTF8Text, JSONL)):
            names.append("total_lines")
        if issubclass(cls, FASTA):
            names.append("num_sequences")
        if issubclass(cls, (CSV, VCF)):
            names.append("columns")
        return names

    def get_attribute(self, key: str) -> Any:
        """An attribute the reference's preprocessing records: ``total_lines``
        (line formats; 4 per FASTQ read), ``num_sequences`` (FASTA),
        ``columns`` (CSV, TSV, VCF), and ``total_records`` (every format).
        ``AttributeError`` for others."""
        if key not in self._attribute_names():
            raise AttributeError(
                f"{self._format_cls.__name__} objects have no attribute {key!r} "
                f"(available: {', '.join(self._attribute_names())})"
            )
        if key == "columns":
            return self._columns()
        total = self._total_records()
        if key == "total_lines":
            return total * self._format_cls.lines_per_record
        return total

    def __getitem__(self, key: str) -> Any:
        return self.get_attribute(key)

    @property
    def attributes(self) -> Any:
        """Every attribute of :meth:`get_attribute`, as a named tuple."""
        names = self._attribute_names()
        cls = namedtuple(self._format_cls.__name__ + "Attributes", names)  # type: ignore[misc]
        return cls(**{n: self.get_attribute(n) for n in names})

    # -- partitioning ------------------------------------------------------------

    def partition(self, strategy: Any, /, *args: Any, **kwargs: Any) -> list[DataSlice]:
        """Apply a partitioning strategy (``partition_reads_batches``, …):
        plans slices from the index, reading no data. ``strategy`` is
        positional-only, so a strategy's own ``strategy=`` keyword
        (``"expand"``/``"merge"``) passes through."""
        if not callable(strategy):
            raise TypeError(f"strategy must be a partitioning function, not {strategy!r}")
        slices = strategy(self, *args, **kwargs)
        for s in slices:
            s.cloud_object = self
        return list(slices)

    def _slices(self, merge_last_below: int | None = None, **strategy: Any) -> list[DataSlice]:
        """Plan tessera slices and wrap each in a :class:`DataSlice`; with
        ``merge_last_below``, a last slice with fewer records than that is
        merged into the one before it."""
        planned = self._plan(**strategy)
        groups: list[list[Any]] = [[s] for s in planned]
        if (
            merge_last_below is not None
            and len(groups) > 1
            and int(planned[-1].record_count) < merge_last_below
        ):
            last = groups.pop()
            groups[-1].extend(last)
        n = len(groups)
        return [
            DataSlice(g, self._format_cls, i, n, cloud_object=self, store=self._store)
            for i, g in enumerate(groups)
        ]

    # -- pickling and repr --------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_store"] = {k: v for k, v in self._store.items() if k not in _SECRET_STORE_KEYS}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"CloudObject<{self._format_cls.__name__}>({self._url})"


# -- partitioning strategies ------------------------------------------------------


def _check(cloud_object: Any, kinds: tuple[type[DataFormat], ...], strategy: str) -> CloudObject:
    if not isinstance(cloud_object, CloudObject):
        raise TypeError(f"{strategy} partitions a CloudObject, not {type(cloud_object).__name__}")
    if kinds and not issubclass(cloud_object.data_format, kinds):
        names = ", ".join(k.__name__ for k in kinds)
        raise ValueError(
            f"{strategy} partitions {names} objects, not {cloud_object.data_format.__name__}"
        )
    return cloud_object


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value


def _padding(value: Any) -> None:
    # The reference reads this many bytes past a range to finish a cut line;
    # tessera's slices end on record boundaries, so it is only checked.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"padding must be a non-negative int, not {value!r}")


def _strategy_mode(strategy: Any) -> bool:
    """Whether a remainder is merged (``"merge"``) or kept (``"expand"``)."""
    if strategy == "expand":
        return False
    if strategy == "merge":
        return True
    raise ValueError(f"Unknown strategy {strategy!r} (expected 'expand' or 'merge')")


def partition_reads_batches(cloud_object: CloudObject, num_batches: int) -> list[DataSlice]:
    """FASTQ: split the reads into ``num_batches`` batches of
    ``ceil(reads / num_batches)`` whole reads (fewer batches when there are
    fewer reads; never an empty one)."""
    co = _check(cloud_object, (FASTQGZip,), "partition_reads_batches")
    n = _positive(num_batches, "num_batches")
    total = co._total_records()
    if total == 0:
        return []
    return co._slices(records=math.ceil(total / n))


def partition_sequences_per_chunk(
    cloud_object: CloudObject, seq_per_chunk: int, strategy: str = "expand"
) -> list[DataSlice]:
    """FASTQ: slices of ``seq_per_chunk`` whole reads; the remainder is a
    smaller last slice (``"expand"``) or joins the one before (``"merge"``)."""
    co = _check(cloud_object, (FASTQGZip,), "partition_sequences_per_chunk")
    n = _positive(seq_per_chunk, "seq_per_chunk")
    merge = _strategy_mode(strategy)
    return co._slices(records=n, merge_last_below=n if merge else None)


def partition_chunk_lines(
    cloud_object: CloudObject, lines_per_chunk: int, strategy: str = "expand"
) -> list[DataSlice]:
    """Line formats: slices of ``lines_per_chunk`` lines (FASTQ: of
    ``lines_per_chunk // 4`` whole reads, at least one, since a read is never
    split); the remainder as in :func:`partition_sequences_per_chunk`."""
    co = _check(cloud_object, (GZipText, UTF8Text, JSONL), "partition_chunk_lines")
    lines = _positive(lines_per_chunk, "lines_per_chunk")
    merge = _strategy_mode(strategy)
    n = max(1, lines // co.data_format.lines_per_record)
    return co._slices(records=n, merge_last_below=n if merge else None)


def partition_num_chunks(
    cloud_object: CloudObject, num_chunks: int, padding: int = 256
) -> list[DataSlice]:
    """Any format: about ``num_chunks`` slices of even size (fewer when the
    object is too small to cut that often)."""
    co = _check(cloud_object, (), "partition_num_chunks")
    _padding(padding)
    return co._slices(count=_positive(num_chunks, "num_chunks"))


def partition_chunk_size(
    cloud_object: CloudObject, chunk_size: int, padding: int = 256
) -> list[DataSlice]:
    """Any format: slices of about ``chunk_size`` bytes (of the stored,
    possibly compressed, object)."""
    co = _check(cloud_object, (), "partition_chunk_size")
    _padding(padding)
    return co._slices(bytes=_positive(chunk_size, "chunk_size"))


def partition_chunks_strategy(cloud_object: CloudObject, num_chunks: int) -> list[DataSlice]:
    """FASTA (the reference's name): about ``num_chunks`` slices of even size;
    long sequences are cut between lines, each part after its header line."""
    co = _check(cloud_object, (), "partition_chunks_strategy")
    return co._slices(count=_positive(num_chunks, "num_chunks"))


def whole_words_strategy(
    cloud_object: CloudObject, num_chunks: int, padding: int = 32
) -> list[DataSlice]:
    """Text (the reference's name): about ``num_chunks`` slices of whole lines."""
    co = _check(cloud_object, (), "whole_words_strategy")
    _padding(padding)
    return co._slices(count=_positive(num_chunks, "num_chunks"))
