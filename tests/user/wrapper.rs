//! The pip wrapper and the foundation commands (issue 2) with the real binary, real venvs and the
//! real pip, offline: wheels the tests build, an index URL nobody answers. Recorded history,
//! exit codes, freeze equality with `pip freeze --all`, Ctrl-C, races, damaged history, a
//! deleted venv, project venvs, drift, status, command-line errors and the PATH blocks of
//! `pyctl init`. One test uses the real PyPI and is ignored unless asked for.

use crate::common;

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{file_list, ok, simple_wheel, text, wait_for_file, with_base, Tier, PYCTL};
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// `pyctl --json diff ID`.
fn diff(t: &Tier, id: u64) -> Value {
    t.pyctl_json(&["diff", &id.to_string()])
}

/// Asserts the recorded outcome of entry `id`: kind, exit code and changes.
fn assert_entry(t: &Tier, id: u64, exit: i64, added: &[&str], removed: &[&str], modified: &[&str]) {
    let d = diff(t, id);
    assert_eq!(d["id"], id, "{d}");
    assert_eq!(d["kind"], "pip", "{d}");
    assert_eq!(d["exit_code"], exit, "{d}");
    assert_eq!(d["state"], if exit == 0 { "ok" } else { "failed" }, "{d}");
    assert_eq!(strings(&d["changes"]["added"]), added, "{d}");
    assert_eq!(strings(&d["changes"]["removed"]), removed, "{d}");
    let modified_found: Vec<String> = d["changes"]["modified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{} -> {}",
                m["from"].as_str().unwrap(),
                m["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(modified_found, modified, "{d}");
}

/// The freeze text of the venv now, as history files hold it.
fn freeze_text(t: &Tier) -> String {
    t.set().iter().map(|l| format!("{l}\n")).collect()
}

/// Every entry's before is the state its predecessor's after left, and the newest after is the
/// venv as it is: nothing happened between entries that the history does not show.
fn assert_history_chain(t: &Tier) {
    let history = t.history();
    for pair in history.windows(2) {
        let (id_a, _, after_a) = &pair[0];
        let (id_b, before_b, _) = &pair[1];
        let after_a = after_a
            .as_ref()
            .unwrap_or_else(|| panic!("#{id_a} has no after"));
        assert_eq!(
            after_a["freeze"], before_b["freeze"],
            "#{id_b} does not start where #{id_a} ended"
        );
    }
    let (id, _, after) = history.last().unwrap();
    let after = after
        .as_ref()
        .unwrap_or_else(|| panic!("#{id} has no after"));
    assert_eq!(after["freeze"].as_str().unwrap(), freeze_text(t), "#{id}");
}

fn assert_no_panic(what: &str, out: &Output) {
    let all = text(out);
    assert!(
        !all.contains("panicked") && !all.contains("RUST_BACKTRACE"),
        "{what} panicked:\n{all}"
    );
    assert_ne!(out.status.code(), Some(101), "{what}:\n{all}");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for a child up to `limit`; kills its process group and fails when it does not end.
fn wait_for(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn install_upgrade_downgrade_uninstall_are_recorded() {
    let t = Tier::new();
    assert_eq!(t.last_id(), 1, "init is entry #1");
    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();

    let out = t.pip(&t.install_args(wheels, &["alpha==1.0"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("recorded #2 pip install"),
        "the wrapper did not say what it recorded:\n{}",
        text(&out)
    );
    t.assert_set(&["alpha==1.0"]);
    assert_entry(&t, 2, 0, &["alpha==1.0"], &[], &[]);
    assert_eq!(
        diff(&t, 2)["command"],
        format!("pip install --no-index --find-links {wheels} alpha==1.0")
    );

    t.install(&["--upgrade", "alpha"]);
    t.assert_set(&["alpha==2.0"]);
    assert_entry(&t, 3, 0, &[], &[], &["alpha==1.0 -> alpha==2.0"]);
    let human = t.pyctl_ok(&["diff", "3"]);
    assert!(
        human.contains("upgraded") && human.contains("alpha 1.0 -> 2.0"),
        "{human}"
    );

    t.install(&["alpha==1.0"]);
    t.assert_set(&["alpha==1.0"]);
    assert_entry(&t, 4, 0, &[], &[], &["alpha==2.0 -> alpha==1.0"]);
    let human = t.pyctl_ok(&["diff", "#4"]);
    assert!(
        human.contains("downgraded") && human.contains("alpha 2.0 -> 1.0"),
        "{human}"
    );

    t.install(&["beta"]);
    t.assert_set(&["alpha==1.0", "beta==1.0"]);
    assert_entry(&t, 5, 0, &["beta==1.0"], &[], &[]);

    // Another of the wrapper's names, pip3, and pip's questions answered on the wrapper's
    // stdin.
    std::os::unix::fs::symlink(PYCTL, t.path().join("bin/pip3")).unwrap();
    let mut child = t
        .command(&t.path().join("bin/pip3"))
        .args(["uninstall", "beta", "alpha"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"y\ny\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        stdout(&out).matches("Proceed (Y/n)?").count(),
        2,
        "{}",
        text(&out)
    );
    t.assert_set(&[]);
    assert_entry(&t, 6, 0, &[], &["alpha==1.0", "beta==1.0"], &[]);
    assert_eq!(diff(&t, 6)["command"], "pip3 uninstall beta alpha");

    // The whole list, newest first, all pip entries after init, none external.
    let history = t.pyctl_json(&["history"]);
    let rows = history.as_array().unwrap();
    let ids: Vec<u64> = rows.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [6, 5, 4, 3, 2, 1]);
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["pip", "pip", "pip", "pip", "pip", "init"]);
    for r in rows {
        assert_eq!(r["state"], "ok", "{r}");
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(r["undone"], false, "{r}");
    }
    assert_eq!(
        strings(&rows[4]["changes"]["added"]),
        ["alpha==1.0"],
        "{}",
        rows[4]
    );
    let limited = t.pyctl_json(&["history", "--limit", "2"]);
    assert_eq!(limited.as_array().unwrap().len(), 2);
    let human = t.pyctl_ok(&["history"]);
    for needle in ["#6", "pip3 uninstall beta alpha", "(2 removed)", "#1"] {
        assert!(human.contains(needle), "{needle:?} not in:\n{human}");
    }
    assert_history_chain(&t);
    // The venv's own pip scripts are pyctl's shims again after every operation.
    let shim = std::fs::read_to_string(t.venv().join("bin/pip")).unwrap();
    assert!(shim.starts_with("#!/bin/sh"), "{shim}");
}

#[test]
fn a_failed_install_keeps_pips_exit_code_and_is_recorded() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    let set = t.set();
    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();

    // No such version in the wheel folder: pip exits 1.
    let out = t.pip(&t.install_args(wheels, &["alpha==9.9"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("No matching distribution"),
        "pip's own error is not shown:\n{}",
        text(&out)
    );
    assert!(stderr(&out).contains("pip exited 1"), "{}", text(&out));
    assert_eq!(t.set(), set);
    assert_entry(&t, 3, 1, &[], &[], &[]);

    // An option pip does not know: pip's usage error, exit 2, kept as is.
    let out = t.pip(&["install", "--no-such-option", "alpha"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(t.set(), set);
    assert_entry(&t, 4, 2, &[], &[], &[]);

    // A half-possible request installs nothing: pip resolves everything first.
    let out = t.pip(&t.install_args(wheels, &["beta", "gamma-missing"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(t.set(), set);
    assert_entry(&t, 5, 1, &[], &[], &[]);

    let human = t.pyctl_ok(&["history"]);
    assert!(human.contains("failed (exit 1)"), "{human}");
    assert!(human.contains("failed (exit 2)"), "{human}");
    let status = t.pyctl_json(&["status"]);
    assert_eq!(status["last_operation"]["id"], 5, "{status}");
    assert_eq!(status["last_operation"]["state"], "failed", "{status}");
    assert_history_chain(&t);
}

#[test]
fn read_only_pip_commands_run_unrecorded() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    let history_files = file_list(&t.history_dir());
    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();

    let out = t.pip(&["freeze", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines, t.set());
    let out = t.pip(&["show", "alpha"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("Version: 1.0"), "{}", text(&out));
    let out = t.pip(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains(&t.venv().display().to_string()),
        "not the tier's pip: {}",
        text(&out)
    );
    let out = t.pip(&t.install_args(wheels, &["--dry-run", "beta"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("Would install"), "{}", text(&out));
    let out = t.pip(&["install", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // pip's own failure comes through unchanged.
    let out = t.pip(&["show", "no-such-project"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    t.assert_set(&["alpha==1.0"]);
    assert_eq!(
        file_list(&t.history_dir()),
        history_files,
        "a read-only command was recorded"
    );

    // pip3.X of the tier's own Python is the same tier; a Python that is not installed is a
    // clear error.
    let minor = t.pyctl_json(&["status"])["python"]
        .as_str()
        .unwrap()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let versioned = t.path().join(format!("bin/pip{minor}"));
    std::os::unix::fs::symlink(PYCTL, &versioned).unwrap();
    let out = t
        .command(&versioned)
        .args(t.install_args(wheels, &["delta"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    t.assert_set(&["alpha==1.0", "delta==1.0"]);
    assert_entry(&t, 3, 0, &["delta==1.0"], &[], &[]);
    let missing = t.path().join("bin/pip3.99");
    std::os::unix::fs::symlink(PYCTL, &missing).unwrap();
    let out = t
        .command(&missing)
        .args(t.install_args(wheels, &["beta"]))
        .output()
        .unwrap();
    assert_no_panic("pip3.99", &out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("pyctl: error: Python 3.99 is not installed"),
        "{}",
        text(&out)
    );
    assert!(
        !t.root().join("py399").exists(),
        "a tier folder was left behind for a Python that is not installed"
    );
    t.assert_set(&["alpha==1.0", "delta==1.0"]);
}

/// A setuptools project (metadata in pyproject.toml, a one-line setup.py) installed in
/// development mode with the setuptools already in the venv: pip's legacy `setup.py develop`
/// (an `.egg-link` and `easy-install.pth`), since PEP 660 needs the `wheel` package which the
/// venv does not have and the tests cannot download.
fn setuptools_project(dir: &Path) -> PathBuf {
    let proj = dir.join("zeta-src");
    std::fs::create_dir_all(proj.join("zeta")).unwrap();
    std::fs::write(proj.join("zeta/__init__.py"), "Z = 'editable'\n").unwrap();
    std::fs::write(
        proj.join("pyproject.toml"),
        "[project]\nname = \"zeta\"\nversion = \"0.3\"\n",
    )
    .unwrap();
    std::fs::write(
        proj.join("setup.py"),
        "from setuptools import setup\nsetup()\n",
    )
    .unwrap();
    proj
}

#[test]
fn an_editable_setuptools_install_freezes_as_pip_does() {
    let t = Tier::new();
    let proj = setuptools_project(t.path());
    t.give_away(&proj);
    let proj_str = proj.to_str().unwrap();
    let out = t.pip(&[
        "install",
        "--no-index",
        "--no-build-isolation",
        "--no-use-pep517",
        "-e",
        proj_str,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        t.site_packages().join("zeta.egg-link").is_file(),
        "not a develop install: {:?}",
        file_list(&t.site_packages())
    );
    // `set` asserts pyctl freeze == pip freeze --all, comment line and all.
    let set = t.set();
    let editable = format!("-e {proj_str}");
    let comment = "# Editable install with no version control (zeta==0.3)".to_string();
    let at = set
        .iter()
        .position(|l| *l == editable)
        .expect("the -e line");
    assert!(at > 0 && set[at - 1] == comment, "{set:?}");
    let d = diff(&t, 2);
    assert_eq!(d["exit_code"], 0, "{d}");
    assert_eq!(strings(&d["changes"]["added"]), [editable.as_str()], "{d}");
    let import = ok(
        "import zeta",
        t.command(&t.venv().join("bin/python"))
            .args(["-c", "import zeta; print(zeta.Z)"])
            .output()
            .unwrap(),
    );
    assert_eq!(import.trim(), "editable");
    let out = t.pip(&["uninstall", "-y", "zeta"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    t.assert_set(&[]);
    assert_entry(&t, 3, 0, &[], &[&editable], &[]);
    assert_history_chain(&t);
}

#[test]
fn direct_url_installs_freeze_as_pip_does() {
    let t = Tier::new();
    // A relative path to a wheel.
    let out = t.pip(&["install", "./wheels/alpha-1.0-py3-none-any.whl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let alpha_url = format!(
        "alpha @ file://{}/alpha-1.0-py3-none-any.whl",
        t.wheels().display()
    );
    t.assert_set(&[&alpha_url]);
    assert_entry(&t, 2, 0, &[&alpha_url], &[], &[]);

    // A file:// URL into a folder whose name needs quoting.
    let spaced = t.path().join("wheel folder");
    std::fs::create_dir(&spaced).unwrap();
    std::fs::copy(
        t.wheels().join("beta-1.0-py3-none-any.whl"),
        spaced.join("beta-1.0-py3-none-any.whl"),
    )
    .unwrap();
    t.give_away(&spaced);
    let url = format!(
        "file://{}/wheel%20folder/beta-1.0-py3-none-any.whl",
        t.path().display()
    );
    let out = t.pip(&["install", "--no-index", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let beta_url = format!("beta @ {url}");
    t.assert_set(&[&alpha_url, &beta_url]);
    assert_entry(&t, 3, 0, &[&beta_url], &[], &[]);

    // The index copy of the same version replaces the direct URL one: a change, recorded.
    t.install(&["--force-reinstall", "--no-deps", "alpha==1.0"]);
    t.assert_set(&["alpha==1.0", &beta_url]);
    assert_entry(&t, 4, 0, &[], &[], &[&format!("{alpha_url} -> alpha==1.0")]);
    assert_history_chain(&t);
}

/// A project whose in-tree build backend never finishes: importing it writes `started` into
/// the project folder, then waits until its parent (pip) is gone, at most two minutes.
fn stalling_project(dir: &Path) -> PathBuf {
    let proj = dir.join("slow-src");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("pyproject.toml"),
        "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n\n\
         [project]\nname = \"slow\"\nversion = \"1.0\"\n",
    )
    .unwrap();
    std::fs::write(
        proj.join("backend.py"),
        "import os, time\n\
         with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'started'), 'w') as f:\n\
         \x20   f.write(str(os.getpid()))\n\
         parent = os.getppid()\n\
         deadline = time.time() + 120\n\
         while os.getppid() == parent and time.time() < deadline:\n\
         \x20   time.sleep(0.1)\n\
         raise SystemExit('the stalling backend gave up')\n",
    )
    .unwrap();
    proj
}

/// Starts `pip install --no-build-isolation ./slow-src` in a process group of its own and waits
/// until pip is stuck in the backend.
fn start_stalled_install(t: &Tier) -> Child {
    let proj = stalling_project(t.path());
    t.give_away(&proj);
    let child = t
        .command(&t.path().join("bin/pip"))
        .args([
            "install",
            "--no-index",
            "--no-build-isolation",
            "./slow-src",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for_file(
        &proj.join("started"),
        Duration::from_secs(60),
        "stalled install",
    );
    child
}

/// After the wrapper ended on a signal: it exited with pip's non-zero code, the entry is
/// complete with that code, nothing changed, and the set is what the history says.
fn assert_interrupted_install_recorded(t: &Tier, out: &Output, what: &str) {
    let code = out.status.code();
    assert!(
        matches!(code, Some(c) if c != 0),
        "{what}: the wrapper exited {:?}:\n{}",
        out.status,
        text(out)
    );
    assert_no_panic(what, out);
    let history = t.history();
    let (id, before, after) = history.last().unwrap();
    assert_eq!(*id, 2, "{what}: {history:?}");
    assert_eq!(before["kind"], "pip");
    let after = after
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no after file for #{id}:\n{}", text(out)));
    assert_eq!(
        after["exit_code"].as_i64(),
        code.map(i64::from),
        "{what}: {after}"
    );
    assert!(after.get("interrupted").is_none(), "{what}: {after}");
    t.assert_set(&[]);
    assert_entry(t, 2, code.unwrap().into(), &[], &[], &[]);
    assert!(
        stderr(out).contains("recorded #2 pip install"),
        "{what}:\n{}",
        text(out)
    );
    assert_history_chain(t);
    // The tier is free again: the next install goes through at once.
    t.install(&["alpha==1.0"]);
    t.assert_set(&["alpha==1.0"]);
}

/// Whether any process is left in a process group.
fn group_alive(pgid: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
}

/// Waits for an interrupted wrapper to end, then checks what it left.
fn interrupted_install_recorded(t: &Tier, mut child: Child, what: &str) {
    wait_for(
        &mut child,
        Duration::from_secs(60),
        "the interrupted wrapper",
    );
    let out = child.wait_with_output().unwrap();
    assert_interrupted_install_recorded(t, &out, what);
}

#[test]
fn ctrl_c_during_pip_still_writes_the_after_file() {
    let t = Tier::new();
    let child = start_stalled_install(&t);
    let pgid = child.id() as i32;
    // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    interrupted_install_recorded(&t, child, "SIGINT to the group");
    let start = Instant::now();
    while group_alive(pgid) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !group_alive(pgid),
        "processes of the interrupted pip are left behind"
    );
}

#[test]
fn sigint_to_the_wrapper_alone_reaches_pip() {
    let t = Tier::new();
    let child = start_stalled_install(&t);
    // Not from a terminal: only the wrapper gets it, and passes it on to pip.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    interrupted_install_recorded(&t, child, "SIGINT to the wrapper");
}

#[test]
fn two_wrappers_racing_on_one_tier_both_get_recorded() {
    let t = Tier::new();
    simple_wheel(&t.wheels(), "eta", "1.0", &[], "E = 1\n");
    t.give_away(&t.wheels());
    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();
    let spawn = |pkg: &str| {
        t.command(&t.path().join("bin/pip"))
            .args(t.install_args(wheels, &[pkg]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("alpha==1.0");
    let b = spawn("eta");
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    assert!(
        text(&a).contains("waiting for another pip")
            || text(&b).contains("waiting for another pip"),
        "the two did not overlap, nothing was raced:\n{}\n{}",
        text(&a),
        text(&b)
    );
    t.assert_set(&["alpha==1.0", "eta==1.0"]);
    let history = t.history();
    let ids: Vec<u64> = history.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, [1, 2, 3], "{history:?}");
    let mut added: Vec<Vec<String>> = [2, 3]
        .iter()
        .map(|id| {
            let d = diff(&t, *id);
            assert_eq!(d["kind"], "pip", "{d}");
            assert_eq!(d["exit_code"], 0, "{d}");
            strings(&d["changes"]["added"])
        })
        .collect();
    added.sort();
    assert_eq!(added, [vec!["alpha==1.0"], vec!["eta==1.0"]]);
    assert_history_chain(&t);
}

#[test]
fn a_corrupt_history_file_is_reported_and_skipped() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.install(&["beta"]);
    let corrupt = t.history_dir().join("003_after.json");
    std::fs::write(&corrupt, "{ this is not json").unwrap();
    let foreign = t.history_dir().join("notes.txt");
    std::fs::write(&foreign, "my own notes\n").unwrap();
    t.give_away(&t.history_dir());

    let out = t.pyctl(&["history"]);
    assert_no_panic("pyctl history", &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}: corrupt history file", corrupt.display())),
        "the corrupt file is not named:\n{err}"
    );
    assert!(
        err.contains(&format!("{}: not a pyctl history file", foreign.display())),
        "the foreign file is not named:\n{err}"
    );
    let listing = stdout(&out);
    assert!(
        listing.contains("#2") && listing.contains("#1"),
        "{listing}"
    );
    let json = t.pyctl_json(&["history"]);
    assert!(
        json.as_array().unwrap().iter().any(|r| r["id"] == 2),
        "{json}"
    );

    let out = t.pyctl(&["status"]);
    assert_no_panic("pyctl status", &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!("unreadable history file {}", corrupt.display())),
        "{}",
        text(&out)
    );

    // The next install works, goes above the damaged entry, and leaves the file alone.
    let out = t.pip(&t.install_args(t.wheels().to_str().unwrap(), &["delta"]));
    assert_no_panic("pip install", &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains(&corrupt.display().to_string()),
        "{}",
        text(&out)
    );
    t.assert_set(&["alpha==1.0", "beta==1.0", "delta==1.0"]);
    assert_eq!(
        std::fs::read_to_string(&corrupt).unwrap(),
        "{ this is not json"
    );
    assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "my own notes\n");
    let history = t.pyctl_json(&["history"]);
    let newest = &history.as_array().unwrap()[0];
    assert!(newest["id"].as_u64().unwrap() > 3, "{history}");
    assert_eq!(newest["kind"], "pip", "{newest}");
    assert_eq!(
        strings(&newest["changes"]["added"]),
        ["delta==1.0"],
        "{newest}"
    );
    // #3 finished (its after file is there, only unreadable): not an interrupted operation
    // that some next operation would complete, neither in status nor in the listing.
    let status = t.pyctl_json(&["status"]);
    let problems = strings(&status["problems"]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&corrupt.display().to_string())),
        "{problems:?}"
    );
    assert!(
        !problems.iter().any(|p| p.contains("interrupted")),
        "{problems:?}"
    );
    let row3 = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == 3)
        .unwrap_or_else(|| panic!("#3 is not listed: {history}"));
    assert_eq!(row3["state"], "unreadable", "{row3}");
    let newest_after = t
        .history_dir()
        .join(format!("{:03}_after.json", newest["id"].as_u64().unwrap()));
    let after: Value = serde_json::from_slice(&std::fs::read(newest_after).unwrap()).unwrap();
    assert_eq!(after["freeze"].as_str().unwrap(), freeze_text(&t));
}

#[test]
fn a_deleted_venv_is_reported_and_recreated_by_the_next_install() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    std::fs::remove_dir_all(t.venv()).unwrap();

    let out = t.pyctl(&["status"]);
    assert_no_panic("pyctl status", &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = stdout(&out);
    assert!(
        status.contains(&format!(
            "the venv {} is missing; the next `pip install` re-creates it",
            t.venv().display()
        )),
        "{status}"
    );
    let json = t.pyctl_json(&["status"]);
    assert_eq!(json["venv_exists"], false, "{json}");
    assert_eq!(json["packages"], Value::Null, "{json}");

    let out = t.pyctl(&["freeze"]);
    assert_no_panic("pyctl freeze", &out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("no venv at {} yet", t.venv().display())),
        "{}",
        text(&out)
    );

    let out = t.pip(&t.install_args(t.wheels().to_str().unwrap(), &["beta"]));
    assert_no_panic("pip install", &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "creating the user tier's venv {}",
            t.venv().display()
        )),
        "{}",
        text(&out)
    );
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    // The loss of the venv, the new venv and the install are all in the history.
    let history = t.pyctl_json(&["history"]);
    let rows = history.as_array().unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["pip", "init", "external", "pip", "init"],
        "{history}"
    );
    assert_eq!(
        strings(&rows[2]["changes"]["removed"]),
        with_base(&t.base, &["alpha==1.0"]),
        "{history}"
    );
    assert_eq!(
        strings(&rows[0]["changes"]["added"]),
        ["alpha==2.0", "beta==1.0"],
        "{history}"
    );
    assert_history_chain(&t);
    let status = t.pyctl_json(&["status"]);
    assert_eq!(status["venv_exists"], true, "{status}");
}

/// A venv of the test account's own, made by the real Python, outside the tier.
fn project_venv(t: &Tier) -> PathBuf {
    let venv = t.path().join("project-venv");
    ok(
        "python3 -m venv",
        t.command(Path::new("/usr/bin/python3"))
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .unwrap(),
    );
    venv
}

#[test]
fn virtual_env_passes_through_unrecorded() {
    let t = Tier::new();
    let project = project_venv(&t);
    let history_files = file_list(&t.history_dir());
    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();
    let with_venv = |args: &[&str]| {
        t.command(&t.path().join("bin/pip"))
            .env("VIRTUAL_ENV", &project)
            .args(args)
            .output()
            .unwrap()
    };
    let out = with_venv(&t.install_args(wheels, &["beta"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!stderr(&out).contains("recorded #"), "{}", text(&out));
    let project_freeze = ok(
        "project pip freeze",
        t.command(&project.join("bin/python"))
            .args(["-m", "pip", "freeze"])
            .output()
            .unwrap(),
    );
    assert!(
        project_freeze.contains("alpha==2.0") && project_freeze.contains("beta==1.0"),
        "{project_freeze}"
    );
    // pip's exit code comes straight through too.
    let out = with_venv(&t.install_args(wheels, &["alpha==9.9"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The tier saw nothing.
    t.assert_set(&[]);
    assert_eq!(file_list(&t.history_dir()), history_files);
    // VIRTUAL_ENV naming the tier's own venv (an activated tier) is still recorded.
    let out = t
        .command(&t.path().join("bin/pip"))
        .env("VIRTUAL_ENV", t.venv())
        .args(t.install_args(wheels, &["alpha==1.0"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    t.assert_set(&["alpha==1.0"]);
    assert_entry(&t, 2, 0, &["alpha==1.0"], &[], &[]);
}

#[test]
fn changes_made_with_python_m_pip_become_an_external_entry() {
    let t = Tier::new();
    simple_wheel(&t.wheels(), "eta", "1.0", &[], "E = 1\n");
    t.give_away(&t.wheels());
    t.install(&["alpha==1.0"]);
    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();
    ok(
        "python -m pip install",
        t.venv_pip(&[
            "install",
            "--no-index",
            "--find-links",
            wheels,
            "--upgrade",
            "alpha",
            "beta",
        ]),
    );
    assert_eq!(t.last_id(), 2, "python -m pip was recorded");
    let status = t.pyctl_ok(&["status"]);
    assert!(
        status.contains("the venv was changed outside pyctl"),
        "{status}"
    );

    let out = t.pip(&t.install_args(wheels, &["eta"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains("recorded #3: changes made outside pyctl (1 added, 1 changed)"),
        "{}",
        text(&out)
    );
    t.assert_set(&["alpha==2.0", "beta==1.0", "eta==1.0"]);
    let external = diff(&t, 3);
    assert_eq!(external["kind"], "external", "{external}");
    assert_eq!(external["exit_code"], 0, "{external}");
    assert_eq!(strings(&external["changes"]["added"]), ["beta==1.0"]);
    assert_eq!(external["changes"]["modified"][0]["from"], "alpha==1.0");
    assert_eq!(external["changes"]["modified"][0]["to"], "alpha==2.0");
    assert_entry(&t, 4, 0, &["eta==1.0"], &[], &[]);
    assert_history_chain(&t);
    let status = t.pyctl_ok(&["status"]);
    assert!(!status.contains("changed outside pyctl"), "{status}");
}

#[test]
fn status_shows_tier_venv_python_packages_and_last_op() {
    let t = Tier::new();
    t.install(&["beta"]);
    let python = ok(
        "python version",
        t.command(&t.venv().join("bin/python"))
            .args(["-c", "import platform; print(platform.python_version())"])
            .output()
            .unwrap(),
    );
    let python = python.trim();
    let count = t.set().len();
    assert_eq!(count, t.base.len() + 2);

    let human = t.pyctl_ok(&["status"]);
    let expect = [
        "tier      user".to_string(),
        format!("venv      {}", t.venv().display()),
        format!("python    {python}"),
        format!("packages  {count}"),
    ];
    for line in &expect {
        assert!(
            human.lines().any(|l| l == line),
            "{line:?} not in:\n{human}"
        );
    }
    let wheels = t.wheels();
    let last = human
        .lines()
        .find(|l| l.starts_with("last op   "))
        .unwrap_or_else(|| panic!("no last op:\n{human}"));
    assert!(
        last.starts_with(&format!(
            "last op   #2 pip install --no-index --find-links {} beta (",
            wheels.display()
        )) && last.ends_with(", ok)"),
        "{last}"
    );

    let json = t.pyctl_json(&["status"]);
    assert_eq!(json["tier"], "user");
    assert_eq!(json["venv"], t.venv().display().to_string());
    assert_eq!(json["root"], t.root().display().to_string());
    assert_eq!(json["venv_exists"], true);
    assert_eq!(json["python"], python);
    assert_eq!(json["packages"], count);
    assert_eq!(json["last_operation"]["id"], 2);
    assert_eq!(json["last_operation"]["state"], "ok");
    // PATH in these tests does not hold the venv's bin: the one problem status reports.
    let problems = strings(&json["problems"]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("is not on PATH"), "{problems:?}");
}

/// `pyctl ARGS` that must fail on its command line: exit 2, a message on stderr naming `needle`.
fn assert_usage_error(t: &Tier, args: &[&str], needle: &str) {
    let out = t.pyctl(args);
    assert_no_panic(&format!("pyctl {args:?}"), &out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "pyctl {args:?}:\n{}",
        text(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(needle),
        "pyctl {args:?}: {needle:?} not in:\n{err}"
    );
    assert!(stdout(&out).is_empty(), "pyctl {args:?}: {}", stdout(&out));
}

#[test]
fn unknown_commands_and_bad_arguments_exit_2() {
    let t = Tier::bare();
    assert_usage_error(&t, &["frobnicate"], "unrecognized subcommand 'frobnicate'");
    assert_usage_error(&t, &["history", "--limit", "many"], "invalid value 'many'");
    assert_usage_error(&t, &["diff", "0"], "is not an entry id");
    assert_usage_error(&t, &["diff", "x1"], "is not an entry id");
    assert_usage_error(&t, &["undo", "2", "--to", "3"], "cannot be used with");
    assert_usage_error(&t, &["status", "--bogus"], "unexpected argument '--bogus'");
    assert_usage_error(
        &t,
        &["--color", "purple", "status"],
        "invalid value 'purple'",
    );
    assert_usage_error(&t, &["self"], "Usage");
    assert_usage_error(&t, &[], "Usage");
    // None of that made a tier.
    assert!(!t.root().exists());
    // A well-formed command about something that is not there is an error, not a usage error.
    t.pyctl_ok(&["init", "--no-modify-path"]);
    let out = t.pyctl(&["diff", "99"]);
    assert_no_panic("pyctl diff 99", &out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("pyctl: error: no entry #99"),
        "{}",
        text(&out)
    );
}

/// The start-up files of a home with bash, zsh and fish.
const RC_FILES: [(&str, &str); 3] = [
    (".profile", "# my profile\nexport EDITOR=vi\n"),
    (".bashrc", "alias ll='ls -l'\n"),
    (".zshrc", "setopt autocd\n"),
];

#[test]
fn init_adds_one_path_block_per_shell_and_self_uninstall_removes_them() {
    assert!(
        !Path::new("/etc/profile.d/pyctl.sh").exists(),
        "/etc/profile.d/pyctl.sh exists: pyctl leaves rc files alone then, this test cannot run"
    );
    let t = Tier::bare();
    let home = t.home();
    for (name, content) in RC_FILES {
        std::fs::write(home.join(name), content).unwrap();
    }
    std::fs::create_dir_all(home.join(".config/fish")).unwrap();
    t.give_away(&home);
    let fish = home.join(".config/fish/conf.d/pyctl.fish");
    let marker = "# >>> pyctl >>>";

    let out = t.pyctl_ok(&["init"]);
    assert!(out.contains("added") && out.contains("to PATH in"), "{out}");
    let bin = "\"$HOME\"'/tier/venv/bin'";
    let mut after_first = Vec::new();
    for (name, content) in RC_FILES {
        let now = std::fs::read_to_string(home.join(name)).unwrap();
        assert!(
            now.starts_with(content),
            "{name}: the user's lines changed:\n{now}"
        );
        assert_eq!(now.matches(marker).count(), 1, "{name}:\n{now}");
        assert!(now.contains("# <<< pyctl <<<"), "{name}:\n{now}");
        assert!(
            now.contains(&format!("pyctl_bin={bin}\n"))
                && now.contains("export PATH=\"$pyctl_bin:$PATH\""),
            "{name}:\n{now}"
        );
        after_first.push(now);
    }
    let fish_text = std::fs::read_to_string(&fish).unwrap();
    assert_eq!(fish_text.matches(marker).count(), 1, "{fish_text}");
    assert!(
        fish_text.contains(&format!("set -gx PATH {bin} $PATH")),
        "{fish_text}"
    );

    // The block works, and sourcing it twice adds the folder once.
    let path = ok(
        "sh -c . ~/.profile",
        t.command(Path::new("/bin/sh"))
            .args([
                "-c",
                ". \"$HOME/.profile\"; . \"$HOME/.profile\"; echo \"$PATH\"",
            ])
            .output()
            .unwrap(),
    );
    let venv_bin = t.venv().join("bin").display().to_string();
    let dirs: Vec<&str> = path.trim().split(':').collect();
    assert_eq!(dirs[0], venv_bin, "{path}");
    assert_eq!(dirs.iter().filter(|d| **d == venv_bin).count(), 1, "{path}");

    // Idempotent: a second init changes nothing.
    t.pyctl_ok(&["init"]);
    for ((name, _), first) in RC_FILES.iter().zip(&after_first) {
        assert_eq!(
            &std::fs::read_to_string(home.join(name)).unwrap(),
            first,
            "{name}"
        );
    }
    assert_eq!(std::fs::read_to_string(&fish).unwrap(), fish_text);

    let out = t.pyctl_ok(&["self", "uninstall"]);
    assert!(out.contains("removed the PATH lines from"), "{out}");
    for (name, content) in RC_FILES {
        assert_eq!(
            std::fs::read_to_string(home.join(name)).unwrap(),
            content,
            "{name} is not as it was"
        );
    }
    assert!(!fish.exists(), "{} is left behind", fish.display());
    // The tier is kept, and a second uninstall finds nothing to remove.
    assert!(t.venv().join("pyvenv.cfg").is_file());
    let out = t.pyctl_ok(&["self", "uninstall"]);
    assert!(out.contains("no PATH lines of pyctl found"), "{out}");
}

#[test]
fn the_first_pip_install_creates_the_tier() {
    let t = Tier::bare();
    let out = t.pyctl(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("state     not created yet"),
        "{}",
        text(&out)
    );
    assert!(!t.root().exists(), "status made the tier");
    let out = t.pip(&t.install_args(t.wheels().to_str().unwrap(), &["alpha==1.0"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let history = t.pyctl_json(&["history"]);
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["pip", "init"], "{history}");
    let set = t.set();
    assert!(set.iter().any(|l| l.starts_with("pip==")), "{set:?}");
    assert!(set.contains(&"alpha==1.0".to_string()), "{set:?}");
    assert_entry(&t, 2, 0, &["alpha==1.0"], &[], &[]);
    assert!(t.root().join("snapshots/baseline.txt").is_file());
    // No --no-modify-path on a first install: PATH goes into ~/.profile.
    let profile = std::fs::read_to_string(t.home().join(".profile")).unwrap();
    assert!(profile.contains("\"$HOME\"'/tier/venv/bin'"), "{profile}");
}

/// Where Debian's python3-venv keeps the pip wheel ensurepip installs (python3-pip-whl).
const DISTRO_WHEELS: &str = "/usr/share/python-wheels";

#[test]
fn the_venvs_own_pip_scripts_record_and_are_remade_after_pip_rewrites_them() {
    let t = Tier::new();
    let bin = t.venv().join("bin");
    let minor = t.pyctl_json(&["status"])["python"]
        .as_str()
        .unwrap()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let names = ["pip".to_string(), "pip3".to_string(), format!("pip{minor}")];
    let assert_shims = |when: &str| {
        for name in &names {
            let script = std::fs::read_to_string(bin.join(name)).unwrap();
            assert!(
                script.starts_with("#!/bin/sh\n# pyctl shim"),
                "{when}: bin/{name} is not pyctl's shim:\n{script}"
            );
        }
    };
    assert_shims("after init");

    // A PATH that finds the venv's bin first still records.
    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();
    let out = t
        .command(&bin.join("pip3"))
        .args(t.install_args(wheels, &["alpha==1.0"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    t.assert_set(&["alpha==1.0"]);
    assert_entry(&t, 2, 0, &["alpha==1.0"], &[], &[]);
    assert_eq!(
        diff(&t, 2)["command"],
        format!("pip3 install --no-index --find-links {wheels} alpha==1.0")
    );

    // pip reinstalling itself writes its own console scripts over the shims.
    assert!(
        Path::new(DISTRO_WHEELS).is_dir(),
        "{DISTRO_WHEELS} (python3-venv's pip wheel) is missing"
    );
    let before = std::fs::metadata(bin.join("pip")).unwrap();
    let out = t.pip(&[
        "install",
        "--no-index",
        "--find-links",
        DISTRO_WHEELS,
        "--force-reinstall",
        "pip",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("Successfully installed pip"),
        "{}",
        text(&out)
    );
    // A new file: another inode, or the same inode number reused with another birth time.
    use std::os::unix::fs::MetadataExt as _;
    let after = std::fs::metadata(bin.join("pip")).unwrap();
    assert_ne!(
        (after.ino(), after.created().ok()),
        (before.ino(), before.created().ok()),
        "pip did not rewrite bin/pip: nothing was tested"
    );
    assert_shims("after pip reinstalled itself");
    t.assert_set(&["alpha==1.0"]);
    assert_entry(&t, 3, 0, &[], &[], &[]);
    let out = t
        .command(&bin.join(&names[2]))
        .args(["uninstall", "-y", "alpha"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    t.assert_set(&[]);
    assert_entry(&t, 4, 0, &[], &["alpha==1.0"], &[]);
    assert_history_chain(&t);
}

#[test]
#[ignore = "needs PyPI"]
fn requests_and_black_from_pypi_freeze_as_pip_does() {
    let t = Tier::new();
    let out = t
        .command(&t.path().join("bin/pip"))
        .env("PIP_INDEX_URL", "https://pypi.org/simple")
        .env("PIP_TIMEOUT", "60")
        .env("PIP_RETRIES", "3")
        .args(["install", "requests", "black"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let set = t.set();
    for name in ["requests==", "black==", "urllib3==", "certifi==", "click=="] {
        assert!(
            set.iter().any(|l| l.starts_with(name)),
            "{name} missing: {set:?}"
        );
    }
    let d = diff(&t, 2);
    assert_eq!(d["exit_code"], 0, "{d}");
    let added = strings(&d["changes"]["added"]);
    let expected: Vec<String> = set.into_iter().filter(|l| !t.base.contains(l)).collect();
    assert_eq!(added, expected);
    assert_history_chain(&t);
    assert!(t.pip_check_passes());
}

/// The listing commands end quietly when their reader has gone (`pyctl history | head -1`):
/// killed by SIGPIPE as `ls` or `cat` would be, never a panic.
#[test]
fn listings_to_a_closed_pipe_end_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    for args in [
        &["history"][..],
        &["--json", "history"],
        &["freeze"],
        &["status"],
        &["diff"],
        &["list-snapshots"],
    ] {
        // A pipe whose reading end is closed before pyctl starts: every write fails.
        let (read, write) = common::pipe();
        drop(read);
        let out = t
            .command(Path::new(common::PYCTL))
            .args(args)
            .stdout(std::process::Stdio::from(write))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "pyctl {args:?}: {stderr}");
        assert!(
            out.status.signal() == Some(nix::libc::SIGPIPE) || out.status.success(),
            "pyctl {args:?}: {:?} {stderr}",
            out.status
        );
        assert_ne!(out.status.code(), Some(101), "pyctl {args:?}: {stderr}");
    }
}

/// Issue 17: `pip install --user`, `PIP_USER=1` and `user = true` in a pip.conf, habits from
/// before PEP 668, go to the tier with one line saying so, instead of pip's "Can not perform a
/// '--user' install" in a venv.
#[test]
fn old_user_habits_install_into_the_tier() {
    let t = Tier::new();
    let wheels = t.wheels();
    let w = wheels.to_str().unwrap();
    let out = t.pip(&["install", "--user", "--no-index", "-f", w, "alpha==1.0"]);
    let said = common::ok("pip install --user", out);
    assert!(
        said.contains("--user is not needed and was dropped"),
        "{said}"
    );
    let (_, before, _) = t.history().pop().unwrap();
    assert!(
        before["command"]
            .as_str()
            .unwrap()
            .ends_with("(--user dropped)"),
        "{before}"
    );
    assert!(
        !before["pip_args"].to_string().contains("--user"),
        "{before}"
    );
    t.assert_set(&["alpha==1.0"]);

    let env_user = t
        .command(&t.path().join("bin/pip"))
        .env("PIP_USER", "1")
        .args(["install", "--no-index", "-f", w, "beta"])
        .output()
        .unwrap();
    let said = common::ok("PIP_USER=1 pip install", env_user);
    assert!(
        said.contains("PIP_USER in the environment is ignored"),
        "{said}"
    );

    let conf = t.path().join("pip.conf");
    std::fs::write(&conf, "[install]\nuser = true\n").unwrap();
    t.give_away(&conf);
    let with_conf = |args: &[&str]| {
        t.command(&t.path().join("bin/pip"))
            .env("PIP_CONFIG_FILE", &conf)
            .args(args)
            .output()
            .unwrap()
    };
    let said = common::ok(
        "pip install with user = true",
        with_conf(&["install", "--no-index", "-f", w, "alpha==2.0"]),
    );
    assert!(
        said.contains(&format!("`user = true` in {} is ignored", conf.display())),
        "{said}"
    );
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    // `pip config` still shows the file as it is.
    let shown = common::ok("pip config list", with_conf(&["config", "list"]));
    assert!(shown.contains("install.user='true'"), "{shown}");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "[install]\nuser = true\n"
    );

    // list and freeze with --user: everything in the tier is the user's.
    let listed = common::ok("pip list --user", t.pip(&["list", "--user"]));
    assert!(
        listed.contains("alpha") && listed.contains("beta"),
        "{listed}"
    );
    let frozen = common::ok("pip freeze --user", t.pip(&["freeze", "--user"]));
    assert!(frozen.contains("alpha==2.0"), "{frozen}");
    let gone = common::ok(
        "pip uninstall --user",
        t.pip(&["uninstall", "--user", "-y", "beta"]),
    );
    assert!(gone.contains("--user is not needed"), "{gone}");
    t.assert_set(&["alpha==2.0"]);
}
