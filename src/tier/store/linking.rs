//! Checking a store entry and linking it into a venv through folder handles: each folder of the
//! entry and of the venv is opened once, and every file is checked, opened and linked by its
//! name in that folder, instead of the kernel walking its whole path (a dozen components) for
//! each of the stat, the open and the link. The checks and their order are those of
//! [`Store::verify`] and the link order that of a restore: the `.dist-info` last, `METADATA`
//! last of all.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{linkat, unlinkat, UnlinkatFlags};

use super::park;
use super::place::place_replacing;
use super::vouch::{self, read_keys, write_keys, Pool, Unlinked};
use super::{Damage, FileKey, LinkMode, Store, StoreEntry, StoredFile};

/// Why an entry was not linked: its stored copy is damaged (the caller drops it), or something
/// else failed (the venv side, say).
#[derive(Debug)]
pub enum LinkFailure {
    Damaged(Damage),
    Failed(anyhow::Error),
}

/// Kept folder trees a restore may take for the folders of site-packages it makes
/// ([`vouch::reuse_folder`]).
pub struct Reuse<'a> {
    pub pool: &'a Pool,
    /// Every folder (venv-relative) the files being restored go in, and their parents.
    pub needed: HashSet<&'a str>,
}

impl<'a> Reuse<'a> {
    /// For the files of `entries`.
    pub fn new(pool: &'a Pool, entries: &[&'a StoreEntry]) -> Reuse<'a> {
        let mut needed = HashSet::new();
        for entry in entries {
            for file in &entry.files {
                let mut path = file.path.as_str();
                while let Some(slash) = path.rfind('/') {
                    path = &path[..slash];
                    if path.is_empty() || !needed.insert(path) {
                        break;
                    }
                }
            }
        }
        Reuse { pool, needed }
    }
}

/// Open folder handles under one root, each folder opened (and, in a venv, created) once.
struct Folders<'r> {
    root_path: PathBuf,
    root: OwnedFd,
    open: HashMap<PathBuf, OwnedFd>,
    /// Create missing folders (the venv side).
    create: bool,
    /// Follow a folder that is a symbolic link (the venv side, as `create_dir_all` does); the
    /// store side refuses one, as [`Store::verify`] does.
    follow: bool,
    /// Where a missing folder directly in `site` may come from instead of a `mkdir`.
    reuse: Option<(&'r Reuse<'r>, &'r Path)>,
}

impl<'r> Folders<'r> {
    fn new(root_path: &Path, create: bool, follow: bool) -> nix::Result<Folders<'r>> {
        let fd = openat(
            None,
            root_path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Folders {
            root_path: root_path.to_path_buf(),
            // SAFETY: `openat` just returned this descriptor and nothing else owns it.
            root: unsafe { OwnedFd::from_raw_fd(fd) },
            open: HashMap::new(),
            create,
            follow,
            reuse: None,
        })
    }

    /// The handle of the folder `rel` (relative to the root), opening each missing component.
    fn get(&mut self, rel: &Path) -> nix::Result<RawFd> {
        if rel.as_os_str().is_empty() {
            return Ok(self.root.as_raw_fd());
        }
        if let Some(fd) = self.open.get(rel) {
            return Ok(fd.as_raw_fd());
        }
        let name = rel.file_name().ok_or(Errno::EINVAL)?;
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = self.get(parent_rel)?;
        let reused = match self.reuse {
            Some((reuse, site)) if self.create && parent_rel == site => {
                let missing =
                    fstatat(Some(parent), name, AtFlags::AT_SYMLINK_NOFOLLOW) == Err(Errno::ENOENT);
                missing
                    && vouch::reuse_folder(
                        reuse.pool,
                        name,
                        &self.root_path.join(rel),
                        rel,
                        &reuse.needed,
                    )
            }
            _ => false,
        };
        if self.create && !reused {
            match mkdirat(Some(parent), name, Mode::from_bits_truncate(0o777)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        let mut flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        if !self.follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        let fd = openat(Some(parent), name, flags, Mode::empty())?;
        // SAFETY: `openat` just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        self.open.insert(rel.to_path_buf(), fd);
        Ok(raw)
    }
}

/// A path's folder and name (the name of a venv-relative file path is never empty).
fn split(rel: &Path) -> (&Path, &OsStr) {
    (
        rel.parent().unwrap_or(Path::new("")),
        rel.file_name().unwrap_or_default(),
    )
}

// The `stat` field types differ between targets (`ino_t`, `time_t`): the casts are no-ops on
// some only.
#[allow(clippy::unnecessary_cast)]
pub(super) fn key_of(st: &FileStat) -> FileKey {
    (
        st.st_ino as u64,
        st.st_size as u64,
        st.st_ctime as i64,
        st.st_ctime_nsec as i64,
    )
}

/// The order a restore puts an entry's files in (indices): the `.dist-info` last, its
/// `METADATA` last of all.
fn link_order(entry: &StoreEntry) -> Vec<usize> {
    // Each file's rank once (a sort would work it out for every comparison): plain strings,
    // as entry paths are normalized venv-relative paths.
    let rank = |f: &StoredFile| match f.path.strip_prefix(entry.dist_info.as_str()) {
        Some("/METADATA") => 2u8,
        Some(rest) if rest.starts_with('/') => 1,
        _ => 0,
    };
    let ranks: Vec<u8> = entry.files.iter().map(rank).collect();
    let mut order: Vec<usize> = (0..entry.files.len()).collect();
    order.sort_by_key(|&i| ranks[i]);
    order
}

/// [`verify_at`] for the stored file `rel` of an entry (its `files/` is `files`, open in
/// `stored`).
fn verify_stored(
    stored: &mut Folders,
    files: &Path,
    file: &StoredFile,
    rel: &Path,
    linked: Option<FileKey>,
    unlinked: &Unlinked,
) -> Result<Option<u64>, LinkFailure> {
    let (dir, name) = split(rel);
    let fd = stored.get(dir).map_err(|e| {
        let path = files.join(dir);
        LinkFailure::Damaged(match e {
            Errno::ENOENT => Damage::Missing { path },
            Errno::ENOTDIR | Errno::ELOOP => Damage::Other {
                message: "not a folder (a symbolic link?); pyctl does not follow links out of a \
                          tier"
                    .to_string(),
                path,
            },
            e => Damage::Other {
                path,
                message: e.desc().to_string(),
            },
        })
    })?;
    verify_at(fd, name, files.join(rel), file, linked, unlinked).map_err(LinkFailure::Damaged)
}

/// [`Store::verify_file`] for the file `name` in the store folder `dir` (`path` names it in
/// messages), also taking the key pyctl kept after its last link of the file (`linked`) and
/// the unlinks reported since ([`super::vouch`]). Returns the file's inode for a regular file.
fn verify_at(
    dir: RawFd,
    name: &OsStr,
    path: PathBuf,
    file: &StoredFile,
    linked: Option<FileKey>,
    unlinked: &Unlinked,
) -> Result<Option<u64>, Damage> {
    let st = fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|_| Damage::Missing { path: path.clone() })?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
        return Ok(None);
    }
    let ino = Some(st.st_ino as u64);
    if file.size.is_some_and(|size| size != st.st_size as u64) {
        return Err(Damage::SizeDiffers { path });
    }
    let now = key_of(&st);
    if [file.key, linked]
        .into_iter()
        .flatten()
        .any(|base| base == now || unlinked.vouches(base, now))
    {
        return Ok(ino);
    }
    let Some(expected) = file.hash.as_deref().filter(|h| h.starts_with("sha256=")) else {
        return Ok(ino);
    };
    let opened = openat(
        Some(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)
    .and_then(|fd| {
        // SAFETY: `openat` just returned this descriptor and nothing else owns it.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        crate::python::record::hash_field(file)
    });
    match opened {
        Ok(actual) if actual == expected => Ok(ino),
        Ok(_) => Err(Damage::HashDiffers { path }),
        Err(e) => Err(Damage::Other {
            path,
            message: format!("cannot read: {e}"),
        }),
    }
}

impl Store {
    /// Checks the entry's files as [`Store::verify`] does (also taking what pyctl itself did to
    /// them since: [`super::vouch`]), then puts them into the venv as [`Store::put_back`] would
    /// each (a file already there is replaced, a folder in the way is an error), the
    /// `.dist-info` last and its `METADATA` last of all, so that an interrupted restore never
    /// leaves a distribution that looks installed but is not. The key of each file right after
    /// its link goes to the entry's `keys.json`.
    pub fn restore_checked(
        &self,
        entry_dir: &Path,
        entry: &StoreEntry,
        venv: &Path,
        unlinked: &Unlinked,
        reuse: Option<&Reuse>,
    ) -> Result<(), LinkFailure> {
        let files = entry_dir.join("files");
        let mut rels = Vec::with_capacity(entry.files.len());
        for file in &entry.files {
            rels.push(file.venv_path(entry_dir).map_err(LinkFailure::Failed)?);
        }
        let mut stored = Folders::new(&files, false, false).map_err(|e| {
            LinkFailure::Damaged(Damage::Other {
                path: files.clone(),
                message: e.desc().to_string(),
            })
        })?;
        let mut keys = read_keys(entry_dir, entry.files.len());
        let keys_read = keys.clone();
        // The entry's parked tree, if any: the files of its sound folders need no link.
        let mut parked = unlinked
            .parked
            .as_deref()
            .and_then(|root| park::claim(root, entry_dir));
        let mut covered = match parked.as_mut() {
            Some(claimed) => claimed.check(entry, &mut keys),
            None => vec![None; entry.files.len()],
        };
        let mut inodes = vec![None; entry.files.len()];
        let verify = |stored: &mut Folders, i: usize, linked: Option<FileKey>| {
            verify_stored(stored, &files, &entry.files[i], rels[i], linked, unlinked)
        };
        for i in 0..entry.files.len() {
            if covered[i].is_none() {
                inodes[i] = verify(&mut stored, i, keys[i])?;
            }
        }
        let mut venv_dirs = Folders::new(venv, true, true)
            .with_context(|| format!("{}: cannot open", venv.display()))
            .map_err(LinkFailure::Failed)?;
        let site = Path::new(&entry.dist_info).parent();
        venv_dirs.reuse = reuse.zip(site);
        let order = link_order(entry);
        let mut changed = keys != keys_read;
        let mut placed = HashSet::new();
        for i in order {
            if let (Some(p), Some(claimed)) = (covered[i], parked.as_ref()) {
                if placed.contains(&p) {
                    continue;
                }
                if claimed.place(p, venv) {
                    placed.insert(p);
                    continue;
                }
                // Something is at the piece's place already: its files are linked from the
                // store, checked first.
                for j in 0..entry.files.len() {
                    if covered[j] == Some(p) {
                        covered[j] = None;
                        inodes[j] = verify(&mut stored, j, keys[j])?;
                    }
                }
            }
            let after = self
                .link_one(&mut stored, &mut venv_dirs, rels[i])
                .map_err(LinkFailure::Failed)?;
            // The key right after the link, of the very inode just checked: a link that fell
            // back to a copy left the stored file as it was.
            if let Some(after) = after.filter(|k| Some(k.0) == inodes[i]) {
                keys[i] = Some(after);
                changed = true;
            }
        }
        if changed {
            if let Err(e) = write_keys(entry_dir, &keys) {
                log::debug!("{e:#}");
            }
        }
        drop(parked);
        Ok(())
    }

    /// Puts the stored file `rel` at the same path in the venv, replacing a file there. Returns
    /// the key of what is there right after a hard link.
    fn link_one(
        &self,
        stored: &mut Folders,
        venv: &mut Folders,
        rel: &Path,
    ) -> anyhow::Result<Option<FileKey>> {
        let (dir, name) = split(rel);
        let src_path = stored.root_path.join(rel);
        let dest_path = venv.root_path.join(rel);
        let dest_dir = venv
            .get(dir)
            .with_context(|| format!("{}: cannot create", venv.root_path.join(dir).display()))?;
        if self.link_mode != LinkMode::Hardlink {
            return place_replacing(&src_path, &dest_path, self.link_mode).map(|()| None);
        }
        let src_dir = stored
            .get(dir)
            .with_context(|| format!("{}: cannot open", src_path.display()))?;
        let link = || linkat(Some(src_dir), name, Some(dest_dir), name, AtFlags::empty());
        let linked = || {
            fstatat(Some(dest_dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .ok()
                .filter(|st| {
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
                })
                .map(|st| key_of(&st))
        };
        match link() {
            Ok(()) => Ok(linked()),
            Err(Errno::EEXIST) => {
                let here = fstatat(Some(dest_dir), name, AtFlags::AT_SYMLINK_NOFOLLOW);
                if here.is_ok_and(|st| {
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
                }) {
                    anyhow::bail!("{}: a folder is in the way", dest_path.display());
                }
                unlinkat(Some(dest_dir), name, UnlinkatFlags::NoRemoveDir)
                    .with_context(|| format!("{}: cannot replace", dest_path.display()))?;
                link().with_context(|| {
                    format!(
                        "cannot place {} at {}",
                        src_path.display(),
                        dest_path.display()
                    )
                })?;
                Ok(linked())
            }
            // Across filesystems, or a filesystem that refuses hard links: a copy.
            Err(Errno::EXDEV) | Err(Errno::EPERM) => {
                place_replacing(&src_path, &dest_path, self.link_mode).map(|()| None)
            }
            Err(e) => Err(std::io::Error::from(e)).with_context(|| {
                format!(
                    "cannot place {} at {}",
                    src_path.display(),
                    dest_path.display()
                )
            }),
        }
    }
}
