//! Parked trees: the folders of a removed distribution kept whole, so that its next restore
//! moves each back with one `rename` instead of making every folder and linking every file.
//!
//! An undo moves a removed distribution's `.dist-info` and every top-level folder of
//! site-packages that holds its files alone into a `.trash-*-files` folder, and a clean moves
//! the whole venv aside. Before the background deletion empties those, it parks what it can
//! under `<tier>/.parked/<entry>/` (`<entry>` the store entry's folder name): a folder is parked
//! when, after the byte-code Python wrote there by itself is dropped, it holds exactly the
//! entry's files under that path, each the stored file itself (the same inode) with the key
//! pyctl checked or linked it at (`entry.json` or `keys.json`), and nothing else. The key of
//! every parked folder goes to `parked.json`, taken before its listing was read.
//!
//! A restore claims the entry's parked tree (renames it to a name of its own) and uses a
//! folder only when every folder in it still has the key it was parked with (nothing added,
//! removed or renamed inside) and every file the key its store entry vouches for (nothing
//! written or changed): the same checks as a file linked from the store, one `stat` each. The
//! rest goes to a `.trash-parked-*` folder of the tier, deleted after the transaction.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fstatat, Mode, SFlag};
use serde::{Deserialize, Serialize};

use super::vouch::{read_keys, Unlinked};
use super::{file_key, read_entry, FileKey, StoreEntry};

/// The tier's folder of parked trees.
pub const PARKED_DIR: &str = ".parked";
const MANIFEST: &str = "parked.json";

/// `parked.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    pieces: Vec<Piece>,
}

/// One parked folder.
#[derive(Debug, Serialize, Deserialize)]
struct Piece {
    /// The venv-relative folder it was and goes back to.
    rel: String,
    /// Its name in the parked tree.
    dir: String,
    /// Every folder in it, relative to it (`""` for itself), with its key when parked.
    folders: Vec<(String, FileKey)>,
    /// Every file in it: its index in the store entry, and its key when parked.
    files: Vec<(usize, FileKey)>,
}

/// The files an entry has under one top-level folder of site-packages, by their path in it.
struct Expected<'a> {
    files: HashMap<PathBuf, usize>,
    /// The folders holding them (and their parents), `""` included.
    folders: HashSet<PathBuf>,
    entry: &'a StoreEntry,
    entry_dir: &'a Path,
    keys: &'a [Option<FileKey>],
    unlinked: &'a Unlinked,
}

impl<'a> Expected<'a> {
    /// Whether the file `i`, parked at `path` with the metadata `meta`, is the stored file with
    /// the content its store entry holds: the same inode, with a key pyctl vouches for (see
    /// `super::vouch`), or else the hash RECORD gives.
    fn vouched(&self, i: usize, path: &Path, meta: &std::fs::Metadata) -> bool {
        let file = &self.entry.files[i];
        let key = file_key(meta);
        if file.size.is_some_and(|s| s != key.1) {
            return false;
        }
        let checked = [file.key, self.keys.get(i).copied().flatten()];
        if checked
            .into_iter()
            .flatten()
            .any(|base| base == key || self.unlinked.vouches(base, key))
        {
            return true;
        }
        let stored = self.entry_dir.join("files").join(&file.path);
        let same = std::fs::symlink_metadata(&stored)
            .is_ok_and(|m| m.is_file() && m.dev() == meta.dev() && m.ino() == meta.ino());
        same && match file.hash.as_deref().filter(|h| h.starts_with("sha256=")) {
            // Rows without a hash (byte-code, as pip lists it) are taken as a restore takes them.
            None => true,
            Some(expected) => {
                super::file_hash(path).is_ok_and(|h| h == expected)
                    && std::fs::symlink_metadata(path).is_ok_and(|m| file_key(&m) == key)
            }
        }
    }
}

/// Parks what it can of the site-packages folders of a trash folder (`items`: each folder and
/// the name it had in site-packages), moving them out of the trash; the rest stays for the
/// deletion. Never fails: a folder that cannot be parked is simply deleted.
pub fn park(tier_root: &Path, items: &[(PathBuf, String)]) {
    if !items.iter().any(|(_, n)| n.ends_with(".dist-info")) {
        return;
    }
    let root = tier_root.join(PARKED_DIR);
    match std::fs::symlink_metadata(&root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return,
        Err(_) => {
            if std::fs::create_dir(&root).is_err() {
                return;
            }
        }
    }
    let by_record = record_inodes(&tier_root.join("store"));
    // The unlinks reported since the last transaction (read, not used up).
    let unlinked = Unlinked::load(tier_root);
    let by_name: HashMap<&str, &Path> = items
        .iter()
        .map(|(p, n)| (n.as_str(), p.as_path()))
        .collect();
    for (path, name) in items {
        if !name.ends_with(".dist-info") {
            continue;
        }
        let Ok(record) = std::fs::symlink_metadata(path.join("RECORD")) else {
            continue;
        };
        if !record.is_file() {
            continue;
        }
        if let Some(entry_dir) = by_record.get(&(record.dev(), record.ino())) {
            park_entry(&root, entry_dir, name, &by_name, &unlinked);
        }
    }
}

/// Every store entry by the inode of its `.dist-info/RECORD` (which a venv restored from the
/// entry, or taken over by it, shares).
fn record_inodes(store: &Path) -> HashMap<(u64, u64), PathBuf> {
    let mut out = HashMap::new();
    let list = super::vouch::subfolders;
    for (entry_dir, name) in list(store) {
        if name.starts_with('.') {
            continue;
        }
        for (python, _) in list(&entry_dir.join("files/lib")) {
            for (dist_info, n) in list(&python.join("site-packages")) {
                if !n.ends_with(".dist-info") {
                    continue;
                }
                if let Ok(m) = std::fs::symlink_metadata(dist_info.join("RECORD")) {
                    out.insert((m.dev(), m.ino()), entry_dir.clone());
                }
            }
        }
    }
    out
}

/// Parks the folders of the entry at `entry_dir` found among the trash's items.
fn park_entry(
    root: &Path,
    entry_dir: &Path,
    dist_info: &str,
    items: &HashMap<&str, &Path>,
    unlinked: &Unlinked,
) {
    let Some(entry_name) = entry_dir.file_name() else {
        return;
    };
    let dest = root.join(entry_name);
    if std::fs::symlink_metadata(&dest).is_ok() {
        return;
    }
    let Some(entry) = read_entry(entry_dir) else {
        return;
    };
    let Some(site) = Path::new(&entry.dist_info).parent() else {
        return;
    };
    if Path::new(&entry.dist_info).file_name() != Some(OsStr::new(dist_info)) {
        return;
    }
    let keys = read_keys(entry_dir, entry.files.len());
    let tops = files_by_top(&entry, site);
    let tmp = root.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        entry_name.to_string_lossy()
    ));
    if std::fs::create_dir(&tmp).is_err() {
        return;
    }
    let mut pieces = Vec::new();
    for (top, files) in tops {
        let Some(item) = items.get(top.as_str()) else {
            continue;
        };
        let expected = Expected {
            folders: folders_of(files.keys()),
            files,
            entry: &entry,
            entry_dir,
            keys: &keys,
            unlinked,
        };
        let dir = pieces.len().to_string();
        let at = tmp.join(&dir);
        if std::fs::rename(item, &at).is_err() {
            continue;
        }
        let checked = prune(&at, Path::new(""), &expected)
            .then(|| check(&at, &expected))
            .flatten();
        match checked {
            Some((folders, files)) => pieces.push(Piece {
                rel: site.join(&top).to_string_lossy().into_owned(),
                dir,
                folders,
                files,
            }),
            // Back where it was, for the deletion.
            None => {
                let _ = std::fs::rename(&at, item);
            }
        }
    }
    let manifest = Manifest { pieces };
    let written = !manifest.pieces.is_empty()
        && serde_json::to_vec(&manifest)
            .ok()
            .is_some_and(|bytes| std::fs::write(tmp.join(MANIFEST), bytes).is_ok());
    if written && renameat2(None, &tmp, None, &dest, RenameFlags::RENAME_NOREPLACE).is_ok() {
        return;
    }
    discard(&tmp);
}

/// The entry's files inside top-level folders of `site`: per folder name, each file's path in
/// the folder and its index in the entry.
fn files_by_top(entry: &StoreEntry, site: &Path) -> Vec<(String, HashMap<PathBuf, usize>)> {
    let mut tops: HashMap<String, HashMap<PathBuf, usize>> = HashMap::new();
    for (i, file) in entry.files.iter().enumerate() {
        let Ok(rest) = Path::new(&file.path).strip_prefix(site) else {
            continue;
        };
        let mut comps = rest.components();
        let Some(top) = comps.next() else { continue };
        let inner = comps.as_path();
        if inner.as_os_str().is_empty() {
            continue;
        }
        let top = top.as_os_str().to_string_lossy().into_owned();
        tops.entry(top).or_default().insert(inner.to_path_buf(), i);
    }
    let mut out: Vec<_> = tops.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The folders holding `files`, their parents and `""`.
fn folders_of<'f>(files: impl Iterator<Item = &'f PathBuf>) -> HashSet<PathBuf> {
    let mut out = HashSet::from([PathBuf::new()]);
    for file in files {
        let mut dir = file.parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            if !out.insert(d.to_path_buf()) {
                break;
            }
            dir = d.parent();
        }
    }
    out
}

/// Drops from the folder `abs` (`rel` in the piece) the byte-code Python wrote there that is
/// not the entry's, and the folders left empty that the entry does not have. `false` when
/// anything else is there that is not the entry's.
fn prune(abs: &Path, rel: &Path, expected: &Expected) -> bool {
    let Ok(read) = std::fs::read_dir(abs) else {
        return false;
    };
    for item in read {
        let Ok(item) = item else { return false };
        let Ok(kind) = item.file_type() else {
            return false;
        };
        let path = item.path();
        let item_rel = rel.join(item.file_name());
        if kind.is_dir() {
            if !prune(&path, &item_rel, expected) {
                return false;
            }
            if !expected.folders.contains(&item_rel) && std::fs::remove_dir(&path).is_err() {
                return false;
            }
        } else if !expected.files.contains_key(&item_rel) {
            let own_bytecode = kind.is_file()
                && rel.file_name() == Some(OsStr::new("__pycache__"))
                && item_rel.extension() == Some(OsStr::new("pyc"))
                && item.metadata().is_ok_and(|m| m.nlink() == 1);
            if !own_bytecode || std::fs::remove_file(&path).is_err() {
                return false;
            }
        }
    }
    true
}

/// A piece's folders and files with their keys.
type Keys = (Vec<(String, FileKey)>, Vec<(usize, FileKey)>);

/// Checks that the piece at `abs` holds exactly the expected files and folders, each file the
/// stored one ([`Expected::vouched`]); returns the key of every folder (taken before its
/// listing) and of every file (by its index in the entry).
fn check(abs: &Path, expected: &Expected) -> Option<Keys> {
    let mut folders = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = abs.join(&rel);
        let meta = std::fs::symlink_metadata(&dir).ok()?;
        if !meta.is_dir() {
            return None;
        }
        folders.push((rel.to_string_lossy().into_owned(), file_key(&meta)));
        for item in std::fs::read_dir(&dir).ok()? {
            let item = item.ok()?;
            let item_rel = rel.join(item.file_name());
            let meta = std::fs::symlink_metadata(item.path()).ok()?;
            if meta.is_dir() && expected.folders.contains(&item_rel) {
                stack.push(item_rel);
            } else if meta.is_file() {
                let i = *expected.files.get(&item_rel)?;
                if !expected.vouched(i, &item.path(), &meta) {
                    return None;
                }
                files.push((i, file_key(&meta)));
            } else {
                return None;
            }
        }
    }
    (files.len() == expected.files.len()).then_some((folders, files))
}

/// Moves a parked or half-parked tree to a `.trash-parked-*` folder of the tier (deleted, with
/// the unlinks of stored files reported, after the next transaction).
fn discard(tree: &Path) {
    let Some(tier_root) = tree.parent().and_then(Path::parent) else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let aside = tier_root.join(format!(".trash-parked-{}-{nanos}", std::process::id()));
    if std::fs::rename(tree, &aside).is_err() {
        let _ = std::fs::remove_dir(tree);
    }
}

/// An entry's parked tree, claimed by this process for one restore.
pub struct Claimed {
    dir: PathBuf,
    fd: OwnedFd,
    manifest: Manifest,
    /// Per piece: its handle, once checked sound.
    sound: Vec<Option<OwnedFd>>,
}

/// The parked tree of the store entry at `entry_dir`, claimed, if there is one.
pub fn claim(root: &Path, entry_dir: &Path) -> Option<Claimed> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CLAIMS: AtomicUsize = AtomicUsize::new(0);
    let from = root.join(entry_dir.file_name()?);
    let claimed = root.join(format!(
        ".claim-{}-{}",
        std::process::id(),
        CLAIMS.fetch_add(1, Ordering::Relaxed)
    ));
    renameat2(None, &from, None, &claimed, RenameFlags::RENAME_NOREPLACE).ok()?;
    let opened = openat(
        None,
        &claimed,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let manifest: Option<Manifest> =
        crate::sys::fsutil::read_regular_to_string(&claimed.join(MANIFEST))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
    match (opened, manifest) {
        (Ok(fd), Some(manifest)) => Some(Claimed {
            dir: claimed,
            // SAFETY: `openat` just returned this descriptor and nothing else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            sound: Vec::new(),
            manifest,
        }),
        _ => {
            discard(&claimed);
            None
        }
    }
}

impl Claimed {
    /// Checks each piece (see the module's notes) against `entry` and its `keys`; returns, per
    /// file of the entry, the sound piece that holds it, and sets the key of each such file
    /// into `keys`.
    pub fn check(
        &mut self,
        entry: &StoreEntry,
        keys: &mut [Option<FileKey>],
    ) -> Vec<Option<usize>> {
        let mut covered = vec![None; entry.files.len()];
        self.sound = Vec::with_capacity(self.manifest.pieces.len());
        for (p, piece) in self.manifest.pieces.iter().enumerate() {
            let fd = check_piece(&self.fd, piece, entry, keys, &mut covered, p);
            if fd.is_none() {
                for c in covered.iter_mut().filter(|c| **c == Some(p)) {
                    *c = None;
                }
            }
            self.sound.push(fd);
        }
        covered
    }

    /// Moves the sound piece `p` to its place in `venv`; `false` when something is there
    /// already (the piece stays, and goes with the rest).
    pub fn place(&self, p: usize, venv: &Path) -> bool {
        let Some(piece) = self.manifest.pieces.get(p) else {
            return false;
        };
        if self.sound.get(p).is_none_or(Option::is_none) {
            return false;
        }
        renameat2(
            Some(self.fd.as_raw_fd()),
            piece.dir.as_str(),
            None,
            &venv.join(&piece.rel),
            RenameFlags::RENAME_NOREPLACE,
        )
        .is_ok()
    }
}

impl Drop for Claimed {
    /// What is left of the claimed tree goes (an empty one at once).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(MANIFEST));
        if std::fs::remove_dir(&self.dir).is_err() {
            discard(&self.dir);
        }
    }
}

/// Checks one piece; its handle when sound. Marks in `covered` the entry's files it holds (as
/// `p`) and sets their keys in `keys`.
fn check_piece(
    tree: &OwnedFd,
    piece: &Piece,
    entry: &StoreEntry,
    keys: &mut [Option<FileKey>],
    covered: &mut [Option<usize>],
    p: usize,
) -> Option<OwnedFd> {
    let fd = openat(
        Some(tree.as_raw_fd()),
        piece.dir.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let stat = |rel: &Path| -> Option<nix::sys::stat::FileStat> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        fstatat(Some(fd.as_raw_fd()), rel, AtFlags::AT_SYMLINK_NOFOLLOW).ok()
    };
    for (rel, key) in &piece.folders {
        let st = stat(Path::new(rel))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR
            || super::linking::key_of(&st) != *key
        {
            return None;
        }
    }
    // A folder directly in the entry's site-packages, holding files: never a path elsewhere.
    let prefix = Path::new(&piece.rel);
    let site = Path::new(&entry.dist_info).parent();
    let plain = matches!(
        prefix
            .file_name()
            .map(Path::new)
            .map(|n| n.components().next()),
        Some(Some(std::path::Component::Normal(_)))
    );
    if piece.files.is_empty() || prefix.parent() != site || !plain {
        return None;
    }
    // Plain text: entry paths are normalized, and a `rel` written otherwise matches nothing.
    let inside = |i: usize| {
        entry
            .files
            .get(i)
            .and_then(|f| f.path.strip_prefix(piece.rel.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|inner| !inner.is_empty())
            .map(Path::new)
    };
    // Exactly the entry's files under the piece's folder, each once.
    let under = (0..entry.files.len())
        .filter(|&i| inside(i).is_some())
        .count();
    if under != piece.files.len() {
        return None;
    }
    for &(i, key) in &piece.files {
        let inner = inside(i)?;
        if covered[i].is_some() {
            return None;
        }
        let st = stat(inner)?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG
            || super::linking::key_of(&st) != key
        {
            return None;
        }
        covered[i] = Some(p);
    }
    // Sound: the keys are what pyctl vouches for from now on.
    for &(i, key) in &piece.files {
        keys[i] = Some(key);
    }
    Some(fd)
}
