//! Reliability and security under faults, load and hostile input (issue 7), with the real
//! binary, real venvs and the real pip, offline. Each test says what it does to pyctl and what
//! must still hold afterwards; RELIABILITY.md lists them with their counts and results.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ok, simple_wheel, text, wheel, Tier};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `mid` 1.0: 400 modules, so that pip takes a while to install it and a kill can land
/// half-way through.
fn mid_wheel(dir: &Path) {
    let files: Vec<(String, String)> = (0..400)
        .map(|i| (format!("mid/m{}/f{i}.py", i / 50), format!("X = {i}\n")))
        .chain((0..8).map(|m| (format!("mid/m{m}/__init__.py"), String::new())))
        .chain(std::iter::once((
            "mid/__init__.py".to_string(),
            String::new(),
        )))
        .collect();
    wheel(dir, "mid", "1.0", &["alpha"], &files);
}

/// The freeze lines of a history record.
fn freeze_of(record: &serde_json::Value) -> Vec<String> {
    record["freeze"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `pyctl freeze`, without asking pip (the loops run it often).
fn fast_set(t: &Tier) -> Vec<String> {
    common::stdout_lines(&t.pyctl_ok(&["-q", "freeze"]))
}

/// Every file of `history/` parses as JSON and no temp file is left there or in `snapshots/`;
/// every snapshot line is a requirement or a comment.
fn assert_files_whole(t: &Tier, what: &str) {
    for e in std::fs::read_dir(t.history_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp-")
        {
            // A write killed half-way; the next locked operation removes it (checked below).
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or_else(|err| panic!("{what}: {} does not parse: {err}", p.display()));
    }
    for e in std::fs::read_dir(t.root().join("snapshots")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            continue;
        }
        assert!(name.ends_with(".txt"), "{what}: stray file {}", p.display());
        let body = std::fs::read_to_string(&p).unwrap();
        assert!(
            body.ends_with('\n') || body.is_empty(),
            "{what}: {name} torn"
        );
        for line in body.lines() {
            assert!(
                line.starts_with('#') || line.contains("==") || line.starts_with("-e "),
                "{what}: {name}: not a requirement: {line:?}"
            );
        }
    }
}

/// After a fault: `status` works, an interrupted entry is completed by `doctor --fix`, every
/// entry then has its after, history files are whole, and the venv is what the history says.
fn assert_recovered(t: &Tier, what: &str) {
    let status = t.pyctl_ok(&["status"]);
    if t.history().iter().any(|(_, _, after)| after.is_none()) {
        assert!(status.contains("interrupted"), "{what}: status:\n{status}");
        // doctor exits 1 for unrelated findings (PATH); what counts is what it left behind.
        t.pyctl(&["doctor", "--fix"]);
    }
    let history = t.history();
    for (id, _, after) in &history {
        assert!(after.is_some(), "{what}: #{id} still has no after");
    }
    assert_files_whole(t, what);
    let (id, _, after) = history.last().unwrap();
    assert_eq!(
        fast_set(t),
        freeze_of(after.as_ref().unwrap()),
        "{what}: the venv is not what #{id} says"
    );
}

/// `pyctl undo` works and lands on the before of the entry it says it reverts; false when
/// there was nothing left to undo (said clearly).
fn assert_undo_works(t: &Tier, what: &str) -> bool {
    let out = t.pyctl(&["undo"]);
    let said = text(&out);
    if !out.status.success()
        && (said.contains("nothing to undo") || said.contains("only 0 operation(s) can be undone"))
    {
        let left = temp_files_in(t, &["history", "snapshots"]);
        assert!(
            left.is_empty(),
            "{what}: temp files left after undo: {left:?}"
        );
        return false;
    }
    ok(&format!("{what}: undo"), out);
    let history = t.history();
    let (_, undo, _) = history.last().unwrap();
    let reverted = undo["reverts"][0].as_u64().unwrap();
    let (_, target, _) = history.iter().find(|(id, _, _)| *id == reverted).unwrap();
    assert_eq!(
        fast_set(t),
        freeze_of(target),
        "{what}: undo of #{reverted}"
    );
    let left = temp_files_in(t, &["history", "snapshots"]);
    assert!(
        left.is_empty(),
        "{what}: temp files left after undo: {left:?}"
    );
    true
}

/// What a kill hits: the wrapper alone (pip carries on as an orphan) or the wrapper and pip
/// together (its whole process group).
#[derive(Clone, Copy, Debug)]
enum Victim {
    Wrapper,
    Group,
}

fn spawn_group(mut cmd: Command) -> Child {
    cmd.process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills after `delay`; returns whether the process was still running then.
fn kill_after(mut child: Child, delay: Duration, victim: Victim) -> bool {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    let pid = child.id() as i32;
    let target = match victim {
        Victim::Wrapper => Pid::from_raw(pid),
        Victim::Group => Pid::from_raw(-pid),
    };
    let _ = kill(target, Signal::SIGKILL);
    child.wait().unwrap();
    running
}

/// Waits until nothing of process group `pgid` is left (an orphaned pip finishing).
fn wait_group_gone(pgid: i32) {
    let start = Instant::now();
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(-pgid), None).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "pip never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Kill delays spread over an operation that takes `full`: `n` points from 2% to 110%.
fn delays(full: Duration, n: u32) -> Vec<Duration> {
    (0..n)
        .map(|i| full * (2 + 108 * i / (n - 1)) / 100)
        .collect()
}

/// 24 kills of `pip install mid` (half the wrapper alone, half with pip's group), each followed
/// by the next command and the recovery checks.
#[test]
fn sigkill_during_pip_install_then_recovery() {
    let t = Tier::new();
    mid_wheel(&t.wheels());
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["snapshot", "start"]);
    let start = fast_set(&t);
    let wheels = t.wheels();
    let args = t.install_args(wheels.to_str().unwrap(), &["mid"]);
    let full = timed(|| {
        t.install(&["mid"]);
    });
    t.pyctl_ok(&["restore", "start"]);
    let mut trials = 0;
    let mut inside = 0;
    for (i, delay) in delays(full, 12).into_iter().enumerate() {
        for victim in [Victim::Wrapper, Victim::Group] {
            let what = format!("pip install killed ({victim:?}) after {delay:?} of {full:?}");
            let last = t.last_id();
            let child = spawn_group({
                let mut c = t.command(&t.path().join("bin/pip"));
                c.args(&args);
                c
            });
            let pgid = child.id() as i32;
            if kill_after(child, delay, victim) && t.last_id() > last {
                inside += 1;
            }
            if let Victim::Wrapper = victim {
                // The orphaned pip goes on; the next command must wait for it, not record a
                // state it is still changing.
                t.pyctl_ok(&["snapshot", &format!("k{i}"), "--force"]);
            }
            wait_group_gone(pgid);
            assert_recovered(&t, &what);
            assert!(assert_undo_works(&t, &what), "{what}: nothing to undo");
            t.pyctl_ok(&["restore", "start"]);
            assert_eq!(fast_set(&t), start, "{what}");
            trials += 1;
        }
    }
    assert_eq!(trials, 24);
    assert!(inside >= 6, "only {inside} kills landed inside an install");
    assert!(t.pip_check_passes());
}

/// `big` enough that undo, restore and clean take measurable time: 1500 modules.
fn big_wheel(dir: &Path) {
    let files: Vec<(String, String)> = (0..1500)
        .map(|i| (format!("big/m{}/f{i}.py", i / 100), format!("X = {i}\n")))
        .chain((0..15).map(|m| (format!("big/m{m}/__init__.py"), String::new())))
        .chain(std::iter::once((
            "big/__init__.py".to_string(),
            String::new(),
        )))
        .collect();
    wheel(dir, "big", "1.0", &["alpha"], &files);
}

/// A tier with alpha, then big installed; snapshots `small` (alpha) and `full` (alpha, big);
/// the wheels moved away so only the store can serve.
fn tier_with_big() -> Tier {
    let t = Tier::new();
    big_wheel(&t.wheels());
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["snapshot", "small"]);
    t.install(&["big"]);
    t.pyctl_ok(&["snapshot", "full"]);
    std::fs::rename(t.wheels(), t.path().join("wheels.hidden")).unwrap();
    t
}

/// Kills `pyctl ARGS` at points spread over its duration; after each, recovery, undo, and
/// `restore back` to start the next trial from the same state.
/// Returns (trials, kills that landed inside the operation, trials where undo had something to
/// undo and did it).
fn kill_loop(t: &Tier, args: &[&str], back: &str, n: u32) -> (u32, u32, u32) {
    let full = timed(|| {
        t.pyctl_ok(args);
    });
    t.pyctl_ok(&["restore", back]);
    let expected_start = fast_set(t);
    let mut inside = 0;
    let mut undone = 0;
    for delay in delays(full, n) {
        let what = format!("pyctl {args:?} killed after {delay:?} of {full:?}");
        let last = t.last_id();
        let child = spawn_group({
            let mut c = t.command(Path::new(common::PYCTL));
            c.args(args);
            c
        });
        if kill_after(child, delay, Victim::Group)
            && t.last_id() > last
            && t.history().last().unwrap().2.is_none()
        {
            inside += 1;
        }
        assert_recovered(t, &what);
        if assert_undo_works(t, &what) {
            undone += 1;
        }
        t.pyctl_ok(&["restore", back]);
        assert_eq!(fast_set(t), expected_start, "{what}");
    }
    (n, inside, undone)
}

#[test]
fn sigkill_during_undo_restore_and_clean_then_recovery() {
    let t = tier_with_big();
    let mut trials = 0;
    let mut inside = 0;
    let mut undone = 0;
    for (args, back, n) in [
        (&["undo"][..], "full", 10),
        (&["restore", "small"][..], "full", 8),
        (&["restore", "full"][..], "small", 8),
        (&["clean"][..], "full", 8),
    ] {
        let (tried, landed, did_undo) = kill_loop(&t, args, back, n);
        trials += tried;
        inside += landed;
        undone += did_undo;
    }
    assert_eq!(trials, 34);
    assert!(
        undone * 2 >= trials,
        "undo ran in {undone} of {trials} trials only"
    );
    assert!(
        inside >= 8,
        "only {inside} kills landed inside an operation"
    );
    let modules = walkdir::WalkDir::new(t.site_packages().join("big"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "py"))
        .count();
    assert_eq!(modules, 1516, "big is listed but incomplete");
    assert!(t.pip_check_passes());
}

/// A tmpfs mounted on a folder for the life of the value (root only).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", text(&out));
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Fills the filesystem of `path` (a root-owned file there) until `leave` bytes are free.
fn fill(path: &Path, leave: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(_) => break,
        }
    }
    let _ = f.sync_all();
    f.set_len(written.saturating_sub(leave)).unwrap();
}

/// Names of temp files left in the tier's folders.
fn temp_leftovers(t: &Tier) -> Vec<String> {
    temp_files_in(t, &["history", "snapshots", "store"])
}

fn temp_files_in(t: &Tier, folders: &[&str]) -> Vec<String> {
    folders
        .iter()
        .flat_map(|d| std::fs::read_dir(t.root().join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
        .map(|p| p.display().to_string())
        .collect()
}

/// The tier on a 64 MiB tmpfs, filled so that `pip install beta`, `snapshot` and `undo` run out
/// of space at different points: each fails with a clear error or succeeds, no temp file stays,
/// and once there is room again the state is exactly what the history says.
#[test]
fn disk_full_during_writes() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let mut t = Tier::bare();
    let _mount = Tmpfs::mount(&t.home(), "64m");
    t.give_away(&t.home());
    t.pyctl_ok(&["init", "--no-modify-path"]);
    t.base = t.set();
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["snapshot", "start"]);
    let start = fast_set(&t);
    let filler = t.home().join("filler");
    let mut failures = 0;
    for leave in [0u64, 4096, 8192, 16384, 32768, 65536, 131072, 262144] {
        let what = format!("disk full with {leave} bytes left");
        let history_before = t.history().len();
        fill(&filler, leave);
        let outs = [
            t.pip(&t.install_args(t.wheels().to_str().unwrap(), &["beta"])),
            t.pyctl(&["snapshot", &format!("s{leave}"), "--force"]),
            t.pyctl(&["undo"]),
        ];
        for out in &outs {
            if !out.status.success() {
                failures += 1;
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    err.contains("No space left on device") || err.contains("ERROR:"),
                    "{what}: unclear error:\n{err}"
                );
                assert!(!err.contains("panicked"), "{what}: {err}");
            }
        }
        assert_eq!(temp_leftovers(&t), Vec::<String>::new(), "{what}");
        std::fs::remove_file(&filler).unwrap();
        assert!(t.history().len() >= history_before, "{what}: entries lost");
        assert_recovered(&t, &what);
        t.pyctl_ok(&["restore", "start"]);
        assert_eq!(fast_set(&t), start, "{what}");
        // pip itself, out of space, can leave a `.dist-info` with an empty METADATA, which it
        // then skips with a warning: the set it sees is still pyctl's.
        let pips = ok("pip freeze", t.venv_pip(&["freeze", "--all"]));
        let pips: Vec<String> = common::stdout_lines(&pips)
            .into_iter()
            .filter(|l| !l.starts_with("WARNING:"))
            .collect();
        assert_eq!(pips, start, "{what}: pip sees another set");
    }
    assert!(
        failures >= 3,
        "only {failures} writes failed: disk never full?"
    );
    assert!(t.pip_check_passes());
}

/// 8 wrappers at once on one tier: the lock serialises them, all 8 are recorded with
/// consecutive ids, each entry starts where the previous one ended, every package is there.
#[test]
fn eight_wrappers_at_once_on_one_tier() {
    let t = Tier::new();
    for i in 0..8 {
        simple_wheel(&t.wheels(), &format!("p{i}"), "1.0", &[], "\n");
    }
    t.give_away(&t.wheels());
    let last = t.last_id();
    let wheels = t.wheels();
    let children: Vec<Child> = (0..8)
        .map(|i| {
            let name = format!("p{i}");
            t.command(&t.path().join("bin/pip"))
                .args(t.install_args(wheels.to_str().unwrap(), &[&name]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut waited = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("waiting for another pip") {
            waited += 1;
        }
        ok("concurrent pip install", out);
    }
    assert!(waited > 0, "no wrapper ever waited for the lock");
    let history = t.history();
    let new: Vec<_> = history.iter().filter(|(id, _, _)| *id > last).collect();
    let ids: Vec<u64> = new.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, (last + 1..=last + 8).collect::<Vec<_>>());
    let mut added = Vec::new();
    let mut previous = freeze_of(
        history
            .iter()
            .find(|e| e.0 == last)
            .unwrap()
            .2
            .as_ref()
            .unwrap(),
    );
    for (id, before, after) in new {
        let after = after.as_ref().unwrap();
        assert_eq!(before["kind"], "pip");
        assert_eq!(after["exit_code"], 0, "#{id}");
        assert_eq!(
            freeze_of(before),
            previous,
            "#{id} does not start where the last ended"
        );
        previous = freeze_of(after);
        let a = after["changes"]["added"].as_array().unwrap();
        assert_eq!(a.len(), 1, "#{id}: {a:?}");
        added.push(a[0].as_str().unwrap().to_string());
    }
    added.sort();
    let want: Vec<String> = (0..8).map(|i| format!("p{i}==1.0")).collect();
    assert_eq!(added, want);
    let all: Vec<&str> = want.iter().map(String::as_str).collect();
    t.assert_set(&all);
}

/// Two accounts install at once, each in its own tier: both complete, neither tier holds a file
/// of the other account, each history has exactly its own three operations.
#[test]
fn two_users_at_once_on_their_own_tiers() {
    let a = Tier::new();
    let mut b = Tier::bare();
    if is_root() {
        let user = nix::unistd::User::from_name("pyctltest-b")
            .unwrap()
            .expect("the test account pyctltest-b");
        b.ids = Some((user.uid.as_raw(), user.gid.as_raw()));
        b.give_away(b.path());
    } else {
        eprintln!("not root: both tiers run as the same account");
    }
    b.pyctl_ok(&["init", "--no-modify-path"]);
    b.base = b.set();
    let run = |t: &Tier| {
        for pkg in ["alpha==1.0", "delta", "beta"] {
            t.install(&[pkg]);
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| run(&a));
        s.spawn(|| run(&b));
    });
    for t in [&a, &b] {
        t.assert_set(&["alpha==1.0", "beta==1.0", "delta==1.0"]);
        let pips = t
            .history()
            .iter()
            .filter(|(_, before, _)| before["kind"] == "pip")
            .count();
        assert_eq!(pips, 3);
        if let Some((uid, _)) = t.ids {
            for e in walkdir::WalkDir::new(t.root())
                .into_iter()
                .filter_map(Result::ok)
            {
                let m = e.path().symlink_metadata().unwrap();
                assert_eq!(m.uid(), uid, "{} has another owner", e.path().display());
            }
        }
    }
}

/// While another process holds the tier lock, a wrapper says it waits, then gives up after
/// `PYCTL_LOCK_TIMEOUT` seconds with an error naming the lock and the variable; nothing is
/// recorded or installed. Once the lock is free, the same install works.
#[test]
fn lock_timeout_is_a_clear_error() {
    let t = Tier::new();
    let lock_file = std::fs::File::open(t.root().join(".lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let last = t.last_id();
    let wheels = t.wheels();
    for args in [
        t.install_args(wheels.to_str().unwrap(), &["alpha"]),
        vec!["__pyctl", "undo"],
    ] {
        let mut cmd = if args[0] == "__pyctl" {
            let mut c = t.command(Path::new(common::PYCTL));
            c.args(&args[1..]);
            c
        } else {
            let mut c = t.command(&t.path().join("bin/pip"));
            c.args(&args);
            c
        };
        let start = Instant::now();
        let out = cmd.env("PYCTL_LOCK_TIMEOUT", "1").output().unwrap();
        let took = start.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} ran under a held lock:\n{err}"
        );
        assert!(
            err.contains(".lock") && err.contains("PYCTL_LOCK_TIMEOUT"),
            "{err}"
        );
        assert!(err.contains("waiting"), "no wait message:\n{err}");
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(10));
    }
    assert_eq!(t.last_id(), last);
    t.assert_set(&[]);
    drop(held);
    t.install(&["alpha"]);
    t.assert_set(&["alpha==2.0"]);
}

/// Every path under `dir` with its size, except the venv (which pip may touch).
fn tree(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.path().components().any(|c| c.as_os_str() == "venv"))
        .map(|e| {
            let len = e.path().symlink_metadata().map(|m| m.len()).unwrap_or(0);
            (e.path().display().to_string(), len)
        })
        .collect();
    v.sort();
    v
}

/// `pyctl` with raw (possibly non-UTF-8) arguments.
fn pyctl_os(t: &Tier, args: &[&OsStr]) -> Output {
    t.command(Path::new(common::PYCTL))
        .args(args)
        .output()
        .unwrap()
}

/// Snapshot and config names with `..`, `/`, control characters, 300 characters and
/// non-UTF-8 bytes: each is refused with a clear error and a non-zero exit, and nothing in the
/// whole test folder changes.
#[test]
fn hostile_snapshot_and_config_names_are_refused() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["snapshot", "good"]);
    let long = "x".repeat(300);
    let names: Vec<&OsStr> = vec![
        OsStr::new(".."),
        OsStr::new("../../escape"),
        OsStr::new("a/b"),
        OsStr::new("/tmp/abs"),
        OsStr::new("a\x01b"),
        OsStr::new("tab\there"),
        OsStr::new("new\nline"),
        OsStr::new("esc\x1b[31m"),
        OsStr::new(&long),
        OsStr::from_bytes(b"bad\xff\xfe"),
        OsStr::new(""),
        OsStr::new(".hidden"),
    ];
    let outside = t.path().join("home");
    let before = tree(t.path());
    let mut refused = 0;
    for name in &names {
        for cmd in ["snapshot", "restore", "delete-snapshot"] {
            let out = pyctl_os(&t, &[OsStr::new(cmd), name]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd} {name:?} accepted:\n{err}");
            assert!(
                err.contains("invalid snapshot name") || err.contains("invalid UTF-8"),
                "{cmd} {name:?}: unclear error:\n{err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            refused += 1;
        }
        for args in [
            vec![OsStr::new("config"), name, OsStr::new("1")],
            vec![
                OsStr::new("config"),
                OsStr::new("history.max_entries"),
                name,
            ],
            vec![OsStr::new("config"), OsStr::new("store.link_mode"), name],
        ] {
            let out = pyctl_os(&t, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} accepted:\n{err}");
            assert!(
                err.starts_with("pyctl: error:") || err.starts_with("error:"),
                "{err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            refused += 1;
        }
    }
    assert_eq!(refused, names.len() * 6);
    assert_eq!(tree(t.path()), before, "something was written");
    assert!(outside.join("tier/snapshots/good.txt").is_file());
    t.assert_set(&["alpha==1.0"]);
}

/// A folder outside the tier, with a file whose content must survive.
fn outside_dir(t: &Tier) -> PathBuf {
    let dir = t.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), "alpha==1.0\n").unwrap();
    t.give_away(&dir);
    dir
}

fn plant_symlink(t: &Tier, target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
    if let Some((uid, gid)) = t.ids {
        std::os::unix::fs::lchown(link, Some(uid), Some(gid)).unwrap();
    }
}

/// A folder of the tier (history/, snapshots/, store/) replaced by a symlink to a folder
/// outside it: every write op refuses with an error naming the link; nothing is written out there.
#[test]
fn symlinked_tier_folders_are_not_followed() {
    for folder in ["history", "snapshots", "store"] {
        let t = Tier::new();
        t.install(&["alpha==1.0"]);
        let outside = outside_dir(&t);
        let real = t.root().join(folder);
        let moved = outside.join(folder);
        std::fs::rename(&real, &moved).unwrap();
        plant_symlink(&t, &moved, &real);
        let before = tree(&outside);
        let wheels = t.wheels();
        let outs = [
            t.pip(&t.install_args(wheels.to_str().unwrap(), &["beta"])),
            t.pyctl(&["snapshot", "s1"]),
            t.pyctl(&["undo"]),
            t.pyctl(&["gc"]),
        ];
        for out in outs {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{folder} as a symlink:\n{}",
                text(&out)
            );
            assert!(
                err.contains("symbolic link"),
                "{folder}: unclear error:\n{err}"
            );
        }
        assert_eq!(tree(&outside), before, "{folder}: written through the link");
        t.assert_set(&["alpha==1.0"]);
    }
}

/// Symlinks planted inside the tier's folders: a snapshot file pointing at a file outside, a
/// history file pointing at a JSON file outside, a store entry pointing at a folder outside.
/// pyctl reads none of them as its own, writes nothing through them, and removes only the link.
#[test]
fn symlinks_planted_in_tier_folders_are_not_followed() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.install(&["beta"]);
    let outside = outside_dir(&t);
    // A snapshot that is a link to a file outside the tier.
    plant_symlink(
        &t,
        &outside.join("precious.txt"),
        &t.root().join("snapshots/evil.txt"),
    );
    let err = t.pyctl_err(&["restore", "evil"]);
    assert!(err.contains("symbolic link"), "{err}");
    t.assert_set(&["alpha==1.0", "beta==1.0"]);
    let listed = t.pyctl_ok(&["list-snapshots"]);
    assert!(!listed.contains("evil"), "{listed}");
    t.pyctl_ok(&["snapshot", "evil", "--force"]);
    assert_eq!(
        std::fs::read_to_string(outside.join("precious.txt")).unwrap(),
        "alpha==1.0\n"
    );
    t.pyctl_ok(&["delete-snapshot", "evil"]);
    assert!(outside.join("precious.txt").is_file());

    // A history file that is a link: reported and skipped, never read.
    let next = t.last_id() + 1;
    let forged = outside.join("forged.json");
    let mut record: serde_json::Value = t.history().last().unwrap().1.clone();
    record["id"] = next.into();
    std::fs::write(&forged, serde_json::to_vec(&record).unwrap()).unwrap();
    plant_symlink(
        &t,
        &forged,
        &t.history_dir().join(format!("{next:03}_before.json")),
    );
    let status = t.pyctl(&["status"]);
    assert!(
        text(&status).contains("not a regular file"),
        "{}",
        text(&status)
    );
    t.pyctl_ok(&["snapshot", "after"]);
    assert_eq!(
        std::fs::read(&forged).unwrap(),
        serde_json::to_vec(&record).unwrap()
    );

    // A store entry replaced by a link to a copy outside: undo does not take files from it,
    // gc removes the link and not what it points at.
    let store = t.root().join("store");
    let entry = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("beta-")
        })
        .unwrap();
    let copy = outside.join("beta-entry");
    ok(
        "cp",
        Command::new("cp")
            .arg("-a")
            .arg(&entry)
            .arg(&copy)
            .output()
            .unwrap(),
    );
    std::fs::remove_dir_all(&entry).unwrap();
    plant_symlink(&t, &copy, &entry);
    // Remove beta, then bring it back: the linked entry must not serve it.
    ok("pip uninstall", t.pip(&["uninstall", "-y", "beta"]));
    ok("undo", t.pyctl(&["undo"]));
    t.assert_set(&["alpha==1.0", "beta==1.0"]);
    let in_copy = walkdir::WalkDir::new(&copy)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.path().ends_with("beta/__init__.py"))
        .unwrap();
    let installed = t.site_packages().join("beta/__init__.py");
    assert_ne!(
        std::fs::metadata(in_copy.path()).unwrap().ino(),
        std::fs::metadata(&installed).unwrap().ino(),
        "beta was linked back from the store entry planted outside the tier"
    );
    t.pyctl(&["gc"]);
    assert!(
        copy.join("entry.json").is_file(),
        "gc deleted outside the tier"
    );
    assert_files_whole(&t, "planted symlinks");
}

/// `program ARGS` as root in a mount namespace of its own where `opt` is mounted on /opt, so
/// that the default system tier, /opt/system-python, is a temp folder and the machine's own is
/// never touched. A clean environment, offline.
fn with_private_opt(opt: &Path, program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /opt && exec \"$@\"")
        .arg(opt)
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("NO_COLOR", "1")
        .env("PIP_INDEX_URL", common::DEAD_INDEX)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_CACHE_DIR", "1")
        .stdin(Stdio::null());
    c
}

/// A root process (as under `sudo -E`) with HOME, PYCTL_HOME, VIRTUAL_ENV, XDG_*, PIP_* and
/// PYTHON* pointing at an unprivileged account's files, and PYCTL_SYSTEM_PREFIX at a folder that
/// account owns: the wrapper and the engine (undo, and a redo that falls back to pip) use the
/// root-owned system tier, write nothing into the account's folders and run none of its code.
#[test]
fn sudo_e_environment_cannot_redirect_root() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let real_opt = Path::new("/opt/system-python").exists();
    let user = Tier::bare();
    let (uid, _) = user.ids.unwrap();
    let evil = user.path().join("evil");
    let marker = user.path().join("marker");
    // Python code that, if root ever ran it, leaves a marker.
    let payload = format!(
        "open({:?}, 'w').write('ran')\n",
        marker.display().to_string()
    );
    for dir in ["pkgs/pip", "cfg/pip", "venv/bin", "sysprefix", "tmp"] {
        std::fs::create_dir_all(evil.join(dir)).unwrap();
    }
    for file in [
        "pkgs/pip/__init__.py",
        "pkgs/pip/__main__.py",
        "pkgs/sitecustomize.py",
        "pkgs/usercustomize.py",
        "startup.py",
    ] {
        std::fs::write(evil.join(file), &payload).unwrap();
    }
    std::fs::write(
        evil.join("cfg/pip/pip.conf"),
        format!(
            "[global]\nlog = {}\ncache-dir = {}\n[install]\ntarget = {}\n",
            evil.join("pip.log").display(),
            evil.join("conf-cache").display(),
            evil.join("target").display()
        ),
    )
    .unwrap();
    std::fs::write(evil.join("venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    std::fs::write(
        evil.join("venv/bin/python"),
        format!("#!/bin/sh\ntouch {}\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        evil.join("venv/bin/python"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // pip reads the config of the HOME it is given too.
    std::fs::create_dir_all(user.home().join(".config/pip")).unwrap();
    std::fs::copy(
        evil.join("cfg/pip/pip.conf"),
        user.home().join(".config/pip/pip.conf"),
    )
    .unwrap();
    user.give_away(user.path());

    let opt = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        opt.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let sys = opt.path().join("system-python");
    let wheels = opt.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    common::standard_wheels(&wheels);
    let pip_link = opt.path().join("pip");
    std::os::unix::fs::symlink(common::PYCTL, &pip_link).unwrap();
    let pyctl = Path::new(common::PYCTL);
    ok(
        "system init",
        with_private_opt(opt.path(), pyctl, &["system", "init"])
            .output()
            .unwrap(),
    );
    let hostile = |mut c: Command| -> Output {
        c.env("HOME", user.home())
            .env("PYCTL_HOME", user.root())
            .env("PYCTL_SYSTEM_PREFIX", evil.join("sysprefix"))
            .env("PYCTL_PYTHON", evil.join("venv/bin/python"))
            .env("VIRTUAL_ENV", evil.join("venv"))
            .env("XDG_CONFIG_HOME", evil.join("cfg"))
            .env("XDG_CACHE_HOME", evil.join("cache"))
            .env("PIP_LOG", evil.join("pip2.log"))
            .env("PIP_LOG_FILE", evil.join("pip3.log"))
            .env("PIP_CACHE_DIR", evil.join("pipcache"))
            .env("PIP_TARGET", evil.join("target2"))
            .env("PIP_PREFIX", evil.join("prefix"))
            .env("PIP_REPORT", evil.join("report.json"))
            .env("PIP_SRC", evil.join("src"))
            .env("PYTHONPATH", evil.join("pkgs"))
            .env("PYTHONSTARTUP", evil.join("startup.py"))
            .env("PYTHONUSERBASE", evil.join("userbase"))
            .env("PYTHONPYCACHEPREFIX", evil.join("pycache"))
            .env("TMPDIR", evil.join("tmp"))
            // `python -m` puts the current folder first on sys.path: it holds a `pip`.
            .current_dir(evil.join("pkgs"));
        c.output().unwrap()
    };
    let before = tree(user.path());
    let wheels_s = wheels.to_str().unwrap();
    let install = [
        "install",
        "--no-index",
        "--find-links",
        wheels_s,
        "alpha==1.0",
    ];
    ok(
        "root pip install",
        hostile(with_private_opt(opt.path(), &pip_link, &install)),
    );
    ok(
        "root undo",
        hostile(with_private_opt(opt.path(), pyctl, &["undo"])),
    );
    // Without alpha's store entry, redo falls back to pip (from the recorded wheel folder).
    for e in std::fs::read_dir(sys.join("store")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("alpha-")
        {
            std::fs::remove_dir_all(p).unwrap();
        }
    }
    ok(
        "root redo",
        hostile(with_private_opt(opt.path(), pyctl, &["redo"])),
    );
    assert!(!marker.exists(), "root ran the account's code");
    assert_eq!(
        tree(user.path()),
        before,
        "root wrote into the account's folders"
    );
    for e in walkdir::WalkDir::new(user.path())
        .into_iter()
        .filter_map(Result::ok)
    {
        let owner = e.path().symlink_metadata().unwrap().uid();
        assert_eq!(owner, uid, "{} is not the account's", e.path().display());
    }
    let site = walkdir::WalkDir::new(sys.join("venv/lib"))
        .max_depth(2)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name() == "site-packages")
        .unwrap();
    assert!(site.path().join("alpha-1.0.dist-info").is_dir());
    assert_eq!(
        Path::new("/opt/system-python").exists(),
        real_opt,
        "the machine's own /opt was touched"
    );
}
