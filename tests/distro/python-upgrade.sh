#!/usr/bin/env bash
# Issue 16 inside a Debian image (tests/distro/python-upgrade.Dockerfile), one phase per RUN step,
# one container throughout:
#   before   Debian 12: the .deb installed; root's system tier and the tiers of pyctl-a and
#            pyctl-b get purepkg (pure Python, console script) and cext (compiled) from
#            /wheelhouse (cp311 and cp313 wheels); what they hold is kept for later.
#   upgrade  sed -i s/bookworm/trixie/ on the apt sources, apt-get update, apt-get full-upgrade
#            -y, apt-get autoremove --purge -y, as a user does it.
#   system   the apt hook rebuilt the system tier on 3.13 during the upgrade; root wrote nothing
#            into the users' tiers.
#   users    each user's first command (A: pip list, B: pyctl freeze) moves the tier, in one line.
# Each check prints PASS or FAIL; the first FAIL ends the step, and so the build. MEASURE lines
# are the times.
set -euo pipefail

A=pyctl-a
B=pyctl-b
# C's compiled package has no cp313 wheel reachable at the upgrade: named, finished later.
C=pyctl-c
T=/pyctl-test
S=$T/state
WH=/wheelhouse
TIER=.local/python-packages
SYS=/opt/system-python
export PYTHONDONTWRITEBYTECODE=1

pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }
as() { su - "$1" -c "$2"; }
home_of() { getent passwd "$1" | cut -d: -f6; }
tier_of() { if [ "$1" = root ]; then echo "$SYS"; else echo "$(home_of "$1")/$TIER"; fi; }
# pyctl run as USER (root: the system tier).
pyctl_as() {
  local u=$1
  shift
  if [ "$u" = root ]; then pyctl "$@"; else as "$u" "pyctl $*"; fi
}
history_json() { pyctl_as "$1" history --json; }
history_count() { history_json "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# The set a tier holds, without what a venv brings by itself (pip, setuptools, wheel).
own_set() { pyctl_as "$1" freeze | grep -viE '^(pip|setuptools|wheel)==' || true; }
# Names, owners, modes, sizes and mtimes of everything in a tree.
tree_listing() { find "$1" -printf '%p %u:%g %m %s %T@\n' | sort; }
python_minor() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
# The newest rebuild entry of USER's tier as "id|from|to|store|pip|missing|command", or nothing.
newest_rebuild() {
  history_json "$1" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["kind"] == "rebuild":
        r = e.get("rebuild") or {}
        print("|".join([str(e["id"]), r.get("from", ""), r.get("to", ""), ",".join(r.get("store", [])),
                        ",".join(r.get("pip", [])), ",".join(r.get("missing", [])), e["command"]]))
        break'
}
# Seconds between the before and after records of entry ID in TIER (their files' mtimes).
entry_seconds() {
  python3 - "$1/history" "$2" <<'PYEOF'
import os, sys
d, i = sys.argv[1], int(sys.argv[2])
t = lambda half: os.stat(os.path.join(d, "%03d_%s.json" % (i, half))).st_mtime
print("%.2f" % (t("after") - t("before")))
PYEOF
}
# The venv's pip, pip3 and pip3.13 are pyctl's shims (pip rewrites them; pyctl puts them back).
shims_in() {
  local p
  for p in pip pip3 pip3.13; do
    [ "$(sed -n 2p "$1/bin/$p" 2>/dev/null | cut -c1-12)" = "# pyctl shim" ] || return 1
  done
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }

phase_before() {
  mkdir -p "$S"
  echo "Debian $(cat /etc/debian_version), $(python3 --version)"
  check "python3 is 3.11" test "$(python_minor python3)" = 3.11
  ls "$WH" | sed 's/^/  wheelhouse: /'
  check "the wheelhouse has cext for cp311 and cp313, and purepkg" \
    test -n "$(ls $WH/cext-1.0-cp311-*.whl)" -a -n "$(ls $WH/cext-1.0-cp313-*.whl)" -a -f "$WH/purepkg-1.0-py3-none-any.whl"
  check "apt installs the .deb" apt-get install -y -qq "$T/debs/pyctl.deb"
  check "pyctl system status" pyctl system status
  check "root: pip install purepkg cext" pip install -q --no-index --find-links "$WH" purepkg cext
  local u t
  for u in $A $B; do
    check "$u: pip install purepkg cext (login shell)" as $u "pip install -q --no-index --find-links $WH purepkg cext"
  done
  # C: purepkg and pyctltest_late from a folder of C's own holding only the cp311 wheel.
  useradd -m -s /bin/bash $C
  as $C "mkdir ~/wheels && cp $WH/purepkg-1.0-py3-none-any.whl $WH/pyctltest_late-1.0-cp311-*.whl ~/wheels/"
  check "$C: pip install purepkg pyctltest_late from ~/wheels (cp311 only)" \
    as $C "pip install -q --no-index --find-links ~/wheels purepkg pyctltest_late"
  local mod
  for u in root $A $B $C; do
    t=$(tier_of $u)
    mod=cext
    [ $u = $C ] && mod="pyctltest_late as cext"
    check "$u: imports on 3.11 with $t/venv/bin first on PATH" \
      as $u "PATH=$t/venv/bin:\$PATH python3 -c 'import sys, purepkg, $mod; assert sys.version_info[:2] == (3, 11); assert cext.answer() == 42'"
    check "$u: purepkg-hello runs" as $u "PATH=$t/venv/bin:\$PATH purepkg-hello"
    own_set $u >"$S/$u.set"
    check "$u's set is cext (or pyctltest_late) and purepkg ($(tr '\n' ' ' <"$S/$u.set"))" \
      test "$(cut -d= -f1 "$S/$u.set" | tr '\n' ' ')" = "$([ $u = $C ] && echo purepkg pyctltest_late || echo cext purepkg) "
    history_count $u >"$S/$u.count"
    stat -c %U "$t" >"$S/$u.owner"
  done
  chmod -R a+rX "$S"
}

phase_upgrade() {
  local t0 out rc
  shopt -s nullglob
  # As a user does it: every bookworm in the apt sources becomes trixie.
  sed -i s/bookworm/trixie/ /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
  shopt -u nullglob
  # What root could write into the users' tiers is compared after the upgrade.
  tree_listing "$(tier_of $A)" >"$S/$A.tree"
  tree_listing "$(tier_of $B)" >"$S/$B.tree"
  tree_listing "$(tier_of $C)" >"$S/$C.tree"
  check "apt-get update (trixie)" apt-get update -qq
  t0=$(now)
  set +e
  apt-get full-upgrade -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    >"$S/full-upgrade.log" 2>&1
  rc=$?
  set -e
  echo "MEASURE: apt-get full-upgrade (bookworm -> trixie): $(since "$t0") s"
  grep -E '^(Need to get|[0-9]+ upgraded)' "$S/full-upgrade.log" | sed 's/^/  full-upgrade: /' || true
  # Where in the upgrade the hook rebuilt the tier: after which dpkg steps of the new Python.
  grep -nE 'pyctl|^Setting up (python3|python3\.13|python3\.13-venv|python3-pip-whl|libpython3\.13-stdlib[^ ]*) ' \
    "$S/full-upgrade.log" | sed 's/^/  full-upgrade: /' || true
  [ "$rc" = 0 ] || { tail -n 40 "$S/full-upgrade.log" >&2; fail "apt-get full-upgrade exited with $rc"; }
  pass "apt-get full-upgrade -y"
  # Read before any pyctl command runs (one would rebuild the tier on use): the hook did it.
  check "the apt hook rebuilt the system tier during the full-upgrade (its line in apt's output)" \
    grep -q "the system tier moves to Python 3.13" "$S/full-upgrade.log"
  check "... its venv is 3.13's now (pyvenv.cfg: $(grep '^version' "$SYS/venv/pyvenv.cfg" | head -n 1))" \
    grep -qE '^version(_info)? *= *3\.13\.' "$SYS/venv/pyvenv.cfg"
  t0=$(now)
  out=$(apt-get autoremove --purge -y 2>&1) || { echo "$out" >&2; fail "apt-get autoremove --purge -y"; }
  echo "MEASURE: apt-get autoremove --purge: $(since "$t0") s"
  echo "$out" | grep -iE 'pyctl|^Removing|^Purging' | sed 's/^/  autoremove: /' || true
  pass "apt-get autoremove --purge -y"
  echo "Debian $(cat /etc/debian_version), $(python3 --version)"
  check "python3 is 3.13 now" test "$(python_minor python3)" = 3.13
  check "python3.11 is gone (/usr/bin/python3.11)" test ! -e /usr/bin/python3.11
}

phase_system() {
  local rb id from to store pip missing cmd n secs
  echo "the hook's lines in the full-upgrade's output:"
  grep -n 'pyctl' "$S/full-upgrade.log" | sed 's/^/  /' || true
  rb=$(newest_rebuild root)
  echo "root's newest rebuild entry: $rb"
  check "the system tier has a rebuild entry" test -n "$rb"
  IFS='|' read -r id from to store pip missing cmd <<<"$rb"
  check "... from Python 3.11 ($from) to 3.13 ($to)" sh -c 'case "$1/$2" in 3.11.*/3.13.*) exit 0 ;; *) exit 1 ;; esac' _ "$from" "$to"
  check "... the only new entry" \
    test "$(history_count root)" = "$(($(cat "$S/root.count") + 1))"
  check "... purepkg from the store ($store), cext by pip ($pip), nothing missing ($missing)" \
    test "$store" = "purepkg==1.0" -a "$pip" = "cext==1.0" -a -z "$missing"
  check "the system venv's Python is 3.13" test "$(python_minor "$SYS/venv/bin/python")" = 3.13
  check "the system tier holds the same set" test "$(own_set root)" = "$(cat "$S/root.set")"
  check "root: python3 -c 'import purepkg, cext' with $SYS/venv/bin first on PATH" \
    env PATH="$SYS/venv/bin:$PATH" python3 -c 'import sys, purepkg, cext; assert sys.version_info[:2] == (3, 13); assert cext.answer() == 42; assert "cpython-313" in cext.cext.__file__'
  check "root: purepkg-hello runs on 3.13" env PATH="$SYS/venv/bin:$PATH" purepkg-hello
  check "no lib/python3.11 left in the system venv" test ! -e "$SYS/venv/lib/python3.11"
  check "the system venv's pip, pip3, pip3.13 are pyctl's shims" shims_in "$SYS/venv"
  check "the system tier is root's, nothing group/world-writable" \
    test -z "$(find "$SYS" \( ! -user root -o \( ! -type l -perm /022 \) \) -print)"
  pyctl history | sed 's/^/  history: /'
  secs=$(entry_seconds "$SYS" "$id")
  echo "MEASURE: system tier rebuild (apt hook, in the full-upgrade): $secs s"
  n=$(history_count root)
  check "root: pip list does not rebuild again" sh -c 'pip list >/dev/null 2>&1'
  check "... and adds no entry" test "$(history_count root)" = "$n"
  local out
  if out=$(pyctl undo 2>&1); then fail "root: pyctl undo of the rebuild went through: $out"; fi
  echo "$out" | sed 's/^/  undo: /'
  check "root: pyctl undo of the rebuild refused, saying why" contains "$out" "cannot undo past #$id"
  check "... and the interpreter is gone" contains "$out" "gone"
  check "... nothing changed" test "$(history_count root)" = "$n" -a "$(own_set root)" = "$(cat "$S/root.set")"
  local u
  for u in $A $B $C; do
    check "root wrote nothing into $u's tier (names, owners, modes, sizes, mtimes as before the upgrade)" \
      test "$(tree_listing "$(tier_of $u)")" = "$(cat "$S/$u.tree")"
  done
}

phase_users() {
  local u t t0 secs out err lines rb id from to store pip missing cmd n first
  for u in $A $B; do
    t=$(tier_of $u)
    # A's first command goes through the pip wrapper, B's is pyctl's own.
    if [ $u = $A ]; then first="pip list --format=freeze"; else first="pyctl freeze"; fi
    t0=$(now)
    out=$(as $u "$first" 2>"$S/$u.err") || { cat "$S/$u.err" >&2; fail "$u: $first"; }
    secs=$(since "$t0")
    err=$(cat "$S/$u.err")
    echo "$err" | sed "s/^/  $u stderr: /"
    lines=$(echo "$err" | grep -c '^pyctl' || true)
    check "$u: the first command ($first) says one line" test "$lines" = 1
    check "$u: ... that the tier moves to Python 3.13" contains "$err" "moves to Python 3.13"
    check "$u: ... then lists the set" sh -c 'echo "$1" | grep -qx "cext==1.0" && echo "$1" | grep -qx "purepkg==1.0"' _ "$out"
    echo "MEASURE: $u: first command after the upgrade ($first, rebuild included): $secs s"
    rb=$(newest_rebuild $u)
    echo "$u's newest rebuild entry: $rb"
    IFS='|' read -r id from to store pip missing cmd <<<"$rb"
    check "$u: one rebuild entry, from 3.11 ($from) to 3.13 ($to)" \
      sh -c 'case "$1/$2" in 3.11.*/3.13.*) exit 0 ;; *) exit 1 ;; esac' _ "$from" "$to"
    check "$u: ... the only new entry" test "$(history_count $u)" = "$(($(cat "$S/$u.count") + 1))"
    check "$u: ... purepkg from the store ($store), cext by pip ($pip), nothing missing ($missing)" \
      test "$store" = "purepkg==1.0" -a "$pip" = "cext==1.0" -a -z "$missing"
    echo "MEASURE: $u: rebuild entry (before to after record): $(entry_seconds "$t" "$id") s"
    check "$u: the same set" test "$(own_set $u)" = "$(cat "$S/$u.set")"
    check "$u: python3 -c 'import purepkg' with $t/venv/bin first on PATH" \
      as $u "PATH=$t/venv/bin:\$PATH python3 -c 'import sys, purepkg; assert sys.version_info[:2] == (3, 13)'"
    check "$u: python3 -c 'import cext' (the cp313 build) with $t/venv/bin first on PATH" \
      as $u "PATH=$t/venv/bin:\$PATH python3 -c 'import cext; assert cext.answer() == 42; assert \"cpython-313\" in cext.cext.__file__'"
    check "$u: purepkg-hello runs on 3.13" as $u "PATH=$t/venv/bin:\$PATH purepkg-hello"
    check "$u: no lib/python3.11 left" test ! -e "$t/venv/lib/python3.11"
    check "$u: the venv's pip, pip3, pip3.13 are pyctl's shims" shims_in "$t/venv"
    check "$u: the tier is still $u's alone" test -z "$(find "$t" ! -user $u -print)" -a "$(stat -c %U "$t")" = "$(cat "$S/$u.owner")"
    n=$(history_count $u)
    err=$(as $u "pip list" 2>&1 >/dev/null) || fail "$u: second pip list"
    check "$u: the next command is quiet and rebuilds nothing" test -z "$err" -a "$(history_count $u)" = "$n"
    if out=$(as $u "pyctl undo" 2>&1); then fail "$u: pyctl undo of the rebuild went through: $out"; fi
    echo "$out" | sed "s/^/  $u undo: /"
    check "$u: pyctl undo of the rebuild refused, saying why" contains "$out" "cannot undo past #$id"
    check "$u: ... nothing changed" test "$(history_count $u)" = "$n" -a "$(own_set $u)" = "$(cat "$S/$u.set")"
    as $u "pyctl history" | sed "s/^/  $u history: /"
    check "$u: pyctl status finds no problem" sh -c "su - $u -c 'pyctl status' | grep -qx 'problems  none'"
  done
  late_package
  # What the pip commands are after the upgrade (facts for the report, not checks): preinst
  # diverts pip3.X only for the Pythons present when pyctl is installed.
  local p
  for p in pip pip3 pip3.11 pip3.13; do
    if [ ! -e /usr/bin/$p ]; then echo "NOTE: after the upgrade, there is no /usr/bin/$p"; continue; fi
    echo "NOTE: after the upgrade, /usr/bin/$p: $(readlink /usr/bin/$p || echo "a file")$(dpkg-divert --list /usr/bin/$p | grep -q pyctl && echo ", diverted by pyctl")"
  done
  echo "NOTE: /usr/lib/python3.13/EXTERNALLY-MANAGED: $(head -n 1 /usr/lib/python3.13/EXTERNALLY-MANAGED)"
  echo "NOTE: shims: $(ls /usr/lib/pyctl/shims | tr '\n' ' ')"
  echo "NOTE: $A (login shell): pip3.13 is $(as $A 'command -v pip3.13')"
  echo "NOTE: $A (sh -c): pip3.13 is $(su $A -s /bin/sh -c 'command -v pip3.13')"
  echo "NOTE: root: python3 -m pip install: $(python3 -m pip install --no-index --find-links $WH purepkg 2>&1 | grep -m1 -iE 'error|Successfully')"
  echo "NOTE: root: pip3.11 --version: $(pip3.11 --version 2>&1 | head -n 2 | tr '\n' ' ')"
}

# C's tier: pyctltest_late has no cp313 wheel in C's folder (nor on any index) at the first
# command: the rebuild names it, keeps the rest working, and the next command after the wheel
# arrives finishes it as another rebuild entry.
late_package() {
  local t out err rb id from to store pip missing cmd n t0
  t=$(tier_of $C)
  t0=$(now)
  out=$(as $C "pip list --format=freeze" 2>"$S/$C.err") || { cat "$S/$C.err" >&2; fail "$C: pip list"; }
  echo "MEASURE: $C: first command after the upgrade (pip list, rebuild with one package missing): $(since "$t0") s"
  err=$(cat "$S/$C.err")
  echo "$err" | sed "s/^/  $C stderr: /"
  check "$C: the tier moves to Python 3.13" contains "$err" "moves to Python 3.13"
  check "$C: ... and pyctltest_late is named as not put back" sh -c 'echo "$1" | grep -qi "pyctltest.late"' _ "$err"
  check "$C: ... purepkg listed, pyctltest_late not" \
    sh -c 'echo "$1" | grep -qx "purepkg==1.0" && ! echo "$1" | grep -qi "^pyctltest.late=="' _ "$out"
  rb=$(newest_rebuild $C)
  echo "$C's newest rebuild entry: $rb"
  IFS='|' read -r id from to store pip missing cmd <<<"$rb"
  check "$C: rebuild entry from 3.11 to 3.13, purepkg from the store, pyctltest_late missing ($missing)" \
    sh -c 'case "$1/$2/$3/$4" in 3.11.*/3.13.*/purepkg==1.0/pyctltest?late==1.0) exit 0 ;; *) exit 1 ;; esac' _ "$from" "$to" "$store" "$missing"
  check "$C: ... the only new entry" test "$(history_count $C)" = "$(($(cat "$S/$C.count") + 1))"
  out=$(as $C "pyctl status" 2>&1) || true
  echo "$out" | grep -i problem | sed "s/^/  $C status: /"
  check "$C: pyctl status names what is still to put back" sh -c 'echo "$1" | grep -qi "pyctltest.late"' _ "$out"
  check "$C: purepkg works meanwhile" as $C "PATH=$t/venv/bin:\$PATH python3 -c 'import purepkg' && PATH=$t/venv/bin:\$PATH purepkg-hello"
  # The cp313 wheel arrives in C's folder; the next command finishes the rebuild. (Counted
  # before: `pyctl history` is a command of C's too, and would finish it.)
  n=$(history_count $C)
  check "$C: commands while the wheel is not there add no entry (pyctl status, history)" \
    test "$n" = "$(($(cat "$S/$C.count") + 1))"
  as $C "cp $WH/pyctltest_late-1.0-cp313-*.whl ~/wheels/"
  t0=$(now)
  out=$(as $C "pip list --format=freeze" 2>"$S/$C.err") || { cat "$S/$C.err" >&2; fail "$C: pip list after the wheel came"; }
  echo "MEASURE: $C: the command that finishes it (pip list): $(since "$t0") s"
  sed "s/^/  $C stderr: /" "$S/$C.err"
  check "$C: the next command lists pyctltest_late again" sh -c 'echo "$1" | grep -qix "pyctltest.late==1.0"' _ "$out"
  rb=$(newest_rebuild $C)
  echo "$C's newest rebuild entry: $rb"
  IFS='|' read -r id from to store pip missing cmd <<<"$rb"
  check "$C: ... recorded as one more rebuild entry, pyctltest_late by pip ($pip), nothing missing" \
    sh -c 'case "$1/$2/$3" in "$4"/pyctltest?late==1.0/) exit 0 ;; *) exit 1 ;; esac' _ "$id" "$pip" "$missing" "$((n + 1))"
  echo "MEASURE: $C: finishing entry (before to after record): $(entry_seconds "$t" "$id") s"
  check "$C: the same set as before the upgrade" test "$(own_set $C)" = "$(cat "$S/$C.set")"
  check "$C: python3 -c 'import pyctltest_late' (cp313) with $t/venv/bin first on PATH" \
    as $C "PATH=$t/venv/bin:\$PATH python3 -c 'import pyctltest_late as m; assert m.answer() == 42; assert \"cpython-313\" in m.pyctltest_late.__file__'"
  check "$C: pyctl status finds no problem" sh -c "su - $C -c 'pyctl status' | grep -qx 'problems  none'"
  check "$C: the tier is still $C's alone" test -z "$(find "$t" ! -user $C -print)"
  as $C "pyctl history" | sed "s/^/  $C history: /"
}

case "${1:-}" in
  before) phase_before ;;
  upgrade) phase_upgrade ;;
  system) phase_system ;;
  users) phase_users ;;
  *)
    echo "usage: python-upgrade.sh before|upgrade|system|users" >&2
    exit 2
    ;;
esac
