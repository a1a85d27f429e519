//! Filesystem primitives every on-disk write goes through: atomic replacement and the tier lock.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nix::fcntl::{Flock, FlockArg};
use std::os::unix::fs::MetadataExt;

/// How the temp files of `write_atomic` begin.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Removes the temp files a killed `write_atomic` left in `dir` (or in `paths` already found).
/// Only for a caller holding the tier lock: then no other write is under way.
pub fn remove_stale_temp(dir: &Path, paths: &[PathBuf]) {
    let found: Vec<PathBuf> = if paths.is_empty() {
        let Ok(read) = std::fs::read_dir(dir) else {
            return;
        };
        read.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            .map(|e| e.path())
            .collect()
    } else {
        paths.to_vec()
    };
    for path in found {
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
            log::debug!("{}: left by an interrupted write, removed", path.display());
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Writes `bytes` to `path` atomically: a temp file in the same folder, fsync, rename, so a
/// crash leaves either the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        // A bare file name: the current folder.
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => anyhow::bail!("{}: no parent folder", path.display()),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create a temp file", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("{}: write failed", path.display()))?;
    set_mode_from_umask(tmp.path());
    tmp.persist(path)
        .with_context(|| format!("{}: cannot replace", path.display()))?;
    // The folder is not fsynced: a crash may lose the rename, never the content, and every
    // reader copes with a missing file (history completes an entry whose after is missing from
    // the venv's real state). That saves a journal flush on the pip wrapper's path.
    Ok(())
}

/// Refuses a path that is a symbolic link: a link planted in a tier's folders could send
/// pyctl's reads and writes out of the tier.
pub fn refuse_symlink(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        anyhow::bail!(
            "{} is a symbolic link; pyctl does not follow links out of a tier (replace it with \
             the real file or folder)",
            path.display()
        );
    }
    Ok(())
}

/// Reads a file as text, refusing a symbolic link in its place (`O_NOFOLLOW`).
pub fn read_regular_to_string(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// tempfile creates files 0600; the files we persist should get the usual umask-derived mode so
/// that, for instance, root-owned system-tier history stays readable by everyone.
fn set_mode_from_umask(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(mask);
    let mode = 0o666 & !mask.bits();
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// An exclusive lock on a tier, held for a whole read-modify-write. Released on drop.
pub struct TierLock {
    _flock: Flock<File>,
    pub path: PathBuf,
}

impl std::fmt::Debug for TierLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierLock")
            .field("path", &self.path)
            .finish()
    }
}

impl TierLock {
    /// Takes the lock at `path`, creating the file with `mode` if needed. When another process
    /// holds it, `on_wait` is called once and the call waits up to `timeout`.
    pub fn acquire(
        path: &Path,
        mode: u32,
        timeout: Duration,
        on_wait: impl FnOnce(),
    ) -> Result<TierLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode)
            .open(path)
            .with_context(|| format!("{}: cannot open the tier lock", path.display()))?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Self::held(lock, path)),
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => file,
            Err((_, e)) => {
                return Err(e).with_context(|| format!("{}: cannot lock", path.display()))
            }
        };
        on_wait();
        let start = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(20));
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Self::held(lock, path)),
                Err((f, nix::errno::Errno::EWOULDBLOCK)) => file = f,
                Err((_, e)) => {
                    return Err(e).with_context(|| format!("{}: cannot lock", path.display()))
                }
            }
            if start.elapsed() > timeout {
                anyhow::bail!(
                    "{}: another pyctl or pip still holds this tier after {} s; try again, or \
                     raise PYCTL_LOCK_TIMEOUT",
                    path.display(),
                    timeout.as_secs()
                );
            }
        }
    }

    /// Lets the next child inherit the lock: a pip that outlives a killed wrapper then keeps
    /// the tier locked until it ends, so no other operation records a state it is still
    /// changing. The lock goes away with the last process holding it.
    pub fn keep_across_exec(&self) -> Result<()> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        use std::os::fd::AsRawFd;
        fcntl(self._flock.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
            .with_context(|| format!("{}: cannot share the lock with pip", self.path.display()))?;
        Ok(())
    }

    /// Undoes `keep_across_exec`: children started from now on do not get the lock.
    pub fn close_on_exec(&self) -> Result<()> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        use std::os::fd::AsRawFd;
        fcntl(
            self._flock.as_raw_fd(),
            FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
        )
        .with_context(|| format!("{}: cannot keep the lock to pyctl", self.path.display()))?;
        Ok(())
    }

    /// Whether some process holds the lock now (for read-only commands that only report).
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = File::open(path) else {
            return false;
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_) => false,
            Err((_, e)) => e == nix::errno::Errno::EWOULDBLOCK,
        }
    }

    fn held(lock: Flock<File>, path: &Path) -> TierLock {
        TierLock {
            _flock: lock,
            path: path.to_path_buf(),
        }
    }
}

/// Whether a rename failed only because the filesystem cannot rename that folder: overlayfs
/// (a container image) answers `EXDEV` for a folder that came from a lower layer.
fn cannot_rename_here(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(nix::errno::Errno::EXDEV as i32)
}

/// Moves a folder that is about to be deleted out of the way (to `trash`, which a later step
/// deletes). Where the filesystem cannot rename it, the folder is deleted in place instead: a
/// kill half-way leaves part of it, which the next attempt deletes the same way.
pub fn move_to_trash(dir: &Path, trash: &Path) -> std::io::Result<()> {
    match std::fs::rename(dir, trash) {
        Err(e) if cannot_rename_here(&e) => std::fs::remove_dir_all(dir),
        other => other,
    }
}

/// Renames a folder whose content must survive (a venv kept aside until its replacement is
/// made). Where the filesystem cannot rename it, the folder is copied with modes, owners, times
/// and hard links (`cp -a`) to a `.trash-copy-*` name beside `to`, renamed to `to` once whole,
/// and only then is the original deleted: a kill during the copy leaves the original untouched
/// (and the partial copy under a name the tier's trash sweep deletes), a kill during the delete
/// leaves the whole copy at `to`.
pub fn move_dir(from: &Path, to: &Path) -> Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if cannot_rename_here(&e) => {}
        other => {
            return other
                .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let parent = to.parent().unwrap_or(Path::new("."));
    let partial = parent.join(format!(".trash-copy-{}-{nanos}", std::process::id()));
    let out = crate::sys::tool::system_tool("cp")
        .arg("-a")
        .arg("--no-target-directory")
        .arg("--")
        .arg(from)
        .arg(&partial)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run cp to copy {}", from.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        anyhow::bail!(
            "cannot copy {} to {} (this filesystem cannot rename it): {}",
            from.display(),
            partial.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::rename(&partial, to)
        .with_context(|| format!("cannot move {} to {}", partial.display(), to.display()))?;
    std::fs::remove_dir_all(from)
        .with_context(|| format!("cannot delete {} after copying it", from.display()))
}

/// Whether a path (or its nearest existing ancestor) and every ancestor above it are owned by
/// root and not writable by group or others (sticky /tmp excepted for ancestors).
pub fn root_controlled(path: &Path) -> bool {
    let mut first = true;
    for dir in path.ancestors() {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let sticky = meta.mode() & 0o1000 != 0;
        // Group/world-writable is only tolerated on a sticky ancestor such as /tmp.
        let writable_by_others = meta.mode() & 0o022 != 0 && (first || !sticky);
        if meta.uid() != 0 || writable_by_others {
            return false;
        }
        first = false;
    }
    true
}

/// `os.path.abspath` without touching the filesystem: drop `.`, fold `..`.
pub fn normalize_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `move_dir` where rename fails with EXDEV: a folder from the lower layer of an overlay
    /// mounted over its own parent (root only, as the test suite runs). The copy keeps modes,
    /// symbolic links and hard links, and the original goes.
    #[test]
    fn a_folder_overlayfs_cannot_rename_is_copied_whole_then_removed() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to mount an overlay");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("tier");
        let venv = lower.join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(venv.join("bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            venv.join("bin/tool"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        std::fs::hard_link(venv.join("bin/tool"), venv.join("bin/tool2")).unwrap();
        std::os::unix::fs::symlink("tool", venv.join("bin/link")).unwrap();
        for d in ["upper", "work"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        let status = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&lower)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t overlay failed");
        let aside = lower.join(".venv-aside");
        let refused = std::fs::rename(&venv, &aside).unwrap_err();
        let moved = move_dir(&venv, &aside);
        let trashed = move_to_trash(&aside, &lower.join(".trash-x"));
        let (tool, link, gone) = (
            std::fs::metadata(lower.join(".trash-x/bin/tool")),
            std::fs::read_link(lower.join(".trash-x/bin/link")),
            venv.exists(),
        );
        let leftovers: Vec<String> = std::fs::read_dir(&lower)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        std::process::Command::new("umount")
            .arg(&lower)
            .status()
            .unwrap();
        assert!(cannot_rename_here(&refused), "{refused}");
        moved.unwrap();
        trashed.unwrap();
        let tool = tool.unwrap();
        assert_eq!(tool.mode() & 0o7777, 0o750);
        assert_eq!(tool.nlink(), 2, "the hard link is kept");
        assert_eq!(link.unwrap(), Path::new("tool"));
        assert!(!gone, "the original is removed");
        assert_eq!(leftovers, [".trash-x"], "no partial copy left");
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file may remain");
    }

    #[test]
    fn second_lock_waits_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".lock");
        let _held = TierLock::acquire(&p, 0o644, Duration::from_secs(1), || {}).unwrap();
        assert!(TierLock::is_held(&p));
        let mut waited = false;
        let err =
            TierLock::acquire(&p, 0o644, Duration::from_millis(100), || waited = true).unwrap_err();
        assert!(waited);
        assert!(err.to_string().contains(".lock"), "{err}");
    }
}
