//! `pyctl undo` and `pyctl redo`: which entries are undone now, which an undo takes, and the
//! set it goes back to; the change itself is one transaction to that set ([`crate::ops::target`]),
//! recorded as its own history entry so that nothing is ever lost.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _, Result};

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::target::{open_tier, read_log, transact, Target};
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
    let (tier, config, lock) = open_tier(ctx, ui)?;
    let log = read_log(&tier, ui)?;
    let state = undo_state(&log);
    let candidates = undo_candidates(&log, &state);
    let ((freeze, entries), reverts, reapplies, command) = match to {
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
                (after.freeze.to_string(), (*after.entries).clone()),
                reverts,
                reapplies,
                format!("pyctl undo --to {id}"),
            )
        }
        None => {
            if steps == 0 {
                bail!("undo 0 does nothing; give a number of operations of at least 1");
            }
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
            );
            (state, reverts, Vec::new(), command)
        }
    };
    let target = Target {
        skip_if_empty: false,
        entries,
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

pub fn redo(ctx: &Context, ui: &Ui, dry_run: bool) -> Result<ExitCode> {
    let (tier, config, lock) = open_tier(ctx, ui)?;
    let log = read_log(&tier, ui)?;
    let state = undo_state(&log);
    let mut undo_entry = None;
    for e in log.entries.iter().rev() {
        match e.before.kind {
            Kind::Redo => continue,
            Kind::Undo if state.redone_undos.contains(&e.id) => continue,
            Kind::Undo => {
                undo_entry = Some(e);
                break;
            }
            _ => break,
        }
    }
    let Some(u) = undo_entry else {
        bail!(
            "nothing to redo: the latest operations are not undos (after new operations, use \
             `pyctl undo --to ID` to go to any recorded state)"
        );
    };
    let target = Target {
        skip_if_empty: false,
        entries: (*u.before.entries).clone(),
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
