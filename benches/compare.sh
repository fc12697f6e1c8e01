#!/usr/bin/env bash
# Compares, on one core, the full `dssim run` of a long M/M/1 (5 M customers, --jobs 1)
# with a bare binary-heap M/M/1 loop of the same size (examples/bare_mm1.rs) and, for
# reference, SimPy (installed from PyPI into .venv-bench; skipped if that fails).
#
#   benches/compare.sh            # from the repository root
#   CUSTOMERS=5000000 SIMPY_CUSTOMERS=500000 benches/compare.sh
#
# Prints customers/s for each and the dssim / bare ratio (target: >= 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${CUSTOMERS:-5000000}
SIMPY_CUSTOMERS=${SIMPY_CUSTOMERS:-500000}
PIN=()
if command -v taskset >/dev/null 2>&1 && taskset -c 0 true 2>/dev/null; then
  PIN=(taskset -c 0)
  echo "pinned to core 0 with taskset"
else
  echo "taskset not available: running unpinned"
fi

cargo build --release --quiet --bin dssim --example bare_mm1

# The experiment's duration gives CUSTOMERS arrivals at 800/s.
DURATION_S=$(awk -v n="$CUSTOMERS" 'BEGIN { printf "%d", n / 800 }')
OUT=$(mktemp -d "${TMPDIR:-/tmp}/dssim-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

echo "== dssim run benches/mm1-long.toml (duration ${DURATION_S}s, --jobs 1)"
start=$(date +%s.%N)
"${PIN[@]}" ./target/release/dssim run benches/mm1-long.toml --jobs 1 --out "$OUT/dssim" \
  --set "duration=${DURATION_S}s"
end=$(date +%s.%N)
# Customers = requests in runs.csv (column 6); wall time includes loading and writing.
DSSIM_N=$(awk -F, 'NR == 2 { print $6 }' "$OUT/dssim/runs.csv")
DSSIM_MEAN=$(awk -F, 'NR == 2 { print $13 }' "$OUT/dssim/runs.csv")
DSSIM_RATE=$(awk -v n="$DSSIM_N" -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", n / (e - s) }')
echo "dssim: $DSSIM_N customers, mean sojourn ${DSSIM_MEAN} ms (theory 5 ms): $DSSIM_RATE customers/s (whole process)"

echo "== bare binary-heap loop (examples/bare_mm1.rs)"
BARE_LINE=$("${PIN[@]}" ./target/release/examples/bare_mm1 "$CUSTOMERS" 800 0.001)
echo "$BARE_LINE"
BARE_RATE=$(echo "$BARE_LINE" | sed -E 's/.*: ([0-9]+) customers\/s.*/\1/')

echo "== SimPy ($SIMPY_CUSTOMERS customers)"
SIMPY_RATE=""
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench >/dev/null 2>&1 || echo "skipping SimPy: cannot create a virtualenv (python3 -m venv)"
fi
if [ -x .venv-bench/bin/python ]; then
  if .venv-bench/bin/python -c 'import simpy' 2>/dev/null || .venv-bench/bin/pip install --quiet simpy >/dev/null 2>&1; then
    SIMPY_LINE=$("${PIN[@]}" .venv-bench/bin/python benches/simpy_mm1.py "$SIMPY_CUSTOMERS")
    echo "$SIMPY_LINE"
    SIMPY_RATE=$(echo "$SIMPY_LINE" | sed -E 's/.*: ([0-9]+) customers\/s.*/\1/')
  else
    echo "skipping SimPy: pip install simpy failed (offline?)"
  fi
fi

echo
echo "== summary (customers/s, one core)"
printf "  dssim run (full CLI)   %12s\n" "$DSSIM_RATE"
printf "  bare binary-heap loop  %12s\n" "$BARE_RATE"
printf "  SimPy                  %12s\n" "${SIMPY_RATE:-skipped}"
awk -v d="$DSSIM_RATE" -v b="$BARE_RATE" 'BEGIN { printf "  dssim / bare           %12.3f  (target >= 0.5)\n", d / b }'
if [ -n "$SIMPY_RATE" ]; then
  awk -v d="$DSSIM_RATE" -v s="$SIMPY_RATE" 'BEGIN { printf "  dssim / SimPy          %12.1f\n", d / s }'
fi
