//! Recording an operation on a tier: the transaction every write goes through.
//!
//! Under the tier lock: read the package set, settle what the history does not know yet (an
//! interrupted entry is completed, changes made behind pyctl's back become an `external` entry),
//! write `N_before.json`, run the operation, read the set again, write `N_after.json`, re-make
//! the shims, prune. Read-only work never comes here.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::python::freeze::freeze_map;
use crate::python::freeze::requirement_name;
use crate::python::inventory::PackageSet;
use crate::sys::clock::now_timestamp;
use crate::sys::fsutil::TierLock;
use crate::sys::syslog::syslog_line;
use crate::tier::config::Config;
use crate::tier::history::{self, Changes, Half, Kind, Record};
use crate::tier::shims;
use crate::tier::snapshot;
use crate::tier::store::Store;
use crate::tier::{self, Tier, TierKind};
use crate::ui::Ui;

/// What is being recorded.
#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: Kind,
    pub command: String,
    pub pip_args: Vec<String>,
    pub reverts: Vec<u64>,
    /// Undone entries brought back (`undo --to` a later state).
    pub reapplies: Vec<u64>,
    /// The set an engine operation goes to (recorded in its before file).
    pub target: Option<String>,
}

impl Operation {
    /// An operation of `kind` run as `command`, with no pip arguments, nothing it reverts or
    /// brings back, and no target set: set those fields on the result where they apply.
    pub fn new(kind: Kind, command: impl Into<String>) -> Operation {
        Operation {
            kind,
            command: command.into(),
            pip_args: Vec::new(),
            reverts: Vec::new(),
            reapplies: Vec::new(),
            target: None,
        }
    }
}

/// What a recorded operation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: u64,
    pub exit_code: i32,
    pub changes: Changes,
}

fn new_record(ctx: &Context, tier: &Tier, id: u64, op: &Operation, freeze: String) -> Record {
    Record {
        schema: history::SCHEMA,
        id,
        kind: op.kind,
        timestamp: now_timestamp(),
        user: ctx.user_name.clone(),
        uid: Some(ctx.uid),
        sudo_user: if tier.kind == TierKind::System {
            ctx.var_str("SUDO_USER")
        } else {
            None
        },
        command: op.command.clone(),
        pip_args: op.pip_args.clone(),
        python: tier.python_version().unwrap_or_default(),
        venv: tier.venv(),
        freeze: freeze.into(),
        entries: Default::default(),
        folders: None,
        reverts: op.reverts.clone(),
        reapplies: op.reapplies.clone(),
        target: None,
        changes: None.into(),
        exit_code: None,
        interrupted: false,
        rebuild: None,
    }
}

fn scan(tier: &Tier) -> Result<PackageSet> {
    if !tier.venv_exists() {
        return Ok(PackageSet::default());
    }
    PackageSet::scan(&tier.venv())
        .with_context(|| format!("cannot read the package set of {}", tier.venv().display()))
}

/// Brings the history up to date with the venv as it is now: completes interrupted entries and
/// records drift as an `external` entry. Needs the tier lock. Parses only the newest entry and
/// unfinished ones, never the whole history.
pub fn settle(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    _lock: &TierLock,
    current: &PackageSet,
) -> Result<()> {
    settle_index(
        ctx,
        ui,
        tier,
        current,
        &mut history::index(&tier.history_dir())?,
    )
}

/// `settle` on an index the caller already listed; ids it writes are added to `idx`.
fn settle_index(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    current: &PackageSet,
    idx: &mut history::Index,
) -> Result<()> {
    let dir = tier.history_dir();
    if !idx.stale_temp.is_empty() {
        crate::sys::fsutil::remove_stale_temp(&dir, &std::mem::take(&mut idx.stale_temp));
    }
    crate::sys::fsutil::remove_stale_temp(&tier.snapshots_dir(), &[]);
    let freeze = current.freeze();
    let current_map = current.requirement_map();
    let unfinished = idx.unfinished();
    for id in &unfinished {
        let before = match history::read_half(&dir, *id, Half::Before) {
            Ok(r) => r,
            Err(problem) => {
                ui.warn(&format!("skipping {problem}"));
                continue;
            }
        };
        let mut after = before.clone();
        after.timestamp = now_timestamp();
        after.freeze = freeze.clone().into();
        after.changes = Some(Changes::between(&freeze_map(&before.freeze), &current_map)).into();
        after.exit_code = None;
        after.interrupted = true;
        after.folders = tier::folders::empty(&tier.venv());
        history::write_record(&dir, Half::After, &after)?;
        idx.ids.insert(*id, (true, true));
        ui.warn(&format!(
            "operation #{id} ({}) was interrupted; recorded it as ending in the current state",
            before.command
        ));
    }
    if !unfinished.is_empty() {
        return Ok(());
    }
    let Some(known) = history::last_known_freeze(&dir, idx, |p| ui.warn(&format!("skipping {p}")))
    else {
        return Ok(());
    };
    if known == freeze {
        return Ok(());
    }
    let op = Operation::new(Kind::External, "changes made outside pyctl");
    let id = idx.next_id();
    let before = new_record(ctx, tier, id, &op, known.clone());
    history::write_record(&dir, Half::Before, &before)?;
    let mut after = new_record(ctx, tier, id, &op, freeze);
    after.folders = tier::folders::empty(&tier.venv());
    after.changes = Some(Changes::between(&freeze_map(&known), &current_map)).into();
    after.exit_code = Some(0);
    history::write_record(&dir, Half::After, &after)?;
    if tier.venv_exists() {
        shims::ensure_shims(tier, &ctx.exe)?;
    }
    idx.ids.insert(id, (true, true));
    idx.max_id = idx.max_id.max(id);
    ui.info(&format!(
        "recorded #{id}: changes made outside pyctl ({})",
        after
            .changes
            .as_ref()
            .map(Changes::summary)
            .unwrap_or_default()
    ));
    Ok(())
}

/// Runs `run` as a recorded operation. `_lock` is the caller's proof that it holds the tier
/// lock.
pub fn record(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    _lock: &TierLock,
    config: &Config,
    op: &Operation,
    run: impl FnOnce() -> Result<i32>,
) -> Result<Outcome> {
    let dir = tier.history_dir();
    let before_set = scan(tier)?;
    keep_in_store(tier, config, &before_set, &HashSet::new());
    let mut idx = history::index(&dir)?;
    settle_index(ctx, ui, tier, &before_set, &mut idx)?;
    let id = idx.next_id();
    let mut before = new_record(ctx, tier, id, op, before_set.freeze());
    before.target = op.target.clone().map(history::Lazy::new);
    before.entries = stored_entries(tier, config, &before_set).into();
    before.folders = tier::folders::empty(&tier.venv());
    history::write_record(&dir, Half::Before, &before)?;

    let exit_code = run()?;

    let after_set = scan(tier)?;
    let changes = Changes::between(&before_set.requirement_map(), &after_set.requirement_map());
    // Kept before the after is written, so that it can say which stored copy each
    // distribution is (a kill in between leaves the entry to be completed as interrupted).
    let fresh: HashSet<String> = changes
        .added
        .iter()
        .chain(changes.modified.iter().map(|m| &m.to))
        .map(|line| requirement_name(line))
        .collect();
    keep_in_store(tier, config, &after_set, &fresh);
    let mut after = new_record(ctx, tier, id, op, after_set.freeze());
    after.changes = Some(changes.clone()).into();
    after.exit_code = Some(exit_code);
    after.entries = stored_entries(tier, config, &after_set).into();
    after.folders = tier::folders::empty(&tier.venv());
    history::write_record(&dir, Half::After, &after)?;
    if tier.venv_exists() {
        shims::ensure_shims(tier, &ctx.exe)?;
    }
    idx.ids.insert(id, (true, true));
    idx.max_id = id;
    let pruned = history::prune(&dir, &idx, config.history.max_entries)?;
    // Collecting reads the whole history, so it runs on every tenth pruned entry, not on each.
    if pruned.iter().any(|id| id % 10 == 0) {
        collect_store_garbage(tier, config);
    }
    if tier.kind == TierKind::System {
        audit(ctx, op, id, &changes, exit_code);
    }
    Ok(Outcome {
        id,
        exit_code,
        changes,
    })
}

/// The tier's store, configured.
pub fn store_of(tier: &Tier, config: &Config) -> Store {
    Store::new(tier.store_dir(), config.store.link_mode)
}

/// Keeps every distribution of `set` in the store (those already there cost one RECORD read).
/// A failure here never fails the operation: the store is a cache, pip is the fallback.
/// `history.auto_snapshot = false` turns this off: history still records every set, and undo
/// gets what the store lacks from pip (local wheel folders first, then the index).
fn keep_in_store(tier: &Tier, config: &Config, set: &PackageSet, fresh: &HashSet<String>) {
    if set.is_empty() || !config.history.auto_snapshot {
        return;
    }
    let Ok(venv) = tier.venv().canonicalize() else {
        return;
    };
    match store_of(tier, config).stash_set(&venv, set, &shims::shim_paths(tier), fresh) {
        Ok(n) if n > 0 => log::info!("kept {n} distributions in the store"),
        Ok(_) => {}
        Err(e) => log::warn!("store: {e:#}"),
    }
}

/// Which store entry each distribution of `set` is (none when the store is off).
pub fn stored_entries(
    tier: &Tier,
    config: &Config,
    set: &PackageSet,
) -> std::collections::BTreeMap<String, String> {
    if set.is_empty() || !config.history.auto_snapshot {
        return Default::default();
    }
    // The venv path the set was scanned under (`scan`).
    store_of(tier, config).entries_of(&tier.venv(), set)
}

/// After pruning, store entries only the pruned entries referred to can go.
fn collect_store_garbage(tier: &Tier, config: &Config) {
    let result = history::read_log(&tier.history_dir()).and_then(|log| {
        let referenced = crate::tier::gc::referenced_lines(tier, &log);
        store_of(tier, config).collect_garbage(&referenced)
    });
    match result {
        Ok((n, bytes)) if n > 0 => {
            log::info!("store: removed {n} unreferenced entries ({bytes} bytes)")
        }
        Ok(_) => {}
        Err(e) => log::warn!("store garbage collection: {e:#}"),
    }
}

/// Creates the tier's venv when it is missing (first use, or deleted behind pyctl's back) and
/// records it as an `init` entry with the `baseline` snapshot. Returns whether it made one.
pub fn ensure_venv(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    lock: &TierLock,
    python: Option<&Path>,
) -> Result<bool> {
    if tier.venv_exists() {
        shims::ensure_shims(tier, &ctx.exe)?;
        return Ok(false);
    }
    let config = tier.config()?;
    let python = match python {
        Some(p) => p.to_path_buf(),
        None => choose_python(ctx, tier)?,
    };
    ui.info(&format!(
        "creating the {} tier's venv {} with {}",
        tier.kind.as_str(),
        tier.venv().display(),
        python.display()
    ));
    let op = Operation::new(
        Kind::Init,
        format!("pyctl init --python {}", python.display()),
    );
    let outcome = record(ctx, ui, tier, lock, &config, &op, || {
        tier::create_venv(
            tier,
            &python,
            config.venv.inherit_system_packages,
            &tier::pip_from(ctx, tier),
        )?;
        Ok(0)
    })?;
    let baseline = snapshot::snapshot_path(tier, snapshot::BASELINE)?;
    if config.snapshots.auto_baseline && !baseline.exists() {
        let set = PackageSet::scan(&tier.venv())?;
        snapshot::write_snapshot(tier, snapshot::BASELINE, &set, &now_timestamp(), None)?;
    }
    log::info!("init recorded as #{}", outcome.id);
    Ok(true)
}

/// The interpreter for a tier: its `py3X` folder names a version, otherwise the default.
pub fn choose_python(ctx: &Context, tier: &Tier) -> Result<std::path::PathBuf> {
    match tier.version_dir_minor() {
        Some(minor) => tier::python_for_version(ctx, &minor),
        None => tier::default_python(ctx),
    }
}

/// System-tier writes go to syslog (ident `pyctl`), naming the sudo caller.
fn audit(ctx: &Context, op: &Operation, id: u64, changes: &Changes, exit_code: i32) {
    let who = match ctx.var_str("SUDO_USER") {
        Some(s) => format!("{} (SUDO_USER={s})", ctx.user_name),
        None => ctx.user_name.clone(),
    };
    let mut detail: Vec<String> = changes.added.iter().map(|l| format!("+{l}")).collect();
    detail.extend(changes.removed.iter().map(|l| format!("-{l}")));
    detail.extend(
        changes
            .modified
            .iter()
            .map(|m| format!("{} -> {}", m.from, m.to)),
    );
    let message = format!(
        "system tier #{id} by {who}: {} (exit {exit_code}): {} {}",
        crate::sys::redact::redact(&op.command),
        changes.summary(),
        detail.join(" ")
    );
    syslog_line(&message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names_from_freeze_lines() {
        assert_eq!(requirement_name("Foo_Bar==1.0"), "foo-bar");
        assert_eq!(requirement_name("x @ file:///tmp/x.whl"), "x");
        assert_eq!(
            requirement_name("-e git+https://h/r@abc#egg=my_pkg"),
            "my-pkg"
        );
        assert_eq!(requirement_name("odd===1.0-legacy"), "odd");
    }

    #[test]
    fn editable_lines_take_their_name_from_the_comment() {
        let map = freeze_map(
            "a==1\n# Editable install with no version control (My.Proj==0.1)\n-e /src/x\n",
        );
        assert_eq!(map.get("my-proj").map(String::as_str), Some("-e /src/x"));
        assert_eq!(map.len(), 2);
    }
}
