#!/usr/bin/env bash
# A new user's first `pip install` inside a Debian release's own root (debootstrap, entered with
# chroot), against the same install into a tier that already exists: the difference is pyctl's
# own part (tier creation). Beside them, in the same hyperfine run, what that release's Python
# does alone: `python3 -m venv` (its ensurepip, what a tier cost before pyctl placed pip itself)
# and `python3 -m venv --without-pip`; and `pyctl init` alone, the tier creation the difference
# estimates. The system tier is there, as the package makes it.
#
#   bash bench/first_install_debian.sh [RELEASE]    default bullseye; PYCTL_BENCH_RUNS (10)
#
# Needs root and debootstrap. The root goes on a new ext4 with a journal in a loop-mounted file
# (see below; without a loop device, on the cache's file system after a settle). It (python3,
# python3-venv, python3-pip) is cached by tests/distro/roots.sh; pyctl is the binary the
# packages ship (linked against glibc 2.31, target/x86_64-unknown-linux-gnu/release/pyctl,
# built by scripts/build-packages when absent).
# Offline: one small wheel made here. Each run makes its tier in a folder of its own, deleted
# only at the end (see bench/first_install.sh on freed inodes).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/distro/roots.sh
source "$REPO_ROOT/tests/distro/roots.sh"

RELEASE=${1:-bullseye}
RUNS=${PYCTL_BENCH_RUNS:-10}
is_root || die "run as root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
ensure_hyperfine

binary=$REPO_ROOT/target/x86_64-unknown-linux-gnu/release/pyctl
if [ -z "${PYCTL_BENCH_NO_BUILD:-}" ] || [ ! -x "$binary" ]; then
    log "building the packaged binary (scripts/build-packages deb)"
    (cd "$REPO_ROOT" && bash scripts/build-packages deb >/dev/null)
fi
commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD)

cached_root "bench-$RELEASE" "$RELEASE" python3,python3-venv,python3-pip
root=$BENCH_CACHE/debian-$RELEASE
image=$BENCH_CACHE/debian-$RELEASE.ext4
release_root() {
    umount "$root/proc" 2>/dev/null || true
    if mountpoint -q "$root"; then umount "$root"; fi
}
release_root
rm -rf "$root"
# The root goes on a new ext4 file system with a journal, in a file mounted through a loop
# device, as most users' root file systems are. This machine's own has no journal, and there the
# inode allocator pays for every inode freed in the last 60-300 s (BENCHMARKS.md, 2026-12-04):
# the root's own unpacking, or a previous run's deletion, would be measured too.
mkdir -p "$root"
rm -f "$image"
truncate -s 4G "$image"
if mkfs.ext4 -q -F "$image" && mount -o loop "$image" "$root"; then
    fs="a new ext4 with a journal (loop)"
else
    log "cannot mount a loop file system: the root stays on $(df --output=source "$BENCH_CACHE" | tail -1)"
    rm -f "$image"
    fs="the cache's own file system, settled ${PYCTL_BENCH_SETTLE:-65} s"
    sync
    sleep "${PYCTL_BENCH_SETTLE:-65}"
fi
trap 'release_root; rm -f "$image"' EXIT
unpack_root "bench-$RELEASE" "$root"
# The root is mktemp's (0700) when packed: the account must be able to enter it.
chmod 0755 "$root"
mount -t proc proc "$root/proc"
install -m 0755 "$binary" "$root/usr/bin/pyctl"
chroot "$root" useradd -m -s /bin/sh bench
chroot "$root" env -i PATH=/usr/bin:/bin pyctl system init >/dev/null
work=/home/bench/work
mkdir -p "$root$work/wheels" "$root$work/bin" "$root$work/runs"
ln -s /usr/bin/pyctl "$root$work/bin/pip"
chroot "$root" python3 - "$work/wheels" <<'EOF'
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
chroot "$root" chown -R bench "$work"

# A command as the account in the root, with a clean, offline pip environment.
as_user() {
    printf 'chroot %q su bench -s /bin/sh -c %q' "$root" "cd $work && env -i HOME=/home/bench PATH=$work/bin:/usr/bin:/bin PYCTL_NO_MODIFY_PATH=1 PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=$work/wheels $1"
}
eval "$(as_user "PYCTL_HOME=$work/existing pip install -q firstdemo")"
how=$(eval "$(as_user "PYCTL_HOME=$work/runs/probe pyctl -v init 2>&1")" | grep -o 'bytecode: .*' || echo "ensurepip")

# The unpacked root's writeback would otherwise land in the first benchmark.
sync
log "pyctl $commit in Debian $(cat "$root/etc/debian_version"), $(chroot "$root" python3 --version), on $fs, load $(cut -d' ' -f1-3 /proc/loadavg)"
log "a new tier's pip: $how"
results=$RESULTS_DIR/first_install_$RELEASE.json
mkdir -p "$RESULTS_DIR"
fresh="$work/runs/\$(date +%s%N)"
hyperfine --runs "$RUNS" --warmup 1 --export-json "$results" \
    --prepare true \
    -n "first pip install (new tier)" "$(as_user "PYCTL_HOME=$fresh pip install -q firstdemo")" \
    --prepare true \
    -n "pyctl init (new tier alone)" "$(as_user "PYCTL_HOME=$fresh pyctl -q init")" \
    --prepare "$(as_user "PYCTL_HOME=$work/existing pip uninstall -q -y firstdemo")" \
    -n "same install, existing tier" "$(as_user "PYCTL_HOME=$work/existing pip install -q firstdemo")" \
    --prepare true \
    -n "python3 -m venv" "$(as_user "python3 -m venv $fresh")" \
    --prepare true \
    -n "python3 -m venv --without-pip" "$(as_user "python3 -m venv --without-pip $fresh")"
python3 - "$results" "$RELEASE" <<'EOF'
import json, statistics, sys
med = {x["command"]: statistics.median(x["times"]) for x in json.load(open(sys.argv[1]))["results"]}
new, old = med["first pip install (new tier)"], med["same install, existing tier"]
print(f"MEASURE ({sys.argv[2]}): first install {new*1000:.0f} ms, into an existing tier "
      f"{old*1000:.0f} ms, pyctl's own part {(new-old)*1000:.0f} ms (goal <= 300 ms); "
      f"pyctl init alone {med['pyctl init (new tier alone)']*1000:.0f} ms; "
      f"python3 -m venv {med['python3 -m venv']*1000:.0f} ms, "
      f"--without-pip {med['python3 -m venv --without-pip']*1000:.0f} ms")
EOF
