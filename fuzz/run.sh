#!/usr/bin/env bash
# Runs every fuzz target for a bounded time; exits non-zero if any finds a crash.
#
#   fuzz/run.sh                     # 20 s per target (FUZZ_SECONDS to change)
#   FUZZ_SECONDS=180 fuzz/run.sh load_toml
#
# Needs cargo-fuzz (installed when missing) and a nightly compiler, or stable with
# RUSTC_BOOTSTRAP=1 (set here). The corpus is seeded from models/ and experiments/ (as
# TOML, and as JSON for load_json); crashes land in fuzz/artifacts/<target>/, and each one
# found should become a test in tests/integration/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(load_toml load_json mutate_models)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Seed corpora from the repository's own files.
mkdir -p fuzz/corpus/load_toml fuzz/corpus/load_json fuzz/corpus/mutate_models
for d in models experiments; do
    for f in "$d"/*.toml; do
        cp "$f" "fuzz/corpus/load_toml/$d-$(basename "$f")"
    done
done
if command -v python3 >/dev/null 2>&1; then
    python3 - <<'PY' || true
import glob, json, os
try:
    import tomllib
except ImportError:
    raise SystemExit(0)
for f in glob.glob("models/*.toml") + glob.glob("experiments/*.toml"):
    with open(f, "rb") as fh:
        data = tomllib.load(fh)
    name = os.path.dirname(f) + "-" + os.path.basename(f)[:-5] + ".json"
    out = os.path.join("fuzz/corpus/load_json", name)
    with open(out, "w") as fh:
        json.dump(data, fh, indent=1, default=str)
PY
fi

# The crates forbid unsafe code, so CI may skip AddressSanitizer (FUZZ_SANITIZER=none) to
# build faster; libFuzzer still finds panics, hangs and runaway memory.
sanitizer="${FUZZ_SANITIZER:-address}"
cargo fuzz build -O -s "$sanitizer"
status=0
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${seconds}s"
    # -rss_limit_mb bounds one input's memory; -timeout flags a hang (one input > 20 s).
    if ! cargo fuzz run -O -s "$sanitizer" "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1; then
        echo "fuzz target $t found a crash: see fuzz/artifacts/$t/" >&2
        status=1
    fi
done
exit $status
