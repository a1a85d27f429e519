//! Removing distributions from a venv, switching the set with renames where it can.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{installed_files, FileKey};
use crate::python::inventory::Distribution;

/// Removes several distributions at once, switching the set with renames where it can: a
/// top-level folder of site-packages holding nothing but files of the removed distributions
/// (and their byte-code) is moved into `trash` in one step, as is each `.dist-info`; the rest is
/// unlinked file by file. The caller deletes `trash` afterwards, when the venv is already in its
/// target state. Each `.dist-info` goes first, so a kill half-way never leaves a distribution
/// that looks installed but is not.
///
/// A path in `protected` (a file a kept distribution owns too) stays, as does byte-code whose
/// source is not being removed: the shared `site-packages/__pycache__` holds every top-level
/// module's.
pub fn remove_dists(
    venv: &Path,
    doomed: &[&Distribution],
    protected: &HashSet<PathBuf>,
    trash: &Path,
) -> Result<()> {
    std::fs::create_dir_all(trash)
        .with_context(|| format!("{}: cannot create", trash.display()))?;
    let mut counter = 0usize;
    let mut move_aside = |path: &Path| -> Result<()> {
        counter += 1;
        // `N-NAME`: the background deletion keeps the emptied folder for the next restore of a
        // folder of that name (`vouch::delete_trash`).
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n.len() <= 200);
        let dest = match name {
            Some(name) => trash.join(format!("{counter}-{name}")),
            None => trash.join(counter.to_string()),
        };
        std::fs::rename(path, &dest)
            .with_context(|| format!("cannot move {} aside", path.display()))
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for dist in doomed {
        let rows = installed_files(venv, dist)?;
        move_aside(&dist.metadata_path)?;
        files.extend(
            rows.into_iter()
                .map(|r| venv.join(r.path))
                .filter(|p| !protected.contains(p)),
        );
    }
    let file_set: HashSet<&Path> = files.iter().map(PathBuf::as_path).collect();
    // Each file's top-level folder in site-packages (None for files directly in it or elsewhere).
    let site_dirs: BTreeSet<PathBuf> = doomed
        .iter()
        .filter_map(|d| d.metadata_path.parent().map(Path::to_path_buf))
        .collect();
    let top_of = |file: &Path| -> Option<PathBuf> {
        site_dirs.iter().find_map(|site| {
            let rel = file.strip_prefix(site).ok()?;
            let mut comps = rel.components();
            let first = comps.next()?;
            comps.next()?;
            Some(site.join(first))
        })
    };
    let tops: Vec<Option<PathBuf>> = files.iter().map(|f| top_of(f)).collect();
    let mut moved: HashSet<PathBuf> = HashSet::new();
    let candidates: BTreeSet<&PathBuf> = tops.iter().flatten().collect();
    for top in candidates {
        if top.is_dir() && only_holds(top, &file_set) {
            move_aside(top)?;
            moved.insert(top.clone());
        }
    }
    let mut dirs: BTreeMap<usize, BTreeSet<PathBuf>> = BTreeMap::new();
    // The unlinks of stored files, reported as the background deletion reports its own
    // (`vouch`), so that the next restore need not hash those files.
    let mut pairs = Vec::new();
    for (path, top) in files.iter().zip(&tops) {
        if top.as_ref().is_some_and(|t| moved.contains(t)) {
            continue;
        }
        remove_if_present(path, &mut pairs)?;
        if path.extension().is_some_and(|e| e == "py") {
            remove_bytecode(path, protected, &mut pairs)?;
        }
        let mut parent = path.parent();
        while let Some(dir) = parent {
            if dir == venv || !dir.starts_with(venv) {
                break;
            }
            if !dirs
                .entry(dir.components().count())
                .or_default()
                .insert(dir.to_path_buf())
            {
                break;
            }
            parent = dir.parent();
        }
    }
    remove_empty_dirs(dirs);
    if let (false, Some(tier_root)) = (pairs.is_empty(), trash.parent()) {
        let _ = super::vouch::write_report(tier_root, &pairs);
    }
    Ok(())
}

/// Whether every file under `dir` is one of `files`, or byte-code in a `__pycache__` whose
/// source is one of `files`.
fn only_holds(dir: &Path, files: &HashSet<&Path>) -> bool {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .all(|item| match item {
            Ok(e) if e.file_type().is_dir() => true,
            Ok(e) => {
                let p = e.path();
                files.contains(p) || bytecode_source(p).is_some_and(|s| files.contains(s.as_path()))
            }
            Err(_) => false,
        })
}

/// `d/__pycache__/x.cpython-311.pyc` → `d/x.py`.
fn bytecode_source(pyc: &Path) -> Option<PathBuf> {
    if pyc.extension()? != "pyc" {
        return None;
    }
    let cache = pyc.parent()?;
    if cache.file_name()? != "__pycache__" {
        return None;
    }
    let name = pyc.file_name()?.to_str()?;
    let stem = name.split('.').next()?;
    Some(cache.parent()?.join(format!("{stem}.py")))
}

/// Removes folders left empty, deepest first; a folder that is not empty stays, and so do the
/// venv's own `site-packages`, `bin` and `lib`.
fn remove_empty_dirs(dirs: BTreeMap<usize, BTreeSet<PathBuf>>) {
    for (_, level) in dirs.into_iter().rev() {
        for dir in level {
            let keep = dir
                .file_name()
                .is_some_and(|n| n == "site-packages" || n == "bin" || n == "lib");
            if !keep {
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

fn remove_if_present(path: &Path, pairs: &mut Vec<(FileKey, FileKey)>) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) if m.is_file() && m.nlink() > 1 => super::vouch::unlink_reporting(path, pairs)
            .with_context(|| format!("{}: cannot remove", path.display())),
        Ok(_) => {
            std::fs::remove_file(path).with_context(|| format!("{}: cannot remove", path.display()))
        }
        Err(_) => Ok(()),
    }
}

/// `x.py` → `__pycache__/x.*.pyc`, unless protected.
fn remove_bytecode(
    py: &Path,
    protected: &HashSet<PathBuf>,
    pairs: &mut Vec<(FileKey, FileKey)>,
) -> Result<()> {
    let (Some(dir), Some(stem)) = (py.parent(), py.file_stem()) else {
        return Ok(());
    };
    let cache = dir.join("__pycache__");
    let Ok(read) = std::fs::read_dir(&cache) else {
        return Ok(());
    };
    let prefix = format!("{}.", stem.to_string_lossy());
    for item in read.filter_map(Result::ok) {
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".pyc") && !protected.contains(&item.path())
        {
            remove_if_present(&item.path(), pairs)?;
        }
    }
    Ok(())
}
