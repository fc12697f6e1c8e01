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

# measure NAME CMD...: runs CMD, keeps its stdout in $OUT/NAME.txt and its process wall and
# CPU (user + sys) seconds in $OUT/NAME.time ("wall cpu"). On a shared machine the CPU
# figure is the steadier one; both are reported.
measure() {
  local name=$1
  shift
  local TIMEFORMAT='%R %U %S'
  { time "$@" >"$OUT/$name.txt"; } 2>"$OUT/$name.err"
  tail -1 "$OUT/$name.err" | awk '{ printf "%s %.3f\n", $1, $2 + $3 }' >"$OUT/$name.time"
  cat "$OUT/$name.txt"
}
rate() { # rate NAME CUSTOMERS FIELD(1 = wall, 2 = cpu)
  awk -v n="$2" -v f="$3" '{ printf "%.0f", n / $f }' "$OUT/$1.time"
}

echo "== dssim run benches/mm1-long.toml (duration ${DURATION_S}s, --jobs 1)"
measure dssim "${PIN[@]}" ./target/release/dssim run benches/mm1-long.toml --jobs 1 \
  --out "$OUT/dssim" --set "duration=${DURATION_S}s"
# Customers = requests in runs.csv; the time is the whole process: loading, the run, files.
col() { # col NAME: the value of column NAME in the first row of runs.csv
  awk -F, -v name="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i } NR == 2 { print $c }' "$OUT/dssim/runs.csv"
}
DSSIM_N=$(col requests)
DSSIM_MEAN=$(col latency_mean_ms)
echo "dssim: $DSSIM_N customers, mean sojourn ${DSSIM_MEAN} ms (theory 5 ms)"

echo "== bare binary-heap loop (examples/bare_mm1.rs), $CUSTOMERS customers"
measure bare "${PIN[@]}" ./target/release/examples/bare_mm1 "$CUSTOMERS" 800 0.001

echo "== SimPy, $SIMPY_CUSTOMERS customers"
SIMPY=""
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench >/dev/null 2>&1 || echo "skipping SimPy: cannot create a virtualenv (python3 -m venv)"
fi
if [ -x .venv-bench/bin/python ]; then
  if .venv-bench/bin/python -c 'import simpy' 2>/dev/null || .venv-bench/bin/pip install --quiet simpy >/dev/null 2>&1; then
    measure simpy "${PIN[@]}" .venv-bench/bin/python benches/simpy_mm1.py "$SIMPY_CUSTOMERS"
    SIMPY=1
  else
    echo "skipping SimPy: pip install simpy failed (offline?)"
  fi
fi

echo
echo "== summary: customers/s on one core (whole process; wall clock, and per CPU second)"
printf "  %-24s %12s %12s\n" "" "wall" "cpu"
printf "  %-24s %12s %12s\n" "dssim run (full CLI)" "$(rate dssim "$DSSIM_N" 1)" "$(rate dssim "$DSSIM_N" 2)"
printf "  %-24s %12s %12s\n" "bare binary-heap loop" "$(rate bare "$CUSTOMERS" 1)" "$(rate bare "$CUSTOMERS" 2)"
if [ -n "$SIMPY" ]; then
  printf "  %-24s %12s %12s\n" "SimPy" "$(rate simpy "$SIMPY_CUSTOMERS" 1)" "$(rate simpy "$SIMPY_CUSTOMERS" 2)"
else
  printf "  %-24s %12s\n" "SimPy" "skipped"
fi
for f in 1 2; do
  d=$(rate dssim "$DSSIM_N" $f)
  b=$(rate bare "$CUSTOMERS" $f)
  label=$([ $f = 1 ] && echo wall || echo cpu)
  awk -v d="$d" -v b="$b" -v l="$label" 'BEGIN { printf "  dssim / bare (%s)%*s %8.3f  (target >= 0.5)\n", l, 10 - length(l), "", d / b }'
  if [ -n "$SIMPY" ]; then
    s=$(rate simpy "$SIMPY_CUSTOMERS" $f)
    awk -v d="$d" -v s="$s" -v l="$label" 'BEGIN { printf "  dssim / SimPy (%s)%*s %8.1f\n", l, 9 - length(l), "", d / s }'
  fi
done
