//! The background deletion of a tier's `.trash-*` folders (after undo, redo, restore and
//! clean; `pyctl __delete-trash PATH`): one deleter per folder, under a lock of the tier
//! owner's alone, and what parking set aside on the way deleted too. What the deletion itself
//! does (reporting unlinks, keeping folders) is [`super::vouch`]'s.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{bail, Result};
use nix::fcntl::{Flock, FlockArg};

/// Deletes a `.trash-*` folder (the background deletion after undo, redo, restore and clean),
/// reporting the unlinks of files that had other links (see the module's notes) in a
/// `.unlinked-*.json` beside it, written before the folder itself goes.
pub fn delete_trash(trash: &Path) -> Result<()> {
    let name = trash.file_name().map(|n| n.to_string_lossy());
    let (Some(parent), Some(name)) = (trash.parent(), name.filter(|n| n.starts_with(".trash-")))
    else {
        bail!("{}: not a .trash-* folder of a tier", trash.display());
    };
    // One deleter per folder: every command starts one for each `.trash-*` it finds (to finish
    // what a kill interrupted), also for a folder whose own deleter is still at work. Two at
    // once would park the same folders against each other, and the one that lost would stop
    // before deleting what it had set aside. The lock is a file of the tier owner's alone
    // (0600), not the folder, which any account that can read it could lock for good.
    let lock_path = parent.join(format!("{LOCK_PREFIX}{name}"));
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&lock_path);
    let held = match opened.map(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock)) {
        Ok(Err((_, nix::errno::Errno::EWOULDBLOCK))) => return Ok(()),
        Ok(held) => held.ok(),
        Err(e) => {
            log::warn!(
                "{}: cannot lock ({e}): deleting unlocked",
                lock_path.display()
            );
            None
        }
    };
    let deleted = super::vouch::delete_one(trash);
    // Parking sets a tree aside when the entry already has one parked (or the parking failed
    // half-way): this process made those `.trash-parked-*` folders, and no later command may
    // come to delete them, so they go now, whatever became of `trash`.
    delete_own_parked(parent);
    if held.is_some() {
        let _ = std::fs::remove_file(&lock_path);
    }
    deleted
}

/// The lock of the deletion of `.trash-NAME`: `.lock-.trash-NAME` beside it.
pub const LOCK_PREFIX: &str = ".lock-";

/// Removes the deletion locks in `tier_root` whose `.trash-*` folder is gone (left by a
/// deleter killed between the two).
pub fn sweep_locks(tier_root: &Path) {
    let Ok(read) = std::fs::read_dir(tier_root) else {
        return;
    };
    for item in read.filter_map(Result::ok) {
        let name = item.file_name().to_string_lossy().into_owned();
        if let Some(trash) = name.strip_prefix(LOCK_PREFIX) {
            if trash.starts_with(".trash-")
                && std::fs::symlink_metadata(tier_root.join(trash)).is_err()
            {
                let _ = std::fs::remove_file(item.path());
            }
        }
    }
}

/// Deletes the `.trash-parked-*` folders this process made in `parent`.
fn delete_own_parked(parent: &Path) {
    let mine = format!(".trash-parked-{}-", std::process::id());
    if let Ok(read) = std::fs::read_dir(parent) {
        for item in read.filter_map(std::result::Result::ok) {
            if item.file_name().to_string_lossy().starts_with(&mine) {
                if let Err(e) = super::vouch::delete_one(&item.path()) {
                    log::warn!("{e:#}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second deleter of one folder leaves it to the first; what this process set aside
    /// goes even when its own folder could not be deleted.
    #[test]
    fn one_deleter_per_folder_and_its_own_parked_trash_always_goes() {
        let dir = tempfile::tempdir().unwrap();
        let trash = dir.path().join(".trash-venv-1-2");
        std::fs::create_dir_all(trash.join("lib")).unwrap();
        std::fs::write(trash.join("lib/f"), b"x").unwrap();
        // Another account can lock the folder itself: that stops nothing.
        let anyone = Flock::lock(
            std::fs::File::open(&trash).unwrap(),
            FlockArg::LockExclusiveNonblock,
        )
        .unwrap();
        let lock = dir.path().join(".lock-.trash-venv-1-2");
        std::fs::write(&lock, b"").unwrap();
        let other = Flock::lock(
            std::fs::File::open(&lock).unwrap(),
            FlockArg::LockExclusiveNonblock,
        )
        .unwrap();
        delete_trash(&trash).unwrap();
        assert!(trash.join("lib/f").is_file(), "left to the deleter at work");
        drop(other);
        delete_trash(&trash).unwrap();
        assert!(!trash.exists());
        assert!(!lock.exists(), "the lock goes with the folder");
        drop(anyone);
        // A lock whose folder is gone (its deleter killed between the two) is swept.
        std::fs::write(&lock, b"").unwrap();
        let kept = dir.path().join(".lock-.trash-kept");
        std::fs::write(&kept, b"").unwrap();
        std::fs::create_dir(dir.path().join(".trash-kept")).unwrap();
        sweep_locks(dir.path());
        assert!(!lock.exists() && kept.exists());

        let mine = dir
            .path()
            .join(format!(".trash-parked-{}-5", std::process::id()));
        std::fs::create_dir_all(mine.join("0")).unwrap();
        std::fs::write(mine.join("0/m.py"), b"x").unwrap();
        assert!(delete_trash(&dir.path().join(".trash-venv-gone")).is_err());
        assert!(!mine.exists());
    }
}
