//! Health checks shared by `pyctl status`, `pyctl system status` and `pyctl doctor`: each one
//! finds one kind of problem in a tier, and each command words it and says how to fix it in its
//! own way (doctor also repairs).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::python::freeze::requirement_name;
use crate::python::inventory::PackageSet;
use crate::tier::history::{Entry, Log};
use crate::tier::Tier;

/// The venv is there but its `bin/python` points at nothing (a distro Python upgrade removed
/// the interpreter it was made with).
pub fn interpreter_missing(tier: &Tier) -> bool {
    tier.venv_exists() && !tier.python().exists()
}

/// The problem of a venv without pip (`pip uninstall -y pip`): every pip command through the
/// shims fails with "No module named pip". Names the entry that removed it when history tells.
pub fn no_pip(set: &PackageSet, log: &Log) -> Option<String> {
    if set.get("pip").is_some() {
        return None;
    }
    let by = log
        .entries
        .iter()
        .rev()
        .find(|e| {
            e.changes()
                .is_some_and(|c| c.removed.iter().any(|l| requirement_name(l) == "pip"))
        })
        .map(|e| format!(" (removed by #{}: {})", e.id, e.before.command))
        .unwrap_or_default();
    Some(format!(
        "the venv has no pip{by}: every `pip` command fails with \"No module named pip\""
    ))
}

/// Recorded operations without their after-half: running (when the tier's lock is held) or
/// interrupted.
pub fn unfinished(log: &Log) -> impl Iterator<Item = &Entry> {
    log.entries.iter().filter(|e| !e.is_complete())
}

/// Whether the venv was changed outside pyctl (`python -m pip`) since the last recorded
/// operation, which finished.
pub fn changed_outside(set: &PackageSet, log: &Log) -> bool {
    log.last().is_some_and(Entry::is_complete)
        && log
            .last_known_freeze()
            .is_some_and(|known| set.freeze() != known)
}

/// What is wrong with the tier's `bin` folder on PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// Not on PATH: `pip` finds the distro's.
    Missing,
    /// After `/usr/bin`: the distro's commands come first.
    AfterUsrBin,
}

/// Where the tier's `bin` folder stands on the caller's PATH, when that is wrong.
pub fn path_problem(ctx: &Context, tier: &Tier) -> Option<PathProblem> {
    let Some(pos) = ctx.path_position(&tier.bin_dir()) else {
        return Some(PathProblem::Missing);
    };
    ctx.path_position(Path::new("/usr/bin"))
        .is_some_and(|usr| usr < pos)
        .then_some(PathProblem::AfterUsrBin)
}

/// Mode of the system tier's lock: only root opens it.
const LOCK_MODE: u32 = 0o600;

/// A path under the system tier whose owner or mode is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadPath {
    pub path: PathBuf,
    pub problem: String,
}

/// The mode a path under the system tier must have, given its current one: group and world
/// write removed, setuid/setgid removed; the lock file and the history are root's alone.
fn wanted_mode(tier: &Tier, path: &Path, mode: u32) -> u32 {
    if path == tier.lock_path() {
        return LOCK_MODE;
    }
    if path == tier.history_dir() {
        return mode & 0o7700 & !0o6000;
    }
    mode & 0o7777 & !0o022 & !0o6000
}

/// Every path under the system tier that is not root's or that others could write (symlinks
/// are judged by their owner only: their mode means nothing).
pub fn audit_system_tier(tier: &Tier) -> Vec<BadPath> {
    let mut bad = Vec::new();
    for entry in walkdir::WalkDir::new(&tier.root)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
    {
        let path = entry.path();
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        let mut problems = Vec::new();
        if meta.uid() != 0 || meta.gid() != 0 {
            problems.push(format!("owned by {}:{}", meta.uid(), meta.gid()));
        }
        if !meta.file_type().is_symlink() {
            let mode = meta.mode() & 0o7777;
            let wanted = wanted_mode(tier, path, mode);
            if mode != wanted {
                problems.push(format!("mode {mode:04o}, should be {wanted:04o}"));
            }
        }
        if !problems.is_empty() {
            bad.push(BadPath {
                path: path.to_path_buf(),
                problem: problems.join(", "),
            });
        }
    }
    bad
}

/// Makes every path under the system tier root-owned and not writable by others. Returns how
/// many paths it changed.
pub fn repair_system_tier(tier: &Tier) -> Result<usize> {
    let bad = audit_system_tier(tier);
    for b in &bad {
        let meta = b
            .path
            .symlink_metadata()
            .with_context(|| format!("{}: cannot inspect", b.path.display()))?;
        if meta.uid() != 0 || meta.gid() != 0 {
            nix::unistd::fchownat(
                None,
                &b.path,
                Some(nix::unistd::Uid::from_raw(0)),
                Some(nix::unistd::Gid::from_raw(0)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .with_context(|| format!("{}: cannot give it to root", b.path.display()))?;
        }
        if !meta.file_type().is_symlink() {
            let mode = meta.mode() & 0o7777;
            let wanted = wanted_mode(tier, &b.path, mode);
            if mode != wanted {
                std::fs::set_permissions(&b.path, std::fs::Permissions::from_mode(wanted))
                    .with_context(|| {
                        format!("{}: cannot set mode {wanted:04o}", b.path.display())
                    })?;
            }
        }
    }
    Ok(bad.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::TierKind;

    #[test]
    fn wanted_modes_drop_group_and_world_write_and_setid() {
        let tier = Tier::new(TierKind::System, PathBuf::from("/opt/x"));
        assert_eq!(wanted_mode(&tier, Path::new("/opt/x/venv"), 0o777), 0o755);
        assert_eq!(wanted_mode(&tier, Path::new("/opt/x/a"), 0o664), 0o644);
        assert_eq!(wanted_mode(&tier, Path::new("/opt/x/a"), 0o4755), 0o755);
        assert_eq!(wanted_mode(&tier, Path::new("/opt/x/a"), 0o600), 0o600);
        assert_eq!(wanted_mode(&tier, Path::new("/opt/x/.lock"), 0o644), 0o600);
    }

    #[test]
    fn the_audit_finds_what_others_could_write_and_repair_clears_it() {
        if !nix::unistd::geteuid().is_root() {
            return; // Files made by another account are never root's.
        }
        let dir = tempfile::tempdir().unwrap();
        let tier = Tier::new(TierKind::System, dir.path().join("sys"));
        std::fs::create_dir_all(tier.venv()).unwrap();
        std::fs::set_permissions(&tier.root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(tier.venv(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(audit_system_tier(&tier), vec![]);
        let open = tier.venv().join("open");
        std::fs::write(&open, "x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
        let setuid = tier.venv().join("setuid");
        std::fs::write(&setuid, "x").unwrap();
        std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let bad = audit_system_tier(&tier);
        let paths: Vec<&Path> = bad.iter().map(|b| b.path.as_path()).collect();
        assert_eq!(paths.len(), 2, "{bad:?}");
        assert!(paths.contains(&open.as_path()) && paths.contains(&setuid.as_path()));
        assert!(bad.iter().any(|b| b.problem == "mode 0666, should be 0644"));
        assert_eq!(repair_system_tier(&tier).unwrap(), 2);
        assert_eq!(audit_system_tier(&tier), vec![]);
        assert_eq!(open.metadata().unwrap().mode() & 0o7777, 0o644);
        assert_eq!(setuid.metadata().unwrap().mode() & 0o7777, 0o755);
    }
}
