//! Everyday commands (issue 6): `config`, `export`, `info`, with the real binary, real venvs and
//! the real pip, offline: wheels the tests build, and an index URL nobody answers unless a test
//! starts its own server on loopback.

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{text, DEAD_INDEX, PYCTL};

/// The shared harness's tier with this file's wheels (with summaries, for `info` and `search`)
/// added to `wheels/`, and the checks these tests want on top.
struct Tier(common::Tier);

impl std::ops::Deref for Tier {
    type Target = common::Tier;
    fn deref(&self) -> &common::Tier {
        &self.0
    }
}

impl std::ops::DerefMut for Tier {
    fn deref_mut(&mut self) -> &mut common::Tier {
        &mut self.0
    }
}

impl Tier {
    /// A tier folder with wheels, not yet initialised.
    fn bare() -> Tier {
        Tier::with_wheels(common::Tier::bare())
    }

    /// Initialised with `pyctl init --no-modify-path`.
    fn new() -> Tier {
        Tier::with_wheels(common::Tier::new())
    }

    fn with_wheels(tier: common::Tier) -> Tier {
        test_wheels(&tier.wheels());
        tier.give_away(&tier.wheels());
        Tier(tier)
    }

    fn config_file(&self) -> PathBuf {
        self.root().join("config.toml")
    }

    /// Writes a file the test account owns.
    fn write(&self, path: &Path, content: &str) {
        std::fs::write(path, content).unwrap();
        self.give_away(path);
    }

    /// Stdout of a successful run (the harness's `pyctl_ok` gives stdout and stderr).
    fn pyctl_ok(&self, args: &[&str]) -> String {
        let out = self.pyctl(args);
        assert!(
            out.status.success(),
            "pyctl {args:?} failed ({}):\n{}",
            out.status,
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stderr of a failed run, which must have exited 1 and said `pyctl: error:`.
    fn pyctl_err(&self, args: &[&str]) -> String {
        let out = self.pyctl(args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "pyctl {args:?}:\n{all}");
        assert!(!all.contains("panicked"), "{all}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("pyctl: error:"), "{err}");
        err
    }

    /// `pip install --no-index --find-links WHEELS ARGS...` through the wrapper; its stderr.
    fn install(&self, args: &[&str]) -> String {
        let wheels = self.wheels();
        let all = self.install_args(wheels.to_str().unwrap(), args);
        let out = self.pip(&all);
        assert!(out.status.success(), "pip {all:?}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The installed set as the venv's own `pip freeze --all` prints it.
    fn pip_freeze(&self) -> Vec<String> {
        let out = self.venv_pip(&["freeze", "--all"]);
        assert!(out.status.success(), "{}", text(&out));
        lines(&String::from_utf8_lossy(&out.stdout))
    }

    /// Ids of the history entries on disk.
    fn history_ids(&self) -> Vec<u64> {
        self.history().into_iter().map(|(id, _, _)| id).collect()
    }

    /// Runs pyctl with stdout on a pseudo-terminal, colour left to `--color auto`, NO_COLOR
    /// unset; returns what the terminal received.
    fn pyctl_on_tty(&self, args: &[&str]) -> String {
        let (master, slave) = common::pty();
        let mut cmd = self.command(Path::new(PYCTL));
        cmd.env_remove("NO_COLOR")
            .args(args)
            .stdout(Stdio::from(slave))
            .stderr(Stdio::null());
        let status = cmd.spawn().unwrap().wait().unwrap();
        // The command holds the terminal's other end until dropped; reads end when it is.
        drop(cmd);
        assert!(status.success(), "pyctl {args:?} on a tty: {status}");
        common::read_pty(master)
    }
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

/// A wheel built in the test: name, version, summary, requirements, one module.
fn wheel(dir: &Path, name: &str, version: &str, summary: &str, requires: &[&str]) {
    wheel_with(dir, name, version, summary, requires, Vec::new());
}

/// `wheel` with extra `(path, content)` files in the wheel (an `entry_points.txt`, say).
fn wheel_with(
    dir: &Path,
    name: &str,
    version: &str,
    summary: &str,
    requires: &[&str],
    extra: Vec<(String, String)>,
) {
    let mut files = vec![(format!("{name}/__init__.py"), format!("V = {version:?}\n"))];
    files.extend(extra);
    common::wheel_with_headers(
        dir,
        name,
        version,
        &format!("Summary: {summary}\n"),
        requires,
        &files,
    );
}

/// alpha 1.0 and 2.0; beta (needs alpha>=1); gamma, eps and zeta on their own (the harness's
/// delta is there too).
fn test_wheels(dir: &Path) {
    wheel(dir, "alpha", "1.0", "The first letter", &[]);
    wheel(dir, "alpha", "2.0", "The first letter", &[]);
    wheel(dir, "beta", "1.0", "Needs alpha", &["alpha>=1"]);
    wheel(dir, "gamma", "1.0", "Third", &[]);
    wheel(dir, "eps", "1.0", "Fifth", &[]);
    wheel(dir, "zeta", "1.0", "Sixth", &[]);
}

// ---------------------------------------------------------------------------------------------
// config

#[test]
fn config_lists_every_key_with_its_source_and_sets_bare_keys_keeping_comments() {
    let t = Tier::new();
    let listing = t.pyctl_ok(&["config"]);
    for key in [
        "history.max_entries",
        "history.auto_snapshot",
        "history.show_diff_after_install",
        "snapshots.auto_baseline",
        "ui.color",
        "ui.verbose",
        "venv.inherit_system_packages",
        "store.link_mode",
        "hooks.on_conflict",
    ] {
        assert!(listing.contains(key), "{key} missing:\n{listing}");
    }
    let line = |listing: &str, key: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(line(&listing, "history.max_entries")[1], "100");

    t.write(
        &t.config_file(),
        "# my settings\n[ui]\ncolor = true  # keep me\n",
    );
    t.pyctl_ok(&["config", "max_entries", "50"]);
    t.pyctl_ok(&["config", "store.link_mode", "copy"]);
    assert_eq!(
        std::fs::read_to_string(t.config_file()).unwrap(),
        "# my settings\n[ui]\ncolor = true  # keep me\n\n[history]\nmax_entries = 50\n\n\
         [store]\nlink_mode = \"copy\"\n"
    );
    let listing = t.pyctl_ok(&["config"]);
    let file = format!("({})", t.config_file().display());
    assert_eq!(line(&listing, "history.max_entries")[1..], ["50", &file]);
    assert_eq!(line(&listing, "ui.color")[1..], ["true", &file]);
    assert_eq!(
        line(&listing, "history.auto_snapshot")[1..],
        ["true", "(default)"]
    );
    assert_eq!(t.pyctl_ok(&["config", "max_entries"]), "50\n");
    assert_eq!(t.pyctl_ok(&["config", "link_mode"]), "copy\n");

    let json: serde_json::Value = serde_json::from_str(&t.pyctl_ok(&["--json", "config"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let max = rows
        .iter()
        .find(|r| r["key"] == "history.max_entries")
        .unwrap();
    assert_eq!(max["value"], 50);
    assert_eq!(max["source"], "tier");
    assert_eq!(max["file"], t.config_file().to_str().unwrap());
}

#[test]
fn config_errors_name_the_key_the_value_the_file_and_the_line() {
    let t = Tier::bare();
    let err = t.pyctl_err(&["config", "max_entriez", "5"]);
    assert!(err.contains("\"max_entriez\""), "{err}");
    assert!(err.contains("did you mean history.max_entries"), "{err}");
    assert!(
        err.contains("hooks.on_conflict"),
        "allowed keys listed: {err}"
    );
    let err = t.pyctl_err(&["config", "max_entries", "-3"]);
    assert!(
        err.contains("history.max_entries takes a whole number") && err.contains("\"-3\""),
        "{err}"
    );
    let err = t.pyctl_err(&["config", "link_mode", "symlink"]);
    assert!(
        err.contains("hardlink or copy") && err.contains("\"symlink\""),
        "{err}"
    );
    let err = t.pyctl_err(&["config", "ui.color", "yes"]);
    assert!(err.contains("true or false"), "{err}");
    assert!(!t.config_file().exists(), "nothing written on a bad value");

    std::fs::create_dir_all(t.root()).unwrap();
    t.give_away(t.path());
    t.write(
        &t.config_file(),
        "[ui]\ncolor = true\n[hooks]\non_conflict = \"stop\"\n",
    );
    let err = t.pyctl_err(&["config"]);
    let file = t.config_file().display().to_string();
    assert!(err.contains(&file) && err.contains("line 4"), "{err}");
    assert!(err.contains("`warn`") && err.contains("`block`"), "{err}");
    // Setting the key at fault mends the file.
    t.pyctl_ok(&["config", "on_conflict", "block"]);
    assert_eq!(t.pyctl_ok(&["config", "hooks.on_conflict"]), "block\n");

    t.write(&t.config_file(), "[ui]\ncolor = true\n[history\n");
    for args in [
        &["config"][..],
        &["config", "ui.color"],
        &["config", "color", "false"],
    ] {
        let err = t.pyctl_err(args);
        assert!(err.contains(&file) && err.contains("line 3"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(t.config_file()).unwrap(),
        "[ui]\ncolor = true\n[history\n",
        "a malformed file is left alone"
    );
}

#[test]
fn config_history_max_entries_prunes_the_oldest_entries() {
    let t = Tier::new();
    t.pyctl_ok(&["config", "max_entries", "3"]);
    for spec in ["alpha==1.0", "alpha==2.0", "gamma", "eps"] {
        t.install(&[spec]);
    }
    let ids = t.history_ids();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let history = t.pyctl_ok(&["history"]);
    assert_eq!(history.lines().count(), 3, "{history}");
    assert!(history.contains("install --no-index") && history.contains(" eps"));
    assert!(
        !history.contains("alpha==1.0"),
        "the oldest are gone:\n{history}"
    );
}

#[test]
fn config_ui_color_turns_colour_off_on_a_terminal() {
    let t = Tier::new();
    let coloured = t.pyctl_on_tty(&["history"]);
    assert!(
        coloured.contains("\x1b["),
        "colour on a tty by default: {coloured:?}"
    );
    t.pyctl_ok(&["config", "color", "false"]);
    let plain = t.pyctl_on_tty(&["history"]);
    assert!(plain.contains("#1"), "{plain:?}");
    assert!(
        !plain.contains("\x1b["),
        "no colour with ui.color = false: {plain:?}"
    );
    // --color always still wins.
    let forced = t.pyctl_on_tty(&["--color", "always", "history"]);
    assert!(forced.contains("\x1b["), "{forced:?}");
}

#[test]
fn config_show_diff_after_install_silences_the_summary() {
    let t = Tier::new();
    let said = t.install(&["gamma"]);
    assert!(
        said.contains("recorded #") && said.contains("1 added"),
        "{said}"
    );
    t.pyctl_ok(&["config", "show_diff_after_install", "false"]);
    let said = t.install(&["eps"]);
    assert!(!said.contains("recorded #"), "{said}");
    assert!(t.pip_freeze().contains(&"eps==1.0".to_string()));
}

#[test]
fn config_auto_baseline_false_makes_no_baseline_snapshot() {
    let with = Tier::new();
    assert!(with.root().join("snapshots/baseline.txt").is_file());
    let without = Tier::bare();
    // Set before the tier exists: the file is made, the tier is not.
    without.pyctl_ok(&["config", "auto_baseline", "false"]);
    assert!(!without.root().join(".lock").exists());
    without.pyctl_ok(&["init", "--no-modify-path"]);
    assert!(without.venv().join("pyvenv.cfg").is_file());
    assert!(!without.root().join("snapshots/baseline.txt").exists());
}

#[test]
fn config_inherit_system_packages_reaches_a_recreated_venv() {
    let t = Tier::new();
    let cfg = || std::fs::read_to_string(t.venv().join("pyvenv.cfg")).unwrap();
    assert!(
        cfg().contains("include-system-site-packages = false"),
        "{}",
        cfg()
    );
    t.pyctl_ok(&["config", "inherit_system_packages", "true"]);
    t.pyctl_ok(&["clean"]);
    assert!(
        cfg().contains("include-system-site-packages = true"),
        "{}",
        cfg()
    );
}

#[test]
fn config_store_link_mode_copy_restores_copies_not_links() {
    use std::os::unix::fs::MetadataExt;
    let links_after_undo_redo = |mode: Option<&str>| {
        let t = Tier::new();
        if let Some(mode) = mode {
            t.pyctl_ok(&["config", "link_mode", mode]);
        }
        t.install(&["gamma"]);
        t.pyctl_ok(&["undo"]);
        t.pyctl_ok(&["redo"]);
        let site = std::fs::read_dir(t.venv().join("lib"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("site-packages");
        let module = site.join("gamma/__init__.py");
        assert_eq!(std::fs::read_to_string(&module).unwrap(), "V = \"1.0\"\n");
        std::fs::metadata(&module).unwrap().nlink()
    };
    assert!(links_after_undo_redo(None) > 1, "hardlink by default");
    assert_eq!(links_after_undo_redo(Some("copy")), 1);
}

// ---------------------------------------------------------------------------------------------
// export

#[test]
fn export_round_trip_reinstalls_the_same_set() {
    let t = Tier::new();
    t.install(&["beta"]);
    t.install(&["gamma==1.0"]);
    let before = t.pip_freeze();
    let exported = t.pyctl_ok(&["export"]);
    assert_eq!(exported, t.pyctl_ok(&["freeze"]));
    assert_eq!(lines(&exported), before);
    // -o with a bare file name: written in the current folder.
    t.pyctl_ok(&["export", "-o", "reqs.txt"]);
    let file = t.path().join("reqs.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), exported);
    t.pyctl_ok(&["clean"]);
    assert!(!t.pip_freeze().contains(&"beta==1.0".to_string()));
    t.install(&["-r", file.to_str().unwrap()]);
    assert_eq!(t.pip_freeze(), before);
}

#[test]
fn export_requested_keeps_what_was_asked_for_pinned_and_reinstalls_it() {
    let t = Tier::new();
    let zeta = t.wheels().join("zeta-1.0-py3-none-any.whl");
    let reqs = t.path().join("reqs.txt");
    t.write(&reqs, "eps\n");
    t.install(&["-U", "beta"]);
    t.install(&["gamma[extra]>=1"]);
    t.install(&[zeta.to_str().unwrap()]);
    // Named only in a requirements file: asked for all the same (pip marks it REQUESTED;
    // issue 12).
    t.install(&["-r", reqs.to_str().unwrap()]);
    let out = t.pip(&["uninstall", "-y", "gamma"]);
    assert!(out.status.success(), "{}", text(&out));
    // A failed install asks for nothing.
    let out = t.pip(&["install", "--no-index", "no-such-project"]);
    assert!(!out.status.success());

    let requested = t.pyctl_ok(&["export", "--requested"]);
    // A wheel given by path is pinned as pip freeze pins it: a direct reference to that file.
    let zeta_line = format!("zeta @ file://{}", zeta.display());
    assert_eq!(
        lines(&requested),
        ["beta==1.0", "eps==1.0", zeta_line.as_str()]
    );

    t.pyctl_ok(&["export", "--requested", "-o", "requested.txt"]);
    let file = t.path().join("requested.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), requested);
    t.pyctl_ok(&["clean"]);
    t.install(&["-r", file.to_str().unwrap()]);
    let set = t.pip_freeze();
    for line in ["alpha==2.0", "beta==1.0", "eps==1.0", zeta_line.as_str()] {
        assert!(set.contains(&line.to_string()), "{line} missing: {set:?}");
    }
    assert!(!set.iter().any(|l| l.starts_with("gamma")), "{set:?}");
}

#[test]
fn export_requested_forgets_what_is_no_longer_installed() {
    let t = Tier::new();
    t.install(&["gamma"]);
    t.install(&["eps"]);
    t.pyctl_ok(&["undo"]);
    assert_eq!(
        lines(&t.pyctl_ok(&["export", "--requested"])),
        ["gamma==1.0"]
    );
}

#[test]
fn export_to_a_folder_that_does_not_exist_is_an_error() {
    let t = Tier::new();
    let err = t.pyctl_err(&["export", "-o", "/nonexistent-dir/x.txt"]);
    assert!(err.contains("/nonexistent-dir"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// info

/// A PEP 691 index on loopback, started by the test: `/simple/alpha/` lists alpha's files (2.1
/// the newest final release not yanked), `/simple/beta/` answers malformed JSON, anything else
/// 404. Returns its `/simple` URL; the server lives as long as the test process.
fn start_index() -> String {
    serve_index(|path| {
        match path {
        "/simple/alpha/" => (
            "200 OK",
            r#"{"meta": {"api-version": "1.1"}, "name": "alpha", "versions": ["1.0", "2.0", "2.1", "3.0", "4.0rc1"],
                "files": [
                  {"filename": "alpha-1.0-py3-none-any.whl", "url": "a", "hashes": {}},
                  {"filename": "alpha-2.0-py3-none-any.whl", "url": "b", "hashes": {}},
                  {"filename": "alpha-2.1.tar.gz", "url": "c", "hashes": {}},
                  {"filename": "alpha-3.0-py3-none-any.whl", "url": "d", "hashes": {}, "yanked": true},
                  {"filename": "alpha-4.0rc1-py3-none-any.whl", "url": "e", "hashes": {}}
                ]}"#
            .to_string(),
        ),
        "/simple/beta/" => ("200 OK", "{\"files\": [ oops".to_string()),
        _ => ("404 Not Found", "{}".to_string()),
    }
    })
}

/// A PEP 691 index on loopback answering each request path with `reply(path)` (status line and
/// JSON body). Returns its `/simple` URL; the server lives as long as the test process.
fn serve_index(reply: impl Fn(&str) -> (&'static str, String) + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/simple", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let json = "application/vnd.pypi.simple.v1+json";
            let (status, body) = reply(path);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {json}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn info_shows_metadata_files_requirements_and_the_operation_that_brought_it_in() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.install(&["beta"]);
    let out = t.pyctl_ok(&["info", "Alpha", "--offline"]);
    let field = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{out}"))[15..]
            .to_string()
    };
    assert_eq!(field("name"), "alpha");
    // beta's install left alpha 1.0 alone (it satisfies alpha>=1).
    assert_eq!(field("version"), "1.0");
    assert_eq!(field("summary"), "The first letter");
    assert!(field("location").ends_with("site-packages"), "{out}");
    // __init__.py, METADATA, WHEEL, RECORD, plus pip's INSTALLER (and REQUESTED).
    assert!(
        field("files").starts_with(|c: char| c.is_ascii_digit()),
        "{out}"
    );
    let files: usize = field("files").split(' ').next().unwrap().parse().unwrap();
    assert!((5..=7).contains(&files), "{out}");
    assert_eq!(field("requires"), "(none)");
    assert_eq!(field("required by"), "beta");
    assert!(
        field("brought in by").starts_with("#2 pip install"),
        "{out}"
    );
    assert!(field("brought in by").contains("alpha==1.0"), "{out}");
    assert_eq!(field("latest"), "not checked (--offline)");

    let json: serde_json::Value =
        serde_json::from_str(&t.pyctl_ok(&["--json", "info", "beta", "--offline"])).unwrap();
    assert_eq!(json["name"], "beta");
    assert_eq!(json["version"], "1.0");
    assert_eq!(json["requires"], serde_json::json!(["alpha>=1"]));
    assert_eq!(json["required_by"], serde_json::json!([]));
    assert_eq!(json["brought_in_by"]["id"], 3);
    assert!(json["brought_in_by"]["timestamp"]
        .as_str()
        .unwrap()
        .contains('T'));
    let size = json["size_bytes"].as_u64().unwrap();
    assert!(size > 0, "{json}");
}

#[test]
fn info_on_a_missing_or_misspelled_name_suggests_close_ones() {
    let t = Tier::new();
    t.install(&["beta"]);
    let err = t.pyctl_err(&["info", "alhpa", "--offline"]);
    assert!(err.contains("\"alhpa\" is not installed"), "{err}");
    assert!(err.contains("did you mean alpha"), "{err}");
    let err = t.pyctl_err(&["info", "setuptool", "--offline"]);
    assert!(err.contains("did you mean setuptools"), "{err}");
    let err = t.pyctl_err(&["info", "zzzzzzzz", "--offline"]);
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn info_asks_the_index_for_the_latest_version() {
    let mut t = Tier::new();
    t.install(&["beta"]);
    t.index_url = start_index();
    let out = t.pyctl_ok(&["info", "alpha"]);
    let latest = out.lines().find(|l| l.starts_with("latest")).unwrap();
    assert_eq!(
        latest,
        format!("latest         2.1 (newer) on {}", t.index_url)
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.pyctl_ok(&["--json", "info", "alpha"])).unwrap();
    assert_eq!(json["latest"]["status"], "found");
    assert_eq!(json["latest"]["version"], "2.1");
    // Not on the index, and a malformed reply: said, not fatal.
    let json: serde_json::Value =
        serde_json::from_str(&t.pyctl_ok(&["--json", "info", "setuptools"])).unwrap();
    assert_eq!(json["latest"]["status"], "not-on-index");
    let out = t.pyctl_ok(&["info", "beta"]);
    assert!(
        out.contains("unknown (") && out.contains("malformed reply"),
        "{out}"
    );
    // Nobody answering: offline, at once.
    t.index_url = DEAD_INDEX.to_string();
    let started = std::time::Instant::now();
    let out = t.pyctl_ok(&["info", "alpha"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let latest = out.lines().find(|l| l.starts_with("latest")).unwrap();
    assert!(latest.starts_with("latest         offline ("), "{latest}");
}

#[test]
fn config_ui_verbose_logs_as_with_dash_v() {
    let quiet = Tier::bare();
    let out = quiet.pyctl(&["init", "--no-modify-path"]);
    assert!(out.status.success());
    assert!(
        !text(&out).contains("init recorded as #1"),
        "{}",
        text(&out)
    );
    let verbose = Tier::bare();
    verbose.pyctl_ok(&["config", "verbose", "true"]);
    let out = verbose.pyctl(&["init", "--no-modify-path"]);
    assert!(out.status.success());
    assert!(text(&out).contains("init recorded as #1"), "{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// search

/// An index whose root lists `projects` (or answers `malformed` when set), counting the requests
/// for the root.
struct ListIndex {
    url: String,
    root_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    malformed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ListIndex {
    fn start(projects: &[&str]) -> ListIndex {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let root_requests = Arc::new(AtomicUsize::new(0));
        let malformed = Arc::new(AtomicBool::new(false));
        let list: Vec<serde_json::Value> = projects
            .iter()
            .map(|p| serde_json::json!({ "name": p }))
            .collect();
        let body =
            serde_json::json!({"meta": {"api-version": "1.1"}, "projects": list}).to_string();
        let (count, bad) = (root_requests.clone(), malformed.clone());
        let url = serve_index(move |path| match path {
            "/simple/" => {
                count.fetch_add(1, Ordering::SeqCst);
                if bad.load(Ordering::SeqCst) {
                    ("200 OK", "{\"projects\": [ nope".to_string())
                } else {
                    ("200 OK", body.clone())
                }
            }
            _ => ("404 Not Found", "{}".to_string()),
        });
        ListIndex {
            url,
            root_requests,
            malformed,
        }
    }

    fn requests(&self) -> usize {
        self.root_requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

const PROJECTS: &[&str] = &[
    "zeta",
    "the_alpha_project",
    "Alpha.Tools",
    "beta",
    "alpah",
    "alphabet",
    "alpha",
    "omega",
];

fn search_json(t: &Tier, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "search"];
    all.extend_from_slice(args);
    serde_json::from_str(&t.pyctl_ok(&all)).unwrap()
}

fn result_rows(json: &serde_json::Value) -> Vec<(String, String, Option<String>)> {
    json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["match"].as_str().unwrap().to_string(),
                r["installed"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn search_ranks_names_marks_what_is_installed_and_caches_the_list() {
    let mut t = Tier::new();
    t.install(&["alpha==1.0"]);
    let index = ListIndex::start(PROJECTS);
    t.index_url = index.url.clone();
    let json = search_json(&t, &["ALPHA"]);
    let row =
        |n: &str, m: &str, i: Option<&str>| (n.to_string(), m.to_string(), i.map(str::to_string));
    assert_eq!(
        result_rows(&json),
        vec![
            row("alpha", "exact", Some("1.0")),
            row("alphabet", "prefix", None),
            row("Alpha.Tools", "prefix", None),
            row("the_alpha_project", "substring", None),
            row("alpah", "fuzzy", None),
        ]
    );
    assert_eq!(json["total_matches"], 5);
    assert_eq!(json["source"]["from"], "index");
    assert_eq!(json["source"]["index"], index.url.as_str());
    assert_eq!(index.requests(), 1);
    let cache = t.root().join("cache/projects.json");
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(cached["index"], index.url.as_str());
    assert_eq!(cached["projects"].as_array().unwrap().len(), PROJECTS.len());

    // The fresh cache answers; the index is not asked again.
    let out = t.pyctl(&["search", "alpha", "--limit", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        lines(&stdout),
        vec!["alpha     exact      installed 1.0", "alphabet  prefix"]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 of 5 matches shown"), "{stderr}");
    assert!(stderr.contains("list cached"), "{stderr}");
    assert_eq!(index.requests(), 1);
    // --refresh asks the index again.
    let json = search_json(&t, &["omega", "--refresh"]);
    assert_eq!(result_rows(&json), vec![row("omega", "exact", None)]);
    assert_eq!(json["source"]["from"], "index");
    assert_eq!(index.requests(), 2);
    // No match: said, not an error.
    let json = search_json(&t, &["qqqqqqqq"]);
    assert_eq!(json["total_matches"], 0);
}

/// Writes a cache of `index` fetched `hours` ago, as the test account.
fn write_cache(t: &Tier, index: &str, hours: i64, projects: &[&str]) {
    let fetched = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours);
    let cache = serde_json::json!({
        "schema": 1,
        "index": index,
        "fetched": fetched.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "projects": projects,
    });
    let dir = t.root().join("cache");
    std::fs::create_dir_all(&dir).unwrap();
    t.give_away(&dir);
    t.write(&dir.join("projects.json"), &cache.to_string());
}

#[test]
fn search_offline_uses_the_cache_and_says_how_old_it_is() {
    let t = Tier::new();
    // No cache and nobody answering: a clear error, exit 1, at once.
    let started = std::time::Instant::now();
    let err = t.pyctl_err(&["search", "alpha"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(err.contains("cannot reach the index"), "{err}");
    assert!(
        err.contains("no cached project list of http://127.0.0.1:9/simple"),
        "{err}"
    );
    // A stale cache of that index: used, with its age.
    write_cache(&t, DEAD_INDEX, 50, PROJECTS);
    let out = t.pyctl(&["search", "beta"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "beta  exact");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the index"), "{stderr}");
    assert!(
        stderr.contains("using the list cached 2 days ago"),
        "{stderr}"
    );
    let json = search_json(&t, &["beta"]);
    assert_eq!(json["source"]["from"], "cache");
    assert!(json["source"]["age_seconds"].as_u64().unwrap() >= 50 * 3600);
    // A cache of another index is not this index's list.
    write_cache(&t, "http://elsewhere.invalid/simple", 1, PROJECTS);
    let err = t.pyctl_err(&["search", "beta"]);
    assert!(err.contains("no cached project list"), "{err}");
}

#[test]
fn config_search_cache_hours_sets_how_long_the_cached_list_is_used() {
    let mut t = Tier::new();
    let index = ListIndex::start(PROJECTS);
    t.index_url = index.url.clone();
    // A list fetched 30 hours ago: older than the default day, so the index is asked.
    write_cache(&t, &index.url, 30, PROJECTS);
    assert_eq!(search_json(&t, &["beta"])["source"]["from"], "index");
    assert_eq!(index.requests(), 1);
    // With two days allowed, a 30-hour-old list is used.
    t.pyctl_ok(&["config", "search.cache_hours", "48"]);
    write_cache(&t, &index.url, 30, PROJECTS);
    assert_eq!(search_json(&t, &["beta"])["source"]["from"], "cache");
    assert_eq!(index.requests(), 1);
    // 0: always ask, even right after a fetch.
    t.pyctl_ok(&["config", "cache_hours", "0"]);
    assert_eq!(search_json(&t, &["beta"])["source"]["from"], "index");
    assert_eq!(search_json(&t, &["beta"])["source"]["from"], "index");
    assert_eq!(index.requests(), 3);
    let err = t.pyctl_err(&["config", "cache_hours", "-1"]);
    assert!(err.contains("search.cache_hours"), "{err}");
}

#[test]
fn search_with_a_malformed_reply_falls_back_to_the_cache_or_fails_clearly() {
    let mut t = Tier::new();
    let index = ListIndex::start(PROJECTS);
    index
        .malformed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    t.index_url = index.url.clone();
    let err = t.pyctl_err(&["search", "alpha"]);
    assert!(err.contains("the index gave no project list"), "{err}");
    assert!(err.contains("malformed reply"), "{err}");
    assert!(!t.root().join("cache/projects.json").exists());
    write_cache(&t, &index.url, 30, &["alpha", "alpine"]);
    let out = t.pyctl(&["search", "alp"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        lines(&String::from_utf8_lossy(&out.stdout)),
        vec!["alpha   prefix", "alpine  prefix"]
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("using the list cached 30 hours ago"),
        "{}",
        text(&out)
    );
    // The stale cache stays as it was (not replaced by the bad reply).
    let cached = std::fs::read_to_string(t.root().join("cache/projects.json")).unwrap();
    assert!(cached.contains("alpine"), "{cached}");
}

#[test]
fn search_and_info_follow_the_index_url_of_pip_conf() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    let index = ListIndex::start(PROJECTS);
    let info_index = start_index();
    // ~/.config/pip/pip.conf, with no PIP_INDEX_URL and no PIP_CONFIG_FILE.
    let conf_dir = t.path().join("home/.config/pip");
    std::fs::create_dir_all(&conf_dir).unwrap();
    t.give_away(&t.path().join("home/.config"));
    t.write(
        &conf_dir.join("pip.conf"),
        &format!(
            "[install]\nindex-url = http://127.0.0.1:9/nope\n[global]\nindex-url = {}\n",
            index.url
        ),
    );
    let run = |args: &[&str], config_file: Option<&Path>| {
        let mut cmd = t.command(Path::new(PYCTL));
        cmd.env_remove("PIP_INDEX_URL")
            .env_remove("PIP_CONFIG_FILE");
        if let Some(f) = config_file {
            cmd.env("PIP_CONFIG_FILE", f);
        }
        let out = cmd.args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let json = run(&["--json", "search", "alpha"], None);
    assert_eq!(json["source"]["index"], index.url.as_str());
    assert_eq!(json["results"][0]["name"], "alpha");
    assert_eq!(index.requests(), 1);
    // PIP_CONFIG_FILE is read last and wins.
    let env_conf = t.path().join("pip-env.conf");
    t.write(&env_conf, &format!("[global]\nindex-url = {info_index}\n"));
    let json = run(&["--json", "info", "alpha"], Some(&env_conf));
    assert_eq!(json["latest"]["index"], info_index.as_str());
    assert_eq!(json["latest"]["version"], "2.1");
    // PIP_CONFIG_FILE=/dev/null turns every file off, as in pip: PyPI (not asked: --offline).
    let json = run(
        &["--json", "info", "alpha", "--offline"],
        Some(Path::new("/dev/null")),
    );
    assert_eq!(json["latest"]["index"], "https://pypi.org/simple");
}

#[test]
fn search_rejects_terms_that_are_not_names_and_a_zero_limit() {
    let t = Tier::new();
    let err = t.pyctl_err(&["search", "a b"]);
    assert!(err.contains("\"a b\" is not a project name"), "{err}");
    let err = t.pyctl_err(&["search", "--", "-._"]);
    assert!(err.contains("\"-._\" has no letter or digit"), "{err}");
    let out = t.pyctl(&["search", "alpha", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("'0'"), "{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// several Python versions

#[test]
fn python_option_of_the_default_version_is_the_default_tier() {
    let t = Tier::new();
    t.install(&["gamma"]);
    let version = t.pyctl_ok(&["--json", "status"]);
    let status: serde_json::Value = serde_json::from_str(&version).unwrap();
    let minor: String = status["python"]
        .as_str()
        .unwrap()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let with = t.pyctl_ok(&["--python", &minor, "history"]);
    assert_eq!(with, t.pyctl_ok(&["history"]));
    assert!(with.contains("gamma"), "{with}");
    let status: serde_json::Value =
        serde_json::from_str(&t.pyctl_ok(&["--python", &minor, "--json", "status"])).unwrap();
    assert_eq!(status["venv"], t.venv().to_str().unwrap());
    assert_eq!(status["tiers"].as_array().unwrap().len(), 1);
}

#[test]
fn python_option_for_a_python_that_is_not_installed_is_an_error() {
    let t = Tier::new();
    for args in [
        vec!["--python", "3.99", "status"],
        vec!["--python", "3.99", "init", "--no-modify-path"],
        vec!["init", "--python", "3.99", "--no-modify-path"],
        vec!["--python", "3.99", "history"],
    ] {
        let err = t.pyctl_err(&args);
        assert!(
            err.contains("Python 3.99 is not installed"),
            "{args:?}: {err}"
        );
    }
    assert!(!t.root().join("py399").exists());
    let out = t.pyctl(&["--python", "three", "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("\"three\" is not a Python version"),
        "{}",
        text(&out)
    );
}

/// With a default interpreter of another version (a stand-in that only answers the version
/// question as 3.12), `--python 3.11` is the `py311/` tier: created by init, reached by
/// `pip3.11`, listed by status, undone through `pyctl --python 3.11 undo`.
#[test]
fn python_option_works_on_the_py3x_tier_and_status_lists_every_tier() {
    let t = Tier::bare();
    let fake = t.path().join("bin/default-python");
    t.write(&fake, "#!/bin/sh\necho 3.12.0\n");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(PYCTL, t.path().join("bin/pip3.11")).unwrap();
    t.give_away(&t.path().join("bin"));
    let run = |program: &Path, args: &[&str]| {
        let out = t
            .command(program)
            .env("PYCTL_PYTHON", &fake)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let pyctl = Path::new(PYCTL);
    run(pyctl, &["--python", "3.11", "init"]);
    let py311 = t.root().join("py311");
    assert!(py311.join("venv/bin/python3.11").exists());
    assert!(!t.root().join("venv").exists());
    // No PATH lines for a version tier: its bin has a python3 of another version.
    assert!(!t.path().join("home/.profile").exists());
    let wheels = t.wheels();
    run(
        &t.path().join("bin/pip3.11"),
        &[
            "install",
            "--no-index",
            "--find-links",
            wheels.to_str().unwrap(),
            "zeta",
        ],
    );
    let history = run(pyctl, &["--python", "3.11", "history"]);
    assert!(history.contains("pip3.11 install"), "{history}");
    assert!(history.contains("zeta"), "{history}");
    let freeze = run(pyctl, &["--python", "3.11", "freeze"]);
    assert!(freeze.contains("zeta==1.0"), "{freeze}");

    let status = run(pyctl, &["status"]);
    let tiers: Vec<&str> = status
        .lines()
        .skip_while(|l| !l.starts_with("tiers"))
        .collect();
    assert_eq!(tiers.len(), 2, "{status}");
    assert!(
        tiers[0].contains(&format!("* {} (no venv yet)", t.root().display())),
        "{status}"
    );
    assert!(
        tiers[1].contains(&format!("{} (python 3.11.", py311.display())),
        "{status}"
    );
    assert!(tiers[1].contains(", 3 packages)"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&run(pyctl, &["--python", "3.11", "--json", "status"])).unwrap();
    assert_eq!(json["venv"], py311.join("venv").to_str().unwrap());
    assert_eq!(json["packages"], 3);
    assert_eq!(json["tiers"][1]["version_dir"], "3.11");
    assert_eq!(json["tiers"][1]["selected"], true);
    assert_eq!(json["tiers"][0]["selected"], false);

    run(pyctl, &["--python", "3.11", "undo"]);
    let freeze = run(pyctl, &["--python", "3.11", "freeze"]);
    assert!(!freeze.contains("zeta"), "{freeze}");
}

// ---------------------------------------------------------------------------------------------
// migrate

/// Installs `names` from `wheels` into the user site of the tier's home with the system
/// Python's own pip (`pip install --user`), as the test account.
fn pip_install_user(t: &Tier, wheels: &Path, names: &[&str]) {
    let out = t
        .command(Path::new("/usr/bin/python3"))
        .args([
            "-m",
            "pip",
            "install",
            "--user",
            "--no-index",
            "--break-system-packages",
            "--find-links",
            wheels.to_str().unwrap(),
        ])
        .args(names)
        .output()
        .unwrap();
    assert!(out.status.success(), "pip install --user: {}", text(&out));
}

fn user_site(t: &Tier) -> PathBuf {
    let out = Command::new("/usr/bin/python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    let minor = String::from_utf8_lossy(&out.stdout).trim().to_string();
    t.path()
        .join(format!("home/.local/lib/python{minor}/site-packages"))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn migrate_moves_user_site_packages_into_the_tier_recorded_and_undoable() {
    let t = Tier::bare();
    // migtool has a console script (in ~/.local/bin once installed --user); orphan's wheel is
    // in a folder migrate is not told about, so pip cannot get it.
    let orphans = t.path().join("orphans");
    std::fs::create_dir_all(&orphans).unwrap();
    wheel_with(
        &t.wheels(),
        "migtool",
        "1.0",
        "Has a script",
        &[],
        vec![(
            "migtool-1.0.dist-info/entry_points.txt".to_string(),
            "[console_scripts]\nmigtool = migtool:main\n".to_string(),
        )],
    );
    wheel(&orphans, "orphan", "1.0", "Nowhere else", &[]);
    t.give_away(t.path());
    pip_install_user(&t, &t.wheels(), &["migtool", "gamma"]);
    pip_install_user(&t, &orphans, &["orphan"]);
    let site = user_site(&t);
    let local_bin = t.path().join("home/.local/bin");
    assert!(local_bin.join("migtool").exists());

    // init and doctor notice them.
    let out = t.pyctl(&["init", "--no-modify-path"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("3 distributions were installed with `pip install --user`")
            && said.contains("gamma==1.0, migtool==1.0, orphan==1.0")
            && said.contains("`pyctl migrate`"),
        "{said}"
    );
    let doctor = text(&t.pyctl(&["doctor"]));
    assert!(
        doctor.contains("note [user-site] 3 distributions installed with `pip install --user`"),
        "{doctor}"
    );
    // The tier already has gamma 1.0: only the user site's copy goes.
    t.install(&["gamma==1.0"]);
    let ids_before = t.history_ids();

    let wheels = t.wheels();
    let wheels = wheels.to_str().unwrap();
    let plan = t.pyctl_ok(&["migrate", "--dry-run", "--find-links", wheels]);
    let plan_lines = lines(&plan);
    assert!(plan_lines[0].starts_with("remove  gamma==1.0"), "{plan}");
    assert!(plan_lines[1].starts_with("move    migtool==1.0"), "{plan}");
    assert!(plan_lines[2].starts_with("move    orphan==1.0"), "{plan}");
    assert_eq!(t.history_ids(), ids_before, "a dry run recorded something");
    assert!(site.join("migtool-1.0.dist-info").is_dir());

    let out = t.pyctl(&["migrate", "--find-links", wheels]);
    // orphan could not be moved: said, and exit 1.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("removed gamma==1.0"), "{stdout}");
    assert!(
        stdout.contains("moved   migtool==1.0  into the tier"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "kept    orphan==1.0   in the user site: pip could not install orphan==1.0 in the \
             tier (from the index or {wheels})"
        )),
        "{stdout}"
    );
    let freeze = t.pip_freeze();
    assert!(freeze.contains(&"migtool==1.0".to_string()), "{freeze:?}");
    assert!(freeze.contains(&"gamma==1.0".to_string()), "{freeze:?}");
    assert!(
        !freeze.iter().any(|l| l.starts_with("orphan")),
        "{freeze:?}"
    );
    assert!(t.venv().join("bin/migtool").exists());
    // Gone from the user site (module, metadata, script); orphan stays whole.
    assert_eq!(
        names_in(&site)
            .into_iter()
            .filter(|n| !n.starts_with("__"))
            .collect::<Vec<_>>(),
        vec!["orphan", "orphan-1.0.dist-info"]
    );
    assert!(!local_bin.join("migtool").exists());

    // One history entry of kind migrate, with what it added.
    let history: serde_json::Value =
        serde_json::from_str(&t.pyctl_ok(&["--json", "history", "-n", "1"])).unwrap();
    assert_eq!(history[0]["kind"], "migrate");
    assert_eq!(
        history[0]["command"],
        format!("pyctl migrate --find-links {wheels}")
    );
    assert_eq!(
        history[0]["changes"]["added"],
        serde_json::json!(["migtool==1.0"])
    );
    // The user site's files were moved, not deleted: into the entry's backup folder in the tier.
    let id = history[0]["id"].as_u64().unwrap();
    let backup = t.root().join(format!("migrated/{id}"));
    assert!(backup.join("manifest.json").is_file());
    assert!(backup
        .join("files")
        .join(local_bin.join("migtool").strip_prefix("/").unwrap())
        .exists());

    // undo takes it out of the tier again; gamma, installed before, stays; and the user site
    // gets its files back.
    let out = t.pyctl(&["undo"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "put back into the user site what migrate #{id} moved out: gamma==1.0, migtool==1.0"
        )),
        "{}",
        text(&out)
    );
    let freeze = t.pip_freeze();
    assert!(
        !freeze.iter().any(|l| l.starts_with("migtool")),
        "{freeze:?}"
    );
    assert!(freeze.contains(&"gamma==1.0".to_string()), "{freeze:?}");
    assert!(!t.venv().join("bin/migtool").exists());
    let back: Vec<String> = names_in(&site)
        .into_iter()
        .filter(|n| !n.starts_with("__"))
        .collect();
    for name in [
        "gamma",
        "gamma-1.0.dist-info",
        "migtool",
        "migtool-1.0.dist-info",
        "orphan",
    ] {
        assert!(
            back.contains(&name.to_string()),
            "{name} not back: {back:?}"
        );
    }
    assert!(local_bin.join("migtool").exists());
    let imported = t
        .command(Path::new("/usr/bin/python3"))
        .args(["-c", "import gamma, migtool; print(migtool.__file__)"])
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", text(&imported));
    assert!(
        String::from_utf8_lossy(&imported.stdout).contains(".local/lib/python"),
        "{}",
        text(&imported)
    );
    assert!(!backup.exists(), "the backup folder is still there");
    // All three are in the user site again.
    let doctor = text(&t.pyctl(&["doctor"]));
    assert!(doctor.contains("3 distributions installed"), "{doctor}");

    // redo puts migtool back in the tier (from the store); the user-site copies stay, said.
    let out = t.pyctl(&["redo"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("migrate #{id}'s packages are in the tier again")),
        "{}",
        text(&out)
    );
    assert!(t.pip_freeze().contains(&"migtool==1.0".to_string()));
    assert!(site.join("migtool-1.0.dist-info").is_dir());
}

#[test]
fn undo_of_migrate_never_overwrites_a_file_that_came_back() {
    let t = Tier::bare();
    pip_install_user(&t, &t.wheels(), &["gamma"]);
    let site = user_site(&t);
    t.pyctl_ok(&["init", "--no-modify-path"]);
    let wheels = t.wheels();
    t.pyctl_ok(&["migrate", "--find-links", wheels.to_str().unwrap()]);
    let history: serde_json::Value =
        serde_json::from_str(&t.pyctl_ok(&["--json", "history", "-n", "1"])).unwrap();
    let id = history[0]["id"].as_u64().unwrap();
    let backup = t.root().join(format!("migrated/{id}"));
    assert!(!site.join("gamma").exists());
    // Something new at one of the places before the undo: it stays, the migrated copy is kept.
    let init = site.join("gamma/__init__.py");
    std::fs::create_dir_all(init.parent().unwrap()).unwrap();
    t.give_away(&site);
    t.write(&init, "mine = True\n");
    let out = t.pyctl(&["undo"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("{} exists; not overwritten", init.display())),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&init).unwrap(), "mine = True\n");
    assert!(site.join("gamma-1.0.dist-info/METADATA").is_file());
    let kept = backup.join("files").join(init.strip_prefix("/").unwrap());
    assert!(kept.is_file(), "{said}");
    assert!(backup.join("manifest.json").is_file());
}

#[test]
fn migrate_with_an_empty_user_site_or_a_bad_folder() {
    let t = Tier::new();
    let ids = t.history_ids();
    let out = t.pyctl(&["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to migrate"), "{}", text(&out));
    assert_eq!(t.history_ids(), ids);
    let err = t.pyctl_err(&["migrate", "--find-links", "/nonexistent-wheels"]);
    assert!(
        err.contains("--find-links /nonexistent-wheels: not a folder"),
        "{err}"
    );
}
