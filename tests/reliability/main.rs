//! Reliability and security under faults, load and hostile input (issue 7), with the real
//! binary, real venvs and the real pip, offline. Each test says what it does to pyctl and what
//! must still hold afterwards; RELIABILITY.md lists them with their counts and results.

#[path = "../../fuzz/src/checks.rs"]
mod checks;
#[path = "../common/mod.rs"]
mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{freeze_of, is_root, ok, output_within, simple_wheel, text, wheel, Tier};

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

/// What a kill hits: the wrapper alone (pip carries on as an orphan), the wrapper and pip
/// together (its whole process group), or pip alone (the pip child of the wrapper or
/// of pyctl's engine; the parent carries on and records how pip ended).
#[derive(Clone, Copy, Debug)]
enum Victim {
    Wrapper,
    Group,
    Pip,
}

fn spawn_group(mut cmd: Command) -> Child {
    cmd.process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The pip process (the venv's python running pyctl's pip launcher) whose parent is `parent`,
/// if one is running (not a zombie).
fn pip_child(parent: i32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name in parentheses: state, then the parent's pid.
        let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
        let (state, ppid) = (fields.next()?, fields.next()?.parse::<i32>().ok()?);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let launcher = pyctl::sys::pip::LAUNCHER.as_bytes();
        let is_pip = cmdline.windows(launcher.len()).any(|w| w == launcher);
        (ppid == parent && state != "Z" && is_pip).then_some(pid)
    })
}

/// What a kill met: whether its target was still running, and how the spawned command ended.
struct Killed {
    running: bool,
    status: std::process::ExitStatus,
}

/// Kills `victim` after `delay` and waits for the spawned command to end.
fn kill_after(mut child: Child, delay: Duration, victim: Victim) -> Killed {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    std::thread::sleep(delay);
    let pid = child.id() as i32;
    let target = match victim {
        Victim::Wrapper => Some(pid),
        Victim::Group => Some(-pid),
        Victim::Pip => pip_child(pid),
    };
    let running = target.is_some() && child.try_wait().unwrap().is_none();
    if let Some(target) = target {
        let _ = kill(Pid::from_raw(target), Signal::SIGKILL);
    }
    Killed {
        running,
        status: child.wait().unwrap(),
    }
}

/// Whether a kill of a command started when the last entry was `last` landed inside its
/// operation: a killed wrapper or pyctl left its entry unfinished. A killed pip must make the
/// command fail (`pip_failed`: the exit code it must then end with), and the command must still
/// finish its entry truthfully: the exit code it returned, and the venv as it is.
fn landed(
    t: &Tier,
    last: u64,
    killed: &Killed,
    victim: Victim,
    pip_failed: i32,
    what: &str,
) -> bool {
    let history = t.history();
    let (id, _, after) = history.last().unwrap();
    let Victim::Pip = victim else {
        return killed.running && *id > last && after.is_none();
    };
    let code = killed.status.code();
    let expected = if killed.running { pip_failed } else { 0 };
    assert_eq!(
        code,
        Some(expected),
        "{what}: pip {}killed, and the command ended with {}",
        if killed.running { "" } else { "not " },
        killed.status
    );
    assert!(*id > last, "{what}: nothing recorded");
    let after = after
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: #{id} has no after, yet only pip was killed"));
    assert_eq!(
        after["exit_code"].as_i64(),
        code.map(i64::from),
        "{what}: #{id}"
    );
    assert_eq!(
        fast_set(t),
        freeze_of(after),
        "{what}: #{id}'s after is not the venv"
    );
    killed.running
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

/// 36 kills of `pip install mid` at 12 delays: the wrapper alone, the wrapper with pip's group,
/// and pip alone (the wrapper must then record where pip left the venv and exit as a shell
/// would, 128 + 9), each followed by the next command and the recovery checks.
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
    // Kills that landed inside an install, per victim.
    let mut inside = [0; 3];
    for (i, delay) in delays(full, 12).into_iter().enumerate() {
        for victim in [Victim::Wrapper, Victim::Group, Victim::Pip] {
            let what = format!("pip install killed ({victim:?}) after {delay:?} of {full:?}");
            let last = t.last_id();
            let child = spawn_group({
                let mut c = t.command(&t.path().join("bin/pip"));
                c.args(&args);
                c
            });
            let pgid = child.id() as i32;
            let killed = kill_after(child, delay, victim);
            if landed(&t, last, &killed, victim, 128 + 9, &what) {
                inside[victim as usize] += 1;
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
    eprintln!("pip install: {trials} trials; landed inside (wrapper, group, pip): {inside:?}");
    assert_eq!(trials, 36);
    assert!(
        inside[0] + inside[1] >= 6,
        "only {inside:?} kills landed inside an install"
    );
    assert!(inside[2] >= 4, "only {} pip kills landed", inside[2]);
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
    t.hide_wheels();
    t
}

/// Kills `pyctl ARGS` (`victim`) at `n` points spread over its duration, each trial starting
/// from the state `prepare` makes; after each, recovery and undo. A pip killed alone must make
/// pyctl fail with 1.
/// Returns (trials, kills that landed inside the operation, trials where undo had something to
/// undo and did it).
fn kill_trials(
    t: &Tier,
    args: &[&str],
    n: u32,
    victim: Victim,
    prepare: &dyn Fn(),
) -> (u32, u32, u32) {
    prepare();
    let expected_start = fast_set(t);
    let full = timed(|| {
        t.pyctl_ok(args);
    });
    let mut inside = 0;
    let mut undone = 0;
    for delay in delays(full, n) {
        let what = format!("pyctl {args:?} killed ({victim:?}) after {delay:?} of {full:?}");
        prepare();
        assert_eq!(fast_set(t), expected_start, "{what}: the trial's start");
        let last = t.last_id();
        let child = spawn_group({
            let mut c = t.command(Path::new(common::PYCTL));
            c.args(args);
            c
        });
        let pgid = child.id() as i32;
        let killed = kill_after(child, delay, victim);
        // A killed pip may take a moment to be gone, and holds the tier lock until it is.
        wait_group_gone(pgid);
        if landed(t, last, &killed, victim, 1, &what) {
            inside += 1;
        }
        assert_recovered(t, &what);
        if assert_undo_works(t, &what) {
            undone += 1;
        }
    }
    (n, inside, undone)
}

/// `kill_trials` of pyctl's process group, each trial from `restore back`.
fn kill_loop(t: &Tier, args: &[&str], back: &str, n: u32) -> (u32, u32, u32) {
    kill_trials(t, args, n, Victim::Group, &|| {
        t.pyctl_ok(&["restore", back]);
    })
}

#[test]
fn sigkill_during_undo_restore_and_clean_then_recovery() {
    let t = tier_with_big();
    let mut trials = 0;
    let mut inside = 0;
    let mut undone = 0;
    for (args, back, n) in [
        (&["undo"][..], "full", 16),
        (&["restore", "small"][..], "full", 12),
        (&["restore", "full"][..], "small", 12),
        (&["clean"][..], "full", 8),
    ] {
        let (tried, hit, did_undo) = kill_loop(&t, args, back, n);
        trials += tried;
        inside += hit;
        undone += did_undo;
    }
    assert_eq!(trials, 48);
    assert!(
        undone * 2 >= trials,
        "undo ran in {undone} of {trials} trials only"
    );
    assert!(
        inside >= 8,
        "only {inside} kills landed inside an operation"
    );
    t.pyctl_ok(&["restore", "full"]);
    assert_eq!(py_files(&t, "big"), 1516, "big is listed but incomplete");
    assert!(t.pip_check_passes());
}

/// How many `.py` files the package folder `name` of the venv holds.
fn py_files(t: &Tier, name: &str) -> usize {
    walkdir::WalkDir::new(t.site_packages().join(name))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "py"))
        .count()
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

/// A small deterministic generator (xorshift64*): the same inputs on every run, so that a
/// failure names an input that can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Pieces that parsers of these formats tend to trip on.
const TOKENS: &[&[u8]] = &[
    b"\0",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xe2\x80\xae",
    b"\n",
    b"\r\n",
    b"\n\n",
    b" ",
    b"\t",
    b"=",
    b"==",
    b"===",
    b",",
    b"\"",
    b"'",
    b":",
    b"#",
    b"-",
    b"/",
    b"../",
    b"..",
    b"{",
    b"}",
    b"[",
    b"]",
    b"[[",
    b"(",
    b")",
    b"-e ",
    b"@",
    b"%",
    b"%ff",
    b"file://",
    b"**",
    b"**REMOVE**",
    b"VERSION 3\n",
    b".dist-info",
    b"-1",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"1e400",
    b"null",
    b"true",
    b"\\u0000",
    b"\\ud800",
    b" -> ",
    b"site-packages/",
    b"dist-packages/",
    b"sha256=",
    b"\x1b[31m",
];

/// One mutated input: a seed with 1 to 8 edits (bit flips, inserted bytes and tokens, deleted,
/// repeated and truncated ranges, the tail of another seed), at most 256 KiB.
fn mutate(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        let at = rng.below(len + 1);
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 => {
                let end = (at + 1 + rng.below(16)).min(len);
                data.drain(at..end);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(len);
                let times = if rng.below(8) == 0 {
                    2000
                } else {
                    1 + rng.below(4)
                };
                let repeated = data[at..end].repeat(times);
                data.splice(at..at, repeated);
            }
            5 => data.truncate(at),
            6 => {
                let other = seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => {
                let i = rng.below(len);
                data[i] = TOKENS[rng.below(TOKENS.len())][0];
            }
            _ => {}
        }
    }
    data.truncate(256 * 1024);
    data
}

/// A history record with 1 to 3 fields set to hostile values of their own type (so that the
/// file still parses and the code behind a successful parse runs, which byte mutations of JSON
/// rarely reach), or, one time in four, to a value of any type.
fn mutate_json(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    use serde_json::json;
    let mut doc: serde_json::Value = serde_json::from_slice(seeds[rng.below(seeds.len())]).unwrap();
    let ids = || {
        vec![
            json!([]),
            json!([0]),
            json!([5]),
            json!([1, 2, 3, 4, 4, 5, 99]),
            json!([u64::MAX]),
        ]
    };
    let texts = || {
        vec![
            json!(""),
            json!("\u{0}\u{202e}../../x\n"),
            json!("a==1\nb==2\n# (c==3)\n-e \n"),
            json!("x".repeat(100_000)),
        ]
    };
    let fields: Vec<(&str, Vec<serde_json::Value>)> = vec![
        ("reverts", ids()),
        ("reapplies", ids()),
        ("freeze", texts()),
        ("target", texts()),
        ("command", texts()),
        ("exit_code", vec![json!(-1), json!(i32::MAX), json!(null)]),
        ("schema", vec![json!(0), json!(2), json!(u32::MAX)]),
        (
            "kind",
            ["undo", "redo", "pip", "init", "clean", "restore"]
                .map(|k| json!(k))
                .to_vec(),
        ),
        ("interrupted", vec![json!(true)]),
        (
            "changes",
            vec![
                json!(null),
                json!({"added": ["x==1", ""], "removed": ["=="], "modified": []}),
            ],
        ),
    ];
    let any = [json!(null), json!(-1), json!(1e308), json!({}), json!("x")];
    let obj = doc.as_object_mut().unwrap();
    for _ in 0..1 + rng.below(3) {
        let (key, values) = &fields[rng.below(fields.len())];
        let value = if rng.below(4) == 0 {
            any[rng.below(any.len())].clone()
        } else {
            values[rng.below(values.len())].clone()
        };
        obj.insert(key.to_string(), value);
    }
    serde_json::to_vec(&doc).unwrap()
}

/// How long one input may take a parser (debug build, 2 shared cores, files written first).
const PER_INPUT: Duration = Duration::from_secs(2);

/// Feeds the seeds, then `n - seeds` mutations of them, to `check`, which calls the real parsing
/// code and asserts what must hold of its result. A panic or an input slower than `PER_INPUT`
/// fails with the input. Returns how many inputs ran.
fn fuzz(what: &str, seed: u64, seeds: &[&[u8]], n: usize, check: impl FnMut(&[u8])) -> usize {
    fuzz_with(what, seed, seeds, n, mutate, check)
}

fn fuzz_with(
    what: &str,
    seed: u64,
    seeds: &[&[u8]],
    n: usize,
    mutator: fn(&mut Rng, &[&[u8]]) -> Vec<u8>,
    mut check: impl FnMut(&[u8]),
) -> usize {
    let mut rng = Rng(seed);
    for i in 0..n {
        let input = match seeds.get(i) {
            Some(s) => s.to_vec(),
            None => mutator(&mut rng, seeds),
        };
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        let took = start.elapsed();
        let shown = String::from_utf8_lossy(&input[..input.len().min(2000)]).into_owned();
        assert!(
            outcome.is_ok(),
            "{what}: input #{i} (seed {seed}) panicked; input: {shown:?}"
        );
        assert!(
            took < PER_INPUT,
            "{what}: input #{i} (seed {seed}) took {took:?}; input: {shown:?}"
        );
    }
    n
}

const METADATA_SEEDS: &[&[u8]] = &[
    b"Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\nRequires-Dist: beta>=1\n\nBody text\n",
    b"Metadata-Version: 1.0\nName: Foo.Bar_baz\nVersion: 1.0.0-alpha1\n",
    b"Metadata-Version: 2.1\r\nVersion: 0!1.0.post1\r\nName: x\r\n",
    b"Name: legacy\nVersion: not a version\n",
];

const DIRECT_URL_SEEDS: &[&[u8]] = &[
    br#"{"url": "https://example.org/x.tar.gz", "archive_info": {"hash": "sha256=abc"}, "subdirectory": "sub"}"#,
    br#"{"url": "https://example.org/r.git", "vcs_info": {"vcs": "git", "commit_id": "deadbeef", "requested_revision": "main"}}"#,
    br#"{"url": "file:///nonexistent/project", "dir_info": {"editable": true}}"#,
    br#"{"url": "file:///nonexistent/a%20b.whl", "archive_info": {"hashes": {"sha256": "abc"}}}"#,
];

const RECORD_SEEDS: &[&[u8]] = &[
    b"alpha/__init__.py,sha256=n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg,10\nalpha-1.0.dist-info/RECORD,,\n",
    b"\"a,b.py\",sha256=x,1\n../../bin/evil,,\n/abs/path,sha256=,\n",
    b"alpha-1.0.dist-info/METADATA,sha256=abc,notanumber,extra,columns\n,,\n",
];

const HISTORY_SEEDS: &[&[u8]] = checks::HISTORY;

const PYVENV_CFG_SEEDS: &[&[u8]] = &[
    b"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
    b"version_info = 3.12.1.final.0\n",
];

const SNAPSHOT_SEEDS: &[&[u8]] = &[
    b"# pyctl snapshot \"web\", 2026-01-01T00:00:00Z, 3 packages, python 3.11.2\nalpha==1.0\nbeta==1.0\npip==23.0.1\n",
    b"# Editable install with no version control (proj==0.1)\n-e /nonexistent/proj\nx @ https://example.org/x.tar.gz#sha256=abc\n",
    b"-e git+https://example.org/r.git@deadbeef#egg=r&subdirectory=s\nname[extra]>=1; python_version < \"4\"\n",
];

const CONFIG_SEEDS: &[&[u8]] = &[
    b"[history]\nmax_entries = 50\nauto_snapshot = true\nshow_diff_after_install = false\n\n[snapshots]\nauto_baseline = true\n",
    b"# comment\n[ui]\ncolor = false\nverbose = true\n[venv]\ninherit_system_packages = false\n",
    b"[store]\nlink_mode = \"copy\"\n[hooks]\non_conflict = \"block\"\n",
    b"history.max_entries = 3\nui = { color = true }\n",
];

const STORE_ENTRY_SEEDS: &[&[u8]] = &[
    br#"{"schema": 1, "name": "alpha", "canonical": "alpha", "version": "1.0", "line": "alpha==1.0", "dist_info": "lib/python3.11/site-packages/alpha-1.0.dist-info", "files": [{"path": "lib/python3.11/site-packages/alpha/__init__.py", "hash": "sha256=abc", "size": 10, "stat": [1, 2, 3]}, {"path": "../../outside", "hash": null, "size": null}], "stored_at": "2026-01-01T00:00:00Z"}"#,
];

const APT_SEEDS: &[&[u8]] = &[
    b"VERSION 3\nAPT::Architecture=amd64\nDir::Etc=etc/apt/\n\npython3-requests - - none < 2.28.1+dfsg-1 all foreign /var/cache/apt/archives/python3-requests_2.28.1+dfsg-1_all.deb\npython3-six 1.15.0-2 all foreign < 1.16.0-4 all foreign /var/cache/apt/archives/python3-six_1.16.0-4_all.deb\npython3-requests - - none < 2.28.1+dfsg-1 all foreign **CONFIGURE**\noldpkg 1.0 amd64 same > - - none **REMOVE**\n",
    b"VERSION 2\nA=b\n\npython3-x - < 1.0 /tmp/python3-x_1.0_all.deb\n",
    b"/tmp/a_1.0_all.deb\n/tmp/b_2_all.deb\n",
];

/// `rpm -ql` (dnf), `pacman -Ql` and `dpkg-deb --contents` listings.
const LISTING_SEEDS: &[&[u8]] = &[
    b"/usr/lib/python3.11/site-packages/requests-2.31.0.dist-info\n/usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA\n/usr/lib/python3/dist-packages/six-1.16.0-py3.11.egg-info\n",
    b"python-requests /usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/\npython-requests /usr/bin/\n",
    b"drwxr-xr-x root/root         0 2023-01-01 00:00 ./usr/lib/python3/dist-packages/requests-2.28.1.egg-info/\nlrwxrwxrwx root/root         0 2023-01-01 00:00 ./usr/bin/x -> y\n",
];

/// The parsers of every format pyctl reads from disk or from a package manager, called through
/// the library on seeds and on thousands of deterministic mutations of them (the stand-in for
/// cargo-fuzz, which needs a nightly toolchain): METADATA/PKG-INFO and direct_url.json (through
/// the site-packages scan and freeze), RECORD, history files (through the log reader and the
/// undo state), snapshot files (freeze map and plan), config TOML, store `entry.json`,
/// `pyvenv.cfg`, apt's hook input, and the rpm/pacman/dpkg-deb listings the hooks parse. No
/// panic, no input slower than `PER_INPUT`, and each result keeps the invariants checked here.
#[test]
fn hostile_input_to_every_parser_in_the_library() {
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let at = |rel: &str| work.path().join(rel);
    let mut total = 0;

    total += fuzz("METADATA", 1, METADATA_SEEDS, 800, |input| {
        checks::metadata(&at("site"), input)
    });
    total += fuzz("direct_url.json", 2, DIRECT_URL_SEEDS, 800, |input| {
        checks::direct_url(&at("site"), input)
    });
    total += fuzz("RECORD", 3, RECORD_SEEDS, 1500, checks::record);

    let as_fifth = history_seeds_as_fifth();
    let as_fifth: Vec<&[u8]> = as_fifth.iter().map(Vec::as_slice).collect();
    let (mut whole, mut reported) = (0, 0);
    let mut check_history = |input: &[u8]| {
        if checks::history(&at("history"), input) {
            whole += 1;
        } else {
            reported += 1;
        }
    };
    total += fuzz("history JSON", 4, &as_fifth, 1200, &mut check_history);
    total += fuzz_with(
        "history JSON values",
        11,
        &as_fifth,
        600,
        mutate_json,
        &mut check_history,
    );
    assert!(
        whole >= 50 && reported >= 500,
        "{whole} read whole, {reported} reported"
    );

    let store = pyctl::tier::store::Store::new(at("store"), Default::default());
    let current = checks::small_set(&at("small-site"));
    total += fuzz("snapshot file", 5, SNAPSHOT_SEEDS, 1500, |input| {
        checks::snapshot(&store, &current, input)
    });

    std::fs::write(at("system.toml"), CONFIG_SEEDS[0]).unwrap();
    let (mut accepted, mut refused) = (0, 0);
    total += fuzz("config TOML", 6, CONFIG_SEEDS, 1500, |input| {
        if checks::config(&at("system.toml"), &at("config.toml"), input) {
            accepted += 1;
        } else {
            refused += 1;
        }
    });
    // The mutations reach both sides of the parser, not only its first error.
    assert!(
        accepted >= 50 && refused >= 50,
        "{accepted} accepted, {refused} refused"
    );

    total += fuzz("store entry.json", 7, STORE_ENTRY_SEEDS, 800, |input| {
        checks::store_entry(&at("store"), input)
    });
    total += fuzz("pyvenv.cfg", 8, PYVENV_CFG_SEEDS, 800, |input| {
        checks::pyvenv_cfg(&at("venv"), input)
    });
    total += fuzz("apt hook input", 9, APT_SEEDS, 2000, checks::apt_hook);
    total += fuzz(
        "rpm/pacman/dpkg-deb listings",
        10,
        LISTING_SEEDS,
        2000,
        |input| checks::hook_listings(&current, input),
    );

    assert_eq!(total, 13_500);
    eprintln!("{total} inputs in {:?}", started.elapsed());
}

/// The history seeds as entry 5 (the file the checks mutate), so that they start out whole.
fn history_seeds_as_fifth() -> Vec<Vec<u8>> {
    HISTORY_SEEDS
        .iter()
        .map(|s| {
            let text = String::from_utf8_lossy(s).into_owned();
            let id = text
                .split("\"id\": ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap();
            text.replacen(&format!("\"id\": {id},"), "\"id\": 5,", 1)
                .into_bytes()
        })
        .collect()
}

/// Every input of the committed cargo-fuzz corpus (fuzz/corpus/<target>/), through the same
/// checks as the fuzz targets: what the fuzzer once found interesting, and any input it once
/// crashed on, is replayed by every `cargo test`, with the time limit of the mutation loops.
#[test]
fn the_fuzz_corpus_replays_through_the_same_checks() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let work = tempfile::tempdir().unwrap();
    let at = |rel: &str| work.path().join(rel);
    std::fs::write(at("system.toml"), CONFIG_SEEDS[0]).unwrap();
    let store = pyctl::tier::store::Store::new(at("store"), Default::default());
    let current = checks::small_set(&at("small-site"));
    let mut counts = Vec::new();
    let mut run = |target: &str, check: &mut dyn FnMut(&[u8])| {
        counts.push(format!("{target} {}", replay(&corpus.join(target), check)));
    };
    run("metadata", &mut |i| checks::metadata(&at("site"), i));
    run("direct_url", &mut |i| checks::direct_url(&at("site"), i));
    run("record", &mut checks::record);
    run("history", &mut |i| {
        checks::history(&at("history"), i);
    });
    run("snapshot", &mut |i| checks::snapshot(&store, &current, i));
    run("config", &mut |i| {
        checks::config(&at("system.toml"), &at("config.toml"), i);
    });
    run("store_entry", &mut |i| checks::store_entry(&at("store"), i));
    run("pyvenv_cfg", &mut |i| checks::pyvenv_cfg(&at("venv"), i));
    run("apt_hook", &mut checks::apt_hook);
    run("hook_listings", &mut |i| checks::hook_listings(&current, i));
    run("redact", &mut checks::redact);
    // Every target of fuzz/Cargo.toml has its corpus replayed here.
    let targets = std::fs::read_to_string(corpus.join("../Cargo.toml")).unwrap();
    assert_eq!(
        targets.matches("[[bin]]").count(),
        counts.len(),
        "{counts:?}"
    );
    eprintln!("replayed: {}", counts.join(", "));
}

/// Every file in `dir` through `check`, sorted by name; a panic or an input slower than
/// `PER_INPUT` fails with the file's path. Returns how many files ran.
fn replay(dir: &Path, check: &mut dyn FnMut(&[u8])) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    for file in &files {
        let input = std::fs::read(file).unwrap();
        let begun = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        assert!(outcome.is_ok(), "{}: the check failed", file.display());
        let took = begun.elapsed();
        assert!(took < PER_INPUT, "{}: took {took:?}", file.display());
    }
    files.len()
}

/// A command's end after hostile input: an exit code it means (`allowed`), never a panic (101)
/// or a signal, and an error said as `pyctl: error:`.
fn assert_sane_exit(what: &str, out: &Output, allowed: &[i32]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
    let code = out.status.code();
    assert!(
        code.is_some_and(|c| allowed.contains(&c)),
        "{what}: exit {:?}:\n{err}",
        out.status
    );
    if code != Some(0) {
        assert!(
            err.contains("pyctl: error:"),
            "{what}: unclear error:\n{err}"
        );
    }
}

/// The same hostile inputs through the real binary, as the test account: `pyctl hook apt` fed
/// mutated apt input on stdin; mutated history files, `config.toml` and a snapshot file planted
/// in a tier, read by `pyctl history`, `--json history`, `status`, `config` and
/// `list-snapshots`. Every run ends within 10 s with a sane exit code and no panic.
#[test]
fn hostile_input_through_the_binary() {
    let t = Tier::bare();
    let root = t.root();
    for dir in ["history", "snapshots"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    t.give_away(&t.home());
    let limit = Duration::from_secs(10);
    let pyctl = |args: &[&str], stdin: &[u8]| -> Output {
        let mut c = t.command(Path::new(common::PYCTL));
        // A system tier that does not exist: the hook parses, finds nothing to compare
        // against, and must let apt go on.
        c.args(args)
            .env("PYCTL_SYSTEM_PREFIX", t.path().join("no-system-tier"));
        output_within(c, stdin, limit)
    };
    let plant = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).unwrap();
        t.give_away(path);
    };
    let mut runs = 0;
    let mut rng = Rng(21);
    for i in 0..200 {
        let input = APT_SEEDS
            .get(i)
            .map(|s| s.to_vec())
            .unwrap_or_else(|| mutate(&mut rng, APT_SEEDS));
        let out = pyctl(&["hook", "apt"], &input);
        assert_sane_exit(&format!("hook apt, input #{i}"), &out, &[0]);
        runs += 1;
    }

    for (i, seed) in HISTORY_SEEDS.iter().enumerate() {
        let id = i as u64 + 1;
        for half in [
            pyctl::tier::history::Half::Before,
            pyctl::tier::history::Half::After,
        ] {
            plant(
                &root
                    .join("history")
                    .join(pyctl::tier::history::file_name(id, half)),
                seed,
            );
        }
    }
    let mut rng = Rng(22);
    for i in 0..60 {
        let input = if i % 2 == 0 {
            mutate(&mut rng, HISTORY_SEEDS)
        } else {
            mutate_json(&mut rng, HISTORY_SEEDS)
        };
        plant(&root.join("history/005_before.json"), &input);
        for args in [&["history"][..], &["--json", "history"], &["status"]] {
            let out = pyctl(args, b"");
            assert_sane_exit(&format!("{args:?}, history input #{i}"), &out, &[0, 1]);
            runs += 1;
        }
        // Entries 1 to 4 are whole and still listed, whatever entry 5 holds.
        let out = pyctl(&["--json", "history"], b"");
        if out.status.success() {
            let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let ids: Vec<u64> = listed
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["id"].as_u64())
                .collect();
            for id in 1..=4 {
                assert!(ids.contains(&id), "history input #{i}: #{id} lost: {ids:?}");
            }
        }
    }
    std::fs::remove_file(root.join("history/005_before.json")).unwrap();

    let mut rng = Rng(23);
    for i in 0..40 {
        plant(&root.join("config.toml"), &mutate(&mut rng, CONFIG_SEEDS));
        for args in [&["config"][..], &["status"]] {
            let out = pyctl(args, b"");
            assert_sane_exit(&format!("{args:?}, config input #{i}"), &out, &[0, 1]);
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("config.toml"), "{args:?}: {err}");
            }
            runs += 1;
        }
    }
    std::fs::remove_file(root.join("config.toml")).unwrap();

    let mut rng = Rng(24);
    for i in 0..40 {
        plant(
            &root.join("snapshots/s.txt"),
            &mutate(&mut rng, SNAPSHOT_SEEDS),
        );
        let out = pyctl(&["list-snapshots"], b"");
        assert_sane_exit(&format!("list-snapshots, input #{i}"), &out, &[0]);
        runs += 1;
    }
    assert_eq!(runs, 200 + 180 + 80 + 40);
}

/// Every path under `dir` (the venv included) with its size and modification time.
fn tree_with_times(dir: &Path) -> Vec<(String, u64, i64)> {
    let mut v: Vec<(String, u64, i64)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            !e.path()
                .components()
                .any(|c| c.as_os_str() == "__pycache__")
        })
        .map(|e| {
            let m = e.path().symlink_metadata().unwrap();
            (e.path().display().to_string(), m.len(), m.mtime())
        })
        .collect();
    v.sort();
    v
}

/// `pip install` and `pyctl undo` on a tier that cannot be written: an error naming the path,
/// nothing written anywhere in the tier, the set unchanged; once writable again, undo works.
/// Twice: the tier made read-only with `chmod -R a-w` (EACCES), and, as root, the tier folder
/// bound read-only on itself in a mount namespace of its own (EROFS, which root cannot pass
/// either).
#[test]
fn read_only_tier_is_a_clear_error_and_changes_nothing() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.install(&["beta"]);
    let last = t.last_id();
    let wheels = t.wheels();
    let install = t.install_args(wheels.to_str().unwrap(), &["delta"]);
    let check = |how: &str, outs: Vec<Output>, before: &[(String, u64, i64)]| {
        for out in outs {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{how}:\n{}", text(&out));
            assert!(
                err.contains("pyctl: error:") && err.contains(&t.root().display().to_string()),
                "{how}: the error does not name the tier's path:\n{err}"
            );
            assert!(!err.contains("panicked"), "{how}: {err}");
        }
        assert_eq!(
            tree_with_times(&t.root()),
            before,
            "{how}: something was written"
        );
        assert_eq!(t.last_id(), last, "{how}");
        t.assert_set(&["alpha==1.0", "beta==1.0"]);
    };

    let before = tree_with_times(&t.root());
    ok(
        "chmod",
        Command::new("chmod")
            .arg("-R")
            .arg("a-w")
            .arg(t.root())
            .output()
            .unwrap(),
    );
    let outs = vec![t.pip(&install), t.pyctl(&["undo"])];
    ok(
        "chmod",
        Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(t.root())
            .output()
            .unwrap(),
    );
    // chmod itself changes no size or time that `tree_with_times` looks at.
    check("chmod -R a-w", outs, &before);

    if let Some((uid, gid)) = t.ids {
        // The same commands as the account, in a namespace where the tier is mounted read-only.
        let read_only = |program: &Path, args: &[&str]| -> Output {
            let base = t.command(program);
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(
                    "mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\" && \
                     u=\"$1\" g=\"$2\" && shift 2 && \
                     exec setpriv --reuid=\"$u\" --regid=\"$g\" --clear-groups \"$@\"",
                )
                .arg(t.root())
                .arg(uid.to_string())
                .arg(gid.to_string())
                .arg(program)
                .args(args)
                .env_clear()
                .current_dir(t.path())
                .stdin(Stdio::null());
            for (k, v) in base.get_envs() {
                if let Some(v) = v {
                    c.env(k, v);
                }
            }
            c.output().unwrap()
        };
        let before = tree_with_times(&t.root());
        let outs = vec![
            read_only(&t.path().join("bin/pip"), &install),
            read_only(Path::new(common::PYCTL), &["undo"]),
        ];
        for out in &outs {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("Read-only file system"), "{err}");
        }
        check("read-only bind mount", outs, &before);
    } else {
        eprintln!("not root: no read-only mount");
    }
    let out = t.pyctl_ok(&["undo"]);
    assert!(out.contains("recorded"), "{out}");
    t.assert_set(&["alpha==1.0"]);
}

/// The venv's interpreter vanished (a distro upgrade, a removed pyenv Python): the owner's next
/// command says so in one line, rebuilds the tier on the Python pyctl would choose now with the
/// same set (issue 16), records that as a `rebuild` entry, then does what was asked; undo goes
/// back to the rebuild and refuses, plainly, to go past it.
#[test]
fn missing_python_is_rebuilt_at_next_use_with_the_same_set() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.install(&["beta"]);
    let last = t.last_id();
    let link = t.venv().join("bin/python3");
    std::fs::remove_file(&link).unwrap();
    plant_symlink(&t, Path::new("/nonexistent/python3.99"), &link);
    let wheels = t.wheels();
    let install = t.install_args(wheels.to_str().unwrap(), &["delta"]);
    let out = t.pip(&install);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!err.contains("panicked"), "{err}");
    let said: Vec<&str> = err.lines().filter(|l| l.contains("rebuilding")).collect();
    assert_eq!(said.len(), 1, "one line about the rebuild:\n{err}");
    assert!(said[0].contains("is gone"), "{err}");
    t.assert_set(&["alpha==1.0", "beta==1.0", "delta==1.0"]);
    assert_files_whole(&t, "rebuilt");
    let history = t.history();
    let kinds: Vec<&str> = history
        .iter()
        .filter(|(id, _, _)| *id > last)
        .map(|(_, before, _)| before["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["rebuild", "pip"], "{history:?}");
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==1.0", "beta==1.0"]);
    let out = t.pyctl(&["undo"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot undo past"), "{err}");
    // Entries follow the rebuild (the install and its undo): the hint names how far undo goes.
    assert!(err.contains("undo --to"), "{err}");
    t.assert_set(&["alpha==1.0", "beta==1.0"]);
}

/// Kills `pyctl redo` (with pip's process group) at 24 points over its duration. Each trial
/// starts from `small` with the redo of a `restore full` pending (1516 modules to put back from
/// the store), and ends with the same recovery checks as the other loops.
#[test]
fn sigkill_during_redo_then_recovery() {
    let t = tier_with_big();
    // 24 points: a redo's window between its two history files is a small part of its time
    // now that the store is checked without hashing.
    let (n, inside, undone) = kill_trials(&t, &["redo"], 24, Victim::Group, &|| {
        t.pyctl_ok(&["restore", "small"]);
        t.pyctl_ok(&["restore", "full"]);
        t.pyctl_ok(&["undo"]);
        // Once the undo's background deletion is over, the trees it parked go: a redo from
        // them is one rename per folder (tests/user/parked.rs), over before most kills land;
        // this kills the redo that links file by file.
        t.settle();
        let parked = t.root().join(".parked");
        if parked.exists() {
            std::fs::remove_dir_all(&parked).unwrap();
        }
    });
    assert!(
        inside >= 3,
        "only {inside} of {n} kills landed inside a redo"
    );
    assert_eq!(undone, n, "undo had nothing to undo");
    t.pyctl_ok(&["restore", "full"]);
    assert_eq!(py_files(&t, "big"), 1516, "big is listed but incomplete");
    assert!(t.pip_check_passes());
}

/// A tier with alpha, then mid, installed from the wheel folder while the store is off
/// (`history.auto_snapshot = false`); snapshots `small` (alpha) and `full` (alpha, mid). Putting
/// mid back takes pip, from the wheel folder the install named.
fn tier_without_store() -> Tier {
    let t = Tier::new();
    mid_wheel(&t.wheels());
    t.pyctl_ok(&["config", "auto_snapshot", "false"]);
    // Nothing pruned: the install that names the wheel folder stays in the history.
    t.pyctl_ok(&["config", "max_entries", "0"]);
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["snapshot", "small"]);
    t.install(&["mid"]);
    t.pyctl_ok(&["snapshot", "full"]);
    let kept: Vec<String> = std::fs::read_dir(t.root().join("store"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("alpha") || n.starts_with("mid"))
        .collect();
    assert!(kept.is_empty(), "the store kept {kept:?}");
    t
}

/// Kills during an `undo`, a `redo` and a `restore full` that put `mid` (400 modules) back with
/// pip, the store being off: pyctl's process group (8, 4 and 4 delays), or pip alone (the same;
/// pyctl must then record where pip left the venv and exit 1). Same recovery checks as the other
/// loops; at the end `restore full` gets mid back whole.
#[test]
fn sigkill_during_pip_fallback_then_recovery() {
    let t = tier_without_store();
    let restore = |names: &[&str]| {
        for name in names {
            t.pyctl_ok(&["restore", name]);
        }
    };
    let undo_pending = || restore(&["full", "small"]);
    let redo_pending = || {
        restore(&["small", "full"]);
        t.pyctl_ok(&["undo"]);
    };
    let restore_pending = || restore(&["small"]);
    for victim in [Victim::Group, Victim::Pip] {
        let (mut trials, mut inside) = (0, 0);
        for (args, n, prepare) in [
            (&["undo"][..], 8, &undo_pending as &dyn Fn()),
            (&["redo"][..], 4, &redo_pending),
            (&["restore", "full"][..], 4, &restore_pending),
        ] {
            let (tried, hit, undone) = kill_trials(&t, args, n, victim, prepare);
            eprintln!("{args:?} ({victim:?}): {tried} trials, {hit} landed inside");
            assert_eq!(
                undone, tried,
                "{args:?} ({victim:?}): undo had nothing to undo"
            );
            trials += tried;
            inside += hit;
        }
        assert_eq!(trials, 16);
        assert!(
            inside >= 5,
            "{victim:?}: only {inside} of {trials} kills landed inside an operation"
        );
    }
    restore(&["full"]);
    assert_eq!(py_files(&t, "mid"), 409, "mid is listed but incomplete");
    assert!(t.pip_check_passes());
}

/// Inode, size, modification time and content hash of a file.
fn fingerprint(path: &Path) -> (u64, u64, i64, String) {
    use sha2::Digest as _;
    let m = std::fs::metadata(path).unwrap();
    let hash = sha2::Sha256::digest(std::fs::read(path).unwrap());
    let hash: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    (m.ino(), m.len(), m.mtime(), hash)
}

/// As root, in a system tier (`PYCTL_SYSTEM_PREFIX`, a root-only temp folder; the machine's
/// /opt is never touched):
/// - `pip install --force-reinstall -U pip` (Debian's pip wheel, offline), through the `pip`
///   wrapper and then through the venv's own `bin/pip3` shim: pip rewrites its scripts, pyctl's
///   shims are back afterwards, the pyctl binary is untouched, and the shims still run pip;
/// - the apt, dnf and pacman hooks run with `PATH`, `PYTHON*`, `HOME`, `PYCTL_HOME` and
///   `VIRTUAL_ENV` pointing at an unprivileged account's folder, which holds a `dpkg-deb`,
///   `tar`, `rpm`, `pacman`, `dpkg-query`, `rm` and `python3` that leave a marker: none runs,
///   and the apt hook still reports the conflict the real dpkg-deb finds in the `.deb`; nor do
///   `pyctl clean` (which has `rm` delete the old venv) and `pyctl undo` in that environment.
#[test]
fn root_pip_self_reinstall_and_hooks_run_nothing_of_the_caller() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let wheels = Path::new("/usr/share/python-wheels");
    if !wheels.is_dir() {
        eprintln!("skipped: no /usr/share/python-wheels (python3-pip-whl)");
        return;
    }
    let real_opt = Path::new("/opt/system-python").exists();
    let top = tempfile::tempdir().unwrap();
    let sys = top.path().join("sys");
    let link = top.path().join("pip");
    std::os::unix::fs::symlink(common::PYCTL, &link).unwrap();
    let root_cmd = |program: &Path| {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("PYCTL_SYSTEM_PREFIX", &sys)
            .env("PIP_INDEX_URL", common::DEAD_INDEX)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_CACHE_DIR", "1")
            .env("NO_COLOR", "1")
            .current_dir(top.path())
            .stdin(Stdio::null());
        c
    };
    ok(
        "system init",
        root_cmd(Path::new(common::PYCTL))
            .args(["system", "init"])
            .output()
            .unwrap(),
    );
    let bin = sys.join("venv/bin");
    let shim_names: Vec<String> = std::fs::read_dir(&bin)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pip"))
        .collect();
    assert_eq!(shim_names.len(), 3, "{shim_names:?}");
    let shims = || -> Vec<String> {
        let mut v: Vec<String> = shim_names
            .iter()
            .map(|n| std::fs::read_to_string(bin.join(n)).unwrap())
            .collect();
        v.sort();
        v
    };
    let shims_before = shims();
    for s in &shims_before {
        assert!(s.starts_with("#!/bin/sh\n# pyctl shim"), "{s}");
        assert!(s.contains(common::PYCTL), "{s}");
    }
    let binary = fingerprint(Path::new(common::PYCTL));
    let reinstall = [
        "install",
        "--no-index",
        "--find-links",
        wheels.to_str().unwrap(),
        "--force-reinstall",
        "-U",
        "pip",
    ];
    for program in [link.clone(), bin.join("pip3")] {
        let what = format!("{} {reinstall:?}", program.display());
        let out = ok(&what, root_cmd(&program).args(reinstall).output().unwrap());
        assert!(out.contains("recorded"), "{what}: not recorded:\n{out}");
        assert_eq!(shims(), shims_before, "{what}: the shims were not put back");
        assert_eq!(
            fingerprint(Path::new(common::PYCTL)),
            binary,
            "{what}: the pyctl binary changed"
        );
        for name in &shim_names {
            let out = ok(
                "shim --version",
                root_cmd(&bin.join(name)).arg("--version").output().unwrap(),
            );
            assert!(out.starts_with("pip "), "{name}: {out}");
        }
    }
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(common::PYCTL));

    // The hooks, with an unprivileged account's environment.
    let user = Tier::bare();
    let evil = user.path().join("evil");
    let marker = user.path().join("marker");
    std::fs::create_dir_all(evil.join("bin")).unwrap();
    std::fs::create_dir_all(evil.join("pkgs")).unwrap();
    for tool in [
        "dpkg-deb",
        "tar",
        "rpm",
        "pacman",
        "dpkg-query",
        "rm",
        "python3",
        "python",
    ] {
        let p = evil.join("bin").join(tool);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho {tool} >> {}\nexit 1\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let payload = format!(
        "open({:?}, 'a').write('python')\n",
        marker.display().to_string()
    );
    std::fs::write(evil.join("pkgs/sitecustomize.py"), &payload).unwrap();
    user.give_away(user.path());
    let debs = top.path().join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let deb = common::build_deb(
        &debs,
        "python3-oldpip",
        &[(
            "/usr/lib/python3/dist-packages/pip-22.0.dist-info/METADATA",
            "",
        )],
    );
    let hostile = |args: &[&str], stdin: &[u8]| -> Output {
        let mut c = root_cmd(Path::new(common::PYCTL));
        c.args(args)
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                    evil.join("bin").display()
                ),
            )
            .env("HOME", user.home())
            .env("PYCTL_HOME", user.root())
            .env("VIRTUAL_ENV", evil.join("venv"))
            .env("PYTHONPATH", evil.join("pkgs"))
            .env("PYTHONSTARTUP", evil.join("pkgs/sitecustomize.py"))
            .env("PYTHONHOME", &evil)
            .current_dir(&evil);
        output_within(c, stdin, Duration::from_secs(60))
    };
    let input = format!(
        "VERSION 3\nAPT::Architecture=amd64\n\n\
         python3-oldpip - - none < 1.0 all none {}\n",
        deb.display()
    );
    let apt = hostile(&["hook", "apt"], input.as_bytes());
    assert_sane_exit("hook apt", &apt, &[0]);
    let said = String::from_utf8_lossy(&apt.stderr);
    assert!(
        said.contains("pip 22.0") && said.contains("23.0"),
        "the apt hook did not report the conflict (did dpkg-deb run?):\n{said}"
    );
    assert_sane_exit(
        "hook dnf",
        &hostile(&["hook", "dnf", "python3-oldpip"], b""),
        &[0],
    );
    assert_sane_exit(
        "hook pacman",
        &hostile(&["hook", "pacman"], b"python-pip\n"),
        &[0],
    );
    // `clean` moves the venv aside and has `rm` delete it; `undo` brings the set back.
    let site = |p: &Path| {
        walkdir::WalkDir::new(p.join("venv/lib"))
            .min_depth(3)
            .max_depth(3)
            .into_iter()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".dist-info"))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let set_before = site(&sys);
    assert!(!set_before.is_empty());
    for args in [&["clean"][..], &["undo"]] {
        let out = hostile(args, b"");
        assert_sane_exit(&format!("{args:?}"), &out, &[0]);
    }
    let start = Instant::now();
    while std::fs::read_dir(&sys).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".trash-")
    }) {
        assert!(
            !marker.exists(),
            "root ran the caller's programs: {}",
            std::fs::read_to_string(&marker).unwrap_or_default()
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the old venv was never removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(site(&sys), set_before);
    assert!(
        !marker.exists(),
        "a hook ran the caller's programs: {}",
        std::fs::read_to_string(&marker).unwrap_or_default()
    );
    assert_eq!(
        Path::new("/opt/system-python").exists(),
        real_opt,
        "the machine's own /opt was touched"
    );
}
