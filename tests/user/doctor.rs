//! `pyctl doctor` (issue 5) against real venvs: the native dependency check says what
//! `pip check` says, and a venv whose interpreter went away (a distro Python upgrade) is found
//! and rebuilt with the same set.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{simple_wheel, text, Tier};

/// What `pip check` prints, one problem per line (the venv's own pip, bypassing pyctl).
fn pip_check(t: &Tier) -> BTreeSet<String> {
    let out = t.venv_pip(&["check"]);
    let lines: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty() && *l != "No broken requirements found.")
        .map(str::to_string)
        .collect();
    assert_eq!(
        out.status.success(),
        lines.is_empty(),
        "pip check: {}",
        text(&out)
    );
    lines
}

/// The problems doctor's dependency check reports.
fn doctor_dependencies(t: &Tier) -> BTreeSet<String> {
    findings(t, &[], "dependencies")
        .into_iter()
        .map(|(problem, _)| problem)
        .collect()
}

fn assert_same_as_pip_check(t: &Tier, expect_problems: usize) {
    let pip = pip_check(t);
    let ours = doctor_dependencies(t);
    assert_eq!(ours, pip, "doctor vs pip check");
    assert_eq!(pip.len(), expect_problems, "{pip:?}");
}

#[test]
fn dependency_check_says_what_pip_check_says() {
    let t = Tier::new();
    let w = t.wheels();
    // Requirements with extras, markers, odd spellings and specifier lists.
    simple_wheel(
        &w,
        "eps",
        "1.0",
        &[
            "ALPHA[fast] >=1.0, !=1.5",
            "zeta ; extra == \"docs\"",
            "nothere ; python_version < \"3\"",
            "Gamma.Pkg ; sys_platform == \"linux\"",
        ],
        "",
    );
    simple_wheel(&w, "gamma_pkg", "1.0", &[], "");
    simple_wheel(&w, "gamma_pkg", "0.5", &[], "");
    t.give_away(&w);

    t.install(&["beta", "delta", "eps", "gamma-pkg==1.0"]);
    assert_same_as_pip_check(&t, 0);

    // alpha 2.0 under delta's `alpha<2`: a version conflict.
    let wheels = w.to_str().unwrap().to_string();
    let force = |args: &[&str]| {
        let mut all = vec![
            "install",
            "--no-deps",
            "--no-index",
            "--find-links",
            &wheels,
        ];
        all.extend_from_slice(args);
        let out = t.venv_pip(&all);
        assert!(out.status.success(), "{}", text(&out));
    };
    force(&["alpha==2.0"]);
    assert_same_as_pip_check(&t, 1);

    // Gone: alpha is needed by beta, delta and eps.
    let out = t.venv_pip(&["uninstall", "-y", "alpha"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_same_as_pip_check(&t, 3);

    // An older gamma-pkg still satisfies eps (no specifier), and the dotted spelling is found.
    force(&["gamma_pkg==0.5", "alpha==1.0"]);
    assert_same_as_pip_check(&t, 0);
}

#[test]
fn a_venv_whose_python_went_away_is_found_and_rebuilt_with_the_same_set() {
    let t = Tier::new();
    t.install(&["beta", "delta"]);
    let before = t.set();
    let entries_before = t.history().len();

    // What a distro Python upgrade does to a venv: the interpreter it points at is gone.
    let python3 = t.venv().join("bin/python3");
    let target = std::fs::read_link(&python3).expect("bin/python3 is a symlink");
    assert!(target.is_absolute(), "{}", target.display());
    std::fs::remove_file(&python3).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3.0-gone", &python3).unwrap();
    t.give_away(&python3);
    assert!(!Path::new("/usr/bin/python3.0-gone").exists());

    let out = t.pyctl(&["doctor"]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("interpreter"), "{report}");
    assert!(report.contains("doctor --fix"), "{report}");

    let out = t.pyctl(&["doctor", "--fix"]);
    let fixed = text(&out);
    assert!(fixed.contains("interpreter"), "{fixed}");

    // Same set, a working interpreter, the packages importable, and the rebuild recorded.
    assert_eq!(t.set(), before, "{fixed}");
    let out = t
        .command(&t.venv().join("bin/python"))
        .args(["-c", "import alpha, beta, delta; print(alpha.V)"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.0");
    let history = t.history();
    assert!(history.len() > entries_before, "{fixed}");
    let (_, last_before, _) = history.last().unwrap();
    assert!(
        last_before["command"]
            .as_str()
            .unwrap()
            .contains("doctor --fix"),
        "{last_before}"
    );
    assert!(t.pip_check_passes());

    // The interpreter finding is gone.
    let out = t.pyctl(&["--json", "doctor"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let left: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "interpreter")
        .collect();
    assert!(left.is_empty(), "{report}");

    // And the tier keeps working: a recorded install, then undo of it.
    t.install(&["alpha==2.0", "--no-deps"]);
    t.pyctl_ok(&["undo"]);
    assert_eq!(t.set(), before);
}

/// doctor's findings of one check, as (problem, fixed).
fn findings(t: &Tier, args: &[&str], check: &str) -> Vec<(String, bool)> {
    let mut all = vec!["--json", "doctor"];
    all.extend_from_slice(args);
    let out = t.pyctl(&all);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", text(&out)));
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == check)
        .map(|f| {
            (
                f["problem"].as_str().unwrap().to_string(),
                f["fixed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Issue 12: two distributions shipping the same package (as PyJWT and jwt do): the second
/// overwrote the first's files. doctor names the damaged one, the file, whose bytes it holds
/// and the operation that put them there (only one of the two can be whole: no --fix).
#[test]
fn doctor_names_a_distribution_whose_files_another_overwrote() {
    let t = Tier::new();
    let f = |p: &str, c: &str| (p.to_string(), c.to_string());
    common::wheel(
        &t.wheels(),
        "pyjwt",
        "2.0",
        &[],
        &[f("jwt/__init__.py", "def encode(): pass\n")],
    );
    common::wheel(
        &t.wheels(),
        "jwt",
        "1.0",
        &[],
        &[f("jwt/__init__.py", "X = 1\n")],
    );
    t.give_away(&t.wheels());
    t.install(&["pyjwt"]);
    let healthy = findings(&t, &[], "installed files");
    assert!(healthy.is_empty(), "{healthy:?}");
    t.install(&["jwt"]);
    let by = t.last_id();
    let found = findings(&t, &[], "installed files");
    assert_eq!(found.len(), 1, "{found:?}");
    let (problem, _) = &found[0];
    assert!(
        problem.starts_with("pyjwt==2.0 is damaged")
            && problem.contains("jwt/__init__.py: holds jwt==1.0's bytes")
            && problem.contains(&format!("damaged by #{by}")),
        "{problem}"
    );
}

/// Issue 12: a file of an installed distribution replaced by other bytes (an editor saving by
/// rename) or deleted: doctor names it, `--fix` puts the distribution's own file back from the
/// store, offline.
#[test]
fn doctor_finds_changed_and_missing_files_and_puts_them_back() {
    let t = Tier::new();
    t.install(&["beta"]);
    let alpha = t.site_packages().join("alpha/__init__.py");
    let beta = t.site_packages().join("beta/__init__.py");
    std::fs::remove_file(&alpha).unwrap();
    std::fs::write(&alpha, "V = 'patched'\n").unwrap();
    t.give_away(&alpha);
    std::fs::remove_file(&beta).unwrap();
    let found = findings(&t, &[], "installed files");
    let all = format!("{found:?}");
    assert_eq!(found.len(), 2, "{all}");
    assert!(
        all.contains("alpha==2.0 is damaged")
            && all.contains("alpha/__init__.py: changed in place"),
        "{all}"
    );
    assert!(
        all.contains("beta==1.0 is damaged") && all.contains("beta/__init__.py: missing"),
        "{all}"
    );
    t.hide_wheels();
    let found = findings(&t, &["--fix"], "installed files");
    assert!(found.iter().all(|(_, fixed)| *fixed), "{found:?}");
    assert_eq!(std::fs::read_to_string(&alpha).unwrap(), "V = '2.0'\n");
    assert_eq!(std::fs::read_to_string(&beta).unwrap(), "import alpha\n");
    assert!(findings(&t, &[], "installed files").is_empty());
}

/// Issue 12: a package folder no RECORD names (what a pip stopped by a full disk leaves) is an
/// orphan; `--fix` moves it out of site-packages into the tier's `orphans/`.
#[test]
fn doctor_finds_orphan_files_and_moves_them_aside() {
    let t = Tier::new();
    let orphan = t.site_packages().join("numpy");
    std::fs::create_dir_all(orphan.join("core")).unwrap();
    std::fs::write(orphan.join("core/_multiarray.py"), vec![b'x'; 4096]).unwrap();
    std::fs::write(orphan.join("__init__.py"), b"").unwrap();
    t.give_away(&orphan);
    let found = findings(&t, &[], "orphan files");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].0.contains("numpy holds 2 file(s)") && found[0].0.contains("no distribution"),
        "{found:?}"
    );
    // pip's and setuptools' own files are not orphans.
    let found = findings(&t, &["--fix"], "orphan files");
    assert!(found[0].1, "{found:?}");
    assert!(!orphan.exists());
    let kept: Vec<_> = walkdir::WalkDir::new(t.root().join("orphans"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().ends_with("numpy/core/_multiarray.py"))
        .collect();
    assert_eq!(kept.len(), 1, "the orphan was not kept aside");
    assert!(findings(&t, &[], "orphan files").is_empty());
}
