#!/usr/bin/env bash
# `pyctl freeze --path V` vs `V/bin/python -m pip freeze --all` on a venv of ~100 real PyPI
# distributions (bench/freeze-requirements.txt: jupyterlab, requests, black, rich, pyyaml and
# their dependencies, pinned). Checks the two outputs are byte-identical, then times both side by
# side with hyperfine. Target (DESIGN.md "Measures"): pyctl >= 100x faster.
#
# The wheels are downloaded once and the venv built once, offline, under $PYCTL_BENCH_CACHE
# (default /var/tmp/pyctl-bench); reruns only measure.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

REQUIREMENTS=$BENCH_DIR/freeze-requirements.txt
WHEELS=$BENCH_CACHE/wheels/freeze100
VENV=$BENCH_CACHE/venvs/freeze100
RUNS=${PYCTL_BENCH_RUNS:-30}

ensure_hyperfine
prepare_pyctl

# The cache is keyed by the requirements file and the interpreter, so changing either rebuilds.
key=$(cat "$REQUIREMENTS" <("$BENCH_PYTHON" -VV) | sha256sum | cut -c1-16)

ensure_wheels freeze100 "$REQUIREMENTS" >/dev/null

if [ "$(cat "$VENV/.complete" 2>/dev/null)" != "$key" ]; then
    log "building $VENV offline from the wheels (once)"
    rm -rf "$VENV"
    "$BENCH_PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-index \
        --find-links "$WHEELS" -r "$REQUIREMENTS"
    echo "$key" >"$VENV/.complete"
fi

# pip freeze runs from an empty folder: pip puts the current folder on sys.path, and anything
# importable there would change its answer.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
empty=$work/cwd
pip_out=$work/pip-freeze.txt
pyctl_out=$work/pyctl-freeze.txt
mkdir "$empty"
cd "$empty"

"$VENV/bin/python" -m pip freeze --all >"$pip_out"
"$PYCTL" freeze --path "$VENV" >"$pyctl_out"
if ! cmp -s "$pip_out" "$pyctl_out"; then
    echo "FAIL: pyctl freeze differs from pip freeze --all for $VENV:" >&2
    diff -u --label 'pip freeze --all' --label 'pyctl freeze' "$pip_out" "$pyctl_out" >&2 || true
    exit 1
fi
count=$(wc -l <"$pip_out")
log "identical output: $count lines ($("$VENV/bin/python" -m pip --version | cut -d' ' -f1-2))"

mkdir -p "$RESULTS_DIR"
json=$RESULTS_DIR/freeze.json
hyperfine -N --warmup 3 --min-runs "$RUNS" \
    --export-json "$json" --export-markdown "$RESULTS_DIR/freeze.md" \
    -n "pyctl freeze --path V" "$PYCTL freeze --path $VENV" \
    -n "V/bin/python -m pip freeze --all" "$VENV/bin/python -m pip freeze --all"

pyctl_s=$(json_median "$json" 0)
pip_s=$(json_median "$json" 1)
"$BENCH_PYTHON" - "$pyctl_s" "$pip_s" "$count" "$PYCTL_COMMIT" <<'EOF'
import sys
pyctl, pip, count, commit = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
ratio = pip / pyctl
verdict = "met" if ratio >= 100 else "MISSED"
print(f"freeze, {count} distributions, pyctl {commit}: pyctl median {pyctl * 1000:.2f} ms, "
      f"pip median {pip * 1000:.1f} ms, pyctl {ratio:.0f}x faster (target >= 100x: {verdict})")
EOF
