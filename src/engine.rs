//! The transaction engine behind undo, redo, restore and clean: the plan between the current
//! set and a target set, printed, then applied from the store, with pip as the fallback for
//! anything the store cannot give back.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::inventory::{requirement_key, Distribution, MetadataFormat, PackageSet};
use crate::record::freeze_map;
use crate::store::{self, Store, StoreEntry};
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
    #[serde(skip)]
    to_remove: Vec<Distribution>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty() && self.change.is_empty()
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
        if from_pip > 0 {
            s.push_str(&format!(
                " ({from_pip} not in the store: pip will fetch them)"
            ));
        }
        s
    }
}

/// Computes the plan from `current` to the set described by `target_freeze` (freeze or
/// requirements text).
/// Store entries only serve the Python minor version `python_minor` (their files live under
/// `lib/pythonX.Y/`).
pub fn plan(store: &Store, current: &PackageSet, target_freeze: &str, python_minor: &str) -> Plan {
    let target = freeze_map(target_freeze);
    let current_map = current.requirement_map();
    let mut plan = Plan::default();
    for (name, line) in &current_map {
        if !target.contains_key(name) {
            plan.remove.push(line.clone());
            if let Some(d) = current.dists.get(name) {
                plan.to_remove.push(d.clone());
            }
        }
    }
    for (name, line) in &target {
        let addition = || Addition {
            name: name.clone(),
            line: line.clone(),
            source: find_source(store, name, line, python_minor),
        };
        match current_map.get(name) {
            None => plan.add.push(addition()),
            Some(cur) if requirement_key(cur) != requirement_key(line) => {
                plan.change.push((cur.clone(), addition()));
                if let Some(d) = current.dists.get(name) {
                    plan.to_remove.push(d.clone());
                }
            }
            Some(_) => {}
        }
    }
    plan
}

fn find_source(store: &Store, canonical: &str, line: &str, python_minor: &str) -> Source {
    let site = format!("lib/python{python_minor}/");
    let usable = store
        .find(canonical, line)
        .into_iter()
        .find(|(_, e)| e.dist_info.starts_with(&site));
    match usable {
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
    lines
}

/// What applying a plan could not do.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub failures: Vec<String>,
}

/// Applies a plan to `venv` (its canonical path). Removals first (moved into `trash`, which the
/// caller deletes once the venv is in its target state), then additions from the store, then pip
/// for the rest: `--no-index` with the local wheel folders first, then the index (not after a
/// pip that a signal ended: that is a failure).
pub fn apply(
    ctx: &Context,
    ui: &Ui,
    store: &Store,
    venv: &Path,
    plan: &Plan,
    find_links: &[PathBuf],
    trash: &Path,
) -> Result<ApplyReport> {
    let mut report = ApplyReport::default();
    let (by_record, pip_only): (Vec<&Distribution>, Vec<&Distribution>) =
        plan.to_remove.iter().partition(|d| {
            d.format == MetadataFormat::DistInfo && d.metadata_path.join("RECORD").is_file()
        });
    if !by_record.is_empty() {
        store::remove_dists(venv, &by_record, trash).context("removing distributions")?;
    }
    let pip_only_removals: Vec<String> = pip_only.iter().map(|d| d.name.clone()).collect();
    if !pip_only_removals.is_empty() {
        let mut args: Vec<OsString> = vec!["uninstall".into(), "-y".into()];
        args.extend(pip_only_removals.iter().map(OsString::from));
        match run_pip(ctx, venv, &args)? {
            PipEnd::Done => {}
            PipEnd::Failed => report.failures.push(format!(
                "pip could not remove {}",
                pip_only_removals.join(", ")
            )),
            PipEnd::Killed(signal) => {
                report
                    .failures
                    .push(killed(signal, "removing", &pip_only_removals));
                return Ok(report);
            }
        }
    }
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
    // Checking and linking thousands of files: spread the distributions over the cores.
    let progress = ui.progress("restoring distributions from the store", from_store.len());
    let results = crate::parallel::map(&from_store, |(_, dir, entry)| {
        let mut made_dirs = std::collections::HashSet::new();
        let result = match Store::verify(dir, entry) {
            Ok(()) => store.restore(dir, entry, venv, &mut made_dirs),
            Err(e) => {
                // A damaged entry goes, so that the copy pip installs now is kept in its place
                // (keeping skips a distribution whose entry exists).
                let _ = std::fs::remove_dir_all(dir);
                Err(e)
            }
        };
        progress.inc();
        result
    });
    drop(progress);
    for ((addition, _, _), result) in from_store.iter().zip(results) {
        if let Err(e) = result {
            ui.warn(&format!(
                "{}: the store copy is unusable ({e:#}); falling back to pip",
                addition.line
            ));
            via_pip.push(addition);
        }
    }
    if via_pip.is_empty() {
        return Ok(report);
    }
    let requirements: Vec<OsString> = via_pip
        .iter()
        .flat_map(|a| requirement_args(&a.line))
        .collect();
    let mut offline: Vec<OsString> = vec![
        "install".into(),
        "--no-deps".into(),
        "--no-index".into(),
        "--disable-pip-version-check".into(),
    ];
    for dir in find_links.iter().filter(|d| d.exists()) {
        offline.push("--find-links".into());
        offline.push(dir.into());
    }
    offline.extend(requirements.iter().cloned());
    let lines: Vec<String> = via_pip.iter().map(|a| a.line.clone()).collect();
    if !find_links.is_empty() {
        match run_pip(ctx, venv, &offline)? {
            PipEnd::Done => return Ok(report),
            PipEnd::Failed => {}
            // Someone stopped pip: another pip would be against their will, and would take a
            // distribution pip left half-installed for one already there.
            PipEnd::Killed(signal) => {
                report.failures.push(killed(signal, "installing", &lines));
                return Ok(report);
            }
        }
    }
    ui.info("not everything is in the local wheel folders; asking the package index");
    let mut online: Vec<OsString> = vec![
        "install".into(),
        "--no-deps".into(),
        "--disable-pip-version-check".into(),
    ];
    online.extend(requirements);
    match run_pip(ctx, venv, &online)? {
        PipEnd::Done => {}
        PipEnd::Failed => report.failures.push(format!(
            "could not restore {}: not in the store, not in a local wheel folder, and the index \
             did not serve them",
            lines.join(", ")
        )),
        PipEnd::Killed(signal) => report.failures.push(killed(signal, "installing", &lines)),
    }
    Ok(report)
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
    let mut cmd = Command::new(&python);
    if ctx.is_root() {
        crate::wrapper::isolate_for_root(ctx, &mut cmd);
    }
    let status = cmd
        .args(["-m", "pip"])
        .args(args)
        .env("PYCTL_ACTIVE", venv)
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
