"""The exceptions tessera raises.

Every library error arrives as one of these classes, with the library's
message (it names the object, line and column where known) and the name of
the library's error variant in ``.variant`` (``"SchemaMismatch"``,
``"NotFound"``, …) for programs that need to tell cases apart. They are
plain Python classes, so they pickle (Dask and multiprocessing carry them
back from workers).

Wrong argument *types* raise ``TypeError``, as in any Python library.
"""

from __future__ import annotations

__all__ = [
    "TesseraError",
    "NotFoundError",
    "AlreadyExistsError",
    "InvalidInputError",
    "SchemaError",
    "ConflictError",
    "StaleIndexError",
    "AccessDeniedError",
    "StoreError",
    "InternalError",
]


class TesseraError(Exception):
    """Base class of every tessera error."""

    #: The library's error variant, e.g. ``"SchemaMismatch"``.
    variant: str = ""

    def __reduce__(self):  # keep .variant across pickling
        return (_rebuild, (type(self), self.args, self.variant))


def _rebuild(cls: type, args: tuple, variant: str) -> TesseraError:
    exc = cls(*args)
    exc.variant = variant
    return exc


class NotFoundError(TesseraError, FileNotFoundError):
    """An object, dataset, version, index or record that does not exist."""


class AlreadyExistsError(TesseraError, FileExistsError):
    """Something that must be new already exists."""


class InvalidInputError(TesseraError, ValueError):
    """Bad input: malformed rows or paths, invalid names, options or queries."""


class SchemaError(InvalidInputError):
    """Columns or types that do not fit: a schema conflict, a missing column."""


class ConflictError(TesseraError):
    """Another writer changed the same data first (or an object changed while read)."""


class StaleIndexError(TesseraError):
    """The object changed since it was indexed: index it again."""


class AccessDeniedError(TesseraError, PermissionError):
    """The store refused the credentials, or found none."""


class StoreError(TesseraError, OSError):
    """The store could not be reached or failed; a local file could not be read or written."""


class InternalError(TesseraError):
    """A fault of tessera itself (please report it)."""
