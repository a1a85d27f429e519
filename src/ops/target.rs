//! Taking a tier's venv to a target set: the one engine transaction behind undo, redo,
//! restore, clean and doctor's repairs. It locks the tier, settles its history, plans the change
//! from the store, shows it, and applies it as one recorded operation (a new venv when the
//! target asks for one), so that nothing is ever lost.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::engine::{self, Plan};
use crate::ops::transaction::{self, Operation};
use crate::python::inventory::PackageSet;
use crate::python::pyvenv::PyvenvCfg;
use crate::sys::fsutil::TierLock;
use crate::tier::config::Config;
use crate::tier::gc::current_set;
use crate::tier::history::{self, Kind, Log};
use crate::tier::store::Store;
use crate::tier::{self, Tier};
use crate::ui::{Style, Ui};

/// The target of a transaction.
pub struct Target {
    pub op: Operation,
    pub freeze: String,
    /// The stored copy each distribution of `freeze` was (canonical name → store entry), as
    /// its history record says: taken over any other copy of the same version.
    pub entries: BTreeMap<String, String>,
    /// Build a new venv (clean) instead of changing the current one.
    pub fresh_venv: bool,
    /// Say "nothing to do" and record nothing when the plan is empty.
    pub skip_if_empty: bool,
    /// Build the new venv with this interpreter (doctor's rebuild after a Python upgrade).
    pub python: Option<PathBuf>,
    /// The empty folders the venv had in that state, where its record says
    /// ([`crate::tier::folders`]).
    pub folders: Option<Vec<String>>,
}

impl Target {
    /// The current venv changed to the set `freeze` (no new venv); an empty plan records
    /// nothing.
    pub fn set(op: Operation, freeze: String) -> Target {
        Target {
            op,
            freeze,
            entries: BTreeMap::new(),
            fresh_venv: false,
            skip_if_empty: true,
            python: None,
            folders: None,
        }
    }
}

/// Locks the tier, brings history up to date, and hands over the log.
pub fn open_tier(ctx: &Context, ui: &Ui) -> Result<(Tier, Config, TierLock)> {
    let tier = tier::current(ctx)?;
    if !tier.venv_exists() && !tier.is_provisioned() {
        bail!(
            "no tier at {} yet; `pip install ...` or `pyctl init` creates it",
            tier.root.display()
        );
    }
    tier.check_owner(ctx)?;
    let config = tier.config()?;
    let lock = tier.lock_waiting(ctx, ui)?;
    finish_trash(&tier);
    let current = current_set(&tier)?;
    transaction::settle(ctx, ui, &tier, &lock, &current)?;
    Ok((tier, config, lock))
}

pub fn read_log(tier: &Tier, ui: &Ui) -> Result<Log> {
    let log = history::read_log(&tier.history_dir())?;
    warn_problems(ui, &log);
    Ok(log)
}

/// The newest end of the history, as far back as `enough` needs ([`history::read_tail`]).
pub fn read_tail(tier: &Tier, ui: &Ui, enough: impl FnMut(&Log) -> bool) -> Result<Log> {
    let log = history::read_tail(&tier.history_dir(), enough)?;
    warn_problems(ui, &log);
    Ok(log)
}

fn warn_problems(ui: &Ui, log: &Log) {
    for p in &log.problems {
        ui.warn(&format!("skipping {p}"));
    }
}

#[derive(Serialize)]
struct PlanJson<'a> {
    command: &'a str,
    dry_run: bool,
    plan: &'a Plan,
    sources: BTreeMap<&'static str, usize>,
}

/// Takes the venv to `target` as one recorded operation: shows the plan, then (unless
/// `dry_run`) applies it. `Failure` when the venv did not reach the target (each failure said).
/// `log`: the history, when the caller has read it; without it (a restore), or with only its
/// newest end (an undo or redo), it is read only if pip has to install something (for the wheel
/// folders earlier commands named).
#[allow(clippy::too_many_arguments)]
pub fn transact(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    lock: &TierLock,
    log: Option<&Log>,
    target: Target,
    dry_run: bool,
) -> Result<ExitCode> {
    if target.python.is_none() && tier.venv_exists() && !tier.venv_half_made() {
        tier.check_interpreter()?;
    }
    let store = transaction::store_of(tier, config);
    // A venv deleted behind pyctl's back (or by a clean that was killed half-way, before or
    // while `venv` made the new one) is rebuilt.
    let fresh_venv = target.fresh_venv || !tier.venv_exists() || tier.venv_half_made();
    let current = if fresh_venv {
        PackageSet::default()
    } else {
        current_set(tier)?
    };
    let python_minor = interpreter_minor(ctx, tier, &target)?;
    let plan = engine::plan(
        &store,
        &tier.venv(),
        &current,
        (&target.freeze, &target.entries),
        &python_minor,
    );
    // A new venv is filled from nothing, but what people need to see is the change from the
    // venv they have now: what goes away included.
    let from_venv;
    let shown = if fresh_venv && tier.venv_exists() {
        from_venv = engine::plan(
            &store,
            &tier.venv(),
            &current_set(tier)?,
            (&target.freeze, &target.entries),
            &python_minor,
        );
        &from_venv
    } else {
        &plan
    };
    show_plan(ui, tier, &target.op.command, shown, fresh_venv, dry_run)?;
    // The empty folders the target's record lists, where the venv's are others.
    let other_folders = !fresh_venv
        && target
            .folders
            .as_ref()
            .is_some_and(|want| tier::folders::differ(&tier.venv(), want));
    if other_folders && !ui.json {
        ui.info("the venv's empty folders (include, share, etc) become that state's too");
    }
    if dry_run {
        return Ok(ExitCode::Success);
    }
    if plan.is_empty() && !fresh_venv && target.skip_if_empty && !other_folders {
        ui.info("the venv is already in that state; nothing to do");
        return Ok(ExitCode::Success);
    }
    // The wheel folders earlier pip commands named: only for what pip has to install.
    let find_links = || match log {
        Some(log) if !log.partial => recorded_find_links(log),
        _ => history::read_log(&tier.history_dir())
            .map(|log| recorded_find_links(&log))
            .unwrap_or_default(),
    };
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
                &tier::pip_from(ctx, tier),
            )?;
        }
        let code = apply_locked(ctx, ui, lock, &store, tier, &plan, &find_links)?;
        if let (0, Some(folders)) = (code, &target.folders) {
            tier::folders::make_so(&tier.venv(), folders);
        }
        Ok(code)
    })?;
    finish_trash(tier);
    Ok(report_outcome(ui, tier, log, &target.op, &outcome))
}

/// Says what was recorded and what follows from it; the exit code: `Failure` when the venv did
/// not reach the target.
fn report_outcome(
    ui: &Ui,
    tier: &Tier,
    log: Option<&Log>,
    op: &Operation,
    outcome: &transaction::Outcome,
) -> ExitCode {
    ui.info(&format!(
        "recorded #{} {}: {}",
        outcome.id,
        op.command,
        outcome.changes.summary()
    ));
    if outcome.exit_code != 0 && matches!(op.kind, Kind::Undo | Kind::Redo) {
        warn_not_counted(ui, op, outcome.id);
    }
    // (Undo and redo, which always come with the history read.)
    if let Some(log) = log {
        crate::ops::migrate::backup::user_site_follows(ui, tier, log, op, outcome.exit_code == 0);
    }
    if outcome.exit_code == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failure
    }
}

/// The minor version (`3.11`) the target set is planned for: of the interpreter the venv is
/// rebuilt on, or of the venv's own.
fn interpreter_minor(ctx: &Context, tier: &Tier, target: &Target) -> Result<String> {
    let version = match &target.python {
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
    };
    Ok(version.map(|v| tier::minor_version(&v)).unwrap_or_default())
}

/// Prints the plan (as JSON with `--json`; in quiet mode only for a dry run).
fn show_plan(
    ui: &Ui,
    tier: &Tier,
    command: &str,
    shown: &Plan,
    fresh_venv: bool,
    dry_run: bool,
) -> Result<()> {
    if ui.json {
        let out = PlanJson {
            command,
            dry_run,
            plan: shown,
            sources: engine::plan_sources(shown),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if !ui.quiet || dry_run {
        println!("{}: {}", ui.out(Style::Bold, command), shown.summary());
        if fresh_venv && tier.venv_exists() {
            println!("  (a new venv, filled from the store)");
        }
        for line in engine::plan_lines(ui, shown) {
            println!("{line}");
        }
    }
    Ok(())
}

/// Applies the plan to the venv, the tier lock kept across the programs it runs; 1 when
/// something could not be done (each said).
fn apply_locked(
    ctx: &Context,
    ui: &Ui,
    lock: &TierLock,
    store: &Store,
    tier: &Tier,
    plan: &Plan,
    find_links: &dyn Fn() -> Vec<PathBuf>,
) -> Result<i32> {
    let venv = tier.venv().canonicalize().context("the venv vanished")?;
    let trash = tier
        .root
        .join(format!(".trash-{}-files", std::process::id()));
    // A pip the engine falls back to keeps the tier locked if pyctl is killed while it
    // runs, so nothing else records a venv it is still changing; nothing started after
    // (the background deletion) gets the lock.
    lock.keep_across_exec()?;
    // What the background deletions unlinked since the last transaction: the stored files
    // they left as they were need no hashing (`store::vouch`).
    let unlinked = crate::tier::store::vouch::Unlinked::load(&tier.root);
    let report = engine::apply(ctx, ui, store, &venv, plan, find_links, &trash, &unlinked);
    unlinked.discard();
    lock.close_on_exec()?;
    let report = report?;
    for failure in &report.failures {
        ui.error(failure);
    }
    Ok(if report.failures.is_empty() { 0 } else { 1 })
}

/// An undo or redo that did not reach its target: what it reverts is not counted as done.
fn warn_not_counted(ui: &Ui, op: &Operation, id: u64) {
    let what: Vec<String> = op.reverts.iter().map(|id| format!("#{id}")).collect();
    ui.warn(&format!(
        "#{id} did not reach its target, so {} {} not counted as {}; `pyctl {}` tries again",
        what.join(", "),
        if what.len() == 1 { "is" } else { "are" },
        if op.kind == Kind::Undo {
            "undone"
        } else {
            "redone"
        },
        op.kind.as_str()
    ));
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
    from: &tier::PipFrom,
) -> Result<()> {
    let venv = tier.venv();
    let trash = unique_trash(tier, "venv");
    let old_cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok();
    if venv.exists() {
        crate::sys::fsutil::move_to_trash(&venv, &trash)
            .with_context(|| format!("cannot move {} aside", venv.display()))?;
    }
    let pip_from_store = plan
        .add
        .iter()
        .any(|a| a.name == "pip" && matches!(a.source, engine::Source::Store { .. }));
    tier::create_venv_with(tier, python, inherit, !pip_from_store, from)?;
    let cfg = venv.join("pyvenv.cfg");
    if let (Some(old), Ok(new)) = (old_cfg, std::fs::read_to_string(&cfg)) {
        if old != new && PyvenvCfg::parse(&old).same_interpreter(&PyvenvCfg::parse(&new)) {
            crate::sys::fsutil::write_atomic(&cfg, old.as_bytes())?;
        }
    }
    Ok(())
}

/// A new `.trash-*` folder name in the tier: deleted in the background, so names never repeat.
pub fn unique_trash(tier: &Tier, what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    tier.root
        .join(format!(".trash-{what}-{}-{nanos}", std::process::id()))
}

/// Deletes venvs moved aside by clean, in the background so the command returns at once; a
/// later command finishes what a kill interrupted.
pub fn finish_trash(tier: &Tier) {
    // What a killed restore or background deletion left becomes trash like the rest.
    crate::tier::store::leftovers::sweep(&tier.root);
    crate::tier::store::trash::sweep_locks(&tier.root);
    let Ok(read) = std::fs::read_dir(&tier.root) else {
        return;
    };
    for item in read.filter_map(Result::ok) {
        if item.file_name().to_string_lossy().starts_with(".trash-") {
            delete_in_background(&item.path());
        }
    }
}

/// Deletes a `.trash-*` folder, started and not waited for: pyctl itself (`pyctl
/// __delete-trash PATH`, which reports the unlinks of stored files, see
/// [`crate::tier::store::vouch`]), or `rm -rf` when pyctl's own binary cannot be run again.
pub fn delete_in_background(path: &Path) {
    let quiet = |mut cmd: std::process::Command| {
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
    };
    let own = std::env::current_exe().ok().map(|exe| {
        let mut cmd = std::process::Command::new(exe);
        cmd.arg0("pyctl")
            .arg("__delete-trash")
            .arg(path)
            .env_clear()
            .env("PATH", crate::sys::tool::SYSTEM_PATH)
            .env("LC_ALL", "C");
        cmd
    });
    if own.map(quiet).is_some_and(|r| r.is_ok()) {
        return;
    }
    let mut rm = crate::sys::tool::system_tool("rm");
    rm.arg("-rf").arg(path);
    let _ = quiet(rm);
}

fn recorded_find_links(log: &Log) -> Vec<PathBuf> {
    engine::recorded_find_links(log.entries.iter().map(|e| e.before.pip_args.clone()))
}
