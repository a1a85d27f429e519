//! Undo, redo, restore, clean, snapshots and gc: each picks a target set (from history or a
//! snapshot) and runs one engine transaction, recorded as its own history entry so that nothing
//! is ever lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::ops::engine::{self, Plan};
use crate::ops::transaction::{self, Operation};
use crate::python::freeze::freeze_map;
use crate::python::inventory::PackageSet;
use crate::python::pyvenv::PyvenvCfg;
use crate::sys::fsutil::TierLock;
use crate::tier::config::Config;
use crate::tier::gc::current_set;
use crate::tier::gc::referenced_lines;
use crate::tier::history::{self, Entry, Kind, Log};
use crate::tier::snapshot;
use crate::tier::snapshot::list;
use crate::tier::{self, Tier};
use crate::ui::human_bytes;
use crate::ui::{Style, Ui};

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
        Some(target) => freeze_map(target) == freeze_map(&after.freeze),
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

/// The target of a transaction.
struct Target {
    op: Operation,
    freeze: String,
    /// Build a new venv (clean) instead of changing the current one.
    fresh_venv: bool,
    /// Say "nothing to do" and record nothing when the plan is empty.
    skip_if_empty: bool,
    /// Build the new venv with this interpreter (doctor's rebuild after a Python upgrade).
    python: Option<PathBuf>,
}

/// Locks the tier, brings history up to date, and hands over the log.
fn open_tier(ctx: &Context, ui: &Ui) -> Result<(Tier, Config, TierLock)> {
    let tier = tier::current(ctx)?;
    if !tier.venv_exists() && !tier.is_provisioned() {
        bail!(
            "no tier at {} yet; `pip install ...` or `pyctl init` creates it",
            tier.root.display()
        );
    }
    tier.check_owner(ctx)?;
    let config = tier.config()?;
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
    finish_trash(&tier);
    let current = current_set(&tier)?;
    transaction::settle(ctx, ui, &tier, &lock, &current)?;
    Ok((tier, config, lock))
}

fn read_log(tier: &Tier, ui: &Ui) -> Result<Log> {
    let log = history::read_log(&tier.history_dir())?;
    for p in &log.problems {
        ui.warn(&format!("skipping {p}"));
    }
    Ok(log)
}

pub fn undo(ctx: &Context, ui: &Ui, steps: usize, to: Option<u64>, dry_run: bool) -> Result<i32> {
    let (tier, config, lock) = open_tier(ctx, ui)?;
    let log = read_log(&tier, ui)?;
    let state = undo_state(&log);
    let candidates = undo_candidates(&log, &state);
    let (freeze, reverts, reapplies, command) = match to {
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
                after.freeze.clone(),
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
            (oldest.before.freeze.clone(), reverts, Vec::new(), command)
        }
    };
    let target = Target {
        op: Operation {
            kind: Kind::Undo,
            command,
            pip_args: Vec::new(),
            reverts,
            reapplies,
            target: None,
        },
        freeze,
        fresh_venv: false,
        skip_if_empty: false,
        python: None,
    };
    transact(ctx, ui, &tier, &config, &lock, &log, target, dry_run)
}

pub fn redo(ctx: &Context, ui: &Ui, dry_run: bool) -> Result<i32> {
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
        op: Operation {
            reverts: vec![u.id],
            ..Operation::new(Kind::Redo, "pyctl redo")
        },
        freeze: u.before.freeze.clone(),
        fresh_venv: false,
        skip_if_empty: false,
        python: None,
    };
    transact(ctx, ui, &tier, &config, &lock, &log, target, dry_run)
}

pub fn restore(ctx: &Context, ui: &Ui, name: &str, dry_run: bool) -> Result<i32> {
    let (tier, config, lock) = open_tier(ctx, ui)?;
    let path = snapshot::snapshot_path(&tier, name)?;
    let text = read_snapshot(&tier, name, &path)?;
    let log = read_log(&tier, ui)?;
    let target = Target {
        op: Operation::new(Kind::Restore, format!("pyctl restore {name}")),
        freeze: text,
        fresh_venv: false,
        skip_if_empty: true,
        python: None,
    };
    transact(ctx, ui, &tier, &config, &lock, &log, target, dry_run)
}

pub fn clean(ctx: &Context, ui: &Ui, keep_baseline: bool, dry_run: bool) -> Result<i32> {
    let (tier, config, lock) = open_tier(ctx, ui)?;
    let log = read_log(&tier, ui)?;
    let freeze = if keep_baseline {
        let path = snapshot::snapshot_path(&tier, snapshot::BASELINE)?;
        read_snapshot(&tier, snapshot::BASELINE, &path)?
    } else {
        // What a new venv holds: the state the newest rebuild's new venv or the first init
        // recorded, or once pruning has removed those, the baseline snapshot.
        let from_init = crate::ops::rebuild::fresh_venv_freeze(&log);
        match from_init {
            Some(freeze) => freeze,
            None => {
                let path = snapshot::snapshot_path(&tier, snapshot::BASELINE)?;
                crate::sys::fsutil::read_regular_to_string(&path).with_context(|| {
                    format!(
                        "no init entry in the history and no {} to tell what a new venv holds",
                        path.display()
                    )
                })?
            }
        }
    };
    let target = Target {
        op: Operation::new(
            Kind::Clean,
            if keep_baseline {
                "pyctl clean --keep-baseline"
            } else {
                "pyctl clean"
            },
        ),
        freeze,
        fresh_venv: true,
        skip_if_empty: false,
        python: None,
    };
    transact(ctx, ui, &tier, &config, &lock, &log, target, dry_run)
}

/// Finishes an engine operation that was killed half-way (its after says `interrupted`): goes to
/// the target set its before file recorded, as a new entry of the same kind.
pub fn finish(ctx: &Context, ui: &Ui, tier: &Tier, config: &Config, entry: &Entry) -> Result<i32> {
    let Some(freeze) = entry.before.target.clone() else {
        bail!("entry #{} records no target set to finish", entry.id);
    };
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
    let log = read_log(tier, ui)?;
    let target = Target {
        op: Operation {
            reverts: entry.before.reverts.clone(),
            reapplies: entry.before.reapplies.clone(),
            ..Operation::new(
                entry.before.kind,
                format!(
                    "pyctl doctor --fix (finishing #{}: {})",
                    entry.id, entry.before.command
                ),
            )
        },
        freeze,
        fresh_venv: false,
        skip_if_empty: true,
        python: None,
    };
    transact(ctx, ui, tier, config, &lock, &log, target, false)
}

/// Puts pip back (doctor's repair of a venv without pip): the current set plus the newest pip
/// the history recorded, from the store.
pub fn put_pip_back(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    log: &Log,
) -> Result<i32> {
    let pip_line = log
        .entries
        .iter()
        .rev()
        .flat_map(|e| [Some(&e.before.freeze), e.after.as_ref().map(|a| &a.freeze)])
        .flatten()
        .find_map(|f| freeze_map(f).remove("pip"))
        .context("no recorded state had pip; `python -m ensurepip` installs one")?;
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
    let mut freeze = current_set(tier)?.freeze();
    freeze.push_str(&pip_line);
    freeze.push('\n');
    let target = Target {
        op: Operation::new(
            Kind::Restore,
            format!("pyctl doctor --fix (put back {pip_line})"),
        ),
        freeze,
        fresh_venv: false,
        skip_if_empty: true,
        python: None,
    };
    transact(ctx, ui, tier, config, &lock, log, target, false)
}

/// Puts back the files of installed distributions that are not their own (doctor's repair):
/// a transaction to the current set, whose plan holds only the repairs.
pub fn repair_installed(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    log: &Log,
) -> Result<i32> {
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
    let target = Target {
        op: Operation::new(Kind::Restore, "pyctl doctor --fix (put back damaged files)"),
        freeze: current_set(tier)?.freeze(),
        fresh_venv: false,
        skip_if_empty: true,
        python: None,
    };
    transact(ctx, ui, tier, config, &lock, log, target, false)
}

/// Rebuilds the venv (on `python`, or the one that made it) with the set the history last
/// recorded: doctor's repair for a venv that is gone or whose interpreter was upgraded away.
pub fn rebuild(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    python: Option<&Path>,
) -> Result<i32> {
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
    let log = read_log(tier, ui)?;
    let freeze = log
        .last_known_freeze()
        .map(str::to_string)
        .unwrap_or_default();
    let target = Target {
        op: Operation::new(
            Kind::Clean,
            match python {
                Some(p) => format!("pyctl doctor --fix (rebuild on {})", p.display()),
                None => "pyctl doctor --fix (rebuild)".into(),
            },
        ),
        freeze,
        fresh_venv: true,
        skip_if_empty: false,
        python: python.map(Path::to_path_buf),
    };
    transact(ctx, ui, tier, config, &lock, &log, target, false)
}

#[derive(Serialize)]
struct PlanJson<'a> {
    command: &'a str,
    dry_run: bool,
    plan: &'a Plan,
    sources: BTreeMap<&'static str, usize>,
}

#[allow(clippy::too_many_arguments)]
fn transact(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    lock: &TierLock,
    log: &Log,
    target: Target,
    dry_run: bool,
) -> Result<i32> {
    if target.python.is_none() && tier.venv_exists() {
        tier.check_interpreter()?;
    }
    let store = transaction::store_of(tier, config);
    // A venv deleted behind pyctl's back (or by a clean that was killed half-way) is rebuilt.
    let fresh_venv = target.fresh_venv || !tier.venv_exists();
    let current = if fresh_venv {
        PackageSet::default()
    } else {
        current_set(tier)?
    };
    let python_minor = match &target.python {
        Some(p) => Some(tier::interpreter_version(p)?),
        // A venv whose pyvenv.cfg is missing (a clean killed while `python -m venv` ran) says
        // nothing: the interpreter it is rebuilt with does, or the store would look unusable.
        None => match tier.python_version() {
            Some(v) => Some(v),
            None => {
                let python = match tier.base_python() {
                    Some(p) => p,
                    None => transaction::choose_python(ctx, tier)?,
                };
                Some(tier::interpreter_version(&python)?)
            }
        },
    }
    .map(|v| tier::minor_version(&v))
    .unwrap_or_default();
    let plan = engine::plan(
        &store,
        &tier.venv(),
        &current,
        &target.freeze,
        &python_minor,
    );
    // A new venv is filled from nothing, but what people need to see is the change from the
    // venv they have now: what goes away included.
    let shown = if fresh_venv && tier.venv_exists() {
        engine::plan(
            &store,
            &tier.venv(),
            &current_set(tier)?,
            &target.freeze,
            &python_minor,
        )
    } else {
        plan.clone()
    };
    if ui.json {
        let out = PlanJson {
            command: &target.op.command,
            dry_run,
            plan: &shown,
            sources: engine::plan_sources(&shown),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if !ui.quiet || dry_run {
        println!(
            "{}: {}",
            ui.out(Style::Bold, &target.op.command),
            shown.summary()
        );
        if fresh_venv && tier.venv_exists() {
            println!("  (a new venv, filled from the store)");
        }
        for line in engine::plan_lines(ui, &shown) {
            println!("{line}");
        }
    }
    if dry_run {
        return Ok(0);
    }
    if plan.is_empty() && !fresh_venv && target.skip_if_empty {
        ui.info("the venv is already in that state; nothing to do");
        return Ok(0);
    }
    let find_links =
        engine::recorded_find_links(log.entries.iter().map(|e| e.before.pip_args.clone()));
    let op = Operation {
        target: Some(target.freeze.clone()),
        ..target.op.clone()
    };
    let outcome = transaction::record(ctx, ui, tier, lock, config, &op, || {
        if fresh_venv {
            let python = match target.python.clone().or_else(|| tier.base_python()) {
                Some(p) => p,
                None => transaction::choose_python(ctx, tier)?,
            };
            recreate_venv(
                tier,
                &plan,
                &python,
                config.venv.inherit_system_packages,
                ctx.is_root(),
            )?;
        }
        let venv = tier.venv().canonicalize().context("the venv vanished")?;
        let trash = tier
            .root
            .join(format!(".trash-{}-files", std::process::id()));
        // A pip the engine falls back to keeps the tier locked if pyctl is killed while it
        // runs, so nothing else records a venv it is still changing; nothing started after
        // (the background deletion) gets the lock.
        lock.keep_across_exec()?;
        let report = engine::apply(ctx, ui, &store, &venv, &plan, &find_links, &trash);
        lock.close_on_exec()?;
        let report = report?;
        for failure in &report.failures {
            ui.error(failure);
        }
        Ok(if report.failures.is_empty() { 0 } else { 1 })
    })?;
    finish_trash(tier);
    ui.info(&format!(
        "recorded #{} {}: {}",
        outcome.id,
        target.op.command,
        outcome.changes.summary()
    ));
    if outcome.exit_code != 0 && matches!(target.op.kind, Kind::Undo | Kind::Redo) {
        let what: Vec<String> = target
            .op
            .reverts
            .iter()
            .map(|id| format!("#{id}"))
            .collect();
        ui.warn(&format!(
            "#{} did not reach its target, so {} {} not counted as {}; `pyctl {}` tries again",
            outcome.id,
            what.join(", "),
            if what.len() == 1 { "is" } else { "are" },
            if target.op.kind == Kind::Undo {
                "undone"
            } else {
                "redone"
            },
            target.op.kind.as_str()
        ));
    }
    user_site_follows(ui, tier, log, &target.op, outcome.exit_code == 0);
    Ok(outcome.exit_code)
}

/// The user site follows the migrate entries a transaction undoes: the files `pyctl migrate`
/// moved out of it are put back once the transaction succeeded (when it failed, they stay in
/// their backup folder, said). A migrate entry brought back into effect (redo, `undo --to` a
/// later state) gets its packages back in the tier from the store; the user-site copies stay
/// where they are, said, and `pyctl migrate` moves them out again.
fn user_site_follows(ui: &Ui, tier: &Tier, log: &Log, op: &Operation, succeeded: bool) {
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
        let dir = crate::ops::migrate::backup_dir(tier, id);
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
        match crate::ops::migrate::put_back(ui, tier, id) {
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

/// Moves the venv aside and makes a new one without pip (pip comes from the store, as part of
/// the plan); with pip when the store cannot give pip back.
///
/// The old `pyvenv.cfg` is kept when the new venv runs the same interpreter (`home` and
/// `version` unchanged): only its `command` line would differ (`--without-pip`), and the tree
/// after a clean is the tree of a venv as init made it.
fn recreate_venv(
    tier: &Tier,
    plan: &Plan,
    python: &Path,
    inherit: bool,
    as_root: bool,
) -> Result<()> {
    let venv = tier.venv();
    let trash = unique_trash(tier, "venv");
    let old_cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok();
    if venv.exists() {
        std::fs::rename(&venv, &trash)
            .with_context(|| format!("cannot move {} aside", venv.display()))?;
    }
    let pip_from_store = plan
        .add
        .iter()
        .any(|a| a.name == "pip" && matches!(a.source, engine::Source::Store { .. }));
    tier::create_venv_with(tier, python, inherit, !pip_from_store, as_root)?;
    let cfg = venv.join("pyvenv.cfg");
    if let (Some(old), Ok(new)) = (old_cfg, std::fs::read_to_string(&cfg)) {
        if old != new && PyvenvCfg::parse(&old).same_interpreter(&PyvenvCfg::parse(&new)) {
            crate::sys::fsutil::write_atomic(&cfg, old.as_bytes())?;
        }
    }
    Ok(())
}

/// A new `.trash-*` folder name in the tier: deleted in the background, so names never repeat.
fn unique_trash(tier: &Tier, what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    tier.root
        .join(format!(".trash-{what}-{}-{nanos}", std::process::id()))
}

/// Deletes venvs moved aside by clean, in the background so the command returns at once; a
/// later command finishes what a kill interrupted.
fn finish_trash(tier: &Tier) {
    let Ok(read) = std::fs::read_dir(&tier.root) else {
        return;
    };
    for item in read.filter_map(Result::ok) {
        if item.file_name().to_string_lossy().starts_with(".trash-") {
            let _ = crate::sys::tool::system_tool("rm")
                .arg("-rf")
                .arg(item.path())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
        }
    }
}

fn read_snapshot(tier: &Tier, name: &str, path: &Path) -> Result<String> {
    crate::sys::fsutil::refuse_symlink(path)?;
    match crate::sys::fsutil::read_regular_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let known: Vec<String> = list(tier).into_iter().map(|s| s.name).collect();
            bail!(
                "no snapshot named {name:?}; known: {}",
                if known.is_empty() {
                    "none yet (`pyctl snapshot NAME` makes one)".to_string()
                } else {
                    known.join(", ")
                }
            )
        }
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
    }
}

pub fn snapshot_cmd(ctx: &Context, ui: &Ui, name: &str, force: bool) -> Result<i32> {
    snapshot::validate_name(name)?;
    let (tier, _config, _lock) = open_tier(ctx, ui)?;
    let path = snapshot::snapshot_path(&tier, name)?;
    if path.exists() && !force {
        bail!(
            "snapshot {name:?} already exists ({}); use --force to replace it",
            path.display()
        );
    }
    let set = current_set(&tier)?;
    snapshot::write_snapshot(&tier, name, &set, &crate::sys::clock::now_timestamp())?;
    ui.info(&format!(
        "saved snapshot {name:?}: {} packages in {}",
        set.len(),
        path.display()
    ));
    Ok(0)
}

pub fn list_snapshots(ctx: &Context, ui: &Ui) -> Result<i32> {
    let tier = tier::current(ctx)?;
    let snaps = list(&tier);
    if ui.json {
        println!("{}", serde_json::to_string_pretty(&snaps)?);
        return Ok(0);
    }
    if snaps.is_empty() {
        ui.info("no snapshots yet; `pyctl snapshot NAME` saves one");
        return Ok(0);
    }
    let width = snaps.iter().map(|s| s.name.len()).max().unwrap_or(4);
    for s in snaps {
        println!(
            "{:<width$}  {}  {} packages",
            s.name,
            s.modified.replace('T', " ").trim_end_matches('Z'),
            s.packages
        );
    }
    Ok(0)
}

pub fn delete_snapshot(ctx: &Context, ui: &Ui, name: &str) -> Result<i32> {
    snapshot::validate_name(name)?;
    let (tier, _config, _lock) = open_tier(ctx, ui)?;
    let path = snapshot::snapshot_path(&tier, name)?;
    read_snapshot(&tier, name, &path)?;
    std::fs::remove_file(&path).with_context(|| format!("{}: cannot delete", path.display()))?;
    ui.info(&format!("deleted snapshot {name:?}"));
    Ok(0)
}

pub fn gc(ctx: &Context, ui: &Ui) -> Result<i32> {
    let (tier, config, _lock) = open_tier(ctx, ui)?;
    let log = read_log(&tier, ui)?;
    let referenced = referenced_lines(&tier, &log);
    let (removed, freed) = transaction::store_of(&tier, &config).collect_garbage(&referenced)?;
    ui.info(&format!(
        "removed {removed} store entries no history entry or snapshot refers to; freed {}",
        human_bytes(freed)
    ));
    Ok(0)
}
