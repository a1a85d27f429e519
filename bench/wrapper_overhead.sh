#!/usr/bin/env bash
# Wrapper overhead, recording included: `pip install --no-index --find-links W six && pip
# uninstall -y six` through the wrapper (a symlink named `pip` to pyctl) vs the tier venv's own
# `python -m pip`, side by side. Target (DESIGN.md "Measures"): <= 10 ms added (median).
#
# Timed twice: hyperfine (all of one, then all of the other) and paired runs (bench/paired.py:
# A and B back to back, alternating order, median of the per-pair differences), which a shared
# machine's changing load cannot push onto one side only. Then `pyctl freeze`, `pyctl history`
# and `pyctl status` on the same tier, whose history is filled to max_entries (100) first.
#
# Root is routed to the system tier, so as root the measuring part runs as the unprivileged
# account $PYCTL_BENCH_USER (default pyctltest-a). The tier lives in
# $PYCTL_BENCH_CACHE/wrapper (default /var/tmp/pyctl-bench/wrapper) and is made once.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

BENCH_USER=${PYCTL_BENCH_USER:-pyctltest-a}
WRAP=$BENCH_CACHE/wrapper
SIX_WHEELS=$BENCH_CACHE/wheels/six
RUNS=${PYCTL_BENCH_RUNS:-20}
PAIRS=${PYCTL_BENCH_PAIRS:-30}
FILL=${PYCTL_BENCH_FILL:-100}

prepare() {
    ensure_hyperfine
    prepare_pyctl
    if [ ! -f "$SIX_WHEELS/.complete" ]; then
        log "downloading six into $SIX_WHEELS (once)"
        rm -rf "$SIX_WHEELS"
        mkdir -p "$SIX_WHEELS"
        "$(download_python)" -m pip download -q --disable-pip-version-check --no-deps \
            --only-binary=:all: -d "$SIX_WHEELS" six
        touch "$SIX_WHEELS/.complete"
    fi
    chmod -R a+rX "$BENCH_CACHE/bin" "$SIX_WHEELS"
    mkdir -p "$WRAP"

    # A clean, identical environment for both sides; pip's version check off (no network).
    local env=(env -i "PATH=/usr/local/bin:/usr/bin:/bin" "LANG=C.UTF-8" "HOME=$WRAP/userhome"
        "PYCTL_HOME=$WRAP/home" "PIP_DISABLE_PIP_VERSION_CHECK=1" "PYCTL=$PYCTL"
        "PYCTL_COMMIT=$PYCTL_COMMIT" "PYCTL_BENCH_CACHE=$BENCH_CACHE"
        "PYCTL_BENCH_PYTHON=$BENCH_PYTHON" "PYCTL_BENCH_RUNS=$RUNS" "PYCTL_BENCH_PAIRS=$PAIRS"
        "PYCTL_BENCH_FILL=$FILL" "PYCTL_BENCH_RESULTS=$WRAP/results")
    if is_root; then
        id "$BENCH_USER" >/dev/null 2>&1 ||
            die "no account $BENCH_USER: as root pip goes to the system tier, so this runs as an unprivileged account (set PYCTL_BENCH_USER)"
        chown -R "$BENCH_USER:" "$WRAP"
        log "measuring as $BENCH_USER"
        setpriv --reuid="$(id -u "$BENCH_USER")" --regid="$(id -g "$BENCH_USER")" --init-groups \
            "${env[@]}" bash "$0" --measure
    else
        "${env[@]}" bash "$0" --measure
    fi
}

history_entries() {
    find "$PYCTL_HOME/history" -maxdepth 1 -name '*_after.json' | wc -l
}

measure() {
    local pip=$WRAP/bin/pip
    local venv_python=$PYCTL_HOME/venv/bin/python
    mkdir -p "$WRAP/bin" "$WRAP/userhome" "$RESULTS_DIR"
    ln -sfn "$PYCTL" "$pip"
    if [ ! -x "$venv_python" ]; then
        log "pyctl init --no-modify-path (PYCTL_HOME=$PYCTL_HOME, once)"
        "$PYCTL" -q init --no-modify-path
    fi
    local find="--no-index --find-links $SIX_WHEELS"
    local wrapped="$pip install $find six && $pip uninstall -y six"
    local direct="$venv_python -m pip install $find six && $venv_python -m pip uninstall -y six"

    local n
    n=$(history_entries)
    if [ "$n" -lt "$FILL" ]; then
        log "filling the history to $FILL entries through the wrapper ($n now, once)"
        while [ "$n" -lt "$FILL" ]; do
            sh -c "$wrapped" >/dev/null 2>&1
            n=$(history_entries)
        done
    fi
    log "tier $PYCTL_HOME: $n history entries, pyctl $PYCTL_COMMIT, $("$venv_python" -m pip --version | cut -d' ' -f1-2)"

    cd "$WRAP/userhome"
    hyperfine --warmup 2 --runs "$RUNS" \
        --export-json "$RESULTS_DIR/wrapper.json" --export-markdown "$RESULTS_DIR/wrapper.md" \
        -n "wrapper: pip install six && pip uninstall -y six" "$wrapped" \
        -n "direct: venv/bin/python -m pip install six && ... uninstall -y six" "$direct"
    local wrapped_s direct_s
    wrapped_s=$(json_median "$RESULTS_DIR/wrapper.json" 0)
    direct_s=$(json_median "$RESULTS_DIR/wrapper.json" 1)
    "$BENCH_PYTHON" -c 'import sys; w, d = float(sys.argv[1]), float(sys.argv[2]); print(f"hyperfine medians: wrapper {w*1000:.1f} ms, direct {d*1000:.1f} ms, difference {(w-d)*1000:.1f} ms (ratio {w/d:.3f})")' \
        "$wrapped_s" "$direct_s"

    "$BENCH_PYTHON" "$BENCH_DIR/paired.py" "$PAIRS" "$RESULTS_DIR/wrapper-paired.json" \
        direct "$direct" wrapper "$wrapped"

    log "read-only commands on the tier ($(history_entries) history entries)"
    hyperfine -N --warmup 3 --min-runs 30 \
        --export-json "$RESULTS_DIR/tier-readonly.json" \
        --export-markdown "$RESULTS_DIR/tier-readonly.md" \
        -n "pyctl freeze" "$PYCTL freeze" \
        -n "pyctl history" "$PYCTL history" \
        -n "pyctl status" "$PYCTL status"
    log "results in $RESULTS_DIR"
}

if [ "${1:-}" = --measure ]; then
    measure
else
    prepare
fi
