//! The files `pyctl migrate` takes out of the user site: moved (never deleted) into
//! `<tier>/migrated/<entry id>/`, with a `manifest.json` of original -> backup paths written
//! before they move, and put back when the entry is undone.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::UserSite;
use crate::ops::transaction::Operation;
use crate::python::inventory::Distribution;
use crate::tier::history::{Kind, Log};
use crate::tier::store;
use crate::tier::Tier;
use crate::ui::Ui;

/// Where migrate entry `id` keeps the files it moved out of the user site.
pub fn backup_dir(tier: &Tier, id: u64) -> PathBuf {
    tier.root.join("migrated").join(id.to_string())
}

const MANIFEST: &str = "manifest.json";

/// `<backup dir>/manifest.json`: every file moved out of the user site, where it came from and
/// where it is kept (relative to the backup folder). Written before the files move, so a run
/// killed half-way still says where everything went.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) id: u64,
    pub(super) user_base: PathBuf,
    pub(super) dists: Vec<ManifestDist>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ManifestDist {
    name: String,
    version: String,
    files: Vec<MovedFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MovedFile {
    original: PathBuf,
    backup: PathBuf,
}

impl Manifest {
    fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        crate::sys::fsutil::write_atomic(&dir.join(MANIFEST), &serde_json::to_vec_pretty(self)?)
    }

    fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a manifest", path.display()))
    }
}

/// `/home/u/.local/bin/x` is kept as `files/home/u/.local/bin/x`.
fn backup_name(original: &Path) -> PathBuf {
    let mut out = PathBuf::from("files");
    for c in original.components() {
        if let std::path::Component::Normal(part) = c {
            out.push(part);
        }
    }
    out
}

/// Takes a distribution out of the user site as `pip uninstall` would (every file its RECORD
/// lists inside the user base, scripts in `bin/` included, their `__pycache__` entries, the
/// `.dist-info` folder), but moves the files into `dir` instead of deleting them, and lists them
/// in the manifest there. Folders left empty in the site are removed.
pub(super) fn move_out_of_user_site(
    site: &UserSite,
    dist: &Distribution,
    dir: &Path,
    manifest: &mut Manifest,
) -> Result<()> {
    let rows = store::installed_files(&site.base, dist)?;
    let mut originals: Vec<PathBuf> = Vec::new();
    let mut folders: Vec<PathBuf> = Vec::new();
    for row in rows {
        let path = site.base.join(&row.path);
        if path.extension().is_some_and(|e| e == "py") {
            originals.extend(bytecode_of(&path));
        }
        if let Some(parent) = path.parent() {
            folders.push(parent.to_path_buf());
        }
        originals.push(path);
    }
    // What is in the .dist-info folder but not in RECORD (RECORD itself, often).
    collect_files(&dist.metadata_path, &mut originals);
    originals.sort();
    originals.dedup();
    originals.retain(|p| p.symlink_metadata().is_ok_and(|m| !m.is_dir()));
    let files: Vec<MovedFile> = originals
        .into_iter()
        .map(|original| MovedFile {
            backup: backup_name(&original),
            original,
        })
        .collect();
    manifest.dists.push(ManifestDist {
        name: dist.name.clone(),
        version: dist.display_version().to_string(),
        files: files.clone(),
    });
    manifest.write(dir)?;
    for file in &files {
        move_file(&file.original, &dir.join(&file.backup))?;
    }
    if dist.metadata_path.is_dir() {
        remove_empty_dirs(&dist.metadata_path);
    }
    // Deepest first, and never the site-packages or bin folders themselves.
    folders.sort_by_key(|f| std::cmp::Reverse(f.components().count()));
    folders.dedup();
    for folder in folders {
        let mut dir = folder.as_path();
        while dir.starts_with(&site.site) && dir != site.site {
            let pycache = dir.join("__pycache__");
            if pycache.is_dir() && is_empty_dir(&pycache) {
                let _ = std::fs::remove_dir(&pycache);
            }
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
            match dir.parent() {
                Some(p) => dir = p,
                None => break,
            }
        }
    }
    Ok(())
}

/// Every file (not folder) under `dir`, recursively.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&path, out),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
}

/// Removes the folders under `dir` (and `dir`) that hold no file, deepest first.
fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Moves `from` to `to` (its folder created): a rename on the same filesystem, a copy then a
/// delete across filesystems. A missing `from` is not an error (nothing to move).
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if from.symlink_metadata().is_err() {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            let meta = from.symlink_metadata()?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(from)
                    .with_context(|| format!("{}: cannot read the link", from.display()))?;
                std::os::unix::fs::symlink(&target, to)
                    .with_context(|| format!("{}: cannot create", to.display()))?;
            } else {
                std::fs::copy(from, to).with_context(|| {
                    format!("cannot copy {} to {}", from.display(), to.display())
                })?;
            }
            remove_file(from)
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
        }
    }
}

/// What putting back one migrate entry's files did.
#[derive(Debug, Default)]
pub struct PutBack {
    /// `name==version` of each distribution whose files went back.
    pub dists: Vec<String>,
    pub files: usize,
    /// Files not put back because something is already at their place.
    pub skipped: Vec<PathBuf>,
    /// The backup folder, when it stays (something was skipped or could not move).
    pub kept: Option<PathBuf>,
}

/// Moves the files migrate entry `id` took out of the user site back to their places, never over
/// an existing file (those are skipped, named, and stay in the backup folder). Removes the
/// backup folder once it is empty. `None` when the entry has no backup folder.
pub fn put_back(ui: &Ui, tier: &Tier, id: u64) -> Result<Option<PutBack>> {
    let dir = backup_dir(tier, id);
    if !dir.join(MANIFEST).is_file() {
        return Ok(None);
    }
    let manifest = Manifest::read(&dir)?;
    let mut result = PutBack::default();
    let mut left = Manifest {
        id: manifest.id,
        user_base: manifest.user_base.clone(),
        dists: Vec::new(),
    };
    for dist in manifest.dists {
        let mut remaining = Vec::new();
        let mut moved_any = false;
        for file in dist.files {
            let backup = dir.join(&file.backup);
            if backup.symlink_metadata().is_err() {
                // Never moved (a run killed half-way), or already back.
                continue;
            }
            if file.original.symlink_metadata().is_ok() {
                ui.warn(&format!(
                    "{} exists; not overwritten (the migrated copy stays in {})",
                    file.original.display(),
                    backup.display()
                ));
                result.skipped.push(file.original.clone());
                remaining.push(file);
                continue;
            }
            match move_file(&backup, &file.original) {
                Ok(()) => {
                    moved_any = true;
                    result.files += 1;
                }
                Err(e) => {
                    ui.warn(&format!("{e:#}; it stays in {}", backup.display()));
                    remaining.push(file);
                }
            }
        }
        if moved_any {
            result
                .dists
                .push(format!("{}=={}", dist.name, dist.version));
        }
        if !remaining.is_empty() {
            left.dists.push(ManifestDist {
                files: remaining,
                ..dist
            });
        }
    }
    if left.dists.is_empty() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("{}: cannot remove", dir.display()))?;
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    } else {
        left.write(&dir)?;
        remove_empty_dirs(&dir.join("files"));
        result.kept = Some(dir);
    }
    Ok(Some(result))
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("{}: cannot remove", path.display())),
    }
}

/// `x.py`'s `__pycache__/x.*.pyc`.
fn bytecode_of(py: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (py.parent(), py.file_stem().and_then(|s| s.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir.join("__pycache__")) else {
        return Vec::new();
    };
    let prefix = format!("{stem}.");
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".pyc")
        })
        .map(|entry| entry.path())
        .collect()
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none())
}

/// The user site follows the migrate entries a transaction undoes: the files `pyctl migrate`
/// moved out of it are put back once the transaction succeeded (when it failed, they stay in
/// their backup folder, said). A migrate entry brought back into effect (redo, `undo --to` a
/// later state) gets its packages back in the tier from the store; the user-site copies stay
/// where they are, said, and `pyctl migrate` moves them out again.
pub fn user_site_follows(ui: &Ui, tier: &Tier, log: &Log, op: &Operation, succeeded: bool) {
    let (undone, reapplied): (Vec<u64>, Vec<u64>) = match op.kind {
        Kind::Undo => (op.reverts.clone(), op.reapplies.clone()),
        Kind::Redo => op.reverts.iter().filter_map(|id| log.get(*id)).fold(
            (Vec::new(), Vec::new()),
            |(mut u, mut r), e| {
                u.extend(&e.before.reapplies);
                r.extend(&e.before.reverts);
                (u, r)
            },
        ),
        _ => return,
    };
    for id in undone {
        let dir = backup_dir(tier, id);
        if !dir.exists() {
            continue;
        }
        if !succeeded {
            ui.warn(&format!(
                "the user-site files migrate #{id} moved stay in {} (the operation did not fully \
                 succeed; move them back by hand, its manifest.json says where each goes)",
                dir.display()
            ));
            continue;
        }
        match put_back(ui, tier, id) {
            Ok(None) => {}
            Ok(Some(back)) => {
                if back.files > 0 {
                    ui.info(&format!(
                        "put back into the user site what migrate #{id} moved out: {} ({} files)",
                        back.dists.join(", "),
                        back.files
                    ));
                }
                if let Some(kept) = back.kept {
                    ui.warn(&format!(
                        "some files of migrate #{id} were not put back (see above); they stay in \
                         {}",
                        kept.display()
                    ));
                }
            }
            Err(e) => ui.warn(&format!(
                "cannot put back the user-site files of migrate #{id}: {e:#}; they stay in {}",
                dir.display()
            )),
        }
    }
    for id in reapplied {
        if log.get(id).is_some_and(|e| e.before.kind == Kind::Migrate) {
            ui.info(&format!(
                "migrate #{id}'s packages are in the tier again; the copies undo put back in the \
                 user site stay there (`pyctl migrate` moves them out again)"
            ));
        }
    }
}
