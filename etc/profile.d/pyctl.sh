# pyctl: for accounts other than root, `pip` finds pyctl's shims first, then the programs of
# your own tier's venv. Root is left alone: its `pip` is /usr/bin/pip (the system tier).
# POSIX sh; sourcing it twice changes nothing.
if [ "$(id -u 2>/dev/null || echo 0)" != 0 ]; then
    for _pyctl_dir in "${PYCTL_HOME:-$HOME/.local/python-packages}/venv/bin" /usr/lib/pyctl/shims; do
        case ":${PATH}:" in
            *":${_pyctl_dir}:"*) ;;
            *) PATH="${_pyctl_dir}${PATH:+:$PATH}" ;;
        esac
    done
    unset _pyctl_dir
    export PATH
fi
