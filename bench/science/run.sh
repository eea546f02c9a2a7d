#!/usr/bin/env bash
# Benchmark: slicing scientific datasets. In one run, two generated datasets.
#
# imzML: one mass-spectrometry image (default 19,600 spectra of 2,000
# peaks, processed mode, float32 arrays, written by pyimzml: a ~310 MB .ibd
# and a ~45 MB XML):
#   (a) `tessera index` (the XML parsed once, the .ibd's UUID read);
#   (b) planning SLICES (16) slices and fetching all of them
#       (`tessera slice get -o DIR`, one process per slice, WORKERS (2) at a
#       time through xargs -P, each a standalone imzML + ibd pair);
#   (c) pyimzml's ImzMLParser reading every spectrum (getspectrum(i) for
#       all i), in one process and split across WORKERS processes;
#   (d) tessera's slices then read spectrum by spectrum with pyimzml, the
#       slices shared out among WORKERS processes.
#
# MeasurementSet: one radio-astronomy MeasurementSet written by
# python-casacore (default TIMES=256 timestamps x BASELINES=351 rows x
# CHANS=64 channels x 4 correlations, a ~290 MB main table laid out as CASA
# writes it: TIME and the ids in IncrementalStMan, ANTENNA1/2, UVW,
# WEIGHT/SIGMA in StandardStMan, DATA/FLAG/WEIGHT_SPECTRUM in
# TiledShapeStMan tiled by channels and rows):
#   (a) `tessera index` of the folder (records: main-table rows);
#   (b) planning SLICES slices over whole timestamps (`tessera slice
#       --count`; INTERVAL=1: `--interval` spanning TIMES/SLICES
#       timestamps) and fetching all of them (`tessera slice get -o DIR`,
#       one process per slice, WORKERS at a time, each a standalone
#       MeasurementSet folder);
#   (c) python-casacore opening the main table and reading every column in
#       full (getcol, array columns in blocks of rows), in one process and
#       split across WORKERS processes by row ranges;
#   (d) tessera's slices then read column by column with python-casacore,
#       the slices shared out among WORKERS processes.
#
# (c) and (d) are checked to read the same data. Each case runs in its own
# process. Prints medians of RUNS runs, MB/s of the dataset's bytes (imzML:
# XML + ibd; MeasurementSet: the main table's files), CPU seconds, peak RSS
# and ratios.
#
#   bash bench/science/run.sh
#   SPECTRA=2000 TIMES=32 RUNS=1 bash bench/science/run.sh   # a quick look
set -euo pipefail
. "$(dirname "$0")/../common.sh"

# The peers, pinned (pyimzml and python-casacore as in scripts/requirements-test.txt).
bench_setup science "numpy==2.4.6 pyimzml==1.5.5 python-casacore==3.8.1"

echo
echo "== imzML"
"$VENV/bin/python" bench/science/imzml.py --tessera "$BIN/tessera" --work "$OUT/imzml" \
  --spectra "${SPECTRA:-19600}" --points "${POINTS:-2000}" --runs "${RUNS:-3}" \
  --slices "${SLICES:-16}" --workers "${WORKERS:-2}"

echo
echo "== MeasurementSet"
# INTERVAL=1 (read by ms.py): plan with --interval instead of --count
"$VENV/bin/python" bench/science/ms.py --tessera "$BIN/tessera" --work "$OUT/ms" \
  --times "${TIMES:-256}" --baselines "${BASELINES:-351}" --chans "${CHANS:-64}" --runs "${RUNS:-3}" \
  --slices "${SLICES:-16}" --workers "${WORKERS:-2}"
