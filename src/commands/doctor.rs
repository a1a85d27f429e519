//! `pyctl doctor [--fix]`: a health check of the caller's tier, each problem with how to fix
//! it, and `--fix` for what pyctl can repair itself. Exit 0 when healthy, 1 when problems remain.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::commands::conflicts;
use crate::context::Context;
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
        check_pip(ctx, ui, &tier, &config, fix, &mut findings)?;
        check_installed_files(ctx, ui, &tier, &config, fix, &mut findings)?;
        check_orphans(&tier, fix, &mut findings)?;
        check_dependencies(&tier, &mut findings);
        check_store(&tier, &config, fix, &mut findings)?;
        check_conflicts(&tier, &config, &mut findings);
    }
    for problem in crate::ops::rebuild::problems(ctx, &tier) {
        findings.push(Finding {
            check: "python-upgrade",
            problem,
            fix: "see above; the default tier is rebuilt by its owner's next command".into(),
            fixed: false,
            note: false,
        });
    }
    if tier.kind == TierKind::User {
        check_path(ctx, &tier, &mut findings);
        check_user_site(ctx, &tier, &mut findings);
    } else {
        check_system_modes(&tier, fix, &mut findings);
    }
    finish(ui, &tier, findings)
}

/// The output settings for a repair doctor runs: no plan printed (doctor's report is the
/// output, a JSON one included); warnings still go to stderr.
fn quiet(ui: &Ui) -> Ui {
    let mut ui = ui.clone();
    ui.json = false;
    ui.quiet = true;
    ui
}

/// The problem of a venv without pip (`pip uninstall -y pip`): every pip command through the
/// shims fails with "No module named pip". Names the entry that removed it when history tells.
pub fn no_pip_problem(
    set: &crate::python::inventory::PackageSet,
    log: &crate::tier::history::Log,
) -> Option<String> {
    if set.get("pip").is_some() {
        return None;
    }
    let by = log
        .entries
        .iter()
        .rev()
        .find(|e| {
            e.changes().is_some_and(|c| {
                c.removed
                    .iter()
                    .any(|l| crate::python::freeze::requirement_name(l) == "pip")
            })
        })
        .map(|e| format!(" (removed by #{}: {})", e.id, e.before.command))
        .unwrap_or_default();
    Some(format!(
        "the venv has no pip{by}: every `pip` command fails with \"No module named pip\""
    ))
}

/// A venv without pip: `--fix` puts the pip of the last recorded state back from the store.
fn check_pip(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    fix: bool,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    let Ok(set) = crate::python::inventory::PackageSet::scan(&tier.venv()) else {
        return Ok(());
    };
    let log = crate::tier::history::read_log(&tier.history_dir())?;
    let Some(problem) = no_pip_problem(&set, &log) else {
        return Ok(());
    };
    let mut f = Finding {
        check: "pip",
        problem,
        fix: "`pyctl undo` (when the last operation removed it) or `pyctl doctor --fix` puts \
              pip back from the store"
            .into(),
        fixed: false,
        note: false,
    };
    if fix {
        f.fixed = crate::ops::repair::put_pip_back(ctx, &quiet(ui), tier, config, &log)?;
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
            f.fixed = crate::ops::repair::rebuild(ctx, ui, tier, config, None)?;
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
        let python = transaction::choose_python(ctx, tier)?;
        f.fixed = crate::ops::repair::rebuild(ctx, ui, tier, config, Some(&python))?;
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
    let store = transaction::store_of(tier, config);
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

/// Installed distributions whose files are not what their RECORD says: missing, changed in
/// place, or holding another distribution's bytes (two distributions shipping the same file:
/// only one of them can be whole), naming the operation that did it when the history tells.
/// `--fix` puts back what the store can (missing and changed files; pip reinstalls what the
/// store cannot give back), as a recorded operation; a clash between two installed
/// distributions is left to the user.
fn check_installed_files(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    config: &Config,
    fix: bool,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    let venv = tier.venv();
    let Ok(set) = PackageSet::scan(&venv) else {
        return Ok(());
    };
    let log = history::read_log(&tier.history_dir())?;
    let store = transaction::store_of(tier, config);
    // pip's own `bin/pip*` are pyctl's shims on purpose.
    let shim_paths: std::collections::HashSet<String> = tier
        .python_version()
        .map(|v| {
            shims::shim_names(&v)
                .into_iter()
                .map(|n| format!("bin/{n}"))
                .collect()
        })
        .unwrap_or_default();
    // line -> (problems that --fix repairs, clashes with another distribution)
    let mut damaged: std::collections::BTreeMap<String, (Vec<String>, Vec<String>)> =
        Default::default();
    for dist in set.dists.values() {
        if dist.format != crate::python::inventory::MetadataFormat::DistInfo {
            continue;
        }
        let Ok(rows) = crate::tier::store::installed_files(&venv, dist) else {
            continue;
        };
        let stored = store.entry_for_installed(dist);
        let line = dist.freeze_lines().pop().unwrap_or_default();
        for row in rows {
            let Some(expected) = row.hash.as_deref().filter(|h| h.starts_with("sha256=")) else {
                continue;
            };
            if shim_paths.contains(&row.path) {
                continue;
            }
            let path = venv.join(&row.path);
            if let Some((dir, entry)) = &stored {
                if let Some(file) = entry.files.iter().find(|f| f.path == row.path) {
                    let files = dir.join("files");
                    let same_inode = match (
                        std::fs::symlink_metadata(&path),
                        std::fs::symlink_metadata(files.join(&file.path)),
                    ) {
                        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                        _ => false,
                    };
                    if same_inode && Store::verify_file(&files, file).is_ok() {
                        continue;
                    }
                }
            }
            let ok = std::fs::symlink_metadata(&path).is_ok()
                && crate::tier::store::file_hash(&path).is_ok_and(|h| h == expected);
            if ok {
                continue;
            }
            let (what, clash) = blame(&venv, &set, &store, &log, &row.path);
            let slot = damaged.entry(line.clone()).or_default();
            if clash {
                slot.1.push(what);
            } else {
                slot.0.push(what);
            }
        }
    }
    if damaged.is_empty() {
        return Ok(());
    }
    let repairable = damaged.values().any(|(r, _)| !r.is_empty());
    let mut fixed = false;
    if fix && repairable {
        fixed = crate::ops::repair::repair_installed(ctx, &quiet(ui), tier, config, &log)?;
    }
    let listed = |problems: &[String]| {
        let more = if problems.len() > 3 {
            format!(" and {} more", problems.len() - 3)
        } else {
            String::new()
        };
        format!("{}{more}", problems[..problems.len().min(3)].join("; "))
    };
    for (line, (repairs, clashes)) in damaged {
        if !repairs.is_empty() {
            findings.push(Finding {
                check: "installed files",
                problem: format!("{line} is damaged: {}", listed(&repairs)),
                fix: "`pyctl doctor --fix` puts its own files back from the store".into(),
                fixed,
                note: false,
            });
        }
        if !clashes.is_empty() {
            findings.push(Finding {
                check: "installed files",
                problem: format!("{line} is damaged: {}", listed(&clashes)),
                fix: "two installed distributions ship the same files and only one can be \
                      whole: `pip uninstall` one of them (`pyctl undo` of the operation named \
                      puts the first back as it was)"
                    .into(),
                fixed: false,
                note: false,
            });
        }
    }
    Ok(())
}

/// What happened to an installed distribution's file `rel`: another installed distribution's
/// bytes (and the operation that brought that one; the bool says so), missing (and the
/// operation that removed a distribution whose stored copy had it), or changed in place.
fn blame(
    venv: &Path,
    set: &PackageSet,
    store: &Store,
    log: &history::Log,
    rel: &str,
) -> (String, bool) {
    let path = venv.join(rel);
    let brought_by = |line: &str| {
        log.entries.iter().rev().find(|e| {
            e.changes().is_some_and(|c| {
                c.added.iter().any(|l| l == line) || c.modified.iter().any(|m| m.to == line)
            })
        })
    };
    let removed_by = |line: &str| {
        log.entries.iter().rev().find(|e| {
            e.changes()
                .is_some_and(|c| c.removed.iter().any(|l| l == line))
        })
    };
    let by = |e: Option<&history::Entry>| {
        e.map(|e| format!(" (damaged by #{}: {})", e.id, e.before.command))
            .unwrap_or_default()
    };
    if std::fs::symlink_metadata(&path).is_err() {
        let gone = log
            .entries
            .iter()
            .rev()
            .filter_map(|e| e.changes())
            .flat_map(|c| c.removed.iter())
            .find(|line| {
                store
                    .find(&crate::python::freeze::requirement_name(line), line)
                    .iter()
                    .any(|(_, entry)| entry.files.iter().any(|f| f.path == rel))
            })
            .cloned();
        return match gone {
            Some(line) => (format!("{rel}: missing{}", by(removed_by(&line))), false),
            None => (format!("{rel}: missing"), false),
        };
    }
    let Ok(hash) = crate::tier::store::file_hash(&path) else {
        return (format!("{rel}: unreadable"), false);
    };
    for dist in set.dists.values() {
        let Ok(rows) = crate::tier::store::installed_files(venv, dist) else {
            continue;
        };
        if rows
            .iter()
            .any(|r| r.path == rel && r.hash.as_deref() == Some(hash.as_str()))
        {
            let line = dist.freeze_lines().pop().unwrap_or_default();
            return (
                format!("{rel}: holds {line}'s bytes{}", by(brought_by(&line))),
                true,
            );
        }
    }
    (format!("{rel}: changed in place"), false)
}

/// Top-level entries of site-packages that no distribution owns (a pip stopped half-way by a
/// full disk leaves a package folder without its `.dist-info`), with the operation that left
/// them when its time tells. `--fix` moves them into `<tier>/orphans/<time>/` (nothing is
/// deleted).
fn check_orphans(tier: &Tier, fix: bool, findings: &mut Vec<Finding>) -> Result<()> {
    let venv = tier.venv();
    let Ok(set) = PackageSet::scan(&venv) else {
        return Ok(());
    };
    let log = history::read_log(&tier.history_dir())?;
    let mut owned: std::collections::HashSet<PathBuf> = Default::default();
    for dist in set.dists.values() {
        match dist.format {
            crate::python::inventory::MetadataFormat::DistInfo => {
                if let Ok(rows) = crate::tier::store::installed_files(&venv, dist) {
                    owned.extend(rows.into_iter().map(|r| venv.join(r.path)));
                }
            }
            _ => {
                // An egg-info names its packages in top_level.txt.
                let top = std::fs::read_to_string(dist.metadata_path.join("top_level.txt"))
                    .unwrap_or_default();
                if let Some(site) = dist.metadata_path.parent() {
                    for name in top.lines().filter(|l| !l.trim().is_empty()) {
                        owned.insert(site.join(name.trim()));
                        owned.insert(site.join(format!("{}.py", name.trim())));
                    }
                }
            }
        }
    }
    let Ok(sites) = crate::python::inventory::site_packages_dirs(&venv) else {
        return Ok(());
    };
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    for site in sites {
        let Ok(read) = std::fs::read_dir(&site) else {
            continue;
        };
        for item in read.filter_map(Result::ok) {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".dist-info")
                || name.ends_with(".egg-info")
                || name.ends_with(".egg-link")
                || name == "__pycache__"
                || owned.contains(&path)
            {
                continue;
            }
            let (files, bytes, any_owned) = walkdir::WalkDir::new(&path)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| !e.file_type().is_dir())
                .fold((0u64, 0u64, false), |(n, b, o), e| {
                    let size = e.metadata().map_or(0, |m| m.len());
                    (n + 1, b + size, o || owned.contains(e.path()))
                });
            if any_owned {
                continue;
            }
            let left_by = item
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .and_then(|t| {
                    let t = t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                    log.entries.iter().find(|e| {
                        e.before.timestamp <= t
                            && e.after.as_ref().is_some_and(|a| a.timestamp >= t)
                    })
                })
                .map(|e| format!("; left by #{} ({})", e.id, e.before.command))
                .unwrap_or_default();
            let mut f = Finding {
                check: "orphan files",
                problem: format!(
                    "{} holds {files} file(s) ({}) that no distribution's RECORD names{left_by}",
                    path.display(),
                    crate::ui::human_bytes(bytes)
                ),
                fix: format!(
                    "`pyctl doctor --fix` moves it into {}",
                    tier.root.join("orphans").join(&stamp).display()
                ),
                fixed: false,
                note: false,
            };
            if fix {
                let dest_dir = tier.root.join("orphans").join(&stamp);
                f.fixed = std::fs::create_dir_all(&dest_dir).is_ok()
                    && std::fs::rename(&path, dest_dir.join(&name)).is_ok();
            }
            findings.push(f);
        }
    }
    Ok(())
}
