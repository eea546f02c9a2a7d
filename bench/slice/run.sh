#!/usr/bin/env bash
# Benchmark: slicing. In one run, on the same generated input:
#   * a FASTQ (default 1 GB, reads of 100-150 bases), gzip-compressed, indexed
#     by `gztool -i -x` (what the reference framework runs) and by
#     `tessera index`;
#   * a multi-sequence FASTA (default 500 MB) indexed by `samtools faidx` and
#     by `tessera index --fai`;
#   * the FASTQ.gz cut into 64 slices, all fetched (`tessera slice get`, one
#     process per slice, 1 and 2 at a time) against reading the whole file
#     sequentially (`gzip -dc`, and `tessera slice get` of a 1-slice plan).
# Prints medians of RUNS runs, MB/s and ratios.
#
#   bash bench/slice/run.sh
#   FASTQ_MB=200 FASTA_MB=100 RUNS=1 bash bench/slice/run.sh   # a quick look
set -euo pipefail
. "$(dirname "$0")/../common.sh"

. "$(dirname "$0")/../../scripts/debian.sh"
need_commands gztool:gztool samtools:samtools pigz:pigz

bench_setup slice ""

exec python3 bench/slice/bench.py \
  --tessera "$BIN/tessera" --out "$OUT" \
  --fastq-mb "${FASTQ_MB:-1000}" --fasta-mb "${FASTA_MB:-500}" --runs "${RUNS:-3}"
