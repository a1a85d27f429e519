//! The doctor's checks of installed files: distributions whose files are not what their RECORD
//! says, and files in site-packages that no distribution owns.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{quiet, Checkup, Finding};
use crate::ops::transaction;
use crate::python::inventory::{MetadataFormat, PackageSet};
use crate::tier::history;
use crate::tier::shims;
use crate::tier::store::{Store, StoreEntry};
use crate::tier::Tier;

/// Installed distributions whose files are not what their RECORD says: missing, changed in
/// place, or holding another distribution's bytes (two distributions shipping the same file:
/// only one of them can be whole), naming the operation that did it when the history tells.
/// `--fix` puts back what the store can (missing and changed files; pip reinstalls what the
/// store cannot give back), as a recorded operation; a clash between two installed
/// distributions is left to the user.
pub(super) fn check_installed_files(c: &Checkup, findings: &mut Vec<Finding>) -> Result<()> {
    let venv = c.tier.venv();
    let Ok(set) = PackageSet::scan(&venv) else {
        return Ok(());
    };
    let log = history::read_log(&c.tier.history_dir())?;
    let store = transaction::store_of(c.tier, c.config);
    let shim_paths = shims::shim_paths(c.tier);
    let damaged = damaged_files(&venv, &set, &store, &log, &shim_paths);
    if damaged.is_empty() {
        return Ok(());
    }
    let repairable = damaged.values().any(|(r, _)| !r.is_empty());
    let mut fixed = false;
    if c.fix && repairable {
        fixed = crate::ops::repair::repair_installed(c.ctx, &quiet(c.ui), c.tier, c.config, &log)?;
    }
    let listed = |problems: &[String]| {
        let more = if problems.len() > 3 {
            format!(" and {} more", problems.len() - 3)
        } else {
            String::new()
        };
        format!("{}{more}", problems[..problems.len().min(3)].join("; "))
    };
    for (line, (repairs, clashes)) in damaged {
        if !repairs.is_empty() {
            let mut f = Finding::new(
                "installed files",
                format!("{line} is damaged: {}", listed(&repairs)),
                "`pyctl doctor --fix` puts its own files back from the store",
            );
            f.fixed = fixed;
            findings.push(f);
        }
        if !clashes.is_empty() {
            findings.push(Finding::new(
                "installed files",
                format!("{line} is damaged: {}", listed(&clashes)),
                "two installed distributions ship the same files and only one can be \
                      whole: `pip uninstall` one of them (`pyctl undo` of the operation named \
                      puts the first back as it was)",
            ));
        }
    }
    Ok(())
}

/// The damaged files of the venv's distributions, by freeze line: (problems that `--fix`
/// repairs, clashes with another distribution).
fn damaged_files(
    venv: &Path,
    set: &PackageSet,
    store: &Store,
    log: &history::Log,
    shim_paths: &HashSet<String>,
) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let mut damaged: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for dist in set.dists.values() {
        if dist.format != MetadataFormat::DistInfo {
            continue;
        }
        let Ok(rows) = crate::tier::store::installed_files(venv, dist) else {
            continue;
        };
        let stored = store.entry_for_installed(dist);
        let line = dist.freeze_lines().pop().unwrap_or_default();
        for row in rows {
            let Some(expected) = row.hash.as_deref().filter(|h| h.starts_with("sha256=")) else {
                continue;
            };
            // pip's own `bin/pip*` are pyctl's shims on purpose.
            if shim_paths.contains(&row.path) || intact(venv, stored.as_ref(), &row.path, expected)
            {
                continue;
            }
            let (what, clash) = blame(venv, set, store, log, &row.path);
            let slot = damaged.entry(line.clone()).or_default();
            if clash {
                slot.1.push(what);
            } else {
                slot.0.push(what);
            }
        }
    }
    damaged
}

/// Whether the installed file `rel` is whole: the stored copy itself (same inode, verified),
/// or bytes of the hash RECORD names.
fn intact(venv: &Path, stored: Option<&(PathBuf, StoreEntry)>, rel: &str, expected: &str) -> bool {
    let path = venv.join(rel);
    if let Some((dir, entry)) = stored {
        if let Some(file) = entry.files.iter().find(|f| f.path == rel) {
            let files = dir.join("files");
            let same_inode = match (
                std::fs::symlink_metadata(&path),
                std::fs::symlink_metadata(files.join(&file.path)),
            ) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if same_inode && Store::verify_file(&files, file).is_ok() {
                return true;
            }
        }
    }
    std::fs::symlink_metadata(&path).is_ok()
        && crate::tier::store::file_hash(&path).is_ok_and(|h| h == expected)
}

/// What happened to an installed distribution's file `rel`: another installed distribution's
/// bytes (and the operation that brought that one; the bool says so), missing (and the
/// operation that removed a distribution whose stored copy had it), or changed in place.
fn blame(
    venv: &Path,
    set: &PackageSet,
    store: &Store,
    log: &history::Log,
    rel: &str,
) -> (String, bool) {
    let path = venv.join(rel);
    let brought_by = |line: &str| {
        log.entries.iter().rev().find(|e| {
            e.changes().is_some_and(|c| {
                c.added.iter().any(|l| l == line) || c.modified.iter().any(|m| m.to == line)
            })
        })
    };
    let removed_by = |line: &str| {
        log.entries.iter().rev().find(|e| {
            e.changes()
                .is_some_and(|c| c.removed.iter().any(|l| l == line))
        })
    };
    let by = |e: Option<&history::Entry>| {
        e.map(|e| format!(" (damaged by #{}: {})", e.id, e.before.command))
            .unwrap_or_default()
    };
    if std::fs::symlink_metadata(&path).is_err() {
        let gone = log
            .entries
            .iter()
            .rev()
            .filter_map(|e| e.changes())
            .flat_map(|c| c.removed.iter())
            .find(|line| {
                store
                    .find(&crate::python::freeze::requirement_name(line), line)
                    .iter()
                    .any(|(_, entry)| entry.files.iter().any(|f| f.path == rel))
            })
            .cloned();
        return match gone {
            Some(line) => (format!("{rel}: missing{}", by(removed_by(&line))), false),
            None => (format!("{rel}: missing"), false),
        };
    }
    let Ok(hash) = crate::tier::store::file_hash(&path) else {
        return (format!("{rel}: unreadable"), false);
    };
    for dist in set.dists.values() {
        let Ok(rows) = crate::tier::store::installed_files(venv, dist) else {
            continue;
        };
        if rows
            .iter()
            .any(|r| r.path == rel && r.hash.as_deref() == Some(hash.as_str()))
        {
            let line = dist.freeze_lines().pop().unwrap_or_default();
            return (
                format!("{rel}: holds {line}'s bytes{}", by(brought_by(&line))),
                true,
            );
        }
    }
    (format!("{rel}: changed in place"), false)
}

/// Top-level entries of site-packages that no distribution owns (a pip stopped half-way by a
/// full disk leaves a package folder without its `.dist-info`), with the operation that left
/// them when its time tells. `--fix` moves them into `<tier>/orphans/<time>/` (nothing is
/// deleted).
pub(super) fn check_orphans(tier: &Tier, fix: bool, findings: &mut Vec<Finding>) -> Result<()> {
    let venv = tier.venv();
    let Ok(set) = PackageSet::scan(&venv) else {
        return Ok(());
    };
    let log = history::read_log(&tier.history_dir())?;
    let mut owned: std::collections::HashSet<PathBuf> = Default::default();
    for dist in set.dists.values() {
        match dist.format {
            crate::python::inventory::MetadataFormat::DistInfo => {
                if let Ok(rows) = crate::tier::store::installed_files(&venv, dist) {
                    owned.extend(rows.into_iter().map(|r| venv.join(r.path)));
                }
            }
            _ => {
                // An egg-info names its packages in top_level.txt.
                let top = std::fs::read_to_string(dist.metadata_path.join("top_level.txt"))
                    .unwrap_or_default();
                if let Some(site) = dist.metadata_path.parent() {
                    for name in top.lines().filter(|l| !l.trim().is_empty()) {
                        owned.insert(site.join(name.trim()));
                        owned.insert(site.join(format!("{}.py", name.trim())));
                    }
                }
            }
        }
    }
    let Ok(sites) = crate::python::inventory::site_packages_dirs(&venv) else {
        return Ok(());
    };
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    for site in sites {
        let Ok(read) = std::fs::read_dir(&site) else {
            continue;
        };
        for item in read.filter_map(Result::ok) {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".dist-info")
                || name.ends_with(".egg-info")
                || name.ends_with(".egg-link")
                || name == "__pycache__"
                || owned.contains(&path)
            {
                continue;
            }
            let (files, bytes, any_owned) = walkdir::WalkDir::new(&path)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| !e.file_type().is_dir())
                .fold((0u64, 0u64, false), |(n, b, o), e| {
                    let size = e.metadata().map_or(0, |m| m.len());
                    (n + 1, b + size, o || owned.contains(e.path()))
                });
            if any_owned {
                continue;
            }
            let left_by = item
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .and_then(|t| {
                    let t = t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                    log.entries.iter().find(|e| {
                        e.before.timestamp <= t
                            && e.after.as_ref().is_some_and(|a| a.timestamp >= t)
                    })
                })
                .map(|e| format!("; left by #{} ({})", e.id, e.before.command))
                .unwrap_or_default();
            let mut f = Finding::new(
                "orphan files",
                format!(
                    "{} holds {files} file(s) ({}) that no distribution's RECORD names{left_by}",
                    path.display(),
                    crate::ui::human_bytes(bytes)
                ),
                format!(
                    "`pyctl doctor --fix` moves it into {}",
                    tier.root.join("orphans").join(&stamp).display()
                ),
            );
            if fix {
                let dest_dir = tier.root.join("orphans").join(&stamp);
                f.fixed = std::fs::create_dir_all(&dest_dir).is_ok()
                    && std::fs::rename(&path, dest_dir.join(&name)).is_ok();
            }
            findings.push(f);
        }
    }
    Ok(())
}
