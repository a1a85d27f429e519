#!/usr/bin/env bash
# pyctl's scenario tests inside a Debian image, one phase per Dockerfile RUN step:
#   wheels install user-tiers system-tier ansible project-venv hooks privilege measure upgrade remove purge
# Runs as root; the accounts pyctl-a (A, may sudo) and pyctl-b (B) exist (the Dockerfile makes
# them). Each check prints PASS or FAIL; the first FAIL ends the step, and so the build.
set -euo pipefail

A=pyctl-a
B=pyctl-b
T=/pyctl-test
W=$T/wheels
TIER=.local/python-packages
SYS=/opt/system-python

pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# check WHAT COMMAND...: the command must succeed.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# refuse WHAT COMMAND...: the command must fail.
refuse() {
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then fail "$what (it succeeded)"; else pass "$what"; fi
}
# as USER CMD: in a login shell (profile.d applies). as_sh USER CMD: in a plain `sh -c`.
as() { su - "$1" -c "$2"; }
as_sh() { su "$1" -s /bin/sh -c "cd && $2"; }
home_of() { getent passwd "$1" | cut -d: -f6; }
site_of() { echo "$1"/lib/python3*/site-packages; }
has_pkg() { [ -d "$(site_of "$1")/$2" ]; }
minor() { python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
history_count() { as "$1" 'pyctl history --json' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
system_history_count() { pyctl history --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
wheel() { echo "$W/$1-1.0-py3-none-any.whl"; }
# Whether python3-pip ships PATH. (No `grep -q` after a pipe under pipefail: grep leaving early
# makes the writer die of SIGPIPE and the pipeline fail.)
distro_ships() { dpkg -L python3-pip | grep -x "$1" >/dev/null; }
pyctl_diversions() { dpkg-divert --list | awk '$NF == "pyctl" { print $3 }' | sort; }
# The distro's PEP 668 markers, /usr/lib/python3.X/EXTERNALLY-MANAGED, one a line: phase_wheels
# hashed them into $EM_SUMS before pyctl was installed (none on Debian 11).
EM_SUMS=$T/externally-managed.sha256
em_markers() { awk '{ print $2 }' "$EM_SUMS"; }
# The interpreter a marker belongs to: /usr/lib/python3.11/EXTERNALLY-MANAGED -> /usr/bin/python3.11.
em_python() { echo "/usr/bin/$(basename "$(dirname "$1")")"; }
em_skip() { echo "SKIP: no /usr/lib/python3.*/EXTERNALLY-MANAGED on Debian $(cat /etc/debian_version) (no PEP 668 marker): $1"; }
# After remove or purge: each marker is the distro's again, byte for byte, with no diversion left,
# and the distro's pip is refused with the distro's own words.
em_given_back() {
  local em py out
  if [ ! -s "$EM_SUMS" ]; then
    em_skip "nothing to give back"
    check "no EXTERNALLY-MANAGED appeared" test -z "$(ls /usr/lib/python3.*/EXTERNALLY-MANAGED* 2>/dev/null)"
    return 0
  fi
  for em in $(em_markers); do
    check "$em is the distro's again (sha256 as before pyctl)" grep -qxF "$(sha256sum "$em" 2>/dev/null)" "$EM_SUMS"
    check "no $em.distrib left" test ! -e "$em.distrib"
    check "no diversion of $em left" test -z "$(dpkg-divert --list "$em")"
    py=$(em_python "$em")
    if out=$(as_sh $A "$py -m pip install --no-index $(wheel demo_new) 2>&1"); then
      fail "A: $py -m pip install went through without pyctl: $out"
    fi
    check "A: $py -m pip install refused: externally-managed-environment" contains "$out" externally-managed-environment
    check "A: ... in the distro's words, not pyctl's" sh -c 'case "$1" in *"(pyctl:"*) exit 1 ;; esac' _ "$out"
  done
}

# A wheel made by hand (no network, no build backend): one module and its dist-info.
# make_wheel NAME [VERSION [META_NAME [META_VERSION]]] (default 1.0; METADATA says NAME and
# VERSION unless META_* spell them otherwise, as in `zope_interface-1.0.dist-info` holding
# `Name: zope.interface`).
make_wheel() {
  python3 - "$W" "$1" "${2:-1.0}" "${3:-$1}" "${4:-${2:-1.0}}" <<'EOF'
import base64, hashlib, sys, zipfile
out, name, version, meta_name, meta_version = sys.argv[1:6]
dist = f"{name}-{version}.dist-info"
files = {
    f"{name.lower()}/__init__.py": f"NAME = {meta_name!r}\n",
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {meta_name}\nVersion: {meta_version}\n\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: pyctl-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = "".join(f"{p},{digest(c.encode())},{len(c.encode())}\n" for p, c in files.items())
record += f"{dist}/RECORD,,\n"
with zipfile.ZipFile(f"{out}/{name}-{version}-py3-none-any.whl", "w") as z:
    for p, c in files.items():
        z.writestr(p, c)
    z.writestr(f"{dist}/RECORD", record)
EOF
}

phase_wheels() {
  mkdir -p "$W"
  for n in demo_login demo_sh demo_root demo_sudo demo_proj demo_pass demo_new demo_bench demo_habit demo_ansible; do
    make_wheel "$n"
  done
  # A requests far from any Debian's, for the apt hook's conflict.
  make_wheel requests 0.0.1
  # Folder and METADATA spelling the name (and vmis the version) differently: pip 20.3 spells
  # them from the folder, newer pips from METADATA (issue 18).
  make_wheel zope_interface 1.0 zope.interface
  make_wheel typing_extensions 4.16.0
  make_wheel Foo_Bar 2.0 foo-bar
  make_wheel ruamel.yaml 0.18.6
  make_wheel jaraco_functools 4.0.1 Jaraco.Functools
  make_wheel vmis 1.0.0 vmis 1.0
  chmod -R a+rX "$T"
  pass "test wheels built: $(ls "$W" | wc -l)"
  # The distro's PEP 668 markers before pyctl comes (issue 13): remove and purge compare.
  local em
  : >"$EM_SUMS"
  for em in /usr/lib/python3.*/EXTERNALLY-MANAGED; do
    if [ -f "$em" ]; then sha256sum "$em" >>"$EM_SUMS"; fi
  done
  if [ -s "$EM_SUMS" ]; then
    pass "the distro's PEP 668 markers hashed: $(em_markers | tr '\n' ' ')"
  else
    em_skip "nothing to hash"
  fi
}

phase_install() {
  local m
  m=$(minor)
  echo "Debian $(cat /etc/debian_version), Python $(python3 --version | cut -d' ' -f2)"
  check "apt installs the .deb" apt-get install -y -qq "$T/debs/pyctl.deb"
  for p in pip pip3 "pip$m"; do
    check "/usr/bin/$p is the wrapper" test "$(readlink "/usr/bin/$p")" = /usr/bin/pyctl
    check "dpkg-divert --list shows /usr/bin/$p diverted by pyctl" \
      sh -c "dpkg-divert --list | grep -qx 'diversion of /usr/bin/$p to /usr/bin/$p.distrib by pyctl'"
  done
  for p in pip pip3 "pip$m"; do
    if distro_ships "/usr/bin/$p"; then
      check "/usr/bin/$p.distrib is the distro's pip" \
        sh -c "/usr/bin/$p.distrib --version | grep -q 'python $m'"
    fi
  done
  for p in pip pip3 "pip$m"; do
    check "shim /usr/lib/pyctl/shims/$p" test "$(readlink "/usr/lib/pyctl/shims/$p")" = /usr/bin/pyctl
  done
  check "postinst provisioned the system tier (pyctl system status)" pyctl system status
  check "system tier is root's, nothing group/world-writable" \
    test -z "$(find "$SYS" \( ! -user root -o ! -group root -o \( ! -type l -perm /022 \) \) -print)"
  check "system tier lock is 0600" test "$(stat -c %a "$SYS/.lock")" = 600
  check "root's pip is the system tier's" sh -c "pip --version | grep -q '$SYS/venv'"
  check "man page installed" sh -c 'man -w pyctl >/dev/null && man -w pyctl-system-init >/dev/null'
  check "completions installed" test -f /usr/share/bash-completion/completions/pyctl \
    -a -f /usr/share/zsh/vendor-completions/_pyctl -a -f /usr/share/fish/vendor_completions.d/pyctl.fish
  check "/etc/pyctl/config.toml is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' pyctl | grep -q /etc/pyctl/config.toml"

  # PEP 668 (issue 13): each python3.X's marker is pyctl's, the distro's diverted aside;
  # `python3.X -m pip` is still the distro's pip, refused, and its error names pyctl's way.
  local em py out ha
  ha=$(home_of $A)
  if [ ! -s "$EM_SUMS" ]; then
    em_skip "marker checks skipped"
    check "preinst wrote no EXTERNALLY-MANAGED" test -z "$(ls /usr/lib/python3.*/EXTERNALLY-MANAGED* 2>/dev/null)"
  fi
  for em in $(em_markers); do
    check "$em is pyctl's" sh -c "head -n 1 '$em' | grep -q '^# Written by pyctl' && grep -qx '\[externally-managed\]' '$em'"
    check "dpkg-divert --list shows $em diverted by pyctl" \
      sh -c "dpkg-divert --list | grep -qx 'diversion of $em to $em.distrib by pyctl'"
    check "$em.distrib is the distro's file (same sha256)" \
      test "$(sha256sum <"$em.distrib")" = "$(grep -F "  $em" "$EM_SUMS" | cut -d' ' -f1)  -"
    py=$(em_python "$em")
    if out=$(as_sh $A "$py -m pip install --no-index $(wheel demo_login) 2>&1"); then
      fail "A: $py -m pip install went through: $out"
    fi
    echo "$out" | sed 's/^/  pip: /'
    check "A: $py -m pip install refused: externally-managed-environment" contains "$out" externally-managed-environment
    check "A: ... and the error names pyctl's pip install" contains "$out" "pip install xyz (pyctl: your own tier"
    check "A: ... and never reached pyctl (no tier made)" test ! -e "$ha/$TIER"
  done
}

phase_user_tiers() {
  local ha hb out
  ha=$(home_of $A)
  hb=$(home_of $B)
  check "A's login shell finds pip in the shims" test "$(as $A 'command -v pip')" = /usr/lib/pyctl/shims/pip
  check "A's login PATH puts the tier's venv/bin before /usr/bin" \
    sh -c "su - $A -c 'echo \$PATH' | grep -q '^/usr/lib/pyctl/shims:$ha/$TIER/venv/bin:'"
  out=$(as $A "pip install --no-index $(wheel demo_login) 2>&1") || fail "A: pip install in a login shell: $out"
  case "$out" in *externally-managed*) fail "A got a PEP 668 error: $out" ;; esac
  check "A (login shell): the wheel landed in A's tier" has_pkg "$ha/$TIER/venv" demo_login
  out=$(as_sh $A "pip install --no-index $(wheel demo_sh) 2>&1") || fail "A: pip install in sh -c: $out"
  check "A (plain sh -c): the wheel landed in A's tier" has_pkg "$ha/$TIER/venv" demo_sh
  check "A's tier is A's alone" test -z "$(find "$ha/$TIER" ! -user $A -print)"
  # A's tier was made without ensurepip (issue 15): pip unpacked from this Python's wheels, its
  # bytecode copied from the system tier's pip (the same files), and still valid after A's pip
  # ran (Python rewrote none of it: nothing under pip/ is newer than the RECORD written last).
  local asite ssite tag
  asite=$(site_of "$ha/$TIER/venv")
  ssite=$(site_of "$SYS/venv")
  tag=cpython-$(minor | tr -d .)
  check "A's tier has the system tier's bytecode for pip" \
    cmp "$ssite/pip/__pycache__/__init__.$tag.pyc" "$asite/pip/__pycache__/__init__.$tag.pyc"
  check "A's pip lists its bytecode in RECORD (no hash, as pip lists it)" \
    grep -q "^pip/__pycache__/__init__.$tag.pyc,," "$asite"/pip-*.dist-info/RECORD
  check "no bytecode of A's pip was rewritten by its runs" \
    test -z "$(find "$asite/pip" -name '*.pyc' -newer "$(echo "$asite"/pip-*.dist-info/RECORD)" -print)"
  check "A's history: init + 2 installs" test "$(history_count $A)" = 3
  check "B's pip lists none of A's packages" sh -c "! su - $B -c 'pip list --format=freeze' | grep -qi demo"
  check "B's tier holds none of A's packages" sh -c "! ls $(site_of "$hb/$TIER/venv") | grep -q demo"
  check "B's history: only its init" test "$(history_count $B)" = 1
  check "A's tier is private (0700) and its lock A's alone (0600)" \
    test "$(stat -c %a "$ha/$TIER")/$(stat -c %a "$ha/$TIER/.lock")" = 700/600
  refuse "B cannot open A's tier lock" as_sh $B "exec 3<$ha/$TIER/.lock"

  # Old habits (issue 17), with this release's pip: --user, PIP_USER=1, user = true in pip.conf.
  out=$(as $A "pip install --user --no-index $(wheel demo_habit) 2>&1") || fail "A: pip install --user: $out"
  check "pip install --user: the option was dropped, with one line" contains "$out" "--user is not needed and was dropped"
  check "pip install --user landed in A's tier" has_pkg "$ha/$TIER/venv" demo_habit
  out=$(as $A "pip list --user --format=freeze 2>&1") || fail "A: pip list --user: $out"
  check "pip list --user lists the tier" matches "$out" '^demo.habit=='
  out=$(as $A "pip uninstall --user -y demo_habit 2>&1") || fail "A: pip uninstall --user: $out"
  check "pip uninstall --user took it out" test ! -d "$(site_of "$ha/$TIER/venv")/demo_habit"
  out=$(as $A "PIP_USER=1 pip install --no-index $(wheel demo_habit) 2>&1") || fail "A: PIP_USER=1 pip install: $out"
  check "PIP_USER=1: installed, with one line" contains "$out" "PIP_USER in the environment is ignored"
  as $A "pip uninstall -q -y demo_habit" || fail "A: pip uninstall demo_habit"
  as $A "mkdir -p ~/.config/pip && printf '[install]\nuser = true\n' > ~/.config/pip/pip.conf"
  out=$(as $A "pip install --no-index $(wheel demo_habit) 2>&1") || fail "A: pip install with user = true: $out"
  check "user = true in pip.conf: installed, with one line" contains "$out" "user = true"
  check "... into A's tier" has_pkg "$ha/$TIER/venv" demo_habit
  out=$(as $A "pip config list 2>&1") || true
  check "pip config list still shows the file's user = true ($out)" contains "$out" "install.user='true'"
  as $A "pip uninstall -q -y demo_habit && rm ~/.config/pip/pip.conf" || fail "A: clean up demo_habit"
  # `pyctl freeze` is the tier's own `pip freeze --all` (this release's pip) for names spelled
  # differently in the folder and in METADATA.
  out=$(as $B "pip install --no-index --find-links $W zope.interface typing_extensions foo-bar ruamel.yaml jaraco.functools vmis 2>&1") ||
    fail "B: pip install of the spelled wheels: $out"
  local ours pips
  ours=$(as $B 'pyctl freeze')
  pips=$(as $B "$hb/$TIER/venv/bin/python -m pip freeze --all")
  echo "$pips" | sed 's/^/  pip freeze --all: /'
  check "B: pyctl freeze is the tier's pip freeze --all, line for line" test "$ours" = "$pips"
}

# Reads syslog datagrams into a file while the build step runs: on /dev/log, or, where /dev is
# read-only (podman's chroot isolation binds the host's /dev read-only), on /run/syslog, the
# next socket pyctl's syslog client tries.
start_syslog() {
  rm -f "$T/syslog.txt"
  for SYSLOG_SOCKET in /dev/log /run/syslog; do
    rm -f "$SYSLOG_SOCKET" 2>/dev/null || true
    python3 - "$SYSLOG_SOCKET" "$T/syslog.txt" 2>/dev/null <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
EOF
    SYSLOG_PID=$!
    for _ in $(seq 30); do
      [ -S "$SYSLOG_SOCKET" ] && { echo "syslog listener on $SYSLOG_SOCKET"; return 0; }
      kill -0 "$SYSLOG_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$SYSLOG_PID" 2>/dev/null || true
  done
  return 1
}

phase_system_tier() {
  local ha before after cfg
  ha=$(home_of $A)
  cfg=$(sha256sum "$SYS/venv/pyvenv.cfg")
  refuse "A cannot create a file in $SYS" as_sh $A "touch $SYS/intruder"
  refuse "A cannot create a file in the system venv's site-packages" as_sh $A "touch $(site_of $SYS/venv)/evil.pth"
  refuse "A cannot make a folder in the system venv" as_sh $A "mkdir $SYS/venv/evil"
  refuse "A cannot modify $SYS/venv/pyvenv.cfg" as_sh $A "echo x >> $SYS/venv/pyvenv.cfg"
  refuse "A cannot delete $SYS/venv/pyvenv.cfg" as_sh $A "rm -f $SYS/venv/pyvenv.cfg"
  refuse "A cannot chmod $SYS/venv" as_sh $A "chmod 777 $SYS/venv"
  refuse "A cannot chmod a system-tier file" as_sh $A "chmod 666 $SYS/venv/pyvenv.cfg"
  refuse "A cannot take the system tier lock" as_sh $A "exec 3>>$SYS/.lock"
  refuse "A cannot pip through the system venv's shim" as_sh $A "$SYS/venv/bin/pip install --no-index $(wheel demo_login)"
  refuse "A cannot run pyctl system init" as_sh $A "pyctl system init"
  check "the system tier is unchanged" test "$(sha256sum "$SYS/venv/pyvenv.cfg")" = "$cfg"
  check "nothing of A's under $SYS" test -z "$(find "$SYS" ! -user root -print)"

  local have_syslog=0
  if start_syslog; then have_syslog=1; else echo "SKIP: cannot listen on /dev/log or /run/syslog here; syslog not checked"; fi
  check "root: pip install" pip install --no-index "$(wheel demo_root)"
  check "root's install landed in the system tier" has_pkg "$SYS/venv" demo_root
  check "root has no user tier" test ! -e /root/$TIER
  before=$(as $A 'pyctl freeze')
  check "A: sudo pip install" as $A "sudo pip install --no-index $(wheel demo_sudo)"
  check "sudo's install landed in the system tier" has_pkg "$SYS/venv" demo_sudo
  after=$(as $A 'pyctl freeze')
  check "sudo pip left A's tier alone" test "$before" = "$after"
  check "A's tier has no root-owned file" test -z "$(find "$ha/$TIER" ! -user $A -print)"
  check "the system history names the sudo caller" \
    sh -c "grep -l '\"sudo_user\": \"$A\"' $SYS/history/*_after.json | grep -q ."
  if [ "$have_syslog" = 1 ]; then
    sleep 0.3
    kill "$SYSLOG_PID" 2>/dev/null || true
    check "syslog got pyctl's line for root's install" grep -q 'pyctl.*demo.root' "$T/syslog.txt"
    check "syslog names SUDO_USER for sudo's install" grep -q "SUDO_USER=$A.*demo.sudo" "$T/syslog.txt"
    rm -f "$SYSLOG_SOCKET"
  fi
  check "system tier still root's and not group/world-writable" \
    test -z "$(find "$SYS" \( ! -user root -o \( ! -type l -perm /022 \) \) -print)"
  check "pyctl system status is clean" pyctl system status
}

# Configuration management (issue 13): Debian's ansible-core, a play run locally. Its pip module
# runs `/usr/bin/python3 -m pip.__main__` (2.14; 2.19: `-m pip`) unless told which pip to run:
# the distro's pip, which PEP 668 refuses. With `executable: pip3` it runs /usr/bin/pip3, pyctl's
# wrapper: root's tasks go to the system tier, a `become_user` task to that user's tier, recorded.
# The rows of a tier's history from the newest: kind|user|exit|added|removed|modified|command.
history_rows() {
  python3 -c '
import json, sys
for r in json.load(sys.stdin):
    c = r.get("changes") or {}
    mod = ",".join(m["name"] for m in c.get("modified", []))
    print("|".join([r["kind"], r["user"], str(r["exit_code"]), ",".join(c.get("added", [])),
                    ",".join(c.get("removed", [])), mod, r["command"]]))'
}
# What the play registered for TASK, as one JSON value (a list joined by spaces, as the pip
# module's `cmd` is in ansible-core 2.14): ansible_result TASK KEY.
ansible_result() {
  python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]].get(sys.argv[3]); print(" ".join(v) if isinstance(v, list) else json.dumps(v))' \
    "$T/ansible/results.json" "$1" "$2"
}
phase_ansible() {
  if ! command -v ansible-playbook >/dev/null; then
    echo "SKIP: ansible: Debian $(cat /etc/debian_version) has no ansible-core package (its ansible" \
      "2.10 is the whole collection bundle, and its Python has no PEP 668 marker), so the" \
      "Dockerfile installed none"
    return 0
  fi
  local start=$SECONDS ha ns na sys_rows a_rows out em
  ha=$(home_of $A)
  echo "$(ansible-playbook --version | head -n 1), python3-pip $(dpkg-query -W -f='${Version}' python3-pip)"
  mkdir -p "$T/ansible"
  cat >"$T/ansible/play.yml" <<'YAMLEOF'
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    offline: --no-index --find-links /pyctl-test/wheels
  tasks:
    - name: root, no executable (the module runs python3 -m pip)
      ansible.builtin.pip: { name: demo_ansible, extra_args: "{{ offline }}" }
      register: bare
      ignore_errors: true
    - name: root, install
      ansible.builtin.pip: { name: demo_ansible, executable: pip3, extra_args: "{{ offline }}" }
      register: root_install
    - name: root, install again
      ansible.builtin.pip: { name: demo_ansible, executable: pip3, extra_args: "{{ offline }}" }
      register: root_again
    - name: root, remove
      ansible.builtin.pip: { name: demo_ansible, executable: pip3, state: absent }
      register: root_remove
    - name: pyctl-a (become_user), install
      ansible.builtin.pip: { name: demo_ansible, executable: pip3, extra_args: "{{ offline }}" }
      become: true
      become_user: pyctl-a
      register: a_install
    - name: pyctl-a (become_user), install again
      ansible.builtin.pip: { name: demo_ansible, executable: pip3, extra_args: "{{ offline }}" }
      become: true
      become_user: pyctl-a
      register: a_again
    - name: pyctl-a (become_user), remove
      ansible.builtin.pip: { name: demo_ansible, executable: pip3, state: absent }
      become: true
      become_user: pyctl-a
      register: a_remove
    - name: keep what the module reported
      ansible.builtin.copy:
        dest: /pyctl-test/ansible/results.json
        content: >-
          {{ {'bare': bare, 'root_install': root_install, 'root_again': root_again,
              'root_remove': root_remove, 'a_install': a_install, 'a_again': a_again,
              'a_remove': a_remove} | to_nice_json }}
YAMLEOF
  ns=$(system_history_count)
  na=$(history_count $A)
  local t0=$SECONDS
  # Pipelining: modules reach Python on standard input, so become_user needs no shared temp files.
  if ! out=$(ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=0 \
    ansible-playbook -i localhost, -e ansible_python_interpreter=/usr/bin/python3 \
    "$T/ansible/play.yml" 2>&1); then
    echo "$out" >&2
    fail "ansible-playbook failed"
  fi
  local t_play=$((SECONDS - t0))
  echo "$out" | grep -E '^(TASK|changed|ok|fatal|failed|localhost|\.\.\.ignoring)' | sed 's/^/  ansible: /'
  check "the play: ok=8 changed=5 failed=0 ignored=1" \
    matches "$out" 'localhost +: ok=8 +changed=5 +unreachable=0 +failed=0 +skipped=0 +rescued=0 +ignored=1'

  # Without `executable`: the distro's pip, refused, in pyctl's words; nothing reached a tier.
  if [ -s "$EM_SUMS" ]; then
    out=$(ansible_result bare cmd)
    check "no executable: the module ran the distro's python3 -m pip ($out)" \
      matches "$out" '^/usr/bin/python3 -m pip(\.__main__)? install '
    out=$(ansible_result bare msg)
    check "no executable: the module failed" test "$(ansible_result bare failed)" = true
    check "... with externally-managed-environment" contains "$out" externally-managed-environment
    check "... naming pyctl's pip install" contains "$out" "pip install xyz (pyctl: your own tier"
  else
    em_skip "the bare pip module's PEP 668 refusal not checked"
  fi
  check "... and nothing installed anywhere by it" \
    test -z "$(ls -d /usr/lib/python3/dist-packages/demo_ansible /usr/local/lib/python3*/dist-packages/demo_ansible 2>/dev/null)"

  # With `executable: pip3`: changed, unchanged, changed, and ran /usr/bin/pip3 (the wrapper).
  check "root: the module ran pip3 ($(ansible_result root_install cmd))" \
    matches "$(ansible_result root_install cmd)" '^"?(/usr/bin/)?pip3 install '
  check "root: install changed=true" test "$(ansible_result root_install changed)" = true
  check "root: install again changed=false (idempotent)" test "$(ansible_result root_again changed)" = false
  check "root: remove changed=true" test "$(ansible_result root_remove changed)" = true
  check "pyctl-a: install changed=true" test "$(ansible_result a_install changed)" = true
  check "pyctl-a: install again changed=false (idempotent)" test "$(ansible_result a_again changed)" = false
  check "pyctl-a: remove changed=true" test "$(ansible_result a_remove changed)" = true

  # Recorded: three entries in the system tier (root's) and three in A's tier (A's), none elsewhere.
  check "system history grew by 3 (install, re-run, remove; the refused run added none)" \
    test "$(system_history_count)" = "$((ns + 3))"
  check "A's history grew by 3" test "$(history_count $A)" = "$((na + 3))"
  sys_rows=$(pyctl history --json -n 3 | history_rows)
  a_rows=$(as $A 'pyctl history --json -n 3' | history_rows)
  echo "$sys_rows" | sed 's/^/  system history: /'
  echo "$a_rows" | sed 's/^/  A history: /'
  local who rows
  for who in root $A; do
    if [ "$who" = root ]; then rows=$sys_rows; else rows=$a_rows; fi
    check "$who: the install recorded as $who, demo_ansible added" \
      matches "$(sed -n 3p <<<"$rows")" "^pip\|$who\|0\|demo_ansible==1\.0\|\|\|.*install .*demo_ansible"
    check "$who: the re-run recorded as $who, no changes" \
      matches "$(sed -n 2p <<<"$rows")" "^pip\|$who\|0\|\|\|\|.*install .*demo_ansible"
    check "$who: the removal recorded as $who, demo_ansible removed" \
      matches "$(sed -n 1p <<<"$rows")" "^pip\|$who\|0\|\|demo_ansible==1\.0\|\|.*uninstall .*demo_ansible"
  done
  check "the system tier's records name no sudo caller (root ran the play)" \
    sh -c "! grep -l '\"sudo_user\"' \$(ls -t $SYS/history/*_after.json | head -n 3)"
  check "demo_ansible gone from the system tier" test ! -e "$(site_of $SYS/venv)/demo_ansible"
  check "demo_ansible gone from A's tier" test ! -e "$(site_of "$ha/$TIER/venv")/demo_ansible"
  check "A's tier has no root-owned file" test -z "$(find "$ha/$TIER" ! -user $A -print)"
  check "pyctl system status is clean" pyctl system status
  echo "MEASURE: ansible phase $((SECONDS - start)) s (ansible-playbook, 8 tasks: $t_play s)"
}

phase_project_venv() {
  local ha n
  ha=$(home_of $A)
  n=$(history_count $A)
  check "A makes a project venv" as $A 'python3 -m venv ~/proj'
  check "A: activated project venv takes pip" \
    as $A ". ~/proj/bin/activate && pip install --no-index $(wheel demo_proj)"
  check "the package landed in the project venv" has_pkg "$ha/proj" demo_proj
  check "and not in A's tier" sh -c "! ls $(site_of "$ha/$TIER/venv") | grep -q demo_proj"
  check "A: VIRTUAL_ENV through the wrapper (/usr/bin/pip) passes through" \
    as $A "VIRTUAL_ENV=\$HOME/proj /usr/bin/pip install --no-index $(wheel demo_pass)"
  check "the pass-through package landed in the project venv" has_pkg "$ha/proj" demo_pass
  check "nothing recorded for the project venv" test "$(history_count $A)" = "$n"
}

# The apt hook (issue 5): the system venv holds requests 0.0.1; Debian's python3-requests is
# another version. Refused with hooks.on_conflict = "block", reported and let through with the
# default "warn"; a transaction without Python packages hears nothing from pyctl.
phase_hooks() {
  local cfg=/etc/pyctl/config.toml out
  check "root: requests 0.0.1 into the system tier" \
    pip install -q --no-index "$W/requests-0.0.1-py3-none-any.whl"
  cp "$cfg" "$T/config.toml.orig"
  sed -i 's/^on_conflict = .*/on_conflict = "block"/' "$cfg"
  check "pyctl config reads block from $cfg" test "$(pyctl config hooks.on_conflict)" = block
  apt-get update -qq
  if out=$(apt-get install -y -q python3-requests 2>&1); then
    fail "block: apt-get install python3-requests went through: $out"
  fi
  echo "$out" | grep -E 'pyctl|hook' | sed 's/^/  apt: /'
  case "$out" in *"python3-requests ships requests"*"system venv has requests 0.0.1"*) pass "block: apt printed the conflict" ;;
    *) fail "block: no conflict line in apt's output: $out" ;; esac
  case "$out" in *"refusing the transaction"*) pass "block: apt printed the refusal" ;;
    *) fail "block: no refusal in apt's output: $out" ;; esac
  check "block: python3-requests is not installed" \
    sh -c "! dpkg-query -W -f='\${Status}' python3-requests 2>/dev/null | grep -q 'ok installed'"
  cp "$T/config.toml.orig" "$cfg"
  out=$(apt-get install -y -q python3-requests 2>&1) || fail "warn: apt-get install python3-requests failed: $out"
  case "$out" in *"python3-requests ships requests"*"system venv has requests 0.0.1"*) pass "warn: apt printed the conflict and went on" ;;
    *) fail "warn: no conflict line in apt's output: $out" ;; esac
  check "warn: python3-requests is installed" \
    sh -c "dpkg-query -W -f='\${Status}' python3-requests | grep -q 'ok installed'"
  out=$(apt-get install -y -q --no-install-recommends bzip2 2>&1) || fail "apt-get install bzip2: $out"
  case "$out" in *pyctl*) fail "a transaction without Python packages got pyctl output: $out" ;;
    *) pass "a transaction without Python packages: no output from pyctl" ;; esac
  check "root: requests out of the system tier again" pip uninstall -q -y requests
}

# Issue 7's privilege checks with the installed .deb, real sudo and the real system tier.
# E: A's folder of hostile things; each leaves a line in MARKER if anything runs it.
E_NAME=evil
MARKER_NAME=evil-ran

# contains TEXT PART: TEXT has PART. has_line TEXT LINE: one of TEXT's lines is LINE. matches TEXT
# REGEX: a line of TEXT matches (grep -E). Here-strings, not pipes: `grep -q` leaving a pipe early
# fails the pipeline under pipefail.
contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }
has_line() { grep -qxF -- "$2" <<<"$1"; }
matches() { grep -qE -- "$2" <<<"$1"; }

# Lines naming every file under DIR with owner, group, mode, size and mtime.
tree_listing() { find "$1" -printf '%p %u %g %m %s %T@\n' | sort; }
# The system venv's pip scripts: name and sha256, one a line.
sys_pip_scripts() { (cd "$SYS/venv/bin" && sha256sum pip*); }

# Writes A's hostile environment: ~/evil with a `pip` package, sitecustomize, usercustomize and
# a startup file (Python that leaves a marker), a fake venv whose bin/python and bin/pip leave a
# marker, bin/ with dpkg-deb, tar, rm, python3, ... that leave a marker, pip.conf files naming
# places in ~/evil, and ~/evil/env.sh exporting PYCTL_*, VIRTUAL_ENV, XDG_*, PIP_*,
# PYTHON* and TMPDIR pointing into ~/evil, and a PATH that starts with ~/evil/bin.
make_hostile_env() {
  local ha=$1 e=$1/$E_NAME marker=$1/$MARKER_NAME tool f
  rm -rf "$e" "$marker"
  mkdir -p "$e"/{pkgs/pip,cfg/pip,xdg/pip,venv/bin,bin,sysprefix,pyctl-home,tmp} "$ha/.config/pip" "$ha/.pip"
  for f in pkgs/pip/__init__.py pkgs/pip/__main__.py pkgs/sitecustomize.py pkgs/usercustomize.py startup.py; do
    echo "open('$marker', 'a').write('python: $f\n')" >"$e/$f"
  done
  for tool in dpkg-deb dpkg-query tar rm python3 python "python$(minor)" pip pip3 cat gzip xz zstd; do
    printf '#!/bin/sh\necho "%s uid=$(id -u) $*" >> %s\nexit 1\n' "$tool" "$marker" >"$e/bin/$tool"
  done
  for f in python python3 pip; do
    printf '#!/bin/sh\necho "venv/bin/%s uid=$(id -u)" >> %s\nexit 1\n' "$f" "$marker" >"$e/venv/bin/$f"
  done
  chmod 755 "$e"/bin/* "$e"/venv/bin/*
  echo "home = $e/bin" >"$e/venv/pyvenv.cfg"
  for f in "$ha/.config/pip/pip.conf" "$ha/.pip/pip.conf" "$e/cfg/pip/pip.conf" "$e/xdg/pip/pip.conf" "$e/pip.conf"; do
    printf '[global]\nlog = %s\ncache-dir = %s\nsrc = %s\n[install]\ntarget = %s\nprefix = %s\n' \
      "$e/conf.log" "$e/conf-cache" "$e/conf-src" "$e/conf-target" "$e/conf-prefix" >"$f"
  done
  cat >"$e/env.sh" <<EOF
export PYCTL_HOME=$e/pyctl-home
export PYCTL_SYSTEM_PREFIX=$e/sysprefix
export PYCTL_PYTHON=$e/venv/bin/python
export VIRTUAL_ENV=$e/venv
export XDG_CONFIG_HOME=$e/cfg XDG_CONFIG_DIRS=$e/xdg XDG_CACHE_HOME=$e/cache XDG_DATA_HOME=$e/data
export PIP_CONFIG_FILE=$e/pip.conf
export PIP_TARGET=$e/target PIP_PREFIX=$e/prefix PIP_ROOT=$e/root PIP_USER=1
export PIP_LOG=$e/pip.log PIP_LOG_FILE=$e/pip-file.log PIP_CACHE_DIR=$e/pipcache
export PIP_SRC=$e/src PIP_REPORT=$e/report.json PIP_NO_INPUT=1
export PYTHONPATH=$e/pkgs PYTHONSTARTUP=$e/startup.py PYTHONUSERBASE=$e/userbase
export PYTHONHOME=$e PYTHONPYCACHEPREFIX=$e/pycache
export TMPDIR=$e/tmp
export PATH=$e/bin:\$PATH
export PIP_PYTHON=$e/venv/bin/python PIP_FIND_LINKS=$e/links PIP_NO_INDEX=1 PYCTL_ACTIVE=$e/venv
export CC=$e/bin/cc GIT_SSH_COMMAND=$e/bin/cc
EOF
  # An sdist in the caller's find-links whose in-tree build backend leaves a mark when built.
  mkdir -p "$e/links" "$e/sdist/evilpkg-1.0"
  printf '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n' >"$e/sdist/evilpkg-1.0/pyproject.toml"
  echo "open('$marker', 'a').write('sdist backend built as root\n')" >"$e/sdist/evilpkg-1.0/backend.py"
  printf 'Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n' >"$e/sdist/evilpkg-1.0/PKG-INFO"
  tar -C "$e/sdist" -czf "$e/links/evilpkg-1.0.tar.gz" evilpkg-1.0
  printf '#!/bin/sh\necho "cc uid=$(id -u)" >> %s\nexit 1\n' "$marker" >"$e/bin/cc"
  chmod 755 "$e/bin/cc"
  chown -R $A: "$e" "$ha/.config" "$ha/.pip"
}

# as_hostile CMD: CMD in A's login shell with the hostile environment, from ~/evil/pkgs (which
# holds a `pip` package: `python -m pip` would find it first).
as_hostile() { su - $A -c ". ~/$E_NAME/env.sh && cd ~/$E_NAME/pkgs && $1"; }
# root_hostile CMD...: CMD as root with the same environment (nothing stripped by sudo).
root_hostile() {
  (
    # shellcheck disable=SC1090
    . "$(home_of $A)/$E_NAME/env.sh"
    cd "$(home_of $A)/$E_NAME/pkgs"
    HOME=$(home_of $A) SUDO_USER=$A "$@"
  )
}

phase_privilege() {
  local ha e marker m before_home stamp env_seen out deb input newer set_before store_entries v n
  ha=$(home_of $A)
  e=$ha/$E_NAME
  marker=$ha/$MARKER_NAME
  m=$(minor)
  for n in demo_priv_sudo demo_priv_root demo_planted; do make_wheel "$n"; done
  chmod -R a+rX "$W"
  make_hostile_env "$ha"
  # The fixtures have teeth: a root Python without isolation runs the caller's sitecustomize and
  # `pip` package, and a tool found through that PATH is the caller's.
  root_hostile env -u PYTHONHOME /usr/bin/python3 -m pip --version >/dev/null 2>&1 || true
  root_hostile dpkg-deb --version >/dev/null 2>&1 || true
  out=$(cat "$marker" 2>/dev/null || true)
  check "control: unisolated python3 runs the caller's sitecustomize" contains "$out" "python: pkgs/sitecustomize.py"
  check "control: python3 -m pip from that folder runs the caller's pip" contains "$out" "python: pkgs/pip/"
  check "control: dpkg-deb through that PATH is the caller's" contains "$out" "dpkg-deb uid=0"
  rm -rf "$marker" "$e/pycache"
  find "$e" -name __pycache__ -prune -exec rm -rf {} +
  chown -R $A: "$e"
  before_home=$(tree_listing "$ha")
  stamp=$T/privilege.stamp
  touch "$stamp"
  sleep 0.05

  # 1. sudo -E from A. Show (and check) which of the hostile variables reach root.
  env_seen=$(as_hostile 'sudo -E env') || fail "sudo -E env"
  echo "$env_seen" | grep -E '^(HOME|PATH|PYCTL_|VIRTUAL_ENV|XDG_|PIP_|PYTHON|TMPDIR)' | sort | sed 's/^/  sudo -E keeps: /'
  for v in "HOME=$ha" "PYCTL_HOME=$e/pyctl-home" "PYCTL_SYSTEM_PREFIX=$e/sysprefix" "VIRTUAL_ENV=$e/venv" \
    "PIP_TARGET=$e/target" "PIP_CONFIG_FILE=$e/pip.conf" "XDG_CONFIG_HOME=$e/cfg"; do
    check "sudo -E hands root $v (the hostile environment arrives)" has_line "$env_seen" "$v"
  done
  check "sudo -E: root's pip is /usr/bin/pip" test "$(as_hostile 'sudo -E sh -c "command -v pip"')" = /usr/bin/pip
  out=$(as_hostile 'sudo -E pip --version') || fail "sudo -E pip --version: $out"
  check "sudo -E pip --version names the system venv ($out)" contains "$out" " from $SYS/venv/"
  out=$(as_hostile "sudo -E pip install --no-index $(wheel demo_priv_sudo) 2>&1") || fail "sudo -E pip install: $out"
  check "sudo -E pip install landed in the system venv" has_pkg "$SYS/venv" demo_priv_sudo
  check "sudo -E pip install was recorded" contains "$out" recorded
  out=$(as_hostile 'sudo -E pip list --format=freeze') || fail "sudo -E pip list: $out"
  check "sudo -E pip list sees it" matches "$out" '^demo.priv.sudo[ =]'
  check "sudo -E pyctl undo" as_hostile 'sudo -E pyctl undo'
  check "undo took it out of the system venv" test ! -d "$(site_of "$SYS/venv")/demo_priv_sudo"
  check "sudo -E pyctl redo" as_hostile 'sudo -E pyctl redo'
  check "redo put it back" has_pkg "$SYS/venv" demo_priv_sudo
  out=$(as_hostile 'sudo -E pyctl freeze') || fail "sudo -E pyctl freeze: $out"
  check "sudo -E pyctl freeze lists the system tier" matches "$out" '^demo.priv.sudo[ =]'
  check "sudo -E pyctl system status" as_hostile 'sudo -E pyctl system status'
  refuse "sudo -E pip install evilpkg: root takes no find-links, index or interpreter from the caller" \
    as_hostile 'sudo -E pip install --no-index evilpkg'

  # 2. The same as root directly, where sudo strips nothing (PYTHONPATH, PYTHONHOME, PATH).
  check "root (hostile env): /usr/bin/pip install" root_hostile /usr/bin/pip install --no-index "$(wheel demo_priv_root)"
  check "root's install landed in the system venv" has_pkg "$SYS/venv" demo_priv_root
  check "root (hostile env): pyctl undo" root_hostile pyctl undo
  check "undo took it out" test ! -d "$(site_of "$SYS/venv")/demo_priv_root"
  # Without the store entry, redo falls back to pip.
  store_entries=$(find "$SYS/store" -mindepth 1 -maxdepth 1 -name 'demo?priv?root-*')
  check "the store has demo_priv_root's entry" test -n "$store_entries"
  rm -rf $store_entries
  check "root (hostile env): pyctl redo (pip fallback)" root_hostile pyctl redo
  check "redo put it back" has_pkg "$SYS/venv" demo_priv_root
  # `clean` makes a new venv and has `rm` delete the old one; undo brings the set back.
  set_before=$(ls "$(site_of "$SYS/venv")" | grep dist-info)
  check "root (hostile env): pyctl clean" root_hostile pyctl clean
  for _ in $(seq 300); do
    [ -z "$(find "$SYS" -maxdepth 1 -name '.trash-*')" ] && break
    sleep 0.1
  done
  check "the old venv was removed" test -z "$(find "$SYS" -maxdepth 1 -name '.trash-*')"
  check "root (hostile env): pyctl undo after clean" root_hostile pyctl undo
  check "undo after clean brought the same set back" test "$(ls "$(site_of "$SYS/venv")" | grep dist-info)" = "$set_before"
  check "root (hostile env): pyctl system status" root_hostile pyctl system status

  # Written since the stamp, outside the system tier and the places that are root's own or the
  # test's: must be nothing.
  newer=$(find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path "$SYS" \
    -o -path /root -o -path /tmp -o -path /var/tmp -o -path "$T" \) -prune -o -newer "$stamp" -print)
  check "nothing written outside the system tier${newer:+: $newer}" test -z "$newer"

  # 3. The apt hook: a .deb whose dist-info conflicts with the system venv's demo_priv_root 1.0.
  local pkg=$T/debpkg
  rm -rf "$pkg"
  mkdir -p "$pkg/DEBIAN" "$pkg/usr/lib/python3/dist-packages/demo_priv_root-2.0.dist-info"
  printf 'Package: python3-demo-priv-root\nVersion: 2.0\nArchitecture: all\nMaintainer: pyctl tests <t@example.invalid>\nDescription: a conflicting dist-info\n' >"$pkg/DEBIAN/control"
  printf 'Metadata-Version: 2.1\nName: demo_priv_root\nVersion: 2.0\n' >"$pkg/usr/lib/python3/dist-packages/demo_priv_root-2.0.dist-info/METADATA"
  deb=$T/python3-demo-priv-root_2.0_all.deb
  dpkg-deb --root-owner-group --build "$pkg" "$deb" >/dev/null
  input=$(printf 'VERSION 3\nAPT::Architecture=amd64\n\npython3-demo-priv-root - - none < 2.0 all none %s\n' "$deb")
  out=$(echo "$input" | root_hostile pyctl hook apt 2>&1) || fail "root (hostile env, PATH=$e/bin:...): pyctl hook apt failed: $out"
  echo "$out" | sed 's/^/  hook: /'
  case "$out" in *"python3-demo-priv-root ships demo_priv_root 2.0"*"system venv has demo_priv_root 1.0"*)
    pass "root (hostile env): the apt hook reported the conflict (the real dpkg-deb ran)" ;;
    *) fail "root (hostile env): no conflict from the apt hook: $out" ;; esac
  out=$(as_hostile "sudo -E apt-get install -y -q $deb 2>&1") || fail "sudo -E apt-get install: $out"
  case "$out" in *"python3-demo-priv-root ships demo_priv_root 2.0"*) pass "sudo -E apt-get install: the hook reported the conflict" ;;
    *) fail "sudo -E apt-get install: no conflict line: $out" ;; esac
  check "apt-get remove python3-demo-priv-root" apt-get remove -y -qq python3-demo-priv-root

  # What root must not have done with A's things.
  check "no hostile code ran$( [ -e "$marker" ] && echo ": $(cat "$marker")")" test ! -e "$marker"
  check "A's home unchanged (names, owners, modes, sizes, mtimes)" test "$(tree_listing "$ha")" = "$before_home"
  check "nothing in A's home is not A's" test -z "$(find "$ha" ! -user $A -print)"
  check "PYCTL_SYSTEM_PREFIX's folder untouched (empty)" test -z "$(ls -A "$e/sysprefix")"

  # 4. The system tier's lock, history and store are root's alone.
  check "lock, history and store: root's, not group/world-writable" \
    test -z "$(find "$SYS/.lock" "$SYS/history" "$SYS/store" \( ! -user root -o \( ! -type l -perm /022 \) \) -print)"
  local h s sf u
  # -quit, not `| head`: head leaving early kills find with SIGPIPE, which fails under pipefail.
  h=$(find "$SYS/history" -type f -print -quit)
  s=$(find "$SYS/store" -mindepth 1 -maxdepth 1 -type d -print -quit)
  sf=$(find "$s" -type f -print -quit)
  for u in $B $A; do
    refuse "$u cannot open the system lock to write" as_sh $u "exec 3>>$SYS/.lock"
    refuse "$u cannot open the system lock at all (to flock it)" as_sh $u "exec 3<$SYS/.lock"
    refuse "$u cannot add a history entry" as_sh $u "touch $SYS/history/evil.json"
    refuse "$u cannot change a history entry" as_sh $u "echo x >> $h"
    refuse "$u cannot delete a history entry" as_sh $u "rm -f $h"
    refuse "$u cannot add a store entry" as_sh $u "mkdir $SYS/store/evil-1.0-0"
    refuse "$u cannot add to a store entry" as_sh $u "touch $s/evil"
    refuse "$u cannot change a stored file" as_sh $u "echo x >> $sf"
    refuse "$u cannot delete a store entry" as_sh $u "rm -rf $s"
  done
  check "history and store intact" test -f "$h" -a -f "$sf"

  # 5. Root's pip upgrading itself in the system tier: pip rewrites bin/pip*; pyctl puts its
  # shims back, and neither the pyctl binary nor /usr/bin/pip is touched.
  local bin_before shims_before pipwhl div links reinstall p via
  bin_before="$(stat -c '%i %s %Y' /usr/bin/pyctl) $(sha256sum </usr/bin/pyctl)"
  shims_before=$(sys_pip_scripts)
  div=$(pyctl_diversions)
  links=$(for p in pip pip3 "pip$m"; do echo "$p $(readlink "/usr/bin/$p") $(readlink "/usr/lib/pyctl/shims/$p")"; done)
  check "the system venv's pip, pip3, pip$m are pyctl's shims" \
    test "$(cd "$SYS/venv/bin" && for p in pip pip3 "pip$m"; do sed -n 2p "$p" | cut -c1-12; done | sort -u)" = "# pyctl shim"
  pipwhl=$(find /usr/share/python-wheels -maxdepth 1 -name "pip-*.whl" -print -quit 2>/dev/null || true)
  if [ -n "$pipwhl" ]; then
    echo "pip's wheel from the distro: $pipwhl"
    reinstall="install --no-index --find-links /usr/share/python-wheels -U --force-reinstall pip"
  else
    echo "no pip wheel in /usr/share/python-wheels: from PyPI"
    reinstall="install -U --force-reinstall pip"
  fi
  for via in /usr/bin/pip "$SYS/venv/bin/pip3"; do
    # shellcheck disable=SC2086
    out=$($via $reinstall 2>&1) || fail "root: $via $reinstall: $out"
    check "root: $via $reinstall (recorded)" contains "$out" recorded
    check "after $via: the pyctl binary unchanged (inode, size, mtime, sha256)" \
      test "$(stat -c '%i %s %Y' /usr/bin/pyctl) $(sha256sum </usr/bin/pyctl)" = "$bin_before"
    check "after $via: bin/pip, pip3, pip$m are pyctl's shims again (same content)" test "$(sys_pip_scripts)" = "$shims_before"
    for p in pip pip3 "pip$m"; do
      out=$("$SYS/venv/bin/$p" --version 2>&1) || fail "$SYS/venv/bin/$p --version: $out"
      check "after $via: $p --version runs the system venv's pip ($out)" matches "$out" "^pip .* from $SYS/venv/"
    done
    check "after $via: /usr/bin/pip*, the shims folder and the diversions unchanged" \
      test "$(for p in pip pip3 "pip$m"; do echo "$p $(readlink "/usr/bin/$p") $(readlink "/usr/lib/pyctl/shims/$p")"; done)" = "$links" \
      -a "$(pyctl_diversions)" = "$div"
  done
  check "pyctl system status is clean" pyctl system status
  check "system tier still root's and not group/world-writable" \
    test -z "$(find "$SYS" \( ! -user root -o \( ! -type l -perm /022 \) \) -print)"
  rm -rf "$e" "$marker" "$pkg" "$deb" "$stamp" "$ha/.config/pip" "$ha/.pip"

  # 6. Code in the current folder: B plants a pip.py and a pip/ package in a sticky folder; A's
  # pip and root's pip run there and import neither.
  local planted=/tmp/pyctl-planted
  local owned=$planted/owned
  rm -rf "$planted"
  as_sh $B "mkdir -m 1777 $planted && mkdir $planted/pip"
  for f in pip.py pip/__init__.py; do
    echo "import os; open('$owned', 'a').write('$f as %d\n' % os.getuid())" >"$planted/$f"
  done
  chown -R $B: "$planted/pip.py" "$planted/pip"
  chmod -R a+rX "$planted"
  check "A: pip list in B's folder" as $A "cd $planted && pip list >/dev/null"
  check "A: pip install in B's folder" as $A "cd $planted && pip install -q --no-index $(wheel demo_planted)"
  check "A: pip uninstall in B's folder" as $A "cd $planted && pip uninstall -q -y demo_planted"
  check "root: pip list in B's folder" sh -c "cd $planted && pip list >/dev/null"
  check "no code from the current folder ran$( [ -e "$owned" ] && echo ": $(cat "$owned")")" test ! -e "$owned"
  rm -rf "$planted"

  # 7. The option table pyctl reads pip's command lines with covers this image's pip.
  pyctl __pip-options >"$T/pip-options.txt"
  out=$("$SYS/venv/bin/python" -I "$T/pip_options.py" "$T/pip-options.txt" 2>&1) || fail "option table: $out"
  pass "$out"
}

# A new tier's venv against the one `python3 -m venv` makes at the same path, file by file
# (issue 15): path, type, mode (write bits aside: the store takes them), content or link target;
# bytecode by name only (RECORD, compared whole, lists it as pip does). pip's scripts in the
# tier are pyctl's shims: RECORD holds what pip wrote there.
same_as_ensurepip() {
  local venv aside out
  venv=$(home_of "$1")/$TIER/venv
  aside=$venv.pyctl
  mv "$venv" "$aside"
  out=$(as_sh "$1" "python3 -m venv $venv 2>&1") || fail "$1: python3 -m venv: $out"
  out=$(python3 - "$aside" "$venv" <<'EOF'
import hashlib, os, stat, sys
def tree(top):
    out = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                what = "link " + os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                what = "folder"
            elif name.endswith(".pyc"):
                what = "bytecode"
            else:
                with open(path, "rb") as f:
                    data = f.read()
                if rel.startswith("bin/pip") and data.startswith(b"#!/bin/sh\n# pyctl shim"):
                    continue
                what = hashlib.sha256(data).hexdigest()
            mode = st.st_mode & (0o7555 if stat.S_ISREG(st.st_mode) else 0o7777)
            out[rel] = (oct(mode), what)
    return out
pyctl, ensurepip = tree(sys.argv[1]), tree(sys.argv[2])
shims = [p for p in ensurepip if p.startswith("bin/pip") and p not in pyctl]
wrong = [f"{p}: pyctl {pyctl.get(p)} / ensurepip {ensurepip.get(p)}"
         for p in sorted(set(pyctl) | set(ensurepip))
         if pyctl.get(p) != ensurepip.get(p) and p not in shims]
print("\n".join(wrong[:30]) or f"{len(pyctl)} paths the same, {len(shims)} shims")
sys.exit(1 if wrong or len(shims) != 3 else 0)
EOF
  ) || {
    rm -rf "$venv"
    mv "$aside" "$venv"
    fail "$1's new tier differs from python3 -m venv's:
$out"
  }
  rm -rf "$venv"
  mv "$aside" "$venv"
  pass "$1's new tier is the venv python3 -m venv makes, file by file: $out"
}

# Numbers, not pass/fail: printed as MEASURE lines for the run's log.
phase_measure() {
  useradd -m -s /bin/bash pyctl-c
  useradd -m -s /bin/bash pyctl-d
  # Tier creation alone, and where its bytecode came from.
  local t0 out
  t0=$(date +%s%N)
  out=$(as pyctl-d "pyctl -v init --no-modify-path 2>&1") || fail "pyctl-d: pyctl init: $out"
  echo "MEASURE: pyctl init of a new user: $(( ($(date +%s%N) - t0) / 1000000 )) ms ($(echo "$out" | grep -o 'bytecode: [0-9]* modules to compile' || echo ensurepip))"
  check "pyctl-d's tier was made without ensurepip" contains "$out" "modules to compile"
  same_as_ensurepip pyctl-d
  as pyctl-c "python3 - $(wheel demo_new) $(wheel demo_bench)" <<'EOF'
import os, shutil, subprocess, sys, tempfile, time
new, bench = sys.argv[1], sys.argv[2]
def run(*cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t
first = run("pip", "install", "--no-index", new)
tier = os.path.expanduser("~/.local/python-packages/venv")
plain = tempfile.mkdtemp()
run(sys.executable, "-m", "venv", plain + "/v")
pip_only = run(plain + "/v/bin/python", "-m", "pip", "install", "--no-index", new)
print(f"MEASURE: first pip install by a new user (tier created): {first:.2f} s; "
      f"pip alone: {pip_only:.2f} s; pyctl's part: {first - pip_only:.2f} s (goal <= 0.3 s)")
def cycle(pip):
    return run(*pip, "install", "--no-index", bench) + run(*pip, "uninstall", "-y", "demo_bench")
wrapped, direct = [], []
for _ in range(5):
    wrapped.append(cycle(["pip"]))
    direct.append(cycle([tier + "/bin/python", "-m", "pip"]))
wrapped.sort(); direct.sort()
print(f"MEASURE: install+uninstall median: wrapper {wrapped[2]*1000:.0f} ms, venv pip "
      f"{direct[2]*1000:.0f} ms, overhead {(wrapped[2]-direct[2])*1000/2:.0f} ms per operation")
fz = min(run("pyctl", "freeze") for _ in range(5))
pf = min(run(tier + "/bin/python", "-m", "pip", "freeze", "--all") for _ in range(3))
print(f"MEASURE: pyctl freeze {fz*1000:.1f} ms, pip freeze --all {pf*1000:.0f} ms ({pf/fz:.0f}x)")
shutil.rmtree(plain)
EOF
}

phase_upgrade() {
  local ha na ns div old
  ha=$(home_of $A)
  na=$(history_count $A)
  ns=$(system_history_count)
  div=$(pyctl_diversions)
  old=$(dpkg-query -W -f='${Version}' pyctl)
  check "apt upgrades to the newer build" apt-get install -y -qq "$T/debs/pyctl-next.deb"
  check "the version changed ($old -> $(dpkg-query -W -f='${Version}' pyctl))" \
    test "$(dpkg-query -W -f='${Version}' pyctl)" != "$old"
  check "diversions intact" test "$(pyctl_diversions)" = "$div"
  local em
  for em in $(em_markers); do
    check "$em is still pyctl's after the upgrade" sh -c "head -n 1 '$em' | grep -q '^# Written by pyctl'"
    check "$em.distrib still the distro's" \
      test "$(sha256sum <"$em.distrib")" = "$(grep -F "  $em" "$EM_SUMS" | cut -d' ' -f1)  -"
  done
  check "/usr/bin/pip is still the wrapper" test "$(readlink /usr/bin/pip)" = /usr/bin/pyctl
  check "A's history intact" test "$(history_count $A)" = "$na"
  check "A's packages intact" has_pkg "$ha/$TIER/venv" demo_login
  check "system history intact (system init added nothing)" test "$(system_history_count)" = "$ns"
  check "system packages intact" has_pkg "$SYS/venv" demo_sudo
  check "pyctl system status is clean" pyctl system status
  check "A: pip still records after the upgrade" as $A 'pip uninstall -y demo_sh'
  check "A's history grew by one" test "$(history_count $A)" = "$((na + 1))"
}

phase_remove() {
  local ha m
  ha=$(home_of $A)
  m=$(minor)
  check "apt remove pyctl" apt-get remove -y -qq pyctl
  check "no diversion left" test -z "$(pyctl_diversions)"
  check "/usr/bin/pyctl gone" test ! -e /usr/bin/pyctl
  check "/usr/lib/pyctl gone" test ! -e /usr/lib/pyctl
  for p in pip pip3 "pip$m"; do
    if distro_ships "/usr/bin/$p"; then
      check "/usr/bin/$p is the distro's again" sh -c "test ! -L /usr/bin/$p && /usr/bin/$p --version | grep -q 'python $m'"
      check "no /usr/bin/$p.distrib left" test ! -e "/usr/bin/$p.distrib"
    else
      check "no /usr/bin/$p left" test ! -e "/usr/bin/$p"
    fi
  done
  check "apt still works (kept conffiles included)" apt-get install -y -qq --no-install-recommends less
  check "the system tier stays until purge" test -d "$SYS/venv"
  # Every shim left in a venv runs that venv's own pip now that pyctl is gone.
  local venv u p out
  for u in $A $B root; do
    if [ "$u" = root ]; then venv=$SYS/venv; else venv=$(home_of $u)/$TIER/venv; fi
    for p in pip pip3 "pip$m"; do
      check "$venv/bin/$p is still pyctl's shim" test "$(sed -n 2p "$venv/bin/$p" | cut -c1-12)" = "# pyctl shim"
      if [ "$u" = root ]; then out=$("$venv/bin/$p" --version 2>&1); else out=$(as_sh "$u" "$venv/bin/$p --version" 2>&1); fi ||
        fail "$u: $venv/bin/$p --version without pyctl: $out"
      check "$u: $venv/bin/$p runs that venv's pip ($out)" matches "$out" "^pip .* from $venv/lib/python$m/site-packages/pip"
    done
  done
  check "A: the tier's pip3 shim installs into A's venv without pyctl" \
    as_sh $A "$ha/$TIER/venv/bin/pip3 install -q --no-index $(wheel demo_new)"
  check "the package landed in A's venv" has_pkg "$ha/$TIER/venv" demo_new
  check "root: the system venv's pip$m shim installs into it without pyctl" \
    "$SYS/venv/bin/pip$m" install -q --no-index "$(wheel demo_new)"
  check "the package landed in the system venv" has_pkg "$SYS/venv" demo_new
  em_given_back
}

phase_purge() {
  check "apt purge pyctl" apt-get purge -y -qq pyctl
  check "dpkg forgot pyctl" sh -c "! dpkg-query -W -f='\${Status}' pyctl 2>/dev/null | grep -q installed"
  check "$SYS gone" test ! -e "$SYS"
  check "/etc/pyctl gone" test ! -e /etc/pyctl
  check "no diversion left" test -z "$(pyctl_diversions)"
  local left
  # The test's own fixtures (accounts, sudoers, the image's apt setting) are not pyctl's.
  left=$(find / -xdev \( -path /proc -o -path /home -o -path "$T" \) -prune -o -name '*pyctl*' -print |
    grep -vx -e /etc/sudoers.d/pyctl-a -e /etc/apt/apt.conf.d/90pyctl-norecommends || true)
  check "nothing named pyctl left outside users' homes${left:+: $left}" test -z "$left"
  check "A's and B's tiers remain" test -d "$(home_of $A)/$TIER/venv" -a -d "$(home_of $B)/$TIER/venv"
  em_given_back
  check "apt still works" apt-get install -y -qq --no-install-recommends file
}

case "${1:-}" in
  wheels) phase_wheels ;;
  install) phase_install ;;
  user-tiers) phase_user_tiers ;;
  system-tier) phase_system_tier ;;
  ansible) phase_ansible ;;
  project-venv) phase_project_venv ;;
  hooks) phase_hooks ;;
  privilege) phase_privilege ;;
  measure) phase_measure ;;
  upgrade) phase_upgrade ;;
  remove) phase_remove ;;
  purge) phase_purge ;;
  *)
    echo "usage: scenario.sh wheels|install|user-tiers|system-tier|ansible|project-venv|hooks|privilege|measure|upgrade|remove|purge" >&2
    exit 2
    ;;
esac
