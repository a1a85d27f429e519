//! The empty folders of a venv's data areas (`include/`, `share/`, `etc/`): part of a state the
//! package set does not say. pip's uninstall deletes the files a wheel's headers and data put
//! there (`include/site/python3.X/NAME`, `share/...`), but not every folder it made for them; a
//! state recorded after it has them, one from before the install does not. Each history record
//! (and snapshot) lists them, and a move to a recorded state makes the venv's empty folders
//! there those.
//!
//! Only those three areas: what else a venv holds outside `lib/` is not pyctl's to tidy
//! (`src/`, where `pip install -e git+...` keeps its checkouts, with their own empty folders).

use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};

/// The top-level folders of a venv a wheel's headers and data go to (pip's `headers` scheme
/// path, and the `data` paths wheels use).
const AREAS: [&str; 3] = ["include", "share", "etc"];

/// The empty folders of the venv's data areas (paths relative to the venv, sorted); `None`
/// when one cannot be read.
pub fn empty(venv: &Path) -> Option<Vec<String>> {
    let mut dirs = Vec::new();
    let mut parents = HashSet::new();
    for area in AREAS {
        let top = venv.join(area);
        match std::fs::symlink_metadata(&top) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return None,
        }
        for entry in walkdir::WalkDir::new(&top) {
            let entry = entry.ok()?;
            let rel = entry.path().strip_prefix(venv).ok()?.to_path_buf();
            if let Some(parent) = rel.parent() {
                parents.insert(parent.to_path_buf());
            }
            if entry.file_type().is_dir() {
                dirs.push(rel);
            }
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

/// A recorded folder path pyctl will act on: relative, plain names only, in a data area.
fn valid(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(rel);
    let mut parts = path.components();
    let first = parts.next()?;
    let plain = |c: Component| matches!(c, Component::Normal(_));
    if !plain(first) || !parts.all(plain) || !AREAS.iter().any(|a| first.as_os_str() == *a) {
        return None;
    }
    Some(path)
}

/// The folders of `want` pyctl acts on, as a set.
fn wanted(want: &[String]) -> BTreeSet<PathBuf> {
    want.iter().filter_map(|w| valid(w)).collect()
}

/// Whether the venv's empty folders are other than the `want`ed ones (not when they cannot be
/// read: then nothing is done about them either).
pub fn differ(venv: &Path, want: &[String]) -> bool {
    empty(venv).is_some_and(|now| wanted(&now) != wanted(want))
}

/// Makes the venv's empty folders in its data areas the `want`ed ones: an empty folder not
/// wanted goes (and each folder above it that it leaves empty, the area's own included: a state
/// that had it empty lists it), a wanted one missing is made, folder by folder, never through a
/// link. What cannot be done is said and left: the packages are in place either way.
pub fn make_so(venv: &Path, want: &[String]) {
    let Some(now) = empty(venv) else {
        log::warn!("{}: cannot list its folders", venv.display());
        return;
    };
    let want = wanted(want);
    for rel in now.iter().rev().map(PathBuf::from) {
        let mut at = Some(rel.as_path());
        while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
            if want.contains(dir) || std::fs::remove_dir(venv.join(dir)).is_err() {
                // Wanted, or not empty (a file, a wanted folder below), or gone already.
                break;
            }
            at = dir.parent();
        }
    }
    for rel in &want {
        let mut at = venv.to_path_buf();
        for part in rel.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => {
                    log::warn!("{}: not a folder; left", at.display());
                    break;
                }
                Err(_) => {
                    if let Err(e) = std::fs::create_dir(&at) {
                        log::warn!("{}: cannot make the folder: {e}", at.display());
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_folders_are_listed_made_and_removed_in_the_data_areas_only() {
        let dir = tempfile::tempdir().unwrap();
        let venv = dir.path().join("venv");
        for d in [
            "include/python3.11",
            "include/site/python3.11",
            "share/x",
            "lib/python3.11/site-packages/empty",
            "src/pkg/.git/refs/heads",
            "bin",
        ] {
            std::fs::create_dir_all(venv.join(d)).unwrap();
        }
        std::fs::write(venv.join("share/x/notes.txt"), "n").unwrap();
        std::fs::write(venv.join("bin/python"), "").unwrap();
        std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), venv.join("etc")).unwrap();
        let listed = empty(&venv).unwrap();
        assert_eq!(listed, ["include/python3.11", "include/site/python3.11"]);

        // Another state: `share/old` and `etc/made` empty, `include/site` gone.
        let want = [
            "include/python3.11".to_string(),
            "share/old".to_string(),
            "etc/made".to_string(),
            "share/../../outside".to_string(),
            "lib/python3.11/made".to_string(),
            "src/made".to_string(),
            "/abs".to_string(),
        ];
        assert!(differ(&venv, &want));
        make_so(&venv, &want);
        assert_eq!(
            empty(&venv).unwrap(),
            ["include/python3.11", "share/old"],
            "include/site went with its empty python3.11; share/old was made"
        );
        assert!(!differ(
            &venv,
            &["share/old".into(), "include/python3.11".into()]
        ));
        assert!(venv.join("share/x/notes.txt").exists());
        assert!(venv.join("include").is_dir());
        // An area left empty goes too, unless wanted.
        std::fs::remove_file(venv.join("share/x/notes.txt")).unwrap();
        make_so(&venv, &["share".into()]);
        assert_eq!(empty(&venv).unwrap(), ["share"]);
        make_so(&venv, &[]);
        assert_eq!(empty(&venv).unwrap(), Vec::<String>::new());
        assert!(!venv.join("share").exists() && !venv.join("include").exists());
        assert!(venv.join("lib/python3.11/site-packages/empty").exists());
        assert!(venv.join("src/pkg/.git/refs/heads").exists());
        assert!(!dir.path().join("outside").exists());
        assert!(
            !dir.path().join("elsewhere/made").exists(),
            "made through a link"
        );
        assert!(!venv.join("lib/python3.11/made").exists());
        assert!(!venv.join("src/made").exists());
    }
}
