//! The process context: environment, identity and home, read once at start and handed down, so
//! no other module reads `std::env` and tests can point everything at a temp dir.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use nix::unistd::{Uid, User};

#[derive(Debug, Clone)]
pub struct Context {
    env: HashMap<OsString, OsString>,
    /// Effective uid: what decides the tier.
    pub uid: u32,
    pub gid: u32,
    /// The user's login name, or the uid as text when it has no passwd entry.
    pub user_name: String,
    /// Home folder: `$HOME` for ordinary users, the passwd entry for root (sudo may leave the
    /// caller's `HOME` in place; root must never follow it).
    pub home: Option<PathBuf>,
    /// The running pyctl binary, which shims and wrappers exec.
    pub exe: PathBuf,
    /// The Python version (`3.X`) chosen with `pyctl --python`: its tier is the one commands
    /// work on. `None`: the default interpreter's tier.
    pub python: Option<String>,
}

impl Context {
    pub fn from_process() -> Context {
        let env: HashMap<OsString, OsString> = std::env::vars_os().collect();
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let passwd = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let user_name = passwd
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| uid.to_string());
        let home = if uid == 0 {
            passwd.as_ref().map(|u| u.dir.clone())
        } else {
            env.get(OsStr::new("HOME"))
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .or_else(|| passwd.as_ref().map(|u| u.dir.clone()))
        };
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.canonicalize().ok())
            .unwrap_or_else(|| PathBuf::from("/usr/bin/pyctl"));
        Context {
            env,
            uid,
            gid,
            user_name,
            home,
            exe,
            python: None,
        }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// An environment variable; empty values count as unset.
    pub fn var(&self, key: &str) -> Option<&OsStr> {
        self.env
            .get(OsStr::new(key))
            .map(OsString::as_os_str)
            .filter(|v| !v.is_empty())
    }

    pub fn var_path(&self, key: &str) -> Option<PathBuf> {
        self.var(key).map(PathBuf::from)
    }

    pub fn var_str(&self, key: &str) -> Option<String> {
        self.var(key).map(|v| v.to_string_lossy().into_owned())
    }

    pub fn env(&self) -> &HashMap<OsString, OsString> {
        &self.env
    }

    /// Whether a folder is on `PATH`, and at which position.
    pub fn path_position(&self, dir: &Path) -> Option<usize> {
        let path = self.var("PATH")?;
        std::env::split_paths(path).position(|p| p == dir)
    }

    /// Whether colours are wanted by the environment (`NO_COLOR` turns them off).
    pub fn no_color(&self) -> bool {
        self.env.contains_key(OsStr::new("NO_COLOR"))
    }
}
