#!/usr/bin/env bash
# A profile-guided (PGO) release build of dssim: the same code and the same outputs, byte for
# byte, compiled with the branch and call frequencies of real runs so that the compiler lays
# out hot paths first, inlines by measured heat and keeps cold code (errors, rare events) out
# of the instruction cache. It runs through cargo-pgo (installed into ~/.cargo/bin if
# missing) and rustup's llvm-tools component (added if missing; exit 3 when it cannot be):
#
#   benches/pgo.sh                 # -> target/pgo/dssim (3-5 minutes on 2 cores)
#   target/pgo/dssim run experiments/production-day.toml
#
# Training: every shipped experiment and model for 3 simulated seconds, then the long M/M/1
# with and without a client timeout, 20 s of the production model at its 5,800/s peak and
# 20 minutes of the stress day's shape (300 -> 5,800/s, most keys written by its end); the
# binary's outputs are those of the plain build, byte for byte: the script ends by
# comparing eight runs of both (and benches/compare.sh compares every run it times).
# Figures: README "Performance".
set -euo pipefail
cd "$(dirname "$0")/.."

TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA="$(rustc --print sysroot)/lib/rustlib/$TRIPLE/bin/llvm-profdata"
if [ ! -x "$PROFDATA" ]; then
  rustup component add llvm-tools >/dev/null 2>&1 || rustup component add llvm-tools-preview >/dev/null 2>&1 || true
fi
if [ ! -x "$PROFDATA" ]; then
  echo "pgo: llvm-profdata not found (rustup component add llvm-tools)" >&2
  exit 3
fi
if ! command -v cargo-pgo >/dev/null 2>&1; then
  cargo install cargo-pgo --locked --quiet
fi
export RUST_LOG=${RUST_LOG:-warn} # cargo-pgo's progress lines

BIN=target/$TRIPLE/release/dssim
TRAIN=$(mktemp -d "${TMPDIR:-/tmp}/dssim-pgo.XXXXXX")
trap 'rm -rf "$TRAIN"' EXIT

echo "pgo: building the instrumented binary"
cargo pgo build -- --quiet --bin dssim

echo "pgo: training"
for f in experiments/*.toml models/*.toml; do
  n=$(basename "$(dirname "$f")")_$(basename "$f" .toml)
  "$BIN" run "$f" --set duration=3s --set warmup=0s --jobs 1 -q --out "$TRAIN/$n" >/dev/null
done
"$BIN" run benches/mm1-long.toml --set duration=100s --jobs 1 -q --out "$TRAIN/mm1" >/dev/null
"$BIN" run benches/mm1-long.toml --set duration=100s --set clients.users.timeout=1s \
  --jobs 1 -q --out "$TRAIN/mm1-timeout" >/dev/null
"$BIN" run models/production-10m.toml --set duration=20s --set warmup=0s \
  --set clients.users.rate=5800 --jobs 1 -q --out "$TRAIN/production" >/dev/null
# The stress day's shape in 20 minutes: by its end most keys have been written, so reads
# go through the consistency oracle's later checks as they do over a whole day.
"$BIN" run experiments/production-day.toml --set duration=20m --set warmup=0s \
  --set clients.users.period=20m --set clients.users.rate=300 --set clients.users.peak=5800 \
  --jobs 1 -q --out "$TRAIN/day" >/dev/null

echo "pgo: building the optimised binary"
cargo pgo optimize build -- --quiet --bin dssim
mkdir -p target/pgo
cp "$BIN" target/pgo/dssim

# The same simulation as the plain build, byte for byte: a few runs of both, compared.
echo "pgo: checking its outputs against the plain build's"
cargo build --release --quiet --bin dssim
check() { # check NAME FILE ARGS...
  local n=$1 f=$2
  shift 2
  for b in release pgo; do
    target/$b/dssim run "$f" --jobs 1 -q --out "$TRAIN/check-$b-$n" "$@" >/dev/null
  done
  if ! diff -r -x manifest.json "$TRAIN/check-release-$n" "$TRAIN/check-pgo-$n" >/dev/null; then
    echo "pgo: the profile-guided build's outputs differ from the plain build's ($f)" >&2
    exit 1
  fi
}
check production models/production-10m.toml --set duration=10s --set warmup=0s --set clients.users.rate=5800
check mm1 benches/mm1-long.toml --set duration=50s --set clients.users.timeout=1s
check day experiments/production-day.toml --set duration=1h
for f in experiments/failover.toml experiments/cache-stampede.toml experiments/job-queue.toml \
  experiments/autoscaling-spike.toml experiments/cap.toml; do
  check "$(basename "$f" .toml)" "$f" --set duration=3s --set warmup=0s
done
echo "pgo: target/pgo/dssim (outputs identical to target/release/dssim on 8 runs)"
