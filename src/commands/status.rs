//! `pyctl status`: where the tier is, its Python, its packages, the last operation and
//! its problems.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::commands::shared::{print_json, print_listing};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::health::{self, PathProblem};
use crate::python::inventory::PackageSet;
use crate::sys::fsutil::TierLock;
use crate::tier::history::EntryState;
use crate::tier::history::{self};
use crate::tier::shims;
use crate::tier::{self, Tier, TierKind};
use crate::ui::local_time;
use crate::ui::{Style, Ui};

#[derive(Serialize)]
struct StatusJson {
    tier: &'static str,
    root: PathBuf,
    venv: PathBuf,
    venv_exists: bool,
    python: Option<String>,
    packages: Option<usize>,
    /// Bytes of stored distribution files the venv no longer links to.
    store_extra_bytes: Option<u64>,
    last_operation: Option<LastOp>,
    problems: Vec<String>,
    /// Every tier of yours: the default one and one per other Python version.
    tiers: Vec<TierSummary>,
}

#[derive(Serialize)]
struct TierSummary {
    root: PathBuf,
    /// `3.12` for a `py312/` tier, `None` for the default interpreter's.
    version_dir: Option<String>,
    python: Option<String>,
    packages: Option<usize>,
    /// The tier this command looked at.
    selected: bool,
}

fn tier_summaries(ctx: &Context, selected: &Tier) -> Vec<TierSummary> {
    let mut tiers = tier::all_tiers(ctx).unwrap_or_default();
    if !tiers.contains(selected) {
        tiers.push(selected.clone());
    }
    tiers
        .into_iter()
        .map(|t| TierSummary {
            version_dir: t.version_dir_minor(),
            python: t.python_version(),
            packages: t
                .venv_exists()
                .then(|| PackageSet::scan(&t.venv()).ok().map(|s| s.len()))
                .flatten(),
            selected: &t == selected,
            root: t.root,
        })
        .collect()
}

#[derive(Serialize)]
struct LastOp {
    id: u64,
    command: String,
    timestamp: String,
    state: EntryState,
}

pub fn run(ctx: &Context, ui: &Ui, json: bool) -> Result<ExitCode> {
    let tier = tier::current(ctx)?;
    let mut problems = Vec::new();
    let set = scan(&tier, &mut problems);
    let log = history::read_log(&tier.history_dir())?;
    let lock_held = TierLock::is_held(&tier.lock_path());
    problems.extend(tier_problems(ctx, &tier, set.as_ref(), &log, lock_held));
    let store_extra = tier.store_dir().is_dir().then(|| {
        crate::tier::store::Store::new(tier.store_dir(), Default::default()).extra_bytes()
    });
    let last = log.last().map(|e| LastOp {
        id: e.id,
        command: e.before.command.clone(),
        timestamp: e.before.timestamp.clone(),
        state: e.state(lock_held),
    });
    let st = StatusJson {
        tier: tier.kind.as_str(),
        root: tier.root.clone(),
        venv: tier.venv(),
        venv_exists: tier.venv_exists(),
        python: tier.python_version(),
        packages: set.as_ref().map(PackageSet::len),
        store_extra_bytes: store_extra,
        last_operation: last,
        problems,
        tiers: tier_summaries(ctx, &tier),
    };
    if json {
        return print_json(ui, &st);
    }
    print_listing(ui, &render(ui, &tier, &st))
}

/// The tier's package set, when its venv is there and readable; what stops reading it goes to
/// `problems`.
fn scan(tier: &Tier, problems: &mut Vec<String>) -> Option<PackageSet> {
    if tier.venv_exists() {
        return match PackageSet::scan(&tier.venv()) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("cannot read the package set: {e}"));
                None
            }
        };
    }
    if tier.is_provisioned() {
        problems.push(format!(
            "the venv {} is missing; the next `pip install` re-creates it",
            tier.venv().display()
        ));
    }
    None
}

/// The problems `status` lists besides reading the set, each with what to do.
fn tier_problems(
    ctx: &Context,
    tier: &Tier,
    set: Option<&PackageSet>,
    log: &history::Log,
    lock_held: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    if health::interpreter_missing(tier) {
        problems.push(format!(
            "the venv's interpreter {} is broken (a Python upgrade?)",
            tier.python().display()
        ));
    }
    problems.extend(set.and_then(|set| health::no_pip(set, log)));
    problems.extend(
        log.problems
            .iter()
            .map(|p| format!("unreadable history file {p}")),
    );
    for e in health::unfinished(log) {
        problems.push(if lock_held {
            format!("operation #{} ({}) is running", e.id, e.before.command)
        } else {
            format!(
                "operation #{} ({}) was interrupted; the next operation records how it ended",
                e.id, e.before.command
            )
        });
    }
    if set.is_some_and(|set| health::changed_outside(set, log)) {
        problems.push(
            "the venv was changed outside pyctl (e.g. `python -m pip`); the next operation \
             records it"
                .to_string(),
        );
    }
    if tier.venv_exists() {
        for shim in shims::missing_shims(tier, &ctx.exe) {
            problems.push(format!(
                "{} is not pyctl's shim; the next operation re-makes it",
                shim.display()
            ));
        }
    }
    // A version tier's bin folder is not for PATH (its `python3` is another version).
    if tier.kind == TierKind::User
        && tier.version_dir_minor().is_none()
        && tier.venv_exists()
        && health::path_problem(ctx, tier) == Some(PathProblem::Missing)
    {
        problems.push(format!(
            "{} is not on PATH; open a new login shell, or run `pyctl init` to add it",
            tier.bin_dir().display()
        ));
    }
    problems.extend(crate::ops::rebuild::problems(ctx, tier));
    problems
}

/// The text report.
fn render(ui: &Ui, tier: &Tier, st: &StatusJson) -> Vec<String> {
    let kind = match tier.version_dir_minor() {
        Some(minor) => format!("{} (python {minor})", tier.kind.as_str()),
        None => tier.kind.as_str().to_string(),
    };
    let mut lines = vec![
        format!("{:<10}{kind}", "tier"),
        format!("{:<10}{}", "venv", st.venv.display()),
    ];
    if !tier.is_provisioned() {
        lines.push(format!(
            "{:<10}not created yet: `pip install ...` or `pyctl init` creates it",
            "state"
        ));
    }
    if let Some(v) = &st.python {
        lines.push(format!("{:<10}{v}", "python"));
    }
    if let Some(n) = st.packages {
        lines.push(format!("{:<10}{n}", "packages"));
    }
    if let Some(bytes) = st.store_extra_bytes {
        lines.push(format!(
            "{:<10}{} beyond the venv (`pyctl gc` frees what nothing refers to)",
            "store",
            crate::ui::human_bytes(bytes)
        ));
    }
    match &st.last_operation {
        Some(op) => lines.push(format!(
            "{:<10}#{} {} ({}, {})",
            "last op",
            op.id,
            op.command,
            local_time(&op.timestamp),
            op.state
        )),
        None if tier.is_provisioned() => lines.push(format!("{:<10}none recorded", "last op")),
        None => {}
    }
    if tier.is_provisioned() || !st.problems.is_empty() {
        lines.extend(problem_lines(ui, &st.problems));
    }
    if st.tiers.len() > 1 {
        lines.extend(tier_lines(ui, &st.tiers));
    }
    lines
}

/// The `problems` lines of a status report: `none`, or how many and each one.
pub(crate) fn problem_lines(ui: &Ui, problems: &[String]) -> Vec<String> {
    if problems.is_empty() {
        return vec![format!(
            "{:<10}{}",
            "problems",
            ui.out(Style::Added, "none")
        )];
    }
    let mut lines = vec![format!("{:<10}{}", "problems", problems.len())];
    for p in problems {
        lines.push(format!("  {} {p}", ui.out(Style::Warn, "!")));
    }
    lines
}

/// Every tier of the caller, the selected one marked.
fn tier_lines(ui: &Ui, tiers: &[TierSummary]) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, t) in tiers.iter().enumerate() {
        let about = match (&t.python, t.packages) {
            (Some(v), Some(n)) => format!("python {v}, {n} packages"),
            (Some(v), None) => format!("python {v}"),
            (None, _) => "no venv yet".to_string(),
        };
        let flag = match &t.version_dir {
            Some(minor) => format!("  (pyctl --python {minor})"),
            None => "  (default)".to_string(),
        };
        let label = if i == 0 { "tiers" } else { "" };
        let marker = if t.selected { "*" } else { " " };
        lines.push(format!(
            "{label:<10}{marker} {} ({about}){}",
            t.root.display(),
            ui.out(Style::Dim, &flag)
        ));
    }
    lines
}
