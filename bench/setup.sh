#!/usr/bin/env bash
# Installs the benchmark tools, idempotently: hyperfine (distribution package), uv (from the
# package index, into its own venv $PYCTL_BENCH_CACHE/tools, for the side-by-side comparisons of
# issue 3) and, as root, perf for bench/wrapper_phases.sh. The measuring scripts install what
# they need themselves; this is for a machine being prepared ahead of time.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ensure_hyperfine
ensure_uv
if ! command -v perf >/dev/null 2>&1; then
    if is_root; then
        log "installing perf (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
    else
        log "perf is missing (bench/wrapper_phases.sh needs it): apt-get install linux-perf"
    fi
fi
log "hyperfine: $(hyperfine --version)"
log "uv: $("$BENCH_CACHE/tools/bin/uv" --version)"
