//! Surviving a Python upgrade (issue 16) with real interpreters, real venvs and real pip, offline:
//! a tier made from an interpreter path the test controls (a symbolic link, as Debian's venvs
//! point at /usr/bin/python3), then that link removed (the Python is gone) or pointed at another
//! installed Python of a new minor version (a release upgrade). Wheels are built here: a pure one
//! with a console script, and a compiled one (gcc and the Python headers) for each Python.
//!
//! What the host can show: the user tier when its Python is gone (rebuilt on /usr/bin/python3, the
//! same 3.11: the host has no other Python its test account may run), and the system tier moving
//! from 3.11 to another minor version when one is installed where root may run it (pyenv's under
//! /root, or `PYCTL_TEST_OTHER_PYTHON`). The distro test shows the real Debian 12 -> 13 move.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{is_root, ok, text, Tier, PYCTL};

/// (include folder, EXT_SUFFIX, `cpXY`, platform tag) of an interpreter.
fn build_facts(python: &Path) -> (String, String, String, String) {
    let out = Command::new(python)
        .args([
            "-I",
            "-c",
            "import sys, sysconfig\nprint(sysconfig.get_paths()['include'])\n\
             print(sysconfig.get_config_var('EXT_SUFFIX'))\nprint('cp%d%d' % sys.version_info[:2])\n\
             print(sysconfig.get_platform().replace('-', '_').replace('.', '_'))",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8(out.stdout).unwrap();
    let mut l = s.lines().map(str::to_string);
    (
        l.next().unwrap(),
        l.next().unwrap(),
        l.next().unwrap(),
        l.next().unwrap(),
    )
}

/// A compiled wheel `cext 1.0` for `python`: one extension module whose `answer()` is 42.
fn compiled_wheel(dir: &Path, python: &Path) {
    use base64::Engine as _;
    use sha2::Digest as _;
    use std::io::Write as _;
    let (include, suffix, cp, platform) = build_facts(python);
    assert!(
        Path::new(&include).join("Python.h").is_file(),
        "no Python.h in {include}: install the Python headers (python3-dev)"
    );
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("cext.c");
    std::fs::write(
        &src,
        "#include <Python.h>\n\
         static PyObject *answer(PyObject *s, PyObject *a) { return PyLong_FromLong(42); }\n\
         static PyMethodDef methods[] = {{\"answer\", answer, METH_NOARGS, \"\"}, {0}};\n\
         static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, \"cext\", 0, -1, methods};\n\
         PyMODINIT_FUNC PyInit_cext(void) { return PyModule_Create(&def); }\n",
    )
    .unwrap();
    let so_name = format!("cext{suffix}");
    let so = work.path().join(&so_name);
    let out = Command::new("gcc")
        .args(["-shared", "-fPIC", "-I", &include])
        .arg(&src)
        .arg("-o")
        .arg(&so)
        .output()
        .unwrap();
    assert!(out.status.success(), "gcc: {}", text(&out));
    let tag = format!("{cp}-{cp}-{platform}");
    let di = "cext-1.0.dist-info";
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (so_name, std::fs::read(&so).unwrap()),
        (
            format!("{di}/METADATA"),
            b"Metadata-Version: 2.1\nName: cext\nVersion: 1.0\n".to_vec(),
        ),
        (
            format!("{di}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: pyctl-tests\nRoot-Is-Purelib: false\nTag: {tag}\n"
            )
            .into_bytes(),
        ),
    ];
    let mut record = String::new();
    for (p, data) in &files {
        let hash =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data));
        record.push_str(&format!("{p},sha256={hash},{}\n", data.len()));
    }
    record.push_str(&format!("{di}/RECORD,,\n"));
    files.push((format!("{di}/RECORD"), record.into_bytes()));
    let mut zip = zip::ZipWriter::new(
        std::fs::File::create(dir.join(format!("cext-1.0-{tag}.whl"))).unwrap(),
    );
    for (p, data) in &files {
        zip.start_file(p.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

/// `purepkg 1.0`: pure Python, with the console script `purecli`.
fn pure_wheel(dir: &Path) {
    common::wheel(
        dir,
        "purepkg",
        "1.0",
        &[],
        &[
            (
                "purepkg/__init__.py".into(),
                "V = '1.0'\ndef main():\n    print('purecli', V)\n".into(),
            ),
            (
                "purepkg-1.0.dist-info/entry_points.txt".into(),
                "[console_scripts]\npurecli = purepkg:main\n".into(),
            ),
        ],
    );
}

/// Another CPython 3 of a minor version other than /usr/bin/python3's, that root may run, with
/// its headers: `PYCTL_TEST_OTHER_PYTHON`, a /usr/bin/python3.X, or one of pyenv's under /root.
fn other_python() -> Option<PathBuf> {
    let default = build_facts(Path::new("/usr/bin/python3")).2;
    let mut candidates: Vec<PathBuf> = std::env::var_os("PYCTL_TEST_OTHER_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    for minor in (8..=20).rev() {
        candidates.push(PathBuf::from(format!("/usr/bin/python3.{minor}")));
    }
    if let Ok(read) = std::fs::read_dir("/root/.pyenv/versions") {
        let mut versions: Vec<PathBuf> = read.filter_map(|e| Some(e.ok()?.path())).collect();
        versions.sort();
        for v in versions.into_iter().rev() {
            let name = v.file_name().unwrap().to_string_lossy().into_owned();
            let minor: Vec<&str> = name.split('.').take(2).collect();
            if minor.len() == 2 && minor[0] == "3" {
                candidates.push(v.join(format!("bin/python3.{}", minor[1])));
            }
        }
    }
    // The newest minor first.
    candidates.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        std::cmp::Reverse(
            name.trim_start_matches("python3.")
                .parse::<u32>()
                .unwrap_or(0),
        )
    });
    candidates.into_iter().find(|p| {
        p.is_file()
            && Command::new(p)
                .args(["-I", "-c", "import venv, ensurepip; ensurepip.version()"])
                .output()
                .is_ok_and(|o| o.status.success())
            && build_facts(p).2 != default
            && Path::new(&build_facts(p).0).join("Python.h").is_file()
    })
}

/// A root-owned 0755 folder with the system tier in `sys/`, the interpreter link in `pybin/`,
/// the wheels in `wheels/`, and the binary as `bin/pip`.
struct System {
    dir: tempfile::TempDir,
}

impl System {
    fn new() -> System {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["pybin", "wheels", "bin"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        for p in [
            dir.path().to_path_buf(),
            dir.path().join("pybin"),
            dir.path().join("wheels"),
            dir.path().join("bin"),
        ] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::symlink(PYCTL, dir.path().join("bin/pip")).unwrap();
        System { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("sys")
    }
    fn venv(&self) -> PathBuf {
        self.root().join("venv")
    }
    fn wheels(&self) -> PathBuf {
        self.dir.path().join("wheels")
    }
    fn link(&self) -> PathBuf {
        self.dir.path().join("pybin/python3")
    }
    fn point_to(&self, python: &Path) {
        let _ = std::fs::remove_file(self.link());
        std::os::unix::fs::symlink(python, self.link()).unwrap();
    }
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("PYCTL_SYSTEM_PREFIX", self.root())
            .env("PIP_INDEX_URL", common::DEAD_INDEX)
            .env("PIP_RETRIES", "0")
            .env("PIP_TIMEOUT", "2")
            .env("PIP_NO_CACHE_DIR", "1")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }
    fn pyctl(&self, args: &[&str]) -> Output {
        self.run(Path::new(PYCTL), args)
    }
    fn pip(&self, args: &[&str]) -> Output {
        self.run(&self.dir.path().join("bin/pip"), args)
    }
    fn history(&self) -> serde_json::Value {
        let out = self.pyctl(&["--json", "history"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
    }
    fn python(&self, code: &str) -> Output {
        Command::new(self.venv().join("bin/python"))
            .args(["-c", code])
            .env_clear()
            .output()
            .unwrap()
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Every file under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// The system tier made on /usr/bin/python3.11 (through a link) moves to another minor version
/// when the link does: the package manager's hook rebuilds it as one recorded `rebuild` entry, the
/// pure distribution from the store (re-rooted, byte-compiled for the new Python, its console
/// script working), the compiled one by pip from the recorded wheel folder. Without a wheel for
/// the new Python, that one is named and the rest works; with the wheel there, the next use
/// finishes it. Undo refuses to go past the rebuild.
#[test]
fn system_tier_moves_to_a_new_python_with_its_packages() {
    if !is_root() {
        eprintln!("skipped: needs root (the system tier)");
        return;
    }
    let Some(other) = other_python() else {
        eprintln!(
            "skipped: no second CPython minor version with headers that root may run (set \
             PYCTL_TEST_OTHER_PYTHON)"
        );
        return;
    };
    let sys = System::new();
    let old = std::fs::canonicalize("/usr/bin/python3").unwrap();
    pure_wheel(&sys.wheels());
    compiled_wheel(&sys.wheels(), &old);
    sys.point_to(&old);
    let link = sys.link();
    ok(
        "system init",
        sys.pyctl(&["system", "init", "--python", link.to_str().unwrap()]),
    );
    let wheels = sys.wheels();
    ok(
        "pip install",
        sys.pip(&[
            "install",
            "--no-index",
            "--find-links",
            wheels.to_str().unwrap(),
            "purepkg",
            "cext",
        ]),
    );
    let (_, _, old_cp, _) = build_facts(&old);
    let (_, _, new_cp, _) = build_facts(&other);
    let new_minor = format!("3.{}", &new_cp[3..]);
    let entries_before = sys.history().as_array().unwrap().len();

    // The cheap part: nothing changed, nothing happens.
    ok("hook, no change", sys.pyctl(&["hook", "rebuild"]));
    assert_eq!(sys.history().as_array().unwrap().len(), entries_before);

    // The upgrade, with no wheel of cext for the new Python in the folder yet.
    sys.point_to(&other);
    let out = sys.pyctl(&["hook", "rebuild"]);
    let said = text(&out);
    assert!(out.status.success(), "the hook never fails: {said}");
    assert!(
        said.contains(&format!("moves to Python {new_minor} (from 3.")),
        "{said}"
    );
    assert!(
        said.contains("cext==1.0"),
        "what was not rebuilt is named: {said}"
    );
    let history = sys.history();
    let newest = &history[0];
    assert_eq!(newest["kind"], "rebuild", "{newest:#}");
    assert!(
        newest["command"]
            .as_str()
            .unwrap()
            .starts_with("pyctl rebuild"),
        "{newest:#}"
    );
    let detail = &newest["rebuild"];
    assert!(
        detail["from"].as_str().unwrap().starts_with("3.11"),
        "{detail:#}"
    );
    assert!(
        detail["to"].as_str().unwrap().starts_with(&new_minor),
        "{detail:#}"
    );
    assert_eq!(strings(&detail["store"]), ["purepkg==1.0"], "{detail:#}");
    assert_eq!(strings(&detail["missing"]), ["cext==1.0"], "{detail:#}");
    let out = sys.python("import purepkg; print(purepkg.V)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1.0",
        "{}",
        text(&out)
    );
    assert!(sys.root().join(".rebuild-pending").is_file());
    let shown = ok("history", sys.pyctl(&["history"]));
    assert!(
        shown.contains("Python 3.11") && shown.contains("from the store: purepkg==1.0"),
        "{shown}"
    );

    // The wheel arrives: the next use finishes the rebuild.
    compiled_wheel(&sys.wheels(), &other);
    let out = sys.pyctl(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !sys.root().join(".rebuild-pending").exists(),
        "{}",
        text(&out)
    );
    let history = sys.history();
    assert_eq!(history[0]["kind"], "rebuild");
    assert_eq!(strings(&history[0]["rebuild"]["pip"]), ["cext==1.0"]);

    // Every package works on the new Python; its console script too.
    let out = sys
        .python("import sys, cext, purepkg; print(sys.version_info[:2], cext.answer(), purepkg.V)");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("42 1.0"),
        "{}",
        text(&out)
    );
    let script = Command::new(sys.venv().join("bin/purecli"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&script.stdout).trim(),
        "purecli 1.0",
        "{}",
        text(&script)
    );
    // Nothing of the old Python is left: no lib/python3.11, no cpython-311 byte-code; the new
    // byte-code is recorded in RECORD.
    let lib = sys.venv().join("lib");
    let libs: Vec<String> = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(libs, [format!("python{new_minor}")]);
    let old_tag = format!("cpython-{}.pyc", &old_cp[2..]);
    assert!(files_ending(&sys.venv(), &old_tag).is_empty());
    let site = lib.join(format!("python{new_minor}/site-packages"));
    let record = std::fs::read_to_string(site.join("purepkg-1.0.dist-info/RECORD")).unwrap();
    let new_tag = format!("cpython-{}.pyc", &new_cp[2..]);
    assert!(
        record.contains(&format!("purepkg/__pycache__/__init__.{new_tag},sha256=")),
        "{record}"
    );
    assert!(!record.contains(&old_tag), "{record}");
    // Root's alone, as the system tier's files always are.
    for e in walkdir::WalkDir::new(sys.root())
        .into_iter()
        .filter_map(Result::ok)
    {
        let meta = e.path().symlink_metadata().unwrap();
        if !meta.file_type().is_symlink() {
            assert_eq!(
                meta.mode() & 0o022,
                0,
                "{} writable by others",
                e.path().display()
            );
        }
    }

    // Undo cannot take the venv back to an interpreter that is gone.
    let out = sys.pyctl(&["undo", "2"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot undo past"), "{}", text(&out));
    let rebuild_id = history[1]["id"].as_u64().unwrap();
    let out = sys.pyctl(&["undo", "--to", &(rebuild_id - 1).to_string()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("interpreter that is gone"),
        "{}",
        text(&out)
    );
    // A later operation undoes as usual.
    ok("pip uninstall", sys.pip(&["uninstall", "-y", "purepkg"]));
    ok("undo", sys.pyctl(&["undo"]));
    let out = sys.python("import purepkg");
    assert!(out.status.success(), "{}", text(&out));
}

/// A user tier whose Python is gone (the link its venv was made with removed) is rebuilt by its
/// owner's first command, which says so in one line and then does what was asked. Root, using
/// that tier's pip, changes nothing in it.
#[test]
fn user_tier_whose_python_is_gone_is_rebuilt_by_its_owner_on_next_use() {
    let tier = Tier::bare();
    let pybin = tier.path().join("pybin");
    std::fs::create_dir(&pybin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", pybin.join("python3")).unwrap();
    tier.give_away(&pybin);
    pure_wheel(&tier.wheels());
    compiled_wheel(&tier.wheels(), Path::new("/usr/bin/python3"));
    tier.give_away(&tier.wheels());
    let made_with = pybin.join("python3");
    let out = tier
        .command(Path::new(PYCTL))
        .env("PYCTL_PYTHON", &made_with)
        .args(["init", "--no-modify-path"])
        .output()
        .unwrap();
    ok("init", out);
    tier.install(&["purepkg", "cext"]);
    let entries = tier.history().len();

    std::fs::remove_file(pybin.join("python3")).unwrap();
    assert!(std::fs::metadata(tier.venv().join("bin/python")).is_err());

    if is_root() {
        // Root through the tier's own pip shim: refused, and nothing in the tier changes.
        let out = Command::new(tier.venv().join("bin/pip"))
            .args(["list"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", text(&out));
        assert_eq!(tier.history().len(), entries);
        assert!(!tier.root().join(".venv-before-rebuild").exists());
    }

    let out = tier.pip(&["list", "--format=freeze"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let lines: Vec<&str> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("pyctl:"))
        .map(|_| "")
        .collect();
    assert_eq!(lines.len(), 1, "one line about the rebuild: {said}");
    assert!(
        said.contains("is gone: rebuilding it on /usr/bin/python3"),
        "{said}"
    );
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains("purepkg==1.0") && listed.contains("cext==1.0"),
        "{said}"
    );
    let history = tier.history();
    assert_eq!(history.len(), entries + 1);
    let (_, before, after) = history.last().unwrap();
    assert_eq!(before["kind"], "rebuild");
    let detail = &after.as_ref().unwrap()["rebuild"];
    assert_eq!(strings(&detail["store"]), ["purepkg==1.0"]);
    assert_eq!(strings(&detail["pip"]), ["cext==1.0"]);
    let out = tier
        .command(&tier.venv().join("bin/python"))
        .args([
            "-c",
            "import cext, purepkg; print(cext.answer(), purepkg.V)",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42 1.0",
        "{}",
        text(&out)
    );
    let out = tier
        .command(&tier.venv().join("bin/purecli"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "purecli 1.0",
        "{}",
        text(&out)
    );
    // The next command does not rebuild again.
    ok("status", tier.pyctl(&["status"]));
    assert_eq!(tier.history().len(), entries + 1);
    let out = tier.pyctl(&["undo"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot undo past"), "{}", text(&out));
    // The rebuild is the newest entry: no `undo --to` hint that would do nothing.
    assert!(
        text(&out).contains("nothing recorded after it"),
        "{}",
        text(&out)
    );
}

/// A rebuild killed half-way (SIGKILL while the new venv is being made or filled): the next
/// command puts the old venv back, records the killed entry as interrupted, and rebuilds again.
#[test]
fn a_rebuild_killed_half_way_is_done_again_at_the_next_command() {
    let tier = Tier::bare();
    let pybin = tier.path().join("pybin");
    std::fs::create_dir(&pybin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", pybin.join("python3")).unwrap();
    tier.give_away(&pybin);
    pure_wheel(&tier.wheels());
    compiled_wheel(&tier.wheels(), Path::new("/usr/bin/python3"));
    tier.give_away(&tier.wheels());
    let out = tier
        .command(Path::new(PYCTL))
        .env("PYCTL_PYTHON", pybin.join("python3"))
        .args(["init", "--no-modify-path"])
        .output()
        .unwrap();
    ok("init", out);
    tier.install(&["purepkg", "cext"]);
    let entries = tier.history().len();
    std::fs::remove_file(pybin.join("python3")).unwrap();

    let aside = tier.root().join(".venv-before-rebuild");
    let mut child = tier.spawn_pyctl(&["status"]);
    common::wait_for_file(
        &aside,
        std::time::Duration::from_secs(60),
        "the old venv aside",
    );
    // Into the making of the new venv: killed as soon as it has its pyvenv.cfg (a fixed delay
    // landed after the end once making a venv got fast).
    let started = std::time::Instant::now();
    let new_cfg = tier.venv().join("pyvenv.cfg");
    while !new_cfg.exists() && started.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(aside.exists(), "killed too late: the rebuild had finished");

    let out = tier.pyctl(&["status"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("interrupted"), "{said}");
    assert!(!aside.exists(), "{said}");
    let history = tier.history();
    let rebuilds: Vec<&(u64, serde_json::Value, Option<serde_json::Value>)> = history
        .iter()
        .skip(entries)
        .filter(|(_, b, _)| b["kind"] == "rebuild")
        .collect();
    assert_eq!(rebuilds.len(), 2, "{history:#?}");
    assert_eq!(rebuilds[0].2.as_ref().unwrap()["interrupted"], true);
    assert_eq!(rebuilds[1].2.as_ref().unwrap()["exit_code"], 0);
    let out = tier
        .command(&tier.venv().join("bin/python"))
        .args([
            "-c",
            "import cext, purepkg; print(cext.answer(), purepkg.V)",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42 1.0",
        "{}",
        text(&out)
    );
    // The killed entry changed nothing: undo is refused for the finished rebuild only.
    let out = tier.pyctl(&["undo"]);
    assert!(
        text(&out).contains(&format!("#{}", rebuilds[1].0)),
        "{}",
        text(&out)
    );
}
