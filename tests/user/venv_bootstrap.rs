//! A new tier's venv gets pip without ensurepip (issue 15): `python -m venv --without-pip`, then
//! the wheels ensurepip would install unpacked by pyctl. The result is held against a venv made
//! by `python -m venv` at the same path, file by file (bytecode aside: ensurepip compiles it,
//! pyctl leaves it to Python's first import), and against what pip says of it. A Python whose
//! wheels cannot be found falls back to ensurepip.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{ok, text, Tier, PYCTL};

/// Every file, folder and link under `dir` but bytecode: path → (mode, content or link
/// target). RECORD files lose their `.pyc` rows.
fn tree(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        if rel.contains("__pycache__") || rel.ends_with(".pyc") {
            continue;
        }
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        let content = if meta.file_type().is_symlink() {
            std::fs::read_link(e.path())
                .unwrap()
                .display()
                .to_string()
                .into_bytes()
        } else if meta.is_file() {
            let bytes = std::fs::read(e.path()).unwrap();
            if rel.ends_with(".dist-info/RECORD") {
                String::from_utf8(bytes)
                    .unwrap()
                    .split_inclusive('\n')
                    .filter(|row| !row.contains(".pyc,"))
                    .collect::<String>()
                    .into_bytes()
            } else {
                bytes
            }
        } else {
            Vec::new()
        };
        out.insert(rel, (meta.permissions().mode(), content));
    }
    out
}

fn pip_record(venv: &Path) -> String {
    let site = common::site_packages_in(venv);
    let dist_info = std::fs::read_dir(&site)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("pip-") && n.ends_with(".dist-info")
        })
        .expect("pip's dist-info");
    std::fs::read_to_string(dist_info.join("RECORD")).unwrap()
}

fn pip_version(t: &Tier, venv: &Path) -> String {
    ok(
        "pip --version",
        t.command(&venv.join("bin/python"))
            .args(["-m", "pip", "--version"])
            .output()
            .unwrap(),
    )
}

#[test]
fn a_new_tier_has_the_venv_python_m_venv_makes_file_by_file() {
    if !pyctl::tier::NATIVE_PIP_PLACEMENT {
        // New tiers run ensurepip (see NATIVE_PIP_PLACEMENT): the other test covers that.
        eprintln!("skipped: native pip placement is off");
        return;
    }
    let t = Tier::new();
    let venv = t.venv();
    // Placed by pyctl: no bytecode rows (ensurepip's pip compiles and lists every module).
    let record = pip_record(&venv);
    assert!(!record.contains(".pyc,"), "ensurepip ran:\n{record}");
    assert!(
        record.contains("\r\n"),
        "RECORD lines end in \\r\\n as pip writes them"
    );
    let native = tree(&venv);
    let native_version = pip_version(&t, &venv);
    let native_freeze = t.pyctl_ok(&["-q", "freeze"]);

    // The same path, made by `python -m venv` (ensurepip).
    let aside = t.path().join("venv.native");
    std::fs::rename(&venv, &aside).unwrap();
    let out = t
        .command(Path::new("/usr/bin/python3"))
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    ok("python -m venv", out);
    assert!(pip_record(&venv).contains(".pyc,"), "ensurepip compiles");
    let reference = tree(&venv);
    assert_eq!(pip_version(&t, &venv), native_version);
    let out = t
        .command(Path::new(PYCTL))
        .args(["-q", "freeze", "--path"])
        .arg(&venv)
        .output()
        .unwrap();
    assert_eq!(ok("pyctl freeze --path", out), native_freeze);

    // bin/pip, pip3, pip3.X are pyctl's shims in the tier; pip's scripts in the reference.
    // Their content as pip wrote it is in RECORD, which must be the same.
    let shims: Vec<String> = native
        .iter()
        .filter(|(p, (_, c))| p.starts_with("bin/pip") && c.starts_with(b"#!/bin/sh\n# pyctl shim"))
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(shims.len(), 3, "{shims:?}");
    let mut differences = std::collections::BTreeSet::new();
    for path in native.keys().chain(reference.keys()) {
        if shims.contains(path) {
            continue;
        }
        let difference = match (native.get(path), reference.get(path)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some((ma, ca)), Some((mb, cb))) => format!(
                "{path}: mode {ma:o} vs {mb:o}, {} vs {} bytes{}",
                ca.len(),
                cb.len(),
                if ca == cb { "" } else { ", content differs" }
            ),
            (Some(_), None) => format!("{path}: only in pyctl's"),
            (None, Some(_)) => format!("{path}: only in ensurepip's"),
            (None, None) => unreachable!(),
        };
        differences.insert(difference);
    }
    let differences: Vec<String> = differences.into_iter().collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // Back to pyctl's venv: pip installs into it and pyctl records it.
    std::fs::remove_dir_all(&venv).unwrap();
    std::fs::rename(&aside, &venv).unwrap();
    t.install(&["beta"]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    assert!(t.pip_check_passes());
}

/// An interpreter reached through a link in a folder of its own has no wheels beside it
/// (`home/../lib/pythonX.Y`): ensurepip runs, and the tier is as good.
#[test]
fn without_wheels_beside_the_interpreter_ensurepip_makes_the_venv() {
    let t = Tier::bare();
    let bin = t.path().join("linked-python/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", bin.join("python3")).unwrap();
    t.give_away(&t.path().join("linked-python"));
    let out = t
        .command(Path::new(PYCTL))
        .env("PYCTL_PYTHON", bin.join("python3"))
        .args(["init", "--no-modify-path"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let cfg = std::fs::read_to_string(t.venv().join("pyvenv.cfg")).unwrap();
    assert!(cfg.contains(&format!("home = {}", bin.display())), "{cfg}");
    assert!(
        pip_record(&t.venv()).contains(".pyc,"),
        "ensurepip did not run"
    );
    assert!(pip_version(&t, &t.venv()).starts_with("pip "));
    let set = t.set();
    assert!(set.iter().any(|l| l.starts_with("pip==")), "{set:?}");
}
