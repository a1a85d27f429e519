//! The store: every distribution a tier's venv has held, kept as hard links to its installed
//! files, so undo, redo, restore and clean put files back offline instead of reinstalling.
//!
//! An entry is `store/<name>-<version>-<key>/` with `entry.json` (what it is, its files and
//! their RECORD hashes) and `files/` mirroring the venv-relative paths. The key is a hash of the
//! distribution's RECORD, which lists every file's hash, so it names the content. Entries are
//! built in a temp folder and renamed into place, so a half-made entry is never used.
//!
//! `store/.sizes.json` ([`sizes`]) keeps, per entry, the bytes of its files and one of them to sample, so the
//! figure `pyctl status` shows (what the store holds that the venv no longer links to) costs one
//! `stat` per entry instead of a walk of every stored file. An entry's files never change, so
//! its size is measured once, when it is added (under the tier lock).
//!
//! RECORD is read per "Recording installed projects" (PyPA specs): CSV rows of path (relative to
//! the folder holding `.dist-info`), `sha256=<urlsafe base64, no padding>` and size; RECORD
//! itself and some generated files carry no hash.

mod identify;
pub mod leftovers;
mod linking;
pub mod park;
mod place;
mod remove;
mod sizes;
pub mod trash;
pub mod vouch;

use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::python::inventory::{requirement_key, Distribution, MetadataFormat, PackageSet};
use crate::python::record::parse_record;
use crate::python::record::RecordRow;
use crate::sys::fsutil::write_atomic;
use place::{place, place_replacing};

pub use linking::{LinkFailure, Reuse};
pub use remove::remove_dists;

pub const ENTRY_SCHEMA: u32 = 1;

/// How files are placed back into a venv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// Hard link, falling back to a copy across filesystems.
    #[default]
    Hardlink,
    /// Always copy.
    Copy,
}

/// One file of a stored distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// Relative to the venv root.
    pub path: String,
    /// As in RECORD: `sha256=<urlsafe base64>`, absent for RECORD itself and unhashed files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Inode, size and change time (ctime) of the stored file when it was kept and checked
    /// against its hash. Nobody can set a ctime back (it is the kernel's clock at the last
    /// change of content, mode or link count), so while all three are unchanged the content
    /// is too. Entries written before issue 12 kept the mtime instead (`stat`), which `touch
    /// -r` puts back: that field is ignored and such files are hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<FileKey>,
}

impl StoredFile {
    /// The file's path relative to the venv, refused when it is absolute or climbs out (`..`):
    /// a store entry (of `entry_dir`) never places a file outside the venv.
    pub fn venv_path(&self, entry_dir: &Path) -> Result<&Path> {
        let rel = Path::new(&self.path);
        // Component by component only when the text has a `..` at all (rarely).
        let climbs =
            self.path.contains("..") && rel.components().any(|c| c == Component::ParentDir);
        if rel.is_absolute() || climbs {
            bail!(
                "{}: store entry names a path outside the venv: {}",
                entry_dir.display(),
                self.path
            );
        }
        Ok(rel)
    }
}

/// What `StoredFile::key` compares: (inode, size, ctime seconds, ctime nanoseconds).
pub type FileKey = (u64, u64, i64, i64);

/// A file's key now.
pub fn file_key(meta: &std::fs::Metadata) -> FileKey {
    use std::os::unix::fs::MetadataExt;
    (meta.ino(), meta.len(), meta.ctime(), meta.ctime_nsec())
}

/// Why a stored distribution cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    #[error("damaged in the store ({path}: missing)")]
    Missing { path: PathBuf },
    #[error("damaged in the store ({path}: sha256 differs from the RECORD hash)")]
    HashDiffers { path: PathBuf },
    #[error("damaged in the store ({path}: size differs from RECORD)")]
    SizeDiffers { path: PathBuf },
    #[error("damaged in the store ({path}: {message})")]
    Other { path: PathBuf, message: String },
}

/// `entry.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEntry {
    pub schema: u32,
    pub name: String,
    pub canonical: String,
    pub version: String,
    /// The freeze line this distribution renders as: what history and snapshots refer to.
    pub line: String,
    /// The venv-relative `.dist-info` folder.
    pub dist_info: String,
    pub files: Vec<StoredFile>,
    pub stored_at: String,
}

/// `sha256=<urlsafe base64, no padding>` of a file, as RECORD writes it.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    crate::python::record::hash_field(std::fs::File::open(path)?)
}

/// A distribution's installed files as venv-relative paths, from its RECORD. Files outside the
/// venv are left out (pyctl never touches them).
pub fn installed_files(venv: &Path, dist: &Distribution) -> Result<Vec<RecordRow>> {
    let record_path = dist.metadata_path.join("RECORD");
    let bytes = std::fs::read(&record_path)
        .with_context(|| format!("{}: cannot read", record_path.display()))?;
    let rows = parse_record(&bytes).with_context(|| record_path.display().to_string())?;
    let base = dist
        .metadata_path
        .parent()
        .context("a .dist-info folder has no parent")?;
    // The folder RECORD's paths are relative to, relative to the venv: a plain row (no `.`,
    // `..` or empty part, as nearly all are) is that joined with it, without a walk through
    // the components of the whole path.
    let base = crate::sys::fsutil::normalize_path(base);
    let base_rel = base
        .strip_prefix(venv)
        .ok()
        .and_then(Path::to_str)
        .map(str::to_owned);
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(base_rel) = base_rel.as_deref().filter(|_| plain_relative(&row.path)) {
            let path = match base_rel {
                "" => row.path.clone(),
                _ => format!("{base_rel}/{}", row.path),
            };
            out.push(RecordRow { path, ..row });
            continue;
        }
        let full = crate::sys::fsutil::normalize_path(&base.join(&row.path));
        let Ok(rel) = full.strip_prefix(venv) else {
            log::debug!("{}: outside the venv, not kept", full.display());
            continue;
        };
        out.push(RecordRow {
            path: rel.to_string_lossy().into_owned(),
            ..row
        });
    }
    Ok(out)
}

/// A relative path of plain names: no `.`, `..` or empty part, not absolute.
fn plain_relative(path: &str) -> bool {
    path.split('/')
        .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The store of one tier.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
    pub link_mode: LinkMode,
}

impl Store {
    pub fn new(dir: PathBuf, link_mode: LinkMode) -> Store {
        Store { dir, link_mode }
    }

    /// Folder name of the entry for `dist` with RECORD content `record`:
    /// `<name>-<version>-<key>`.
    fn entry_name(dist: &Distribution, record: &[u8]) -> String {
        let digest = Sha256::digest(record);
        let key: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{key}", Self::entry_prefix(dist))
    }

    /// `<name>-<version>`, the part of an entry's folder name before its content key.
    fn entry_prefix(dist: &Distribution) -> String {
        let version: String = dist
            .display_version()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // A direct-URL install is another freeze line than the index's copy of that version:
        // its own prefix keeps the fast path below from taking one for the other.
        let origin = if dist.direct_url.is_some() {
            "_url"
        } else {
            ""
        };
        format!("{}-{version}{origin}", dist.canonical)
    }

    /// Keeps every `.dist-info` distribution of `set` that the store does not hold yet, and
    /// keeps again those named in `fresh` (canonical names pip has just installed: their files
    /// are new inodes, their byte-code new bytes, so the store takes them over and the venv's
    /// files are the store's read-only ones again). Returns how many were kept. `venv` must be
    /// the canonical venv path.
    pub fn stash_set(
        &self,
        venv: &Path,
        set: &PackageSet,
        shims: &HashSet<String>,
        fresh: &HashSet<String>,
    ) -> Result<usize> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("{}: cannot create", self.dir.display()))?;
        // One listing of the store tells which name-version pairs it already holds, so the
        // common case (nothing new) reads no RECORD and hashes nothing: this runs twice in
        // every recorded pip operation.
        let held = self
            .names_by_prefix()
            .with_context(|| format!("{}: cannot read", self.dir.display()))?;
        let mut added = 0;
        for dist in set.dists.values() {
            if dist.format != MetadataFormat::DistInfo {
                continue;
            }
            let renew = fresh.contains(&dist.canonical);
            let names = held.get(&Self::entry_prefix(dist));
            if !renew && names.is_some() && dist.direct_url.is_none() {
                continue;
            }
            // New in the venv but restored from an entry (an undo or redo, not pip): the venv's
            // RECORD is that entry's, one inode; nothing to hash or keep again.
            if renew
                && names.is_some_and(|names| {
                    names.iter().any(|n| {
                        self.dir.join(n).join("entry.json").is_file()
                            && self.holds_installed(venv, dist, n)
                    })
                })
            {
                continue;
            }
            let record_path = dist.metadata_path.join("RECORD");
            let Ok(record) = std::fs::read(&record_path) else {
                log::debug!("{}: no RECORD, not kept", dist.metadata_path.display());
                continue;
            };
            let name = Self::entry_name(dist, &record);
            if self.dir.join(&name).join("entry.json").is_file()
                && (!renew || self.holds_installed(venv, dist, &name))
            {
                continue;
            }
            match self.stash_one(venv, dist, &name, shims) {
                Ok(()) => added += 1,
                Err(e) => log::warn!("could not keep {} in the store: {e:#}", dist.name_version()),
            }
        }
        if let Err(e) = self.update_sizes() {
            log::warn!("{}: {e:#}", self.dir.join(sizes::SIZES_FILE).display());
        }
        Ok(added)
    }

    /// Whether the entry `name` holds the very files installed (restored from it, not
    /// installed again by pip): its RECORD is the venv's RECORD inode.
    fn holds_installed(&self, venv: &Path, dist: &Distribution, name: &str) -> bool {
        use std::os::unix::fs::MetadataExt;
        let record = dist.metadata_path.join("RECORD");
        let Ok(rel) = record.strip_prefix(venv) else {
            return false;
        };
        let stored = self.dir.join(name).join("files").join(rel);
        match (std::fs::metadata(&record), std::fs::metadata(&stored)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }

    /// Links (or copies) the installed file `src`, whose metadata is `meta`, into an entry
    /// being made, read-only; returns its key.
    fn keep_file(
        &self,
        src: &Path,
        dest: &Path,
        meta: &std::fs::Metadata,
        hash: Option<&str>,
    ) -> Result<Option<FileKey>> {
        // Only content that matches RECORD goes in: a file edited in the venv before it was
        // kept would otherwise come back as if it were the real thing.
        if let Some(expected) = hash.filter(|h| h.starts_with("sha256=")) {
            let actual =
                file_hash(src).with_context(|| format!("{}: cannot read", src.display()))?;
            if actual != expected {
                bail!("{}: differs from its RECORD hash; not kept", src.display());
            }
        }
        place(src, dest, self.link_mode)?;
        // Stored files lose their write bits. With hard links the venv's file is the same
        // inode, so an in-place write (`echo >>`, an editor saving in place) fails instead of
        // changing the stored original behind pyctl's back; a save by rename and pip (which
        // unlinks before writing) are unaffected, and an override (`chmod u+w`, root) moves the
        // change time, so the file is hashed before use. A link or a copy has the mode `src`
        // had when `meta` was read.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o222 != 0 {
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode & !0o222))
                .with_context(|| format!("{}: cannot make read-only", dest.display()))?;
        }
        Ok(std::fs::symlink_metadata(dest).ok().map(|m| file_key(&m)))
    }

    fn stash_one(
        &self,
        venv: &Path,
        dist: &Distribution,
        name: &str,
        shims: &HashSet<String>,
    ) -> Result<()> {
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&self.dir)
            .with_context(|| format!("{}: cannot create a temp folder", self.dir.display()))?;
        let files_dir = tmp.path().join("files");
        let mut files = Vec::new();
        // Each folder is made once (one `mkdir` per folder, not per file).
        let mut made: HashSet<PathBuf> = HashSet::new();
        for row in installed_files(venv, dist)? {
            if shims.contains(&row.path) {
                continue;
            }
            let src = venv.join(&row.path);
            let meta = match std::fs::symlink_metadata(&src) {
                Ok(m) => m,
                Err(_) => continue,
            };
            let dest = files_dir.join(&row.path);
            if let Some(parent) = dest.parent().filter(|p| !made.contains(*p)) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("{}: cannot create", parent.display()))?;
                made.insert(parent.to_path_buf());
            }
            let key = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&src)?;
                std::os::unix::fs::symlink(target, &dest)?;
                None
            } else if meta.is_file() {
                self.keep_file(&src, &dest, &meta, row.hash.as_deref())?
            } else {
                continue;
            };
            files.push(StoredFile {
                path: row.path,
                hash: row.hash,
                size: row.size,
                key,
            });
        }
        let dist_info = dist
            .metadata_path
            .strip_prefix(venv)
            .unwrap_or(&dist.metadata_path)
            .to_string_lossy()
            .into_owned();
        let entry = StoreEntry {
            schema: ENTRY_SCHEMA,
            name: dist.name.clone(),
            canonical: dist.canonical.clone(),
            version: dist.display_version().to_string(),
            line: dist.freeze_lines().pop().unwrap_or_default(),
            dist_info,
            files,
            stored_at: crate::sys::clock::now_timestamp(),
        };
        let json = serde_json::to_vec_pretty(&entry)?;
        write_atomic(&tmp.path().join("entry.json"), &json)?;
        let final_dir = self.dir.join(name);
        let tmp_path = tmp.keep();
        if final_dir.exists() {
            // Taken over by the new copy: the old one goes aside first, so a kill leaves one
            // whole entry or none.
            let old = self
                .dir
                .join(format!(".tmp-old-{name}-{}", std::process::id()));
            std::fs::rename(&final_dir, &old)
                .with_context(|| format!("{}: cannot replace", final_dir.display()))?;
            let _ = std::fs::remove_dir_all(&old);
        }
        if let Err(e) = std::fs::rename(&tmp_path, &final_dir) {
            let _ = std::fs::remove_dir_all(&tmp_path);
            if !final_dir.join("entry.json").is_file() {
                return Err(e).with_context(|| format!("{}: cannot create", final_dir.display()));
            }
        }
        Ok(())
    }

    /// Every complete entry: folder and metadata. Unreadable ones are skipped with a log line.
    pub fn entries(&self) -> Vec<(PathBuf, StoreEntry)> {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in read.filter_map(Result::ok) {
            let path = item.path();
            if item.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Some(entry) = read_entry(&path) {
                out.push((path, entry));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The entry kept from exactly this installed distribution (same RECORD), if any.
    pub fn entry_for_installed(&self, dist: &Distribution) -> Option<(PathBuf, StoreEntry)> {
        let record = std::fs::read(dist.metadata_path.join("RECORD")).ok()?;
        let dir = self.dir.join(Self::entry_name(dist, &record));
        read_entry(&dir).map(|e| (dir, e))
    }

    /// The entry folder `name` when it holds this freeze line (its project name in any
    /// spelling): the copy a history record names, read without listing the store.
    pub fn find_named(
        &self,
        canonical: &str,
        line: &str,
        name: &str,
    ) -> Option<(PathBuf, StoreEntry)> {
        // Names come from history records: a plain folder name of the store, nothing else.
        if name.is_empty() || name.starts_with('.') || name.contains('/') {
            return None;
        }
        let dir = self.dir.join(name);
        let entry = read_entry(&dir)?;
        (entry.canonical == canonical && requirement_key(&entry.line) == requirement_key(line))
            .then_some((dir, entry))
    }

    /// Entries for a freeze line (its project name in any spelling), newest first.
    pub fn find(&self, canonical: &str, line: &str) -> Vec<(PathBuf, StoreEntry)> {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let prefix = format!("{canonical}-");
        let key = requirement_key(line);
        let mut found: Vec<(PathBuf, StoreEntry)> = read
            .filter_map(Result::ok)
            .filter(|i| i.file_name().to_string_lossy().starts_with(&prefix))
            .filter_map(|i| read_entry(&i.path()).map(|e| (i.path(), e)))
            .filter(|(_, e)| e.canonical == canonical && requirement_key(&e.line) == key)
            .collect();
        found.sort_by(|a, b| b.1.stored_at.cmp(&a.1.stored_at));
        found
    }

    /// Checks an entry's files: a file whose inode, size and change time are those recorded
    /// when it was kept (and hashed) is unchanged; any other is hashed against RECORD. Never
    /// trusts the mtime, which anyone can set back.
    pub fn verify(entry_dir: &Path, entry: &StoreEntry) -> Result<(), Damage> {
        let files = entry_dir.join("files");
        // A folder inside the entry replaced by a link would hand out files from elsewhere:
        // each folder is looked at once.
        let mut folders = BTreeSet::new();
        for file in &entry.files {
            let mut dir = Path::new(&file.path).parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                if !folders.insert(d) {
                    break;
                }
                dir = d.parent();
            }
        }
        for dir in folders {
            let path = files.join(dir);
            crate::sys::fsutil::refuse_symlink(&path).map_err(|e| Damage::Other {
                path: path.clone(),
                message: format!("{e:#}"),
            })?;
        }
        for file in &entry.files {
            Self::verify_file(&files, file)?;
        }
        Ok(())
    }

    /// Checks one stored file (see `verify`).
    pub fn verify_file(files: &Path, file: &StoredFile) -> Result<(), Damage> {
        let path = files.join(&file.path);
        let meta =
            std::fs::symlink_metadata(&path).map_err(|_| Damage::Missing { path: path.clone() })?;
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        if file.size.is_some_and(|size| size != meta.len()) {
            return Err(Damage::SizeDiffers { path });
        }
        if file.key.is_some_and(|k| k == file_key(&meta)) {
            return Ok(());
        }
        let Some(expected) = file.hash.as_deref().filter(|h| h.starts_with("sha256=")) else {
            return Ok(());
        };
        match file_hash(&path) {
            Ok(actual) if actual == expected => Ok(()),
            Ok(_) => Err(Damage::HashDiffers { path }),
            Err(e) => Err(Damage::Other {
                path,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// Puts one stored file back at `dest` (a repair of a kept distribution).
    pub fn put_back(&self, src: &Path, dest: &Path) -> Result<()> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        place_replacing(src, dest, self.link_mode)
    }

    /// Removes entries whose line no history entry, snapshot or the venv refers to (`referenced`
    /// holds [`requirement_key`]s), and leftover temp folders. Returns (entries removed, bytes
    /// freed).
    pub fn collect_garbage(&self, referenced: &BTreeSet<String>) -> Result<(usize, u64)> {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return Ok((0, 0));
        };
        let mut removed = 0;
        let mut freed = 0;
        for item in read.filter_map(Result::ok) {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            let keep = if name == sizes::SIZES_FILE {
                true
            } else if name.starts_with(".tmp-") {
                false
            } else {
                match read_entry(&path) {
                    Some(entry) => referenced.contains(&requirement_key(&entry.line)),
                    None => false,
                }
            };
            if !keep {
                // Its parked tree (`park`) first: nothing restores from an entry that is gone.
                if let Some(tier_root) = self.dir.parent() {
                    let parked = tier_root.join(park::PARKED_DIR).join(&name);
                    if std::fs::symlink_metadata(&parked).is_ok_and(|m| m.is_dir()) {
                        let _ = std::fs::remove_dir_all(&parked);
                    }
                }
                freed += sizes::unlinked_bytes(&path);
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("{}: cannot remove", path.display()))?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.update_sizes()?;
        }
        Ok((removed, freed))
    }
}

/// An entry's metadata; `None` for anything incomplete or unreadable, and for an entry whose
/// folder, `entry.json` or `files/` is a symbolic link (it would serve files from outside the
/// store).
pub(super) fn read_entry(dir: &Path) -> Option<StoreEntry> {
    let linked = [dir.to_path_buf(), dir.join("entry.json"), dir.join("files")]
        .iter()
        .any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()));
    if linked {
        log::warn!("{}: a symbolic link in the store, not used", dir.display());
        return None;
    }
    let bytes = std::fs::read(dir.join("entry.json")).ok()?;
    let entry: StoreEntry = serde_json::from_slice(&bytes)
        .map_err(|e| log::warn!("{}: unreadable store entry: {e}", dir.display()))
        .ok()?;
    (entry.schema <= ENTRY_SCHEMA).then_some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_rows_parse_with_quotes_and_missing_hashes() {
        let rows = parse_record(
            b"a/__init__.py,sha256=abc,12\n\"odd,name.py\",sha256=def,3\na-1.0.dist-info/RECORD,,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].path, "odd,name.py");
        assert_eq!(rows[2].hash, None);
        assert_eq!(rows[0].size, Some(12));
    }

    #[test]
    fn file_hash_is_record_style() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        // sha256("hello\n") as Python computes it: urlsafe base64 without padding.
        assert_eq!(
            file_hash(&p).unwrap(),
            "sha256=WJG1tSLV3whtD_CxEPvZ0hu0_HFjrzTQgoai6Eb2vgM"
        );
    }
}
