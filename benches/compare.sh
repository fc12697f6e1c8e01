#!/usr/bin/env bash
# Every performance figure of the README in one invocation, on one core:
#
#   1. the full `dssim run` of a long M/M/1 (benches/mm1-long.toml, --jobs 1) without a
#      client timeout, with a 1 s and with a 60 s timeout (never reached: rho = 0.8, mean
#      sojourn 5 ms), against
#   2. a bare binary-heap M/M/1 loop of the same size (examples/bare_mm1.rs: std
#      BinaryHeap, Xoshiro256++ -- the generator dssim uses -- and Exp draws), and
#   3. the same three M/M/1 variants in SimPy (benches/simpy_mm1.py; installed from PyPI
#      into .venv-bench, skipped if that fails);
#   4. the production model (models/production-10m.toml at its 5,800/s peak: CDN, load
#      balancer with health checks, 8 app nodes, cache, database with replicas, 2 s client
#      timeouts and retries) in events/s;
#   5. peak RSS of 200k requests/s with a 1 h client timeout (benches/timeout-rss.toml)
#      at two simulated durations: flat when timeouts cost memory only while in flight;
#   6. a whole simulated day of experiments/production-day.toml at the stress load (the
#      table's 5,800/s peak, 300/s trough: --set clients.users.peak=5800, rate=300), with
#      its outputs (time series included), in CPU seconds (DAY=0 skips it: ~5 CPU minutes);
#   7. 1, 4 and 6 again with the profile-guided build of the same code (benches/pgo.sh),
#      whose outputs must equal the plain build's.
#
#   benches/compare.sh            # from the repository root
#   CUSTOMERS=5000000 SIMPY_CUSTOMERS=500000 ROUNDS=2 benches/compare.sh
#
# PGO=1 (the default) also builds the profile-guided binary (benches/pgo.sh, ~6 minutes) and
# measures it in the same rounds, checking that its outputs equal the plain build's; PGO=0
# skips it.
#
# CUSTOMERS defaults to 20 M: /usr/bin/time counts CPU time in 10 ms ticks, so with 5 M the
# bare loop's 0.28 s is known to about 3.5% only, too coarse for a ratio near its target.
#   BASELINE=/tmp/dssim-old benches/compare.sh   # also an older dssim binary, interleaved
#
# ROUNDS > 1 repeats the whole set, interleaved (A B C ... A B C ...), and reports the
# median and the range. Rates are per CPU second of the whole process (user + sys:
# loading, the run, the output files), the steadier figure on a shared machine; wall-clock
# rates are printed too. Compare only figures from one invocation.
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${CUSTOMERS:-20000000}
SIMPY_CUSTOMERS=${SIMPY_CUSTOMERS:-500000}
PROD_SECONDS=${PROD_SECONDS:-120}
RSS_SECONDS=${RSS_SECONDS:-"30 90"}
DAY=${DAY:-1}
PGO=${PGO:-1}
ROUNDS=${ROUNDS:-1}
PIN=()
if command -v taskset >/dev/null 2>&1 && taskset -c 0 true 2>/dev/null; then
  PIN=(taskset -c 0)
  echo "pinned to core 0 with taskset"
else
  echo "taskset not available: running unpinned"
fi
TIME=()
if [ -x /usr/bin/time ]; then
  TIME=(/usr/bin/time -f "%e %U %S %M")
else
  echo "/usr/bin/time not found: no peak RSS figures"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

cargo build --release --quiet --bin dssim --example bare_mm1

# The experiment's duration gives CUSTOMERS arrivals at 800/s.
DURATION_S=$(awk -v n="$CUSTOMERS" 'BEGIN { printf "%d", n / 800 }')
OUT=$(mktemp -d "${TMPDIR:-/tmp}/dssim-bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

# measure NAME CMD...: runs CMD, appends "wall cpu rss_kb" to $OUT/NAME.times and keeps
# its output folder's runs.csv readable through col.
measure() {
  local name=$1
  shift
  if [ ${#TIME[@]} -gt 0 ]; then
    "${TIME[@]}" -o "$OUT/$name.t" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err" ||
      { cat "$OUT/$name.err"; exit 1; }
    awk '{ printf "%s %.3f %s\n", $1, $2 + $3, $4 }' "$OUT/$name.t" >>"$OUT/$name.times"
  else
    local TIMEFORMAT='%R %U %S'
    { time "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"; } 2>"$OUT/$name.t"
    awk '{ printf "%s %.3f 0\n", $1, $2 + $3 }' "$OUT/$name.t" >>"$OUT/$name.times"
  fi
}
col() { # col DIR NAME: column NAME of the first row of DIR/runs.csv
  awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i } NR == 2 { print $c }' "$1/runs.csv"
}
# stat NAME N FIELD: "median min max" of N / FIELD (1 wall, 2 cpu) over NAME's rounds
stat() {
  awk -v n="$2" -v f="$3" '{ print n / $f }' "$OUT/$1.times" | sort -g |
    awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f %.0f\n", m, v[1], v[NR] }'
}
fmt() { # fmt "median min max": 9.1 M (8.9–9.3 M) with ROUNDS > 1
  awk -v r="$ROUNDS" '{ u = ($1 >= 1e6) ? 1e6 : 1e3; s = (u == 1e6) ? " M" : " k"
    if (r > 1) printf "%.2f%s (%.2f–%.2f)", $1 / u, s, $2 / u, $3 / u; else printf "%.2f%s", $1 / u, s }'
}

SIMPY=""
if [ ! -x .venv-bench/bin/python ]; then
  python3 -m venv .venv-bench >/dev/null 2>&1 || echo "skipping SimPy: cannot create a virtualenv (python3 -m venv)"
fi
if [ -x .venv-bench/bin/python ]; then
  if .venv-bench/bin/python -c 'import simpy' 2>/dev/null || .venv-bench/bin/pip install --quiet simpy >/dev/null 2>&1; then
    SIMPY=1
  else
    echo "skipping SimPy: pip install simpy failed (offline?)"
  fi
fi

DSSIM=./target/release/dssim
BASELINE=${BASELINE:-}
# Each variant: "prefix binary". The plain release build has no prefix.
VARIANTS=("- $DSSIM")
if [ "$PGO" != 0 ]; then
  benches/pgo.sh
  VARIANTS+=("pgo- ./target/pgo/dssim")
fi
[ -n "$BASELINE" ] && VARIANTS+=("base- $BASELINE")
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  for v in "${VARIANTS[@]}"; do
    pre=${v%% *} bin=${v#* }
    pre=${pre#-}
    for to in none 1s 60s; do
      set_to=()
      [ "$to" != none ] && set_to=(--set "clients.users.timeout=$to")
      rm -rf "$OUT/${pre}mm1-$to"
      measure "${pre}mm1-$to" "${PIN[@]}" "$bin" run benches/mm1-long.toml --jobs 1 \
        --out "$OUT/${pre}mm1-$to" --set "duration=${DURATION_S}s" "${set_to[@]}"
    done
  done
  measure bare "${PIN[@]}" ./target/release/examples/bare_mm1 "$CUSTOMERS" 800 0.001
  if [ -n "$SIMPY" ]; then
    for to in none 1s 60s; do
      t=$([ "$to" = none ] && echo 0 || echo "${to%s}")
      measure "simpy-$to" "${PIN[@]}" .venv-bench/bin/python benches/simpy_mm1.py "$SIMPY_CUSTOMERS" "$t"
    done
  fi
  for v in "${VARIANTS[@]}"; do
    pre=${v%% *} bin=${v#* }
    pre=${pre#-}
    rm -rf "$OUT/${pre}prod"
    measure "${pre}prod" "${PIN[@]}" "$bin" run models/production-10m.toml --jobs 1 --out "$OUT/${pre}prod" \
      --set "duration=${PROD_SECONDS}s" --set warmup=0s --set clients.users.rate=5800
  done
  for s in $RSS_SECONDS; do
    rm -rf "$OUT/rss-$s"
    # No --force: the memory estimate counts requests in flight, not rate x timeout.
    measure "rss-$s" "${PIN[@]}" "$DSSIM" run benches/timeout-rss.toml --jobs 1 \
      --out "$OUT/rss-$s" --set "duration=${s}s"
  done
  if [ "$DAY" != 0 ]; then
    for v in "${VARIANTS[@]}"; do
      pre=${v%% *} bin=${v#* }
      pre=${pre#-}
      [ "$pre" = base- ] && continue
      rm -rf "$OUT/${pre}day"
      measure "${pre}day" "${PIN[@]}" "$bin" run experiments/production-day.toml --jobs 1 --out "$OUT/${pre}day" \
        --set clients.users.rate=300 --set clients.users.peak=5800
    done
  fi
done

N=$(col "$OUT/mm1-none" requests)
echo
echo "dssim M/M/1: $N customers; mean sojourn $(col "$OUT/mm1-none" latency_mean_ms) ms without a timeout," \
  "$(col "$OUT/mm1-1s" latency_mean_ms) ms with 1 s, $(col "$OUT/mm1-60s" latency_mean_ms) ms with 60 s (theory 5 ms);" \
  "timeouts $(col "$OUT/mm1-1s" timeouts) and $(col "$OUT/mm1-60s" timeouts)"
echo "bare loop: $(tail -1 "$OUT/bare.txt")"
if [ -n "$SIMPY" ]; then
  for to in none 1s 60s; do echo "$(tail -1 "$OUT/simpy-$to.txt")"; done
fi
PROD_EVENTS=$(col "$OUT/prod" events)
PROD_REQ=$(col "$OUT/prod" requests)
echo "production model: ${PROD_SECONDS} s at 5,800/s: $PROD_REQ requests, $PROD_EVENTS events," \
  "p99 $(col "$OUT/prod" p99_ms) ms, timeouts $(col "$OUT/prod" timeouts)"

echo
echo "== summary (one core; per CPU second, whole process; wall-clock rates in brackets)"
echo
echo "| | customers/s | vs bare loop | vs SimPy (same timeout) |"
echo "|---|---|---|---|"
B=$(stat bare "$CUSTOMERS" 2)
for to in none 1s 60s; do
  D=$(stat "mm1-$to" "$N" 2)
  W=$(stat "mm1-$to" "$N" 1)
  label=$([ "$to" = none ] && echo "no client timeout" || echo "client timeout $to")
  vs_simpy=""
  if [ -n "$SIMPY" ]; then
    S=$(stat "simpy-$to" "$SIMPY_CUSTOMERS" 2)
    vs_simpy=$(awk -v d="${D%% *}" -v s="${S%% *}" 'BEGIN { printf "%.0f×", d / s }')
  fi
  printf "| \`dssim run\`, M/M/1, %s | %s [%s] | %s | %s |\n" "$label" "$(echo "$D" | fmt)" \
    "$(echo "$W" | fmt)" "$(awk -v d="${D%% *}" -v b="${B%% *}" 'BEGIN { printf "%.2f", d / b }')" "$vs_simpy"
done
printf "| bare binary-heap loop (Xoshiro256++) | %s [%s] | 1 | |\n" "$(echo "$B" | fmt)" "$(stat bare "$CUSTOMERS" 1 | fmt)"
if [ -n "$SIMPY" ]; then
  for to in none 1s 60s; do
    label=$([ "$to" = none ] && echo "no client timeout" || echo "client timeout $to")
    printf "| SimPy 4, M/M/1, %s (%s customers) | %s [%s] | | |\n" "$label" "$SIMPY_CUSTOMERS" \
      "$(stat "simpy-$to" "$SIMPY_CUSTOMERS" 2 | fmt)" "$(stat "simpy-$to" "$SIMPY_CUSTOMERS" 1 | fmt)"
  done
fi
echo
D0=$(stat mm1-none "$N" 2)
for to in 1s 60s; do
  D=$(stat "mm1-$to" "$N" 2)
  awk -v d="${D%% *}" -v z="${D0%% *}" -v t="$to" 'BEGIN { printf "  with a %s timeout / without:  %.3f  (target >= 0.9)\n", t, d / z }'
done
awk -v d="${D0%% *}" -v b="${B%% *}" 'BEGIN { printf "  without a timeout / bare loop: %.3f  (target >= 0.5)\n", d / b }'
echo
printf "  production model, %s s at the 5,800/s peak: %s events/s [%s], %s requests/s (target >= 12 M events/s)\n" \
  "$PROD_SECONDS" "$(stat prod "$PROD_EVENTS" 2 | fmt)" "$(stat prod "$PROD_EVENTS" 1 | fmt)" "$(stat prod "$PROD_REQ" 2 | fmt)"
if [ -n "$BASELINE" ]; then
  echo
  echo "  baseline $BASELINE, same rounds (per CPU second):"
  for to in none 1s 60s; do
    D=$(stat "mm1-$to" "$N" 2)
    O=$(stat "base-mm1-$to" "$(col "$OUT/base-mm1-$to" requests)" 2)
    printf "    M/M/1, timeout %s: baseline %s, now %s customers/s (%s×); baseline / bare loop %s\n" "$to" \
      "$(echo "$O" | fmt)" "$(echo "$D" | fmt)" \
      "$(awk -v d="${D%% *}" -v o="${O%% *}" 'BEGIN { printf "%.2f", d / o }')" \
      "$(awk -v o="${O%% *}" -v b="${B%% *}" 'BEGIN { printf "%.3f", o / b }')"
  done
  P=$(stat prod "$PROD_EVENTS" 2)
  O=$(stat base-prod "$(col "$OUT/base-prod" events)" 2)
  printf "    production model: baseline %s, now %s events/s (%s×)\n" "$(echo "$O" | fmt)" "$(echo "$P" | fmt)" \
    "$(awk -v d="${P%% *}" -v o="${O%% *}" 'BEGIN { printf "%.2f", d / o }')"
fi
# day_line PREFIX LABEL: the whole day's CPU seconds (median of the rounds)
day_line() {
  local ev
  ev=$(col "$OUT/${1}day" events)
  printf "  a whole day%s (production-day at the 5,800/s peak, %s requests, %s events): %s CPU s [%s s wall], %s events/s (target < 240 CPU s)\n" \
    "$2" "$(col "$OUT/${1}day" requests)" "$ev" \
    "$(awk '{ print $2 }' "$OUT/${1}day.times" | sort -g | awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] }')" \
    "$(awk '{ print $1 }' "$OUT/${1}day.times" | sort -g | awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] }')" \
    "$(stat "${1}day" "$ev" 2 | fmt)"
}
[ "$DAY" != 0 ] && day_line "" ""
if [ "$PGO" != 0 ]; then
  echo
  echo "  profile-guided build (benches/pgo.sh -> target/pgo/dssim), same rounds (per CPU second):"
  for to in none 1s 60s; do
    G=$(stat "pgo-mm1-$to" "$N" 2)
    D=$(stat "mm1-$to" "$N" 2)
    printf "    M/M/1, timeout %s: %s customers/s (%s× the plain build), %s× the bare loop\n" "$to" "$(echo "$G" | fmt)" \
      "$(awk -v g="${G%% *}" -v d="${D%% *}" 'BEGIN { printf "%.2f", g / d }')" \
      "$(awk -v g="${G%% *}" -v b="${B%% *}" 'BEGIN { printf "%.3f", g / b }')"
  done
  G0=$(stat pgo-mm1-none "$N" 2)
  for to in 1s 60s; do
    G=$(stat "pgo-mm1-$to" "$N" 2)
    awk -v g="${G%% *}" -v z="${G0%% *}" -v t="$to" 'BEGIN { printf "    with a %s timeout / without:  %.3f  (target >= 0.9)\n", t, g / z }'
  done
  G=$(stat pgo-prod "$PROD_EVENTS" 2)
  P=$(stat prod "$PROD_EVENTS" 2)
  printf "    production model: %s events/s [%s] (%s× the plain build; target >= 12 M events/s)\n" "$(echo "$G" | fmt)" \
    "$(stat pgo-prod "$PROD_EVENTS" 1 | fmt)" "$(awk -v g="${G%% *}" -v p="${P%% *}" 'BEGIN { printf "%.2f", g / p }')"
  [ "$DAY" != 0 ] && day_line pgo- " (profile-guided build)"
  # The same simulation: every output file of the profile-guided runs equals the plain one's.
  same=(mm1-none mm1-1s mm1-60s prod)
  [ "$DAY" != 0 ] && same+=(day)
  for d in "${same[@]}"; do
    if ! diff -r -x manifest.json -x dssim.lock "$OUT/$d" "$OUT/pgo-$d" >/dev/null; then
      echo "    OUTPUTS DIFFER between the plain and the profile-guided build: $d"
      exit 1
    fi
  done
  echo "    outputs of the profile-guided runs identical to the plain build's (${same[*]})"
fi
if [ ${#TIME[@]} -gt 0 ]; then
  for s in $RSS_SECONDS; do
    rss=$(sort -n -k3 "$OUT/rss-$s.times" | tail -1 | awk '{ printf "%.1f", $3 / 1024 }')
    printf "  200k requests/s, 1 h timeout, %s s simulated (%s requests): peak RSS %s MiB\n" \
      "$s" "$(col "$OUT/rss-$s" requests)" "$rss"
  done
fi
