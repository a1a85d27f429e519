//! `pyctl system init` and `pyctl system status` against a real venv made by the real Python, in
//! a root-owned temp folder (PYCTL_SYSTEM_PREFIX): owner and modes checked on every path,
//! idempotency, repair, and refusal for an unprivileged account (pyctltest-a).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{account, chmod, is_root, SystemPrefix, PYCTL};

/// `pyctl ARGS` as root with the given umask, in a clean environment.
fn pyctl_umask(prefix: &SystemPrefix, umask: &str, args: &[&str]) -> Output {
    let mut script = format!("umask {umask}; exec \"$0\"");
    for (i, _) in args.iter().enumerate() {
        script.push_str(&format!(" \"${}\"", i + 1));
    }
    prefix
        .command(Path::new("/bin/sh"))
        .arg("-c")
        .arg(script)
        .arg(PYCTL)
        .args(args)
        .output()
        .unwrap()
}

fn pyctl(prefix: &SystemPrefix, args: &[&str]) -> Output {
    pyctl_umask(prefix, "022", args)
}

fn history_files(prefix: &SystemPrefix) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(prefix.root().join("history"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// Exit code, stdout and stderr, each named (the harness's `text` runs them together).
fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// Every path under `root` is root's and not writable by group or others; the lock is 0600.
fn assert_root_only(root: &Path) {
    let mut checked = 0;
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, 0),
            "{} is not root's",
            entry.path().display()
        );
        if !meta.file_type().is_symlink() {
            assert_eq!(
                meta.mode() & 0o022,
                0,
                "{} is writable by others ({:o})",
                entry.path().display(),
                meta.mode()
            );
        }
        checked += 1;
    }
    assert!(
        checked > 50,
        "only {checked} paths under {}",
        root.display()
    );
    let lock = root.join(".lock").metadata().unwrap();
    assert_eq!(lock.mode() & 0o7777, 0o600);
}

/// Runs as pyctltest-a (the suite's unprivileged account).
fn as_unprivileged(prefix: &SystemPrefix, args: &[&str]) -> Output {
    let user = nix::unistd::User::from_name("pyctltest-a")
        .unwrap()
        .expect("the test account pyctltest-a (scripts/test creates it)");
    Command::new(PYCTL)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &user.dir)
        .env("PYCTL_SYSTEM_PREFIX", prefix.root())
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .output()
        .unwrap()
}

#[test]
fn system_init_makes_a_root_only_tier_and_is_idempotent() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let prefix = SystemPrefix::new();
    let before = pyctl(&prefix, &["system", "status"]);
    assert_eq!(before.status.code(), Some(1), "{}", text(&before));
    assert!(text(&before).contains("not set up"), "{}", text(&before));

    // A permissive umask must not leak into the tier.
    ok(pyctl_umask(&prefix, "000", &["system", "init"]));
    let root = prefix.root();
    assert!(root.join("venv/pyvenv.cfg").is_file());
    for dir in ["history", "snapshots", "store"] {
        assert!(root.join(dir).is_dir(), "{dir}");
    }
    assert!(root.join("snapshots/baseline.txt").is_file());
    let shim = std::fs::read_to_string(root.join("venv/bin/pip")).unwrap();
    assert!(shim.contains("# pyctl shim"), "{shim}");
    assert_eq!(root.join("venv").metadata().unwrap().mode() & 0o7777, 0o755);
    assert_eq!(
        root.join("venv/pyvenv.cfg").metadata().unwrap().mode() & 0o7777,
        0o644
    );
    assert_root_only(&root);
    let history = history_files(&prefix);
    assert_eq!(history.len(), 2, "{history:?}");
    let init: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("history").join(&history[1])).unwrap(),
    )
    .unwrap();
    assert_eq!(init["kind"], "init");

    // Again: nothing new is recorded, nothing changes.
    let again = ok(pyctl(&prefix, &["system", "init"]));
    assert!(text(&again).contains("already set up"), "{}", text(&again));
    assert_eq!(history_files(&prefix), history);
    assert_root_only(&root);

    let status = ok(pyctl(&prefix, &["--json", "system", "status"]));
    let st: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(st["provisioned"], true);
    assert_eq!(st["baseline"], true);
    assert_eq!(st["shims_ok"], true);
    assert_eq!(st["problems"].as_array().unwrap().len(), 0, "{st}");
}

#[test]
fn system_init_repairs_owner_and_modes() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let prefix = SystemPrefix::new();
    ok(pyctl(&prefix, &["system", "init"]));
    let root = prefix.root();
    let (uid, gid) = account("pyctltest-a");
    chmod(&root.join("venv/bin"), 0o777);
    chmod(&root.join("venv/pyvenv.cfg"), 0o666);
    chmod(&root.join(".lock"), 0o644);
    std::os::unix::fs::lchown(root.join("snapshots/baseline.txt"), Some(uid), Some(gid)).unwrap();
    std::fs::remove_file(root.join("venv/bin/pip3")).unwrap();

    let status = pyctl(&prefix, &["--json", "system", "status"]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    let st: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(st["bad_paths"].as_array().unwrap().len(), 4, "{st}");
    assert_eq!(st["shims_ok"], false);

    let fixed = ok(pyctl(&prefix, &["system", "init"]));
    assert!(text(&fixed).contains("repaired"), "{}", text(&fixed));
    assert_root_only(&root);
    assert!(std::fs::read_to_string(root.join("venv/bin/pip3"))
        .unwrap()
        .contains("# pyctl shim"));
    ok(pyctl(&prefix, &["system", "status"]));
}

#[test]
fn system_commands_refuse_unprivileged_callers() {
    if !is_root() {
        eprintln!("skipped: needs root to switch to the test account");
        return;
    }
    let prefix = SystemPrefix::new();
    for args in [&["system", "init"][..], &["system", "status"][..]] {
        let out = as_unprivileged(&prefix, args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("must run as root"), "{err}");
        assert!(err.contains("sudo pyctl system"), "{err}");
    }
    assert!(
        !prefix.root().exists(),
        "nothing is created for a refused caller"
    );
}

#[test]
fn generated_man_pages_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    let comp = dir.path().join("completions");
    let out = Command::new(PYCTL)
        .args(["generate", "man"])
        .arg(&man)
        .output()
        .unwrap();
    ok(out);
    let out = Command::new(PYCTL)
        .args(["generate", "completions"])
        .arg(&comp)
        .output()
        .unwrap();
    ok(out);
    assert!(man.join("pyctl.1").is_file());
    assert!(man.join("pyctl-system-init.1").is_file());
    for f in ["pyctl.bash", "_pyctl", "pyctl.fish"] {
        assert!(comp.join(f).is_file(), "{f}");
    }
    // The page renders with the system's man (when installed), without warnings.
    if Path::new("/usr/bin/man").exists() {
        let out = Command::new("man")
            .arg("-l")
            .arg(man.join("pyctl-system-init.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(page.contains("--python"), "{page}");
    }
}

#[test]
fn shipped_config_file_holds_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/pyctl/config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let shipped: pyctl::tier::config::Config = toml::from_str(&text).unwrap();
    assert_eq!(shipped, pyctl::tier::config::Config::default());
}

/// Unmounts an overlay when the test ends, passed or not.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A system tier in a container image built in steps (a Dockerfile's RUN lines): the venv comes
/// from a lower overlayfs layer, and overlayfs refuses to rename such a folder (EXDEV). `clean`,
/// which moves the venv out of the way, must still take the tier back to its baseline, and undo
/// must bring the package back. The overlay is mounted over the tier's own folder, so every path
/// (and every `#!` line in the venv) stays the same.
#[test]
fn clean_and_undo_work_where_the_venv_cannot_be_renamed() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let prefix = SystemPrefix::new();
    ok(pyctl(&prefix, &["system", "init"]));
    let wheels = prefix.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    crate::common::wheel(
        &wheels,
        "layered",
        "1.0",
        &[],
        &[("layered/__init__.py".into(), "V = 1\n".into())],
    );
    let pip = prefix.root().join("venv/bin/pip");
    let find_links = wheels.to_str().unwrap();
    ok(prefix
        .command(&pip)
        .args([
            "install",
            "--no-index",
            "--find-links",
            find_links,
            "layered",
        ])
        .output()
        .unwrap());

    let (upper, work) = (prefix.path().join("upper"), prefix.path().join("work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let root = prefix.root();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        root.display(),
        upper.display(),
        work.display()
    );
    let mounted = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&root)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount -t overlay failed");
    let _mounted = Mounted(root.clone());
    // What the test is about: this filesystem cannot rename the venv.
    let refused = std::fs::rename(root.join("venv"), root.join("venv-renamed")).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(18), "{refused}");

    let site = |name: &str| {
        let lib = root.join("venv/lib");
        std::fs::read_dir(&lib)
            .unwrap()
            .map(|e| e.unwrap().path().join("site-packages").join(name))
            .any(|p| p.exists())
    };
    assert!(site("layered"));
    let cleaned = ok(pyctl(&prefix, &["clean"]));
    assert!(!site("layered"), "{}", text(&cleaned));
    assert!(root.join("venv/bin/python").exists());
    let listed = ok(prefix.command(&pip).args(["list"]).output().unwrap());
    assert!(!text(&listed).contains("layered"), "{}", text(&listed));

    let undone = ok(pyctl(&prefix, &["undo"]));
    assert!(site("layered"), "{}", text(&undone));
    let imported = ok(prefix
        .command(&root.join("venv/bin/python"))
        .args(["-c", "import layered; print(layered.V)"])
        .output()
        .unwrap());
    assert_eq!(String::from_utf8_lossy(&imported.stdout).trim(), "1");
    assert_root_only(&root);
}

/// `pip3.X` for a Python the machine no longer has (the diverted `pip3.11` left behind by a
/// release upgrade to 3.13): a plain error naming the missing interpreter, not advice to set up
/// a tier that cannot exist.
#[test]
fn pip_for_a_python_that_is_not_installed_says_so() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let prefix = SystemPrefix::new();
    let link = prefix.path().join("pip3.99");
    std::os::unix::fs::symlink(PYCTL, &link).unwrap();
    let out = prefix.command(&link).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Python 3.99 is not installed"), "{err}");
    assert!(!err.contains("system init"), "{err}");
    assert!(!prefix.root().exists(), "nothing made");
}
