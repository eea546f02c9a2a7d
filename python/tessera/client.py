"""An HTTP client for a running ``tessera serve``.

The client is pure Python: the standard library speaks HTTP
(:mod:`urllib.request`) and pyarrow decodes the results, which the server
sends as Arrow IPC streams. It does not need the native module, so it works
anywhere pyarrow installs.

>>> c = Client("http://127.0.0.1:8080", token="tsr_…")
>>> c.put("shop/orders", df, date_key="order_date")        # doctest: +SKIP
>>> c.get("shop/orders", last=True).to_pandas()            # doctest: +SKIP
>>> c.sql("SELECT count(*) AS n FROM sales")               # doctest: +SKIP

Failures raise the exceptions of :mod:`tessera.errors` with the server's
message: 404 → :class:`~tessera.errors.NotFoundError`, 400 and 422 →
:class:`~tessera.errors.InvalidInputError`, 401 and 403 →
:class:`~tessera.errors.AccessDeniedError`, 409 →
:class:`~tessera.errors.ConflictError`, 502 (the server's store failed) →
:class:`~tessera.errors.StoreError`, 500 →
:class:`~tessera.errors.InternalError`, any other status (413, 429, 504, …)
→ :class:`~tessera.errors.TesseraError`. A server that cannot be reached
raises :class:`~tessera.errors.StoreError`. Each exception raised for an
HTTP answer carries ``status`` (the HTTP status) and ``code`` (the server's
machine-readable code, e.g. ``not_found``).
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa

from tessera.errors import (
    AccessDeniedError,
    ConflictError,
    InternalError,
    InvalidInputError,
    NotFoundError,
    StoreError,
    TesseraError,
)

__all__ = ["Client", "Page"]

#: The largest page the server allows by default (``limits.max_page_size``).
DEFAULT_PAGE_SIZE = 10_000

_USER_AGENT = "tessera-python-client"

# HTTP status → exception class; anything else is a TesseraError.
_STATUS_ERRORS: dict[int, type[TesseraError]] = {
    400: InvalidInputError,
    422: InvalidInputError,
    401: AccessDeniedError,
    403: AccessDeniedError,
    404: NotFoundError,
    409: ConflictError,
    500: InternalError,
    502: StoreError,
}

# The server's error codes and the names of its error variants.
_VARIANTS = {
    "bad_request": "BadRequest",
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
    "not_found": "NotFound",
    "conflict": "Conflict",
    "payload_too_large": "PayloadTooLarge",
    "too_many_requests": "TooManyRequests",
    "timeout": "Timeout",
    "store_error": "Store",
    "internal": "Internal",
}

# How the server words a page size above its limit (crates/server/src/params.rs).
_LIMIT_RANGE = re.compile(r"limit=\d+ is out of range: it must be from \d+ to (\d+)")

# Compression suffixes the server reads after a text format's extension.
_CODECS = (".gz", ".zst")

#: A filter of :meth:`Client.rows`: ``"col:op:value"`` or ``(col, op, value)``.
Filter = str | tuple[str, str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a table, as :meth:`Client.page` returns it."""

    #: The rows of the page.
    table: pa.Table
    #: Rows matching the filters (all rows of the table when there are none).
    total_rows: int
    #: Pass as ``cursor=`` to :meth:`Client.page` for the next page; ``None``
    #: on the last page.
    next_cursor: str | None


def _error(status: int, reason: str, body: bytes) -> TesseraError:
    """The exception for an HTTP error answer: the server's message, the class by status."""
    code = ""
    message = ""
    try:
        doc = json.loads(body.decode("utf-8"))
        if isinstance(doc, dict):
            code = str(doc.get("error") or "")
            message = str(doc.get("message") or "")
    except (UnicodeDecodeError, ValueError):
        pass
    if not message:
        text = body.decode("utf-8", "replace").strip()
        message = f"HTTP {status} {reason}".strip() + (f": {text[:500]}" if text else "")
    cls = _STATUS_ERRORS.get(status, TesseraError)
    exc = cls(message)
    attrs: dict[str, Any] = {"status": status, "code": code or None}
    if code in _VARIANTS:
        attrs["variant"] = _VARIANTS[code]
    for attr, value in attrs.items():
        try:
            setattr(exc, attr, value)
        except AttributeError:  # a read-only attribute of the error class
            pass
    return exc


def _text(value: Any) -> str:
    """A query-string value: booleans as true/false, dates in ISO 8601."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
            return value.isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def _filter_spec(f: Filter) -> str:
    """One ``column:op:value`` filter of the rows endpoint."""
    if isinstance(f, str):
        return f
    if isinstance(f, tuple) and len(f) == 3:
        col, op, value = f
        if not isinstance(col, str) or not isinstance(op, str):
            raise TypeError(f"a filter's column and op are strings, not {f!r}")
        if isinstance(value, (list, tuple, set, frozenset)):
            raw = json.dumps([_text(v) if not isinstance(v, (int, float)) else v for v in value])
        else:
            raw = _text(value)
        return f"{col}:{op}:{raw}"
    raise TypeError(
        f"a filter is 'column:op:value' or a (column, op, value) tuple, not {type(f).__name__}"
    )


def _filters(filters: None | Filter | Mapping[str, Any] | Iterable[Filter]) -> list[str]:
    """The ``filter=`` values for a filter, a list of them, or a ``{column: value}`` dict."""
    if filters is None:
        return []
    if isinstance(filters, (str, tuple)):
        return [_filter_spec(filters)]
    if isinstance(filters, Mapping):
        out = []
        for col, value in filters.items():
            op = "in" if isinstance(value, (list, tuple, set, frozenset)) else "eq"
            out.append(_filter_spec((col, op, value)))
        return out
    return [_filter_spec(f) for f in filters]


def _names(columns: None | str | Sequence[str], what: str = "columns") -> str | None:
    """A comma-separated column list (``None`` stays ``None``)."""
    if columns is None:
        return None
    if isinstance(columns, str):
        return columns
    cols = list(columns)
    for c in cols:
        if not isinstance(c, str):
            raise TypeError(f"{what} are strings, not {type(c).__name__}")
        if "," in c:
            raise InvalidInputError(
                f"{what}: the server cannot address a column named {c!r} (a comma)"
            )
    return ",".join(cols)


def _date_key(key: None | str | tuple[str, str]) -> str | None:
    """``COL:UNIT`` for a date key given as ``"col"`` (day) or ``("col", unit)``."""
    if key is None:
        return None
    if isinstance(key, str):
        return f"{key}:day"
    if isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key):
        return f"{key[0]}:{key[1]}"
    raise TypeError(f"date_key is 'col' or ('col', 'day'|'month'|'year'), not {key!r}")


def _id_key(key: None | str | tuple[str, int]) -> str | None:
    """``COL:WIDTH`` for an ID key given as ``"col"`` or ``("col", width)``."""
    if key is None:
        return None
    if isinstance(key, str):
        # The server splits at the last ':'; a name holding one needs the width.
        return f"{key}:100000" if ":" in key else key
    if (
        isinstance(key, tuple)
        and len(key) == 2
        and isinstance(key[0], str)
        and isinstance(key[1], int)
        and not isinstance(key[1], bool)
    ):
        return f"{key[0]}:{key[1]}"
    raise TypeError(f"id_key is 'col' or ('col', width), not {key!r}")


def _file_format(path: str) -> str:
    """The server's name of a file's format, from its extension (``csv``, ``csv.gz``, …)."""
    name = os.path.basename(path).lower()
    root, ext = os.path.splitext(name)
    if ext in _CODECS:
        inner = os.path.splitext(root)[1]
        if not inner:
            raise InvalidInputError(f"{path}: cannot tell the format; give input_format=")
        return inner.lstrip(".") + ext
    if not ext:
        raise InvalidInputError(f"{path}: cannot tell the format; give input_format=")
    return ext.lstrip(".")


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` without dictionary encoding and without pandas metadata."""
    fields = [
        f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema
    ]
    return pa.schema(fields)


def _batches(data: Any) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The schema and batches of Arrow-compatible data (pandas, pyarrow, ``__arrow_c_stream__``)."""
    try:
        import pandas as pd  # noqa: PLC0415 - optional dependency
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        named = any(n is not None for n in data.index.names)
        frame = data.reset_index() if named else data
        data = pa.Table.from_pandas(frame, preserve_index=False)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return data.schema, iter(data.to_batches())
    if isinstance(data, pa.RecordBatchReader):
        return data.schema, iter(data)
    if hasattr(data, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(data)
        return reader.schema, iter(reader)
    raise TypeError(
        "data is a pandas.DataFrame, a pyarrow Table, RecordBatch or RecordBatchReader, "
        f"an object with __arrow_c_stream__, a file path or bytes, not {type(data).__name__}"
    )


def _spool_parquet(data: Any) -> IO[bytes]:
    """Arrow-compatible data written as one Parquet file to a temporary file (rewound)."""
    import pyarrow.parquet as pq  # noqa: PLC0415 - only uploads need it

    schema, batches = _batches(data)
    plain = _plain_schema(schema)
    out = tempfile.TemporaryFile(prefix="tessera-upload-", suffix=".parquet")
    try:
        with pq.ParquetWriter(out, plain) as writer:
            for b in batches:
                if b.schema != plain:
                    b = pa.RecordBatch.from_arrays(
                        [c.cast(f.type) for c, f in zip(b.columns, plain, strict=True)],
                        schema=plain,
                    )
                writer.write_batch(b)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


class Client:
    """A client of a ``tessera serve`` server at ``url``.

    ``token`` is sent as ``Authorization: Bearer <token>`` (an API token of
    the server's auth file or a JWT); without it requests are anonymous,
    which only a server without ``--auth`` accepts. ``timeout`` is the
    socket timeout of each request, in seconds.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url is a string, not {type(url).__name__}")
        if token is not None and not isinstance(token, str):
            raise TypeError(f"token is a string, not {type(token).__name__}")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError(f"url '{url}': give http://HOST:PORT or https://HOST")
        self.url: str = url.rstrip("/")
        self.timeout: float = float(timeout)
        self._token = token or None

    def __repr__(self) -> str:
        auth = "token" if self._token else "no token"
        return f"Client({self.url!r}, {auth})"

    # -- HTTP ---------------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        params: Iterable[tuple[str, Any]] | None = None,
        body: None | bytes | IO[bytes] = None,
        headers: dict[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        """Send a request; the open response on success, the mapped exception otherwise."""
        url = self.url + path
        pairs = [(k, _text(v)) for k, v in (params or []) if v is not None]
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs)
        h = {"User-Agent": _USER_AGENT}
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        h.update(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body.seek(0, os.SEEK_END)
            h["Content-Length"] = str(body.tell())
            body.seek(0)
        req = urllib.request.Request(url, data=body, headers=h, method=method)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310 - http(s) only
        except urllib.error.HTTPError as e:
            try:
                data = e.read()
            except (OSError, http.client.HTTPException):
                data = b""
            finally:
                e.close()
            raise _error(e.code, str(e.reason or ""), data) from None
        except (OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise StoreError(f"cannot reach the tessera server at {self.url}: {reason}") from e

    def _json(
        self,
        method: str,
        path: str,
        params: Iterable[tuple[str, Any]] | None = None,
        body: Any | None = None,
    ) -> Any:
        """A request answered with JSON; ``body`` (if any) is sent as JSON."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        with self._open(method, path, params, data, headers) as resp:
            raw = self._read(resp)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise TesseraError(f"the server's answer to {method} {path} is not JSON: {e}") from e

    def _read(self, resp: http.client.HTTPResponse) -> bytes:
        """The whole body of a response."""
        try:
            return resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise TesseraError(f"the server's answer ended early: {e}") from e

    def _arrow(
        self,
        method: str,
        path: str,
        params: list[tuple[str, Any]] | None = None,
        body: Any | None = None,
    ) -> tuple[pa.Table, http.client.HTTPResponse]:
        """A request answered with an Arrow IPC stream, read whole."""
        params = list(params or []) + [("format", "arrow")]
        headers = {"Accept": "application/vnd.apache.arrow.stream"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        with self._open(method, path, params, data, headers) as resp:
            try:
                table = pa.ipc.open_stream(resp).read_all()
            except (pa.ArrowException, OSError, http.client.HTTPException) as e:
                raise TesseraError(
                    f"the server's answer to {method} {path} ended early or is not an "
                    f"Arrow stream: {e}"
                ) from e
        return table, resp

    # -- service ------------------------------------------------------------

    def health(self) -> dict:
        """The server's liveness answer: ``{"status": "ok", "version": …}`` (no token needed)."""
        return self._json("GET", "/healthz")

    def metrics(self) -> str:
        """The server's Prometheus metrics, as text (no token needed)."""
        with self._open("GET", "/metrics") as resp:
            return self._read(resp).decode("utf-8")

    # -- tables -------------------------------------------------------------

    def tables(self) -> list[dict]:
        """The tables of the config this caller may read: name, kind, source, description."""
        return list(self._json("GET", "/v1/tables")["tables"])

    def columns(self, table: str) -> list[dict]:
        """The columns of ``table`` as the server lists them: name, Arrow type name, nullable."""
        path = f"/v1/tables/{_segment(table, 'table')}/schema"
        return list(self._json("GET", path)["columns"])

    def schema(self, table: str) -> pa.Schema:
        """The Arrow schema of ``table`` (read from a one-row page, so the types are exact)."""
        return self.page(table, limit=1).table.schema

    def page(
        self,
        table: str,
        *,
        columns: None | str | Sequence[str] = None,
        filters: None | Filter | Mapping[str, Any] | Iterable[Filter] = None,
        sort: None | str | Sequence[str] = None,
        limit: int | None = None,
        page: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of ``table``.

        ``columns``: names to return. ``filters``: ``"col:op:value"`` strings
        or ``(col, op, value)`` tuples (ops ``eq ne lt lte gt gte in like``;
        ``in`` takes a list), or a ``{col: value}`` dict (``eq``; a list
        value means ``in``); values are typed by the column on the server.
        ``sort``: names, ``-name`` for descending. ``limit``: rows per page
        (server default 100). ``page`` (0-indexed) or ``cursor`` (the
        ``next_cursor`` of the previous page, with the same other arguments).
        Without ``sort`` rows come in file order.
        """
        params: list[tuple[str, Any]] = [("columns", _names(columns))]
        params += [("filter", f) for f in _filters(filters)]
        params += [
            ("sort", _names(sort, "sort")),
            ("limit", _int(limit, "limit")),
            ("page", _int(page, "page")),
            ("cursor", cursor),
        ]
        path = f"/v1/tables/{_segment(table, 'table')}/rows"
        t, resp = self._arrow("GET", path, params)
        total = resp.headers.get("x-total-rows")
        return Page(
            table=t,
            total_rows=int(total) if total is not None else t.num_rows,
            next_cursor=resp.headers.get("x-next-cursor"),
        )

    def pages(
        self,
        table: str,
        *,
        columns: None | str | Sequence[str] = None,
        filters: None | Filter | Mapping[str, Any] | Iterable[Filter] = None,
        sort: None | str | Sequence[str] = None,
        page_size: int | None = None,
    ) -> Iterator[pa.Table]:
        """Every matching row of ``table``, a page at a time (following the server's cursors).

        ``page_size`` defaults to 10000, the server's default maximum; a
        server with a lower maximum is asked again with its own.
        """
        size = _int(page_size, "page_size")
        return self._pages(
            table,
            DEFAULT_PAGE_SIZE if size is None else size,
            adapt=size is None,
            kw={"columns": columns, "filters": filters, "sort": sort},
        )

    def _pages(
        self, table: str, size: int, *, adapt: bool, kw: dict[str, Any]
    ) -> Iterator[pa.Table]:
        """Pages of ``size`` rows (with ``adapt``: fewer, if the server's maximum is lower)."""
        try:
            p = self.page(table, limit=size, **kw)
        except InvalidInputError as e:
            m = _LIMIT_RANGE.search(str(e))
            if not adapt or m is None or int(m.group(1)) >= size:
                raise
            size = int(m.group(1))
            p = self.page(table, limit=size, **kw)
        yield p.table
        while p.next_cursor is not None:
            p = self.page(table, limit=size, cursor=p.next_cursor, **kw)
            yield p.table

    def rows(
        self,
        table: str,
        *,
        columns: None | str | Sequence[str] = None,
        filters: None | Filter | Mapping[str, Any] | Iterable[Filter] = None,
        sort: None | str | Sequence[str] = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> pa.Table:
        """The rows of ``table`` (at most ``limit``; all when ``None``) as one Arrow table.

        The arguments are those of :meth:`page`; the rows are fetched a page
        at a time (see :meth:`pages`). For one page with its total and
        cursor, use :meth:`page`.
        """
        limit = _int(limit, "limit")
        if limit is not None and limit < 1:
            raise InvalidInputError(f"limit={limit}: give at least 1")
        size = _int(page_size, "page_size")
        adapt = size is None
        if size is None:
            size = min(limit, DEFAULT_PAGE_SIZE) if limit is not None else DEFAULT_PAGE_SIZE
        kw = {"columns": columns, "filters": filters, "sort": sort}
        parts: list[pa.Table] = []
        got = 0
        for t in self._pages(table, size, adapt=adapt, kw=kw):
            parts.append(t)
            got += t.num_rows
            if limit is not None and got >= limit:
                break
        out = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        return out.slice(0, limit) if limit is not None else out

    def query_parquet(self, statename: str, dname: str, page: int = 0, page_size: int = 10) -> dict:
        """The reference ``/query-parquet`` endpoint: ``{data, total_rows, page, page_size}``."""
        params = [
            ("statename", statename),
            ("dname", dname),
            ("page", _int(page, "page")),
            ("page_size", _int(page_size, "page_size")),
        ]
        return self._json("GET", "/query-parquet", params)

    # -- SQL ----------------------------------------------------------------

    def sql(self, query: str, limit: int | None = None) -> pa.Table:
        """Run one read-only SQL query (DataFusion SQL) over the server's tables.

        At most ``limit`` rows come back (and never more than the server's
        ``sql_row_limit``). DDL, DML and other statements are refused with
        :class:`~tessera.errors.InvalidInputError`.
        """
        if not isinstance(query, str):
            raise TypeError(f"query is a string, not {type(query).__name__}")
        body: dict[str, Any] = {"sql": query}
        if limit is not None:
            body["limit"] = _int(limit, "limit")
        table, _ = self._arrow("POST", "/v1/sql", body=body)
        return table

    # -- datasets -----------------------------------------------------------

    def datasets(self, prefix: str = "") -> list[dict]:
        """The datasets of the caller's namespace (names starting with ``prefix``).

        Each is a dict: name, version, files, bytes, rows, partition_columns.
        """
        params = [("prefix", prefix or None)]
        return list(self._json("GET", "/v1/datasets", params)["datasets"])

    def names(self, prefix: str = "") -> list[str]:
        """The names of the datasets of the caller's namespace."""
        return [d["name"] for d in self.datasets(prefix)]

    def put(
        self,
        name: str,
        data: Any,
        *,
        date_key: None | str | tuple[str, str] = None,
        id_key: None | str | tuple[str, int] = None,
        version: str | None = None,
        keep_last: bool = False,
        input_format: str | None = None,
    ) -> dict:
        """Load ``data`` into the dataset ``name`` (made by the first load); needs the write role.

        ``data``: a pandas DataFrame (named index levels become columns, an
        unnamed index is dropped), a pyarrow Table, RecordBatch or
        RecordBatchReader, or any object with ``__arrow_c_stream__`` — sent
        as Parquet (dictionary columns decoded); or a path to a CSV, TSV,
        JSON Lines (optionally ``.gz``/``.zst``) or Parquet file, or
        ``bytes`` of one, sent as is with the format from ``input_format``
        or the file's extension.

        ``date_key``: ``"col"`` (partition by day) or ``("col", "day" |
        "month" | "year")``; ``id_key``: ``"col"`` or ``("col", width)``
        (ranges of ``width`` ids, 100000 by default); the first load fixes
        the layout. ``version``: the load's version key (default: the UTC
        time of the load). ``keep_last``: replace all earlier data.

        Returns the server's report: name, version_key, table_version, rows,
        files, created, keep_last, new_columns, partition_columns, attempts.
        """
        if not isinstance(name, str):
            raise TypeError(f"name is a string, not {type(name).__name__}")
        if input_format is not None and not isinstance(input_format, str):
            raise TypeError(f"input_format is a string, not {type(input_format).__name__}")
        params: list[tuple[str, Any]] = [
            ("date_key", _date_key(date_key)),
            ("id_key", _id_key(id_key)),
            ("version", None if version is None else str(version)),
            ("keep_last", True if keep_last else None),
        ]
        body: bytes | IO[bytes]
        if isinstance(data, (bytes, bytearray, memoryview)):
            if input_format is None:
                raise InvalidInputError("bytes need input_format= (parquet, csv, tsv or jsonl)")
            params.append(("format", input_format))
            with self._open("POST", _dataset_path(name), params, bytes(data), _octets()) as resp:
                return _loads(self._read(resp))
        if isinstance(data, (str, os.PathLike)):
            path = os.fspath(data)
            params.append(("format", input_format or _file_format(path)))
            try:
                body = open(path, "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError as e:
                raise NotFoundError(f"{path}: no such file") from e
        else:
            if input_format not in (None, "parquet"):
                raise InvalidInputError("input_format= only applies to files and bytes")
            params.append(("format", "parquet"))
            body = _spool_parquet(data)
        try:
            with self._open("POST", _dataset_path(name), params, body, _octets()) as resp:
                return _loads(self._read(resp))
        finally:
            body.close()

    def get(
        self,
        name: str,
        *,
        version: str | None = None,
        last: bool = False,
        as_of: None | int | str | _dt.datetime | _dt.date = None,
        where: str | None = None,
        columns: None | str | Sequence[str] = None,
    ) -> pa.Table:
        """The rows of the dataset ``name`` as an Arrow table.

        ``version``: only the rows of the load with this version key;
        ``last``: only those of the most recent load (not both). ``as_of``:
        the dataset as of a Delta version (int) or a time (datetime, date or
        string; naive datetimes are UTC). ``where``: a SQL predicate.
        ``columns``: names to return (``_version_key`` and the partition
        columns are left out unless named). Row order is not defined.
        """
        params: list[tuple[str, Any]] = [
            ("version", None if version is None else str(version)),
            ("last", True if last else None),
            ("as_of", _as_of(as_of)),
            ("where", where),
            ("columns", _names(columns)),
        ]
        table, _ = self._arrow("GET", _dataset_path(name), params)
        return table

    def history(self, name: str, *, limit: int | None = None) -> list[dict]:
        """The commits of the dataset ``name``, newest first.

        Each is a dict: version, time, operation, version_key, rows, files_added, …
        """
        params = [("view", "history"), ("limit", _int(limit, "limit"))]
        return list(self._json("GET", _dataset_path(name), params)["history"])

    def info(self, name: str) -> dict:
        """The dataset ``name``: version, files, bytes, rows, partition_columns."""
        return self._json("GET", _dataset_path(name), [("view", "info")])

    def remove(self, name: str) -> dict:
        """Delete the dataset ``name`` and every file of it; needs the admin role.

        Returns what was deleted: name, objects, bytes.
        """
        return self._json("DELETE", _dataset_path(name))

    # -- manifests ----------------------------------------------------------

    def manifests(self) -> list[dict]:
        """The manifests this caller may query: name, location."""
        return list(self._json("GET", "/v1/manifests")["manifests"])

    def lookup(self, manifest: str, /, **fields: Any) -> list[dict]:
        """The records of ``manifest`` matching every ``field=value`` (all records without any).

        Values (str, int, date) are compared by the field's type on the
        server: ``tissue_id="045"`` matches the integer 45.
        """
        path = f"/v1/manifests/{_segment(manifest, 'manifest')}/lookup"
        return list(self._json("GET", path, list(fields.items()))["records"])

    def count(self, manifest: str, /, **fields: Any) -> int:
        """How many records of ``manifest`` match every ``field=value``."""
        path = f"/v1/manifests/{_segment(manifest, 'manifest')}/lookup"
        return int(self._json("GET", path, list(fields.items()))["count"])

    def unique(self, manifest: str, field: str) -> list:
        """The distinct values of ``field`` in ``manifest``, sorted."""
        path = f"/v1/manifests/{_segment(manifest, 'manifest')}/unique/{_segment(field, 'field')}"
        return list(self._json("GET", path)["values"])

    # -- slices -------------------------------------------------------------

    def plan(
        self,
        object: str,  # noqa: A002 - the server's name for it
        *,
        count: int | None = None,
        bytes: int | None = None,  # noqa: A002
        records: int | None = None,
        grid: tuple[int, int] | str | None = None,
        level: int | None = None,
        interval: float | str | _dt.timedelta | None = None,
    ) -> list[dict]:
        """Slice descriptors of an indexed object under the server's store: exactly one of
        ``count``, ``bytes``, ``records``, ``grid`` (``(columns, rows)`` or ``"4x4"``: COG
        windows, COPC nodes, LAS/LAZ points indexed spatially) or ``interval`` (MeasurementSets:
        whole timestamps spanning less than this each, in seconds, a ``timedelta`` or a string
        such as ``"10min"``); ``level`` (a COG overview level, a COPC level of detail) cuts that
        level into ``count`` slices.

        ``object`` is a key under the store (with auth on, starting with the
        caller's namespace). The descriptors are the JSON that
        ``tessera slice`` writes (``tessera.Slice.from_json`` reads one).
        """
        body: dict[str, Any] = {"object": object}
        for k, v in (("count", count), ("bytes", bytes), ("records", records), ("level", level)):
            if v is not None:
                body[k] = _int(v, k)
        if grid is not None:
            body["grid"] = _grid(grid)
        if interval is not None:
            body["interval"] = _interval(interval)
        return list(self._json("POST", "/v1/slices/plan", body=body))

    def slice_data(
        self,
        object: str,  # noqa: A002
        slice: int,  # noqa: A002
        *,
        count: int | None = None,
        bytes: int | None = None,  # noqa: A002
        records: int | None = None,
        grid: tuple[int, int] | str | None = None,
        level: int | None = None,
        interval: float | str | _dt.timedelta | None = None,
    ) -> bytes:
        """The data of slice number ``slice`` (0-based) of the plan :meth:`plan` makes with the
        same arguments: a text slice's records with the format's header, a standalone LAS/LAZ
        file or GeoTIFF, or for imzML and MeasurementSets a tar stream of the slice's files."""
        params: list[tuple[str, Any]] = [
            ("object", object),
            ("count", _int(count, "count")),
            ("bytes", _int(bytes, "bytes")),
            ("records", _int(records, "records")),
            ("level", _int(level, "level")),
            ("grid", None if grid is None else _grid(grid)),
            ("interval", None if interval is None else _interval(interval)),
            ("slice", _int(slice, "slice")),
        ]
        with self._open("GET", "/v1/slices/data", params) as resp:
            return self._read(resp)


def _grid(value: Any) -> str:
    """A grid as the server reads it: ``COLSxROWS``."""
    if isinstance(value, str):
        return value
    try:
        cols, rows = value
    except (TypeError, ValueError):
        raise TypeError(f"grid is (columns, rows) or 'COLSxROWS', not {value!r}") from None
    return f"{_int(cols, 'grid columns')}x{_int(rows, 'grid rows')}"


def _interval(value: Any) -> str:
    """A time span as the server reads it: a string as given, seconds or a
    ``timedelta`` as whole seconds (``30s``) or else milliseconds (``1500ms``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"interval is seconds, a timedelta or a string, not {type(value).__name__}")
    ms = round(value * 1000)
    if ms <= 0:
        raise ValueError(f"interval must be positive, not {value!r}")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _int(value: Any, what: str) -> int | None:
    """``value`` checked to be an integer (``None`` passes)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} is an integer, not {type(value).__name__}")
    return value


def _segment(value: str, what: str) -> str:
    """One path segment, percent-encoded."""
    if not isinstance(value, str):
        raise TypeError(f"{what} is a string, not {type(value).__name__}")
    if not value:
        raise InvalidInputError(f"{what} is empty")
    return urllib.parse.quote(value, safe="")


def _dataset_path(name: str) -> str:
    """The URL path of a dataset (its ``/``-separated segments kept)."""
    if not isinstance(name, str):
        raise TypeError(f"name is a string, not {type(name).__name__}")
    if not name:
        raise InvalidInputError("the dataset name is empty")
    return "/v1/datasets/" + urllib.parse.quote(name, safe="/")


def _as_of(value: None | int | str | _dt.datetime | _dt.date) -> str | None:
    """The ``as_of=`` text: a Delta version, or a time in RFC 3339 (naive = UTC)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("as_of is a version (int), a datetime, a date or a string, not bool")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, (_dt.date, str)):
        return _text(value)
    raise TypeError(
        f"as_of is a version (int), a datetime, a date or a string, not {type(value).__name__}"
    )


def _octets() -> dict[str, str]:
    """Headers of an upload body (its format is named by ``format=``)."""
    return {"Content-Type": "application/octet-stream", "Accept": "application/json"}


def _loads(raw: bytes) -> Any:
    """A JSON answer."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise TesseraError(f"the server's answer is not JSON: {e}") from e
