#!/usr/bin/env bash
# Benchmark: slicing scientific datasets. In one run, on one generated
# imzML mass-spectrometry image (default 19,600 spectra of 2,000 peaks,
# processed mode, float32 arrays, written by pyimzml: a ~310 MB .ibd and a
# ~45 MB XML):
#   (a) `tessera index` (the XML parsed once, the .ibd's UUID read);
#   (b) planning SLICES (16) slices and fetching all of them
#       (`tessera slice get -o DIR`, one process per slice, WORKERS (2) at a
#       time through xargs -P, each a standalone imzML + ibd pair);
#   (c) pyimzml's ImzMLParser reading every spectrum (getspectrum(i) for
#       all i), in one process and split across WORKERS processes;
#   (d) tessera's slices then read spectrum by spectrum with pyimzml, the
#       slices shared out among WORKERS processes.
# Each case runs in its own process. Prints medians of RUNS runs, MB/s of
# the dataset's bytes (XML + ibd), CPU seconds, peak RSS and ratios.
#
#   bash bench/science/run.sh
#   SPECTRA=2000 RUNS=1 bash bench/science/run.sh   # a quick look
set -euo pipefail
. "$(dirname "$0")/../common.sh"

# The peers, pinned (pyimzml as in scripts/requirements-test.txt).
bench_setup science "numpy==2.4.6 pyimzml==1.5.5"

echo
echo "== imzML"
"$VENV/bin/python" bench/science/imzml.py --tessera "$BIN/tessera" --work "$OUT/imzml" \
  --spectra "${SPECTRA:-19600}" --points "${POINTS:-2000}" --runs "${RUNS:-3}" \
  --slices "${SLICES:-16}" --workers "${WORKERS:-2}"

# Placeholder: tessera does not slice MeasurementSets (radio astronomy) yet;
# their case goes here when it does.
echo
echo "== MeasurementSet"
echo "MeasurementSet: not measured yet"
