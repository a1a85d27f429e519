#!/usr/bin/env bash
# Undo, redo, restore and clean (issue 3's measures), offline, side by side in one run with uv
# (`uv pip sync --offline --link-mode=hardlink`, warm cache), pip (`pip uninstall -r` /
# `pip install --no-index -r`) and the seed's approach (delete the venv, `python -m venv`,
# `pip install --no-index -r`).
#
# The set is bench/freeze-requirements.txt (jupyterlab, requests, black, rich, pyyaml and their
# dependencies: 99 distributions) on top of a new venv's pip and setuptools. Every side goes
# between the same two sets, "base" (pip, setuptools) and "full" (base + the 99):
#   back     full -> base   pyctl undo     | uv pip sync base.txt | pip uninstall -y -r | seed
#   forward  base -> full   pyctl redo     | uv pip sync full.txt | pip install -r      | seed
#   restore  clean venv -> full: pyctl restore full (after pyctl clean) | uv pip sync full.txt
#            (from base, again in the same hyperfine run)
#   clean    pyctl clean (full -> new venv) | python -m venv (with ensurepip)
# Targets (DESIGN.md / issue 3): undo <= 1.0x uv and >= 10x pip; redo and restore <= 1.0x uv
# and >= 50x pip and the seed; clean <= 0.2 s.
#
# Root is routed to the system tier, so as root the measuring part runs as the unprivileged
# account $PYCTL_BENCH_USER (default pyctltest-a), everything under $PYCTL_BENCH_CACHE/undo.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

BENCH_USER=${PYCTL_BENCH_USER:-pyctltest-a}
U=$BENCH_CACHE/undo
RUNS=${PYCTL_BENCH_RUNS:-10}
SLOW_RUNS=${PYCTL_BENCH_SLOW_RUNS:-3}
REQUIREMENTS=$BENCH_DIR/freeze-requirements.txt

prepare() {
    ensure_hyperfine
    ensure_uv
    prepare_pyctl
    local wheels
    wheels=$(ensure_wheels freeze100 "$REQUIREMENTS")
    mkdir -p "$U"
    chmod -R a+rX "$BENCH_CACHE/bin" "$BENCH_CACHE/tools" "$wheels"
    chmod a+x "$BENCH_CACHE" "$BENCH_CACHE/wheels"
    local env=(env -i "PATH=$U/bin:/usr/local/bin:/usr/bin:/bin" "LANG=C.UTF-8"
        "HOME=$U/userhome" "PYCTL_HOME=$U/home" "PIP_DISABLE_PIP_VERSION_CHECK=1"
        "PIP_NO_INDEX=1" "UV_CACHE_DIR=$U/uv-cache" "UV_OFFLINE=1" "UV_NO_PROGRESS=1"
        "PYCTL=$PYCTL" "PYCTL_COMMIT=$PYCTL_COMMIT" "WHEELS=$wheels"
        "UV=$BENCH_CACHE/tools/bin/uv" "PYCTL_BENCH_CACHE=$BENCH_CACHE"
        "PYCTL_BENCH_PYTHON=$BENCH_PYTHON" "PYCTL_BENCH_RUNS=$RUNS"
        "PYCTL_BENCH_SLOW_RUNS=$SLOW_RUNS" "PYCTL_BENCH_RESULTS=$U/results")
    if is_root; then
        id "$BENCH_USER" >/dev/null 2>&1 ||
            die "no account $BENCH_USER: as root pip goes to the system tier, so this runs as an unprivileged account (set PYCTL_BENCH_USER)"
        chown -R "$BENCH_USER:" "$U"
        log "measuring as $BENCH_USER"
        setpriv --reuid="$(id -u "$BENCH_USER")" --regid="$(id -g "$BENCH_USER")" --init-groups \
            "${env[@]}" bash "$0" --measure
    else
        "${env[@]}" bash "$0" --measure
    fi
}

# A median in seconds from a hyperfine export: median FILE INDEX.
median() { json_median "$RESULTS_DIR/$1.json" "$2"; }

measure() {
    mkdir -p "$U/bin" "$U/userhome" "$RESULTS_DIR"
    ln -sfn "$PYCTL" "$U/bin/pip"
    ln -sfn "$PYCTL" "$U/bin/pyctl"
    cd "$U/userhome"
    local venv=$PYCTL_HOME/venv
    if [ ! -x "$venv/bin/python" ]; then
        log "pyctl init --no-modify-path (once)"
        pyctl -q init --no-modify-path
    fi
    # Undo and redo read the whole history. Each run starts from a full history of the default
    # size (100 entries: the clean and the install below prune to it), then keeps all of this
    # run's ~130 entries, so that the install stays undoable; earlier runs' entries do not pile
    # up into a history no default setting would keep.
    printf '[history]\nmax_entries = 100\n' >"$PYCTL_HOME/config.toml"
    # The starting point: a new venv (base), then the 99 through the wrapper (full).
    pyctl -q clean
    pip install -q --no-index --find-links "$WHEELS" -r "$REQUIREMENTS"
    printf '[history]\nmax_entries = 100000\n' >"$PYCTL_HOME/config.toml"
    pyctl -q snapshot full --force
    pyctl freeze >"$U/full.txt"
    grep -E '^(pip|setuptools)==' "$U/full.txt" >"$U/base.txt"
    local n_full n_base
    n_full=$(wc -l <"$U/full.txt")
    n_base=$(wc -l <"$U/base.txt")
    log "pyctl $PYCTL_COMMIT, $($UV --version); base: $n_base distributions, full: $n_full"

    # uv's venv, the same base, and a warm cache (filled once from the wheel folder).
    local uvv=$U/uv-venv
    if [ ! -x "$uvv/bin/python" ]; then
        "$BENCH_PYTHON" -m venv "$uvv"
    fi
    local uvsync="$UV pip sync -q --offline --link-mode=hardlink --python $uvv/bin/python --no-index --find-links $WHEELS"
    $uvsync "$U/full.txt"
    # pip's venv for the pip and seed rows.
    local pipv=$U/pip-venv
    local extra=$U/extra.txt
    grep -vE '^(pip|setuptools)==' "$U/full.txt" >"$extra"
    local pip_in="$pipv/bin/python -m pip install -q --no-index --find-links $WHEELS -r $extra"
    local pip_out="$pipv/bin/python -m pip uninstall -q -y -r $extra"
    local seedv=$U/seed-venv
    local seed_back="rm -rf $seedv && $BENCH_PYTHON -m venv $seedv"
    local seed_fwd="rm -rf $seedv && $BENCH_PYTHON -m venv $seedv && $seedv/bin/python -m pip install -q --no-index --find-links $WHEELS -r $extra"
    if [ ! -x "$pipv/bin/python" ]; then
        "$BENCH_PYTHON" -m venv "$pipv"
    fi

    # undo, restore and clean delete what they moved aside in the background; each prepare
    # waits for that to end so that it does not land in the next measured run.
    local settle="while ls -d $PYCTL_HOME/.trash-* >/dev/null 2>&1; do sleep 0.05; done"
    log "back: full -> base"
    hyperfine -N --warmup 1 --runs "$RUNS" \
        --export-json "$RESULTS_DIR/back.json" --export-markdown "$RESULTS_DIR/back.md" \
        --prepare "sh -c 'pyctl -q redo >/dev/null 2>&1; $settle'" -n "pyctl undo" "pyctl -q undo" \
        --prepare "$uvsync $U/full.txt" -n "uv pip sync base.txt" "$uvsync $U/base.txt"
    log "forward: base -> full"
    pyctl -q redo
    hyperfine -N --warmup 1 --runs "$RUNS" \
        --export-json "$RESULTS_DIR/forward.json" --export-markdown "$RESULTS_DIR/forward.md" \
        --prepare "sh -c 'pyctl -q undo && $settle'" -n "pyctl redo" "pyctl -q redo" \
        --prepare "$uvsync $U/base.txt" -n "uv pip sync full.txt" "$uvsync $U/full.txt"
    log "restore into a clean venv, and clean"
    # uv base -> full again in this run, so that restore's ratio comes from one run with both
    # sides under the same load (clean leaves base: a new venv's pip and setuptools).
    hyperfine -N --warmup 1 --runs "$RUNS" \
        --export-json "$RESULTS_DIR/restore.json" --export-markdown "$RESULTS_DIR/restore.md" \
        --prepare "sh -c 'pyctl -q clean && $settle'" -n "pyctl restore full (after clean)" "pyctl -q restore full" \
        --prepare "$uvsync $U/base.txt" -n "uv pip sync full.txt (restore's run)" "$uvsync $U/full.txt" \
        --prepare "sh -c 'pyctl -q restore full && $settle'" -n "pyctl clean (from full)" "pyctl -q clean" \
        --prepare "rm -rf $U/plain-venv" -n "python -m venv" "$BENCH_PYTHON -m venv $U/plain-venv"
    if [ "$SLOW_RUNS" -gt 0 ]; then
        log "pip and the seed's approach ($SLOW_RUNS runs each)"
        $pip_in
        hyperfine --warmup 0 --runs "$SLOW_RUNS" \
            --export-json "$RESULTS_DIR/slow.json" --export-markdown "$RESULTS_DIR/slow.md" \
            --prepare "$pip_in" -n "pip uninstall -y -r (back)" "$pip_out" \
            --prepare "$pip_out" -n "pip install -r (forward)" "$pip_in" \
            --prepare "true" -n "seed: venv (back)" "$seed_back" \
            --prepare "true" -n "seed: venv + pip install -r (forward)" "$seed_fwd"
    else
        log "pip and the seed's approach skipped (PYCTL_BENCH_SLOW_RUNS=0)"
        rm -f "$RESULTS_DIR/slow.json"
    fi

    # The sets really are what each side claims.
    pyctl -q restore full
    diff <(pyctl freeze) "$U/full.txt" >&2 || die "pyctl restore full did not give full.txt"
    "$BENCH_PYTHON" - "$RESULTS_DIR" "$PYCTL_COMMIT" "$n_full" <<'EOF'
import json, os, sys
results, commit, n = sys.argv[1], sys.argv[2], sys.argv[3]
def med(name, i):
    return json.load(open(f"{results}/{name}.json"))["results"][i]["median"]
undo, uv_back = med("back", 0), med("back", 1)
redo, uv_fwd = med("forward", 0), med("forward", 1)
restore, uv_restore = med("restore", 0), med("restore", 1)
clean, venv = med("restore", 2), med("restore", 3)
slow = os.path.exists(f"{results}/slow.json")
if slow:
    pip_back, pip_fwd = med("slow", 0), med("slow", 1)
    seed_back, seed_fwd = med("slow", 2), med("slow", 3)
def row(what, t, ref, ref_name):
    print(f"  {what:<28} {t*1000:8.0f} ms  {ref_name:<12} {ref*1000:8.0f} ms  ratio {t/ref:6.3f}x")
print(f"pyctl {commit}, full set {n} distributions (medians, offline)")
row("undo (full -> base)", undo, uv_back, "uv sync")
if slow:
    row("undo", undo, pip_back, "pip")
    row("undo", undo, seed_back, "seed")
row("redo (base -> full)", redo, uv_fwd, "uv sync")
if slow:
    row("redo", redo, pip_fwd, "pip")
    row("redo", redo, seed_fwd, "seed")
row("restore into clean venv", restore, uv_restore, "uv sync")
if slow:
    row("restore", restore, pip_fwd, "pip")
    row("restore", restore, seed_fwd, "seed")
row("clean", clean, venv, "python -m venv")
print("CPU per run (hyperfine's means, the process and its children): user + system")
for name in ("back", "forward", "restore"):
    for r in json.load(open(f"{results}/{name}.json"))["results"]:
        print(f"  {r['command']:<40} median {r['median']*1000:7.0f} ms  "
              f"user {r['user']*1000:6.0f} ms  sys {r['system']*1000:6.0f} ms")
EOF
    log "results in $RESULTS_DIR"
}

if [ "${1:-}" = --measure ]; then
    measure
else
    prepare
fi
