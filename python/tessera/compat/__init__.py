"""The reference tools' names and signatures over tessera: migrate by changing one import.

===========================  =========================================  ==============================
reference                    ``tessera.compat``                         runs on
===========================  =========================================  ==============================
Data Access Optimizer        ``generate_manifest(bucket, prefix, out,   :func:`tessera.build_manifest`
``src.generator`` /          aws_profile=None)``
``src.lookup``               ``ManifestLookup(path, tmp_dir=None,       :class:`tessera.Manifest`
                             aws_credentials=None)``: ``exists``,
                             ``get_s3_file_path``, ``get_file_path``,
                             ``get_records_for_gene``,
                             ``get_records_for_tissue``, ``get_unique``,
                             ``close``, ``with``; ``Record``
s3_data_packer               ``S3DataPacker(input_basepath,             :func:`tessera.pack`
                             output_basepath, table_name, …)``,
                             ``.pack_data()``
Dataplug                     ``CloudObject.from_s3(Format, url)``,      :func:`tessera.index`,
                             ``.preprocess()``, ``.partition(strategy,  :func:`tessera.plan`,
                             …)``, slice ``.get()``; formats ``CSV``,   :meth:`tessera.Slice.fetch`
                             ``UTF8Text``, ``GZipText``, ``FASTQGZip``,
                             ``FASTA``, ``VCF`` (+ ``TSV``, ``FASTQ``,
                             ``JSONL``); strategies
                             ``partition_reads_batches``,
                             ``partition_sequences_per_chunk``,
                             ``partition_chunk_lines``,
                             ``partition_num_chunks``,
                             ``partition_chunk_size``,
                             ``partition_chunks_strategy``,
                             ``whole_words_strategy``
pandas-db-sdk                ``DataFrameClient(api_url, auth_token)``   ``tessera serve`` (datasets)
                             ``.load_dataframe``, ``.get_dataframe``    (``tessera.compat.pandas_db``)
AWS Parquet Query Engine     no Python API: ``tessera serve`` answers   ``tessera serve``,
                             ``GET /query-parquet?statename=&dname=&    :class:`tessera.Client`
                             page=&page_size=`` in the same shape
===========================  =========================================  ==============================

Where the behaviour differs on purpose
--------------------------------------

Where a reference tool loses or duplicates data, tessera does not:

* **Manifests.** The reference pattern ``.*/v1/ad/…`` needs a character
  before ``/v1/``, so keys listed directly under the prefix (``v1/ad/…``) are
  dropped; tessera's template ``**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl``
  matches them. ``get_file_path`` downloads through tessera's cache (keyed by
  URL and ETag, one download when many processes ask at once, published by
  atomic rename), where the reference downloads again on every call into one
  shared path that concurrent callers overwrite while others read it.
  Generating twice for the same bucket and prefix works (the reference's
  temporary folder already exists the second time). An empty result is an
  error and writes nothing.
* **Packing.** Running ``pack_data()`` again packs nothing twice: inputs an
  earlier run packed into the table (same URL and ETag) are skipped unless
  ``force=True``, where the reference appends every input again. A run that
  is killed and run again leaves every input row exactly once (a journal),
  where the reference, having already rewritten the latest file with new
  rows, reads that file and every input again and duplicates them. Input is
  streamed rather than loaded whole into one DataFrame, and file sizes are
  measured on the written bytes (within 5 % of the limit) instead of
  estimated from one trial write.
* **Slicing.** Every record is in exactly one slice, whole, in order. The
  reference's ``partition_sequences_per_chunk`` and ``partition_chunk_lines``
  drop the last line of every chunk (an inclusive end read as exclusive) and
  pair line ranges with the wrong byte ranges; ``partition_reads_batches``
  makes empty or out-of-range batches when there are more batches than reads
  (tessera returns fewer, non-empty slices); the gzip reader drops a final
  line without a newline; CSV slices cut quoted fields that hold newlines and
  rebuild the header as ``",".join(columns)`` (losing its quoting), where
  tessera repeats the original header; the text strategy refills a cut word
  from the wrong offset of the object (tessera's text slices end on line
  boundaries, not word boundaries); the FASTA index keeps offsets as 32-bit
  integers, so objects beyond 4 GiB are cut at wrong places. A FASTA slice
  that starts inside a sequence begins with that sequence's header line as it
  is (the reference appends `` offset=N``). Preprocessing needs no ``gztool``
  and creates no ``<bucket>.meta`` bucket: the index is a sidecar object
  beside the data (or under ``index_store``/``metadata_bucket``), and an index
  of an object that changed is refused instead of used. Pickled slices carry
  no credentials (the reference pickles its S3 client's credentials into
  every slice); workers use their own environment's.
* **Query server.** Pages of ``/query-parquet`` come in a stable row order,
  so paging visits every row once (the reference pages with ``LIMIT/OFFSET``
  ordered by a constant, which a parallel scan does not keep from one request
  to the next); names outside ``[a-z0-9_-]+`` (the reference only checks that
  they are lower case, then puts them into its SQL text) and out-of-range
  ``page_size`` are a 400, a missing file a 404.

Other differences: ``S3DataPacker.pack_data()`` and ``generate_manifest``
return tessera's report instead of ``None``; every call takes any tessera
location (local paths, ``s3://``, ``gs://``, ``az://``, ``file://``) and the
store keywords ``profile=``, ``endpoint=``, ``region=``, ``config=``;
lookups return records sorted by the manifest's fields; errors are
tessera's (``FileNotFoundError``/``ValueError`` subclasses, see
:mod:`tessera.errors`) rather than ``KeyError`` or ``sys.exit``.
"""

from __future__ import annotations

from typing import Any

from .dataplug import (
    CSV,
    FASTA,
    FASTQ,
    JSONL,
    TSV,
    VCF,
    CloudObject,
    DataFormat,
    DataSlice,
    FASTQGZip,
    GZipText,
    UTF8Text,
    partition_chunk_lines,
    partition_chunk_size,
    partition_chunks_strategy,
    partition_num_chunks,
    partition_reads_batches,
    partition_sequences_per_chunk,
    whole_words_strategy,
)
from .manifest import DEFAULT_TEMPLATE, ManifestLookup, Record, generate_manifest
from .packer import S3DataPacker, metadata_to_schema

__all__ = [
    "CSV",
    "DEFAULT_TEMPLATE",
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
    "DataFrameClient",
    "DataSlice",
    "ManifestLookup",
    "Record",
    "S3DataPacker",
    "generate_manifest",
    "metadata_to_schema",
    "partition_chunk_lines",
    "partition_chunk_size",
    "partition_chunks_strategy",
    "partition_num_chunks",
    "partition_reads_batches",
    "partition_sequences_per_chunk",
    "whole_words_strategy",
]


def __getattr__(name: str) -> Any:
    """``DataFrameClient`` is imported on first use (it lives in :mod:`.pandas_db`)."""
    if name == "DataFrameClient":
        from .pandas_db import DataFrameClient

        globals()["DataFrameClient"] = DataFrameClient
        return DataFrameClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
