# Sourced by scripts/bench and scripts/bench-<lang>: the repository root, the cargo target
# dir, where results go (BENCH_RESULTS, default bench/results), BENCH_QUICK, and `contention`,
# which runs bench/contention.py for one language's worker command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
target="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TARGET_DIR="$target"
export BENCH_RESULTS="${BENCH_RESULTS:-$root/bench/results}"
export BENCH_QUICK="${BENCH_QUICK:-0}"
mkdir -p "$BENCH_RESULTS"
cli="$target/release/oauth-lock"
quick_arg=""
[ "$BENCH_QUICK" = 1 ] && quick_arg=quick

# contention LANG WORKER_COMMAND… → $BENCH_RESULTS/LANG-contention.json
contention() {
  local lang=$1
  shift
  local processes=4 threads=2 seconds=5
  if [ "$BENCH_QUICK" = 1 ]; then processes=3 seconds=2; fi
  python3 bench/contention.py --lang "$lang" --cli "$cli" --out "$BENCH_RESULTS/$lang-contention.json" \
    --processes "$processes" --threads "$threads" --seconds "$seconds" -- "$@"
}
