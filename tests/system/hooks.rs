//! The package-manager hooks against real parts: `.deb` files built with dpkg-deb, a real venv
//! as the system tier (PYCTL_SYSTEM_PREFIX), apt's protocol-3 input, the real pyctl binary.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{build_deb, PYCTL};

/// A system tier: a real venv (pip and setuptools, as `python3 -m venv` makes it).
fn system_tier() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(dir.path().join("venv"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// Puts a distribution's metadata into the tier's venv by hand: enough for the package set.
fn add_dist(tier: &Path, name: &str, version: &str) {
    let site = std::fs::read_dir(tier.join("venv/lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages");
    let info = site.join(format!("{name}-{version}.dist-info"));
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(
        info.join("METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"),
    )
    .unwrap();
}

fn v3_input(actions: &[(&str, &Path)]) -> String {
    let mut s = "VERSION 3\nAPT::Architecture=amd64\nDir=/\n\n".to_string();
    for (pkg, deb) in actions {
        s.push_str(&format!(
            "{pkg} - - none < 1.0 all foreign {}\n",
            deb.display()
        ));
        s.push_str(&format!("{pkg} - - none < 1.0 all foreign **CONFIGURE**\n"));
    }
    s
}

fn hook(tier: Option<&Path>, args: &[&str], stdin: &[u8]) -> (Output, Duration) {
    let mut cmd = Command::new(PYCTL);
    cmd.arg("hook")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    match tier {
        Some(t) => cmd.env("PYCTL_SYSTEM_PREFIX", t),
        None => cmd.env("PYCTL_SYSTEM_PREFIX", "/nonexistent-pyctl-tier"),
    };
    let start = Instant::now();
    let out = common::output_within(cmd, stdin, Duration::from_secs(300));
    (out, start.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn apt_hook_warns_about_a_version_conflict_and_lets_apt_go_on() {
    let tier = system_tier();
    add_dist(tier.path(), "requests", "2.0.0");
    let work = tempfile::tempdir().unwrap();
    let deb = build_deb(
        work.path(),
        "python3-requests",
        &[(
            "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO",
            "Metadata-Version: 1.2\nName: requests\nVersion: 2.28.1\n",
        )],
    );
    let (out, _) = hook(
        Some(tier.path()),
        &["apt"],
        v3_input(&[("python3-requests", &deb)]).as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "python3-requests ships requests 2.28.1 but the system venv has requests 2.0.0"
        ),
        "{err}"
    );
}

#[test]
fn apt_hook_blocks_when_configured() {
    let tier = system_tier();
    add_dist(tier.path(), "requests", "2.0.0");
    std::fs::write(
        tier.path().join("config.toml"),
        "[hooks]\non_conflict = \"block\"\n",
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let deb = build_deb(
        work.path(),
        "python3-requests",
        &[(
            "/usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA",
            "Name: requests\n",
        )],
    );
    let (out, _) = hook(
        Some(tier.path()),
        &["apt"],
        v3_input(&[("python3-requests", &deb)]).as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing the transaction"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn apt_hook_is_silent_without_python_packages_or_same_versions() {
    let tier = system_tier();
    add_dist(tier.path(), "requests", "2.28.1");
    let work = tempfile::tempdir().unwrap();
    let plain = build_deb(
        work.path(),
        "hello",
        &[("/usr/share/doc/hello/README", "hi")],
    );
    let same = build_deb(
        work.path(),
        "python3-requests",
        &[(
            "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO",
            "Name: requests\n",
        )],
    );
    let (out, _) = hook(
        Some(tier.path()),
        &["apt"],
        v3_input(&[("hello", &plain), ("python3-requests", &same)]).as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn apt_hook_without_a_system_tier_does_nothing() {
    let (out, _) = hook(
        None,
        &["apt"],
        b"VERSION 3\n\nx - - none < 1 all foreign /x.deb\n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn apt_hook_survives_malformed_input_in_bounded_time() {
    let tier = system_tier();
    add_dist(tier.path(), "requests", "2.0.0");
    let mut binary = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        binary.push((x >> 16) as u8);
    }
    let huge = format!(
        "VERSION 3\n\n{}",
        "p - - none < 1 all foreign /nope.deb\n".repeat(20_000)
    );
    let truncated =
        b"VERSION 3\nAPT::Architecture=amd64\n\npython3-requests - - none < 2.2".to_vec();
    for (label, input) in [
        ("binary", binary),
        ("huge", huge.into_bytes()),
        ("truncated", truncated),
        ("empty", Vec::new()),
    ] {
        let (out, took) = hook(Some(tier.path()), &["apt"], &input);
        assert_eq!(out.status.code(), Some(0), "{label}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("panicked"),
            "{label}: {}",
            stderr(&out)
        );
        assert!(took < Duration::from_secs(60), "{label} took {took:?}");
        if label == "huge" {
            assert!(
                stderr(&out).contains(
                    "could not check 1 package(s) against the system tier (its .deb is not there): p"
                ),
                "{}",
                stderr(&out)
            );
        }
    }
}

/// Thousands of .debs in one transaction, some damaged: the apt hook checks the good ones,
/// names the ones it could not read, and lets apt go on (exit 0 with `warn`).
#[test]
fn apt_hook_names_debs_it_could_not_read() {
    let tier = system_tier();
    add_dist(tier.path(), "requests", "2.0.0");
    let work = tempfile::tempdir().unwrap();
    let good = build_deb(
        work.path(),
        "python3-requests",
        &[(
            "/usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA",
            "Name: requests\n",
        )],
    );
    let mut actions: Vec<(String, std::path::PathBuf)> =
        vec![("python3-requests".into(), good.clone())];
    for i in 0..3 {
        let bad = work.path().join(format!("broken{i}_1.0_all.deb"));
        std::fs::write(&bad, b"!<arch>\nnot really a deb").unwrap();
        actions.push((format!("broken{i}"), bad));
    }
    for i in 0..2000 {
        actions.push((
            format!("gone{i}"),
            work.path().join(format!("gone{i}_1.0_all.deb")),
        ));
    }
    let refs: Vec<(&str, &Path)> = actions
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_path()))
        .collect();
    let (out, took) = hook(Some(tier.path()), &["apt"], v3_input(&refs).as_bytes());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(took < Duration::from_secs(70), "took {took:?}");
    assert!(
        err.contains(
            "python3-requests ships requests 2.28.1 but the system venv has requests 2.0.0"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "could not check 2000 package(s) against the system tier (its .deb is not there)"
        ),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("could not check 3 package(s)")
                && l.contains("dpkg-deb")
                && l.contains("broken0")),
        "{err}"
    );
}

/// Whether the host has the package tool the hook runs (tests/distro/all installs rpm and
/// pacman; elsewhere these tests say they were skipped).
fn have_tool(name: &str) -> bool {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(name).is_file())
}

#[test]
fn dnf_and_pacman_hooks_tolerate_missing_packages() {
    let tier = system_tier();
    add_dist(tier.path(), "requests", "2.0.0");
    let (out, _) = hook(Some(tier.path()), &["dnf", "python3-requests"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (out, _) = hook(Some(tier.path()), &["pacman"], b"python-requests\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Thousands of packages, odd names, names that look like options: the hooks finish in their
/// bound, say which packages they could not check and why, and exit 0 (a dnf or pacman hook
/// runs after the transaction; it never fails it).
#[test]
fn dnf_and_pacman_hooks_report_what_they_could_not_check_in_bounded_time() {
    let tier = system_tier();
    add_dist(tier.path(), "requests", "2.0.0");
    let mut names: Vec<String> = (0..3000).map(|i| format!("python3-nosuch{i}")).collect();
    names.extend(
        [
            "-rf",
            "--all",
            "a b",
            "tab\tname",
            "ctl\u{1}x",
            "\u{e9}t\u{e9}",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    names.push("x".repeat(300));
    for (manager, tool) in [("dnf", "rpm"), ("dnf5", "rpm"), ("pacman", "pacman")] {
        if !have_tool(tool) {
            eprintln!("skipped for {manager}: no {tool} on this machine");
            continue;
        }
        let (out, took) = if manager == "pacman" {
            hook(Some(tier.path()), &["pacman"], names.join("\n").as_bytes())
        } else {
            let mut args = vec![manager];
            args.extend(names.iter().map(String::as_str));
            hook(Some(tier.path()), &args, b"")
        };
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{manager}: {err}");
        assert!(!err.contains("panicked"), "{manager}: {err}");
        assert!(
            took < pyctl::commands::hooks::HOOK_BUDGET + Duration::from_secs(10),
            "{manager} took {took:?}"
        );
        assert!(
            err.contains("could not check 3001 package(s) against the system tier (not in the package database)"),
            "{manager}: {err}"
        );
        assert!(
            err.contains("could not check 6 package(s) against the system tier (odd package name)"),
            "{manager}: {err}"
        );
        let said = String::from_utf8_lossy(&out.stdout);
        if manager == "dnf5" {
            // Every standard output line is a key=value line dnf 5 accepts.
            assert!(!said.is_empty(), "dnf5 wrote no log lines");
            for line in said.lines() {
                assert!(
                    line.starts_with("log.WARNING=pyctl: "),
                    "dnf5 stdout: {line:?}"
                );
            }
        } else {
            assert!(said.is_empty(), "{manager} wrote to stdout: {said}");
        }
    }
}
