# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this
# Shared helpers for the benchmark scripts (sourced, not run).
#
# Everything slow to make (wheels, venvs, tools, the user tier) is cached under $BENCH_CACHE so
# a rerun only measures. No package index is named here: pip uses whatever index the machine's
# pip configuration gives it.

BENCH_CACHE=${PYCTL_BENCH_CACHE:-/var/tmp/pyctl-bench}
BENCH_PYTHON=${PYCTL_BENCH_PYTHON:-/usr/bin/python3}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$REPO_ROOT/bench
# Where each run's hyperfine exports land (JSON and Markdown).
RESULTS_DIR=${PYCTL_BENCH_RESULTS:-$BENCH_CACHE/results}

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# hyperfine from the distribution's packages.
ensure_hyperfine() {
    command -v hyperfine >/dev/null 2>&1 && return 0
    is_root || die "hyperfine is missing: install it with 'apt-get install hyperfine' (as root)"
    log "installing hyperfine (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
}

# uv, for side-by-side comparisons, in its own tool venv: $BENCH_CACHE/tools/bin/uv.
ensure_uv() {
    local tools=$BENCH_CACHE/tools
    if [ -x "$tools/bin/uv" ]; then
        return 0
    fi
    log "installing uv into $tools"
    mkdir -p "$BENCH_CACHE"
    "$BENCH_PYTHON" -m venv "$tools"
    "$tools/bin/python" -m pip install -q --disable-pip-version-check uv
}

# Builds the release binary and copies it to $BENCH_CACHE/bin/pyctl (world-readable), so a
# rebuild by someone else during a run cannot change the binary under measurement and an
# unprivileged account can run it. Sets PYCTL.
prepare_pyctl() {
    if [ -z "${PYCTL_BENCH_NO_BUILD:-}" ]; then
        log "cargo build --release"
        (cd "$REPO_ROOT" && cargo build --release --quiet)
    fi
    mkdir -p "$BENCH_CACHE/bin"
    install -m 0755 "$REPO_ROOT/target/release/pyctl" "$BENCH_CACHE/bin/pyctl.new"
    mv -f "$BENCH_CACHE/bin/pyctl.new" "$BENCH_CACHE/bin/pyctl"
    PYCTL=$BENCH_CACHE/bin/pyctl
    PYCTL_COMMIT=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$REPO_ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        PYCTL_COMMIT="$PYCTL_COMMIT+dirty"
    fi
    export PYCTL PYCTL_COMMIT
}

# A venv whose pip only downloads (so the distro's pip is never asked to do more than `venv`);
# prints its python.
download_python() {
    local venv=$BENCH_CACHE/venvs/download
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$BENCH_CACHE/venvs"
        "$BENCH_PYTHON" -m venv "$venv"
    fi
    echo "$venv/bin/python"
}

# A median (seconds) out of a hyperfine JSON export: json_median FILE INDEX.
json_median() {
    "$BENCH_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$1" "$2"
}

# Downloads the wheels of a requirements file once into $BENCH_CACHE/wheels/NAME (keyed by the
# file and the interpreter, so changing either downloads again); prints the folder.
ensure_wheels() {
    local name=$1 requirements=$2
    local wheels=$BENCH_CACHE/wheels/$name key
    key=$(cat "$requirements" <("$BENCH_PYTHON" -VV) | sha256sum | cut -c1-16)
    if [ "$(cat "$wheels/.complete" 2>/dev/null)" != "$key" ]; then
        log "downloading wheels into $wheels (once)"
        rm -rf "$wheels"
        mkdir -p "$wheels"
        "$(download_python)" -m pip download -q --disable-pip-version-check \
            --only-binary=:all: -d "$wheels" -r "$requirements" >&2
        echo "$key" >"$wheels/.complete"
    fi
    echo "$wheels"
}
