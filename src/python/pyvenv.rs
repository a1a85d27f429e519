//! A venv's `pyvenv.cfg`, the one reader of it. `python -m venv` writes `key = value` lines
//! (`home`, `include-system-site-packages`, `version`, `executable`, `command`; `create_configuration`
//! in CPython's `Lib/venv/__init__.py`); `site.py` reads them the same way: split at the first
//! `=`, both sides trimmed, lines without one ignored.

use std::path::{Path, PathBuf};

/// The keys that tell which interpreter a venv runs, and whether it sees the system's packages.
const INTERPRETER_KEYS: [&str; 3] = ["home", "version", "include-system-site-packages"];

/// A parsed `pyvenv.cfg`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PyvenvCfg {
    /// `(key, value)` of each `key = value` line, trimmed, in file order.
    entries: Vec<(String, String)>,
}

impl PyvenvCfg {
    /// The `pyvenv.cfg` of the venv at `venv`; `None` when there is none or it cannot be read.
    pub fn read(venv: &Path) -> Option<PyvenvCfg> {
        let text = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
        Some(PyvenvCfg::parse(&text))
    }

    pub fn parse(text: &str) -> PyvenvCfg {
        let entries = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        PyvenvCfg { entries }
    }

    /// The value of the first `key` line.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The Python version (`3.11.2`): `version`, else `version_info`. The value names shims
    /// (`pip3.X`) and tiers, so anything but a version is ignored: a damaged file can never make
    /// a name with `/` or `..` in it.
    pub fn version(&self) -> Option<String> {
        let mut fallback = None;
        for (key, value) in &self.entries {
            if !is_version_text(value) {
                continue;
            }
            match key.as_str() {
                "version" => return Some(value.clone()),
                "version_info" => fallback = Some(value.clone()),
                _ => {}
            }
        }
        fallback
    }

    /// (major, minor) of [`PyvenvCfg::version`].
    pub fn major_minor(&self) -> Option<(u64, u64)> {
        let version = self.version()?;
        let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??))
    }

    /// `home`, the folder of the interpreter the venv was made from, when it is absolute.
    pub fn home(&self) -> Option<PathBuf> {
        self.get("home")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    }

    /// The interpreter the venv was made from, when it still exists: the path `command` ran (so
    /// a new venv gets the same `bin/python*` links), else `executable`, else `home` + `python3`.
    pub fn base_python(&self) -> Option<PathBuf> {
        let path = |key: &str| self.get(key).map(PathBuf::from);
        let command = self
            .get("command")
            .and_then(|c| c.split(' ').next())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute() && p.exists());
        command
            .or_else(|| path("executable").filter(|p| p.exists()))
            .or_else(|| {
                path("home")
                    .map(|h| h.join("python3"))
                    .filter(|p| p.exists())
            })
    }

    /// Whether two venvs run the same interpreter the same way: their `home`, `version` and
    /// `include-system-site-packages` lines are the same.
    pub fn same_interpreter(&self, other: &PyvenvCfg) -> bool {
        let interpreter = |cfg: &PyvenvCfg| -> Vec<(String, String)> {
            cfg.entries
                .iter()
                .filter(|(k, _)| INTERPRETER_KEYS.contains(&k.as_str()))
                .cloned()
                .collect()
        };
        interpreter(self) == interpreter(other)
    }
}

/// `3.11.2`, `3.13.0rc1`, `3.12.1.final.0`: a number, a dot and a number first, then only ASCII
/// letters, digits and dots.
fn is_version_text(value: &str) -> bool {
    let mut parts = value.split('.');
    let number =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    number(parts.next())
        && number(parts.next())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_of(cfg: &str) -> Option<String> {
        PyvenvCfg::parse(cfg).version()
    }

    #[test]
    fn pyvenv_cfg_versions_are_read_and_anything_else_ignored() {
        let real = "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n";
        assert_eq!(version_of(real).as_deref(), Some("3.11.2"));
        assert_eq!(
            version_of("version_info = 3.12.1.final.0\n").as_deref(),
            Some("3.12.1.final.0")
        );
        assert_eq!(
            version_of("version = 3.13.0rc1").as_deref(),
            Some("3.13.0rc1")
        );
        // Found by the pyvenv_cfg fuzz target: an empty value was taken as the version.
        assert_eq!(version_of("version = \n"), None);
        // A bad `version` falls back to a good `version_info`.
        assert_eq!(
            version_of("version = 3/../../x\nversion_info = 3.11.2.final.0\n").as_deref(),
            Some("3.11.2.final.0")
        );
        for bad in [
            "3",
            "3.",
            ".11",
            "3.x",
            "3.11/..",
            "3.11 2",
            "a.b",
            "3.11\u{0}",
        ] {
            assert_eq!(version_of(&format!("version = {bad}\n")), None, "{bad:?}");
        }
    }

    #[test]
    fn a_file_on_disk_is_read_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PyvenvCfg::read(dir.path()), None);
        std::fs::write(
            dir.path().join("pyvenv.cfg"),
            "home = /usr/bin\nversion = 3.12.3\nexecutable = /usr/bin/python3.12\n",
        )
        .unwrap();
        let cfg = PyvenvCfg::read(dir.path()).unwrap();
        assert_eq!(cfg.version().as_deref(), Some("3.12.3"));
        assert_eq!(cfg.home(), Some(PathBuf::from("/usr/bin")));
        assert_eq!(cfg.get("executable"), Some("/usr/bin/python3.12"));
        assert_eq!(cfg.get("missing"), None);
    }

    #[test]
    fn home_must_be_absolute_and_the_base_python_must_exist() {
        assert_eq!(PyvenvCfg::parse("home = usr/bin\n").home(), None);
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("python3");
        std::fs::write(&python, "").unwrap();
        let home = format!("home = {}\n", dir.path().display());
        assert_eq!(PyvenvCfg::parse(&home).base_python(), Some(python.clone()));
        // `command` wins over `home`, but only when the program it names is there.
        let other = dir.path().join("python3.12");
        std::fs::write(&other, "").unwrap();
        let command = format!("{home}command = {} -m venv /x\n", other.display());
        assert_eq!(PyvenvCfg::parse(&command).base_python(), Some(other));
        let gone = format!("{home}command = /nonexistent/python -m venv /x\n");
        assert_eq!(PyvenvCfg::parse(&gone).base_python(), Some(python));
        assert_eq!(
            PyvenvCfg::parse("home = /nonexistent\n").base_python(),
            None
        );
    }

    #[test]
    fn the_same_interpreter_is_told_by_home_version_and_system_packages() {
        let a = PyvenvCfg::parse(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n\
             command = /usr/bin/python3 -m venv /v\n",
        );
        let b = PyvenvCfg::parse(
            "home=/usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n\
             command = /usr/bin/python3 -m venv --without-pip /v\n",
        );
        assert!(a.same_interpreter(&b));
        let newer = PyvenvCfg::parse(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.4\n",
        );
        assert!(!a.same_interpreter(&newer));
        let system = PyvenvCfg::parse(
            "home = /usr/bin\ninclude-system-site-packages = true\nversion = 3.11.2\n",
        );
        assert!(!a.same_interpreter(&system));
    }
}
