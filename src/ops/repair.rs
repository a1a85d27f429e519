//! doctor's repairs that change the venv, each one transaction to a target set
//! ([`crate::ops::target`]) recorded in the history: finishing an interrupted operation, putting
//! pip back, putting back damaged files, rebuilding a venv that is gone or whose Python went.
//! Each returns whether the venv reached its target (what failed is said).

use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::target::{read_log, transact, Target};
use crate::ops::transaction::Operation;
use crate::python::freeze::freeze_map;
use crate::tier::config::Config;
use crate::tier::gc::current_set;
use crate::tier::history::{Entry, Kind, Log};
use crate::tier::Tier;
use crate::ui::Ui;

/// Finishes an engine operation that was killed half-way (its after says `interrupted`): goes to
/// the target set its before file recorded, as a new entry of the same kind.
pub fn finish(ctx: &Context, ui: &Ui, tier: &Tier, config: &Config, entry: &Entry) -> Result<bool> {
    let Some(freeze) = entry.before.target.as_deref().map(String::from) else {
        bail!("entry #{} records no target set to finish", entry.id);
    };
    let lock = tier.lock_waiting(ctx, ui)?;
    let log = read_log(tier, ui)?;
    let target = Target::set(
        Operation {
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
    );
    Ok(transact(ctx, ui, tier, config, &lock, Some(&log), target, false)? == ExitCode::Success)
}

/// Puts pip back (doctor's repair of a venv without pip): the current set plus the newest pip
/// the history recorded, from the store.
pub fn put_pip_back(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    log: &Log,
) -> Result<bool> {
    let pip_line = log
        .entries
        .iter()
        .rev()
        .flat_map(|e| [Some(&e.before.freeze), e.after.as_ref().map(|a| &a.freeze)])
        .flatten()
        .find_map(|f| freeze_map(f).remove("pip"))
        .context("no recorded state had pip; `python -m ensurepip` installs one")?;
    let lock = tier.lock_waiting(ctx, ui)?;
    let mut freeze = current_set(tier)?.freeze();
    freeze.push_str(&pip_line);
    freeze.push('\n');
    let target = Target::set(
        Operation::new(
            Kind::Restore,
            format!("pyctl doctor --fix (put back {pip_line})"),
        ),
        freeze,
    );
    Ok(transact(ctx, ui, tier, config, &lock, Some(log), target, false)? == ExitCode::Success)
}

/// Puts back the files of installed distributions that are not their own (doctor's repair):
/// a transaction to the current set, whose plan holds only the repairs.
pub fn repair_installed(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    log: &Log,
) -> Result<bool> {
    let lock = tier.lock_waiting(ctx, ui)?;
    let target = Target::set(
        Operation::new(Kind::Restore, "pyctl doctor --fix (put back damaged files)"),
        current_set(tier)?.freeze(),
    );
    Ok(transact(ctx, ui, tier, config, &lock, Some(log), target, false)? == ExitCode::Success)
}

/// Rebuilds the venv (on `python`, or the one that made it) with the set the history last
/// recorded: doctor's repair for a venv that is gone or whose interpreter was upgraded away.
pub fn rebuild(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    python: Option<&Path>,
) -> Result<bool> {
    let lock = tier.lock_waiting(ctx, ui)?;
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
        entries: Default::default(),
        fresh_venv: true,
        skip_if_empty: false,
        python: python.map(Path::to_path_buf),
        folders: None,
    };
    Ok(transact(ctx, ui, tier, config, &lock, Some(&log), target, false)? == ExitCode::Success)
}
