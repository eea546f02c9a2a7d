"""s3_data_packer's ``S3DataPacker`` over :func:`tessera.pack`.

Every constructor argument of the reference is accepted under its own name::

    from tessera.compat import S3DataPacker

    packer = S3DataPacker(
        "s3://some-bucket/land",
        "s3://some-bucket/db",
        "table",
        output_partition={"some_value": "1649-01-30"},
    )
    packer.pack_data()

and maps to a :func:`tessera.pack` setting:

=========================  ==========================================================
reference argument         tessera
=========================  ==========================================================
``input_basepath``         ``input_base`` (any tessera location, not only ``s3://``)
``output_basepath``        ``output_base``
``table_name``             ``table``
``metadata``               ``schema=``: the columns' declared types (mojap-metadata
                           dict, JSON file, ``Metadata`` object or ``pyarrow.Schema``)
``output_file_ext``        ``output_format=`` (``snappy.parquet`` by default)
``output_suffix``          ``suffix=``
``input_file_ext``         ``input_format=``: only inputs of this format are read
``cast_parquet``           accepted; every input is cast to ``metadata`` when given
``output_partition``       ``partition=``
``input_partition_name``   accepted; it has no effect in the reference either
``file_limit_gigabytes``   ``max_file_size=`` (gigabytes x 10^9 bytes; 0.256 default)
``read_chunksize``         accepted; tessera always streams in bounded memory
=========================  ==========================================================
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import tessera
from tessera.errors import TesseraError

__all__ = ["DEFAULT_FILE_LIMIT_GIGABYTES", "S3DataPacker", "metadata_to_schema"]

#: The reference's default size limit: 256 * 10^-3 gigabytes (256 MB).
DEFAULT_FILE_LIMIT_GIGABYTES = 256 * 10**-3

# mojap-metadata type categories and the type each stands for when a column
# names only its category.
_CATEGORY_TYPES = {
    "integer": "int64",
    "float": "float64",
    "string": "string",
    "timestamp": "timestamp(s)",
    "binary": "binary",
    "boolean": "bool",
}

_PARAM_TYPE = re.compile(r"^(\w+)\((.*)\)$")


def _arrow_type(name: str, column: str) -> Any:
    """The pyarrow type of a mojap-metadata / Arrow type name such as
    ``int32``, ``decimal128(10,2)`` or ``timestamp(ms)``."""
    import pyarrow as pa

    simple: dict[str, Any] = {
        "null": pa.null(),
        "bool": pa.bool_(),
        "boolean": pa.bool_(),
        "int8": pa.int8(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "uint8": pa.uint8(),
        "uint16": pa.uint16(),
        "uint32": pa.uint32(),
        "uint64": pa.uint64(),
        "float16": pa.float16(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "double": pa.float64(),
        "string": pa.string(),
        "utf8": pa.string(),
        "large_string": pa.large_string(),
        "large_utf8": pa.large_string(),
        "binary": pa.binary(),
        "large_binary": pa.large_binary(),
        "date32": pa.date32(),
        "date64": pa.date64(),
    }
    key = name.strip().replace(" ", "")
    if key.lower() in simple:
        return simple[key.lower()]
    m = _PARAM_TYPE.match(key)
    if m is not None:
        kind, args = m.group(1).lower(), [a for a in m.group(2).split(",") if a]
        try:
            if kind in ("decimal128", "decimal") and len(args) == 2:
                return pa.decimal128(int(args[0]), int(args[1]))
            if kind == "decimal256" and len(args) == 2:
                return pa.decimal256(int(args[0]), int(args[1]))
            if kind == "timestamp" and len(args) in (1, 2):
                return pa.timestamp(args[0], tz=args[1] if len(args) == 2 else None)
            if kind == "time32" and len(args) == 1:
                return pa.time32(args[0])
            if kind == "time64" and len(args) == 1:
                return pa.time64(args[0])
            if kind == "duration" and len(args) == 1:
                return pa.duration(args[0])
            if kind == "binary" and len(args) == 1:
                return pa.binary(int(args[0]))
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"metadata: column {column!r} has an invalid type {name!r}: {e}"
            ) from e
    raise ValueError(
        f"metadata: column {column!r} has type {name!r}, which tessera cannot cast to "
        "(supported: bool, intN, uintN, floatN, string, large_string, binary, date32, "
        "date64, decimal128(p,s), timestamp(unit), time32(unit), time64(unit), duration(unit))"
    )


def _load_metadata(metadata: Any) -> dict[str, Any]:
    """A mojap-metadata dict from a dict, a JSON/YAML file path or an object with ``to_dict()``."""
    if isinstance(metadata, Mapping):
        return dict(metadata)
    if isinstance(metadata, (str, os.PathLike)):
        path = os.fspath(metadata)
        lower = path.lower()
        with open(path, encoding="utf-8") as f:
            if lower.endswith((".yaml", ".yml")):
                try:
                    import yaml  # type: ignore[import-untyped]
                except ImportError as e:
                    raise ValueError(
                        f"metadata {path} is YAML: install PyYAML or give a JSON file"
                    ) from e
                loaded = yaml.safe_load(f)
            else:
                loaded = json.load(f)
        if not isinstance(loaded, Mapping):
            raise ValueError(f"metadata {path} does not hold an object with 'columns'")
        return dict(loaded)
    to_dict = getattr(metadata, "to_dict", None)
    if callable(to_dict):
        loaded = to_dict()
        if isinstance(loaded, Mapping):
            return dict(loaded)
    raise TypeError(
        "metadata must be a dict, a path to a JSON metadata file, a Metadata object "
        f"or a pyarrow.Schema, not {type(metadata).__name__}"
    )


def metadata_to_schema(metadata: Any) -> Any:
    """The ``pyarrow.Schema`` of the columns a mojap-metadata description declares.

    Accepts what the reference's ``metadata`` argument does (a dict with a
    ``columns`` list of ``{name, type}`` or ``{name, type_category}``, a path
    to such a JSON file, or a ``Metadata`` object), and a ``pyarrow.Schema``
    as it is. Partition columns (``partitions``) are left out, as the
    reference leaves them out of casting. ``None`` gives ``None``.
    """
    import pyarrow as pa

    if metadata is None:
        return None
    if isinstance(metadata, pa.Schema):
        return metadata
    meta = _load_metadata(metadata)
    columns = meta.get("columns")
    if not isinstance(columns, list) or not columns:
        raise ValueError("metadata must have a non-empty 'columns' list")
    partitions = set(meta.get("partitions") or [])
    fields = []
    for i, col in enumerate(columns):
        if not isinstance(col, Mapping) or not isinstance(col.get("name"), str) or not col["name"]:
            raise ValueError(f"metadata: column {i} has no name")
        name = col["name"]
        if name in partitions:
            continue
        type_name = col.get("type")
        if type_name is None:
            category = col.get("type_category")
            type_name = _CATEGORY_TYPES.get(category) if isinstance(category, str) else None
            if type_name is None:
                raise ValueError(
                    f"metadata: column {name!r} has neither a type nor a known type_category "
                    f"({', '.join(sorted(_CATEGORY_TYPES))})"
                )
        if not isinstance(type_name, str):
            raise ValueError(f"metadata: column {name!r} has a type that is not a string")
        fields.append(pa.field(name, _arrow_type(type_name, name), nullable=True))
    return pa.schema(fields)


def _file_limit_bytes(file_limit_gigabytes: Any) -> int:
    if isinstance(file_limit_gigabytes, bool) or not isinstance(file_limit_gigabytes, (int, float)):
        raise TypeError(
            "file_limit_gigabytes must be a number of gigabytes, not "
            f"{type(file_limit_gigabytes).__name__}"
        )
    if not (math.isfinite(file_limit_gigabytes) and file_limit_gigabytes > 0):
        raise ValueError(f"file_limit_gigabytes must be positive, not {file_limit_gigabytes!r}")
    size = int(round(file_limit_gigabytes * 10**9))
    if size < 1:
        raise ValueError(f"file_limit_gigabytes is below one byte: {file_limit_gigabytes!r}")
    return size


def _extension(value: Any, argument: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str such as 'csv', not {type(value).__name__}")
    ext = value.strip().lstrip(".")
    if not ext:
        raise ValueError(f"{argument} must not be empty")
    return ext


def _partition(output_partition: Any) -> dict[str, str] | None:
    if output_partition is None:
        return None
    if not isinstance(output_partition, Mapping):
        raise TypeError(
            f"output_partition must be a dict, not {type(output_partition).__name__}"
        )
    out: dict[str, str] = {}
    for key, value in output_partition.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"output_partition keys must be non-empty strings, not {key!r}")
        if value is None:
            raise ValueError(f"output_partition[{key!r}] has no value")
        out[key] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return out or None


class S3DataPacker:
    """Pack every file under ``input_basepath/table_name/`` into evenly sized
    files ``{table_name}[_{output_suffix}]_{N}.{output_file_ext}`` under
    ``output_basepath/table_name/`` (in the ``output_partition`` folder when
    given), filling the latest existing file first.

    The arguments are the reference's (see the module docstring for how each
    maps to :func:`tessera.pack`). tessera additions, keyword-only:
    ``partition_by`` (split rows into Hive partitions by a column), ``force``
    (pack inputs again that a previous run already packed into this table),
    ``single_writer`` (stores without conditional writes), ``row_group_bytes``
    and the store keywords (``profile=``, ``endpoint=``, ``region=``, …).
    Arguments are checked here; the stores are only read by :meth:`pack_data`.
    """

    def __init__(
        self,
        input_basepath: str,
        output_basepath: str,
        table_name: str,
        metadata: Any = None,
        output_file_ext: str | None = "snappy.parquet",
        output_suffix: str | None = None,
        input_file_ext: str | None = None,
        cast_parquet: bool = False,
        output_partition: Mapping[str, Any] | None = None,
        input_partition_name: str | None = None,
        file_limit_gigabytes: int | float = DEFAULT_FILE_LIMIT_GIGABYTES,
        read_chunksize: int | str | None = None,
        *,
        partition_by: str | None = None,
        force: bool = False,
        single_writer: bool = False,
        row_group_bytes: int | str | None = None,
        **store: Any,
    ) -> None:
        for name, value in (
            ("input_basepath", input_basepath),
            ("output_basepath", output_basepath),
            ("table_name", table_name),
        ):
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{name} must be a str, not {type(value).__name__}")
        if not os.fspath(table_name):
            raise ValueError("table_name must not be empty")
        if output_suffix is not None and not isinstance(output_suffix, str):
            raise TypeError(f"output_suffix must be a str, not {type(output_suffix).__name__}")
        if input_partition_name is not None and not isinstance(input_partition_name, str):
            raise TypeError(
                f"input_partition_name must be a str, not {type(input_partition_name).__name__}"
            )
        if read_chunksize is not None and (
            isinstance(read_chunksize, bool) or not isinstance(read_chunksize, (int, str))
        ):
            raise TypeError(
                f"read_chunksize must be an int or str, not {type(read_chunksize).__name__}"
            )
        self.input_basepath: str = os.fspath(input_basepath)
        self.output_basepath: str = os.fspath(output_basepath)
        self.table_name: str = os.fspath(table_name)
        self.metadata: Any = metadata
        self.schema: Any = metadata_to_schema(metadata)
        self.output_file_ext: str | None = _extension(output_file_ext, "output_file_ext")
        self.output_suffix: str | None = output_suffix
        self.input_file_ext: str | None = _extension(input_file_ext, "input_file_ext")
        self.cast_parquet: bool = bool(cast_parquet)
        self.output_partition: dict[str, str] | None = _partition(output_partition)
        self.input_partition_name: str | None = input_partition_name
        self.file_limit_gigabytes: int | float = file_limit_gigabytes
        self.max_file_size: int = _file_limit_bytes(file_limit_gigabytes)
        self.read_chunksize: int | str | None = read_chunksize
        self.partition_by: str | None = partition_by
        self.force: bool = bool(force)
        self.single_writer: bool = bool(single_writer)
        self.row_group_bytes: int | str | None = row_group_bytes
        self._store: dict[str, Any] = dict(store)

    def _pack(self, dry_run: bool) -> Any:
        kwargs: dict[str, Any] = {
            "suffix": self.output_suffix,
            "output_format": self.output_file_ext,
            "input_format": self.input_file_ext,
            "max_file_size": self.max_file_size,
            "partition": self.output_partition,
            "partition_by": self.partition_by,
            "schema": self.schema,
            "force": self.force,
            "single_writer": self.single_writer,
            "row_group_bytes": self.row_group_bytes,
            "dry_run": dry_run,
        }
        try:
            return tessera.pack(
                self.input_basepath, self.output_basepath, self.table_name, **kwargs, **self._store
            )
        except TesseraError as e:
            # The reference returns quietly when there is nothing to pack.
            if getattr(e, "variant", None) == "NoInput":
                return None
            raise

    def pack_data(self) -> Any:
        """Pack the inputs; return tessera's report (rows, files written, …),
        or ``None`` when the input folder holds no files (as the reference,
        which returns without writing).

        Inputs an earlier run already packed into this table (same URL and
        ETag) are skipped unless ``force=True``, so running it again adds
        nothing twice. A run that is interrupted and run again leaves every
        input row in the output exactly once.
        """
        return self._pack(dry_run=False)

    def plan(self) -> Any:
        """What :meth:`pack_data` would do (inputs, bytes, files rewritten and
        created) without writing anything; ``None`` when there is no input."""
        return self._pack(dry_run=True)

    def __repr__(self) -> str:
        return (
            f"S3DataPacker({self.input_basepath!r}, {self.output_basepath!r}, "
            f"{self.table_name!r})"
        )
