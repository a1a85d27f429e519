//! The harness the integration tests share: a user tier of its own in a temp dir, the real
//! binary run as `pyctl` or as `pip` (as the unprivileged account `pyctltest-a` when the suite
//! runs as root), wheels built by the tests themselves, and the freeze and history readers.
//!
//! Each test binary (`tests/user`, `tests/system`, `tests/reliability`) uses part of it only.
#![allow(dead_code)]

pub mod tree;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const PYCTL: &str = env!("CARGO_BIN_EXE_pyctl");
/// Nothing listens there: any attempt to reach an index fails at once.
pub const DEAD_INDEX: &str = "http://127.0.0.1:9/simple";

/// A user tier of its own in a temp dir (`home/tier`, with `PYCTL_HOME` pointing there), the
/// standard wheels in `wheels/`, and the binary linked as `bin/pip`.
pub struct Tier {
    pub dir: tempfile::TempDir,
    /// The account the binary runs as (the unprivileged test account when the suite is root).
    pub ids: Option<(u32, u32)>,
    /// `pyctl freeze` right after init: pip and setuptools.
    pub base: Vec<String>,
    /// The index pip and pyctl are pointed at (`PIP_INDEX_URL`): nobody answers unless a test
    /// starts its own server.
    pub index_url: String,
}

impl Tier {
    /// A tier set up with `pyctl init --no-modify-path`.
    pub fn new() -> Tier {
        let mut tier = Tier::bare();
        tier.pyctl_ok(&["init", "--no-modify-path"]);
        tier.base = tier.set();
        assert!(
            tier.base.iter().any(|l| l.starts_with("pip==")),
            "{:?}",
            tier.base
        );
        tier
    }

    /// The folders, wheels and `bin/pip`, but no tier yet: the first `pip install` or
    /// `pyctl init` makes it.
    pub fn bare() -> Tier {
        let dir = tempfile::Builder::new()
            .prefix("pyctl-test-")
            .tempdir()
            .unwrap();
        let ids = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("pyctltest-a")
                .unwrap()
                .expect("the test account pyctltest-a");
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let tier = Tier {
            dir,
            ids,
            base: Vec::new(),
            index_url: DEAD_INDEX.to_string(),
        };
        for sub in ["home", "wheels", "bin"] {
            std::fs::create_dir_all(tier.path().join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(PYCTL, tier.path().join("bin/pip")).unwrap();
        standard_wheels(&tier.wheels());
        tier.give_away(tier.path());
        tier
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    pub fn root(&self) -> PathBuf {
        self.home().join("tier")
    }

    pub fn venv(&self) -> PathBuf {
        self.root().join("venv")
    }

    pub fn wheels(&self) -> PathBuf {
        self.path().join("wheels")
    }

    pub fn site_packages(&self) -> PathBuf {
        site_packages_in(&self.venv())
    }

    /// Hands a tree to the test account.
    pub fn give_away(&self, path: &Path) {
        if let Some((uid, gid)) = self.ids {
            for e in walkdir::WalkDir::new(path)
                .into_iter()
                .filter_map(Result::ok)
            {
                std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid)).unwrap();
            }
        }
    }

    /// `program` in a clean environment, as the test account, offline.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("HOME", self.home())
            .env("PYCTL_HOME", self.root())
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path().join("bin").display()),
            )
            .env("PIP_INDEX_URL", &self.index_url)
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_CACHE_DIR", "1")
            .env("PIP_RETRIES", "0")
            .env("PIP_TIMEOUT", "2")
            .env("NO_COLOR", "1")
            .env("LANG", "C.UTF-8")
            .current_dir(self.path())
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.ids {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    pub fn pyctl(&self, args: &[&str]) -> Output {
        self.command(Path::new(PYCTL)).args(args).output().unwrap()
    }

    pub fn pyctl_ok(&self, args: &[&str]) -> String {
        ok(&format!("pyctl {args:?}"), self.pyctl(args))
    }

    pub fn pyctl_err(&self, args: &[&str]) -> String {
        let out = self.pyctl(args);
        let text = text(&out);
        assert!(!out.status.success(), "pyctl {args:?} succeeded:\n{text}");
        text
    }

    /// `pyctl --json ARGS`, successful, its stdout parsed.
    pub fn pyctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.pyctl(&all);
        assert!(
            out.status.success(),
            "pyctl {all:?} failed:\n{}",
            text(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("pyctl {all:?}: not JSON ({e}):\n{}", text(&out)))
    }

    pub fn spawn_pyctl(&self, args: &[&str]) -> Child {
        self.command(Path::new(PYCTL))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// The wrapper, as `pip`.
    pub fn pip(&self, args: &[&str]) -> Output {
        self.command(&self.path().join("bin/pip"))
            .args(args)
            .output()
            .unwrap()
    }

    /// `pip install --no-index --find-links WHEELS ARGS...` through the wrapper: its arguments.
    pub fn install_args<'a>(&'a self, wheels: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["install", "--no-index", "--find-links", wheels];
        all.extend_from_slice(args);
        all
    }

    /// `pip install --no-index --find-links WHEELS ARGS...` through the wrapper, successful.
    pub fn install(&self, args: &[&str]) -> String {
        let wheels = self.wheels();
        let all = self.install_args(wheels.to_str().unwrap(), args);
        ok(&format!("pip {all:?}"), self.pip(&all))
    }

    /// The venv's own pip, bypassing pyctl.
    pub fn venv_pip(&self, args: &[&str]) -> Output {
        self.command(&self.venv().join("bin/python"))
            .args(["-m", "pip"])
            .args(args)
            .output()
            .unwrap()
    }

    /// The installed set, as `pyctl freeze` prints it; asserted equal to `pip freeze --all`.
    pub fn set(&self) -> Vec<String> {
        let ours = self.pyctl_ok(&["-q", "freeze"]);
        let pips = ok("pip freeze --all", self.venv_pip(&["freeze", "--all"]));
        let ours: Vec<String> = stdout_lines(&ours);
        let pips: Vec<String> = stdout_lines(&pips);
        assert_eq!(ours, pips, "pyctl freeze and pip freeze --all disagree");
        ours
    }

    pub fn assert_set(&self, extra: &[&str]) {
        assert_eq!(self.set(), with_base(&self.base, extra));
    }

    pub fn pip_check_passes(&self) -> bool {
        self.venv_pip(&["check"]).status.success()
    }

    pub fn history_dir(&self) -> PathBuf {
        self.root().join("history")
    }

    /// (id, before, after) of every history entry, oldest first, read from the files.
    pub fn history(&self) -> Vec<(u64, serde_json::Value, Option<serde_json::Value>)> {
        let mut ids = BTreeSet::new();
        for e in std::fs::read_dir(self.history_dir()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if let Some((id, _)) = name.split_once('_') {
                if let Ok(id) = id.parse::<u64>() {
                    ids.insert(id);
                }
            }
        }
        ids.into_iter()
            .map(|id| {
                let read = |half: &str| {
                    let p = self.history_dir().join(format!("{id:03}_{half}.json"));
                    std::fs::read(&p)
                        .ok()
                        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
                };
                (id, read("before").unwrap(), read("after"))
            })
            .collect()
    }

    pub fn last_id(&self) -> u64 {
        self.history().last().unwrap().0
    }

    /// Waits (at most 60 s) until the background deletion of what undo, redo, restore and
    /// clean moved aside (`.trash-*`, parking included) is over.
    pub fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::read_dir(self.root())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(".trash-"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "trash still there after 60 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

pub fn with_base(base: &[String], extra: &[&str]) -> Vec<String> {
    let mut set: BTreeSet<String> = base.iter().cloned().collect();
    set.extend(extra.iter().map(|s| s.to_string()));
    set.into_iter().collect()
}

/// stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success; stdout then stderr.
pub fn ok(what: &str, out: Output) -> String {
    let t = text(&out);
    assert!(out.status.success(), "{what} failed ({}):\n{t}", out.status);
    t
}

pub fn stdout_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.starts_with("pyctl:"))
        .map(str::to_string)
        .collect()
}

/// A wheel built in the test: name, version, requirements and `(path, content)` files.
pub fn wheel(dir: &Path, name: &str, version: &str, requires: &[&str], files: &[(String, String)]) {
    wheel_with_headers(dir, name, version, "", requires, files);
}

/// `wheel` with more METADATA header lines (`Summary: ...\n`, say).
pub fn wheel_with_headers(
    dir: &Path,
    name: &str,
    version: &str,
    headers: &str,
    requires: &[&str],
    files: &[(String, String)],
) {
    let mut metadata =
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{headers}");
    for r in requires {
        metadata.push_str(&format!("Requires-Dist: {r}\n"));
    }
    wheel_files(dir, &format!("{name}-{version}"), &metadata, files);
}

/// A wheel whose `.dist-info` folder (and file name) is `folder-folder_version` while its METADATA
/// says `Name: name`, `Version: version`, as current build backends write them
/// (`zope_interface-8.0.1.dist-info` holding `Name: zope.interface`). One module,
/// `<folder lower-cased>_mod`.
pub fn wheel_spelled(dir: &Path, folder: &str, folder_version: &str, name: &str, version: &str) {
    wheel_files(
        dir,
        &format!("{folder}-{folder_version}"),
        &format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        &[(
            format!("{}_mod/__init__.py", folder.to_lowercase()),
            format!("NAME = {name:?}\n"),
        )],
    );
}

/// A wheel named `stem-py3-none-any.whl` with the `stem.dist-info` folder, this METADATA and
/// these files.
fn wheel_files(dir: &Path, stem: &str, metadata: &str, files: &[(String, String)]) {
    use base64::Engine as _;
    use sha2::Digest as _;
    use std::io::Write as _;
    let dist_info = format!("{stem}.dist-info");
    let mut all: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, c)| (p.clone(), c.clone().into_bytes()))
        .collect();
    all.push((
        format!("{dist_info}/METADATA"),
        metadata.as_bytes().to_vec(),
    ));
    all.push((
        format!("{dist_info}/WHEEL"),
        b"Wheel-Version: 1.0\nGenerator: pyctl-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            .to_vec(),
    ));
    let mut record = String::new();
    for (p, data) in &all {
        let digest = sha2::Sha256::digest(data);
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        record.push_str(&format!("{p},sha256={hash},{}\n", data.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    all.push((format!("{dist_info}/RECORD"), record.into_bytes()));
    let path = dir.join(format!("{stem}-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (p, data) in &all {
        zip.start_file(p.as_str(), opts).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

/// A wheel with one module, `name/__init__.py`.
pub fn simple_wheel(dir: &Path, name: &str, version: &str, requires: &[&str], module: &str) {
    wheel(
        dir,
        name,
        version,
        requires,
        &[(format!("{name}/__init__.py"), module.to_string())],
    );
}

/// alpha 1.0 and 2.0, beta 1.0 (needs alpha>=1), delta 1.0 (needs alpha<2).
pub fn standard_wheels(dir: &Path) {
    simple_wheel(dir, "alpha", "1.0", &[], "V = '1.0'\n");
    simple_wheel(dir, "alpha", "2.0", &[], "V = '2.0'\n");
    simple_wheel(dir, "beta", "1.0", &["alpha>=1"], "import alpha\n");
    simple_wheel(dir, "delta", "1.0", &["alpha<2"], "import alpha\n");
}

/// Every path under `dir`, sorted, without byte-code (pip and python write that at will).
pub fn file_list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .filter(|p| !p.contains("__pycache__"))
        .collect();
    v.sort();
    v
}

/// Waits until `path` exists, at most `limit`.
pub fn wait_for_file(path: &Path, limit: std::time::Duration, what: &str) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "{what}: {} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Everything written to a pseudo-terminal, read from its master side until the last writer
/// is gone (Linux then answers EIO).
pub fn read_pty(master: std::os::fd::OwnedFd) -> String {
    use std::io::Read as _;
    let mut master = std::fs::File::from(master);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Builds a .deb with dpkg-deb (version 1.0, architecture all) holding `files`: paths under the
/// root with their contents.
pub fn build_deb(dir: &Path, package: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(format!("{package}-root"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\n\
             Description: test\n"
        ),
    )
    .unwrap();
    for (path, content) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
    }
    let deb = dir.join(format!("{package}_1.0_all.deb"));
    ok(
        "dpkg-deb --build",
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&deb)
            .output()
            .unwrap(),
    );
    deb
}

/// What some tests want of a tier beyond the basics.
impl Tier {
    /// Moves the wheel folder away: from now on only the store can give distributions back.
    pub fn hide_wheels(&self) {
        std::fs::rename(self.wheels(), self.path().join("wheels.hidden")).unwrap();
    }

    pub fn show_wheels(&self) {
        std::fs::rename(self.path().join("wheels.hidden"), self.wheels()).unwrap();
    }

    /// The store's entries (folder names), sorted, temp files left out.
    pub fn store_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root().join("store"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        v
    }
}

/// A system tier's place: a root-owned 0755 temp folder, the tier in `sys/` below it
/// (`PYCTL_SYSTEM_PREFIX`). Each test has its own, never /opt/system-python.
pub struct SystemPrefix {
    pub dir: tempfile::TempDir,
}

impl SystemPrefix {
    pub fn new() -> SystemPrefix {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        SystemPrefix { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The tier (`PYCTL_SYSTEM_PREFIX`).
    pub fn root(&self) -> PathBuf {
        self.path().join("sys")
    }

    /// `program` as the caller (root) in a clean environment, pointed at this tier, run in the
    /// temp folder.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("PYCTL_SYSTEM_PREFIX", self.root())
            .env("NO_COLOR", "1")
            .current_dir(self.path());
        cmd
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// (uid, gid) of a test account; `scripts/test` creates `pyctltest-a` and `pyctltest-b`.
pub fn account(name: &str) -> (u32, u32) {
    let user = nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("the test account {name} (scripts/test creates it)"));
    (user.uid.as_raw(), user.gid.as_raw())
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The freeze lines of a history record.
pub fn freeze_of(record: &serde_json::Value) -> Vec<String> {
    record["freeze"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A venv's `lib/python3.X/site-packages`.
pub fn site_packages_in(venv: &Path) -> PathBuf {
    let minor = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .unwrap();
    minor.path().join("site-packages")
}

/// An sdist `out/NAME-VERSION.tar.gz` whose in-tree build backend is `backend` (Python), built
/// from `build/NAME-VERSION/`.
pub fn sdist_with_backend(build: &Path, out: &Path, name: &str, version: &str, backend: &str) {
    let src = build.join(format!("{name}-{version}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("pyproject.toml"),
        "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n",
    )
    .unwrap();
    std::fs::write(
        src.join("PKG-INFO"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
    )
    .unwrap();
    std::fs::write(src.join("backend.py"), backend).unwrap();
    ok(
        "tar czf",
        Command::new("tar")
            .arg("-C")
            .arg(build)
            .arg("-czf")
            .arg(out.join(format!("{name}-{version}.tar.gz")))
            .arg(format!("{name}-{version}"))
            .output()
            .unwrap(),
    );
}

/// Runs `cmd` with `stdin`, killing it and failing if it runs longer than `limit`.
pub fn output_within(mut cmd: Command, stdin: &[u8], limit: std::time::Duration) -> Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // A command may stop reading early; the write then fails, which is not the test's business.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let _ = writer.join();
            out.unwrap()
        }
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{cmd:?} ran longer than {limit:?}");
        }
    }
}

/// A pseudo-terminal, (master, slave), both close-on-exec from the start: tests run in
/// parallel threads of one process, and a child another test starts must not inherit the slave
/// (the master's reads end only when the last holder of the slave is gone).
pub fn pty() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use nix::fcntl::OFlag;
    use std::os::fd::{FromRawFd as _, IntoRawFd as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    let master =
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    let name = nix::pty::ptsname_r(&master).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(&name)
        .unwrap();
    // SAFETY: the PtyMaster's descriptor is handed over, and owned by nothing else from here.
    let master = unsafe { std::os::fd::OwnedFd::from_raw_fd(master.into_raw_fd()) };
    (master, slave.into())
}

/// A pipe, (read, write), both close-on-exec from the start (see `pty`).
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}
