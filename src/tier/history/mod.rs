//! The operation history of a tier: `history/N_before.json` and `history/N_after.json`.
//!
//! The format is the seed's, plus `schema`, `kind`, `python` and `venv`. Each file is written
//! atomically. Ids only grow. A `before` without an `after` is an interrupted (or, while the tier
//! lock is held, running) operation. Files that cannot be read are reported with their path and
//! skipped, never fatal.

mod changes;
mod lazy;
mod read;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::sys::fsutil::write_atomic;

pub use changes::{change_lines, Changes, Modified};
pub use lazy::Lazy;
pub use read::{read_log, read_tail};

/// Version of the on-disk history format.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pip,
    Undo,
    Redo,
    Restore,
    Clean,
    External,
    Init,
    /// `pyctl migrate`: distributions moved in from the user site (`pip install --user`).
    Migrate,
    /// The venv rebuilt on another Python after the old one went (`crate::ops::rebuild`).
    Rebuild,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pip => "pip",
            Kind::Undo => "undo",
            Kind::Redo => "redo",
            Kind::Restore => "restore",
            Kind::Clean => "clean",
            Kind::External => "external",
            Kind::Init => "init",
            Kind::Migrate => "migrate",
            Kind::Rebuild => "rebuild",
        }
    }
}

/// The content of one `N_before.json` or `N_after.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub schema: u32,
    pub id: u64,
    pub kind: Kind,
    pub timestamp: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_user: Option<String>,
    pub command: String,
    #[serde(default)]
    pub pip_args: Vec<String>,
    pub python: String,
    pub venv: PathBuf,
    pub freeze: Lazy<String>,
    /// The store entry each distribution of `freeze` is (canonical name → entry folder name),
    /// where the store holds it: going back to this state takes those copies, as a version can
    /// be stored more than once (with `REQUESTED` and without, say).
    #[serde(default, skip_serializing_if = "lazy::no_entries")]
    pub entries: Lazy<BTreeMap<String, String>>,
    /// The venv's empty folders outside `lib/` ([`crate::tier::folders`]): a move back to this
    /// state makes them so. Absent in records written before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folders: Option<Vec<String>>,
    /// Ids of the entries this one reverts (undo, redo, restore).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverts: Vec<u64>,
    /// Ids of undone entries this one brings back (an `undo --to` a later state).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reapplies: Vec<u64>,
    /// For undo, redo, restore and clean: the set the operation goes to, so that one killed
    /// half-way can be finished (`pyctl doctor --fix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Lazy<String>>,
    #[serde(default, skip_serializing_if = "lazy::no_changes")]
    pub changes: Lazy<Option<Changes>>,
    /// Only in `after` files; `null` when the operation was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Set on an `after` written later, from the state found, for an interrupted operation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Only in the `after` of a `rebuild` entry: the Pythons and how each distribution came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<Rebuilt>,
}

/// What a `rebuild` entry did: from which Python to which, and how each distribution of the set
/// came back (requirement lines).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuilt {
    pub from: String,
    pub to: String,
    /// Pure-Python distributions placed from the store into the new site-packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store: Vec<String>,
    /// Distributions pip reinstalled at the same version (compiled ones, and any the store lacked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pip: Vec<String>,
    /// Distributions that could not be put back (no wheel for the new Python reachable): retried
    /// at the next use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// The old venv's own (pip, setuptools as the old Python's venv made them): replaced by
    /// what the new Python's venv brings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
    /// What the new Python's venv brought by itself: the set a later `clean` or rebuild starts
    /// from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own: Vec<String>,
}

impl Record {
    /// Masks the credentials of every URL in the recorded command and pip arguments.
    pub fn redact(&mut self) {
        self.command = crate::sys::redact::redact(&self.command).into_owned();
        self.pip_args = crate::sys::redact::redact_all(&self.pip_args);
    }
}

/// An operation: its before record, and its after record once it has finished.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    pub before: Record,
    pub after: Option<Record>,
    /// Its after file exists but cannot be read (a `Problem` of the log): the operation
    /// finished, with an outcome unknown. No later operation rewrites that file.
    pub after_unreadable: bool,
}

impl Entry {
    /// Whether the operation finished (its after file exists, readable or not).
    pub fn is_complete(&self) -> bool {
        self.after.is_some() || self.after_unreadable
    }

    pub fn changes(&self) -> Option<&Changes> {
        self.after.as_ref().and_then(|a| a.changes.as_ref())
    }

    /// Where the operation stands; `lock_held`: the tier lock is held now, so an operation
    /// without an after file may be running.
    pub fn state(&self, lock_held: bool) -> EntryState {
        match &self.after {
            None if self.after_unreadable => EntryState::Unreadable,
            None if lock_held => EntryState::Running,
            None => EntryState::Interrupted,
            Some(a) if a.interrupted => EntryState::Interrupted,
            Some(a) if a.exit_code.is_some_and(|c| c != 0) => EntryState::Failed,
            Some(_) => EntryState::Ok,
        }
    }
}

/// Where an operation stands, as the listings (`history`, `diff`, `status`) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Finished, with exit code 0 (or none recorded).
    Ok,
    /// Finished with a non-zero exit code.
    Failed,
    /// Killed half-way: its after file was written later from the state found, or is missing
    /// while nothing holds the tier lock.
    Interrupted,
    /// No after file yet, and the tier lock is held.
    Running,
    /// Its after file cannot be read.
    Unreadable,
}

impl std::fmt::Display for EntryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Ok => "ok",
            EntryState::Failed => "failed",
            EntryState::Interrupted => "interrupted",
            EntryState::Running => "running",
            EntryState::Unreadable => "unreadable",
        }
    }
}

/// A file in `history/` that was skipped, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Everything readable in a history folder.
#[derive(Debug, Default)]
pub struct Log {
    /// Entries in id order.
    pub entries: Vec<Entry>,
    pub problems: Vec<Problem>,
    /// The highest id seen in any file name, readable or not: new ids go above it.
    pub max_id: u64,
    /// Only the newest entries were read ([`read_tail`]): older ones exist.
    pub partial: bool,
}

impl Log {
    pub fn last(&self) -> Option<&Entry> {
        self.entries.last()
    }

    pub fn get(&self, id: u64) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub fn next_id(&self) -> u64 {
        self.max_id + 1
    }

    /// The package set the history says the venv is in now: the after of the latest finished
    /// entry (or the before of an unfinished one).
    pub fn last_known_freeze(&self) -> Option<&str> {
        self.entries.last().map(|e| match &e.after {
            Some(after) => after.freeze.as_str(),
            None => e.before.freeze.as_str(),
        })
    }
}

/// File name of one half of an entry: `001_before.json`, ..., `999_after.json`, `1000_after.json`.
pub fn file_name(id: u64, half: Half) -> String {
    format!("{id:03}_{}.json", half.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    Before,
    After,
}

impl Half {
    fn as_str(self) -> &'static str {
        match self {
            Half::Before => "before",
            Half::After => "after",
        }
    }
}

fn parse_file_name(name: &str) -> Option<(u64, Half)> {
    let stem = name.strip_suffix(".json")?;
    let (id, half) = stem.split_once('_')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let half = match half {
        "before" => Half::Before,
        "after" => Half::After,
        _ => return None,
    };
    let id = id.parse().ok()?;
    // Only the name pyctl writes for that id (`7_before.json` is not entry 7's): the readers
    // that go by id find exactly the files those that list the folder do.
    (file_name(id, half) == name).then_some((id, half))
}

/// Which halves exist for each id, from file names alone: cheap enough for the wrapper's hot
/// path, where only the latest and unfinished entries are ever parsed.
#[derive(Debug, Default)]
pub struct Index {
    /// id → (before exists, after exists).
    pub ids: BTreeMap<u64, (bool, bool)>,
    pub max_id: u64,
    /// Temp files of atomic writes (`.tmp-*`) that a killed process left behind.
    pub stale_temp: Vec<PathBuf>,
    /// Files whose names are not pyctl's (reported by [`read_log`]).
    pub foreign: Vec<PathBuf>,
}

impl Index {
    pub fn next_id(&self) -> u64 {
        self.max_id + 1
    }

    /// Ids with a before and no after, oldest first.
    pub fn unfinished(&self) -> Vec<u64> {
        self.ids
            .iter()
            .filter(|(_, (b, a))| *b && !*a)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Lists the history folder's file names. A missing folder is an empty index.
pub fn index(dir: &Path) -> Result<Index> {
    let mut idx = Index::default();
    let read_dir = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(idx),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", dir.display())),
    };
    for item in read_dir {
        let item = item.with_context(|| format!("{}: cannot read", dir.display()))?;
        let name = item.file_name();
        if name
            .to_string_lossy()
            .starts_with(crate::sys::fsutil::TEMP_PREFIX)
        {
            idx.stale_temp.push(item.path());
            continue;
        }
        let Some((id, half)) = parse_file_name(&name.to_string_lossy()) else {
            idx.foreign.push(item.path());
            continue;
        };
        idx.max_id = idx.max_id.max(id);
        let slot = idx.ids.entry(id).or_default();
        match half {
            Half::Before => slot.0 = true,
            Half::After => slot.1 = true,
        }
    }
    Ok(idx)
}

/// Reads one half of an entry; an unreadable file comes back as a `Problem` naming it.
pub fn read_half(dir: &Path, id: u64, half: Half) -> std::result::Result<Record, Problem> {
    let path = dir.join(file_name(id, half));
    read::read_record(&path, id).map_err(|message| Problem { path, message })
}

/// The package set the newest readable entry says the venv is in, walking back past
/// unreadable files (each reported once through `on_problem`).
pub fn last_known_freeze(
    dir: &Path,
    idx: &Index,
    mut on_problem: impl FnMut(Problem),
) -> Option<String> {
    for (id, (has_before, has_after)) in idx.ids.iter().rev() {
        let halves = [(*has_after, Half::After), (*has_before, Half::Before)];
        for (present, half) in halves {
            if !present {
                continue;
            }
            match read_half(dir, *id, half) {
                Ok(record) => return Some(record.freeze.to_string()),
                Err(problem) => on_problem(problem),
            }
        }
    }
    None
}

/// Writes one half of an entry, atomically.
pub fn write_record(dir: &Path, half: Half, record: &Record) -> Result<PathBuf> {
    let path = dir.join(file_name(record.id, half));
    let mut record = record.clone();
    record.redact();
    let mut json = serde_json::to_vec_pretty(&record)?;
    json.push(b'\n');
    write_atomic(&path, &json)?;
    Ok(path)
}

/// Deletes the oldest entries beyond `max_entries`. Returns the ids removed.
pub fn prune(dir: &Path, idx: &Index, max_entries: usize) -> Result<Vec<u64>> {
    if max_entries == 0 || idx.ids.len() <= max_entries {
        return Ok(Vec::new());
    }
    let excess = idx.ids.len() - max_entries;
    let doomed: Vec<u64> = idx.ids.keys().copied().take(excess).collect();
    for id in &doomed {
        for half in [Half::Before, Half::After] {
            let path = dir.join(file_name(*id, half));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("{}: cannot prune", path.display()))
                }
            }
        }
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, freeze: &str) -> Record {
        Record {
            schema: SCHEMA,
            id,
            kind: Kind::Pip,
            timestamp: "2026-01-01T00:00:00Z".into(),
            user: "u".into(),
            uid: Some(1000),
            sudo_user: None,
            command: "pip install x".into(),
            pip_args: vec!["install".into(), "x".into()],
            python: "3.11.2".into(),
            venv: "/v".into(),
            freeze: freeze.to_string().into(),
            entries: Default::default(),
            folders: None,
            reverts: vec![],
            reapplies: vec![],
            target: None,
            changes: None.into(),
            exit_code: None,
            interrupted: false,
            rebuild: None,
        }
    }

    #[test]
    fn entry_states_are_named_as_listings_always_named_them() {
        let entry = |after: Option<Record>, after_unreadable| Entry {
            id: 1,
            before: record(1, ""),
            after,
            after_unreadable,
        };
        let finished = |exit_code, interrupted| Record {
            exit_code,
            interrupted,
            ..record(1, "")
        };
        let cases = [
            (entry(Some(finished(Some(0), false)), false), false, "ok"),
            (entry(Some(finished(None, false)), false), false, "ok"),
            (
                entry(Some(finished(Some(2), false)), false),
                false,
                "failed",
            ),
            (
                entry(Some(finished(None, true)), false),
                true,
                "interrupted",
            ),
            (entry(None, false), false, "interrupted"),
            (entry(None, false), true, "running"),
            (entry(None, true), true, "unreadable"),
        ];
        for (e, lock_held, want) in cases {
            let state = e.state(lock_held);
            assert_eq!(state.as_str(), want);
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{want}\"")
            );
        }
    }

    #[test]
    fn file_names_grow_past_999() {
        assert_eq!(file_name(7, Half::Before), "007_before.json");
        assert_eq!(file_name(1000, Half::After), "1000_after.json");
        assert_eq!(
            parse_file_name("1000_after.json"),
            Some((1000, Half::After))
        );
        assert_eq!(parse_file_name("x_after.json"), None);
        assert_eq!(parse_file_name("7_after.json"), None);
        assert_eq!(parse_file_name("0007_before.json"), None);
        assert_eq!(parse_file_name("007_before.json"), Some((7, Half::Before)));
        assert_eq!(parse_file_name("001_during.json"), None);
    }

    #[test]
    fn corrupt_and_foreign_files_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        write_record(dir.path(), Half::Before, &record(1, "a==1\n")).unwrap();
        write_record(dir.path(), Half::After, &record(1, "a==2\n")).unwrap();
        std::fs::write(dir.path().join("002_before.json"), b"{ not json").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let log = read_log(dir.path()).unwrap();
        assert_eq!(log.entries.len(), 1);
        assert_eq!(log.problems.len(), 2);
        assert_eq!(log.next_id(), 3, "a corrupt file's id is never reused");
        assert!(log
            .problems
            .iter()
            .any(|p| p.path.ends_with("002_before.json")));
    }

    #[test]
    fn an_unreadable_after_is_a_finished_entry() {
        let dir = tempfile::tempdir().unwrap();
        write_record(dir.path(), Half::Before, &record(1, "a==1\n")).unwrap();
        std::fs::write(dir.path().join("001_after.json"), b"garbage").unwrap();
        write_record(dir.path(), Half::Before, &record(2, "a==1\n")).unwrap();
        let log = read_log(dir.path()).unwrap();
        let first = log.get(1).unwrap();
        assert!(first.after.is_none() && first.after_unreadable && first.is_complete());
        let second = log.get(2).unwrap();
        assert!(!second.after_unreadable && !second.is_complete());
        assert_eq!(log.problems.len(), 1);
    }

    #[test]
    fn changes_classify_added_removed_modified() {
        let before: BTreeMap<_, _> = [("a", "a==1"), ("b", "b==1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let after: BTreeMap<_, _> = [("a", "a==2"), ("c", "c==1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = Changes::between(&before, &after);
        assert_eq!(c.added, vec!["c==1"]);
        assert_eq!(c.removed, vec!["b==1"]);
        assert_eq!(c.modified.len(), 1);
        assert_eq!(c.summary(), "1 added, 1 removed, 1 changed");
    }

    #[test]
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for id in 1..=5 {
            write_record(dir.path(), Half::Before, &record(id, "")).unwrap();
            write_record(dir.path(), Half::After, &record(id, "")).unwrap();
        }
        let idx = index(dir.path()).unwrap();
        assert_eq!(idx.unfinished(), Vec::<u64>::new());
        assert_eq!(prune(dir.path(), &idx, 3).unwrap(), vec![1, 2]);
        let log = read_log(dir.path()).unwrap();
        let ids: Vec<u64> = log.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![3, 4, 5]);
    }
}
