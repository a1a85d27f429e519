//! The transaction engine behind undo, redo, restore and clean: the plan between the current
//! set and a target set, printed, then applied from the store, with pip as the fallback for
//! anything the store cannot give back.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

pub use super::kept::Repair;
use crate::context::Context;
use crate::python::freeze::freeze_map;
use crate::python::inventory::{requirement_key, Distribution, MetadataFormat, PackageSet};
use crate::tier::store::{self, Store, StoreEntry};
use crate::ui::{Style, Ui};

/// Where a distribution to add comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
pub enum Source {
    Store {
        #[serde(skip)]
        dir: PathBuf,
        #[serde(skip)]
        entry: Box<StoreEntry>,
    },
    Pip {
        reason: String,
    },
}

/// One distribution to add, or to change to.
#[derive(Debug, Clone, Serialize)]
pub struct Addition {
    pub name: String,
    pub line: String,
    pub source: Source,
}

/// What it takes to go from the current set to a target set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// Requirement lines of distributions to remove.
    pub remove: Vec<String>,
    pub add: Vec<Addition>,
    /// (current line, target) for distributions present in both at different versions/sources.
    pub change: Vec<(String, Addition)>,
    /// Files of distributions the target keeps that are not their own bytes any more (another
    /// distribution overwrote them, pip's uninstall of a co-owner deleted them, or they were
    /// changed in place): put back from the store.
    pub repair: Vec<Repair>,
    /// Kept distributions whose store copy is damaged or missing while their installed files
    /// differ too: reinstalled by pip (`--force-reinstall --no-deps`).
    pub reinstall: Vec<Addition>,
    #[serde(skip)]
    to_remove: Vec<Distribution>,
    /// Distributions in both sets at the same line.
    #[serde(skip)]
    kept: Vec<Distribution>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.add.is_empty()
            && self.change.is_empty()
            && self.repair.is_empty()
            && self.reinstall.is_empty()
    }

    /// Additions and changes, each once.
    fn all_additions(&self) -> impl Iterator<Item = &Addition> {
        self.add.iter().chain(self.change.iter().map(|(_, a)| a))
    }

    pub fn summary(&self) -> String {
        let from_pip = self
            .all_additions()
            .filter(|a| matches!(a.source, Source::Pip { .. }))
            .count();
        let mut s = format!(
            "{} to remove, {} to add, {} to change",
            self.remove.len(),
            self.add.len(),
            self.change.len()
        );
        if !self.repair.is_empty() {
            s.push_str(&format!(", {} file(s) to put back", self.repair.len()));
        }
        if !self.reinstall.is_empty() {
            s.push_str(&format!(", {} to reinstall", self.reinstall.len()));
        }
        if from_pip > 0 {
            s.push_str(&format!(
                " ({from_pip} not in the store: pip will fetch them)"
            ));
        }
        s
    }
}

/// Computes the plan from `current` (the set of `venv`) to the set described by
/// `target_freeze` (freeze or requirements text), taking for each distribution the store entry
/// `target_entries` names when it holds that line (else the newest stored copy).
/// Store entries only serve the Python minor version `python_minor` (their files live under
/// `lib/pythonX.Y/`).
pub fn plan(
    store: &Store,
    venv: &Path,
    current: &PackageSet,
    (target_freeze, target_entries): (&str, &BTreeMap<String, String>),
    python_minor: &str,
) -> Plan {
    let target = freeze_map(target_freeze);
    let current_map = current.requirement_map();
    // A distribution at the target's version but another stored copy of it than the target's
    // (installed by name, with `REQUESTED`, where the target had it as a dependency, say) is
    // changed too, when the store still holds the target's copy.
    let current_entries = if target_entries.is_empty() {
        BTreeMap::new()
    } else {
        store.entries_of(venv, current)
    };
    let other_copy = |name: &str| match (current_entries.get(name), target_entries.get(name)) {
        (Some(have), Some(want)) => {
            have != want && store.dir.join(want).join("entry.json").is_file()
        }
        _ => false,
    };
    let mut plan = Plan::default();
    for (name, line) in &current_map {
        if !target.contains_key(name) {
            plan.remove.push(line.clone());
            if let Some(d) = current.dists.get(name) {
                plan.to_remove.push(d.clone());
            }
        }
    }
    // Where each addition or change comes from: one store entry read each, spread over the
    // cores.
    let wanted: Vec<(&String, &String)> = target
        .iter()
        .filter(|(name, line)| {
            current_map
                .get(*name)
                .is_none_or(|cur| requirement_key(cur) != requirement_key(line))
                || other_copy(name)
        })
        .collect();
    let found = crate::sys::parallel::map(&wanted, |(name, line)| {
        let preferred = target_entries.get(*name).map(String::as_str);
        find_source(store, name, line, python_minor, preferred)
    });
    let mut sources: BTreeMap<&String, Source> =
        wanted.iter().map(|(name, _)| *name).zip(found).collect();
    for (name, line) in &target {
        let mut addition = || Addition {
            name: name.clone(),
            line: line.clone(),
            source: sources.remove(name).unwrap_or_else(|| Source::Pip {
                reason: "not in the store".into(),
            }),
        };
        match current_map.get(name) {
            None => plan.add.push(addition()),
            Some(cur) if requirement_key(cur) != requirement_key(line) || other_copy(name) => {
                plan.change.push((cur.clone(), addition()));
                if let Some(d) = current.dists.get(name) {
                    plan.to_remove.push(d.clone());
                }
            }
            Some(_) => {
                if let Some(d) = current.dists.get(name) {
                    plan.kept.push(d.clone());
                }
            }
        }
    }
    // What the additions bring wins over a kept distribution's copy of the same path, as it
    // would if pip installed them now. (Thousands of paths, against the few kept ones: borrowed,
    // and looked up in the kept files' map, never gathered into a set of their own.)
    let added = plan
        .all_additions()
        .filter_map(|a| match &a.source {
            Source::Store { entry, .. } => Some(entry.files.iter().map(|f| f.path.as_str())),
            Source::Pip { .. } => None,
        })
        .flatten();
    let (repair, damaged) = super::kept::find_repairs(store, venv, &plan.kept, added);
    plan.repair = repair;
    plan.reinstall = damaged
        .into_iter()
        .map(|(line, reason)| Addition {
            name: crate::python::freeze::requirement_name(&line),
            line,
            source: Source::Pip { reason },
        })
        .collect();
    plan
}

fn find_source(
    store: &Store,
    canonical: &str,
    line: &str,
    python_minor: &str,
    preferred: Option<&str>,
) -> Source {
    let site = format!("lib/python{python_minor}/");
    let usable = |e: &StoreEntry| e.dist_info.starts_with(&site);
    // The copy the target state had, when the store still holds it: one entry read, no
    // listing of the whole store.
    if let Some((dir, entry)) = preferred
        .and_then(|p| store.find_named(canonical, line, p))
        .filter(|(_, e)| usable(e))
    {
        return Source::Store {
            dir,
            entry: Box::new(entry),
        };
    }
    // Otherwise the newest usable copy of that version.
    match store
        .find(canonical, line)
        .into_iter()
        .find(|(_, e)| usable(e))
    {
        Some((dir, entry)) => Source::Store {
            dir,
            entry: Box::new(entry),
        },
        None => Source::Pip {
            reason: "not in the store".into(),
        },
    }
}

/// The plan as lines for people.
pub fn plan_lines(ui: &Ui, plan: &Plan) -> Vec<String> {
    let from = |a: &Addition| match &a.source {
        Source::Store { .. } => ui.out(Style::Dim, "(from the store)"),
        Source::Pip { reason } => ui.out(Style::Warn, &format!("(pip: {reason})")),
    };
    let mut lines = Vec::new();
    for line in &plan.remove {
        lines.push(format!("  {} {line}", ui.out(Style::Removed, "remove ")));
    }
    for a in &plan.add {
        lines.push(format!(
            "  {} {} {}",
            ui.out(Style::Added, "add    "),
            a.line,
            from(a)
        ));
    }
    for (cur, a) in &plan.change {
        lines.push(format!(
            "  {} {cur} -> {} {}",
            ui.out(Style::Changed, "change "),
            a.line,
            from(a)
        ));
    }
    for r in &plan.repair {
        lines.push(format!(
            "  {} {} ({}'s own, from the store)",
            ui.out(Style::Changed, "put back"),
            r.path,
            r.line
        ));
    }
    for a in &plan.reinstall {
        lines.push(format!(
            "  {} {} {}",
            ui.out(Style::Changed, "reinstall"),
            a.line,
            from(a)
        ));
    }
    lines
}

/// What applying a plan could not do.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub failures: Vec<String>,
}

/// Whether applying a plan goes on after a step: not after a pip that a signal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Go {
    On,
    Stop,
}

impl ApplyReport {
    /// Notes how a pip run that was `doing` something to `what` ended: `failed` says what a
    /// failure means; a pip that a signal ended is a failure too, after which nothing more runs.
    fn pip_end(
        &mut self,
        end: PipEnd,
        failed: impl FnOnce() -> String,
        doing: &str,
        what: &[String],
    ) -> Go {
        match end {
            PipEnd::Done => Go::On,
            PipEnd::Failed => {
                self.failures.push(failed());
                Go::On
            }
            PipEnd::Killed(signal) => {
                self.failures.push(killed(signal, doing, what));
                Go::Stop
            }
        }
    }
}

/// Applies a plan to `venv` (its canonical path). Removals first (moved into `trash`, which the
/// caller deletes once the venv is in its target state), then additions from the store, then pip
/// for the rest: `--no-index` with the local wheel folders first, then the index (not after a
/// pip that a signal ended: that is a failure). `unlinked`: what the background deletions
/// reported since the last transaction (`store::vouch`).
#[allow(clippy::too_many_arguments)]
pub fn apply(
    ctx: &Context,
    ui: &Ui,
    store: &Store,
    venv: &Path,
    plan: &Plan,
    find_links: &dyn Fn() -> Vec<PathBuf>,
    trash: &Path,
    unlinked: &store::vouch::Unlinked,
) -> Result<ApplyReport> {
    let mut report = ApplyReport::default();
    if remove(ctx, venv, plan, trash, &mut report)? == Go::Stop {
        return Ok(report);
    }
    let via_pip = restore_from_store(ui, store, venv, plan, unlinked);
    for r in &plan.repair {
        if let Err(e) = store.put_back(&r.src, &venv.join(&r.path)) {
            report.failures.push(format!(
                "could not put back {} of {}: {e:#}",
                r.path, r.line
            ));
        }
    }
    for a in &plan.reinstall {
        if let Source::Pip { reason } = &a.source {
            ui.warn(&format!("{}: {reason}; reinstalling it with pip", a.line));
        }
    }
    if !plan.reinstall.is_empty() {
        let reinstall: Vec<&Addition> = plan.reinstall.iter().collect();
        let lines = lines_of(&reinstall);
        let end = pip_install(
            ctx,
            ui,
            venv,
            &find_links(),
            &requirements_of(&reinstall),
            true,
        )?;
        let failed = || {
            format!(
                "could not reinstall {}: not in a local wheel folder, and the index did not \
                 serve them",
                lines.join(", ")
            )
        };
        if report.pip_end(end, failed, "reinstalling", &lines) == Go::Stop {
            return Ok(report);
        }
    }
    if via_pip.is_empty() {
        return Ok(report);
    }
    let lines = lines_of(&via_pip);
    let end = pip_install(
        ctx,
        ui,
        venv,
        &find_links(),
        &requirements_of(&via_pip),
        false,
    )?;
    let failed = || {
        format!(
            "could not restore {}: not in the store, not in a local wheel folder, and the index \
             did not serve them",
            lines.join(", ")
        )
    };
    report.pip_end(end, failed, "installing", &lines);
    Ok(report)
}

/// Takes out what the plan removes: by RECORD where there is one (a file a kept distribution
/// owns too stays), the rest with `pip uninstall`.
fn remove(
    ctx: &Context,
    venv: &Path,
    plan: &Plan,
    trash: &Path,
    report: &mut ApplyReport,
) -> Result<Go> {
    let (by_record, pip_only): (Vec<&Distribution>, Vec<&Distribution>) =
        plan.to_remove.iter().partition(|d| {
            d.format == MetadataFormat::DistInfo && d.metadata_path.join("RECORD").is_file()
        });
    if !by_record.is_empty() {
        // A file a kept distribution owns too stays, whoever else owns it.
        let mut protected: HashSet<String> = HashSet::new();
        for dist in &plan.kept {
            if let Ok(rows) = store::installed_files(venv, dist) {
                protected.extend(rows.into_iter().map(|r| r.path));
            }
        }
        store::remove_dists(venv, &by_record, &protected, trash)
            .context("removing distributions")?;
    }
    let names: Vec<String> = pip_only.iter().map(|d| d.name.clone()).collect();
    if names.is_empty() {
        return Ok(Go::On);
    }
    let mut args: Vec<OsString> = vec!["uninstall".into(), "-y".into()];
    args.extend(names.iter().map(OsString::from));
    let end = run_pip(ctx, venv, &args)?;
    let failed = || format!("pip could not remove {}", names.join(", "));
    Ok(report.pip_end(end, failed, "removing", &names))
}

/// Puts back from the store what the plan takes from it, spread over the cores (checking and
/// linking thousands of files). Returns what is left for pip: the additions the store does not
/// hold, and those whose stored copy was damaged (that copy goes).
fn restore_from_store<'a>(
    ui: &Ui,
    store: &Store,
    venv: &Path,
    plan: &'a Plan,
    unlinked: &store::vouch::Unlinked,
) -> Vec<&'a Addition> {
    let from_store: Vec<(&Addition, &PathBuf, &StoreEntry)> = plan
        .all_additions()
        .filter_map(|a| match &a.source {
            Source::Store { dir, entry } => Some((a, dir, entry.as_ref())),
            Source::Pip { .. } => None,
        })
        .collect();
    let mut via_pip: Vec<&Addition> = plan
        .all_additions()
        .filter(|a| matches!(a.source, Source::Pip { .. }))
        .collect();
    let progress = ui.progress("restoring distributions from the store", from_store.len());
    // The largest first, so that one large distribution (jedi: a third of jupyterlab's files)
    // is not what one core works through alone at the end while the other waits.
    let mut order: Vec<usize> = (0..from_store.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(from_store[i].2.files.len()));
    let entries: Vec<&StoreEntry> = from_store.iter().map(|(_, _, e)| *e).collect();
    let reuse = unlinked
        .pool
        .as_ref()
        .map(|pool| store::Reuse::new(pool, &entries));
    let results = crate::sys::parallel::map(&order, |&i| {
        let (_, dir, entry) = &from_store[i];
        let result = match store.restore_checked(dir, entry, venv, unlinked, reuse.as_ref()) {
            Ok(()) => Ok(()),
            Err(store::LinkFailure::Damaged(e)) => {
                // A damaged entry goes, so that the copy pip installs now is kept in its place
                // (keeping skips a distribution whose entry exists).
                let _ = std::fs::remove_dir_all(dir);
                Err(anyhow::Error::new(e))
            }
            Err(store::LinkFailure::Failed(e)) => Err(e),
        };
        progress.inc();
        (i, result)
    });
    drop(progress);
    let mut results: Vec<(usize, Result<()>)> = results;
    results.sort_by_key(|(i, _)| *i);
    for ((addition, _, _), (_, result)) in from_store.iter().zip(results) {
        if let Err(e) = result {
            ui.warn(&format!("{}: {e:#}; falling back to pip", addition.line));
            via_pip.push(addition);
        }
    }
    via_pip
}

/// The freeze lines of `additions`.
fn lines_of(additions: &[&Addition]) -> Vec<String> {
    additions.iter().map(|a| a.line.clone()).collect()
}

/// `additions` as pip install arguments.
fn requirements_of(additions: &[&Addition]) -> Vec<OsString> {
    additions
        .iter()
        .flat_map(|a| requirement_args(&a.line))
        .collect()
}

/// `pip install --no-deps` of `requirements`: `--no-index` from the local wheel folders first,
/// then the index (not after a pip that a signal ended: that is a failure).
fn pip_install(
    ctx: &Context,
    ui: &Ui,
    venv: &Path,
    find_links: &[PathBuf],
    requirements: &[OsString],
    force: bool,
) -> Result<PipEnd> {
    let mut base: Vec<OsString> = vec![
        "install".into(),
        "--no-deps".into(),
        "--disable-pip-version-check".into(),
    ];
    if force {
        base.push("--force-reinstall".into());
    }
    // Root builds nothing from a folder another account can write, even one root once named.
    let find_links: Vec<&PathBuf> = find_links
        .iter()
        .filter(|d| d.exists() && (!ctx.is_root() || crate::sys::fsutil::root_controlled(d)))
        .collect();
    if !find_links.is_empty() {
        let mut offline = base.clone();
        offline.push("--no-index".into());
        for dir in &find_links {
            offline.push("--find-links".into());
            offline.push(dir.as_os_str().into());
        }
        offline.extend(requirements.iter().cloned());
        match run_pip(ctx, venv, &offline)? {
            PipEnd::Failed => {}
            // Done, or someone stopped pip: another pip would be against their will, and
            // would take a distribution pip left half-installed for one already there.
            end => return Ok(end),
        }
    }
    ui.info("not everything is in the local wheel folders; asking the package index");
    let mut online = base;
    online.extend(requirements.iter().cloned());
    run_pip(ctx, venv, &online)
}

/// The failure of a pip that a signal ended.
fn killed(signal: i32, doing: &str, what: &[String]) -> String {
    format!(
        "pip was killed (signal {signal}) while {doing} {}; what it had not finished may be \
         missing or incomplete (`pip install --force-reinstall --no-deps NAME==VERSION` puts a \
         distribution back whole)",
        what.join(", ")
    )
}

/// A freeze line as pip install arguments (`-e PATH` is two).
fn requirement_args(line: &str) -> Vec<OsString> {
    match line.strip_prefix("-e ") {
        Some(rest) => vec!["-e".into(), rest.trim().into()],
        None => vec![line.into()],
    }
}

/// How a pip run ended.
enum PipEnd {
    Done,
    Failed,
    /// Ended by this signal.
    Killed(i32),
}

fn run_pip(ctx: &Context, venv: &Path, args: &[OsString]) -> Result<PipEnd> {
    use std::os::unix::process::ExitStatusExt as _;
    let python = venv.join("bin/python");
    let status = crate::sys::pip::command(ctx, venv, crate::sys::pip::PipFor::Tier)
        .args(args)
        .status()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    Ok(match status.signal() {
        Some(signal) => PipEnd::Killed(signal),
        None if status.success() => PipEnd::Done,
        None => PipEnd::Failed,
    })
}

/// The `--find-links` folders named in recorded pip commands: local wheel folders that pip can
/// reinstall from offline.
pub fn recorded_find_links(pip_args: impl Iterator<Item = Vec<String>>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for args in pip_args {
        let mut iter = args.iter().peekable();
        while let Some(arg) = iter.next() {
            let value = if arg == "--find-links" || arg == "-f" {
                iter.next().cloned()
            } else {
                arg.strip_prefix("--find-links=").map(str::to_string)
            };
            if let Some(v) = value {
                let p = PathBuf::from(v.strip_prefix("file://").unwrap_or(&v));
                if p.is_absolute() && p.is_dir() && !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Counts per source, for JSON output of a plan.
pub fn plan_sources(plan: &Plan) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for a in plan.all_additions() {
        let k = match a.source {
            Source::Store { .. } => "store",
            Source::Pip { .. } => "pip",
        };
        *m.entry(k).or_insert(0) += 1;
    }
    m
}
