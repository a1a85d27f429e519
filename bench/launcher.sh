#!/usr/bin/env bash
# What the pip launcher costs (issue 11): pyctl no longer runs `python -m pip` (which imports a
# `pip.py` from the current folder) but `python -c LAUNCHER` (the current folder taken off
# sys.path, then pip's main as the console script calls it). Side by side in one hyperfine run,
# on a fresh venv of the machine's Python, from an empty folder: `pip --version` and `pip list`
# through `-m pip`, through the launcher (the string pyctl itself prints with
# `pyctl __pip-launcher`), and through the venv's own pip console script.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ensure_hyperfine

pyctl=${PYCTL_BIN:-$REPO_ROOT/target/release/pyctl}
[ -x "$pyctl" ] || die "$pyctl is missing: cargo build --release (or set PYCTL_BIN)"
work=$BENCH_CACHE/launcher
rm -rf "$work"
mkdir -p "$work/empty" "$RESULTS_DIR"
"$BENCH_PYTHON" -m venv "$work/venv"
launcher=$("$pyctl" __pip-launcher)
py=$work/venv/bin/python
cd "$work/empty"
for args in "--version" "list"; do
  hyperfine -N --warmup 3 --runs "${RUNS:-30}" \
    --export-markdown "$RESULTS_DIR/launcher-${args#--}.md" \
    -n "python -m pip $args" "$py -m pip $args" \
    -n "python -c LAUNCHER $args" "$py -c '$launcher' $args" \
    -n "venv/bin/pip $args" "$work/venv/bin/pip $args"
done
