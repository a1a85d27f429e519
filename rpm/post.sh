# pyctl %post ($1: 1 on install, 2 on upgrade). RPM distros get no diversion: their pip stays
# at /usr/bin/pip, and /etc/profile.d/pyctl.sh puts /usr/lib/pyctl/shims first on PATH for
# non-root users. Then the root-only system tier is provisioned (or repaired).
mkdir -p /usr/lib/pyctl/shims
ln -sfn /usr/bin/pyctl /usr/lib/pyctl/shims/pip
ln -sfn /usr/bin/pyctl /usr/lib/pyctl/shims/pip3
for py in /usr/bin/python3.[0-9] /usr/bin/python3.[0-9][0-9]; do
    [ -x "$py" ] || continue
    ln -sfn /usr/bin/pyctl "/usr/lib/pyctl/shims/pip${py#/usr/bin/python}"
done
if ! /usr/bin/pyctl --color never system init; then
    echo "pyctl: setting up the system tier failed; run \`sudo pyctl system init\` to retry" >&2
fi
exit 0
