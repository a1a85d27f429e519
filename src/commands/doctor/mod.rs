//! `pyctl doctor [--fix]`: a health check of the caller's tier, each problem with how to fix
//! it, and `--fix` for what pyctl can repair itself. Exit 0 when healthy, 1 when problems remain.

mod files;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::commands::conflicts;
use crate::commands::shared::print_report;
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::health::{self, PathProblem};
use crate::ops::transaction;
use crate::python::depcheck;
use crate::python::inventory::PackageSet;
use crate::sys::fsutil::TierLock;
use crate::tier::config::Config;
use crate::tier::history;
use crate::tier::shims;
use crate::tier::store::Store;
use crate::tier::{self, Tier, TierKind};
use crate::ui::{Style, Ui};

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub problem: String,
    pub fix: String,
    /// Set when `--fix` repaired it.
    pub fixed: bool,
    /// Worth knowing but not wrong (a venv command shadowing a distro one is usually wanted):
    /// does not make doctor fail.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub note: bool,
}

impl Finding {
    /// A problem found by the check named `check`, with how to fix it; not fixed yet.
    pub fn new(check: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            check,
            problem: problem.into(),
            fix: fix.into(),
            fixed: false,
            note: false,
        }
    }

    /// Marks the finding as a note (worth knowing, not wrong) when `note` holds.
    pub fn note_if(mut self, note: bool) -> Self {
        self.note = note;
        self
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    tier: &'static str,
    root: &'a Path,
    healthy: bool,
    findings: &'a [Finding],
}

pub fn run(ctx: &Context, ui: &Ui, fix: bool) -> Result<ExitCode> {
    let tier = tier::current(ctx)?;
    let mut findings = Vec::new();
    let config = match tier.config() {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding::new(
                "config",
                format!("{e:#}"),
                "correct the file named above (`pyctl config` lists the keys)",
            ));
            Config::default()
        }
    };
    if !tier.is_provisioned() {
        findings.push(Finding::new(
            "tier",
            format!("no {} tier at {}", tier.kind.as_str(), tier.root.display()),
            match tier.kind {
                TierKind::User => "`pyctl init` or a first `pip install` creates it",
                TierKind::System => "`sudo pyctl system init` creates it",
            },
        ));
        return finish(ui, &tier, findings);
    }
    if let Err(e) = tier.check_owner(ctx) {
        findings.push(Finding::new(
            "owner",
            format!("{e:#}"),
            "run doctor as the tier's owner",
        ));
        return finish(ui, &tier, findings);
    }
    let c = Checkup {
        ctx,
        ui,
        tier: &tier,
        config: &config,
        fix,
    };
    check_interpreter(&c, &mut findings)?;
    if tier.venv_exists() && tier.python().exists() {
        check_shims(ctx, &tier, fix, &mut findings)?;
        check_history(&c, &mut findings)?;
        check_pip(&c, &mut findings)?;
        files::check_installed_files(&c, &mut findings)?;
        files::check_orphans(&tier, fix, &mut findings)?;
        check_dependencies(&tier, &mut findings);
        check_store(&tier, &config, fix, &mut findings)?;
        check_conflicts(&tier, &config, &mut findings);
    }
    for problem in crate::ops::rebuild::problems(ctx, &tier) {
        findings.push(Finding::new(
            "python-upgrade",
            problem,
            "see above; the default tier is rebuilt by its owner's next command",
        ));
    }
    if tier.kind == TierKind::User {
        check_path(ctx, &tier, &mut findings);
        check_user_site(ctx, &tier, &mut findings);
    } else {
        check_system_modes(&tier, fix, &mut findings);
    }
    finish(ui, &tier, findings)
}

/// What every check that may repair needs: the caller, the output, the tier and its
/// configuration, and whether `--fix` was given.
#[derive(Clone, Copy)]
struct Checkup<'a> {
    ctx: &'a Context,
    ui: &'a Ui,
    tier: &'a Tier,
    config: &'a Config,
    fix: bool,
}

/// The output settings for a repair doctor runs: no plan printed (doctor's report is the
/// output, a JSON one included); warnings still go to stderr.
fn quiet(ui: &Ui) -> Ui {
    let mut ui = ui.clone();
    ui.json = false;
    ui.quiet = true;
    ui
}

/// A venv without pip: `--fix` puts the pip of the last recorded state back from the store.
fn check_pip(c: &Checkup, findings: &mut Vec<Finding>) -> Result<()> {
    let Ok(set) = crate::python::inventory::PackageSet::scan(&c.tier.venv()) else {
        return Ok(());
    };
    let log = crate::tier::history::read_log(&c.tier.history_dir())?;
    let Some(problem) = health::no_pip(&set, &log) else {
        return Ok(());
    };
    let mut f = Finding::new(
        "pip",
        problem,
        "`pyctl undo` (when the last operation removed it) or `pyctl doctor --fix` puts \
              pip back from the store",
    );
    if c.fix {
        f.fixed = crate::ops::repair::put_pip_back(c.ctx, &quiet(c.ui), c.tier, c.config, &log)?;
    }
    findings.push(f);
    Ok(())
}

/// Packages that `pip install --user` put in the user site: not wrong (the tier's venv does not
/// see them), but `pyctl migrate` can bring them under the tier's history.
fn check_user_site(ctx: &Context, tier: &Tier, findings: &mut Vec<Finding>) {
    let (Some(site), names) = crate::ops::migrate::user_site_packages(ctx, tier) else {
        return;
    };
    if names.is_empty() {
        return;
    }
    let problem = format!(
        "{} distributions installed with `pip install --user` in {}: {}",
        names.len(),
        site.site.display(),
        names.join(", ")
    );
    let fix = "`pyctl migrate` moves them into the tier (`pyctl migrate --dry-run` shows the plan)";
    findings.push(Finding::new("user-site", problem, fix).note_if(true));
}

fn finish(ui: &Ui, tier: &Tier, findings: Vec<Finding>) -> Result<ExitCode> {
    let remaining = findings.iter().filter(|f| !f.fixed && !f.note).count();
    let code = ExitCode::success_if(remaining == 0);
    if ui.json {
        let report = Report {
            tier: tier.kind.as_str(),
            root: &tier.root,
            healthy: remaining == 0,
            findings: &findings,
        };
        return print_report(ui, &[serde_json::to_string_pretty(&report)?], code);
    }
    let mut lines = Vec::new();
    for f in &findings {
        let mark = if f.fixed {
            ui.out(Style::Added, "fixed")
        } else if f.note {
            ui.out(Style::Dim, "note")
        } else {
            ui.out(Style::Warn, "problem")
        };
        lines.push(format!("{mark} [{}] {}", f.check, f.problem));
        if !f.fixed {
            let label = if f.note { "hint" } else { "fix" };
            let hint = ui.out(Style::Dim, &format!("{label}: {}", f.fix));
            lines.push(format!("        {hint}"));
        }
    }
    if remaining == 0 {
        lines.push(format!(
            "{} {} tier at {} is healthy",
            ui.out(Style::Added, "ok:"),
            tier.kind.as_str(),
            tier.root.display()
        ));
    }
    print_report(ui, &lines, code)
}

/// The venv's interpreter must run. A distro Python upgrade leaves `bin/python` pointing at a
/// file that is gone; `--fix` rebuilds the venv on the current Python with the same set.
fn check_interpreter(c: &Checkup, findings: &mut Vec<Finding>) -> Result<()> {
    if !c.tier.venv_exists() {
        let mut f = Finding::new(
            "venv",
            format!("the venv {} is missing", c.tier.venv().display()),
            "`pyctl doctor --fix` rebuilds it with the last recorded set",
        );
        if c.fix {
            f.fixed = crate::ops::repair::rebuild(c.ctx, c.ui, c.tier, c.config, None)?;
        }
        findings.push(f);
        return Ok(());
    }
    let alive = std::process::Command::new(c.tier.python())
        .args(["-I", "-c", "pass"])
        .output()
        .is_ok_and(|o| o.status.success());
    if alive {
        return Ok(());
    }
    let mut f = Finding::new(
        "interpreter",
        format!(
            "{} does not run (its Python was removed or upgraded: {})",
            c.tier.python().display(),
            std::fs::read_link(c.tier.bin_dir().join("python3"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "no link".into())
        ),
        "`pyctl doctor --fix` rebuilds the venv on the current Python and reinstalls the set \
              (recorded: `pyctl undo` reverts it)",
    );
    if c.fix {
        let python = transaction::choose_python(c.ctx, c.tier)?;
        f.fixed = crate::ops::repair::rebuild(c.ctx, c.ui, c.tier, c.config, Some(&python))?;
    }
    findings.push(f);
    Ok(())
}

fn check_shims(ctx: &Context, tier: &Tier, fix: bool, findings: &mut Vec<Finding>) -> Result<()> {
    let missing = shims::missing_shims(tier, &ctx.exe);
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
    let mut f = Finding::new(
        "shims",
        format!("not pyctl's current shims: {}", names.join(", ")),
        "`pyctl doctor --fix` (or any pip operation) re-makes them",
    );
    if fix {
        tier.create_dirs()?;
        let _lock = tier.lock(ctx, || {})?;
        shims::ensure_shims(tier, &ctx.exe)?;
        f.fixed = shims::missing_shims(tier, &ctx.exe).is_empty();
    }
    findings.push(f);
    Ok(())
}

fn check_history(c: &Checkup, findings: &mut Vec<Finding>) -> Result<()> {
    let Checkup {
        ctx, ui, tier, fix, ..
    } = *c;
    let log = history::read_log(&tier.history_dir())?;
    for p in &log.problems {
        findings.push(Finding::new(
            "history",
            format!("unreadable history file {p}"),
            "move the file out of history/ (pyctl skips it meanwhile)",
        ));
    }
    let running = TierLock::is_held(&tier.lock_path());
    let unfinished: Vec<u64> = health::unfinished(&log).map(|e| e.id).collect();
    let drift = PackageSet::scan(&tier.venv())
        .ok()
        .is_some_and(|s| health::changed_outside(&s, &log));
    if unfinished.is_empty() && !drift {
        return Ok(());
    }
    if running {
        return Ok(());
    }
    let problem = if unfinished.is_empty() {
        "the venv was changed outside pyctl since the last recorded operation".to_string()
    } else {
        let ids: Vec<String> = unfinished.iter().map(|i| format!("#{i}")).collect();
        format!("interrupted operation(s) {}", ids.join(" "))
    };
    let mut f = Finding::new(
        "history",
        problem,
        "`pyctl doctor --fix` records the venv's real state and finishes an interrupted \
              undo/redo/restore/clean; `pyctl redo` (after an undo) or `pyctl undo` rolls it back",
    );
    if fix {
        {
            let lock = tier.lock(ctx, || {})?;
            let set = PackageSet::scan(&tier.venv())?;
            transaction::settle(ctx, ui, tier, &lock, &set)?;
        }
        f.fixed = true;
        // An undo, redo, restore or clean killed half-way is finished: its target is on record.
        let log = history::read_log(&tier.history_dir())?;
        if let Some(last) = log.last().filter(|e| {
            e.after.as_ref().is_some_and(|a| a.interrupted) && e.before.target.is_some()
        }) {
            let config = tier.config().unwrap_or_default();
            f.fixed = crate::ops::repair::finish(ctx, ui, tier, &config, last)?;
            f.problem.push_str(&format!(
                "; finished #{} ({}) to its recorded target",
                last.id, last.before.command
            ));
        }
    }
    findings.push(f);
    Ok(())
}

fn check_dependencies(tier: &Tier, findings: &mut Vec<Finding>) {
    let Ok(set) = PackageSet::scan(&tier.venv()) else {
        return;
    };
    let Some(version) = tier.python_version() else {
        return;
    };
    let Some(env) = depcheck::marker_environment(&version) else {
        return;
    };
    for broken in depcheck::check(&set, &env) {
        findings.push(Finding::new(
            "dependencies",
            broken.to_string(),
            "install a matching version with pip, or `pyctl undo` the operation that broke it",
        ));
    }
}

fn check_store(tier: &Tier, config: &Config, fix: bool, findings: &mut Vec<Finding>) -> Result<()> {
    let store = transaction::store_of(tier, config);
    for (dir, entry) in store.entries() {
        if let Err(e) = Store::verify(&dir, &entry) {
            let mut f = Finding::new(
                "store",
                format!(
                    "damaged store entry {} ({}): {e:#}",
                    dir.display(),
                    entry.line
                ),
                "`pyctl doctor --fix` drops it (pip reinstalls that version when needed)",
            );
            if fix {
                f.fixed = std::fs::remove_dir_all(&dir).is_ok();
            }
            findings.push(f);
        }
    }
    Ok(())
}

/// Where distro packages see other versions than the tier, or the tier's scripts hide distro
/// commands.
fn check_conflicts(tier: &Tier, config: &Config, findings: &mut Vec<Finding>) {
    let mut found = Vec::new();
    let sees_distro = tier.kind == TierKind::System || config.venv.inherit_system_packages;
    if sees_distro {
        if let Ok(set) = PackageSet::scan(&tier.venv()) {
            let mut roots = vec![PathBuf::from("/usr/lib/python3/dist-packages")];
            if let Some(v) = tier.python_version() {
                roots.push(PathBuf::from(format!(
                    "/usr/lib/python{}/dist-packages",
                    tier::minor_version(&v)
                )));
            }
            let distro = conflicts::installed_distro_dists(&roots);
            for mut c in conflicts::version_conflicts(&distro, tier.kind.as_str(), &set) {
                if let Some(d) = distro.iter().find(|d| d.name == c.name) {
                    if let Some(owner) = conflicts::dpkg_owner(Path::new(&d.path)) {
                        c.package = owner;
                    }
                }
                found.push(c);
            }
        }
    }
    if tier.kind == TierKind::User {
        found.extend(conflicts::shadowed_commands(
            tier.kind.as_str(),
            &tier.bin_dir(),
            Path::new("/usr/bin"),
            conflicts::dpkg_owner,
        ));
    }
    for c in found {
        let note = c.kind == conflicts::ConflictKind::ShadowedCommand;
        findings.push(Finding::new("conflicts", c.summary(), c.advice.clone()).note_if(note));
    }
}

fn check_path(ctx: &Context, tier: &Tier, findings: &mut Vec<Finding>) {
    let bin = tier.bin_dir().display().to_string();
    findings.extend(match health::path_problem(ctx, tier) {
        None => None,
        Some(PathProblem::Missing) => Some(Finding::new(
            "PATH",
            format!("{bin} is not on PATH"),
            "open a new login shell, or `pyctl init` to add it to your shell start-up files",
        )),
        Some(PathProblem::AfterUsrBin) => Some(Finding::new(
            "PATH",
            format!("/usr/bin comes before {bin} on PATH"),
            "put the pyctl line last in your shell start-up file",
        )),
    });
}

/// Everything under the system tier must be root's and not writable by group or others (the
/// audit `pyctl system status` makes); `--fix` repairs it as `pyctl system init` does.
fn check_system_modes(tier: &Tier, fix: bool, findings: &mut Vec<Finding>) {
    let bad = health::audit_system_tier(tier);
    let Some(first) = bad.first() else {
        return;
    };
    let mut f = Finding::new(
        "system tier",
        format!(
            "{} path(s) under {} not owned by root or writable by others, e.g. {}",
            bad.len(),
            tier.root.display(),
            first.path.display()
        ),
        "`sudo pyctl doctor --fix` (or `sudo pyctl system init`) repairs owner and modes",
    );
    if fix && nix::unistd::geteuid().is_root() {
        f.fixed =
            health::repair_system_tier(tier).is_ok() && health::audit_system_tier(tier).is_empty();
    }
    findings.push(f);
}
