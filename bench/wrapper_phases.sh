#!/usr/bin/env bash
# Where the wrapper's overhead goes, per pip operation, without pip's own run-to-run noise.
# Needs root and `perf` (kernel tracepoints, a few microseconds each): runs
# `pip install ... six` and `pip uninstall -y six` through the wrapper as $PYCTL_BENCH_USER on
# the tier bench/wrapper_overhead.sh made, and reads from sched:sched_process_exec/exit:
#   before = wrapper exec -> pip's python exec (routing, lock, scan, settle, N_before.json, spawn)
#   after  = pip's python exit -> wrapper exit (scan, N_after.json, shims, store, prune, diff)
# Run bench/wrapper_overhead.sh first (it makes the tier and the six wheel folder).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

BENCH_USER=${PYCTL_BENCH_USER:-pyctltest-a}
WRAP=$BENCH_CACHE/wrapper
SIX_WHEELS=$BENCH_CACHE/wheels/six
RUNS=${PYCTL_BENCH_RUNS:-20}

is_root || die "needs root (perf trace on kernel tracepoints)"
command -v perf >/dev/null 2>&1 || die "needs perf (apt-get install linux-perf)"
[ -x "$WRAP/home/venv/bin/python" ] || die "no tier in $WRAP: run bench/wrapper_overhead.sh first"
[ -L "$WRAP/bin/pip" ] || die "no wrapper symlink $WRAP/bin/pip: run bench/wrapper_overhead.sh first"

mkdir -p "$RESULTS_DIR"
trace=$(mktemp)
trap 'rm -f "$trace"' EXIT
pip=$WRAP/bin/pip
script="cd '$WRAP/userhome'
for i in \$(seq $RUNS); do
  '$pip' install --no-index --find-links '$SIX_WHEELS' six >/dev/null 2>&1
  '$pip' uninstall -y six >/dev/null 2>&1
done"
log "tracing $RUNS wrapper installs and uninstalls as $BENCH_USER"
perf trace --no-syscalls -e 'sched:sched_process_exec,sched:sched_process_exit' -o "$trace" -- \
    setpriv --reuid="$(id -u "$BENCH_USER")" --regid="$(id -g "$BENCH_USER")" --init-groups \
    env -i "PATH=/usr/local/bin:/usr/bin:/bin" "LANG=C.UTF-8" "HOME=$WRAP/userhome" \
    "PYCTL_HOME=$WRAP/home" "PIP_DISABLE_PIP_VERSION_CHECK=1" sh -c "$script"

"$BENCH_PYTHON" - "$trace" "$RESULTS_DIR/wrapper-phases.json" <<'EOF'
import json, re, statistics, sys

# "  26.888 pip/18839 sched:sched_process_exec(filename: ".../pip", pid: 18839 ..."
event = re.compile(r"^\s*([\d.]+) (\S+)/(\d+) sched:sched_process_(exec|exit)\((.*)\)")
ops, current, python_pid = [], None, None
for line in open(sys.argv[1]):
    m = event.match(line)
    if not m:
        continue
    t, comm, pid, kind, rest = float(m[1]), m[2], int(m[3]), m[4], m[5]
    if kind == "exec" and rest.startswith('filename: "') and rest.split('"')[1].endswith("/bin/pip"):
        current = {"pid": pid, "start": t}
    elif current and kind == "exec" and "/venv/bin/python" in rest and python_pid is None:
        python_pid, current["python_start"] = pid, t
    elif current and kind == "exit" and pid == python_pid and "group_dead: 1" in rest:
        current["python_end"] = t
    elif current and kind == "exit" and pid == current["pid"] and "group_dead: 1" in rest:
        current["end"] = t
        ops.append(current)
        current, python_pid = None, None

complete = lambda o: all(k in o for k in ("start", "python_start", "python_end", "end"))
if not ops or len(ops) % 2:
    sys.exit(f"wrapper_phases: could not pair the trace's events ({len(ops)} operations)")
# Operations alternate install, uninstall; one whose events perf lost is left out.
rows = {"install": [o for o in ops[0::2] if complete(o)],
        "uninstall": [o for o in ops[1::2] if complete(o)]}
lost = len(ops) - sum(len(v) for v in rows.values())
if lost:
    print(f"({lost} of {len(ops)} operations left out: perf lost some of their events)")
out = {}
print(f"{'operation':<10} {'before pip':>11} {'after pip':>10} {'overhead':>9}   (medians, ms)")
for name, items in rows.items():
    before = [o["python_start"] - o["start"] for o in items]
    after = [o["end"] - o["python_end"] for o in items]
    total = [b + a for b, a in zip(before, after)]
    out[name] = {"runs": len(items), "before_ms": before, "after_ms": after,
                 "median_before_ms": statistics.median(before),
                 "median_after_ms": statistics.median(after),
                 "median_overhead_ms": statistics.median(total)}
    print(f"{name:<10} {statistics.median(before):>11.2f} {statistics.median(after):>10.2f} "
          f"{statistics.median(total):>9.2f}")
pair = out["install"]["median_overhead_ms"] + out["uninstall"]["median_overhead_ms"]
out["install_plus_uninstall_ms"] = pair
print(f"install + uninstall: {pair:.2f} ms spent in the wrapper (sum of the two medians)")
json.dump(out, open(sys.argv[2], "w"), indent=1)
EOF
