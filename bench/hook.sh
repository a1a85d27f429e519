#!/usr/bin/env bash
# The apt hook's cost (issue 5: < 100 ms for a transaction without Python packages): `pyctl hook
# apt` fed apt's protocol-3 input for one .deb without Python files and for one with a
# dist-info, against a provisioned system tier, beside `sh -c true` fed the same input (the
# shell apt starts the hook through). Root: the system tier is a root-owned temp folder given by
# PYCTL_SYSTEM_PREFIX, never /opt/system-python.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

is_root || die "needs root (a root-owned system tier in a temp folder)"
ensure_hyperfine
prepare_pyctl
H=$BENCH_CACHE/hook
mkdir -p "$H" "$RESULTS_DIR"

# Two small .debs, made once: one plain, one shipping a Python distribution.
make_deb() {
    local name=$1 with_python=$2 root=$H/$1
    [ -f "$H/$name.deb" ] && return
    rm -rf "$root"
    mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$name"
    printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: bench <b@example.invalid>\nDescription: bench package\n' \
        "$name" >"$root/DEBIAN/control"
    echo "$name" >"$root/usr/share/doc/$name/README"
    if [ "$with_python" = 1 ]; then
        local d=$root/usr/lib/python3/dist-packages
        mkdir -p "$d/benchdist" "$d/benchdist-2.0.dist-info"
        echo 'V = 2' >"$d/benchdist/__init__.py"
        printf 'Metadata-Version: 2.1\nName: benchdist\nVersion: 2.0\n' >"$d/benchdist-2.0.dist-info/METADATA"
    fi
    dpkg-deb --root-owner-group -b "$root" "$H/$name.deb" >/dev/null
}
make_deb bench-plain 0
make_deb bench-python 1

prefix=$H/system
if [ ! -x "$prefix/venv/bin/python" ]; then
    log "a system tier in $prefix (once)"
    rm -rf "$prefix"
    install -d -m 0755 "$prefix"
    PYCTL_SYSTEM_PREFIX=$prefix "$PYCTL" -q system init
fi
v3() {
    printf 'VERSION 3\nAPT::Architecture=amd64\nDir=/\n\n%s - - none < 1.0 all foreign %s\n%s - - none < 1.0 all foreign **CONFIGURE**\n' \
        "$1" "$H/$1.deb" "$1"
}
v3 bench-plain >"$H/plain.v3"
v3 bench-python >"$H/python.v3"

export PYCTL_SYSTEM_PREFIX=$prefix
hyperfine --warmup 3 --min-runs 50 \
    --export-json "$RESULTS_DIR/hook.json" --export-markdown "$RESULTS_DIR/hook.md" \
    -n "sh -c true < plain.v3" "sh -c true <$H/plain.v3" \
    -n "pyctl hook apt < plain.v3 (no Python)" "$PYCTL hook apt <$H/plain.v3" \
    -n "pyctl hook apt < python.v3 (a dist-info)" "$PYCTL hook apt <$H/python.v3"
"$BENCH_PYTHON" - "$RESULTS_DIR/hook.json" "$PYCTL_COMMIT" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base, plain, py = (x["median"] * 1000 for x in r)
verdict = "met" if plain < 100 else "MISSED"
print(f"apt hook, pyctl {sys.argv[2]}: no Python {plain:.1f} ms, with a dist-info {py:.1f} ms, "
      f"sh alone {base:.1f} ms (target < 100 ms without Python: {verdict})")
EOF
