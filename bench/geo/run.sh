#!/usr/bin/env bash
# Benchmark: point-cloud slicing. In one run, on one generated LAZ file
# (default 30,000,000 points, LAZ 1.4, point format 6, lazrs' 50,000-point
# chunks, written by laspy + lazrs: a few hundred MB):
#   (a) `tessera index` (the header, VLRs and chunk table: a few reads);
#   (b) planning SLICES (16) slices and evaluating all of them
#       (`tessera slice get`, one process per slice, WORKERS (2) at a time
#       through xargs -P, each writing a standalone LAZ file), and the same
#       with every slice then read back with laspy;
#   (c) reading the whole file with laspy + lazrs (`laspy.read`, every point
#       touched), one thread (LazBackend.Lazrs) and in parallel
#       (LazBackend.LazrsParallel, laspy's default when lazrs is installed:
#       chunks decompressed on all cores);
#   then a Cloud-Optimized GeoTIFF (bench/geo/cog.py; COG_SIZE, default
#   16384x16384, 3 bands uint8, DEFLATE, 512 tiles, overviews: ~380 MB):
#   (a) `tessera index` and the ranged reads it took; (b) a 4x4 grid of
#   tile-aligned windows fetched with `tessera slice get`, WORKERS at a
#   time; (c) rasterio (GDAL) reading the same windows, WORKERS processes;
#   (d) tessera's window files then decoded by rasterio.
# Each case runs in its own process. Prints medians of RUNS runs, compressed
# MB/s, CPU seconds, peak RSS and ratios.
#
#   bash bench/geo/run.sh
#   POINTS=2000000 COG_SIZE=4096 RUNS=1 bash bench/geo/run.sh   # a quick look
set -euo pipefail
. "$(dirname "$0")/../common.sh"

# The peers, pinned (laspy and lazrs as in scripts/requirements-test.txt).
bench_setup geo "numpy==2.4.6 laspy==2.7.0 lazrs==0.8.2 rasterio==1.4.4"

# Cloud-Optimized GeoTIFF windows against rasterio's windowed reads.
bench_cog() {
  echo
  echo "== COG"
  "$VENV/bin/python" bench/geo/cog.py --tessera "$BIN/tessera" --work "$OUT/cog" \
    --size "${COG_SIZE:-16384}" --runs "${RUNS:-3}" --workers "${WORKERS:-2}"
}

"$VENV/bin/python" bench/geo/bench.py \
  --tessera "$BIN/tessera" --out "$OUT" \
  --points "${POINTS:-30000000}" --runs "${RUNS:-3}" \
  --slices "${SLICES:-16}" --workers "${WORKERS:-2}"

bench_cog
