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
