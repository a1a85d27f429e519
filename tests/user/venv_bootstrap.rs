//! A new tier's venv gets pip without ensurepip (issue 15): `python -m venv --without-pip`, then
//! the wheels ensurepip would install unpacked and byte-compiled by pyctl. The result is held
//! against a venv made by `python -m venv` at the same path, file by file (the bytecode's
//! content aside: the same modules must be compiled and listed), and against what pip says of
//! it. A Python whose wheels cannot be found falls back to ensurepip.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{ok, text, Tier, PYCTL};

/// Every file, folder and link under `dir` but bytecode: path → (mode, content or link
/// target). RECORD files are compared whole: they list the bytecode as pip does, without a
/// hash.
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
            std::fs::read(e.path()).unwrap()
        } else {
            Vec::new()
        };
        // The store makes installed files read-only once it holds them (hard links): the
        // write bits are the store's, not the placement's.
        let mode = if meta.is_file() {
            meta.permissions().mode() & !0o222
        } else {
            meta.permissions().mode()
        };
        out.insert(rel, (mode, content));
    }
    out
}

/// Every path under `dir`, bytecode included, with its mode, size and mtime: what a program
/// writing into the tree would move.
fn whole_tree(dir: &Path) -> BTreeMap<String, (u32, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                (meta.mode(), meta.len(), meta.mtime(), meta.mtime_nsec()),
            )
        })
        .collect()
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

/// The bytecode a RECORD lists, by path.
fn pyc_rows(record: &str) -> Vec<String> {
    let rows: Vec<String> = record
        .lines()
        .filter_map(|row| row.split(',').next())
        .filter(|path| path.ends_with(".pyc"))
        .map(str::to_string)
        .collect();
    assert!(rows.len() > 100, "{} bytecode rows", rows.len());
    rows
}

/// What `pyctl -v init` says of a new venv's bytecode: how many modules it compiled, and how
/// many it took from each seed (by site folder).
fn bytecode_line(out: &str) -> (usize, BTreeMap<String, usize>) {
    let line = out
        .lines()
        .find_map(|l| l.split_once("bytecode: ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no bytecode line in {out}"));
    let mut parts = line.split(", ");
    let compiled = parts
        .next()
        .and_then(|p| p.strip_suffix(" modules to compile"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let taken = parts
        .map(|p| {
            let (n, site) = p
                .split_once(" taken from ")
                .unwrap_or_else(|| panic!("{line}"));
            (site.to_string(), n.parse().unwrap())
        })
        .collect();
    (compiled, taken)
}

/// The machine's Python's own site folder holding its distribution's pip (Debian's
/// python3-pip) with `files` the same as in `site` and compiled: where a new tier's bytecode
/// can come from without a system tier.
fn distro_pip_site(site: &Path, files: &[&str]) -> Option<std::path::PathBuf> {
    let distro = Path::new("/usr/lib/python3/dist-packages");
    files
        .iter()
        .all(|f| {
            let (a, b) = (site.join(f), distro.join(f));
            std::fs::read(&a).ok() == std::fs::read(&b).ok()
                && std::fs::read_dir(b.parent().unwrap().join("__pycache__")).is_ok()
        })
        .then(|| distro.to_path_buf())
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
    let t = Tier::new();
    let venv = t.venv();
    // Placed by pyctl, not by ensurepip: pyvenv.cfg was written by `venv --without-pip`
    // (the word is then dropped from its command line, compared below).
    let record = pip_record(&venv);
    assert!(
        record.contains("\r\n"),
        "RECORD lines end in \\r\\n as pip writes them"
    );
    // Running pip and pyctl writes nothing into the tier: every module's bytecode is there.
    let whole = whole_tree(&venv);
    let native = tree(&venv);
    let native_version = pip_version(&t, &venv);
    let native_freeze = t.pyctl_ok(&["-q", "freeze"]);
    ok("pip list", t.venv_pip(&["list"]));
    assert_eq!(
        whole_tree(&venv),
        whole,
        "pip's first runs changed the tree"
    );
    let native_pycs = pyc_rows(&record);

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
    // The same modules compiled and listed as ensurepip's pip does.
    assert_eq!(pyc_rows(&pip_record(&venv)), native_pycs);
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
        .args(["-v", "init", "--no-modify-path"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("running ensurepip"), "{}", text(&out));
    let cfg = std::fs::read_to_string(t.venv().join("pyvenv.cfg")).unwrap();
    assert!(cfg.contains(&format!("home = {}", bin.display())), "{cfg}");
    assert!(
        pip_record(&t.venv()).contains(".pyc,"),
        "ensurepip compiles"
    );
    assert!(pip_version(&t, &t.venv()).starts_with("pip "));
    let set = t.set();
    assert!(set.iter().any(|l| l.starts_with("pip==")), "{set:?}");
}

/// A user's first tier takes the bytecode of the system tier's pip (root's files, same Python,
/// same sources) instead of compiling it: its `.pyc` files are the system tier's bytes, Python
/// takes them as they are (running pip rewrites none) and pip works. Without a system tier the
/// same init compiles every module (the test above).
#[test]
fn a_users_first_tier_copies_the_system_tiers_bytecode() {
    if !common::is_root() {
        eprintln!("skipped: making a system tier needs root");
        return;
    }
    let sys = common::SystemPrefix::new();
    ok(
        "system init",
        sys.command(Path::new(PYCTL))
            .args(["system", "init"])
            .output()
            .unwrap(),
    );
    let t = Tier::bare();
    let out = t
        .command(Path::new(PYCTL))
        .env("PYCTL_SYSTEM_PREFIX", sys.root())
        .args(["-v", "init", "--no-modify-path"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let venv = t.venv();
    let site = common::site_packages_in(&venv);
    let sys_site = common::site_packages_in(&sys.root().join("venv"));
    let (compiled, taken) = bytecode_line(&text(&out));
    assert_eq!(compiled, 0, "{}", text(&out));
    assert_eq!(
        taken.keys().collect::<Vec<_>>(),
        [&sys_site.display().to_string()],
        "{}",
        text(&out)
    );
    let rows = pyc_rows(&pip_record(&venv));
    for row in &rows {
        assert_eq!(
            std::fs::read(site.join(row)).unwrap(),
            std::fs::read(sys_site.join(row)).unwrap(),
            "{row}"
        );
    }
    let whole = whole_tree(&venv);
    assert!(pip_version(&t, &venv).starts_with("pip "));
    ok("pip list", t.venv_pip(&["list"]));
    assert_eq!(
        whole_tree(&venv),
        whole,
        "pip's first runs changed the tree"
    );

    // The system tier's pip changed by root after it was compiled (same size, so only the
    // mtime in the bytecode's header tells), and a bytecode file its RECORD does not list (as
    // if still being placed, RECORD coming last): those two modules are compiled.
    let tag = rows[0].rsplit('.').nth(1).unwrap().to_string();
    let unlisted = format!("pip/__pycache__/__init__.{tag}.pyc");
    let record = std::fs::read_dir(&sys_site)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().contains("/pip-") && p.extension().is_some_and(|e| e == "dist-info")
        })
        .unwrap()
        .join("RECORD");
    let rows_text = std::fs::read_to_string(&record).unwrap();
    assert!(
        rows_text.contains(&format!("{unlisted},,")),
        "pip lists bytecode without a hash"
    );
    let kept: String = rows_text
        .split_inclusive('\n')
        .filter(|row| !row.starts_with(&format!("{unlisted},")))
        .collect();
    std::fs::write(&record, kept).unwrap();
    let sys_main = sys_site.join("pip/__main__.py");
    let distro = distro_pip_site(&sys_site, &["pip/__init__.py", "pip/__main__.py"]);
    let source = std::fs::read_to_string(&sys_main).unwrap();
    std::fs::write(&sys_main, source.replace("import", "IMPORT")).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3);
    std::fs::File::open(&sys_main)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let t = Tier::bare();
    let out = t
        .command(Path::new(PYCTL))
        .env("PYCTL_SYSTEM_PREFIX", sys.root())
        .args(["-v", "init", "--no-modify-path"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // Those two come from the distribution's own pip where it has them byte for byte (the
    // test after this one), else they are compiled.
    let (compiled, taken) = bytecode_line(&text(&out));
    match &distro {
        Some(distro) => {
            assert_eq!(compiled, 0, "{}", text(&out));
            assert_eq!(
                taken.get(&distro.display().to_string()),
                Some(&2),
                "{}",
                text(&out)
            );
        }
        None => assert_eq!(compiled, 2, "{}", text(&out)),
    }
    let whole = whole_tree(&t.venv());
    assert!(pip_version(&t, &t.venv()).starts_with("pip "));
    assert_eq!(
        whole_tree(&t.venv()),
        whole,
        "pip's first runs changed the tree"
    );
}

/// Without a system tier, a user's first tier takes the bytecode of the distribution's own pip
/// (Debian's python3-pip, root's files) for every module it has byte for byte: the `.pyc`
/// files are that package's bytes, the sources carry the mtimes they name, Python takes them as
/// they are (running pip rewrites nothing) and pip works. What is not there is compiled.
#[test]
fn without_a_system_tier_the_distributions_pip_gives_the_bytecode() {
    let t = Tier::bare();
    let out = t
        .command(Path::new(PYCTL))
        .env("PYCTL_SYSTEM_PREFIX", t.path().join("no-system-tier"))
        .args(["-v", "init", "--no-modify-path"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let venv = t.venv();
    let site = common::site_packages_in(&venv);
    let rows = pyc_rows(&pip_record(&venv));
    let sources: Vec<String> = rows
        .iter()
        .map(|row| {
            let (folder, file) = row.rsplit_once("/__pycache__/").unwrap();
            format!("{folder}/{}.py", file.split('.').next().unwrap())
        })
        .collect();
    let refs: Vec<&str> = sources.iter().map(String::as_str).collect();
    let (compiled, taken) = bytecode_line(&text(&out));
    let Some(distro) = distro_pip_site(&site, &refs) else {
        // No distribution pip the same as the wheel's: every module compiled.
        assert!(taken.is_empty(), "{}", text(&out));
        assert!(compiled >= rows.len(), "{}", text(&out));
        eprintln!("no distribution pip like the wheel's here: only compiling was tested");
        return;
    };
    assert_eq!(
        taken.get(&distro.display().to_string()).copied(),
        Some(compiled_or_taken(&site) - compiled),
        "{}",
        text(&out)
    );
    for (row, source) in rows.iter().zip(&sources) {
        assert_eq!(
            std::fs::read(site.join(row)).unwrap(),
            std::fs::read(distro.join(row)).unwrap(),
            "{row}"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(site.join(source)).unwrap().mtime(),
            std::fs::metadata(distro.join(source)).unwrap().mtime(),
            "{source}"
        );
    }
    let whole = whole_tree(&venv);
    assert!(pip_version(&t, &venv).starts_with("pip "));
    ok("pip list", t.venv_pip(&["list"]));
    assert_eq!(
        whole_tree(&venv),
        whole,
        "pip's first runs changed the tree"
    );
}

/// How many modules under `site` have bytecode.
fn compiled_or_taken(site: &Path) -> usize {
    walkdir::WalkDir::new(site)
        .into_iter()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "pyc"))
        })
        .count()
}
