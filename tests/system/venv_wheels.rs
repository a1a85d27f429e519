//! Which wheels root's new venv may take pip from: every one the interpreter's own ensurepip
//! could read must be root's alone, whether pyctl places pip itself or lets ensurepip run. The
//! interpreter is one of the test's own (the machine's binary in a prefix of its own), so that
//! its ensurepip reads the test's folder.

use crate::common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{account, chmod, is_root, ok, text, SystemPrefix, PYCTL};

fn query(python: &Path, code: &str) -> String {
    let out = Command::new(python)
        .args(["-I", "-c", code])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A Python whose prefix is `prefix`: the binary of /usr/bin/python3 copied into `bin`, each
/// entry of its standard library linked into `lib/pythonX.Y` but `ensurepip` and the
/// `_sysconfigdata_*` files (copied, the latter naming `prefix/wheels` as `WHEEL_PKG_DIR`) and
/// `__pycache__` (its own: nothing is written into the machine's). The interpreter and the
/// wheel folder, or `None` when /usr/bin/python3 names no `WHEEL_PKG_DIR`.
fn own_python(prefix: &Path) -> Option<(PathBuf, PathBuf)> {
    let system = Path::new("/usr/bin/python3");
    let real = std::fs::canonicalize(system).unwrap();
    let stdlib = PathBuf::from(query(
        system,
        "import sysconfig; print(sysconfig.get_path('stdlib'))",
    ));
    let real_wheels = query(
        system,
        "import sysconfig; print(sysconfig.get_config_var('WHEEL_PKG_DIR') or '')",
    );
    if real_wheels.is_empty() {
        return None;
    }
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&real, bin.join(real.file_name().unwrap())).unwrap();
    std::os::unix::fs::symlink(real.file_name().unwrap(), bin.join("python3")).unwrap();
    let wheels = prefix.join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    for e in std::fs::read_dir(&real_wheels).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), wheels.join(e.file_name())).unwrap();
    }
    let lib = prefix.join("lib").join(stdlib.file_name().unwrap());
    std::fs::create_dir_all(lib.join("__pycache__")).unwrap();
    for e in std::fs::read_dir(&stdlib).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "ensurepip" {
            std::fs::create_dir(lib.join(&name)).unwrap();
            for f in std::fs::read_dir(e.path()).unwrap() {
                let f = f.unwrap();
                if f.file_type().unwrap().is_file() {
                    std::fs::copy(f.path(), lib.join(&name).join(f.file_name())).unwrap();
                }
            }
        } else if name.starts_with("_sysconfigdata_") && name.ends_with(".py") {
            let data = std::fs::read_to_string(e.path()).unwrap();
            let fixed = data.replace(
                &format!("'WHEEL_PKG_DIR': '{real_wheels}'"),
                &format!("'WHEEL_PKG_DIR': '{}'", wheels.display()),
            );
            std::fs::write(lib.join(&name), fixed).unwrap();
        } else if name != "__pycache__" {
            std::os::unix::fs::symlink(e.path(), lib.join(&name)).unwrap();
        }
    }
    let python = bin.join("python3");
    assert_eq!(
        query(
            &python,
            "import sysconfig; print(sysconfig.get_config_var('WHEEL_PKG_DIR'))"
        ),
        wheels.display().to_string(),
        "the copied Python reads the test's build variables"
    );
    Some((python, wheels))
}

/// Root makes no venv while another account can choose among the wheels its Python's
/// ensurepip reads: not with a sticky folder anyone can add to, not with a stranger's wheel
/// under a name pyctl itself does not read (ensurepip takes the last `pip-*.whl` by name), not
/// through a link to one. Each time: an error naming it, no ensurepip run, no venv left. Then,
/// with the folder root's alone, the venv is made without ensurepip.
#[test]
fn root_makes_no_venv_while_another_account_can_choose_its_pip() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let sys = SystemPrefix::new();
    let Some((python, wheels)) = own_python(&sys.path().join("py")) else {
        eprintln!("skipped: /usr/bin/python3 names no WHEEL_PKG_DIR");
        return;
    };
    let init = || {
        sys.command(Path::new(PYCTL))
            .args(["-v", "system", "init", "--python"])
            .arg(&python)
            .output()
            .unwrap()
    };
    let refused = |out: Output, at: &str| {
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        assert!(
            t.contains(at) && t.contains("can be written by another account"),
            "{at}: {t}"
        );
        assert!(!t.contains("running ensurepip"), "{t}");
        assert!(
            !sys.root().join("venv").exists(),
            "a half-made venv was left"
        );
    };
    let stranger = account("pyctltest-b");
    let wheels_text = wheels.display().to_string();

    chmod(&wheels, 0o1777);
    refused(init(), &format!("{wheels_text}:"));
    chmod(&wheels, 0o755);

    let odd = wheels.join(OsStr::from_bytes(b"pip-\xff.whl"));
    std::fs::write(&odd, b"not a wheel").unwrap();
    std::os::unix::fs::lchown(&odd, Some(stranger.0), Some(stranger.1)).unwrap();
    refused(init(), &format!("{wheels_text}/pip-"));
    std::fs::remove_file(&odd).unwrap();

    let theirs = sys.path().join("theirs-1.0-py3-none-any.whl");
    std::fs::write(&theirs, b"not a wheel").unwrap();
    std::os::unix::fs::lchown(&theirs, Some(stranger.0), Some(stranger.1)).unwrap();
    let link = wheels.join("zz-1.0-py3-none-any.whl");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    refused(init(), &link.display().to_string());
    std::fs::remove_file(&link).unwrap();

    let out = init();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("modules to compile"), "{}", text(&out));
    let pip = Command::new(sys.root().join("venv/bin/python"))
        .args(["-I", "-m", "pip", "--version"])
        .output()
        .unwrap();
    assert!(ok("pip --version", pip).starts_with("pip "));
}
