"""``pandas-db-sdk``'s ``DataFrameClient`` over a ``tessera serve`` server.

Code written for the ``pandas_db_sdk.client.DataFrameClient`` of
pandas-db-sdk keeps working with a change of import::

    from tessera.compat.pandas_db import DataFrameClient

    client = DataFrameClient(api_url="http://127.0.0.1:8080", auth_token="tsr_…")
    client.load_dataframe(df, "my-project/dataset1", columns_keys={"date": "Date"})
    df = client.get_dataframe("my-project/dataset1")

Each call is one request to the server through :class:`tessera.client.Client`
(``client.client`` gives it, for the rest of the server's API).

How the reference API maps onto tessera
=======================================

``DataFrameClient(api_url, auth_token)``
    ``api_url`` is the server's base URL; ``auth_token`` is sent as
    ``Authorization: Bearer <token>``: an API token of the server's auth
    file, or a JWT (a Cognito token works when the server's auth file has a
    ``[jwt]`` section for the user pool). ``None`` or ``""`` sends none,
    for a server without ``--auth``.

``load_dataframe(df, dataframe_name, columns_keys, external_key, keep_last)``
    A load of the dataset ``dataframe_name`` (``POST /v1/datasets/NAME``,
    the frame sent as Parquet).

    - ``columns_keys={'col': 'Date'}`` → ``date_key="col"``: the dataset is
      partitioned by the day of ``col`` (a date, a timestamp or date text
      such as ``'2024-01-01'``).
    - ``columns_keys={'col': 'ID'}`` → ``id_key="col"``: partitioned by
      ranges of ``col`` (integers), 100000 ids wide unless ``id_width=``
      says otherwise.
    - ``external_key='NOW'`` (the default) → the load's version key is the
      UTC time of the load; any other ``external_key`` is the version key.
    - ``keep_last=True`` → the load replaces all earlier data.
    - Returns the server's report as a dict: ``name``, ``version_key``,
      ``table_version``, ``rows``, ``files``, ``created``, ``keep_last``,
      ``new_columns``, ``partition_columns``, ``attempts``.

``get_dataframe(dataframe_name, external_key, use_last)``
    A read of the dataset (``GET /v1/datasets/NAME``, as Arrow) turned into
    a pandas DataFrame: every row by default, ``external_key=K`` the rows
    loaded with version key ``K``, ``use_last=True`` those of the most
    recent load.

Where behaviour differs on purpose
==================================

- **Storage.** Data is stored as a Delta Lake table of Parquet files under
  ``STORE/datasets/NAMESPACE/NAME/`` on the server's store, not as 100K-row
  ``.csv.gz`` chunks with a ``last_key.txt``; files are about 128 MB,
  partitioned in Hive folders (``date_day=2024-01-01/``,
  ``id_range=from_0_to_100000/``). Spark, DuckDB, Polars and ``deltalake``
  read it without tessera.
- **Types are kept.** The frame travels as Parquet, so columns come back
  with their types instead of being re-inferred from CSV: text stays text
  (a ``'2024-01-01'`` column is still strings), timestamps come back as
  UTC microsecond timestamps (time-zone aware), unsigned integers as signed
  ones, categoricals as their values. The index is not stored: an unnamed
  index is dropped, named index levels become columns.
- **Partition and version columns** (``date_day``, ``customer_id_range``,
  ``_version_key``) are not in the returned frame; use
  ``client.client.get(name, columns=[...])`` to see them.
- **Row order** of ``get_dataframe`` is not defined (files are read in
  parallel); sort the frame if order matters.
- **One Date key and one ID key at most**, and the first load fixes the
  layout: a later load without ``columns_keys`` reuses it, one naming other
  keys is refused with :class:`~tessera.errors.InvalidInputError`. A later
  load may add columns; a column whose type changes is refused.
- **Kinds are case-insensitive** (``'Date'``, ``'date'``, ``'ID'``,
  ``'id'``); anything else is an :class:`~tessera.errors.InvalidInputError`
  before any request.
- **``external_key`` together with ``use_last=True``** is refused by the
  server (:class:`~tessera.errors.InvalidInputError`): a read takes one
  version key or the last load, not both. An ``external_key`` that was
  never loaded gives an empty frame with the dataset's columns.
- **``keep_last=True``** replaces the data in one commit; the earlier rows
  stay readable by time travel (``client.client.get(name, as_of=N)``)
  until the dataset is vacuumed.
- **Isolation** is by the token's namespace on one store rather than one
  bucket per user; the role of the token decides whether it may load
  (write) or only read.
- **Names** are ``/``-separated segments of ``A-Z a-z 0-9 . _ -``; a
  dataset cannot live inside another (``a`` and ``a/b``).
- **Errors** are the exceptions of :mod:`tessera.errors`: a missing
  dataset raises :class:`~tessera.errors.NotFoundError`, a bad token
  :class:`~tessera.errors.AccessDeniedError`, bad input
  :class:`~tessera.errors.InvalidInputError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tessera.client import Client
from tessera.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["DataFrameClient"]

_KINDS = {"date": "date", "id": "id"}


class DataFrameClient:
    """Store and read pandas DataFrames on a ``tessera serve`` server, with the
    interface of pandas-db-sdk's ``DataFrameClient``.

    ``api_url``: the server's base URL. ``auth_token``: the bearer token
    (``None`` or ``""`` for a server without auth). ``timeout``: seconds per
    request.
    """

    def __init__(
        self, api_url: str, auth_token: str | None = None, *, timeout: float = 60.0
    ) -> None:
        #: The :class:`tessera.client.Client` the calls go through.
        self.client: Client = Client(api_url, token=auth_token or None, timeout=timeout)

    @property
    def api_url(self) -> str:
        """The server's base URL."""
        return self.client.url

    def __repr__(self) -> str:
        return f"DataFrameClient({self.client.url!r})"

    def load_dataframe(
        self,
        df: pd.DataFrame,
        dataframe_name: str,
        columns_keys: dict[str, str] | None = None,
        external_key: str = "NOW",
        keep_last: bool = False,
        *,
        id_width: int | None = None,
    ) -> dict:
        """Store ``df`` as a load of the dataset ``dataframe_name``.

        ``columns_keys``: ``{column: 'Date' | 'ID'}``, the partitioning
        (at most one of each). ``external_key``: the version key of the load
        (``'NOW'``: the UTC time of the load). ``keep_last``: replace all
        earlier data. ``id_width`` (tessera only): the width of the ID
        ranges (default 100000).

        Returns the server's report of the load (a dict).
        """
        import pandas as pd  # noqa: PLC0415 - pandas is this adapter's own dependency

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"df is a pandas.DataFrame, not {type(df).__name__}")
        if not isinstance(dataframe_name, str):
            raise TypeError(f"dataframe_name is a string, not {type(dataframe_name).__name__}")
        date_key, id_col = _keys(columns_keys)
        id_key: Any = id_col
        if id_width is not None:
            if isinstance(id_width, bool) or not isinstance(id_width, int):
                raise TypeError(f"id_width is an integer, not {type(id_width).__name__}")
            if id_col is None:
                raise InvalidInputError("id_width needs an 'ID' column in columns_keys")
            id_key = (id_col, id_width)
        version = _version(external_key)
        return self.client.put(
            dataframe_name,
            df,
            date_key=date_key,
            id_key=id_key,
            version=version,
            keep_last=bool(keep_last),
        )

    def get_dataframe(
        self,
        dataframe_name: str,
        external_key: str | None = None,
        use_last: bool = False,
    ) -> pd.DataFrame:
        """Read the dataset ``dataframe_name`` as a pandas DataFrame.

        ``external_key``: only the rows loaded with this version key.
        ``use_last``: only the rows of the most recent load.
        """
        if not isinstance(dataframe_name, str):
            raise TypeError(f"dataframe_name is a string, not {type(dataframe_name).__name__}")
        if external_key is not None and not isinstance(external_key, str):
            raise TypeError(f"external_key is a string, not {type(external_key).__name__}")
        table = self.client.get(dataframe_name, version=external_key, last=bool(use_last))
        return table.to_pandas()


def _keys(columns_keys: dict[str, str] | None) -> tuple[str | None, str | None]:
    """The date-key and ID-key columns of a ``{column: 'Date' | 'ID'}`` mapping."""
    if columns_keys is None:
        return None, None
    if not isinstance(columns_keys, dict):
        raise TypeError(
            f"columns_keys is a dict of column → 'Date' | 'ID', not {type(columns_keys).__name__}"
        )
    found: dict[str, str] = {}
    for col, kind in columns_keys.items():
        if not isinstance(col, str) or not isinstance(kind, str):
            raise TypeError(
                f"columns_keys maps column names to 'Date' or 'ID', not {col!r}: {kind!r}"
            )
        k = _KINDS.get(kind.strip().lower())
        if k is None:
            raise InvalidInputError(
                f"columns_keys['{col}'] = '{kind}': use 'Date' (partition by day) or 'ID' "
                "(partition by id ranges)"
            )
        if k in found:
            raise InvalidInputError(
                f"columns_keys names two {kind} columns ('{found[k]}' and '{col}'): "
                "a dataset has at most one Date key and one ID key"
            )
        found[k] = col
    return found.get("date"), found.get("id")


def _version(external_key: str | None) -> str | None:
    """The version key of a load: ``None`` (the server's time of the load) for ``'NOW'``."""
    if external_key is None:
        return None
    if not isinstance(external_key, str):
        raise TypeError(f"external_key is a string, not {type(external_key).__name__}")
    if external_key.strip().upper() == "NOW":
        return None
    if not external_key.strip():
        raise InvalidInputError("external_key is empty: give a version key or 'NOW'")
    return external_key
