//! The empty folders of a venv, outside `lib/`: part of a state the package set does not say.
//! pip's uninstall deletes the files a wheel's headers and data put in `include/site/python3.X`
//! and `share/`, but not the folders it made for them; a state recorded after it has them, one
//! from before the install does not. Each history record lists them, and a move to a recorded
//! state (undo, redo) makes the venv's empty folders those.

use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};

/// Top-level folders not looked into: site-packages is the engine's, file by file, and a
/// package tree has no folder pip leaves empty.
const SKIPPED: [&str; 2] = ["lib", "lib64"];

/// The venv's empty folders outside `lib/` (paths relative to the venv, sorted); `None` when
/// the venv cannot be read.
pub fn empty(venv: &Path) -> Option<Vec<String>> {
    let mut dirs = Vec::new();
    let mut parents = HashSet::new();
    let walk = walkdir::WalkDir::new(venv)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && SKIPPED.iter().any(|s| e.file_name() == *s)));
    for entry in walk {
        let entry = entry.ok()?;
        let rel = entry.path().strip_prefix(venv).ok()?.to_path_buf();
        if let Some(parent) = rel.parent() {
            parents.insert(parent.to_path_buf());
        }
        if entry.file_type().is_dir() {
            dirs.push(rel);
        }
    }
    let mut out: Vec<String> = dirs
        .into_iter()
        .filter(|d| !parents.contains(d))
        .filter_map(|d| d.to_str().map(str::to_string))
        .collect();
    out.sort();
    Some(out)
}

/// A recorded folder path pyctl will act on: relative, plain names only, outside `lib/`.
fn valid(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(rel);
    let mut parts = path.components();
    let first = parts.next()?;
    let plain = |c: Component| matches!(c, Component::Normal(_));
    if !plain(first) || !parts.all(plain) || SKIPPED.iter().any(|s| first.as_os_str() == *s) {
        return None;
    }
    Some(path)
}

/// Makes the venv's empty folders outside `lib/` the `want`ed ones: an empty folder not wanted
/// goes (and each folder above it that it leaves empty), a wanted one missing is made. What
/// cannot be done is said and left: the packages are in place either way.
pub fn make_so(venv: &Path, want: &[String]) {
    let Some(now) = empty(venv) else {
        log::warn!("{}: cannot list its folders", venv.display());
        return;
    };
    let want: BTreeSet<PathBuf> = want.iter().filter_map(|w| valid(w)).collect();
    for rel in now.iter().rev().map(PathBuf::from) {
        let mut at = Some(rel.as_path());
        while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty() && !want.contains(*d)) {
            if std::fs::remove_dir(venv.join(dir)).is_err() {
                // Not empty (a file, another wanted folder below), or gone already.
                break;
            }
            at = dir.parent();
        }
    }
    for rel in &want {
        let path = venv.join(rel);
        if std::fs::symlink_metadata(&path).is_err() {
            if let Err(e) = std::fs::create_dir_all(&path) {
                log::warn!("{}: cannot make the folder: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_folders_are_listed_made_and_removed_outside_lib() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path();
        for d in [
            "include/python3.11",
            "include/site/python3.11",
            "share/x",
            "lib/python3.11/site-packages/empty",
            "bin",
        ] {
            std::fs::create_dir_all(venv.join(d)).unwrap();
        }
        std::fs::write(venv.join("share/x/notes.txt"), "n").unwrap();
        std::fs::write(venv.join("bin/python"), "").unwrap();
        let listed = empty(venv).unwrap();
        assert_eq!(listed, ["include/python3.11", "include/site/python3.11"]);

        // Another state: `share/old` empty, `include/site` gone.
        let want = [
            "include/python3.11".to_string(),
            "share/old".to_string(),
            "../outside".to_string(),
            "lib/python3.11/made".to_string(),
            "/abs".to_string(),
        ];
        make_so(venv, &want);
        assert_eq!(
            empty(venv).unwrap(),
            ["include/python3.11", "share/old"],
            "include/site went with its empty python3.11; share/old was made"
        );
        assert!(venv.join("share/x/notes.txt").exists());
        assert!(venv.join("lib/python3.11/site-packages/empty").exists());
        assert!(!dir.path().parent().unwrap().join("outside").exists());
        assert!(!venv.join("lib/python3.11/made").exists());
        assert!(!Path::new("/abs").exists());
    }
}
