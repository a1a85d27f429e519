//! Placing stored files into a venv: a hard link (a copy across filesystems, or when asked),
//! replacing what is there; stored files lose their write bits.

use std::path::Path;

use anyhow::{bail, Context as _, Result};

use super::LinkMode;

/// Places `src` at `dest`, replacing a file already there (never a folder). A hard link to a
/// symlink links the symlink itself, so symlinks need no special case when linking.
pub(super) fn place_replacing(src: &Path, dest: &Path, mode: LinkMode) -> Result<()> {
    let attempt = || -> std::io::Result<()> {
        if mode == LinkMode::Copy && std::fs::symlink_metadata(src)?.file_type().is_symlink() {
            return std::os::unix::fs::symlink(std::fs::read_link(src)?, dest);
        }
        match mode {
            LinkMode::Hardlink => match std::fs::hard_link(src, dest) {
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::EXDEV) | Some(nix::libc::EPERM)
                    ) =>
                {
                    std::fs::copy(src, dest).map(|_| ())
                }
                other => other,
            },
            LinkMode::Copy => std::fs::copy(src, dest).map(|_| ()),
        }
    };
    match attempt() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
                bail!("{}: a folder is in the way", dest.display());
            }
            std::fs::remove_file(dest)
                .with_context(|| format!("{}: cannot replace", dest.display()))?;
            attempt()
                .with_context(|| format!("cannot place {} at {}", src.display(), dest.display()))
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot place {} at {}", src.display(), dest.display()))
        }
        Ok(()) => Ok(()),
    }
}

/// Takes the write bits off a stored file. With hard links the venv's file is the same inode,
/// so an in-place write (`echo >>`, `dd conv=notrunc`, an editor saving in place) fails
/// instead of changing the stored original behind pyctl's back; an editor that saves by
/// rename, and pip (which unlinks before writing), are unaffected. An override (`chmod u+w`,
/// root) still gets through: the change time moves, and the file is hashed before any use.
pub fn make_read_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if meta.is_file() && mode & 0o222 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o222))
            .with_context(|| format!("{}: cannot make read-only", path.display()))?;
    }
    Ok(())
}

/// Hard-links `src` to `dest` (copying across filesystems), or copies.
pub(super) fn place(src: &Path, dest: &Path, mode: LinkMode) -> Result<()> {
    if mode == LinkMode::Hardlink {
        match std::fs::hard_link(src, dest) {
            Ok(()) => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(nix::libc::EXDEV)
                    || e.raw_os_error() == Some(nix::libc::EPERM) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot link {} to {}", src.display(), dest.display())
                })
            }
        }
    }
    std::fs::copy(src, dest)
        .with_context(|| format!("cannot copy {} to {}", src.display(), dest.display()))?;
    Ok(())
}
