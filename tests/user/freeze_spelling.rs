//! `pyctl freeze` against the tier's own `pip freeze --all` for distributions whose `.dist-info`
//! folder name and METADATA spell the project differently (`zope_interface-1.0.dist-info`
//! holding `Name: zope.interface`), as current build backends write them: each pip spells such
//! a name (and version) its own way, and pyctl must print what that pip prints (issue 18).
//! What pyctl records keeps one spelling, and lines in another one still match.
//!
//! Offline, with the machine's pip and both of its metadata backends; one test installs real
//! older and newer pips from PyPI and is ignored unless asked for.

use crate::common;

use std::path::Path;

use common::{ok, stdout_lines, text, wheel_spelled, Tier, PYCTL};

/// The requirements that install every spelled wheel.
const SPELLED: [&str; 6] = [
    "zope.interface",
    "typing_extensions",
    "foo-bar",
    "ruamel.yaml",
    "jaraco.functools",
    "vmis",
];

/// Folder and METADATA spellings that differ in `_`, `-`, `.`, case and (vmis) the version text.
fn spelled_wheels(t: &Tier) {
    let dir = t.wheels();
    wheel_spelled(&dir, "zope_interface", "1.0", "zope.interface", "1.0");
    wheel_spelled(
        &dir,
        "typing_extensions",
        "4.16.0",
        "typing_extensions",
        "4.16.0",
    );
    wheel_spelled(&dir, "Foo_Bar", "2.0", "foo-bar", "2.0");
    wheel_spelled(&dir, "ruamel.yaml", "0.18.6", "ruamel.yaml", "0.18.6");
    wheel_spelled(
        &dir,
        "jaraco_functools",
        "4.0.1",
        "Jaraco.Functools",
        "4.0.1",
    );
    wheel_spelled(&dir, "vmis", "1.0.0", "vmis", "1.0");
    t.give_away(&dir);
}

/// (`pyctl freeze`, the venv's `python -m pip freeze --all`), both with `env` added.
fn both_freezes(t: &Tier, env: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    let ours = t
        .command(Path::new(PYCTL))
        .envs(env.iter().copied())
        .args(["-q", "freeze"])
        .output()
        .unwrap();
    let pips = t
        .command(&t.venv().join("bin/python"))
        .envs(env.iter().copied())
        .args(["-m", "pip", "freeze", "--all"])
        .output()
        .unwrap();
    (
        stdout_lines(&ok("pyctl freeze", ours)),
        stdout_lines(&ok("pip freeze --all", pips)),
    )
}

fn recorded_changes(t: &Tier, id: u64) -> serde_json::Value {
    let (_, _, after) = t
        .history()
        .into_iter()
        .find(|(i, _, _)| *i == id)
        .unwrap_or_else(|| panic!("no entry {id}"));
    after.expect("a finished entry")["changes"].clone()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn folder_and_metadata_spellings_freeze_as_the_tiers_pip_on_both_backends() {
    let t = Tier::new();
    spelled_wheels(&t);
    t.install(&SPELLED);
    // The default backend of this pip (Tier::set asserts pyctl == pip).
    let set = t.set();
    for name in ["ruamel.yaml==0.18.6", "foo-bar==2.0"] {
        assert!(set.contains(&name.to_string()), "{name}: {set:?}");
    }
    // pip's pkg_resources backend, chosen by the variable pip itself reads: versions come
    // from the folder name.
    let (ours, pips) = both_freezes(&t, &[("_PIP_USE_IMPORTLIB_METADATA", "0")]);
    assert_eq!(ours, pips, "pkg_resources backend");
    assert!(ours.contains(&"vmis==1.0.0".to_string()), "{ours:?}");
    assert!(
        ours.contains(&"zope.interface==1.0".to_string()),
        "{ours:?}"
    );
    let (ours, pips) = both_freezes(&t, &[("_PIP_USE_IMPORTLIB_METADATA", "1")]);
    assert_eq!(ours, pips, "importlib.metadata backend");
}

/// What the tier's pip would print never reaches what pyctl records: an operation run while
/// pip reads another spelling records METADATA's, and only what it changed.
#[test]
fn the_spelling_pip_prints_changes_no_recorded_state() {
    let t = Tier::new();
    spelled_wheels(&t);
    t.install(&SPELLED);
    let recorded_before = t.pyctl_ok(&["-q", "export"]);
    let legacy = [("_PIP_USE_IMPORTLIB_METADATA", "0")];
    let wheels = t.wheels();
    let args = t.install_args(wheels.to_str().unwrap(), &["alpha==1.0"]);
    let out = t
        .command(&t.path().join("bin/pip"))
        .envs(legacy)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let changes = recorded_changes(&t, t.last_id());
    assert_eq!(strings(&changes["added"]), ["alpha==1.0"], "{changes}");
    assert!(strings(&changes["removed"]).is_empty(), "{changes}");
    assert!(strings(&changes["modified"]).is_empty(), "{changes}");
    let (_, _, after) = t.history().pop().unwrap();
    let freeze = after.unwrap()["freeze"].as_str().unwrap().to_string();
    assert!(freeze.contains("vmis==1.0\n"), "{freeze}");
    assert!(freeze.contains("zope.interface==1.0\n"), "{freeze}");
    let status = t
        .command(Path::new(PYCTL))
        .envs(legacy)
        .arg("status")
        .output()
        .unwrap();
    let status = ok("pyctl status", status);
    assert!(!status.contains("outside pyctl"), "{status}");
    let recorded_after = t.pyctl_ok(&["-q", "export"]);
    let mut expected: Vec<&str> = recorded_before.lines().collect();
    expected.push("alpha==1.0");
    expected.sort_by_key(|l| l.to_lowercase());
    assert_eq!(recorded_after.lines().collect::<Vec<_>>(), expected);
}

/// A snapshot written in pip 20.3's spelling (`pip freeze` on Debian 11) names the same
/// distributions: restoring it is a no-op, and what is missing comes back from the store.
#[test]
fn snapshots_in_another_spelling_match_by_canonical_name() {
    let t = Tier::new();
    spelled_wheels(&t);
    t.install(&SPELLED);
    let mut legacy: Vec<String> = t
        .base
        .iter()
        .cloned()
        .chain(
            [
                "Foo-Bar==2.0",
                "jaraco-functools==4.0.1",
                "ruamel.yaml==0.18.6",
                "typing-extensions==4.16.0",
                "vmis==1.0.0",
                "zope-interface==1.0",
            ]
            .map(String::from),
        )
        .collect();
    legacy.sort_by_key(|l| l.to_lowercase());
    // vmis is 1.0 by METADATA, 1.0.0 by its folder: another version text is another
    // requirement line, so the snapshot says 1.0 for it as pyctl recorded it.
    for l in legacy.iter_mut().filter(|l| l.starts_with("vmis")) {
        *l = "vmis==1.0".to_string();
    }
    let snapshot = t.root().join("snapshots/pip203.txt");
    std::fs::write(&snapshot, legacy.join("\n") + "\n").unwrap();
    t.give_away(&snapshot);
    let out = t.pyctl_ok(&["restore", "pip203"]);
    assert!(out.contains("nothing to do"), "{out}");
    let out = t.pip(&[
        "uninstall",
        "-y",
        "zope.interface",
        "foo-bar",
        "typing_extensions",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The wheels are gone: only the store can give them back.
    t.hide_wheels();
    let out = t.pyctl_ok(&["restore", "pip203", "--dry-run"]);
    assert!(!out.contains("(pip:"), "pip was needed:\n{out}");
    let out = t.pyctl_ok(&["restore", "pip203"]);
    assert!(!out.contains("(pip:"), "pip was needed:\n{out}");
    let set = t.set();
    for name in [
        "zope.interface==1.0",
        "foo-bar==2.0",
        "typing_extensions==4.16.0",
    ] {
        assert!(set.contains(&name.to_string()), "{name}: {set:?}");
    }
}

/// Real pips from PyPI: 20.3.4 (Debian 11's, pkg_resources, names from the folder) and 25.3
/// (importlib.metadata, versions from the folder), each installed into the tier through the
/// wrapper, as a user upgrading (or downgrading) pip does.
#[test]
#[ignore = "needs PyPI"]
fn real_pips_from_pypi_freeze_as_pyctl_does_and_record_only_pip() {
    let t = Tier::new();
    spelled_wheels(&t);
    t.install(&SPELLED);
    let base_pip = t
        .base
        .iter()
        .find(|l| l.starts_with("pip=="))
        .unwrap()
        .clone();
    for (pip, expect) in [
        (
            "20.3.4",
            &[
                "Foo-Bar==2.0",
                "jaraco-functools==4.0.1",
                "typing-extensions==4.16.0",
                "vmis==1.0.0",
                "zope-interface==1.0",
            ][..],
        ),
        (
            "25.3",
            &[
                "foo-bar==2.0",
                "Jaraco.Functools==4.0.1",
                "typing_extensions==4.16.0",
                "vmis==1.0.0",
                "zope.interface==1.0",
            ][..],
        ),
    ] {
        let mut cmd = t.command(&t.path().join("bin/pip"));
        // A pip from PyPI trusts its own certifi bundle, not the system's (which may hold a
        // proxy's CA): point it at the system's, as Debian's own pip does.
        let system_cas = Path::new("/etc/ssl/certs/ca-certificates.crt");
        if system_cas.is_file() {
            cmd.env("PIP_CERT", system_cas);
        }
        let out = cmd
            .env("PIP_INDEX_URL", "https://pypi.org/simple")
            .env("PIP_TIMEOUT", "60")
            .env("PIP_RETRIES", "3")
            .args(["install", &format!("pip=={pip}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "pip {pip}: {}", text(&out));
        let set = t.set();
        for line in expect {
            assert!(
                set.contains(&line.to_string()),
                "pip {pip}: {line}: {set:?}"
            );
        }
        let changes = recorded_changes(&t, t.last_id());
        assert!(strings(&changes["added"]).is_empty(), "{changes}");
        assert!(strings(&changes["removed"]).is_empty(), "{changes}");
        let modified = changes["modified"].as_array().unwrap();
        assert_eq!(modified.len(), 1, "only pip changes: {changes}");
        assert_eq!(modified[0]["name"], "pip", "{changes}");
        assert_eq!(modified[0]["to"], format!("pip=={pip}"), "{changes}");
        let status = t.pyctl_ok(&["status"]);
        assert!(!status.contains("outside pyctl"), "{status}");
    }
    // Back to the first pip, from the store, and the set as it was recorded.
    t.pyctl_ok(&["undo", "2"]);
    let set = t.set();
    assert!(set.contains(&base_pip), "{set:?}");
    assert!(set.contains(&"zope.interface==1.0".to_string()), "{set:?}");
}
