//! The oracle for every parser pyctl runs on input it did not write: each function takes one
//! input, runs it through the library the way pyctl does, and panics if the result breaks what
//! must hold whatever the input. The cargo-fuzz targets (fuzz/fuzz_targets/) call these, and so
//! does tests/reliability/main.rs (`#[path]`), which runs its seeded mutations and the committed
//! fuzz corpus through them on every `cargo test`. Functions that need files are given the
//! folder to write them in.

use pyctl::python::inventory::{canonical_name, PackageSet};
use pyctl::tier::history::{self, Half};
use pyctl::tier::store::Store;
use std::path::Path;

/// Four whole history records, entries 1 to 4 (also seeds: with their id set to 5 they are what
/// the fuzzed fifth entry mutates from).
pub const HISTORY: &[&[u8]] = &[
    br#"{"schema": 1, "id": 1, "kind": "init", "timestamp": "2026-01-01T00:00:00Z", "user": "a", "uid": 1000, "command": "pyctl init", "pip_args": [], "python": "3.11.2", "venv": "/v", "freeze": "pip==23.0.1\n"}"#,
    br#"{"schema": 1, "id": 2, "kind": "pip", "timestamp": "2026-01-01T00:00:01Z", "user": "a", "uid": 1000, "command": "pip install alpha", "pip_args": ["install", "alpha"], "python": "3.11.2", "venv": "/v", "freeze": "alpha==1.0\npip==23.0.1\n", "changes": {"added": ["alpha==1.0"], "removed": [], "modified": []}, "exit_code": 0}"#,
    br#"{"schema": 1, "id": 3, "kind": "undo", "timestamp": "2026-01-01T00:00:02Z", "user": "a", "uid": 1000, "command": "pyctl undo", "pip_args": [], "reverts": [2], "reapplies": [], "python": "3.11.2", "venv": "/v", "freeze": "pip==23.0.1\n", "target": "pip==23.0.1\n"}"#,
    br#"{"schema": 1, "id": 4, "kind": "redo", "timestamp": "2026-01-01T00:00:03Z", "user": "a", "uid": 1000, "command": "pyctl redo", "pip_args": [], "reverts": [3], "python": "3.11.2", "venv": "/v", "freeze": "-e /nonexistent/p\n", "changes": {"added": [], "removed": [], "modified": [{"name": "a", "from": "a==1", "to": "a==2"}]}, "exit_code": 1}"#,
];

const ALPHA_METADATA: &[u8] = b"Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n";

fn put(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("a folder for the input");
    }
    std::fs::write(path, bytes).expect("writing the input");
}

fn scan_and_freeze(site: &Path) -> PackageSet {
    let set = PackageSet::scan_site(site).expect("the scan reads a folder it can list");
    for (key, dist) in &set.dists {
        assert!(!dist.name.is_empty());
        assert_eq!(key, &canonical_name(&dist.name));
        for line in dist.freeze_lines() {
            assert!(!line.is_empty());
        }
    }
    let _ = set.freeze();
    let _ = set.requirement_map();
    set
}

/// METADATA (dist-info) and PKG-INFO (egg-info), through the site-packages scan and freeze.
pub fn metadata(site: &Path, input: &[u8]) {
    put(&site.join("alpha-1.0.dist-info/METADATA"), input);
    put(&site.join("legacy-1.0.egg-info/PKG-INFO"), input);
    assert!(scan_and_freeze(site).len() <= 2);
}

/// direct_url.json (PEP 610) beside a good METADATA: it never hides the distribution.
pub fn direct_url(site: &Path, input: &[u8]) {
    put(&site.join("alpha-1.0.dist-info/METADATA"), ALPHA_METADATA);
    put(&site.join("alpha-1.0.dist-info/direct_url.json"), input);
    let set = scan_and_freeze(site);
    let alpha = set
        .get("alpha")
        .expect("a bad direct_url.json hid the distribution");
    assert!(!alpha.freeze_lines().is_empty());
}

/// RECORD: no more rows than lines, no row without a path.
pub fn record(input: &[u8]) {
    if let Ok(rows) = pyctl::python::record::parse_record(input) {
        let lines = input.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
        assert!(rows.len() <= lines);
        assert!(rows.iter().all(|r| !r.path.is_empty()));
    }
}

/// History: `input` is entry 5's before (even length) or after (odd), beside four whole entries,
/// read by the log reader, the index, the undo state and the last-known-freeze lookup. Returns
/// whether the log read it as whole (true) or reported it (false); a bad file never hides a good
/// one, and every problem names a file in the folder.
pub fn history(dir: &Path, input: &[u8]) -> bool {
    // The four whole entries are written once per folder (nothing here writes to them); only
    // entry 5's files change from one input to the next.
    if !dir.join(history::file_name(4, Half::After)).exists() {
        for (i, text) in HISTORY.iter().enumerate() {
            for half in [Half::Before, Half::After] {
                put(&dir.join(history::file_name(i as u64 + 1, half)), text);
            }
        }
    }
    for half in [Half::Before, Half::After] {
        let _ = std::fs::remove_file(dir.join(history::file_name(5, half)));
    }
    let half = if input.len() % 2 == 0 {
        Half::Before
    } else {
        Half::After
    };
    put(&dir.join(history::file_name(5, half)), input);

    let log = history::read_log(dir).expect("the log reader reads a folder it can list");
    assert!(log.entries.len() >= 4, "a bad file hid a good one");
    assert!(log.entries.len() <= 5);
    assert!(log.entries.windows(2).all(|w| w[0].id < w[1].id));
    for p in &log.problems {
        assert!(p.path.starts_with(dir), "{p}");
    }
    let _ = pyctl::ops::undo::undo_state(&log);
    let _ = log.last_known_freeze();
    let idx = history::index(dir).expect("the index reads a folder it can list");
    assert_eq!(idx.max_id, 5);
    let _ = history::last_known_freeze(dir, &idx, |_| {});
    log.problems.is_empty()
}

/// A snapshot file (freeze text): the freeze map, and the engine's plan from `current`.
pub fn snapshot(store: &Store, current: &PackageSet, input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let map = pyctl::python::freeze::freeze_map(&text);
    assert!(map.len() <= text.lines().count());
    let plan = pyctl::ops::engine::plan(
        store,
        Path::new("/nonexistent-venv"),
        current,
        (&text, &std::collections::BTreeMap::new()),
        "3.11",
    );
    assert!(plan.add.len() + plan.change.len() <= map.len());
    let _ = plan.summary();
}

/// A tier's config.toml on top of the system file at `system`: a configuration (true), or an
/// error naming the tier's file (false).
pub fn config(system: &Path, tier: &Path, input: &[u8]) -> bool {
    put(tier, input);
    match pyctl::tier::config::Config::load_from(system, Some(tier)) {
        Ok(_) => true,
        Err(e) => {
            let said = format!("{e:#}");
            assert!(said.contains(&*tier.to_string_lossy()), "{said}");
            false
        }
    }
}

/// A store entry's entry.json (in `store_dir`'s one entry folder, whose files are missing):
/// listing, lookup and verification, which says the files are missing rather than panic.
pub fn store_entry(store_dir: &Path, input: &[u8]) {
    let entry = store_dir.join("alpha-1.0-0123456789abcdef");
    std::fs::create_dir_all(entry.join("files")).expect("a store entry folder");
    put(&entry.join("entry.json"), input);
    let store = Store::new(store_dir.to_path_buf(), Default::default());
    for (dir, entry) in store.entries() {
        assert!(Store::verify(&dir, &entry).is_err() || entry.files.is_empty());
    }
    let _ = store.find("alpha", "alpha==1.0");
}

/// pyvenv.cfg: a version, if any, has a minor version, and the shims it names stay in bin/.
pub fn pyvenv_cfg(venv: &Path, input: &[u8]) {
    put(&venv.join("pyvenv.cfg"), input);
    if let Some(v) = pyctl::python::pyvenv::PyvenvCfg::read(venv).and_then(|c| c.version()) {
        let minor = pyctl::tier::minor_version(&v);
        assert_eq!(minor.split('.').count(), 2, "{v:?} → {minor:?}");
        for name in pyctl::tier::shims::shim_names(&v) {
            assert!(
                name.starts_with("pip") && !name.contains('/') && !name.contains(".."),
                "{name:?}"
            );
        }
    }
}

/// apt's DPkg::Pre-Install-Pkgs input (protocol 1 to 3): the hook only reads .deb paths apt gave.
pub fn apt_hook(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let actions = pyctl::commands::hooks::parse_apt_input(&text);
    assert!(actions.len() <= text.lines().count());
    for a in &actions {
        if let Some(deb) = &a.deb {
            assert!(text.contains(deb.as_str()), "{deb:?} is not in the input");
        }
    }
}

/// `rpm -ql` (dnf), `pacman -Ql` and `dpkg-deb --contents` listings, down to the distributions
/// they ship and their conflicts with `set`.
pub fn hook_listings(set: &PackageSet, input: &[u8]) {
    use pyctl::commands::conflicts::{dists_in_paths, parse_dpkg_contents, version_conflicts};
    let text = String::from_utf8_lossy(input);
    let rpm = dists_in_paths(text.lines(), Some("pkg"));
    let pacman = pyctl::commands::hooks::parse_pacman_files(&text);
    let from_pacman = dists_in_paths(pacman.iter().map(|(_, f)| f.as_str()), Some("pkg"));
    let deb = parse_dpkg_contents(&text);
    let from_deb = dists_in_paths(deb.iter().map(String::as_str), Some("pkg"));
    for d in rpm.iter().chain(&from_pacman).chain(&from_deb) {
        assert!(!d.name.is_empty() && !d.version.is_empty(), "{d:?}");
        assert_eq!(d.canonical, canonical_name(&d.name));
    }
    let _ = version_conflicts(&rpm, "system", set);
}

/// A small installed set for the snapshot and listing checks: alpha 1.0 in `site`.
pub fn small_set(site: &Path) -> PackageSet {
    put(&site.join("alpha-1.0.dist-info/METADATA"), ALPHA_METADATA);
    PackageSet::scan_site(site).expect("a site-packages folder to scan")
}

/// Credentials in URLs (`pyctl::sys::redact`): after masking, no URL in the text shows a password or
/// a bare user name, masking twice changes nothing, and a secret planted in a URL inside the
/// fuzzed text is gone. The first line of the input is the secret, the rest the text around it.
pub fn redact(input: &[u8]) {
    use pyctl::sys::redact::{redact, shows_credentials};
    let text = String::from_utf8_lossy(input);
    let once = redact(&text);
    assert!(!shows_credentials(&once), "credentials left in {once:?}");
    assert_eq!(redact(&once), once, "masking is not idempotent");
    let (secret, around) = text.split_once('\n').unwrap_or((&text, ""));
    let secret: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && !"/?#@:'\"".contains(*c))
        .collect();
    if secret.is_empty() || secret == "****" {
        return;
    }
    // White space ends every authority, so the text around the planted URL is masked on its
    // own and the URL in between must come out masked whatever surrounds it.
    let planted = format!("{around} -i https://u:{secret}@h/simple {around}");
    let around_masked = redact(around);
    let want = format!("{around_masked} -i https://u:****@h/simple {around_masked}");
    assert_eq!(redact(&planted), want, "the planted secret was not masked");
}
