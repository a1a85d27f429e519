#!/usr/bin/env bash
# Builds the python-upgrade test's wheels into DIR (default /wheelhouse), with this image's
# python3, gcc and Python headers, no network and no build backend:
#   cext-1.0-cpXY-cpXY-PLATFORM.whl   a tiny C extension (cext.answer() == 42) for this Python;
#   pyctltest_late-1.0-cpXY-...whl    the same again (the test hands its cp313 wheel over late; a
#                                     name no index has);
#   purepkg-1.0-py3-none-any.whl      pure Python with a console script `purepkg-hello`
#                                     (with `--pure`).
# tests/distro/python-upgrade.Dockerfile runs it in Debian 12 (cp311, --pure) and 13 (cp313).
set -euo pipefail
out=/wheelhouse
pure=0
for a in "$@"; do
  case "$a" in
    --pure) pure=1 ;;
    *) out=$a ;;
  esac
done
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The C source of module $1.
c_source() {
  cat <<CEOF
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *unused) {
    return PyLong_FromLong(42);
}

static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "The answer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "$1", NULL, -1, methods};

PyMODINIT_FUNC PyInit_$1(void) { return PyModule_Create(&module); }
CEOF
}

# include folder, EXT_SUFFIX, cpXY, platform tag
read -r include suffix cp plat < <(python3 -c '
import sys, sysconfig
print(sysconfig.get_paths()["include"], sysconfig.get_config_var("EXT_SUFFIX"),
      "cp%d%d" % sys.version_info[:2], sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
test -f "$include/Python.h" || { echo "no $include/Python.h: install python3-dev" >&2; exit 1; }
for name in cext pyctltest_late; do
  mkdir -p "$work/$name"
  c_source $name >"$work/$name/$name.c"
  gcc -shared -fPIC -O2 -I"$include" "$work/$name/$name.c" -o "$work/$name/$name$suffix"
done

python3 - "$out" "$work" "$suffix" "$cp" "$plat" "$pure" <<'PYEOF'
import base64, hashlib, os, sys, zipfile
out, work, suffix, cp, plat, pure = sys.argv[1:7]

def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

def wheel(name, tag, purelib, files, extra=None):
    dist = f"{name}-1.0.dist-info"
    files = dict(files)
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n".encode()
    files[f"{dist}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: pyctl-test\n"
                              f"Root-Is-Purelib: {purelib}\nTag: {tag}\n").encode()
    files.update(extra or {})
    record = "".join(f"{p},{digest(c)},{len(c)}\n" for p, c in files.items()) + f"{dist}/RECORD,,\n"
    path = os.path.join(out, f"{name}-1.0-{tag}.whl")
    with zipfile.ZipFile(path, "w") as z:
        # A fixed date: the same wheel from the same build, so podman's layer cache holds.
        for p, c in list(files.items()) + [(f"{dist}/RECORD", record.encode())]:
            z.writestr(zipfile.ZipInfo(p, (1980, 1, 1, 0, 0, 0)), c)
    print(path)

for name in ("cext", "pyctltest_late"):
    with open(os.path.join(work, name, name + suffix), "rb") as f:
        wheel(name, f"{cp}-{cp}-{plat}", "false", {f"{name}/{name}{suffix}": f.read()},
              {f"{name}/__init__.py": f"from .{name} import answer\n".encode()})
if pure == "1":
    wheel("purepkg", "py3-none-any", "true",
          {"purepkg/__init__.py": b"def hello():\n    print('hello from purepkg')\n"},
          {"purepkg-1.0.dist-info/entry_points.txt":
               b"[console_scripts]\npurepkg-hello = purepkg:hello\n"})
PYEOF
chmod -R a+rX "$out"
