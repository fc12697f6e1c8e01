#!/usr/bin/env bash
# A profile-guided (PGO) release build of dssim: the same code and the same outputs, byte for
# byte, compiled with the branch and call frequencies of real runs so that the compiler lays
# out hot paths first, inlines by measured heat and keeps cold code (errors, rare events) out
# of the instruction cache. It runs through cargo-pgo (installed into ~/.cargo/bin if
# missing) and rustup's llvm-tools component (added if missing):
#
#   benches/pgo.sh                 # -> target/pgo/dssim (about 6 minutes on 2 cores)
#   target/pgo/dssim run experiments/production-day.toml
#
# Training: every shipped experiment and model for 3 simulated seconds, then the long M/M/1
# with and without a client timeout and 20 s of the production model at its 5,800/s peak;
# the binary's outputs are those of the plain build, byte for byte (benches/compare.sh checks
# them on every run it times). Figures: README "Performance".
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-pgo >/dev/null 2>&1; then
  cargo install cargo-pgo --locked --quiet
fi
if ! cargo pgo info >/dev/null 2>&1; then
  # `info` also asks for BOLT, which PGO does not need: only llvm-profdata must be there.
  rustup component add llvm-tools-preview >/dev/null 2>&1 || true
fi

TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
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

echo "pgo: building the optimised binary"
cargo pgo optimize build -- --quiet --bin dssim
mkdir -p target/pgo
cp "$BIN" target/pgo/dssim
echo "pgo: target/pgo/dssim"
