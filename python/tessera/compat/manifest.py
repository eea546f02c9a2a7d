"""Data Access Optimizer's ``ManifestLookup`` and ``generate_manifest`` over tessera.

The reference tool lists a bucket into a text file, turns the file into a
Parquet manifest with pandas, and answers lookups by loading the manifest into
an in-memory DuckDB database. Here the same names and signatures run on
:func:`tessera.build_manifest` and :class:`tessera.Manifest`::

    from tessera.compat import ManifestLookup, generate_manifest

    generate_manifest("my-bucket", "data/prefix/", "manifest.parquet", aws_profile="myprofile")
    with ManifestLookup("manifest.parquet") as lookup:
        lookup.exists("GENE123", "tissue_45")
        lookup.get_file_path("GENE123", 45)      # downloaded through tessera's cache

Manifests written by the reference tool (``gene_id``, ``tissue_id`` and
``file_path`` holding bare keys) open as they are; ``get_file_path`` resolves
their keys against the manifest's own bucket, as the reference does.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any

import tessera
from tessera.errors import InvalidInputError

__all__ = ["DEFAULT_TEMPLATE", "ManifestLookup", "Record", "generate_manifest"]

#: The reference tool's layout (``.*/v1/ad/([^/]+)/model_tissue_(\d+)\.tl$``)
#: as a tessera template. Unlike the reference pattern, ``**`` also matches
#: keys that start with ``v1/``.
DEFAULT_TEMPLATE = "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl"

#: Fields every manifest read by :class:`ManifestLookup` must have.
REQUIRED_FIELDS = ("gene_id", "tissue_id")

# boto3 client arguments and the tessera store keyword (or object_store
# configuration key) each one becomes.
_BOTO_TO_STORE: dict[str, tuple[str, str | None]] = {
    "aws_access_key_id": ("config", "aws_access_key_id"),
    "aws_secret_access_key": ("config", "aws_secret_access_key"),
    "aws_session_token": ("config", "aws_session_token"),
    "region_name": ("region", None),
    "endpoint_url": ("endpoint", None),
}

_URL_BASE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)/")


def boto_to_store(
    options: Mapping[str, Any] | None,
    *,
    argument: str,
    ignored: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Turn boto3-style S3 client arguments into tessera store keywords.

    ``aws_access_key_id``, ``aws_secret_access_key`` and ``aws_session_token``
    become ``config=`` entries, ``region_name`` becomes ``region=`` and
    ``endpoint_url`` becomes ``endpoint=``. Keys in ``ignored`` (client tuning
    that has no tessera counterpart) are dropped; ``None`` values are skipped.
    Any other key is a :class:`ValueError` naming ``argument``, so that a
    setting is never silently lost.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{argument} must be a dict, not {type(options).__name__}")
    store: dict[str, Any] = {}
    config: dict[str, str] = {}
    for key, value in options.items():
        if key in ignored or value is None:
            continue
        target = _BOTO_TO_STORE.get(key)
        if target is None:
            supported = ", ".join(sorted([*_BOTO_TO_STORE, *ignored]))
            raise ValueError(
                f"{argument}: unsupported key {key!r} (supported: {supported}); "
                "other settings are given as tessera store keywords "
                "(profile=, endpoint=, region=, config=)"
            )
        keyword, config_key = target
        if not isinstance(value, str):
            raise TypeError(f"{argument}[{key!r}] must be a str, not {type(value).__name__}")
        if config_key is None:
            store[keyword] = value
        else:
            config[config_key] = value
    if config:
        store["config"] = config
    return store


def merge_store(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """Merge store keyword dicts left to right; ``config`` dicts are merged key by key."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "config" and isinstance(merged.get("config"), Mapping):
                if not isinstance(value, Mapping):
                    raise TypeError(f"config must be a dict, not {type(value).__name__}")
                merged["config"] = {**merged["config"], **value}
            else:
                merged[key] = value
    return merged


def _key_base(url: str) -> str | None:
    """``scheme://bucket/`` of a store URL; ``None`` for local paths and ``file://``."""
    m = _URL_BASE.match(url)
    if m is None or m.group(1).lower() == "file":
        return None
    return m.group(0)


def _strip_tissue_prefix(value: Any) -> Any:
    """The reference tool's spelling of tissue ids: ``"model_tissue_45"`` and
    ``"tissue_45"`` mean ``45``."""
    if not isinstance(value, str):
        return value
    v = value
    if v.startswith("model_"):
        v = v[len("model_") :]
    if v.startswith("tissue_"):
        v = v[len("tissue_") :]
    return v


class Record:
    """One manifest row, as the reference tool returns it from lookups.

    ``gene_id``, ``tissue_id`` and ``file_path`` (the object's location as the
    manifest holds it) are attributes; other fields of the manifest, if any,
    are attributes too.
    """

    def __init__(self, tissue_id: Any, gene_id: Any, file_path: str, **fields: Any) -> None:
        self.tissue_id = tissue_id
        self.gene_id = gene_id
        self.file_path = file_path
        self._extra = dict(fields)
        for name, value in fields.items():
            setattr(self, name, value)

    def _key(self) -> tuple[Any, ...]:
        return (self.tissue_id, self.gene_id, self.file_path, sorted(self._extra.items()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.tissue_id, self.gene_id, self.file_path))

    def __repr__(self) -> str:
        return (
            f"Record(gene_id={self.gene_id}, tissue_id={self.tissue_id}, "
            f"file_path={self.file_path})"
        )


class ManifestLookup:
    """Look gene/tissue combinations up in a manifest (local or in a store).

    ``manifest_file_path`` is any tessera location of the manifest: a local
    path, ``s3://…``, ``gs://…``, ``az://…``, ``file://`` or ``memory://``.
    ``tmp_dir`` is where :meth:`get_file_path` downloads to: tessera's local
    cache directory (default: tessera's cache, ``~/.cache/tessera`` or
    ``TESSERA_CACHE``). ``aws_credentials`` takes the boto3 client arguments
    the reference accepts (``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_session_token``, ``region_name``, ``endpoint_url``);
    ``location_column`` names the column holding object locations (default:
    the one the manifest records, or ``file_path``); any other keyword is a
    tessera store keyword (``profile=``, ``endpoint=``, ``region=``, …).

    Raises :class:`FileNotFoundError` when the manifest does not exist and
    :class:`ValueError` when it has no ``gene_id`` or ``tissue_id`` field.
    """

    def __init__(
        self,
        manifest_file_path: str | os.PathLike[str],
        tmp_dir: str | os.PathLike[str] | None = None,
        aws_credentials: Mapping[str, Any] | None = None,
        *,
        location_column: str | None = None,
        **store: Any,
    ) -> None:
        if not isinstance(manifest_file_path, (str, os.PathLike)):
            raise TypeError(
                "manifest_file_path must be a str or path, not "
                f"{type(manifest_file_path).__name__}"
            )
        if tmp_dir is not None and not isinstance(tmp_dir, (str, os.PathLike)):
            raise TypeError(f"tmp_dir must be a str or path, not {type(tmp_dir).__name__}")
        self.manifest_file_path: str = os.fspath(manifest_file_path)
        self.tmp_dir: str | None = None if tmp_dir is None else os.fspath(tmp_dir)
        self._store: dict[str, Any] = merge_store(
            boto_to_store(aws_credentials, argument="aws_credentials"), store
        )
        manifest = tessera.Manifest.open(
            self.manifest_file_path, location_column=location_column, **self._store
        )
        fields = list(manifest.fields)
        missing = [f for f in REQUIRED_FIELDS if f not in fields]
        if missing:
            raise ValueError(
                f"Missing required columns: {missing} in manifest {self.manifest_file_path} "
                f"(its fields: {fields})"
            )
        self._manifest: Any = manifest
        self._key_base = _key_base(self.manifest_file_path)

    # -- helpers -------------------------------------------------------------

    @property
    def manifest(self) -> Any:
        """The underlying :class:`tessera.Manifest` (``ValueError`` once closed)."""
        if self._manifest is None:
            raise ValueError(f"{self!r} is closed")
        return self._manifest

    def _fields(self, gene_id: Any = None, tissue_id: Any = None) -> dict[str, Any]:
        """The conditions of a lookup, with the reference's tissue spelling accepted.

        A value the manifest cannot compare (``"tissue_45"`` against an
        integer field) is retried without the ``model_``/``tissue_`` prefixes;
        if it still does not parse, tessera's error (a ``ValueError``) is raised.
        """
        fields: dict[str, Any] = {}
        if gene_id is not None:
            fields["gene_id"] = gene_id
        if tissue_id is not None:
            fields["tissue_id"] = tissue_id
        if not fields:
            raise ValueError("At least one of gene_id or tissue_id must be provided.")
        m = self.manifest
        try:
            m.count(**fields)
        except InvalidInputError:
            stripped = _strip_tissue_prefix(fields.get("tissue_id"))
            if "tissue_id" not in fields or stripped == fields["tissue_id"]:
                raise
            fields["tissue_id"] = stripped
            m.count(**fields)
        return fields

    def _resolve(self, location: str) -> str:
        """A location as a URL: bare keys (as the reference tool stores them)
        are keys of the manifest's own bucket."""
        if self._key_base is None or "://" in location or location.startswith("/"):
            return location
        return self._key_base + location

    def _records(self, fields: dict[str, Any]) -> list[Record]:
        m = self.manifest
        location_column = m.location_column
        out: list[Record] = []
        for row in m.records(**fields).to_pylist():
            tissue = row.pop("tissue_id")
            gene = row.pop("gene_id")
            location = row.pop(location_column)
            out.append(Record(tissue, gene, location, **row))
        return out

    # -- the reference API ---------------------------------------------------

    def exists(self, gene_id: Any, tissue_id: Any) -> bool:
        """Whether a record with this gene and tissue exists (``None`` leaves
        that field unconstrained)."""
        fields = self._fields(gene_id, tissue_id)
        return bool(self.manifest.exists(**fields))

    def get_s3_file_path(self, gene_id: Any, tissue_id: Any) -> str | None:
        """The location of the gene/tissue's object, as the manifest holds it
        (a URL for manifests tessera builds, a key for the reference's), or
        ``None`` when there is no such record."""
        fields = self._fields(gene_id, tissue_id)
        location = self.manifest.location(**fields)
        return None if location is None else str(location)

    def get_file_path(self, gene_id: Any, tissue_id: Any) -> str | None:
        """Download the gene/tissue's object through tessera's cache and return
        its local path, or ``None`` when there is no such record.

        The cache is keyed by URL and ETag, so a second call for the same
        object does not download it again; a missing object raises
        :class:`FileNotFoundError`.
        """
        fields = self._fields(gene_id, tissue_id)
        m = self.manifest
        location = m.location(**fields)
        if location is None:
            return None
        url = self._resolve(str(location))
        if url == location:
            return str(m.fetch(cache_dir=self.tmp_dir, **fields))
        return str(_fetch_url(url, self.tmp_dir, self._store))

    def get_records_for_gene(self, gene_id: Any) -> list[Record]:
        """Every record of a gene, sorted by the manifest's fields."""
        if gene_id is None:
            raise ValueError("gene_id must be provided")
        return self._records(self._fields(gene_id=gene_id))

    def get_records_for_tissue(self, tissue_id: Any) -> list[Record]:
        """Every record of a tissue (``45``, ``"45"`` or ``"tissue_45"``),
        sorted by the manifest's fields."""
        if tissue_id is None:
            raise ValueError("tissue_id must be provided")
        return self._records(self._fields(tissue_id=tissue_id))

    def query(self, gene_id: Any = None, tissue_id: Any = None) -> list[Record]:
        """Every record matching the gene, the tissue, or both."""
        return self._records(self._fields(gene_id, tissue_id))

    def get_unique(self, column_name: str) -> list[Any]:
        """The distinct values of a field (``gene_id``, ``tissue_id``, or any
        other field of the manifest), sorted."""
        if not isinstance(column_name, str):
            raise TypeError(f"column_name must be a str, not {type(column_name).__name__}")
        m = self.manifest
        fields = list(m.fields)
        if column_name not in fields:
            raise ValueError(f"column_name must be one of {fields}, not {column_name!r}")
        return list(m.unique(column_name))

    def close(self) -> None:
        """Release the manifest; later lookups raise :class:`ValueError`."""
        self._manifest = None

    def __enter__(self) -> ManifestLookup:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ManifestLookup('{self.manifest_file_path}')"


def _fetch_url(url: str, cache_dir: str | None, store: Mapping[str, Any]) -> Any:
    """Download one object URL through tessera's cache and return its local path.

    tessera fetches objects through its cache from a manifest's records, so
    the URL is given a one-record manifest of its own.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="tessera-compat-") as tmp:
        path = os.path.join(tmp, "object.parquet")
        pq.write_table(pa.table({"object": [url], "file_path": [url]}), path)
        one = tessera.Manifest.open(path, location_column="file_path", **store)
        return one.fetch(cache_dir=cache_dir, object=url)


def _source_url(source_bucket: str | os.PathLike[str], source_prefix: str) -> str:
    """The location to list: ``s3://{bucket}/{prefix}``, or ``{location}/{prefix}``
    when ``source_bucket`` is already a location (a local folder or a URL)."""
    if not isinstance(source_bucket, (str, os.PathLike)):
        raise TypeError(f"source_bucket must be a str, not {type(source_bucket).__name__}")
    if not isinstance(source_prefix, str):
        raise TypeError(f"source_prefix must be a str, not {type(source_prefix).__name__}")
    bucket = os.fspath(source_bucket)
    if not bucket:
        raise ValueError("source_bucket must not be empty")
    # Bucket names cannot hold '/': anything that does is a location.
    if "://" in bucket or "/" in bucket or os.sep in bucket or bucket in (".", ".."):
        base = bucket.rstrip("/") or "/"
    else:
        base = f"s3://{bucket}"
    prefix = source_prefix.lstrip("/")
    if not prefix:
        return base
    return base.rstrip("/") + "/" + prefix


def generate_manifest(
    source_bucket: str | os.PathLike[str],
    source_prefix: str,
    output_file: str | os.PathLike[str],
    aws_profile: str | None = None,
    *,
    template: str = DEFAULT_TEMPLATE,
    location_column: str = "file_path",
    strict: bool = False,
    **store: Any,
) -> Any:
    """List ``s3://{source_bucket}/{source_prefix}`` and write its manifest to ``output_file``.

    The manifest has the reference's columns: ``gene_id`` (dictionary-encoded
    string), ``tissue_id`` (int32) and ``file_path`` (here the object's full
    URL), taken from keys shaped ``…/v1/ad/{gene_id}/model_tissue_{tissue_id}.tl``
    (``template=`` sets another layout). ``source_bucket`` may also be any
    tessera location (a local folder, ``gs://…``); ``source_prefix`` is a
    folder under it. ``aws_profile`` selects an AWS profile; other keywords
    are tessera store keywords. ``strict=True`` makes a key that does not fit
    the template an error instead of a skipped key.

    Returns tessera's build report (paths read, matched, skipped, duplicates);
    raises when nothing matched, and writes nothing then.
    """
    if not isinstance(output_file, (str, os.PathLike)):
        raise TypeError(f"output_file must be a str or path, not {type(output_file).__name__}")
    if aws_profile is not None:
        if not isinstance(aws_profile, str):
            raise TypeError(f"aws_profile must be a str, not {type(aws_profile).__name__}")
        if "profile" in store and store["profile"] != aws_profile:
            raise ValueError("give the AWS profile once: aws_profile= or profile=")
        store = {**store, "profile": aws_profile}
    source = _source_url(source_bucket, source_prefix)
    return tessera.build_manifest(
        source,
        os.fspath(output_file),
        template,
        location_column=location_column,
        strict=strict,
        **store,
    )
