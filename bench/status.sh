#!/usr/bin/env bash
# `pyctl status` on a full tier: the 99 distributions of freeze-requirements.txt installed
# through the wrapper (so the store holds each), then the first 50 uninstalled again (their
# store entries no longer linked from the venv). Goal (issue 15): <= 5 ms.
#
# Run as root; the tier belongs to PYCTL_BENCH_USER and hyperfine runs as that account, so no
# `su` is timed. Usage: bash bench/status.sh   (PYCTL_BENCH_RUNS, default 50)
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

RUNS=${PYCTL_BENCH_RUNS:-50}
USER_NAME=${PYCTL_BENCH_USER:-pyctltest-a}
is_root || die "run as root (the tier is made for $USER_NAME)"
ensure_hyperfine
prepare_pyctl
requirements=$BENCH_DIR/freeze-requirements.txt
wheels=$(ensure_wheels full "$requirements")
chmod -R a+rX "$BENCH_CACHE/wheels" "$BENCH_CACHE/bin"

work=$BENCH_CACHE/status
rm -rf "$work"
mkdir -p "$work/bin" "$work/results"
cp "$requirements" "$work/requirements.txt"
head -n 50 "$requirements" >"$work/half.txt"
ln -s "$PYCTL" "$work/bin/pip"
chown -R "$USER_NAME" "$work"

as_user() {
    su "$USER_NAME" -s /bin/sh -c "cd $work && env -i HOME=$work PATH=$work/bin:/usr/bin:/bin \
PYCTL_HOME=$work/tier PYCTL_NO_MODIFY_PATH=1 PIP_CONFIG_FILE=/dev/null \
PIP_DISABLE_PIP_VERSION_CHECK=1 NO_COLOR=1 $1"
}

log "making the tier (${USER_NAME}): install 99, uninstall 50"
as_user "pip install -q --no-index --find-links $wheels -r requirements.txt" >/dev/null
as_user "pip uninstall -q -y -r half.txt" >/dev/null
as_user "$PYCTL status" | sed 's/^/  /' >&2
entries=$(find "$work/tier/store" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l)
files=$(find "$work/tier/store" -type f | wc -l)
log "store: $entries entries, $files files; pyctl $PYCTL_COMMIT; load $(cut -d' ' -f1-3 /proc/loadavg)"
as_user "hyperfine -N --warmup 3 --runs $RUNS --export-json $work/results/status.json \
--export-markdown $work/results/status.md -n 'pyctl status' '$PYCTL status' \
-n 'pyctl --json status' '$PYCTL --json status'"
