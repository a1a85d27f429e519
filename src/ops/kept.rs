//! The distributions a transaction keeps: which of their files are not their own bytes any
//! more (put back from the store), and which cannot be put right from the store (reinstalled
//! by pip).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::python::inventory::{Distribution, MetadataFormat};
use crate::tier::store::{self, Store};

/// One file of a kept distribution to put back.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// Venv-relative.
    pub path: String,
    /// The freeze line of the distribution whose bytes go back.
    pub line: String,
    #[serde(skip)]
    pub(super) src: PathBuf,
}

/// A stored file that may go at a path: (owner's freeze line, the entry's `files/`, the file,
/// its key right after pyctl last linked it: `store::vouch`).
type Candidate = (String, PathBuf, store::StoredFile, Option<store::FileKey>);

/// The files of the kept distributions that are not what their store entry holds, and the
/// kept distributions that cannot be put right from the store (line, why). A path among the
/// `added` ones (what the additions bring) is theirs, not a kept file to check.
pub(super) fn find_repairs<'a>(
    store: &Store,
    venv: &Path,
    kept: &[Distribution],
    added: impl Iterator<Item = &'a str>,
) -> (Vec<Repair>, Vec<(String, String)>) {
    // Every kept file with the store copies that may go there (several owners: any of them).
    let mut owners: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for dist in kept {
        if dist.format != MetadataFormat::DistInfo {
            continue;
        }
        let Some((dir, entry)) = store.entry_for_installed(dist) else {
            continue;
        };
        let line = dist.freeze_lines().pop().unwrap_or_default();
        let linked = store::vouch::read_keys(&dir, entry.files.len());
        for (file, linked) in entry.files.into_iter().zip(linked) {
            owners.entry(file.path.clone()).or_default().push((
                line.clone(),
                dir.join("files"),
                file,
                linked,
            ));
        }
    }
    if !owners.is_empty() {
        for path in added {
            owners.remove(path);
        }
    }
    let items: Vec<(String, Vec<Candidate>)> = owners.into_iter().collect();
    let checked = crate::sys::parallel::map(&items, |(path, candidates)| {
        check_kept_file(venv, path, candidates)
    });
    let mut repairs = Vec::new();
    let mut damaged: BTreeMap<String, String> = BTreeMap::new();
    for result in checked {
        match result {
            Ok(None) => {}
            Ok(Some(r)) => repairs.push(r),
            Err((line, why)) => {
                damaged.entry(line).or_insert(why);
            }
        }
    }
    // A distribution pip reinstalls gets all its files from pip.
    repairs.retain(|r| !damaged.contains_key(&r.line));
    (repairs, damaged.into_iter().collect())
}

/// Whether the venv's `path` is one of its owners' own file; if not, the store copy to put
/// there, or (line, why) when no owner's store copy is sound.
fn check_kept_file(
    venv: &Path,
    path: &str,
    candidates: &[Candidate],
) -> Result<Option<Repair>, (String, String)> {
    use std::os::unix::fs::MetadataExt;
    let dest = venv.join(path);
    let here = std::fs::symlink_metadata(&dest).ok();
    for (_, files, file, linked) in candidates {
        let src = files.join(&file.path);
        let Ok(stored) = std::fs::symlink_metadata(&src) else {
            continue;
        };
        let Some(here) = &here else { continue };
        if stored.file_type().is_symlink() {
            if here.file_type().is_symlink()
                && std::fs::read_link(&src).ok() == std::fs::read_link(&dest).ok()
            {
                return Ok(None);
            }
            continue;
        }
        if !here.is_file() {
            continue;
        }
        if here.ino() == stored.ino() && here.dev() == stored.dev() {
            // The same inode: sound if the stored file is (as pyctl last linked it, or checked).
            if linked.is_some_and(|k| k == store::file_key(&stored))
                || Store::verify_file(files, file).is_ok()
            {
                return Ok(None);
            }
            continue;
        }
        // Another inode (a copy, another distribution's file, an editor's save): its content
        // and mode decide.
        if here.len() != stored.len() || here.mode() & 0o7777 != stored.mode() & 0o7777 {
            continue;
        }
        let same = match file.hash.as_deref().filter(|h| h.starts_with("sha256=")) {
            Some(expected) => store::file_hash(&dest).is_ok_and(|h| h == expected),
            None => std::fs::read(&dest).ok() == std::fs::read(&src).ok(),
        };
        if same {
            return Ok(None);
        }
    }
    let mut why = None;
    for (line, files, file, _) in candidates {
        match Store::verify_file(files, file) {
            Ok(()) => {
                return Ok(Some(Repair {
                    path: path.to_string(),
                    line: line.clone(),
                    src: files.join(&file.path),
                }))
            }
            Err(e) => why = Some((line.clone(), e.to_string())),
        }
    }
    Err(why.unwrap_or_else(|| (String::new(), format!("{path}: no owner in the store"))))
}
