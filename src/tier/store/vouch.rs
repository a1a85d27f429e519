//! What pyctl itself did to a stored file since it was last checked, so that redo and restore
//! need not hash it again.
//!
//! A stored file's key (inode, size, change time) moves on every link and unlink, pyctl's own
//! included: each undo, redo, restore and clean links or unlinks every file it moves, so
//! without this every stored file would be hashed on every redo and restore. Two records let
//! pyctl follow its own moves, each taken right around the move, so that a change by anyone else
//! still shows:
//!
//! - `store/<entry>/keys.json`: per file of the entry, the key right after pyctl linked it into
//!   a venv (the file having just passed its check). Rewritten in place: a torn file does not
//!   parse and is ignored.
//! - `<tier>/.unlinked-*.json`: written by the background deletion of a `.trash-*` folder, per
//!   file it unlinked that had other links (a store file): the key right before the unlink and
//!   right after it, taken through one handle on the file. Read, and deleted, by the next
//!   transaction under the tier lock.
//!
//! - `<tier>/.dirs/NAME`: an emptied folder tree of site-packages (a package's folder, a
//!   `.dist-info`), kept by the background deletion instead of deleted, and moved back by the next
//!   restore of a folder of that name. A folder freed and one made again soon after are what
//!   costs most on ext4 without a journal (its allocator passes over every recently freed inode
//!   of the group on each `mkdir`); a kept one costs one `rename`. On reuse the tree must hold
//!   folders only; the folders the entry does not need go and the others get the mode a `mkdir`
//!   gives.
//!
//! A file is taken as checked when its key now is the key kept in `entry.json`, or the key of
//! `keys.json`, or follows from one of them through unlinks that began exactly at that key
//! and ended exactly at the key seen now. Any other change (a write, a `chmod`, a link or unlink
//! by anyone else) moves the change time off that chain, and the file is hashed. Nobody can set
//! a change time back; the mtime is never looked at.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::{file_key, FileKey};

/// The file name of an entry's keys after its last link by pyctl.
pub const KEYS_FILE: &str = "keys.json";
/// How the background deletion's reports begin.
pub const UNLINKED_PREFIX: &str = ".unlinked-";
/// The tier's folder of emptied folder trees kept for reuse.
pub const POOL_DIR: &str = ".dirs";

/// The unlinks the background deletions reported: per inode, (key before, key after).
#[derive(Debug, Default)]
pub struct Unlinked {
    by_ino: HashMap<u64, Vec<(FileKey, FileKey)>>,
    /// The reports read, deleted once the transaction that read them is over.
    pub reports: Vec<PathBuf>,
    /// The tier's `.dirs` (see the module's notes), when there is one and the umask is known.
    pub pool: Option<Pool>,
    /// The tier's parked trees (`super::park`), when there is such a folder.
    pub parked: Option<PathBuf>,
}

/// Emptied folder trees kept for reuse.
#[derive(Debug)]
pub struct Pool {
    pub dir: PathBuf,
    /// The mode a `mkdir` gives now (0777 less the umask).
    pub dir_mode: u32,
}

/// The process's umask, read without changing it (`umask(2)` sets it for every thread).
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}

impl Unlinked {
    /// The reports in `tier_root` (only whole ones: each is renamed into place when written).
    pub fn load(tier_root: &Path) -> Unlinked {
        let mut out = Unlinked::default();
        let pool = tier_root.join(POOL_DIR);
        if std::fs::symlink_metadata(&pool).is_ok_and(|m| m.is_dir()) {
            out.pool = current_umask().map(|umask| Pool {
                dir: pool,
                dir_mode: 0o777 & !umask,
            });
        }
        let parked = tier_root.join(super::park::PARKED_DIR);
        if std::fs::symlink_metadata(&parked).is_ok_and(|m| m.is_dir()) {
            out.parked = Some(parked);
        }
        let Ok(read) = std::fs::read_dir(tier_root) else {
            return out;
        };
        for item in read.filter_map(Result::ok) {
            let name = item.file_name().to_string_lossy().into_owned();
            if !name.starts_with(UNLINKED_PREFIX) || !name.ends_with(".json") {
                continue;
            }
            let path = item.path();
            let pairs: Option<Vec<(FileKey, FileKey)>> =
                crate::sys::fsutil::read_regular_to_string(&path)
                    .ok()
                    .and_then(|text| serde_json::from_str(&text).ok());
            for (before, after) in pairs.unwrap_or_default() {
                if before.0 == after.0 {
                    out.by_ino
                        .entry(before.0)
                        .or_default()
                        .push((before, after));
                }
            }
            out.reports.push(path);
        }
        out
    }

    /// Whether `now` follows from the checked key `base` through reported unlinks alone.
    pub fn vouches(&self, base: FileKey, now: FileKey) -> bool {
        let Some(moves) = self.by_ino.get(&base.0) else {
            return false;
        };
        let mut key = base;
        // Each step leaves from the key reached; a report never leads back (change times only
        // grow), and the bound stops a forged loop.
        for _ in 0..=moves.len() {
            if key == now {
                return true;
            }
            match moves.iter().find(|(before, _)| *before == key) {
                Some((_, after)) => key = *after,
                None => return false,
            }
        }
        false
    }

    /// Deletes the reports read (after the transaction: what it did not use is lost, and
    /// those files are hashed when next used).
    pub fn discard(&self) {
        for path in &self.reports {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The keys of `keys.json` in `entry_dir`, one per file of an entry of `n` files; none when
/// missing, torn or of another length.
pub fn read_keys(entry_dir: &Path, n: usize) -> Vec<Option<FileKey>> {
    let keys: Option<Vec<Option<FileKey>>> = std::fs::read(entry_dir.join(KEYS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match keys {
        Some(keys) if keys.len() == n => keys,
        _ => vec![None; n],
    }
}

/// Writes `keys.json` in place (no new inode, no `fsync`: a torn or lost file only means the
/// files are hashed again).
pub fn write_keys(entry_dir: &Path, keys: &[Option<FileKey>]) -> Result<()> {
    let path = entry_dir.join(KEYS_FILE);
    let bytes = serde_json::to_vec(keys)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    // Only the entry's own file: not a hard link planted to another file.
    let meta = file.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 {
        bail!("{}: not a plain file of the store", path.display());
    }
    file.set_len(0)?;
    file.write_all(&bytes)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// Deletes one `.trash-*` folder or file (see [`super::trash::delete_trash`]).
pub(super) fn delete_one(trash: &Path) -> Result<()> {
    let name = trash.file_name().map(|n| n.to_string_lossy().into_owned());
    if !name.as_deref().is_some_and(|n| n.starts_with(".trash-")) {
        bail!("{}: not a .trash-* folder of a tier", trash.display());
    }
    let meta = std::fs::symlink_metadata(trash)
        .with_context(|| format!("{}: cannot read", trash.display()))?;
    if !meta.is_dir() {
        return std::fs::remove_file(trash)
            .with_context(|| format!("{}: cannot remove", trash.display()));
    }
    if let Some(parent) = trash.parent() {
        super::park::park(parent, &site_folders(trash));
    }
    let mut pairs = Vec::new();
    remove_files(trash, &mut pairs);
    if let Some(parent) = trash.parent() {
        if !pairs.is_empty() {
            let _ = write_report(parent, &pairs);
        }
        keep_folders(trash, &parent.join(POOL_DIR));
    }
    remove_folders(trash);
    std::fs::remove_dir(trash).with_context(|| format!("{}: cannot remove", trash.display()))
}

/// Removes every file under `dir`, keeping the folders.
fn remove_files(dir: &Path, pairs: &mut Vec<(FileKey, FileKey)>) {
    // A folder never leads out of the trash (one swapped for a link is unlinked, not followed).
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return;
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for item in read.filter_map(Result::ok) {
        let path = item.path();
        match item.file_type() {
            Ok(t) if t.is_dir() => remove_files(&path, pairs),
            Ok(t) if t.is_file() => {
                let _ = unlink_reporting(&path, pairs);
            }
            _ => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Removes the folders under `dir` (and anything left in them).
fn remove_folders(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for item in read.filter_map(Result::ok) {
        let path = item.path();
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            remove_folders(&path);
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The folders directly in `dir` (not followed through links), with their names; none when it
/// cannot be read.
pub(super) fn subfolders(dir: &Path) -> Vec<(PathBuf, String)> {
    std::fs::read_dir(dir)
        .map(|read| {
            read.filter_map(Result::ok)
                .filter(|i| i.file_type().is_ok_and(|t| t.is_dir()))
                .map(|i| (i.path(), i.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The emptied folders of site-packages in a trash folder, by the name they had there: the
/// `N-NAME` items an undo moved aside, or the site-packages folders of a venv clean moved aside.
fn site_folders(trash: &Path) -> Vec<(PathBuf, String)> {
    let name = trash
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let list = subfolders;
    if name.ends_with("-files") {
        list(trash)
            .into_iter()
            .filter_map(|(path, n)| {
                let (counter, rest) = n.split_once('-')?;
                counter
                    .chars()
                    .all(|c| c.is_ascii_digit())
                    .then(|| (path, rest.to_string()))
            })
            .collect()
    } else if name.starts_with(".trash-venv-") {
        list(&trash.join("lib"))
            .into_iter()
            .filter(|(_, n)| n.starts_with("python"))
            .flat_map(|(path, _)| list(&path.join("site-packages")))
            .collect()
    } else {
        Vec::new()
    }
}

/// Moves the emptied site-packages folders of `trash` into `pool`, one per name (a name already
/// there keeps its tree); only trees of folders alone.
fn keep_folders(trash: &Path, pool: &Path) {
    let folders = site_folders(trash);
    if folders.is_empty() {
        return;
    }
    match std::fs::symlink_metadata(pool) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return,
        Err(_) => {
            if std::fs::create_dir(pool).is_err() {
                return;
            }
        }
    }
    for (path, name) in folders {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            continue;
        }
        let only_folders = walkdir::WalkDir::new(&path)
            .into_iter()
            .all(|e| e.is_ok_and(|e| e.file_type().is_dir()));
        if only_folders {
            let _ = nix::fcntl::renameat2(
                None,
                &path,
                None,
                &pool.join(&name),
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            );
        }
    }
}

/// Takes a kept folder tree out of the pool for `dest` (which must not exist yet), keeping of
/// it the folders `needed` (venv-relative paths; `rel` is the folder's own) and giving them
/// `pool.dir_mode`. The tree is claimed (renamed to a name of this call) and made right before
/// it enters the venv, where another thread may be linking into a folder of the same name.
/// `false` when there is none, or it is not folders alone, or `dest` appeared meanwhile (the
/// claimed tree then goes to a `.trash-dirs-*` of the tier, deleted in the background).
pub fn reuse_folder(
    pool: &Pool,
    name: &std::ffi::OsStr,
    dest: &Path,
    rel: &Path,
    needed: &std::collections::HashSet<&str>,
) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CLAIMS: AtomicUsize = AtomicUsize::new(0);
    let noreplace = nix::fcntl::RenameFlags::RENAME_NOREPLACE;
    let claimed = pool.dir.join(format!(
        ".claim-{}-{}",
        std::process::id(),
        CLAIMS.fetch_add(1, Ordering::Relaxed)
    ));
    if nix::fcntl::renameat2(None, &pool.dir.join(name), None, &claimed, noreplace).is_err() {
        return false;
    }
    let mut sound = true;
    let mut dirs = Vec::new();
    for e in walkdir::WalkDir::new(&claimed).contents_first(true) {
        match e {
            Ok(e) if e.file_type().is_dir() => dirs.push(e.into_path()),
            _ => sound = false,
        }
    }
    if sound {
        for dir in &dirs {
            let venv_rel = match dir.strip_prefix(&claimed) {
                Ok(r) if r.as_os_str().is_empty() => rel.to_path_buf(),
                Ok(r) => rel.join(r),
                Err(_) => continue,
            };
            if !venv_rel.to_str().is_some_and(|r| needed.contains(r)) {
                if std::fs::remove_dir(dir).is_err() {
                    sound = false;
                }
                continue;
            }
            let mode = std::fs::symlink_metadata(dir).map(|m| m.permissions().mode() & 0o7777);
            if mode.as_ref().ok() != Some(&pool.dir_mode)
                && std::fs::set_permissions(dir, std::fs::Permissions::from_mode(pool.dir_mode))
                    .is_err()
            {
                sound = false;
            }
        }
    }
    if sound && nix::fcntl::renameat2(None, &claimed, None, dest, noreplace).is_ok() {
        return true;
    }
    if let Some(tier_root) = pool.dir.parent() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let aside = tier_root.join(format!(".trash-dirs-{}-{nanos}", std::process::id()));
        let _ = std::fs::rename(&claimed, aside);
    }
    false
}

/// Unlinks `path`; for a file with other links, notes its key right before and right after,
/// both through one handle on the inode (never a name that could be swapped in between).
pub(super) fn unlink_reporting(
    path: &Path,
    pairs: &mut Vec<(FileKey, FileKey)>,
) -> std::io::Result<()> {
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_NOFOLLOW)
        .open(path);
    let before = handle.as_ref().ok().and_then(|h| h.metadata().ok());
    std::fs::remove_file(path)?;
    let (Ok(handle), Some(before)) = (handle, before) else {
        return Ok(());
    };
    if before.nlink() < 2 || !before.is_file() {
        return Ok(());
    }
    if let Ok(after) = handle.metadata() {
        pairs.push((file_key(&before), file_key(&after)));
    }
    Ok(())
}

pub(super) fn write_report(dir: &Path, pairs: &[(FileKey, FileKey)]) -> Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let stem = format!("{UNLINKED_PREFIX}{}-{nanos}", std::process::id());
    let tmp = dir.join(format!("{stem}.tmp"));
    let dest = dir.join(format!("{stem}.json"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&serde_json::to_vec(pairs)?)?;
    drop(file);
    std::fs::rename(&tmp, &dest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn key(path: &Path) -> FileKey {
        file_key(&std::fs::symlink_metadata(path).unwrap())
    }

    /// A store file linked into a trash folder, as after an undo: (store file, trash).
    fn linked_in_trash(dir: &Path) -> (PathBuf, PathBuf) {
        let stored = dir.join("stored.py");
        std::fs::write(&stored, b"print(1)\n").unwrap();
        std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o444)).unwrap();
        let trash = dir.join(".trash-1-files");
        std::fs::create_dir_all(trash.join("1/pkg")).unwrap();
        std::fs::hard_link(&stored, trash.join("1/pkg/mod.py")).unwrap();
        std::fs::write(trash.join("1/pkg/own.pyc"), b"x").unwrap();
        (stored, trash)
    }

    #[test]
    fn an_unlink_by_the_deletion_is_followed_from_the_key_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (stored, trash) = linked_in_trash(dir.path());
        let vouched = key(&stored);
        delete_one(&trash).unwrap();
        assert!(!trash.exists());
        let now = key(&stored);
        assert_ne!(vouched, now, "the unlink moved the change time");
        let unlinked = Unlinked::load(dir.path());
        assert_eq!(
            unlinked.reports.len(),
            1,
            "one report, for the file with other links"
        );
        assert!(unlinked.vouches(vouched, now));
        unlinked.discard();
        assert!(Unlinked::load(dir.path()).reports.is_empty());
    }

    #[test]
    fn a_change_before_or_after_the_unlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (stored, trash) = linked_in_trash(dir.path());
        let vouched = key(&stored);
        // Changed while it was installed (a chmod and an in-place write), then deleted.
        std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&stored, b"print(2)\n").unwrap();
        std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o444)).unwrap();
        delete_one(&trash).unwrap();
        let unlinked = Unlinked::load(dir.path());
        assert!(!unlinked.vouches(vouched, key(&stored)));

        let dir = tempfile::tempdir().unwrap();
        let (stored, trash) = linked_in_trash(dir.path());
        let vouched = key(&stored);
        delete_one(&trash).unwrap();
        // Changed after the deletion.
        std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&stored, b"print(3)\n").unwrap();
        let unlinked = Unlinked::load(dir.path());
        assert!(!unlinked.vouches(vouched, key(&stored)));
    }

    #[test]
    fn only_trash_folders_are_deleted_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("keep");
        std::fs::create_dir(&keep).unwrap();
        std::fs::write(keep.join("f"), b"x").unwrap();
        assert!(delete_one(&keep).is_err());
        let trash = dir.path().join(".trash-2-venv");
        std::fs::create_dir(&trash).unwrap();
        std::os::unix::fs::symlink(&keep, trash.join("link")).unwrap();
        delete_one(&trash).unwrap();
        assert!(!trash.exists());
        assert!(
            keep.join("f").is_file(),
            "the link was removed, not followed"
        );
    }

    #[test]
    fn emptied_folders_are_kept_and_reused_with_only_what_is_needed() {
        let dir = tempfile::tempdir().unwrap();
        let trash = dir.path().join(".trash-7-files");
        std::fs::create_dir_all(trash.join("3-pkg/sub/deep")).unwrap();
        std::fs::create_dir_all(trash.join("3-pkg/old")).unwrap();
        std::fs::write(trash.join("3-pkg/sub/mod.py"), b"x").unwrap();
        std::fs::create_dir_all(trash.join("4-other")).unwrap();
        std::fs::write(trash.join("4-other/f"), b"y").unwrap();
        delete_one(&trash).unwrap();
        assert!(!trash.exists());
        let pool_dir = dir.path().join(POOL_DIR);
        assert!(pool_dir.join("pkg/sub/deep").is_dir());
        assert!(!pool_dir.join("pkg/sub/mod.py").exists());
        let pool = Pool {
            dir: pool_dir.clone(),
            dir_mode: 0o750,
        };
        std::fs::set_permissions(
            pool_dir.join("pkg/sub"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let site = dir.path().join("venv/site");
        std::fs::create_dir_all(&site).unwrap();
        let needed: std::collections::HashSet<&str> = ["site/pkg", "site/pkg/sub"].into();
        assert!(reuse_folder(
            &pool,
            std::ffi::OsStr::new("pkg"),
            &site.join("pkg"),
            Path::new("site/pkg"),
            &needed
        ));
        assert!(site.join("pkg/sub").is_dir());
        assert!(!site.join("pkg/old").exists(), "a folder not needed goes");
        assert!(!site.join("pkg/sub/deep").exists());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&site.join("pkg/sub")), 0o750, "the mode a mkdir gives");
        assert_eq!(mode(&site.join("pkg")), 0o750);
        assert!(!pool_dir.join("pkg").exists());
        // None left, and a tree with a file in it is not used.
        assert!(!reuse_folder(
            &pool,
            std::ffi::OsStr::new("pkg"),
            &site.join("pkg2"),
            Path::new("site/pkg2"),
            &needed
        ));
        std::fs::create_dir_all(pool_dir.join("planted")).unwrap();
        std::fs::write(pool_dir.join("planted/evil.py"), b"z").unwrap();
        assert!(!reuse_folder(
            &pool,
            std::ffi::OsStr::new("planted"),
            &site.join("planted"),
            Path::new("site/planted"),
            &needed
        ));
        assert!(!site.join("planted").exists());
    }

    #[test]
    fn keys_of_another_length_or_torn_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let k = Some((1, 2, 3, 4));
        write_keys(dir.path(), &[k, None]).unwrap();
        assert_eq!(read_keys(dir.path(), 2), vec![k, None]);
        assert_eq!(read_keys(dir.path(), 3), vec![None; 3]);
        std::fs::write(dir.path().join(KEYS_FILE), b"[[1,2,3,4],nu").unwrap();
        assert_eq!(read_keys(dir.path(), 2), vec![None; 2]);
        // A hard link planted in its place is not written through.
        std::fs::remove_file(dir.path().join(KEYS_FILE)).unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"mine").unwrap();
        std::fs::hard_link(&other, dir.path().join(KEYS_FILE)).unwrap();
        assert!(write_keys(dir.path(), &[k]).is_err());
        assert_eq!(std::fs::read(&other).unwrap(), b"mine");
    }
}
