#!/usr/bin/env bash
# Spreads an experiment over a Slurm cluster: an array job of N shards, then a merge job
# that runs once every shard succeeded (afterok). Prints the two sbatch commands it runs.
#
#   scripts/slurm/submit.sh EXPERIMENT.toml N [RESULTS_DIR] [-- extra sbatch options]
#   scripts/slurm/submit.sh --dry-run EXPERIMENT.toml N ...   # only print the commands
#
# RESULTS_DIR defaults to results/<experiment file stem>; shard K goes to RESULTS_DIR/shard-K,
# the merged CSVs to RESULTS_DIR, Slurm's logs to RESULTS_DIR/logs. The binary is $DSSIM,
# else `dssim` on the PATH, else target/release/dssim of this checkout; it must be reachable
# from the compute nodes (a shared file system), as must RESULTS_DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dry=0
if [ "${1:-}" = "--dry-run" ]; then
    dry=1
    shift
fi
if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
file=$1
n=$2
shift 2
out="results/$(basename "${file%.*}")"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    out=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
extra=("$@")
case $n in
'' | *[!0-9]* | 0)
    echo "N must be a whole number above 0, found '$n'" >&2
    exit 2
    ;;
esac
[ -f "$file" ] || {
    echo "no such experiment file: $file" >&2
    exit 2
}

if [ -z "${DSSIM:-}" ]; then
    if command -v dssim >/dev/null 2>&1; then
        DSSIM=$(command -v dssim)
    elif [ -x "$here/../../target/release/dssim" ]; then
        DSSIM=$(cd "$here/../../target/release" && pwd)/dssim
    else
        echo "no dssim binary: set DSSIM=/path/to/dssim or run cargo build --release" >&2
        exit 2
    fi
fi
export DSSIM
"$DSSIM" check "$file" >/dev/null # bad input fails here, not on the cluster
file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
out=$(realpath -m "$out")

array=(sbatch --parsable --array="0-$((n - 1))" --output="$out/logs/%x-%A_%a.out"
    "${extra[@]}" "$here/dssim-array.sbatch" "$file" "$out")
show() { printf '%q ' "$@" | sed 's/ $//'; echo; }
if [ $dry = 1 ]; then
    show "${array[@]}"
    echo "sbatch --dependency=afterok:<array job id> $(show --output="$out/logs/%x-%j.out" \
        "${extra[@]}" "$here/dssim-merge.sbatch" "$out" "$n")"
    exit 0
fi
mkdir -p "$out/logs"
show "${array[@]}"
jobid=$("${array[@]}")
jobid=${jobid%%;*}
merge=(sbatch --parsable --dependency="afterok:$jobid" --output="$out/logs/%x-%j.out"
    "${extra[@]}" "$here/dssim-merge.sbatch" "$out" "$n")
show "${merge[@]}"
mergeid=$("${merge[@]}")
mergeid=${mergeid%%;*}
echo "array job $jobid ($n shards), merge job $mergeid; results in $out"
