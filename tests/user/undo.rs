//! Undo, redo, snapshots, clean and gc (issue 3) with the real binary, real venvs and the real
//! pip, offline: wheels the tests build, an index URL nobody answers, and the wheel folder moved
//! away before each undo/redo so that only the store can serve them.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{file_list, freeze_of, ok, simple_wheel, text, wheel, with_base, Tier};

/// What only the undo tests need.
impl Tier {
    /// Asserts that an undo/redo/restore only used the store.
    fn assert_from_store(&self, output: &str) {
        assert!(
            !output.contains("(pip:") && !output.contains("falling back to pip"),
            "pip was needed:\n{output}"
        );
    }
}

#[test]
fn undo_of_an_install_and_redo_offline() {
    let t = Tier::new();
    t.install(&["beta"]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    assert!(t.pip_check_passes());
    t.hide_wheels();
    let out = t.pyctl_ok(&["undo"]);
    t.assert_from_store(&out);
    t.assert_set(&[]);
    assert!(t.pip_check_passes());
    assert!(!t.site_packages().join("alpha").exists());
    assert!(!t.site_packages().join("beta").exists());
    let out = t.pyctl_ok(&["redo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    assert!(t.pip_check_passes());
    let out = ok(
        "import",
        t.command(&t.venv().join("bin/python"))
            .args(["-c", "import alpha, beta; print(alpha.V)"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.trim(), "2.0");
}

#[test]
fn undo_of_an_upgrade_and_of_a_downgrade_offline() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.install(&["alpha==2.0"]);
    t.assert_set(&["alpha==2.0"]);
    t.install(&["alpha==1.0"]);
    t.assert_set(&["alpha==1.0"]);
    t.hide_wheels();
    // Undo of the downgrade: back up to 2.0.
    let out = t.pyctl_ok(&["undo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==2.0"]);
    // Undo of the upgrade: back down to 1.0.
    let out = t.pyctl_ok(&["undo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0"]);
    let init = std::fs::read_to_string(t.site_packages().join("alpha/__init__.py")).unwrap();
    assert_eq!(init, "V = '1.0'\n");
    assert!(!t.site_packages().join("alpha-2.0.dist-info").exists());
    assert!(t.pip_check_passes());
}

#[test]
fn undo_of_an_uninstall_offline() {
    let t = Tier::new();
    t.install(&["beta"]);
    ok("pip uninstall", t.pip(&["uninstall", "-y", "beta"]));
    t.assert_set(&["alpha==2.0"]);
    t.hide_wheels();
    let out = t.pyctl_ok(&["undo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    assert!(t.pip_check_passes());
    // The restored files are exactly the ones pip installed, RECORD and all.
    let record =
        std::fs::read_to_string(t.site_packages().join("beta-1.0.dist-info/RECORD")).unwrap();
    assert!(record.contains("beta/__init__.py,sha256="), "{record}");
    assert!(t.site_packages().join("beta/__init__.py").is_file());
}

/// Issue 12: a failed operation that changed nothing is never an undo target; undo says it
/// passed over it and undoes the real one before it.
#[test]
fn undo_skips_a_failed_install_that_changed_nothing() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    // Nothing serves that project offline: pip fails, and the failure is still recorded.
    let wheels = t.wheels();
    let out = t.pip(&[
        "install",
        "--no-index",
        "--find-links",
        wheels.to_str().unwrap(),
        "no-such-project",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    t.assert_set(&["alpha==1.0"]);
    let (id, _, after) = t.history().pop().unwrap();
    let after = after.expect("the failed install is recorded");
    assert_eq!(after["exit_code"], 1, "{after}");
    t.hide_wheels();
    let out = t.pyctl_ok(&["undo"]);
    assert!(
        out.contains(&format!("skipping #{id}")) && out.contains("failed and changed nothing"),
        "undo did not say what it passed over:\n{out}"
    );
    t.assert_set(&[]);
    let (_, undo, _) = t.history().pop().unwrap();
    assert_eq!(undo["kind"], "undo");
    assert_eq!(undo["reverts"], serde_json::json!([id - 1]));
}

#[test]
fn undo_3_then_redo_offline() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.install(&["delta"]);
    ok("pip uninstall", t.pip(&["uninstall", "-y", "delta"]));
    t.install(&["beta", "alpha==2.0"]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    t.hide_wheels();
    // Back over the install, the uninstall and delta's install.
    let out = t.pyctl_ok(&["undo", "3"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0"]);
    assert!(t.pip_check_passes());
    let out = t.pyctl_ok(&["redo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    assert!(t.pip_check_passes());
    // Nothing left to redo; one more undo takes the latest install again.
    let err = t.pyctl_err(&["redo"]);
    assert!(err.contains("nothing to redo"), "{err}");
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==1.0"]);
    // Undo of an undo is refused as a step but redo brings it back.
    t.pyctl_ok(&["redo"]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    let err = t.pyctl_err(&["undo", "9"]);
    assert!(err.contains("can be undone"), "{err}");
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
}

#[test]
fn undo_to_an_entry_offline() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    let after_alpha = t.last_id();
    t.install(&["delta"]);
    let after_delta = t.last_id();
    ok(
        "pip uninstall",
        t.pip(&["uninstall", "-y", "delta", "alpha"]),
    );
    t.install(&["beta"]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    t.hide_wheels();
    let out = t.pyctl_ok(&["undo", "--to", &after_delta.to_string()]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0", "delta==1.0"]);
    assert!(t.pip_check_passes());
    let out = t.pyctl_ok(&["undo", "--to", &format!("#{after_alpha}")]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0"]);
    // Forward again to a later state.
    let latest_install = t
        .history()
        .into_iter()
        .filter(|(_, b, _)| b["command"].as_str().unwrap().contains("beta"))
        .map(|(id, _, _)| id)
        .next_back()
        .unwrap();
    t.pyctl_ok(&["undo", "--to", &latest_install.to_string()]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    let err = t.pyctl_err(&["undo", "--to", "999"]);
    assert!(err.contains("no entry #999"), "{err}");
}

/// A version can be in the store twice: installed as a dependency (no `REQUESTED`) and by
/// name (with it). Going back to a state takes the copy that state had, whichever was stored
/// last, and swaps one copy for the other at the same version: the whole tree is compared.
#[test]
fn undo_to_takes_the_stored_copy_the_state_had() {
    use common::tree::{differences, tree};
    let t = Tier::new();
    simple_wheel(&t.wheels(), "solo", "1.0", &[], "V = 1\n");
    simple_wheel(&t.wheels(), "solo", "2.0", &[], "V = 2\n");
    simple_wheel(&t.wheels(), "needy", "1.0", &["solo==2.0"], "import solo\n");
    t.install(&["needy"]);
    let as_dependency = (t.last_id(), tree(&t.venv()));
    ok("pip uninstall", t.pip(&["uninstall", "-y", "solo"]));
    // Stored a second later than the first copy (the store's time stamps are to the second).
    std::thread::sleep(Duration::from_millis(1100));
    t.install(&["solo==2.0"]);
    let by_name = (t.last_id(), tree(&t.venv()));
    let requested = |tree: &common::tree::Tree| {
        tree.keys()
            .any(|p| p.ends_with("solo-2.0.dist-info/REQUESTED"))
    };
    assert!(requested(&by_name.1) && !requested(&as_dependency.1));
    assert_eq!(
        t.store_entries()
            .iter()
            .filter(|e| e.starts_with("solo-2.0-"))
            .count(),
        2
    );
    let check = |(id, want): &(u64, common::tree::Tree), what: &str| {
        t.pyctl_ok(&["undo", "--to", &id.to_string()]);
        let diff = differences(want, &tree(&t.venv()));
        assert!(diff.is_empty(), "{what}: {diff:#?}");
    };
    check(&as_dependency, "the same version, the other copy");
    check(&by_name, "and back");
    t.install(&["solo==1.0"]);
    check(&as_dependency, "from another version, the older copy");
}

#[test]
fn clean_is_recorded_and_undone_offline() {
    let t = Tier::new();
    t.install(&["beta"]);
    t.hide_wheels();
    let out = t.pyctl_ok(&["clean"]);
    t.assert_from_store(&out);
    t.assert_set(&[]);
    assert!(!t.site_packages().join("alpha").exists());
    assert!(t.pip_check_passes());
    let (_, clean, _) = t.history().pop().unwrap();
    assert_eq!(clean["kind"], "clean");
    // The shims are back in the new venv.
    let shim = std::fs::read_to_string(t.venv().join("bin/pip")).unwrap();
    assert!(shim.starts_with("#!/bin/sh"), "{shim}");
    let out = t.pyctl_ok(&["undo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    assert!(t.pip_check_passes());
    // And a pip install through the new venv's shim is recorded as usual.
    t.show_wheels();
    let wheels = t.wheels();
    ok(
        "shim install",
        t.command(&t.venv().join("bin/pip"))
            .args(["install", "--no-index", "--find-links"])
            .arg(&wheels)
            .arg("delta")
            .arg("alpha==1.0")
            .output()
            .unwrap(),
    );
    t.assert_set(&["alpha==1.0", "beta==1.0", "delta==1.0"]);
}

#[test]
fn clean_keep_baseline_restores_the_baseline_snapshot() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["snapshot", "baseline", "--force"]);
    t.install(&["beta", "alpha==2.0"]);
    t.hide_wheels();
    let out = t.pyctl_ok(&["clean", "--keep-baseline"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0"]);
    assert!(t.pip_check_passes());
    let out = t.pyctl_ok(&["clean"]);
    t.assert_from_store(&out);
    t.assert_set(&[]);
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==1.0"]);
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
}

#[test]
fn snapshot_restores_into_a_cleaned_venv_offline() {
    let t = Tier::new();
    t.install(&["beta"]);
    t.pyctl_ok(&["snapshot", "stack"]);
    let file = std::fs::read_to_string(t.root().join("snapshots/stack.txt")).unwrap();
    let requirements: Vec<&str> = file.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        requirements,
        with_base(&t.base, &["alpha==2.0", "beta==1.0"])
    );
    t.pyctl_ok(&["clean"]);
    t.assert_set(&[]);
    t.hide_wheels();
    let out = t.pyctl_ok(&["restore", "stack"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    assert!(t.pip_check_passes());
    // Restoring the same set again is a no-op that says so and records nothing.
    let before = t.last_id();
    let out = t.pyctl_ok(&["restore", "stack"]);
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(t.last_id(), before);
    // An existing snapshot is not replaced without --force.
    let err = t.pyctl_err(&["snapshot", "stack"]);
    assert!(err.contains("--force"), "{err}");
    // The snapshot is a plain requirements file pip itself can install.
    t.show_wheels();
    t.pyctl_ok(&["clean"]);
    let wheels = t.wheels();
    let snap = t.root().join("snapshots/stack.txt");
    ok(
        "pip install -r snapshot",
        t.pip(&[
            "install",
            "--no-index",
            "--find-links",
            wheels.to_str().unwrap(),
            "-r",
            snap.to_str().unwrap(),
        ]),
    );
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
}

#[test]
fn list_and_delete_snapshots() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["snapshot", "one"]);
    t.install(&["beta", "alpha==2.0"]);
    t.pyctl_ok(&["snapshot", "two.v2_x-y"]);
    let out = t.pyctl_ok(&["--json", "list-snapshots"]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["baseline", "one", "two.v2_x-y"]);
    let counts: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["packages"].as_u64().unwrap())
        .collect();
    let n = t.base.len() as u64;
    assert_eq!(counts, [n, n + 1, n + 2]);
    let human = t.pyctl_ok(&["list-snapshots"]);
    assert!(human.contains("two.v2_x-y"), "{human}");
    t.pyctl_ok(&["delete-snapshot", "one"]);
    assert!(!t.root().join("snapshots/one.txt").exists());
    let out = t.pyctl_ok(&["--json", "list-snapshots"]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let err = t.pyctl_err(&["delete-snapshot", "one"]);
    assert!(err.contains("no snapshot named \"one\""), "{err}");
    // Deleting a snapshot changes nothing in the venv.
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
}

#[test]
fn restore_of_an_unknown_snapshot_lists_the_known_ones() {
    let t = Tier::new();
    t.pyctl_ok(&["snapshot", "mine"]);
    let before = t.last_id();
    let err = t.pyctl_err(&["restore", "nope"]);
    assert!(err.contains("no snapshot named \"nope\""), "{err}");
    assert!(
        err.contains("baseline") && err.contains("mine"),
        "the known snapshots are not listed: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(t.last_id(), before);
}

#[test]
fn invalid_snapshot_names_are_clear_errors() {
    let t = Tier::new();
    let long = "x".repeat(65);
    for bad in ["..", "a/b", long.as_str(), ".hidden", "a b", "../../escape"] {
        for cmd in ["snapshot", "restore", "delete-snapshot"] {
            let out = t.pyctl(&[cmd, bad]);
            let msg = text(&out);
            assert_eq!(out.status.code(), Some(1), "{cmd} {bad:?}: {msg}");
            assert!(
                msg.contains("invalid snapshot name"),
                "{cmd} {bad:?}: {msg}"
            );
            assert!(!msg.contains("panicked"), "{msg}");
        }
    }
    // Nothing was written outside snapshots/ (nor inside it).
    let names: Vec<String> = std::fs::read_dir(t.root().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["baseline.txt"]);
    assert!(!t.root().join("escape.txt").exists());
    // 64 characters is fine.
    let longest = "y".repeat(64);
    t.pyctl_ok(&["snapshot", &longest]);
    t.pyctl_ok(&["restore", &longest]);
}

#[test]
fn dry_run_changes_nothing() {
    let t = Tier::new();
    t.install(&["beta"]);
    t.pyctl_ok(&["snapshot", "full"]);
    t.pyctl_ok(&["undo"]);
    t.assert_set(&[]);
    let history_before = t.history().len();
    let venv_files = file_list(&t.venv());
    let out = t.pyctl_ok(&["redo", "--dry-run"]);
    assert!(
        out.contains("alpha==2.0") && out.contains("beta==1.0"),
        "{out}"
    );
    let out = t.pyctl_ok(&["restore", "full", "--dry-run"]);
    assert!(out.contains("add") && out.contains("beta==1.0"), "{out}");
    t.pyctl_ok(&["clean", "--dry-run"]);
    t.pyctl_ok(&["clean", "--keep-baseline", "--dry-run"]);
    let out = t.pyctl_ok(&["--json", "redo", "--dry-run"]);
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["dry_run"], true, "{plan}");
    t.assert_set(&[]);
    assert_eq!(t.history().len(), history_before);
    assert_eq!(file_list(&t.venv()), venv_files);
    t.pyctl_ok(&["redo"]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    // clean's plan is the change from the venv as it is: what goes away is listed.
    let out = t.pyctl_ok(&["clean", "--dry-run"]);
    assert!(
        out.contains("2 to remove")
            && out.contains("remove  alpha==2.0")
            && out.contains("remove  beta==1.0"),
        "{out}"
    );
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
}

/// The store folder of a distribution (`name-version-key`).
fn store_entry(t: &Tier, prefix: &str) -> PathBuf {
    let name = t
        .store_entries()
        .into_iter()
        .find(|n| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no store entry {prefix}*: {:?}", t.store_entries()));
    t.root().join("store").join(name)
}

#[test]
fn a_store_file_modified_in_place_is_caught_and_pip_restores_it() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["undo"]);
    t.assert_set(&[]);
    // Same size, other content: only the hash check can tell.
    let stored = store_entry(&t, "alpha-1.0-").join(format!(
        "files/{}/alpha/__init__.py",
        t.site_packages().strip_prefix(t.venv()).unwrap().display()
    ));
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "V = '1.0'\n");
    std::fs::write(&stored, "V = '6.6'\n").unwrap();
    let out = t.pyctl_ok(&["redo"]);
    assert!(
        out.contains("RECORD hash") && out.contains("falling back to pip"),
        "the damaged store entry was not reported:\n{out}"
    );
    t.assert_set(&["alpha==1.0"]);
    let installed = std::fs::read_to_string(t.site_packages().join("alpha/__init__.py")).unwrap();
    assert_eq!(installed, "V = '1.0'\n", "the damaged copy was installed");
    assert!(t.pip_check_passes());
    // pip's good copy replaces the damaged entry: later undo/redo work offline again.
    t.hide_wheels();
    t.pyctl_ok(&["undo"]);
    t.assert_set(&[]);
    let out = t.pyctl_ok(&["redo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0"]);
    let installed = std::fs::read_to_string(t.site_packages().join("alpha/__init__.py")).unwrap();
    assert_eq!(installed, "V = '1.0'\n");
}

#[test]
fn a_damaged_store_entry_with_no_wheel_left_is_named_as_not_restorable() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["undo"]);
    let stored = store_entry(&t, "alpha-1.0-").join(format!(
        "files/{}/alpha/__init__.py",
        t.site_packages().strip_prefix(t.venv()).unwrap().display()
    ));
    std::fs::write(&stored, "V = '6.6'\n").unwrap();
    t.hide_wheels();
    let out = t.pyctl(&["redo"]);
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains("could not restore alpha==1.0"),
        "the distribution that cannot be restored offline is not named:\n{msg}"
    );
    // Nothing half-made: alpha is simply not there, and the history says so.
    t.assert_set(&[]);
    let (_, _, after) = t.history().pop().unwrap();
    let after = after.unwrap();
    assert_eq!(after["exit_code"], 1, "{after}");
    assert!(!after["freeze"].as_str().unwrap().contains("alpha"));
}

/// A project with a tiny in-tree PEP 517/660 backend (no setuptools or wheel needed): its
/// editable wheel holds a `.pth` pointing at the project folder.
fn editable_project(dir: &Path) -> PathBuf {
    let proj = dir.join("gamma-src");
    std::fs::create_dir_all(proj.join("gamma")).unwrap();
    std::fs::write(proj.join("gamma/__init__.py"), "G = 'editable'\n").unwrap();
    std::fs::write(
        proj.join("pyproject.toml"),
        "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n\n\
         [project]\nname = \"gamma\"\nversion = \"0.1\"\n",
    )
    .unwrap();
    std::fs::write(proj.join("backend.py"), EDITABLE_BACKEND).unwrap();
    proj
}

const EDITABLE_BACKEND: &str = r#"
import base64, hashlib, os, zipfile

NAME, VERSION = "gamma", "0.1"
DIST_INFO = NAME + "-" + VERSION + ".dist-info"
ROOT = os.path.dirname(os.path.abspath(__file__))

def _hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()

def _wheel(directory, files):
    files = dict(files)
    files[DIST_INFO + "/METADATA"] = (
        "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (NAME, VERSION)).encode()
    files[DIST_INFO + "/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    record = "".join("%s,%s,%d\n" % (p, _hash(d), len(d)) for p, d in files.items())
    record += DIST_INFO + "/RECORD,,\n"
    name = NAME + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
        z.writestr(DIST_INFO + "/RECORD", record)
    return name

def get_requires_for_build_wheel(config_settings=None):
    return []

def get_requires_for_build_editable(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.path.join(ROOT, NAME, "__init__.py"), "rb") as f:
        return _wheel(wheel_directory, {NAME + "/__init__.py": f.read()})

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"__editable__." + NAME + ".pth": (ROOT + "\n").encode()})
"#;

#[test]
fn an_editable_install_is_undone_and_redone_offline() {
    let t = Tier::new();
    let proj = editable_project(t.path());
    t.give_away(&proj);
    let proj_str = proj.to_str().unwrap();
    ok(
        "pip install -e",
        t.pip(&[
            "install",
            "--no-index",
            "--no-build-isolation",
            "-e",
            proj_str,
        ]),
    );
    let editable_line = format!("-e {proj_str}");
    let with_gamma = {
        let mut v = with_base(&t.base, &[]);
        v.push("# Editable install with no version control (gamma==0.1)".into());
        v.push(editable_line.clone());
        v.sort_by_key(|l| {
            l.trim_start_matches("# Editable install with no version control (")
                .to_lowercase()
        });
        v
    };
    let set = t.set();
    assert!(set.contains(&editable_line), "{set:?}");
    let import = |t: &Tier| {
        t.command(&t.venv().join("bin/python"))
            .args(["-c", "import gamma; print(gamma.G)"])
            .output()
            .unwrap()
    };
    assert_eq!(ok("import gamma", import(&t)).trim(), "editable");
    let out = t.pyctl_ok(&["undo"]);
    t.assert_set(&[]);
    assert!(
        !import(&t).status.success(),
        "gamma still importable:\n{out}"
    );
    let out = t.pyctl_ok(&["redo"]);
    t.assert_from_store(&out);
    assert_eq!(t.set(), set);
    let _ = with_gamma;
    // Still editable: a change in the source folder shows at once.
    std::fs::write(proj.join("gamma/__init__.py"), "G = 'changed'\n").unwrap();
    assert_eq!(ok("import gamma", import(&t)).trim(), "changed");
    let direct_url: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            t.site_packages()
                .join("gamma-0.1.dist-info/direct_url.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(direct_url["dir_info"]["editable"], true, "{direct_url}");
    assert!(t.pip_check_passes());
}

#[test]
fn a_direct_url_install_is_undone_and_redone_offline() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    ok(
        "pip install ./beta.whl",
        t.pip(&["install", "./wheels/beta-1.0-py3-none-any.whl"]),
    );
    let url = format!(
        "beta @ file://{}/beta-1.0-py3-none-any.whl",
        t.wheels().display()
    );
    t.assert_set(&["alpha==1.0", &url]);
    t.hide_wheels();
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==1.0"]);
    let out = t.pyctl_ok(&["redo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0", &url]);
    assert!(t.pip_check_passes());
    // Same name, same version, another source: a change in the plan, not a no-op.
    t.show_wheels();
    t.install(&["--force-reinstall", "--no-deps", "beta==1.0"]);
    t.assert_set(&["alpha==1.0", "beta==1.0"]);
    t.hide_wheels();
    let out = t.pyctl_ok(&["undo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0", &url]);
    let out = t.pyctl_ok(&["redo"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==1.0", "beta==1.0"]);
    let direct_url = t.site_packages().join("beta-1.0.dist-info/direct_url.json");
    assert!(
        !direct_url.exists(),
        "the index copy came back with a direct URL"
    );
}

/// `big` 1.0: 2000 modules in 20 packages, so that restoring or removing it takes long enough
/// to be killed half-way.
fn big_wheel(dir: &Path) {
    let files: Vec<(String, String)> = (0..2000)
        .map(|i| {
            (
                format!("big/m{}/f{i}.py", i / 100),
                format!("X = {i}\n").repeat(20),
            )
        })
        .chain((0..20).map(|m| (format!("big/m{m}/__init__.py"), String::new())))
        .chain(std::iter::once((
            "big/__init__.py".to_string(),
            String::new(),
        )))
        .collect();
    wheel(dir, "big", "1.0", &["alpha"], &files);
}

/// After a kill: the next command completes the interrupted entry, the venv's set (pyctl and
/// pip agree) is what the history's latest entry says, and nothing is half-installed.
fn assert_recovered(t: &Tier, what: &str) {
    complete_interrupted(t, what);
    let history = t.history();
    for (id, _, after) in &history {
        assert!(after.is_some(), "{what}: entry #{id} still has no after");
    }
    let (_, _, after) = history.last().unwrap();
    let recorded = freeze_of(after.as_ref().unwrap());
    let set = t.set();
    assert_eq!(set, recorded, "{what}: the history claims another set");
    if set.iter().any(|l| l == "big==1.0") {
        let modules = walkdir::WalkDir::new(t.site_packages().join("big"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "py"))
            .count();
        assert_eq!(modules, 2021, "{what}: big is listed but incomplete");
    }
    assert!(t.pip_check_passes(), "{what}: pip check fails");
}

/// `status` reports an interrupted entry; the next operation (here a snapshot) completes it.
fn complete_interrupted(t: &Tier, what: &str) {
    let unfinished = t.history().iter().any(|(_, _, after)| after.is_none());
    let status = t.pyctl_ok(&["status"]);
    if unfinished {
        assert!(
            status.contains("interrupted"),
            "{what}: status does not tell:\n{status}"
        );
    }
    t.pyctl_ok(&["snapshot", "after-kill", "--force"]);
    for (id, _, after) in t.history() {
        assert!(after.is_some(), "{what}: entry #{id} still has no after");
    }
}

/// Runs `args` and kills it with SIGKILL after `delay`; whether it was still running.
fn kill_after(t: &Tier, args: &[&str], delay: Duration) -> bool {
    let mut child = t.spawn_pyctl(args);
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .ok();
    child.wait().unwrap();
    running
}

/// How long `args` takes when left alone.
fn timed(t: &Tier, args: &[&str]) -> Duration {
    let start = Instant::now();
    t.pyctl_ok(args);
    start.elapsed()
}

/// Whether the history has an entry newer than `id` (the killed command got as far as its
/// `before`).
fn recorded_after(t: &Tier, id: u64) -> bool {
    t.last_id() > id
}

/// A plain `pyctl undo` works after a recovery and lands exactly on the `before` of the entry
/// it says it reverts.
fn undo_still_works(t: &Tier, what: &str) {
    t.pyctl_ok(&["undo"]);
    let history = t.history();
    let (_, undo, _) = history.last().unwrap();
    let reverted = undo["reverts"][0].as_u64().unwrap();
    let (_, target, _) = history.iter().find(|(id, _, _)| *id == reverted).unwrap();
    let expected = freeze_of(target);
    assert_eq!(
        t.set(),
        expected,
        "{what}: undo of #{reverted} went elsewhere"
    );
    assert!(t.pip_check_passes(), "{what}: pip check fails after undo");
}

/// After the checks: redo until there is nothing left to redo, then (if big is still missing)
/// `undo --to` the install of big; big must then be whole, and one undo must remove every file
/// of it.
fn back_to_full_then_undo(t: &Tier, what: &str, with_big: u64) {
    for _ in 0..4 {
        let out = t.pyctl(&["redo"]);
        if !out.status.success() {
            assert!(
                text(&out).contains("nothing to redo"),
                "{what}: {}",
                text(&out)
            );
            break;
        }
        t.assert_from_store(&text(&out));
    }
    if !t.set().contains(&"big==1.0".to_string()) {
        t.pyctl_ok(&["undo", "--to", &with_big.to_string()]);
    }
    t.assert_set(&["alpha==1.0", "big==1.0"]);
    assert_recovered(t, what);
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==1.0"]);
    assert!(
        !t.site_packages().join("big").exists(),
        "{what}: big's files were left behind"
    );
}

/// Installs alpha, then big; returns the entry id of big's install. The wheels are hidden
/// afterwards.
fn alpha_then_big(t: &Tier) -> u64 {
    big_wheel(&t.wheels());
    t.install(&["alpha==1.0"]);
    t.install(&["big"]);
    t.assert_set(&["alpha==1.0", "big==1.0"]);
    t.hide_wheels();
    t.last_id()
}

const KILL_POINTS: [u32; 8] = [2, 10, 25, 40, 55, 70, 85, 100];
/// Tried, in order, only while no kill of `KILL_POINTS` has landed inside an `op`: on a loaded
/// machine one timed run can be far off the next one's.
const MORE_KILL_POINTS: [u32; 12] = [5, 15, 20, 30, 35, 45, 50, 60, 65, 75, 80, 90];

/// Kills `op` at each of `KILL_POINTS` (percent of `full`, its duration left alone), and at
/// `MORE_KILL_POINTS` until one lands inside; after each kill: the recovery checks, a working
/// undo, then back to alpha and big by redo (or `undo --to` the install of big, `with_big`)
/// and one undo, then `again` readies the next round. At least one kill must land inside an
/// `op`.
fn kill_at_each_point(t: &Tier, op: &str, full: Duration, with_big: u64, again: impl Fn()) {
    let mut interrupted = 0;
    let more = MORE_KILL_POINTS.iter().map(|p| (*p, true));
    for (percent, extra) in KILL_POINTS.iter().map(|p| (*p, false)).chain(more) {
        if extra && interrupted > 0 {
            break;
        }
        let what = format!("{op} killed at {percent}%");
        let last = t.last_id();
        let running = kill_after(t, &[op], full * percent / 100);
        if running && recorded_after(t, last) && t.history().last().unwrap().2.is_none() {
            interrupted += 1;
        }
        assert_recovered(t, &what);
        undo_still_works(t, &what);
        back_to_full_then_undo(t, &what, with_big);
        again();
    }
    assert!(
        interrupted > 0,
        "no kill landed inside a {op} ({op} takes {full:?}): nothing was tested"
    );
}

#[test]
fn sigkill_during_undo_then_recovery() {
    let t = Tier::new();
    let with_big = alpha_then_big(&t);
    // One undo left alone, to time it.
    let full = timed(&t, &["undo"]);
    t.assert_set(&["alpha==1.0"]);
    t.pyctl_ok(&["redo"]);
    kill_at_each_point(&t, "undo", full, with_big, || {
        t.pyctl_ok(&["redo"]);
        t.assert_set(&["alpha==1.0", "big==1.0"]);
    });
}

#[test]
fn sigkill_during_redo_then_recovery() {
    let t = Tier::new();
    let with_big = alpha_then_big(&t);
    // Without the trees the undo parked: from those, a redo of big is one rename per folder,
    // over before most kills land; the kills are about the redo that links file by file.
    let drop_parked = || {
        t.settle();
        let parked = t.root().join(".parked");
        if parked.exists() {
            std::fs::remove_dir_all(&parked).unwrap();
        }
    };
    t.pyctl_ok(&["undo"]);
    drop_parked();
    let full = timed(&t, &["redo"]);
    t.assert_set(&["alpha==1.0", "big==1.0"]);
    t.pyctl_ok(&["undo"]);
    drop_parked();
    // Each round ends on an undo that removed big: the next redo adds it back.
    kill_at_each_point(&t, "redo", full, with_big, drop_parked);
}

#[test]
fn sigkill_during_clean_then_recovery() {
    let t = Tier::new();
    big_wheel(&t.wheels());
    t.install(&["big"]);
    t.hide_wheels();
    let full = timed(&t, &["clean"]);
    t.assert_set(&[]);
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==2.0", "big==1.0"]);
    for percent in [5u32, 20, 40, 60, 80, 100] {
        let what = format!("clean killed at {percent}%");
        let last = t.last_id();
        kill_after(&t, &["clean"], full * percent / 100);
        // The venv may be gone or half-made: the next undo rebuilds it.
        complete_interrupted(&t, &what);
        if recorded_after(&t, last) {
            t.pyctl_ok(&["undo"]);
        }
        t.assert_set(&["alpha==2.0", "big==1.0"]);
        assert_recovered(&t, &what);
    }
}

/// A clean killed while `venv` made the new venv leaves its `pyvenv.cfg` without `bin/python`
/// (seen once in CI under load). That is no Python change: no rebuild is recorded (undo could
/// not go past it), and the undo makes the venv again.
#[test]
fn a_half_made_venv_is_made_again_not_taken_for_a_python_change() {
    let t = Tier::new();
    t.install(&["alpha"]);
    let before = t.set();
    t.pyctl_ok(&["clean"]);
    t.settle();
    for e in std::fs::read_dir(t.venv().join("bin")).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("python") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    t.pyctl_ok(&["undo"]);
    assert_eq!(t.set(), before);
    assert!(t.venv().join("bin/python").exists());
    for (id, entry, _) in t.history() {
        assert!(
            !entry.to_string().contains("rebuild"),
            "#{id} is a rebuild: {entry}"
        );
    }
}

#[test]
fn gc_removes_only_unreferenced_store_entries() {
    let t = Tier::new();
    simple_wheel(&t.wheels(), "eps", "1.0", &[], "E = 1\n");
    std::fs::write(t.root().join("config.toml"), "[history]\nmax_entries = 3\n").unwrap();
    t.give_away(t.path());
    t.install(&["alpha==1.0", "delta"]);
    ok(
        "pip uninstall",
        t.pip(&["uninstall", "-y", "delta", "alpha"]),
    );
    t.install(&["beta"]);
    t.pyctl_ok(&["snapshot", "with-beta"]);
    ok(
        "pip uninstall",
        t.pip(&["uninstall", "-y", "beta", "alpha"]),
    );
    t.install(&["eps"]);
    ok("pip uninstall", t.pip(&["uninstall", "-y", "eps"]));
    t.install(&["eps"]);
    t.assert_set(&["eps==1.0"]);
    // The three kept entries only know eps; the snapshots know alpha 2.0, beta, pip and
    // setuptools; alpha 1.0 and delta are referred to by nothing any more.
    let history = t.history();
    assert_eq!(history.len(), 3, "pruning kept {}", history.len());
    for (id, before, after) in &history {
        for freeze in [&before["freeze"], &after.as_ref().unwrap()["freeze"]] {
            let freeze = freeze.as_str().unwrap();
            assert!(
                !freeze.contains("alpha") && !freeze.contains("delta"),
                "#{id}: {freeze}"
            );
        }
    }
    let has = |entries: &[String], p: &str| entries.iter().any(|n| n.starts_with(p));
    let entries = t.store_entries();
    for all in [
        "alpha-1.0-",
        "delta-1.0-",
        "alpha-2.0-",
        "beta-1.0-",
        "eps-1.0-",
    ] {
        assert!(has(&entries, all), "{all} never kept: {entries:?}");
    }
    let out = t.pyctl_ok(&["gc"]);
    let entries = t.store_entries();
    for gone in ["alpha-1.0-", "delta-1.0-"] {
        assert!(!has(&entries, gone), "{gone} was kept: {entries:?}\n{out}");
    }
    for kept in ["alpha-2.0-", "beta-1.0-", "eps-1.0-", "pip-", "setuptools-"] {
        assert!(
            has(&entries, kept),
            "{kept} was collected: {entries:?}\n{out}"
        );
    }
    // What is kept still works offline.
    t.hide_wheels();
    let out = t.pyctl_ok(&["undo"]);
    t.assert_from_store(&out);
    t.assert_set(&[]);
    let out = t.pyctl_ok(&["restore", "with-beta"]);
    t.assert_from_store(&out);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    assert!(t.pip_check_passes());
    let out = t.pyctl_ok(&["clean"]);
    t.assert_from_store(&out);
    t.assert_set(&[]);
}

#[test]
fn undo_after_undo_to_a_later_state_goes_back_one_step() {
    let t = Tier::new();
    t.install(&["alpha==1.0"]);
    t.install(&["delta"]);
    let with_delta = t.last_id();
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==1.0"]);
    t.pyctl_ok(&["undo", "--to", &with_delta.to_string()]);
    t.assert_set(&["alpha==1.0", "delta==1.0"]);
    t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==1.0"]);
    t.pyctl_ok(&["redo"]);
    t.assert_set(&["alpha==1.0", "delta==1.0"]);
    t.pyctl_ok(&["undo", "2"]);
    t.assert_set(&[]);
}

#[test]
fn auto_snapshot_off_keeps_nothing_new_in_the_store_and_undo_falls_back_to_pip() {
    let t = Tier::new();
    t.pyctl_ok(&["config", "auto_snapshot", "false"]);
    t.install(&["alpha==1.0"]);
    assert!(
        !t.store_entries().iter().any(|n| n.starts_with("alpha-")),
        "{:?}",
        t.store_entries()
    );
    t.pyctl_ok(&["undo"]);
    t.assert_set(&[]);
    // The wheel folder is where the install found alpha: redo gets it from there with pip.
    let out = t.pyctl_ok(&["redo"]);
    assert!(out.contains("pip"), "{out}");
    t.assert_set(&["alpha==1.0"]);
    // Back on: the next operation keeps the set in the store again.
    t.pyctl_ok(&["config", "auto_snapshot", "true"]);
    t.install(&["beta"]);
    assert!(
        t.store_entries()
            .iter()
            .any(|n| n.starts_with("alpha-1.0-"))
            && t.store_entries().iter().any(|n| n.starts_with("beta-1.0-")),
        "{:?}",
        t.store_entries()
    );
}

/// Runs pyctl with stderr on a pseudo-terminal; returns what the terminal received.
fn pyctl_stderr_on_tty(t: &Tier, args: &[&str], delay_ms: &str) -> String {
    let (master, slave) = common::pty();
    let mut cmd = t.command(Path::new(common::PYCTL));
    cmd.env("PYCTL_PROGRESS_DELAY_MS", delay_ms)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(slave));
    let status = cmd.spawn().unwrap().wait().unwrap();
    drop(cmd);
    assert!(status.success(), "pyctl {args:?}: {status}");
    common::read_pty(master)
}

#[test]
fn a_progress_line_on_a_terminal_only_and_only_for_slow_work() {
    let t = Tier::new();
    t.install(&["beta"]);
    t.pyctl_ok(&["undo"]);
    // Shown at once (delay 0): the count of distributions, erased at the end.
    let tty = pyctl_stderr_on_tty(&t, &["redo"], "0");
    assert!(
        tty.contains("restoring distributions from the store") && tty.contains("/2"),
        "{tty:?}"
    );
    assert!(tty.contains("\r\x1b[2K"), "{tty:?}");
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    t.pyctl_ok(&["undo"]);
    // The default delay (a second) is longer than this small redo: nothing shown.
    let tty = pyctl_stderr_on_tty(&t, &["redo"], "1000");
    assert!(!tty.contains("restoring"), "{tty:?}");
    t.pyctl_ok(&["undo"]);
    // Not a terminal, or quiet: never.
    let out = t
        .command(Path::new(common::PYCTL))
        .env("PYCTL_PROGRESS_DELAY_MS", "0")
        .arg("redo")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !common::text(&out).contains("restoring"),
        "{}",
        common::text(&out)
    );
    t.pyctl_ok(&["undo"]);
    let tty = pyctl_stderr_on_tty(&t, &["-q", "redo"], "0");
    assert!(!tty.contains("restoring"), "{tty:?}");
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
}

/// A redo whose distribution must come from pip (not in the store), with pip stuck building
/// it: pyctl alone is killed, and the orphaned pip still holds the tier lock, so no other
/// command records the venv it may still change; once pip ends, the next command finishes the
/// entry from the state found.
#[test]
fn a_pip_fallback_that_outlives_a_killed_pyctl_keeps_the_tier_locked() {
    let t = Tier::new();
    t.pyctl_ok(&["config", "auto_snapshot", "false"]);
    t.install(&["alpha==1.0"]);
    t.pyctl_ok(&["undo"]);
    t.assert_set(&[]);
    // The wheel folder now holds alpha 1.0 only as an sdist whose build backend stalls until
    // the test lets it go (then fails).
    let marker = t.path().join("backend-started");
    let release = t.path().join("backend-release");
    let backend = format!(
        "import os, time\n\
         open({marker:?}, 'w').write(str(os.getpid()))\n\
         deadline = time.time() + 120\n\
         while not os.path.exists({release:?}) and time.time() < deadline:\n\
         \x20   time.sleep(0.05)\n\
         raise SystemExit('released')\n",
        marker = marker.display().to_string(),
        release = release.display().to_string(),
    );
    std::fs::remove_file(t.wheels().join("alpha-1.0-py3-none-any.whl")).unwrap();
    common::sdist_with_backend(
        &t.path().join("sdist"),
        &t.wheels(),
        "alpha",
        "1.0",
        &backend,
    );
    t.give_away(t.path());

    let mut redo = t.spawn_pyctl(&["redo"]);
    common::wait_for_file(&marker, Duration::from_secs(60), "the stalled pip fallback");
    // pyctl alone, not its process group: pip carries on as an orphan.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(redo.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    redo.wait().unwrap();
    let entries = t.history().len();
    let out = t
        .command(&t.path().join("bin/pip"))
        .env("PYCTL_LOCK_TIMEOUT", "1")
        .args(["install", "--no-index", "--find-links"])
        .arg(t.wheels())
        .arg("beta")
        .output()
        .unwrap();
    let said = text(&out);
    assert!(
        !out.status.success(),
        "ran beside the orphaned pip:\n{said}"
    );
    assert!(said.contains(".lock"), "{said}");
    assert_eq!(t.history().len(), entries, "{said}");

    // pip ends (its build fails); then the tier is free and the interrupted redo is finished
    // from what is really there.
    std::fs::write(&release, "").unwrap();
    t.give_away(&release);
    let start = Instant::now();
    loop {
        let out = t.pyctl(&["status"]);
        if !lock_held(&t.root().join(".lock")) {
            assert!(out.status.success(), "{}", text(&out));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "pip never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    // doctor --fix records the interrupted redo as ending where the venv is, then tries to
    // finish it: pip cannot get alpha now (the build fails, the index is dead), which it says.
    let out = t.pyctl(&["doctor", "--fix"]);
    let said = text(&out);
    assert!(
        said.contains("was interrupted; recorded it as ending in the current state"),
        "{said}"
    );
    assert!(said.contains("could not restore alpha==1.0"), "{said}");
    t.assert_set(&[]);
    // The history never claims a state the venv is not in.
    let history = t.history();
    let redo = history
        .iter()
        .find(|(_, before, _)| before["kind"] == "redo")
        .expect("the redo entry");
    let after = redo.2.as_ref().expect("the redo entry is finished");
    assert_eq!(after["interrupted"], true, "{after}");
    assert_eq!(after["freeze"], redo.1["freeze"], "{after}");
    let (_, _, last_after) = history.last().unwrap();
    let freeze: Vec<String> = last_after.as_ref().unwrap()["freeze"]
        .as_str()
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(freeze, t.set());
}

/// Whether another process holds a tier lock (flock), as pyctl takes it.
fn lock_held(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(_) => false,
        Err((_, e)) => e == nix::errno::Errno::EWOULDBLOCK,
    }
}

/// Issue 12: an undo that brought back only part of what it reverts is not counted as done:
/// `history` and the next `undo --dry-run` still see the entry, the message tells a store copy
/// that is damaged (the file, its hash) from one that is not in the store, and the next undo
/// retries it.
#[test]
fn a_partial_undo_is_not_counted_and_the_next_undo_retries() {
    let t = Tier::new();
    t.install(&["beta"]);
    ok(
        "pip uninstall",
        t.pip(&["uninstall", "-y", "alpha", "beta"]),
    );
    let uninstall = t.last_id();
    t.assert_set(&[]);
    // Root overrides the read-only bit, as a deliberate edit would: same size, other bytes.
    let stored = store_entry(&t, "alpha-2.0-").join(format!(
        "files/{}/alpha/__init__.py",
        t.site_packages().strip_prefix(t.venv()).unwrap().display()
    ));
    std::fs::write(&stored, "V = '6.6'\n").unwrap();
    t.hide_wheels();
    let out = t.pyctl(&["undo"]);
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains("damaged in the store (")
            && msg.contains("alpha/__init__.py: sha256 differs from the RECORD hash"),
        "the damage is not named with its file:\n{msg}"
    );
    assert!(msg.contains("did not reach its target"), "{msg}");
    t.assert_set(&["beta==1.0"]);
    // Not undone: the next undo goes for the same entry, alpha only now.
    let plan = t.pyctl_json(&["undo", "--dry-run"]);
    assert_eq!(plan["command"], "pyctl undo", "{plan}");
    let adds: Vec<String> = plan["plan"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["line"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(adds, vec!["alpha==2.0"], "{plan}");
    // The damaged copy was dropped: now it is plainly not in the store.
    assert_eq!(
        plan["plan"]["add"][0]["source"]["reason"],
        "not in the store"
    );
    t.show_wheels();
    let out = t.pyctl_ok(&["undo"]);
    t.assert_set(&["alpha==2.0", "beta==1.0"]);
    let (_, undo, after) = t.history().pop().unwrap();
    assert_eq!(undo["reverts"], serde_json::json!([uninstall]), "{out}");
    assert_eq!(after.unwrap()["exit_code"], 0);
    // And that entry is undone now: the next undo takes the install.
    let plan = t.pyctl_json(&["undo", "--dry-run"]);
    assert_eq!(
        plan["plan"]["remove"].as_array().unwrap().len(),
        2,
        "{plan}"
    );
}

/// Issue 12: `pip uninstall -y pip` leaves a tier whose every pip command fails. status and
/// doctor say so (naming the entry), the failed pip runs after it are no undo target, and
/// both `pyctl undo` and `pyctl doctor --fix` put pip back from the store.
#[test]
fn a_tier_without_pip_is_reported_and_repaired() {
    let t = Tier::new();
    ok("pip uninstall pip", t.pip(&["uninstall", "-y", "pip"]));
    let removed_by = t.last_id();
    let wheels = t.wheels();
    let out = t.pip(&[
        "install",
        "--no-index",
        "--find-links",
        wheels.to_str().unwrap(),
        "alpha",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    let failed = t.last_id();
    let status = t.pyctl_ok(&["status"]);
    assert!(
        status.contains("the venv has no pip") && status.contains(&format!("#{removed_by}")),
        "{status}"
    );
    let out = t.pyctl(&["doctor"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("the venv has no pip"), "{}", text(&out));
    t.hide_wheels();
    let out = t.pyctl_ok(&["undo"]);
    assert!(out.contains(&format!("skipping #{failed}")), "{out}");
    t.assert_set(&[]);
    // Again, repaired by doctor this time.
    ok("pip uninstall pip", t.pip(&["uninstall", "-y", "pip"]));
    let out = t.pyctl(&["doctor", "--fix"]);
    let pyctl_says = text(&out);
    assert!(pyctl_says.contains("the venv has no pip"), "{pyctl_says}");
    t.assert_set(&[]);
    assert!(!t.pyctl_ok(&["status"]).contains("no pip"));
}

/// Issue 12: `export --requested` reads pip's `REQUESTED` markers, so what came through
/// `-r FILE` and `-e PATH` is asked for; a dependency pulled in is not, nor pip and setuptools
/// that the venv came with.
#[test]
fn export_requested_counts_requirement_files_and_editables() {
    let t = Tier::new();
    let proj = editable_project(t.path());
    let reqs = t.path().join("reqs.txt");
    std::fs::write(&reqs, "beta\n").unwrap();
    t.give_away(&proj);
    t.give_away(&reqs);
    t.install(&["-r", reqs.to_str().unwrap()]);
    let proj_str = proj.to_str().unwrap();
    ok(
        "pip install -e",
        t.pip(&[
            "install",
            "--no-index",
            "--no-build-isolation",
            "-e",
            proj_str,
        ]),
    );
    let out = t.pyctl_ok(&["-q", "export", "--requested"]);
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("pyctl:")).collect();
    assert_eq!(
        lines,
        [
            "beta==1.0",
            "# Editable install with no version control (gamma==0.1)",
            &format!("-e {proj_str}"),
        ],
        "{out}"
    );
    // Undone, the marker goes with the distribution.
    t.pyctl_ok(&["undo"]);
    let out = t.pyctl_ok(&["-q", "export", "--requested"]);
    assert_eq!(out.trim(), "beta==1.0");
}

/// What `pyctl status` says the store holds beyond the venv, against a walk of every stored
/// file with one link left (what it used to compute on every call, issue 15): equal after each
/// kind of change, while status itself reads `store/.sizes.json` and one file per entry.
#[test]
fn status_store_figure_follows_installs_removals_undo_and_gc() {
    use std::os::unix::fs::MetadataExt;
    let t = Tier::new();
    let walked = || -> u64 {
        let store = t.root().join("store");
        walkdir::WalkDir::new(&store)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.path().components().any(|c| c.as_os_str() == "files"))
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file() && m.nlink() == 1)
            .map(|m| m.len())
            .sum()
    };
    let figure = || -> u64 {
        // Undo, redo, restore and clean delete what they moved aside in the background: the
        // link counts settle once that is done.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_dir(t.root())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(".trash-"))
        {
            assert!(Instant::now() < deadline, "trash still there after 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = t.pyctl_json(&["status"]);
        status["store_extra_bytes"].as_u64().expect("a figure")
    };
    assert_eq!(figure(), 0);
    t.install(&["beta"]);
    assert!(t.root().join("store/.sizes.json").is_file());
    assert_eq!(figure(), walked());
    assert_eq!(figure(), 0, "everything stored is installed");
    t.install(&["alpha==1.0"]);
    let after_downgrade = figure();
    assert!(after_downgrade > 0, "alpha 2.0 is only in the store now");
    assert_eq!(after_downgrade, walked());
    ok("pip uninstall", t.pip(&["uninstall", "-y", "beta"]));
    assert!(figure() > after_downgrade);
    assert_eq!(figure(), walked());
    t.hide_wheels();
    t.pyctl_ok(&["undo", "2"]);
    assert_eq!(figure(), walked());
    t.pyctl_ok(&["clean"]);
    assert_eq!(figure(), walked());
    t.pyctl_ok(&["undo"]);
    assert_eq!(figure(), walked());
    // Changed behind pyctl's back: still the live figure.
    ok(
        "python -m pip uninstall",
        t.venv_pip(&["uninstall", "-y", "alpha"]),
    );
    assert_eq!(figure(), walked());
    t.pyctl_ok(&["gc"]);
    assert_eq!(figure(), walked());
    // A store from before `.sizes.json`: walked, the same figure; the next operation writes it.
    std::fs::remove_file(t.root().join("store/.sizes.json")).unwrap();
    assert_eq!(figure(), walked());
}

/// Found by `sigkill_during_clean_then_recovery` under load: a clean killed while
/// `python -m venv` had not yet written `pyvenv.cfg` leaves a venv that names no Python; the
/// undo that rebuilds it looked in the store for distributions of no Python version, found
/// none, and went to pip (offline: failed).
#[test]
fn undo_rebuilds_a_venv_without_pyvenv_cfg_from_the_store() {
    let t = Tier::new();
    t.install(&["beta"]);
    t.hide_wheels();
    t.pyctl_ok(&["clean"]);
    std::fs::remove_file(t.venv().join("pyvenv.cfg")).unwrap();
    // The vanished venv is recorded as an outside change first; undo reverts that one.
    let out = t.pyctl_ok(&["undo"]);
    t.assert_from_store(&out);
    t.assert_set(&[]);
}
