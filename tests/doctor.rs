//! `pyctl doctor` (issue 5) against real venvs: the native dependency check says what
//! `pip check` says, and a venv whose interpreter went away (a distro Python upgrade) is found
//! and rebuilt with the same set.

mod common;

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
    let out = t.pyctl(&["--json", "doctor"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", text(&out)));
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == "dependencies")
        .map(|f| f["problem"].as_str().unwrap().to_string())
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
