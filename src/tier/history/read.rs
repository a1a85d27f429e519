//! Reading the history: all of it ([`read_log`]), or only its newest end ([`read_tail`]) for
//! `undo` and `redo`, which only look back as far as the entries they take.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{file_name, index, Entry, Half, Log, Problem, Record, SCHEMA};

/// Reads every entry of the history folder `dir`. A missing folder is an empty history.
pub fn read_log(dir: &Path) -> Result<Log> {
    let idx = index(dir)?;
    let mut log = Log {
        max_id: idx.max_id,
        ..Log::default()
    };
    log.problems = idx
        .foreign
        .into_iter()
        .map(|path| Problem {
            path,
            message: "not a pyctl history file; ignored".into(),
        })
        .collect();
    log.entries = read_entries(files(dir, &idx.ids), &mut log.problems);
    Ok(log)
}

/// The files of the entries `ids` (id → which halves exist), by the names pyctl writes.
fn files<'a>(
    dir: &Path,
    ids: impl IntoIterator<Item = (&'a u64, &'a (bool, bool))>,
) -> Vec<(PathBuf, u64, Half)> {
    ids.into_iter()
        .flat_map(|(id, (before, after))| {
            [(*before, Half::Before), (*after, Half::After)]
                .into_iter()
                .filter(|(present, _)| *present)
                .map(move |(_, half)| (dir.join(file_name(*id, half)), *id, half))
        })
        .collect()
}

/// Reads the newest entries of the history folder `dir`, a batch at a time (each larger than
/// the last), until `enough` says the entries read so far decide what the caller wants. The
/// log it is given, and the one returned, hold the newest entries in id order, `partial` while
/// older ones remain unread.
///
/// What an undo or redo takes depends only on entries newer than it (an undo reverts older
/// entries, a redo older undos), so the newest end of a history answers as the whole one does.
pub fn read_tail(dir: &Path, mut enough: impl FnMut(&Log) -> bool) -> Result<Log> {
    let idx = index(dir)?;
    let ids: Vec<(&u64, &(bool, bool))> = idx.ids.iter().rev().collect();
    let mut log = Log {
        max_id: idx.max_id,
        partial: !ids.is_empty(),
        ..Log::default()
    };
    let (mut taken, mut batch) = (0, 4);
    while taken < ids.len() {
        let chunk = &ids[taken..(taken + batch).min(ids.len())];
        let mut older = read_entries(files(dir, chunk.iter().copied()), &mut log.problems);
        older.append(&mut log.entries);
        log.entries = older;
        taken += chunk.len();
        batch *= 2;
        log.partial = taken < ids.len();
        if enough(&log) {
            break;
        }
    }
    Ok(log)
}

/// Reads the given history files (across the cores: hundreds of small files, each read and
/// parsed on its own) and pairs their halves into entries, in id order. An unreadable file is
/// a `Problem`; an after whose before is unreadable stands for both.
fn read_entries(files: Vec<(PathBuf, u64, Half)>, problems: &mut Vec<Problem>) -> Vec<Entry> {
    let read = crate::sys::parallel::map(&files, |(path, id, _)| read_record(path, *id));
    let mut halves: BTreeMap<u64, (Option<Record>, Option<Record>)> = BTreeMap::new();
    let mut unreadable_afters = BTreeSet::new();
    for ((path, id, half), record) in files.into_iter().zip(read) {
        match record {
            Ok(record) => {
                let slot = halves.entry(id).or_default();
                match half {
                    Half::Before => slot.0 = Some(record),
                    Half::After => slot.1 = Some(record),
                }
            }
            Err(message) => {
                if half == Half::After {
                    unreadable_afters.insert(id);
                }
                problems.push(Problem { path, message })
            }
        }
    }
    let mut entries = Vec::with_capacity(halves.len());
    for (id, (before, after)) in halves {
        match (before, after) {
            (Some(before), after) => entries.push(Entry {
                id,
                before,
                after,
                after_unreadable: unreadable_afters.contains(&id),
            }),
            (None, Some(after)) => entries.push(Entry {
                id,
                before: after.clone(),
                after: Some(after),
                after_unreadable: false,
            }),
            (None, None) => {}
        }
    }
    entries
}

pub(super) fn read_record(path: &Path, id: u64) -> std::result::Result<Record, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.file_type().is_file() {
        return Err("not a regular file; ignored".into());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut record: Record =
        serde_json::from_slice(&bytes).map_err(|e| format!("corrupt history file: {e}"))?;
    // Histories written before credentials were masked still hold them: never show them.
    record.redact();
    if record.schema > SCHEMA {
        return Err(format!(
            "written by a newer pyctl (schema {}); ignored",
            record.schema
        ));
    }
    if record.id != id {
        return Err(format!(
            "file name says entry {id} but the file says {}; ignored",
            record.id
        ));
    }
    Ok(record)
}
