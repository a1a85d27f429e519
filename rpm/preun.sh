# pyctl %preun ($1: 0 on erase, 1 on upgrade): on erase, the shims go. The system tier
# /opt/system-python holds root's packages and is kept (RPM has no purge): remove it by hand
# with `rm -rf /opt/system-python` when it is no longer wanted.
if [ "$1" = 0 ]; then
    for shim in /usr/lib/pyctl/shims/pip /usr/lib/pyctl/shims/pip3 /usr/lib/pyctl/shims/pip3.*; do
        if [ -L "$shim" ] && [ "$(readlink "$shim")" = /usr/bin/pyctl ]; then
            rm -f "$shim"
        fi
    done
    rmdir /usr/lib/pyctl/shims /usr/lib/pyctl 2>/dev/null || true
fi
exit 0
