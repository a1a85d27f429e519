//! Regression tests for the holes an attack on a shared machine found (issue 11), each with real
//! accounts (`pyctltest-a` runs the tier, `pyctltest-b` is the stranger), the real pip and real
//! venvs: code in the current folder, a caller's environment under root, credentials in index
//! URLs, tiers readable and lockable by others, abbreviated options, an unquoted PATH block.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{account, chmod, is_root, ok, text, SystemPrefix, Tier, PYCTL};

fn chown(path: &Path, (uid, gid): (u32, u32)) {
    for e in walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
    {
        std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid)).unwrap();
    }
}

fn write_exec(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    chmod(path, 0o755);
}

/// A folder of the stranger's (`pyctltest-b`), world-writable and sticky like /tmp, holding a
/// `pip.py` (or a `pip/` package) that leaves `owned` behind when imported.
fn planted_folder(dir: &Path, as_package: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let marker = dir.join("owned");
    let code = format!(
        "import os\nopen({:?}, 'a').write('ran as %d\\n' % os.getuid())\n",
        marker.to_str().unwrap()
    );
    if as_package {
        std::fs::create_dir_all(dir.join("pip/_internal/cli")).unwrap();
        std::fs::write(dir.join("pip/__init__.py"), &code).unwrap();
    } else {
        std::fs::write(dir.join("pip.py"), &code).unwrap();
    }
    chown(dir, account("pyctltest-b"));
    chmod(dir, 0o1777);
    marker
}

/// The tier's test folder opened up (0755) down to the tier, so that only the tier's own modes
/// keep other accounts out.
fn open_up_to_tier(t: &Tier) {
    chmod(t.path(), 0o755);
    chmod(&t.home(), 0o755);
}

#[test]
fn code_in_the_current_folder_never_runs_as_the_caller() {
    if !is_root() {
        eprintln!("skipped: needs root (two test accounts)");
        return;
    }
    let t = Tier::new();
    open_up_to_tier(&t);
    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();
    for as_package in [false, true] {
        let dir = t.path().join(format!("planted-{as_package}"));
        let marker = planted_folder(&dir, as_package);
        let run = |args: &[&str]| {
            t.command(&t.path().join("bin/pip"))
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap()
        };
        ok("pip list", run(&["list"]));
        ok("pip --version", run(&["--version"]));
        ok(
            "pip install",
            run(&[
                "install",
                "--no-index",
                "--find-links",
                wheels,
                "alpha==1.0",
            ]),
        );
        // The venv's own shim, then its fallback as it runs when pyctl is gone.
        let shim = t.venv().join("bin/pip");
        ok(
            "the venv's shim",
            t.command(&shim)
                .arg("list")
                .current_dir(&dir)
                .output()
                .unwrap(),
        );
        let orphan = t.path().join(format!("orphan-shim-{as_package}"));
        let script = std::fs::read_to_string(&shim)
            .unwrap()
            .replace(PYCTL, "/nonexistent/pyctl");
        write_exec(&orphan, &script);
        let fallback = t
            .command(&orphan)
            .arg("list")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            text(&fallback).contains("alpha"),
            "the fallback ran no pip:\n{}",
            text(&fallback)
        );
        // The engine's pip fallback: undo and redo with the store switched off.
        t.pyctl_ok(&["config", "auto_snapshot", "false"]);
        let undo = t
            .command(Path::new(PYCTL))
            .args(["undo"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let redo = t
            .command(Path::new(PYCTL))
            .args(["redo"])
            .current_dir(&dir)
            .output()
            .unwrap();
        t.pyctl_ok(&["config", "auto_snapshot", "true"]);
        assert!(
            !marker.exists(),
            "code from the current folder ran: {}\nundo: {}\nredo: {}",
            std::fs::read_to_string(&marker).unwrap_or_default(),
            text(&undo),
            text(&redo)
        );
        ok("uninstall", run(&["uninstall", "-y", "alpha"]));
    }
}

/// A system tier in a root-owned temp folder, and root's `pip` (the binary linked as `pip`).
struct SystemTier(SystemPrefix);

impl SystemTier {
    fn new() -> SystemTier {
        let p = SystemPrefix::new();
        std::fs::create_dir_all(p.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(PYCTL, p.path().join("bin/pip")).unwrap();
        std::fs::create_dir_all(p.path().join("wheels")).unwrap();
        let t = SystemTier(p);
        ok(
            "system init",
            t.root_cmd("pyctl", &[])
                .args(["system", "init"])
                .output()
                .unwrap(),
        );
        t
    }

    fn prefix(&self) -> PathBuf {
        self.0.root()
    }

    fn wheels(&self) -> PathBuf {
        self.0.path().join("wheels")
    }

    /// `pyctl` or `pip` as root with a clean environment plus `env`.
    fn root_cmd(&self, program: &str, env: &[(&str, String)]) -> Command {
        let program = match program {
            "pip" => self.0.path().join("bin/pip"),
            _ => PathBuf::from(PYCTL),
        };
        let mut cmd = self.0.command(&program);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// A wheel whose `.pth` file writes the environment, `sys.path` and the isolation flag of every
/// Python started in the venv to `out`.
fn env_dump_wheel(dir: &Path, out: &Path) {
    let line = format!(
        "import json, os, sys; open({:?}, 'a').write(json.dumps({{'env': dict(os.environ), \
         'path': sys.path, 'isolated': sys.flags.isolated}}) + '\\n')\n",
        out.to_str().unwrap()
    );
    common::wheel(
        dir,
        "envdump",
        "1.0",
        &[],
        &[("envdump.pth".to_string(), line)],
    );
}

/// An sdist whose in-tree build backend leaves `marker` behind when pip builds it.
fn evil_sdist(dir: &Path, marker: &Path) {
    let backend = format!(
        "open({:?}, 'a').write('built\\n')\n\
         def get_requires_for_build_wheel(config_settings=None):\n    return []\n",
        marker.to_str().unwrap()
    );
    let build = dir.parent().unwrap().join("sdist-build");
    common::sdist_with_backend(&build, dir, "evilpkg", "1.0", &backend);
}

#[test]
fn root_takes_nothing_from_the_callers_environment() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let sys = SystemTier::new();
    let dump = sys.0.path().join("env.jsonl");
    env_dump_wheel(&sys.wheels(), &dump);
    let wheels = sys.wheels();
    ok(
        "root installs envdump",
        sys.root_cmd("pip", &[])
            .args(["install", "--no-index", "--find-links"])
            .arg(&wheels)
            .arg("envdump")
            .output()
            .unwrap(),
    );

    // The caller's things: a folder of pyctltest-a's, and a root-owned sticky folder (as /tmp)
    // with a venv-looking tree of the caller's in it.
    let user = tempfile::tempdir().unwrap();
    let u = user.path();
    let marker = u.join("marker");
    let m = marker.to_str().unwrap();
    let trap = format!("#!/bin/sh\necho \"$0\" >> {m}\nexec /usr/bin/python3 \"$@\"\n");
    write_exec(&u.join("bin/python"), &trap);
    write_exec(&u.join("bin/cc"), &trap);
    std::fs::write(u.join("pyvenv.cfg"), "home = /usr/bin\nversion = 3.11.2\n").unwrap();
    std::fs::create_dir_all(u.join("links")).unwrap();
    evil_sdist(&u.join("links"), &marker);
    std::fs::create_dir_all(u.join("pp")).unwrap();
    std::fs::write(
        u.join("pp/sitecustomize.py"),
        format!("open({m:?}, 'a').write('sitecustomize\\n')\n"),
    )
    .unwrap();
    std::fs::write(
        u.join("pip.py"),
        format!("open({m:?}, 'a').write('pip.py\\n')\n"),
    )
    .unwrap();
    let conf = format!(
        "[global]\nfind-links = {}\nno-index = true\n",
        u.join("links").display()
    );
    std::fs::write(u.join("pip.conf"), &conf).unwrap();
    std::fs::create_dir_all(u.join("xdg/pip")).unwrap();
    std::fs::write(u.join("xdg/pip/pip.conf"), &conf).unwrap();
    std::fs::create_dir_all(u.join("tmp")).unwrap();
    // The caller's user site: its .pth files run in any Python that reads it.
    for minor in 9..=14 {
        let site = u.join(format!(".local/lib/python3.{minor}/site-packages"));
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(
            site.join("zz-caller.pth"),
            format!("import os; open({m:?}, 'a').write('user site .pth as %d\\n' % os.getuid())\n"),
        )
        .unwrap();
    }
    chown(u, account("pyctltest-a"));
    chmod(u, 0o755);
    let sticky = tempfile::tempdir().unwrap();
    chmod(sticky.path(), 0o1777);
    write_exec(&sticky.path().join("bin/python"), &trap);
    std::fs::write(sticky.path().join("pyvenv.cfg"), "version = 3.11.2\n").unwrap();
    chown(&sticky.path().join("bin"), account("pyctltest-a"));

    let s = |p: &Path| p.display().to_string();
    let hostile: Vec<(&str, String)> = vec![
        ("PYCTL_ACTIVE", s(sticky.path())),
        ("VIRTUAL_ENV", s(u)),
        ("PIP_PYTHON", s(&u.join("bin/python"))),
        ("PIP_FIND_LINKS", s(&u.join("links"))),
        ("PIP_NO_INDEX", "1".into()),
        ("PIP_CONFIG_FILE", s(&u.join("pip.conf"))),
        ("PIP_CERT", s(&u.join("pip.conf"))),
        ("SSL_CERT_FILE", s(&u.join("pip.conf"))),
        ("XDG_CONFIG_HOME", s(&u.join("xdg"))),
        ("PYTHONPATH", s(&u.join("pp"))),
        ("PYTHONUSERBASE", s(&u.join(".local"))),
        ("PYTHONHOME", s(u)),
        ("HOME", s(u)),
        ("TMPDIR", s(&u.join("tmp"))),
        ("CC", s(&u.join("bin/cc"))),
        ("GIT_SSH_COMMAND", s(&u.join("bin/cc"))),
        ("LD_LIBRARY_PATH", s(u)),
        ("PATH", format!("{}:/usr/bin:/bin", u.join("bin").display())),
    ];
    let install = sys
        .root_cmd("pip", &hostile)
        .args(["install", "--no-index", "evilpkg"])
        .current_dir(u)
        .output()
        .unwrap();
    assert!(!install.status.success(), "{}", text(&install));
    assert!(
        text(&install).contains("as root, pip ignores")
            && text(&install).contains("PIP_FIND_LINKS"),
        "no note about the dropped variables:\n{}",
        text(&install)
    );
    let list = sys
        .root_cmd("pip", &hostile)
        .arg("list")
        .current_dir(u)
        .output()
        .unwrap();
    assert!(text(&list).contains("envdump"), "{}", text(&list));
    // A venv made as root (here: the system venv gone, made again on first use) runs ensurepip
    // in a child of its own, which gets none of the caller's environment (a venv that inherits
    // the system's site-packages reads the user site). Defence in depth: with Debian 12's
    // Python 3.11 the caller's .pth did not run even before pyctl cleared that environment.
    ok(
        "config inherit_system_packages",
        sys.root_cmd("pyctl", &[])
            .args(["config", "inherit_system_packages", "true"])
            .output()
            .unwrap(),
    );
    std::fs::remove_dir_all(sys.prefix().join("venv")).unwrap();
    let remade = sys
        .root_cmd("pip", &hostile)
        .arg("--version")
        .current_dir(u)
        .output()
        .unwrap();
    assert!(remade.status.success(), "{}", text(&remade));
    assert!(
        !marker.exists(),
        "root ran the caller's code: {}\ninstall: {}",
        std::fs::read_to_string(&marker).unwrap_or_default(),
        text(&install)
    );

    // What root's pip saw: no variable of the caller's but harmless ones, root's HOME, a PATH
    // without the caller's folder, an isolated interpreter.
    let seen = std::fs::read_to_string(&dump).unwrap();
    let last: serde_json::Value = serde_json::from_str(seen.lines().last().unwrap()).unwrap();
    assert_eq!(last["isolated"], 1, "{last}");
    let env = last["env"].as_object().unwrap();
    let allowed = [
        "PATH",
        "HOME",
        "PYCTL_ACTIVE",
        "PIP_USER",
        "NO_COLOR",
        "LC_CTYPE",
    ];
    for key in env.keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "root's pip saw {key}={}",
            env[key]
        );
    }
    assert_eq!(env["PATH"], "/usr/bin:/bin", "{last}");
    assert_eq!(env["PIP_USER"], "0", "--user is off in a tier");
    assert_eq!(env["HOME"], "/root");
    assert_eq!(env["PYCTL_ACTIVE"], s(&sys.prefix().join("venv")));
    let path = last["path"].to_string();
    assert!(!path.contains(&s(u)), "{path}");
}

#[test]
fn credentials_are_never_written_or_shown() {
    let t = Tier::new();
    let wheels = t.wheels();
    let w = wheels.to_str().unwrap();
    let mut shown = String::new();
    shown += &ok(
        "install with credentials",
        t.pip(&[
            "install",
            "--no-index",
            "--find-links",
            w,
            "-i",
            "https://alice:TOKEN1@127.0.0.1:9/simple",
            "--extra-index-url=https://TOKEN2@127.0.0.1:9/x",
            "alpha",
        ]),
    );
    // pip prints a direct URL as given ("Collecting gamma@ https://carol:TOKEN3@..."): only
    // pyctl's own lines are pyctl's to answer for.
    let own_lines = |out: &std::process::Output| -> String {
        text(out)
            .lines()
            .filter(|l| l.starts_with("pyctl"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let failed = t.pip(&[
        "install",
        "--no-index",
        "gamma @ https://carol:TOKEN3@127.0.0.1:9/gamma-1.0-py3-none-any.whl",
        "-ihttps://dave:TOKEN4@127.0.0.1:9/s",
    ]);
    assert!(!failed.status.success());
    shown += &own_lines(&failed);
    for args in [
        &["history"][..],
        &["--json", "history"],
        &["diff"],
        &["--json", "diff", "2"],
        &["info", "alpha", "--offline"],
        &["export", "--requested"],
        &["status"],
    ] {
        shown += &text(&t.pyctl(args));
    }
    assert!(shown.contains("alice:****@"), "{shown}");
    for token in ["TOKEN1", "TOKEN2", "TOKEN3", "TOKEN4"] {
        assert!(!shown.contains(token), "{token} shown:\n{shown}");
    }
    for e in walkdir::WalkDir::new(t.root())
        .into_iter()
        .filter_map(Result::ok)
    {
        if e.file_type().is_file() && !e.path().starts_with(t.venv()) {
            let data = std::fs::read(e.path()).unwrap();
            let data = String::from_utf8_lossy(&data);
            assert!(
                !data.contains("TOKEN"),
                "{} keeps a token",
                e.path().display()
            );
        }
    }
    // A history written by an earlier version, with the token in it, is masked when read.
    let id = t.last_id() + 1;
    let old = |half: &str, extra: &str| {
        format!(
            "{{\"schema\": 1, \"id\": {id}, \"kind\": \"pip\", \"timestamp\": \
             \"2026-01-01T00:00:00Z\", \"user\": \"a\", \"command\": \"pip install -i \
             https://erin:TOKEN5@h/s x\", \"pip_args\": [\"install\", \"-i\", \
             \"https://erin:TOKEN5@h/s\", \"x\"], \"python\": \"3.11.2\", \"venv\": \"/v\", \
             \"freeze\": \"\"{extra}}}\n{half:.0}"
        )
    };
    std::fs::write(
        t.history_dir().join(format!("{id:03}_before.json")),
        old("", ""),
    )
    .unwrap();
    std::fs::write(
        t.history_dir().join(format!("{id:03}_after.json")),
        old("", ", \"exit_code\": 1"),
    )
    .unwrap();
    let listing = t.pyctl_ok(&["history"]) + &t.pyctl_ok(&["--json", "history"]);
    assert!(listing.contains("erin:****@h"), "{listing}");
    assert!(!listing.contains("TOKEN5"), "{listing}");
}

#[test]
fn tiers_are_private_to_their_owner() {
    if !is_root() {
        eprintln!("skipped: needs root (two test accounts)");
        return;
    }
    let t = Tier::new();
    open_up_to_tier(&t);
    let mode = |p: &Path| p.metadata().unwrap().mode() & 0o7777;
    assert_eq!(mode(&t.root()), 0o700);
    assert_eq!(mode(&t.root().join(".lock")), 0o600);
    let stranger = |script: &str| {
        let (uid, gid) = account("pyctltest-b");
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .uid(uid)
            .gid(gid)
            .env_clear()
            .output()
            .unwrap()
    };
    let lock = t.root().join(".lock");
    let history = t.history_dir();
    for script in [
        format!("exec 9< '{}'", lock.display()),
        format!("ls '{}'", history.display()),
        format!("cat '{}'/*", history.display()),
    ] {
        let out = stranger(&script);
        assert!(
            !out.status.success(),
            "the stranger could: {script}\n{}",
            text(&out)
        );
    }
    // A tier made by an earlier version (0755, lock 0644) is tightened at its next write.
    chmod(&t.root(), 0o755);
    chmod(&lock, 0o644);
    assert!(stranger(&format!("exec 9< '{}'", lock.display()))
        .status
        .success());
    let out = t.install(&["alpha"]);
    assert!(out.contains("made it private"), "{out}");
    assert_eq!(mode(&t.root()), 0o700);
    assert_eq!(mode(&lock), 0o600);
    assert!(!stranger(&format!("exec 9< '{}'", lock.display()))
        .status
        .success());
}

#[test]
fn abbreviated_options_are_recorded() {
    let t = Tier::new();
    let wheels = t.wheels();
    let w = wheels.to_str().unwrap();
    let cache = t.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    t.give_away(&cache);
    std::fs::create_dir_all(t.path().join("more")).unwrap();
    common::simple_wheel(&t.path().join("more"), "epsilon", "1.0", &[], "");
    let epsilon = t.path().join("more/epsilon-1.0-py3-none-any.whl");
    t.give_away(&t.path().join("more"));
    for (args, name) in [
        (
            vec!["--retr", "0", "install", "--no-ind", "--find-l", w, "alpha"],
            "alpha",
        ),
        (
            vec![
                "--cache",
                cache.to_str().unwrap(),
                "-q",
                "install",
                "--no-index",
                "-f",
                w,
                "beta",
            ],
            "beta",
        ),
        (
            vec!["-v", "--", "install", epsilon.to_str().unwrap()],
            "epsilon",
        ),
    ] {
        let before = t.last_id();
        let out = t.pip(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        let history = t.history();
        let (id, rec, after) = history.last().unwrap();
        assert_eq!(*id, before + 1, "{args:?} was not recorded");
        assert_eq!(rec["kind"], "pip", "{rec}");
        let added = after.as_ref().unwrap()["changes"]["added"].to_string();
        assert!(added.contains(name), "{args:?}: {added}");
    }
    assert!(
        !t.history().iter().any(|(_, b, _)| b["kind"] == "external"),
        "an install went unrecorded"
    );
}

#[test]
fn the_path_block_runs_nothing_from_the_tier_path() {
    let t = Tier::bare();
    let weird = t
        .home()
        .join("it's \"$(touch dollar)\" `touch tick` \\ $HOME")
        .join("tier");
    let wheels = t.wheels();
    let out = t
        .command(&t.path().join("bin/pip"))
        .env("PYCTL_HOME", &weird)
        .args(["install", "--no-index", "--find-links"])
        .arg(&wheels)
        .arg("alpha")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let profile = std::fs::read_to_string(t.home().join(".profile")).unwrap();
    assert!(profile.contains("pyctl"), "{profile}");
    let shell = t
        .command(Path::new("/bin/sh"))
        .args(["-c", ". \"$HOME/.profile\"; printf '%s' \"$PATH\""])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&shell.stdout).into_owned();
    let bin = weird.join("venv/bin").display().to_string();
    assert!(
        path.split(':').any(|p| p == bin),
        "PATH lacks {bin}: {path}\n{}",
        text(&shell)
    );
    assert!(!t.path().join("dollar").exists() && !t.path().join("tick").exists());
}

#[test]
fn the_option_table_covers_the_real_pip() {
    let t = Tier::new();
    let table = t.path().join("table.txt");
    let out = Command::new(PYCTL).arg("__pip-options").output().unwrap();
    std::fs::write(&table, &out.stdout).unwrap();
    t.give_away(&table);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pip_options.py");
    let check = t
        .command(&t.venv().join("bin/python"))
        .arg("-I")
        .arg(&script)
        .arg(&table)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("options in pyctl's table"),
        "{}",
        text(&check)
    );
}

/// Root never makes its venv with a wheel another account can change: no fallback to ensurepip
/// (which would take the same wheel, and Debian 11's pip imports every wheel of its folder), an
/// error naming it, and no half-made venv left. The same layout, root's alone, is placed.
#[test]
fn root_makes_no_venv_with_a_wheel_another_account_can_write() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let query = |code: &str| {
        let out = Command::new("/usr/bin/python3")
            .args(["-I", "-c", code])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let version = query("import sys; print('%d.%d' % sys.version_info[:2])");
    let real_stdlib = PathBuf::from(query(
        "import sysconfig; print(sysconfig.get_path('stdlib'))",
    ));
    let real_wheels =
        query("import sysconfig; print(sysconfig.get_config_var('WHEEL_PKG_DIR') or '')");
    if real_wheels.is_empty() {
        eprintln!("skipped: this Python names no WHEEL_PKG_DIR");
        return;
    }
    // An interpreter reached through a link: pyctl reads ensurepip and the build variables
    // from `home/../lib/pythonX.Y`, here a folder of the test's whose WHEEL_PKG_DIR is `wheels`.
    let sys = SystemPrefix::new();
    let prefix = sys.path().join("py");
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", bin.join("python3")).unwrap();
    let stdlib = prefix.join("lib").join(format!("python{version}"));
    std::fs::create_dir_all(stdlib.join("ensurepip")).unwrap();
    std::fs::copy(
        real_stdlib.join("ensurepip/__init__.py"),
        stdlib.join("ensurepip/__init__.py"),
    )
    .unwrap();
    let wheels = prefix.join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    for e in std::fs::read_dir(&real_wheels).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), wheels.join(e.file_name())).unwrap();
    }
    std::fs::write(
        stdlib.join("_sysconfigdata__linux_pyctltest.py"),
        format!(
            "build_time_vars = {{'WHEEL_PKG_DIR': '{}'}}\n",
            wheels.display()
        ),
    )
    .unwrap();
    let init = || {
        sys.command(Path::new(PYCTL))
            .args(["-v", "system", "init", "--python"])
            .arg(bin.join("python3"))
            .output()
            .unwrap()
    };

    chmod(&wheels, 0o775);
    let out = init();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{}/", wheels.display()))
            && text(&out).contains("can be written by another account"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("running ensurepip"), "{}", text(&out));
    assert!(
        !sys.root().join("venv").exists(),
        "a half-made venv was left"
    );

    chmod(&wheels, 0o755);
    let out = init();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("modules to compile"), "{}", text(&out));
    let pip = Command::new(sys.root().join("venv/bin/python"))
        .args(["-I", "-m", "pip", "--version"])
        .output()
        .unwrap();
    assert!(ok("pip --version", pip).starts_with("pip "));
}

/// Where pyctl lets ensurepip run (no wheels beside the interpreter), Debian 11's ensurepip runs
/// pip as `python -c CODE` without `-I`, which puts the working folder first on the import path
/// (this machine's ensurepip passes `-I` on): root's `pyctl system init` from a folder holding a
/// `runpy.py` runs `venv` in `/`, and the planted module never runs. The interpreter is a
/// stand-in that logs the folder and arguments it was run with, then runs the real one.
#[test]
fn venv_runs_for_root_in_the_root_folder_not_the_callers() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let sys = SystemPrefix::new();
    let bin = sys.path().join("linked/bin");
    let log = sys.path().join("runs.log");
    write_exec(
        &bin.join("python3"),
        &format!(
            "#!/bin/sh\necho \"$(pwd) $*\" >> {:?}\nexec /usr/bin/python3 \"$@\"\n",
            log.to_str().unwrap()
        ),
    );
    let here = sys.path().join("here");
    std::fs::create_dir_all(&here).unwrap();
    let marker = here.join("owned");
    std::fs::write(
        here.join("runpy.py"),
        format!(
            "open({:?}, 'a').write('ran\\n')\n",
            marker.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = sys
        .command(Path::new(PYCTL))
        .current_dir(&here)
        .args(["-v", "system", "init", "--python"])
        .arg(bin.join("python3"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!marker.exists(), "runpy.py of the current folder ran");
    let runs = std::fs::read_to_string(&log).unwrap();
    let venv_runs: Vec<&str> = runs.lines().filter(|l| l.contains(" -m venv ")).collect();
    assert!(!venv_runs.is_empty(), "{runs}");
    for run in venv_runs {
        assert!(run.starts_with("/ "), "venv ran elsewhere than /: {run}");
    }
}
