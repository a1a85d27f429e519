//! Removing distributions from a venv, switching the set with renames where it can.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

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
    protected: &HashSet<String>,
    trash: &Path,
) -> Result<()> {
    std::fs::create_dir_all(trash)
        .with_context(|| format!("{}: cannot create", trash.display()))?;
    let mut counter = 0usize;
    let mut move_aside = |path: &Path| -> Result<()> {
        counter += 1;
        // `N-NAME`: the background deletion keeps the emptied folder for the next restore of a
        // folder of that name (`trash::delete_trash`).
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
    // The site-packages folders of the removed distributions, venv-relative.
    let mut sites: Vec<&str> = doomed
        .iter()
        .filter_map(|d| d.metadata_path.parent()?.strip_prefix(venv).ok()?.to_str())
        .collect();
    sites.sort_unstable();
    sites.dedup();
    // Every file to remove (venv-relative, as RECORD gives it: plain text, no walk through path
    // components for each of thousands of files), with the top-level folder of site-packages
    // holding it (none for a file directly in site-packages or elsewhere).
    let mut files: Vec<(String, Option<String>)> = Vec::new();
    // RECORDs read and parsed across the cores, then each `.dist-info` moved aside first.
    let records = crate::sys::parallel::map(doomed, |dist| installed_files(venv, dist));
    for (dist, rows) in doomed.iter().zip(records) {
        let rows = rows?;
        move_aside(&dist.metadata_path)?;
        for row in rows.into_iter().filter(|r| !protected.contains(&r.path)) {
            let top = sites.iter().find_map(|site| {
                let (first, _) = below(&row.path, site)?.split_once('/')?;
                Some(join_rel(site, first))
            });
            files.push((row.path, top));
        }
    }
    let file_set: HashSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let mut candidates: Vec<&str> = files.iter().filter_map(|(_, t)| t.as_deref()).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut moved: HashSet<&str> = HashSet::new();
    for top in candidates {
        let abs = venv.join(top);
        if abs.is_dir() && only_holds(venv, &abs, &file_set) {
            move_aside(&abs)?;
            moved.insert(top);
        }
    }
    // The folders the rest leaves, to remove when empty.
    let mut dirs: HashSet<&str> = HashSet::new();
    // The unlinks of stored files, reported as the background deletion reports its own
    // (`vouch`), so that the next restore need not hash those files.
    let mut pairs = Vec::new();
    for (rel, top) in &files {
        if top.as_deref().is_some_and(|t| moved.contains(t)) {
            continue;
        }
        remove_if_present(&venv.join(rel), &mut pairs)?;
        if Path::new(rel).extension().is_some_and(|e| e == "py") {
            remove_bytecode(venv, rel, protected, &mut pairs)?;
        }
        let mut dir = rel.as_str();
        while let Some(slash) = dir.rfind('/') {
            dir = &dir[..slash];
            if dir.is_empty() || !dirs.insert(dir) {
                break;
            }
        }
    }
    remove_empty_dirs(venv, dirs);
    if let (false, Some(tier_root)) = (pairs.is_empty(), trash.parent()) {
        let _ = super::vouch::write_report(tier_root, &pairs);
    }
    Ok(())
}

/// `path` below the folder `dir` (both venv-relative text), without the `/` between.
fn below<'p>(path: &'p str, dir: &str) -> Option<&'p str> {
    if dir.is_empty() {
        return Some(path);
    }
    path.strip_prefix(dir)?.strip_prefix('/')
}

/// `dir/name` (venv-relative text; `dir` may be the venv itself, `""`).
fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether every file under `dir` (in `venv`) is one of `files` (venv-relative), or byte-code
/// in a `__pycache__` whose source is one of `files`.
fn only_holds(venv: &Path, dir: &Path, files: &HashSet<&str>) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let prefix = venv.as_os_str().as_bytes();
    walkdir::WalkDir::new(dir)
        .into_iter()
        .all(|item| match item {
            Ok(e) if e.file_type().is_dir() => true,
            Ok(e) => {
                // The walk's paths are `dir` joined with names, and `dir` is in `venv`.
                let rel = e
                    .path()
                    .as_os_str()
                    .as_bytes()
                    .strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix(b"/"))
                    .and_then(|r| std::str::from_utf8(r).ok());
                rel.is_some_and(|rel| {
                    files.contains(rel)
                        || bytecode_source(rel).is_some_and(|s| files.contains(s.as_str()))
                })
            }
            Err(_) => false,
        })
}

/// `d/__pycache__/x.cpython-311.pyc` → `d/x.py`.
fn bytecode_source(pyc: &str) -> Option<String> {
    let (cache, name) = pyc.rsplit_once('/')?;
    if !name.ends_with(".pyc") {
        return None;
    }
    let parent = match cache.rsplit_once('/') {
        Some((parent, "__pycache__")) => Some(parent),
        None if cache == "__pycache__" => None,
        _ => return None,
    };
    let stem = name.split('.').next()?;
    Some(match parent {
        Some(parent) => format!("{parent}/{stem}.py"),
        None => format!("{stem}.py"),
    })
}

/// Removes folders left empty (venv-relative), deepest first; a folder that is not empty
/// stays, and so do the venv's own `site-packages`, `bin` and `lib`.
fn remove_empty_dirs(venv: &Path, dirs: HashSet<&str>) {
    let mut dirs: Vec<&str> = dirs.into_iter().collect();
    dirs.sort_unstable_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for dir in dirs {
        let name = dir.rsplit('/').next().unwrap_or(dir);
        if !matches!(name, "site-packages" | "bin" | "lib") {
            let _ = std::fs::remove_dir(venv.join(dir));
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

/// `x.py` (venv-relative) → `__pycache__/x.*.pyc`, unless protected.
fn remove_bytecode(
    venv: &Path,
    py: &str,
    protected: &HashSet<String>,
    pairs: &mut Vec<(FileKey, FileKey)>,
) -> Result<()> {
    let (dir, file) = py.rsplit_once('/').unwrap_or(("", py));
    let stem = file.strip_suffix(".py").unwrap_or(file);
    let cache = join_rel(dir, "__pycache__");
    let Ok(read) = std::fs::read_dir(venv.join(&cache)) else {
        return Ok(());
    };
    let prefix = format!("{stem}.");
    for item in read.filter_map(Result::ok) {
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix)
            && name.ends_with(".pyc")
            && !protected.contains(&format!("{cache}/{name}"))
        {
            remove_if_present(&item.path(), pairs)?;
        }
    }
    Ok(())
}
