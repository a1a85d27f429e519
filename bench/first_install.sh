#!/usr/bin/env bash
# A new user's first `pip install`, through pyctl, against the same install into a tier that
# already exists; the difference is pyctl's own part (tier creation). Two first installs: on a
# machine with the system tier (what the package sets up: the new tier copies the bytecode of
# its pip) and without one (the bytecode copied from the distribution's own pip, where it has
# python3-pip). Beside them, for scale: `python -m venv`
# (ensurepip), `python -m venv --without-pip` and `uv venv`.
#
# A third first install has neither a system tier nor a distribution pip to copy bytecode from
# (a copy of the same Python in a prefix of its own): every module compiled, across the cores.
#
# Offline: one small wheel made here. Runs as PYCTL_BENCH_USER (root's pip would go to the
# system tier). Usage: bash bench/first_install.sh   (PYCTL_BENCH_RUNS, default 15)
#
# Every run makes its venv or tier in a folder of its own, and nothing is deleted until the
# end: on an ext4 without a journal (this machine's root file system) the kernel skips the
# inodes freed in the last 60 s (300 s while their table block is dirty) each time it allocates
# one, so a `rm -rf` before each run would make every creation after it pay for the deletion
# (seen: `recently_deleted` and `find_inode_bit` at the top of a `perf record` of `pyctl init`).
# The folders of a previous run are deleted first, then the script waits that out
# (PYCTL_BENCH_SETTLE seconds, default 65).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

RUNS=${PYCTL_BENCH_RUNS:-15}
USER_NAME=${PYCTL_BENCH_USER:-pyctltest-a}
ensure_hyperfine
prepare_pyctl

work=$BENCH_CACHE/first-install
if [ -e "$work" ]; then
    rm -rf "$work"
    sync
    log "waiting ${PYCTL_BENCH_SETTLE:-65} s for the freed inodes to age (see above)"
    sleep "${PYCTL_BENCH_SETTLE:-65}"
fi
mkdir -p "$work/wheels" "$work/bin" "$work/results" "$work/runs"
ln -s "$PYCTL" "$work/bin/pip"
"$BENCH_PYTHON" - "$work/wheels" <<'EOF'
import base64, hashlib, sys, zipfile
out = sys.argv[1]
dist = "firstdemo-1.0.dist-info"
files = {
    "firstdemo/__init__.py": "V = 1\n",
    f"{dist}/METADATA": "Metadata-Version: 2.1\nName: firstdemo\nVersion: 1.0\n\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = "".join(f"{p},{digest(c.encode())},{len(c.encode())}\n" for p, c in files.items())
record += f"{dist}/RECORD,,\n"
with zipfile.ZipFile(f"{out}/firstdemo-1.0-py3-none-any.whl", "w") as z:
    for p, c in files.items():
        z.writestr(p, c)
    z.writestr(f"{dist}/RECORD", record)
EOF
chown -R "$USER_NAME" "$work"
chmod -R a+rX "$BENCH_CACHE/bin"
ensure_uv
UV=$BENCH_CACHE/tools/bin/uv

# The system tier the package would have made (root's, PYCTL_SYSTEM_PREFIX), outside $work:
# root-owned all the way up, as pyctl requires of a tier it copies from.
system=$BENCH_CACHE/first-install-system
if [ ! -x "$system/venv/bin/python" ]; then
    rm -rf "$system"
    env -i PATH=/usr/bin:/bin PYCTL_SYSTEM_PREFIX="$system" "$PYCTL" system init >/dev/null
fi
chmod 0755 "$BENCH_CACHE"

# The same Python with nothing installed beside it (no distribution pip whose bytecode a new
# tier could copy): the binary copied into a root-owned prefix of its own whose standard library
# is a link to the machine's. A first install with it and no system tier compiles every module.
bare_python=$BENCH_CACHE/nopip-python
if [ ! -x "$bare_python/bin/python3" ]; then
    rm -rf "$bare_python"
    mkdir -p "$bare_python/bin" "$bare_python/lib"
    real=$(readlink -f "$BENCH_PYTHON")
    cp "$real" "$bare_python/bin/"
    ln -s "$(basename "$real")" "$bare_python/bin/python3"
    ln -s "$(dirname "$real")/../lib/$(basename "$real")" "$bare_python/lib/$(basename "$real")"
fi

# Runs a command as the benchmark account with a clean, offline pip environment.
as_user() {
    printf 'su %s -s /bin/sh -c %q' "$USER_NAME" "cd $work && env -i HOME=$work PATH=$work/bin:/usr/bin:/bin PYCTL_NO_MODIFY_PATH=1 PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=$work/wheels $1"
}

# The existing tier the second command installs into.
eval "$(as_user "PYCTL_HOME=$work/existing pip install -q firstdemo")"

log "pyctl $PYCTL_COMMIT, python $("$BENCH_PYTHON" --version 2>&1), load $(cut -d' ' -f1-3 /proc/loadavg)"
# A new folder per run: `$(date +%s%N)` is expanded by the shell of each run.
fresh="$work/runs/\$(date +%s%N)"
hyperfine --runs "$RUNS" --warmup 1 \
    --export-json "$work/results/first_install.json" \
    --export-markdown "$work/results/first_install.md" \
    --prepare true \
    -n "first pip install (new tier)" "$(as_user "PYCTL_SYSTEM_PREFIX=$system PYCTL_HOME=$fresh pip install -q firstdemo")" \
    --prepare true \
    -n "first pip install (new tier, no system tier)" "$(as_user "PYCTL_SYSTEM_PREFIX=$work/none PYCTL_HOME=$fresh pip install -q firstdemo")" \
    --prepare true \
    -n "first pip install (new tier, no system tier, no distribution pip)" "$(as_user "PYCTL_PYTHON=$bare_python/bin/python3 PYCTL_SYSTEM_PREFIX=$work/none PYCTL_HOME=$fresh pip install -q firstdemo")" \
    --prepare "$(as_user "PYCTL_HOME=$work/existing pip uninstall -q -y firstdemo")" \
    -n "same install, existing tier" "$(as_user "PYCTL_HOME=$work/existing pip install -q firstdemo")" \
    --prepare true \
    -n "python -m venv" "$(as_user "$BENCH_PYTHON -m venv $fresh")" \
    --prepare true \
    -n "python -m venv --without-pip" "$(as_user "$BENCH_PYTHON -m venv --without-pip $fresh")" \
    --prepare true \
    -n "uv venv" "$(as_user "$UV venv -q --python $BENCH_PYTHON $fresh")"
"$BENCH_PYTHON" - "$work/results/first_install.json" <<'EOF'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: statistics.median(v["times"]) for k, v in r.items()}
new, old = med["first pip install (new tier)"], med["same install, existing tier"]
bare = med["first pip install (new tier, no system tier)"]
none = med["first pip install (new tier, no system tier, no distribution pip)"]
print(f"MEASURE: first install {new*1000:.0f} ms, into an existing tier {old*1000:.0f} ms, "
      f"pyctl's own part {(new-old)*1000:.0f} ms (goal <= 300 ms); "
      f"without a system tier {bare*1000:.0f} ms, own part {(bare-old)*1000:.0f} ms; "
      f"without either, nothing to copy {none*1000:.0f} ms, own part {(none-old)*1000:.0f} ms; "
      f"uv venv {med['uv venv']*1000:.0f} ms; "
      f"python -m venv {med['python -m venv']*1000:.0f} ms, "
      f"--without-pip {med['python -m venv --without-pip']*1000:.0f} ms")
EOF
rm -rf "$work/runs"
