#!/usr/bin/env bash
# A new user's first `pip install`, through pyctl, against the same install into a tier that
# already exists; the difference is pyctl's own part (tier creation). Beside them, for scale:
# `python -m venv` (ensurepip) and `python -m venv --without-pip`.
#
# Offline: one small wheel made here. Runs as PYCTL_BENCH_USER (root's pip would go to the
# system tier). Usage: bash bench/first_install.sh   (PYCTL_BENCH_RUNS, default 15)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

RUNS=${PYCTL_BENCH_RUNS:-15}
USER_NAME=${PYCTL_BENCH_USER:-pyctltest-a}
ensure_hyperfine
prepare_pyctl

work=$BENCH_CACHE/first-install
rm -rf "$work"
mkdir -p "$work/wheels" "$work/bin" "$work/results"
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

# Runs a command as the benchmark account with a clean, offline pip environment.
as_user() {
    printf 'su %s -s /bin/sh -c %q' "$USER_NAME" "cd $work && env -i HOME=$work PATH=$work/bin:/usr/bin:/bin PYCTL_NO_MODIFY_PATH=1 PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=$work/wheels $1"
}

# The existing tier the second command installs into.
eval "$(as_user "PYCTL_HOME=$work/existing pip install -q firstdemo")"

log "pyctl $PYCTL_COMMIT, python $("$BENCH_PYTHON" --version 2>&1), load $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine --runs "$RUNS" --warmup 1 \
    --export-json "$work/results/first_install.json" \
    --export-markdown "$work/results/first_install.md" \
    --prepare "rm -rf $work/new" \
    -n "first pip install (new tier)" "$(as_user "PYCTL_HOME=$work/new pip install -q firstdemo")" \
    --prepare "$(as_user "PYCTL_HOME=$work/existing pip uninstall -q -y firstdemo")" \
    -n "same install, existing tier" "$(as_user "PYCTL_HOME=$work/existing pip install -q firstdemo")" \
    --prepare "rm -rf $work/venv" \
    -n "python -m venv" "$(as_user "$BENCH_PYTHON -m venv $work/venv")" \
    --prepare "rm -rf $work/venv" \
    -n "python -m venv --without-pip" "$(as_user "$BENCH_PYTHON -m venv --without-pip $work/venv")"
"$BENCH_PYTHON" - "$work/results/first_install.json" <<'EOF'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: statistics.median(v["times"]) for k, v in r.items()}
new, old = med["first pip install (new tier)"], med["same install, existing tier"]
print(f"MEASURE: first install {new*1000:.0f} ms, into an existing tier {old*1000:.0f} ms, "
      f"pyctl's own part {(new-old)*1000:.0f} ms (goal <= 300 ms); "
      f"python -m venv {med['python -m venv']*1000:.0f} ms, "
      f"--without-pip {med['python -m venv --without-pip']*1000:.0f} ms")
EOF
