//! The two tiers: where each lives, which one a caller gets, and how one is created.
//!
//! A tier folder holds `venv/`, `history/`, `snapshots/`, `store/`, `config.toml` and `.lock`.
//! The user tier is `~/.local/python-packages` (`PYCTL_HOME` overrides); the system tier is
//! `/opt/system-python` (`PYCTL_SYSTEM_PREFIX` overrides, for tests). A Python other than the
//! default one gets its own tier in `py3X/` under the top folder, with the same inner layout.

pub mod config;
pub mod folders;
pub mod gc;
pub mod history;
pub mod shell;
pub mod shims;
pub mod snapshot;
pub mod store;
mod venv;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::context::Context;
use crate::python::pyvenv::PyvenvCfg;
use crate::sys::fsutil::root_controlled;
use crate::sys::fsutil::TierLock;
use crate::tier::config::Config;
use crate::ui::Ui;

pub use venv::{create_venv, create_venv_with, PipFrom};

pub const DEFAULT_SYSTEM_PREFIX: &str = "/opt/system-python";
/// The user tier's folder, relative to the home folder.
pub const USER_TIER_DIR: &str = ".local/python-packages";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierKind {
    User,
    System,
}

impl TierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TierKind::User => "user",
            TierKind::System => "system",
        }
    }
}

/// A tier: a folder with a venv, its history, snapshots and store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub kind: TierKind,
    pub root: PathBuf,
}

impl Tier {
    pub fn new(kind: TierKind, root: PathBuf) -> Tier {
        Tier { kind, root }
    }

    pub fn venv(&self) -> PathBuf {
        self.root.join("venv")
    }
    pub fn bin_dir(&self) -> PathBuf {
        self.venv().join("bin")
    }
    pub fn python(&self) -> PathBuf {
        self.bin_dir().join("python")
    }
    pub fn history_dir(&self) -> PathBuf {
        self.root.join("history")
    }
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// `3.12` for a tier in a `py312/` folder (another Python than the default one).
    pub fn version_dir_minor(&self) -> Option<String> {
        let name = self.root.file_name()?.to_str()?;
        let digits = name.strip_prefix("py3")?;
        (!digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("3.{digits}"))
    }

    /// Whether the venv exists (its `pyvenv.cfg` is there).
    pub fn venv_exists(&self) -> bool {
        self.venv().join("pyvenv.cfg").is_file()
    }

    /// A venv `venv` was killed in the middle of making: its `pyvenv.cfg` is written, its
    /// `bin/python` not yet (not even a dangling link, which a Python gone leaves). Not a
    /// Python change: whatever was making it is made again.
    pub fn venv_half_made(&self) -> bool {
        self.venv_exists() && std::fs::symlink_metadata(self.python()).is_err()
    }

    /// Whether the folder has been set up as a tier (the lock file is the marker).
    pub fn is_provisioned(&self) -> bool {
        self.lock_path().is_file()
    }

    /// The Python version the venv was made with, from `pyvenv.cfg`.
    pub fn python_version(&self) -> Option<String> {
        PyvenvCfg::read(&self.venv())?.version()
    }

    /// The interpreter the venv was made with, from `pyvenv.cfg`, when it is still there.
    pub fn base_python(&self) -> Option<PathBuf> {
        PyvenvCfg::read(&self.venv())?.base_python()
    }

    pub fn config(&self) -> Result<Config> {
        Config::load(Some(&self.config_path()))
    }

    /// The lock is its owner's alone: `flock` works on a read-only descriptor, so a lock others
    /// could open is a lock others could hold.
    fn lock_mode(&self) -> u32 {
        0o600
    }

    /// Takes the tier lock, saying so when another process holds it. Every write holds it, so
    /// this is where a tier whose folders were replaced by symbolic links is refused.
    pub fn lock(&self, ctx: &Context, on_wait: impl FnOnce()) -> Result<TierLock> {
        self.check_no_symlinks()?;
        if self.owner() == Some(ctx.uid) {
            self.make_private()?;
        }
        let timeout = ctx
            .var_str("PYCTL_LOCK_TIMEOUT")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(300);
        TierLock::acquire(
            &self.lock_path(),
            self.lock_mode(),
            Duration::from_secs(timeout),
            on_wait,
        )
    }

    /// [`Tier::lock`], telling the user when it waits for another pip to finish.
    pub fn lock_waiting(&self, ctx: &Context, ui: &Ui) -> Result<TierLock> {
        self.lock(ctx, || {
            ui.info("waiting for another pip in this tier to finish...")
        })
    }

    /// Refuses `history/`, `snapshots/`, `store/` or the lock when they are symbolic links:
    /// pyctl would read and write wherever they point. (The tier folder itself may be a link:
    /// the user chose where it lives.)
    pub fn check_no_symlinks(&self) -> Result<()> {
        for path in [
            self.history_dir(),
            self.snapshots_dir(),
            self.store_dir(),
            self.lock_path(),
        ] {
            crate::sys::fsutil::refuse_symlink(&path)?;
        }
        Ok(())
    }

    /// Creates the tier's folders (not the venv). Idempotent. A user tier's folder is made
    /// private (0700) and a system tier's history root's alone (0700): see `make_private`.
    pub fn create_dirs(&self) -> Result<()> {
        for dir in [
            self.root.clone(),
            self.history_dir(),
            self.snapshots_dir(),
            self.store_dir(),
        ] {
            let existed = dir.is_dir();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create folder", dir.display()))?;
            if !existed && self.private_dir(&dir) {
                set_mode(&dir, 0o700)?;
            }
        }
        Ok(())
    }

    /// Folders of the tier no other account may open: a user tier's own folder (so its history,
    /// store, lock and venv are its owner's alone) and the system tier's history.
    fn private_dir(&self, dir: &Path) -> bool {
        match self.kind {
            TierKind::User => dir == self.root,
            TierKind::System => dir == self.history_dir(),
        }
    }

    /// Tightens a tier made by an earlier version (a 0755 folder, a 0644 lock) to the modes
    /// `create_dirs` and the lock now give, saying so in one line. Called before every write.
    pub fn make_private(&self) -> Result<()> {
        for dir in [self.root.clone(), self.history_dir()] {
            if !self.private_dir(&dir) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&dir) else {
                continue;
            };
            let mode = meta.mode() & 0o7777;
            if meta.is_dir() && meta.uid() == nix::unistd::geteuid().as_raw() && mode & 0o077 != 0 {
                set_mode(&dir, mode & 0o7700)?;
                crate::ui::Ui::plain().info(&format!(
                    "{} was readable by other accounts (mode {mode:04o}); made it private ({:04o})",
                    dir.display(),
                    mode & 0o7700
                ));
            }
        }
        let lock = self.lock_path();
        if let Ok(meta) = std::fs::symlink_metadata(&lock) {
            if meta.is_file() && meta.mode() & 0o077 != 0 {
                set_mode(&lock, 0o600)?;
            }
        }
        Ok(())
    }

    /// The owner uid of the tier folder, if it exists.
    pub fn owner(&self) -> Option<u32> {
        std::fs::metadata(&self.root).ok().map(|m| m.uid())
    }

    /// Refuses when the caller does not own this tier: nobody writes into another's tier, and
    /// root never creates files inside a user's.
    pub fn check_owner(&self, ctx: &Context) -> Result<()> {
        if let Some(owner) = self.owner() {
            if owner != ctx.uid {
                bail!(
                    "{} belongs to uid {owner}, not to you (uid {}); pyctl will not change \
                     another account's tier{}",
                    self.root.display(),
                    ctx.uid,
                    if ctx.is_root() {
                        ": as root, plain `pip` goes to the system tier"
                    } else {
                        ""
                    }
                );
            }
        }
        Ok(())
    }

    /// Refuses, before anything is recorded, when the venv's interpreter is gone (its link
    /// dangles after a Python upgrade or removal): pip cannot run, and `doctor --fix` rebuilds
    /// the venv on the Python that is there now.
    pub fn check_interpreter(&self) -> Result<()> {
        let python = self.python();
        if std::fs::metadata(&python).is_ok_and(|m| m.is_file()) {
            return Ok(());
        }
        let points_to = std::fs::read_link(self.bin_dir().join("python3"))
            .map(|p| format!(" (bin/python3 points to {}, which is missing)", p.display()))
            .unwrap_or_default();
        bail!(
            "{}: the venv's Python is missing{points_to}; `{}pyctl doctor --fix` rebuilds the \
             venv on the installed Python and puts the same packages back",
            python.display(),
            if self.kind == TierKind::System {
                "sudo "
            } else {
                ""
            }
        )
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("{}: cannot set mode {mode:04o}", path.display()))
}

/// `3.11.2` → `3.11`.
pub fn minor_version(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The user tier's top folder for this caller.
pub fn user_root(ctx: &Context) -> Result<PathBuf> {
    if ctx.is_root() {
        bail!("root has no user tier: as root, pip goes to the system tier");
    }
    if let Some(p) = ctx.var_path("PYCTL_HOME") {
        if !p.is_absolute() {
            bail!("PYCTL_HOME={} is not an absolute path", p.display());
        }
        return Ok(p);
    }
    let home = ctx
        .home
        .clone()
        .context("cannot tell your home folder: set HOME")?;
    Ok(home.join(USER_TIER_DIR))
}

/// The system tier's folder. As root, `PYCTL_SYSTEM_PREFIX` is honoured only when it names a
/// folder that root owns and nobody else can write (so `sudo -E` cannot point root elsewhere).
pub fn system_root(ctx: &Context) -> PathBuf {
    match ctx.var_path("PYCTL_SYSTEM_PREFIX") {
        Some(p) if p.is_absolute() && (!ctx.is_root() || root_controlled(&p)) => p,
        Some(p) => {
            log::warn!(
                "ignoring PYCTL_SYSTEM_PREFIX={}: not a root-owned, root-only folder",
                p.display()
            );
            PathBuf::from(DEFAULT_SYSTEM_PREFIX)
        }
        None => PathBuf::from(DEFAULT_SYSTEM_PREFIX),
    }
}

/// Where a new venv of `tier` may take pip from: a user's tier copies the bytecode the system
/// tier's pip has (root's files, checked again file by file when copied).
pub fn pip_from(ctx: &Context, tier: &Tier) -> PipFrom {
    PipFrom {
        as_root: ctx.is_root(),
        seed: (tier.kind == TierKind::User).then(|| system_root(ctx).join("venv")),
    }
}

/// Whether root may run a venv's interpreter: its `bin/` and the real file `bin/python` resolves
/// to, and every folder above each, are root's alone.
pub fn root_trusts_venv(venv: &Path) -> bool {
    let python = venv.join("bin/python");
    root_controlled(&venv.join("bin"))
        && std::fs::canonicalize(&python).is_ok_and(|real| root_controlled(&real))
}

/// The tier for a caller: system for root, user otherwise. `python` (`3.X`) selects the tier of
/// another Python version; `None` is the default interpreter's tier.
pub fn tier_for(ctx: &Context, python: Option<&str>) -> Result<Tier> {
    let (kind, top) = if ctx.is_root() {
        (TierKind::System, system_root(ctx))
    } else {
        (TierKind::User, user_root(ctx)?)
    };
    let top_tier = Tier::new(kind, top.clone());
    let Some(wanted) = python else {
        return Ok(top_tier);
    };
    let default_minor = match top_tier.python_version() {
        Some(v) => Some(minor_version(&v)),
        None => default_python(ctx)
            .ok()
            .and_then(|p| interpreter_version(&p).ok())
            .map(|v| minor_version(&v)),
    };
    if default_minor.as_deref() == Some(wanted) {
        return Ok(top_tier);
    }
    Ok(Tier::new(kind, top.join(version_dir_name(wanted))))
}

/// The tier commands work on: the one of `pyctl --python 3.X` when given, else the default
/// interpreter's. A version tier not set up yet needs its interpreter installed.
pub fn current(ctx: &Context) -> Result<Tier> {
    let tier = tier_for(ctx, ctx.python.as_deref())?;
    if let Some(minor) = &ctx.python {
        if tier.version_dir_minor().is_some() && !tier.is_provisioned() {
            python_for_version(ctx, minor).with_context(|| {
                format!(
                    "--python {minor}: no tier for it in {}",
                    tier.root.display()
                )
            })?;
        }
    }
    Ok(tier)
}

/// Every tier of the caller: the top one, then each `py3X/` one set up under it, by version.
pub fn all_tiers(ctx: &Context) -> Result<Vec<Tier>> {
    let top = tier_for(ctx, None)?;
    let mut others: Vec<(u32, Tier)> = std::fs::read_dir(&top.root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| Tier::new(top.kind, e.path()))
        .filter(|t| t.is_provisioned() || t.venv_exists())
        .filter_map(|t| {
            let minor = t.version_dir_minor()?;
            Some((minor[2..].parse().ok()?, t))
        })
        .collect();
    others.sort_by_key(|(n, _)| *n);
    let mut tiers = vec![top];
    tiers.extend(others.into_iter().map(|(_, t)| t));
    Ok(tiers)
}

/// `3.12` → `py312`.
pub fn version_dir_name(minor: &str) -> String {
    format!("py{}", minor.replace('.', ""))
}

/// The tier that owns a venv path, if that venv is a pyctl tier's (`<tier>/venv` with the lock
/// file beside it).
pub fn tier_of_venv(ctx: &Context, venv: &Path) -> Option<Tier> {
    if venv.file_name()? != "venv" {
        return None;
    }
    let root = venv.parent()?;
    if !root.join(".lock").is_file() || !root.join("history").is_dir() {
        return None;
    }
    let system = system_root(ctx);
    let kind = if root == system || root.parent() == Some(system.as_path()) {
        TierKind::System
    } else {
        TierKind::User
    };
    Some(Tier::new(kind, root.to_path_buf()))
}

/// The interpreter new tiers are made with: `PYCTL_PYTHON` (not for root), `/usr/bin/python3`,
/// or `python3` on `PATH` (not for root).
pub fn default_python(ctx: &Context) -> Result<PathBuf> {
    if !ctx.is_root() {
        if let Some(p) = ctx.var_path("PYCTL_PYTHON") {
            return Ok(p);
        }
    }
    let system = PathBuf::from("/usr/bin/python3");
    if system.exists() {
        return Ok(system);
    }
    if !ctx.is_root() {
        if let Some(found) = find_on_path(ctx, "python3") {
            return Ok(found);
        }
    }
    bail!("no python3 found (looked for /usr/bin/python3 and on PATH); install python3 and its venv module")
}

/// `python3.X` for a requested minor version, or an error saying it is not installed.
pub fn python_for_version(ctx: &Context, minor: &str) -> Result<PathBuf> {
    let name = format!("python{minor}");
    let system = Path::new("/usr/bin").join(&name);
    if system.exists() {
        return Ok(system);
    }
    if !ctx.is_root() {
        if let Some(found) = find_on_path(ctx, &name) {
            return Ok(found);
        }
    }
    bail!("Python {minor} is not installed ({name} not found in /usr/bin or on PATH)")
}

fn find_on_path(ctx: &Context, name: &str) -> Option<PathBuf> {
    let path = ctx.var("PATH")?;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p) && !p.to_string_lossy().contains("/python-packages/"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Asks an interpreter for its version (`3.11.2`).
pub fn interpreter_version(python: &Path) -> Result<String> {
    let out = Command::new(python)
        .args([
            "-I",
            "-c",
            "import sys; print('%d.%d.%d' % sys.version_info[:3])",
        ])
        .output()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    if !out.status.success() {
        bail!(
            "{}: failed to report its version: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
