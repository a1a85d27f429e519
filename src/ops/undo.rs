//! `pyctl undo` and `pyctl redo`: which entries are undone now, which an undo takes, and the
//! set it goes back to; the change itself is one transaction to that set ([`crate::ops::target`]),
//! recorded as its own history entry so that nothing is ever lost.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _, Result};

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::target::{open_tier, read_log, read_tail, transact, Target};
use crate::ops::transaction::Operation;
use crate::python::freeze::freeze_map;
use crate::tier::history::{Entry, Kind, Log};
use crate::ui::Ui;

/// Which entries are undone now: those an undo reverted, unless a redo reverted that undo.
#[derive(Debug, Default)]
pub struct UndoState {
    pub undone: BTreeSet<u64>,
    pub redone_undos: BTreeSet<u64>,
}

/// Whether an undo or redo got the venv to the set it went for. One that did not (a store copy
/// damaged and no wheel to fall back on, a pip that failed, a kill) changed only part of what it
/// meant to: what it reverts is not counted as done, so the next `undo` (or `redo`) tries the
/// same entries again. Entries written before targets were recorded count when pip's exit
/// code says they succeeded.
pub fn reached_target(e: &Entry) -> bool {
    let Some(after) = &e.after else {
        return false;
    };
    match &e.before.target {
        // The same text is the same set; only a differently written one needs the names parsed.
        Some(target) => *target == after.freeze || freeze_map(target) == freeze_map(&after.freeze),
        None => after.exit_code == Some(0),
    }
}

/// A recorded operation that failed and changed nothing (`pip install` of a name the index
/// does not have, say): there is nothing to undo in it.
pub fn failed_no_op(e: &Entry) -> bool {
    e.after.as_ref().is_some_and(|a| {
        a.exit_code.is_some_and(|c| c != 0) && a.changes.as_ref().is_some_and(|c| c.is_empty())
    })
}

pub fn undo_state(log: &Log) -> UndoState {
    let mut state = UndoState::default();
    // For each undo: what it reverted and what it brought back, so a redo can swap them back.
    let mut by_undo: BTreeMap<u64, (&[u64], &[u64])> = BTreeMap::new();
    for e in &log.entries {
        if matches!(e.before.kind, Kind::Undo | Kind::Redo) && !reached_target(e) {
            continue;
        }
        match e.before.kind {
            Kind::Undo => {
                state.undone.extend(e.before.reverts.iter().copied());
                for id in &e.before.reapplies {
                    state.undone.remove(id);
                }
                by_undo.insert(e.id, (&e.before.reverts, &e.before.reapplies));
            }
            Kind::Redo => {
                for undo_id in &e.before.reverts {
                    state.redone_undos.insert(*undo_id);
                    if let Some((reverted, reapplied)) = by_undo.get(undo_id) {
                        for id in reverted.iter() {
                            state.undone.remove(id);
                        }
                        state.undone.extend(reapplied.iter().copied());
                    }
                }
            }
            _ => {}
        }
    }
    state
}

/// Entries `undo` may take, newest first: not undo/redo/init entries, not already undone, not
/// failed no-ops.
fn undo_candidates<'a>(log: &'a Log, state: &UndoState) -> Vec<&'a Entry> {
    log.entries
        .iter()
        .rev()
        .filter(|e| !matches!(e.before.kind, Kind::Undo | Kind::Redo | Kind::Init))
        .filter(|e| !state.undone.contains(&e.id))
        .filter(|e| !failed_no_op(e))
        .collect()
}

/// Tells which failed no-op entries newer than `oldest` an undo passes over.
fn say_skipped(ui: &Ui, log: &Log, state: &UndoState, oldest: u64) {
    for e in log.entries.iter().rev().filter(|e| e.id > oldest) {
        if !state.undone.contains(&e.id) && failed_no_op(e) {
            ui.info(&format!(
                "skipping #{} ({}): it failed and changed nothing",
                e.id, e.before.command
            ));
        }
    }
}

pub fn undo(
    ctx: &Context,
    ui: &Ui,
    steps: usize,
    to: Option<u64>,
    dry_run: bool,
) -> Result<ExitCode> {
    if to.is_none() && steps == 0 {
        bail!("undo 0 does nothing; give a number of operations of at least 1");
    }
    let (tier, config, lock) = open_tier(ctx, ui)?;
    // `undo --to` brings back what older undos undid: it reads the whole history. `undo N`
    // reads back only as far as its N-th entry.
    let log = match to {
        Some(_) => read_log(&tier, ui)?,
        None => read_tail(&tier, ui, |log| {
            undo_candidates(log, &undo_state(log)).len() >= steps
        })?,
    };
    let state = undo_state(&log);
    let candidates = undo_candidates(&log, &state);
    let ((freeze, entries, folders), reverts, reapplies, command) = match to {
        Some(id) => {
            let entry = log
                .get(id)
                .with_context(|| format!("no entry #{id} in the history"))?;
            let after = entry
                .after
                .as_ref()
                .with_context(|| format!("entry #{id} never finished; pick another"))?;
            let reverts: Vec<u64> = candidates
                .iter()
                .filter(|e| e.id > id)
                .map(|e| e.id)
                .collect();
            crate::ops::rebuild::refuse_undo_past(&log, id + 1)?;
            // Going forward: the undone entries up to `id` are in effect again.
            let reapplies: Vec<u64> = state.undone.iter().copied().filter(|u| *u <= id).collect();
            (
                (
                    after.freeze.to_string(),
                    (*after.entries).clone(),
                    after.folders.clone(),
                ),
                reverts,
                reapplies,
                format!("pyctl undo --to {id}"),
            )
        }
        None => {
            if candidates.len() < steps {
                bail!(
                    "only {} operation(s) can be undone (undo, redo and init entries, failed \
                     operations that changed nothing and what is already undone do not count)",
                    candidates.len()
                );
            }
            let taken = &candidates[..steps];
            let oldest = taken.last().expect("steps >= 1");
            crate::ops::rebuild::refuse_undo_past(&log, oldest.id)?;
            say_skipped(ui, &log, &state, oldest.id);
            let reverts = taken.iter().map(|e| e.id).collect();
            let command = if steps == 1 {
                "pyctl undo".to_string()
            } else {
                format!("pyctl undo {steps}")
            };
            let state = (
                oldest.before.freeze.to_string(),
                (*oldest.before.entries).clone(),
                oldest.before.folders.clone(),
            );
            (state, reverts, Vec::new(), command)
        }
    };
    let target = Target {
        skip_if_empty: false,
        entries,
        folders,
        ..Target::set(
            Operation {
                reverts,
                reapplies,
                ..Operation::new(Kind::Undo, command)
            },
            freeze,
        )
    };
    let done = transact(ctx, ui, &tier, &config, &lock, Some(&log), target, dry_run);
    forget_history(log);
    done
}

/// The undo a redo takes back: the newest one not redone yet, with only redos and redone undos
/// after it; `Some(None)` when there is none, `None` when the entries of a partial log do not
/// tell yet.
fn redo_entry(log: &Log) -> Option<Option<&Entry>> {
    let state = undo_state(log);
    for e in log.entries.iter().rev() {
        match e.before.kind {
            Kind::Redo => continue,
            Kind::Undo if state.redone_undos.contains(&e.id) => continue,
            Kind::Undo => return Some(Some(e)),
            _ => return Some(None),
        }
    }
    (!log.partial).then_some(None)
}

pub fn redo(ctx: &Context, ui: &Ui, dry_run: bool) -> Result<ExitCode> {
    let (tier, config, lock) = open_tier(ctx, ui)?;
    let log = read_tail(&tier, ui, |log| redo_entry(log).is_some())?;
    let Some(u) = redo_entry(&log).flatten() else {
        bail!(
            "nothing to redo: the latest operations are not undos (after new operations, use \
             `pyctl undo --to ID` to go to any recorded state)"
        );
    };
    let target = Target {
        skip_if_empty: false,
        entries: (*u.before.entries).clone(),
        folders: u.before.folders.clone(),
        ..Target::set(
            Operation {
                reverts: vec![u.id],
                ..Operation::new(Kind::Redo, "pyctl redo")
            },
            u.before.freeze.to_string(),
        )
    };
    let done = transact(ctx, ui, &tier, &config, &lock, Some(&log), target, dry_run);
    forget_history(log);
    done
}

/// The process ends right after an undo or redo: the history's records (hundreds of them, each
/// with its freeze text and change lists) go back to the system with it instead of being freed
/// one allocation at a time (~7 % of a redo's samples).
fn forget_history(log: Log) {
    std::mem::forget(log);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::history::{self, read_log, read_tail, write_record, Changes, Half, Record};

    fn record(id: u64, kind: Kind, reverts: Vec<u64>, target: Option<&str>) -> Record {
        Record {
            schema: history::SCHEMA,
            id,
            kind,
            timestamp: "2026-01-01T00:00:00Z".into(),
            user: "u".into(),
            uid: None,
            sudo_user: None,
            command: kind.as_str().into(),
            pip_args: vec![],
            python: "3.11.2".into(),
            venv: "/v".into(),
            freeze: format!("a=={id}\n").into(),
            entries: Default::default(),
            folders: None,
            reverts,
            reapplies: vec![],
            target: target.map(|t| t.to_string().into()),
            changes: None.into(),
            exit_code: Some(0),
            interrupted: false,
            rebuild: None,
        }
    }

    /// What undo N (for N up to 3) and redo would take, from a log.
    fn answers(log: &Log) -> (Vec<Vec<u64>>, Option<u64>) {
        let state = undo_state(log);
        let candidates = undo_candidates(log, &state);
        let undos = (1..=3)
            .map(|n| candidates.iter().take(n).map(|e| e.id).collect())
            .collect();
        (undos, redo_entry(log).flatten().map(|e| e.id))
    }

    /// The two halves of a generated entry `id` on top of `log`: an undo of 1 to 3 entries, an
    /// `undo --to` an older entry, a redo (each failing now and then), or a pip command (failed
    /// and changing nothing now and then).
    fn generated(id: u64, log: &Log, next: &mut impl FnMut() -> u64) -> (Record, Record) {
        let (undos, redo) = answers(log);
        let roll = next();
        // An undo or redo that fails (its venv not at its target) counts for nothing.
        let target = if next() < 15 { "other\n" } else { "" };
        let reached = |r: Record| {
            let after = Record {
                freeze: "".to_string().into(),
                ..r.clone()
            };
            (r, after)
        };
        if roll < 30 && !undos[0].is_empty() {
            let n = (next() % 3) as usize;
            let reverts = undos[n.min(undos.len() - 1)].clone();
            return reached(record(id, Kind::Undo, reverts, Some(target)));
        }
        if roll < 40 && id > 2 {
            // `undo --to X`: what is after X goes, what was undone up to X comes back.
            let to = 1 + next() % (id - 1);
            let state = undo_state(log);
            let reverts = undo_candidates(log, &state)
                .iter()
                .map(|e| e.id)
                .filter(|e| *e > to)
                .collect();
            let mut r = record(id, Kind::Undo, reverts, Some(target));
            r.reapplies = state.undone.iter().copied().filter(|u| *u <= to).collect();
            return reached(r);
        }
        if let Some(undo) = redo.filter(|_| roll < 65) {
            return reached(record(id, Kind::Redo, vec![undo], Some(target)));
        }
        let r = record(id, Kind::Pip, vec![], None);
        let mut after = r.clone();
        if (65..72).contains(&roll) {
            after.exit_code = Some(1);
            after.changes = Some(Changes::default()).into();
        }
        (r, after)
    }

    #[test]
    fn the_newest_end_of_a_history_answers_undo_and_redo_as_the_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % 100
        };
        let mut partial = 0;
        for id in 1..=300u64 {
            let log = read_log(dir.path()).unwrap();
            let (before, after) = generated(id, &log, &mut next);
            write_record(dir.path(), Half::Before, &before).unwrap();
            if next() < 97 {
                write_record(dir.path(), Half::After, &after).unwrap();
            }
            // Now and then a half that cannot be read: an after alone stands for the entry.
            match next() {
                0..=1 => std::fs::write(dir.path().join(history::file_name(id, Half::Before)), "{")
                    .unwrap(),
                2 => std::fs::write(dir.path().join(history::file_name(id, Half::After)), "x")
                    .unwrap(),
                _ => {}
            }
            let whole = answers(&read_log(dir.path()).unwrap());
            let tail_redo = read_tail(dir.path(), |log| redo_entry(log).is_some()).unwrap();
            partial += usize::from(tail_redo.partial);
            assert_eq!(
                redo_entry(&tail_redo).flatten().map(|e| e.id),
                whole.1,
                "redo after entry {id}"
            );
            for (n, want) in whole.0.iter().enumerate() {
                let tail = read_tail(dir.path(), |log| {
                    undo_candidates(log, &undo_state(log)).len() > n
                })
                .unwrap();
                let got = answers(&tail).0[n].clone();
                assert_eq!(&got, want, "undo {} after entry {id}", n + 1);
            }
        }
        assert!(
            partial > 200,
            "the redo tails read all of the history ({partial} partial)"
        );
    }
}
