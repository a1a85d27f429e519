# pyctl: for accounts other than root, `pip` finds pyctl's shims first, then the programs of
# your own tier's venv (the fish twin of /etc/profile.d/pyctl.sh).
if test (id -u) -ne 0
    set -l pyctl_tier $HOME/.local/python-packages
    set -q PYCTL_HOME[1]; and test -n "$PYCTL_HOME"; and set pyctl_tier $PYCTL_HOME
    for pyctl_dir in $pyctl_tier/venv/bin /usr/lib/pyctl/shims
        contains -- $pyctl_dir $PATH; or set -gx PATH $pyctl_dir $PATH
    end
end
