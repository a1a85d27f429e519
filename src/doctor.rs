//! `pyctl doctor [--fix]`: a health check of the caller's tier, each problem with how to fix
//! it, and `--fix` for what pyctl can repair itself. Exit 0 when healthy, 1 when problems remain.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;
use crate::conflicts;
use crate::context::Context;
use crate::depcheck;
use crate::fsutil::TierLock;
use crate::history;
use crate::inventory::PackageSet;
use crate::record;
use crate::shims;
use crate::store::Store;
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

#[derive(Debug, Serialize)]
struct Report<'a> {
    tier: &'static str,
    root: &'a Path,
    healthy: bool,
    findings: &'a [Finding],
}

pub fn run(ctx: &Context, ui: &Ui, fix: bool) -> Result<i32> {
    let tier = tier::current(ctx)?;
    let mut findings = Vec::new();
    let config = match tier.config() {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding {
                check: "config",
                problem: format!("{e:#}"),
                fix: "correct the file named above (`pyctl config` lists the keys)".into(),
                fixed: false,
                note: false,
            });
            Config::default()
        }
    };
    if !tier.is_provisioned() {
        findings.push(Finding {
            check: "tier",
            problem: format!("no {} tier at {}", tier.kind.as_str(), tier.root.display()),
            fix: match tier.kind {
                TierKind::User => "`pyctl init` or a first `pip install` creates it".into(),
                TierKind::System => "`sudo pyctl system init` creates it".into(),
            },
            fixed: false,
            note: false,
        });
        return finish(ui, &tier, findings);
    }
    if let Err(e) = tier.check_owner(ctx) {
        findings.push(Finding {
            check: "owner",
            problem: format!("{e:#}"),
            fix: "run doctor as the tier's owner".into(),
            fixed: false,
            note: false,
        });
        return finish(ui, &tier, findings);
    }
    check_interpreter(ctx, ui, &tier, &config, fix, &mut findings)?;
    if tier.venv_exists() && tier.python().exists() {
        check_shims(ctx, &tier, fix, &mut findings)?;
        check_history(ctx, ui, &tier, fix, &mut findings)?;
        check_dependencies(&tier, &mut findings);
        check_store(&tier, &config, fix, &mut findings)?;
        check_conflicts(&tier, &config, &mut findings);
    }
    if tier.kind == TierKind::User {
        check_path(ctx, &tier, &mut findings);
        check_user_site(ctx, &tier, &mut findings);
    } else {
        check_system_modes(&tier, fix, &mut findings);
    }
    finish(ui, &tier, findings)
}

/// Packages that `pip install --user` put in the user site: not wrong (the tier's venv does not
/// see them), but `pyctl migrate` can bring them under the tier's history.
fn check_user_site(ctx: &Context, tier: &Tier, findings: &mut Vec<Finding>) {
    let (Some(site), names) = crate::migrate::user_site_packages(ctx, tier) else {
        return;
    };
    if names.is_empty() {
        return;
    }
    findings.push(Finding {
        check: "user-site",
        problem: format!(
            "{} distributions installed with `pip install --user` in {}: {}",
            names.len(),
            site.site.display(),
            names.join(", ")
        ),
        fix: "`pyctl migrate` moves them into the tier (`pyctl migrate --dry-run` shows the plan)"
            .into(),
        fixed: false,
        note: true,
    });
}

fn finish(ui: &Ui, tier: &Tier, findings: Vec<Finding>) -> Result<i32> {
    let remaining = findings.iter().filter(|f| !f.fixed && !f.note).count();
    if ui.json {
        let report = Report {
            tier: tier.kind.as_str(),
            root: &tier.root,
            healthy: remaining == 0,
            findings: &findings,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &findings {
            let mark = if f.fixed {
                ui.out(Style::Added, "fixed")
            } else if f.note {
                ui.out(Style::Dim, "note")
            } else {
                ui.out(Style::Warn, "problem")
            };
            println!("{mark} [{}] {}", f.check, f.problem);
            if !f.fixed {
                let label = if f.note { "hint" } else { "fix" };
                println!(
                    "        {}",
                    ui.out(Style::Dim, &format!("{label}: {}", f.fix))
                );
            }
        }
        if remaining == 0 {
            println!(
                "{} {} tier at {} is healthy",
                ui.out(Style::Added, "ok:"),
                tier.kind.as_str(),
                tier.root.display()
            );
        }
    }
    Ok(if remaining == 0 { 0 } else { 1 })
}

/// The venv's interpreter must run. A distro Python upgrade leaves `bin/python` pointing at a
/// file that is gone; `--fix` rebuilds the venv on the current Python with the same set.
fn check_interpreter(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    fix: bool,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    if !tier.venv_exists() {
        let mut f = Finding {
            check: "venv",
            problem: format!("the venv {} is missing", tier.venv().display()),
            fix: "`pyctl doctor --fix` rebuilds it with the last recorded set".into(),
            fixed: false,
            note: false,
        };
        if fix {
            f.fixed = crate::undo::rebuild(ctx, ui, tier, config, None)? == 0;
        }
        findings.push(f);
        return Ok(());
    }
    let alive = std::process::Command::new(tier.python())
        .args(["-I", "-c", "pass"])
        .output()
        .is_ok_and(|o| o.status.success());
    if alive {
        return Ok(());
    }
    let mut f = Finding {
        check: "interpreter",
        problem: format!(
            "{} does not run (its Python was removed or upgraded: {})",
            tier.python().display(),
            std::fs::read_link(tier.bin_dir().join("python3"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "no link".into())
        ),
        fix: "`pyctl doctor --fix` rebuilds the venv on the current Python and reinstalls the set \
              (recorded: `pyctl undo` reverts it)"
            .into(),
        fixed: false,
        note: false,
    };
    if fix {
        let python = record::choose_python(ctx, tier)?;
        f.fixed = crate::undo::rebuild(ctx, ui, tier, config, Some(&python))? == 0;
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
    let mut f = Finding {
        check: "shims",
        problem: format!("not pyctl's current shims: {}", names.join(", ")),
        fix: "`pyctl doctor --fix` (or any pip operation) re-makes them".into(),
        fixed: false,
        note: false,
    };
    if fix {
        tier.create_dirs()?;
        let _lock = tier.lock(ctx, || {})?;
        shims::ensure_shims(tier, &ctx.exe)?;
        f.fixed = shims::missing_shims(tier, &ctx.exe).is_empty();
    }
    findings.push(f);
    Ok(())
}

fn check_history(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    fix: bool,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    let log = history::read_log(&tier.history_dir())?;
    for p in &log.problems {
        findings.push(Finding {
            check: "history",
            problem: format!("unreadable history file {p}"),
            fix: "move the file out of history/ (pyctl skips it meanwhile)".into(),
            fixed: false,
            note: false,
        });
    }
    let running = TierLock::is_held(&tier.lock_path());
    let unfinished: Vec<u64> = log
        .entries
        .iter()
        .filter(|e| !e.is_complete())
        .map(|e| e.id)
        .collect();
    let drift = log.last().is_some_and(|e| e.is_complete())
        && PackageSet::scan(&tier.venv())
            .ok()
            .is_some_and(|s| Some(s.freeze().as_str()) != log.last_known_freeze());
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
    let mut f = Finding {
        check: "history",
        problem,
        fix: "`pyctl doctor --fix` records the venv's real state and finishes an interrupted \
              undo/redo/restore/clean; `pyctl redo` (after an undo) or `pyctl undo` rolls it back"
            .into(),
        fixed: false,
        note: false,
    };
    if fix {
        {
            let lock = tier.lock(ctx, || {})?;
            let set = PackageSet::scan(&tier.venv())?;
            record::settle(ctx, ui, tier, &lock, &set)?;
        }
        f.fixed = true;
        // An undo, redo, restore or clean killed half-way is finished: its target is on record.
        let log = history::read_log(&tier.history_dir())?;
        if let Some(last) = log.last().filter(|e| {
            e.after.as_ref().is_some_and(|a| a.interrupted) && e.before.target.is_some()
        }) {
            let config = tier.config().unwrap_or_default();
            f.fixed = crate::undo::finish(ctx, ui, tier, &config, last)? == 0;
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
        findings.push(Finding {
            check: "dependencies",
            problem: broken.to_string(),
            fix: "install a matching version with pip, or `pyctl undo` the operation that broke it"
                .into(),
            fixed: false,
            note: false,
        });
    }
}

fn check_store(tier: &Tier, config: &Config, fix: bool, findings: &mut Vec<Finding>) -> Result<()> {
    let store = record::store_of(tier, config);
    for (dir, entry) in store.entries() {
        if let Err(e) = Store::verify(&dir, &entry) {
            let mut f = Finding {
                check: "store",
                problem: format!(
                    "damaged store entry {} ({}): {e:#}",
                    dir.display(),
                    entry.line
                ),
                fix: "`pyctl doctor --fix` drops it (pip reinstalls that version when needed)"
                    .into(),
                fixed: false,
                note: false,
            };
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
        findings.push(Finding {
            check: "conflicts",
            problem: c.summary(),
            fix: c.advice.clone(),
            fixed: false,
            note: c.kind == conflicts::ConflictKind::ShadowedCommand,
        });
    }
}

fn check_path(ctx: &Context, tier: &Tier, findings: &mut Vec<Finding>) {
    let bin = tier.bin_dir();
    let Some(pos) = ctx.path_position(&bin) else {
        findings.push(Finding {
            check: "PATH",
            problem: format!("{} is not on PATH", bin.display()),
            fix: "open a new login shell, or `pyctl init` to add it to your shell start-up files"
                .into(),
            fixed: false,
            note: false,
        });
        return;
    };
    if let Some(usr) = ctx.path_position(Path::new("/usr/bin")) {
        if usr < pos {
            findings.push(Finding {
                check: "PATH",
                problem: format!("/usr/bin comes before {} on PATH", bin.display()),
                fix: "put the pyctl line last in your shell start-up file".into(),
                fixed: false,
                note: false,
            });
        }
    }
}

/// Everything under the system tier must be root's and not writable by group or others.
fn check_system_modes(tier: &Tier, fix: bool, findings: &mut Vec<Finding>) {
    let mut bad: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(&tier.root)
        .into_iter()
        .filter_map(Result::ok)
    {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if meta.uid() != 0 {
                bad.push(entry.path().to_path_buf());
            }
            continue;
        }
        if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            bad.push(entry.path().to_path_buf());
        }
    }
    if bad.is_empty() {
        return;
    }
    let mut f = Finding {
        check: "system tier",
        problem: format!(
            "{} path(s) under {} not owned by root or writable by others, e.g. {}",
            bad.len(),
            tier.root.display(),
            bad[0].display()
        ),
        fix: "`sudo pyctl doctor --fix` (or `sudo pyctl system init`) repairs owner and modes"
            .into(),
        fixed: false,
        note: false,
    };
    if fix && nix::unistd::geteuid().is_root() {
        let mut ok = true;
        for p in &bad {
            let _ = nix::unistd::fchownat(
                None,
                p,
                Some(nix::unistd::Uid::from_raw(0)),
                Some(nix::unistd::Gid::from_raw(0)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
            if let Ok(meta) = p.symlink_metadata() {
                if !meta.file_type().is_symlink() {
                    let mode = meta.mode() & 0o7777 & !0o022;
                    ok &=
                        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).is_ok();
                }
            }
        }
        f.fixed = ok;
    }
    findings.push(f);
}
