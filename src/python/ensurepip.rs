//! Which wheels `python -m ensurepip` of a given Python installs, and from where, read from its
//! own source so that a new venv can get the same pip without running it
//! ([`crate::python::bootstrap`]).
//!
//! Two ensurepips are known:
//! - CPython's (`Lib/ensurepip/__init__.py`, Debian 12 and later): it takes its wheels from the
//!   folder named by the `WHEEL_PKG_DIR` build variable (Debian: `/usr/share/python-wheels`,
//!   the python3-pip-whl package) when that holds every wheel it needs, else from its own
//!   `ensurepip/_bundled` folder, and installs setuptools and pip up to Python 3.11, pip alone
//!   from 3.12 (CPython gh-95299).
//! - Debian 11's (Python 3.9, whose pip is de-bundled: its dependencies are wheels of their
//!   own): it copies every wheel of `/usr/share/python-wheels` into the venv's
//!   `share/python-wheels`, each by the one name `glob('/usr/share/python-wheels/PROJECT-*.whl')`
//!   finds for its project, then installs setuptools, pip and pkg_resources from there with
//!   that pip. Only the versions a venv was compared with file by file (pip 20.2 to 20.3, whose
//!   scripts are written by distlib 0.3.1) are placed natively.
//!
//! Any other ensurepip is left to run itself.

use std::path::{Path, PathBuf};

use crate::python::filename::WheelName;
use crate::python::names::canonical_name;

/// Where Debian 11's ensurepip takes every wheel from (written into its source).
const DEBIAN_WHEELS: &str = "/usr/share/python-wheels";

/// What ensurepip of one Python puts into a new venv.
#[derive(Debug, PartialEq, Eq)]
pub struct Wheels {
    /// Installed into site-packages as pip installs them, in this order.
    pub install: Vec<PathBuf>,
    /// Copied byte for byte into the venv's `share/python-wheels` first, under their own
    /// names (Debian 11's de-bundled pip); empty for CPython's ensurepip.
    pub copy: Vec<PathBuf>,
}

/// The wheels ensurepip of the Python whose standard library is `stdlib` (`/usr/lib/python3.11`)
/// would put into a venv, found where it would find them; `None` when its ensurepip is not one
/// of the known ones or where this cannot follow it, and
/// ensurepip itself should run.
pub fn wheels(stdlib: &Path, python: (u64, u64)) -> Option<Wheels> {
    let text = std::fs::read_to_string(stdlib.join("ensurepip").join("__init__.py")).ok()?;
    if is_debian_debundled(&text) {
        return debundled(Path::new(DEBIAN_WHEELS));
    }
    let names = upstream_projects(&text, python)?;
    let picked = match wheel_pkg_dir(stdlib) {
        Some(dir) => picked_in(&dir, names)?,
        None => None,
    };
    let install = match picked {
        Some(install) => install,
        None => wheels_in(&stdlib.join("ensurepip").join("_bundled"), names)?,
    };
    Some(Wheels {
        install,
        copy: Vec::new(),
    })
}

/// The folders whose wheels `python -m ensurepip` of `python` itself can read, as that
/// interpreter finds them (its own `ensurepip/_bundled`, its `WHEEL_PKG_DIR`, Debian 11's
/// [`DEBIAN_WHEELS`]), whether or not they exist: what root must own alone before it lets a
/// venv be made with pip. Asked of the interpreter (`-I`, nothing of the caller's environment,
/// in `/`) rather than read from beside it: a link to it says nothing of where its prefix is.
pub fn sources(python: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context as _;
    use std::os::unix::ffi::OsStrExt;
    const QUERY: &str = r"import importlib.util, os, sys, sysconfig
spec = importlib.util.find_spec('ensurepip')
origin = spec.origin if spec and spec.origin else ''
pkg = sysconfig.get_config_var('WHEEL_PKG_DIR') or ''
sys.stdout.buffer.write(os.fsencode(origin) + b'\0' + os.fsencode(pkg))
";
    let out = std::process::Command::new(python)
        .env_clear()
        .env("PATH", crate::sys::pip::ROOT_PATH)
        .current_dir("/")
        .args(["-I", "-c", QUERY])
        .output()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "{}: cannot say where its ensurepip takes wheels from: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut parts = out.stdout.split(|b| *b == 0);
    let (origin, pkg_dir) = (parts.next().unwrap_or_default(), parts.next());
    let mut folders = Vec::new();
    // A relative (or empty) `WHEEL_PKG_DIR` is read from the folder ensurepip runs in: the new
    // venv (`venv` sets it, 3.11 and later) or `/` (where `venv` runs): root's either way.
    if let Some(dir) = pkg_dir.filter(|d| d.starts_with(b"/")) {
        folders.push(PathBuf::from(std::ffi::OsStr::from_bytes(dir)));
    }
    if !origin.is_empty() {
        let origin = Path::new(std::ffi::OsStr::from_bytes(origin));
        if let Some(dir) = origin.parent() {
            folders.push(dir.join("_bundled"));
        }
        if std::fs::read_to_string(origin).is_ok_and(|text| is_debian_debundled(&text)) {
            folders.push(PathBuf::from(DEBIAN_WHEELS));
        }
    }
    Ok(folders)
}

/// The projects CPython's ensurepip installs, when its source says what CPython's does:
/// `_PACKAGE_NAMES = ('setuptools', 'pip')` before 3.12, no setuptools from 3.12 on. A patched
/// or older ensurepip (one that also installs `pkg_resources`, say, or names no package list)
/// is not CPython's.
fn upstream_projects(text: &str, python: (u64, u64)) -> Option<&'static [&'static str]> {
    if text.contains("pkg_resources") {
        return None;
    }
    if python < (3, 12) {
        text.contains("_PACKAGE_NAMES = ('setuptools', 'pip')")
            .then_some(&["setuptools", "pip"][..])
    } else {
        let cpython = text.contains("_PACKAGE_NAMES = ('pip',)")
            || text.contains("def _find_wheel_pkg_dir_pip(");
        (cpython && !text.contains("setuptools")).then_some(&["pip"][..])
    }
}

/// Whether an ensurepip source is Debian 11's: the three projects it installs, and every wheel
/// of [`DEBIAN_WHEELS`] copied into the venv's `share/python-wheels` by its project's glob.
fn is_debian_debundled(text: &str) -> bool {
    [
        "_PROJECTS = [\n    \"setuptools\",\n    \"pip\",\n    \"pkg_resources\",\n]",
        "venv_wheel_dir = os.path.join(sys.prefix, 'share', 'python-wheels')",
        "for whl in glob.glob('/usr/share/python-wheels/*.whl')",
        "'/usr/share/python-wheels/{}-*.whl'.format(project))",
        "copy_wheels(dependencies, venv_wheel_dir, sys.path)",
        "copy_wheels(_PROJECTS, tmpdir, additional_paths)",
    ]
    .iter()
    .all(|marker| text.contains(marker))
}

/// What Debian 11's ensurepip does with the wheels in `folder`: copies the one wheel
/// `glob(folder/PROJECT-*.whl)` finds for the project of each `*.whl` there (the name up to its
/// first `-`), then installs setuptools, pip and pkg_resources. `None` where it would stop (a
/// project with no wheel or two, a name glob would read as a pattern, a folder named `.whl`) or
/// where the versions are not the ones this places natively.
fn debundled(folder: &Path) -> Option<Wheels> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(folder).ok()? {
        let name = entry.ok()?.file_name().into_string().ok()?;
        if name.ends_with(".whl") && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    // glob(folder/PROJECT-*.whl): the names that start with `PROJECT-` (and end in `.whl`, as
    // all of these do), when PROJECT holds no pattern character; exactly one.
    let only = |project: &str| -> Option<&String> {
        if project.contains(['*', '?', '[']) {
            return None;
        }
        let prefix = format!("{project}-");
        let mut found = names.iter().filter(|n| n.starts_with(&prefix));
        match (found.next(), found.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    };
    let mut copy = Vec::new();
    for name in &names {
        let project = name.split('-').next().unwrap_or(name);
        let path = folder.join(only(project)?);
        // ensurepip reads each with `open`: a folder stops it.
        if !path.is_file() {
            return None;
        }
        copy.push(path);
    }
    let install: Vec<PathBuf> = ["setuptools", "pip", "pkg_resources"]
        .iter()
        .map(|project| only(project).map(|n| folder.join(n)))
        .collect::<Option<_>>()?;
    let version = |project: &str| -> Option<pep440_rs::Version> {
        WheelName::parse(only(project)?).ok()?.version.parse().ok()
    };
    let at_least = |v: &pep440_rs::Version, s: &str| *v >= s.parse().expect("a version");
    // pip writes REQUESTED from 20.2 on; distlib 0.3.1 writes the scripts' text placed here.
    let pip = version("pip")?;
    let known = at_least(&pip, "20.2")
        && !at_least(&pip, "21")
        && version("distlib")? == "0.3.1".parse().ok()?;
    if !known {
        log::info!(
            "{}: pip {pip} with these wheels was not compared with its ensurepip: running it",
            folder.display()
        );
        return None;
    }
    Some(Wheels { install, copy })
}

/// The `WHEEL_PKG_DIR` build variable, read from the `_sysconfigdata_*.py` files of the
/// standard library (what `sysconfig.get_config_var` returns), when set.
fn wheel_pkg_dir(stdlib: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(stdlib)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("_sysconfigdata_") && n.ends_with(".py"))
        })
        .collect();
    files.sort();
    const KEY: &str = "'WHEEL_PKG_DIR': '";
    files.iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        let start = text.find(KEY)? + KEY.len();
        let value = &text[start..start + text[start..].find('\'')?];
        (!value.is_empty()).then(|| PathBuf::from(value))
    })
}

/// What CPython's ensurepip takes from its wheel folder (`WHEEL_PKG_DIR`), in the order of
/// `names`: for each project the last, by name, of the `PROJECT-*.whl` there (`_find_packages`
/// up to 3.12, `sorted(glob('pip-*.whl'))[-1]` from 3.13). `Some(None)` when a project has none
/// there (or the folder cannot be read), and ensurepip takes its own `_bundled` wheels; `None`
/// where this cannot follow it (a name that is not UTF-8, or not a wheel's name), and
/// ensurepip itself should run.
fn picked_in(folder: &Path, names: &[&str]) -> Option<Option<Vec<PathBuf>>> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Some(None);
    };
    let entries: Vec<std::ffi::OsString> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    let mut install = Vec::new();
    for name in names {
        let prefix = format!("{name}-");
        let mut last: Option<&str> = None;
        for entry in &entries {
            let bytes = entry.as_bytes();
            if !bytes.starts_with(prefix.as_bytes()) || !bytes.ends_with(b".whl") {
                continue;
            }
            // Python sorts the names as text: for UTF-8, the order of their bytes.
            let text = entry.to_str()?;
            if last.is_none_or(|l| text > l) {
                last = Some(text);
            }
        }
        let Some(last) = last else {
            return Some(None);
        };
        WheelName::parse(last).ok()?;
        install.push(folder.join(last));
    }
    Some(Some(install))
}

/// One wheel of each project in `names` in `folder`, in the order of `names`; `None` unless
/// each is there exactly once.
fn wheels_in(folder: &Path, names: &[&str]) -> Option<Vec<PathBuf>> {
    let entries: Vec<String> = std::fs::read_dir(folder)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names
        .iter()
        .map(|name| {
            let mut found = entries.iter().filter(|n| {
                WheelName::parse(n).is_ok_and(|w| canonical_name(w.name) == canonical_name(name))
            });
            match (found.next(), found.next()) {
                (Some(one), None) => Some(folder.join(one)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHEELS: &[&str] = &[
        "CacheControl-0.12.6-py2.py3-none-any.whl",
        "distlib-0.3.1-py2.py3-none-any.whl",
        "pip-20.3.4-py2.py3-none-any.whl",
        "pkg_resources-0.0.0-py2.py3-none-any.whl",
        "setuptools-44.1.1-py2.py3-none-any.whl",
        "six-1.16.0-py2.py3-none-any.whl",
    ];

    fn folder(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            std::fs::write(dir.path().join(name), b"zip").unwrap();
        }
        dir
    }

    #[test]
    fn debian_11s_ensurepip_copies_every_wheel_and_installs_three() {
        let dir = folder(WHEELS);
        let found = debundled(dir.path()).expect("the wheels");
        let names = |paths: &[PathBuf]| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(&found.copy), WHEELS);
        assert_eq!(
            names(&found.install),
            [WHEELS[4], WHEELS[2], WHEELS[3]],
            "setuptools, pip, pkg_resources"
        );
        // Hidden names and other files are not globbed.
        std::fs::write(dir.path().join(".six-2-py3-none-any.whl"), b"").unwrap();
        std::fs::write(dir.path().join("README"), b"").unwrap();
        assert_eq!(debundled(dir.path()).unwrap().copy.len(), WHEELS.len());
    }

    #[test]
    fn where_debian_11s_ensurepip_would_stop_or_differ_it_runs_itself() {
        let cases: &[(&str, &[&str])] = &[
            // Two wheels one glob finds: ensurepip's assertion fails.
            ("two of six", &["six-1.15.0-py3-none-any.whl"]),
            // `glob('toml.whl-*.whl')` finds nothing: ensurepip raises.
            ("a name with no dash", &["toml.whl"]),
            ("a pattern character", &["x[1]-1.0-py3-none-any.whl"]),
            ("a folder", &["folder-1.0-py3-none-any.whl/"]),
        ];
        for (what, extra) in cases {
            let dir = folder(WHEELS);
            for name in *extra {
                match name.strip_suffix('/') {
                    Some(d) => std::fs::create_dir(dir.path().join(d)).unwrap(),
                    None => std::fs::write(dir.path().join(name), b"").unwrap(),
                }
            }
            assert_eq!(debundled(dir.path()), None, "{what}");
        }
        for (what, from, to) in [
            ("no pkg_resources", WHEELS[3], None),
            ("pip 21", WHEELS[2], Some("pip-21.0-py3-none-any.whl")),
            (
                "pip 20.1 (no REQUESTED)",
                WHEELS[2],
                Some("pip-20.1-py3-none-any.whl"),
            ),
            (
                "distlib 0.3.4",
                WHEELS[1],
                Some("distlib-0.3.4-py3-none-any.whl"),
            ),
        ] {
            let names: Vec<&str> = WHEELS
                .iter()
                .filter_map(|n| if *n == from { to } else { Some(*n) })
                .collect();
            assert_eq!(debundled(folder(&names).path()), None, "{what}");
        }
    }

    #[test]
    fn only_debian_11s_source_is_read_as_debundled() {
        let debian =
            "_PROJECTS = [\n    \"setuptools\",\n    \"pip\",\n    \"pkg_resources\",\n]\n\
            venv_wheel_dir = os.path.join(sys.prefix, 'share', 'python-wheels')\n\
            for whl in glob.glob('/usr/share/python-wheels/*.whl')\n\
            '/usr/share/python-wheels/{}-*.whl'.format(project))\n\
            copy_wheels(dependencies, venv_wheel_dir, sys.path)\n\
            copy_wheels(_PROJECTS, tmpdir, additional_paths)\n";
        assert!(is_debian_debundled(debian));
        // A patch that stops copying the wheels into the venv is another ensurepip.
        let other = debian.replace("copy_wheels(dependencies, venv_wheel_dir, sys.path)\n", "");
        assert!(!is_debian_debundled(&other));
        assert!(!is_debian_debundled(
            "_PACKAGE_NAMES = ('setuptools', 'pip')"
        ));
        assert_eq!(upstream_projects(debian, (3, 9)), None);
        assert_eq!(
            upstream_projects("_PACKAGE_NAMES = ('setuptools', 'pip')", (3, 11)),
            Some(&["setuptools", "pip"][..])
        );
        assert_eq!(
            upstream_projects("_PACKAGE_NAMES = ('pip',)", (3, 12)),
            Some(&["pip"][..])
        );
        assert_eq!(
            upstream_projects("def _find_wheel_pkg_dir_pip():", (3, 13)),
            Some(&["pip"][..])
        );
        // A source that names neither is not CPython's.
        assert_eq!(upstream_projects("import sys", (3, 13)), None);
    }

    #[test]
    fn cpythons_wheel_folder_gives_the_last_wheel_of_each_project_by_name() {
        let names = |found: Option<Option<Vec<PathBuf>>>| -> Option<Option<Vec<String>>> {
            found.map(|f| {
                f.map(|paths| {
                    paths
                        .iter()
                        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                        .collect()
                })
            })
        };
        let dir = folder(&[
            "pip-23.0.1-py3-none-any.whl",
            "pip-9.0-py3-none-any.whl",
            "setuptools-66.1.1-py3-none-any.whl",
            "pip-24.0-py3-none-any.whl.part",
        ]);
        // By name, as Python sorts it: `pip-9.0` after `pip-23.0.1`.
        assert_eq!(
            names(picked_in(dir.path(), &["setuptools", "pip"])),
            Some(Some(vec![
                "setuptools-66.1.1-py3-none-any.whl".to_string(),
                "pip-9.0-py3-none-any.whl".to_string()
            ]))
        );
        // Not every project there: ensurepip takes its `_bundled` wheels.
        assert_eq!(names(picked_in(dir.path(), &["wheel", "pip"])), Some(None));
        assert_eq!(
            names(picked_in(&dir.path().join("absent"), &["pip"])),
            Some(None)
        );
        // A name this does not sort as Python would, or not a wheel's: ensurepip runs.
        use std::os::unix::ffi::OsStrExt;
        let odd = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"pip-\xff.whl"));
        std::fs::write(&odd, b"").unwrap();
        assert_eq!(names(picked_in(dir.path(), &["pip"])), None);
        std::fs::remove_file(&odd).unwrap();
        std::fs::write(dir.path().join("pip-zz.whl"), b"").unwrap();
        assert_eq!(names(picked_in(dir.path(), &["pip"])), None);
    }
}
