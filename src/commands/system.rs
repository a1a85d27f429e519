//! The root-only system tier: `pyctl system init` provisions and repairs it, `pyctl system
//! status` reports on it.
//!
//! Everything under the system tier belongs to root and is writable by nobody else: folders
//! 0755, files 0644 (executables 0755), the `.lock` 0600. `init` is idempotent: run again, it
//! re-makes what is missing (venv, shims, baseline) and puts owner and modes right, which is
//! what the distro packages' post-install step relies on.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::{bail, Result};
use nix::sys::stat::{umask, Mode};
use serde::Serialize;

use crate::commands::shared::print_report;
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::health;
use crate::ops::transaction;
use crate::python::inventory::PackageSet;
use crate::tier::history;
use crate::tier::shims;
use crate::tier::snapshot;
use crate::tier::{self, Tier, TierKind};
use crate::ui::Ui;

/// The system tier this process would use.
pub fn system_tier(ctx: &Context) -> Tier {
    Tier::new(TierKind::System, tier::system_root(ctx))
}

/// Refuses a caller that is not root, naming the command.
fn require_root(ctx: &Context, what: &str) -> Result<()> {
    if !ctx.is_root() {
        bail!(
            "`pyctl system {what}` works on the root-owned system tier and must run as root \
             (try `sudo pyctl system {what}`); your own packages live in your user tier \
             (`pyctl status`)"
        );
    }
    Ok(())
}

/// Restores the process umask when dropped.
struct UmaskGuard(Mode);

impl UmaskGuard {
    fn set(mask: u32) -> UmaskGuard {
        UmaskGuard(umask(Mode::from_bits_truncate(mask)))
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// `pyctl system init [--python PATH]`.
pub fn init(ctx: &Context, ui: &Ui, python: Option<PathBuf>) -> Result<ExitCode> {
    require_root(ctx, "init")?;
    let _umask = UmaskGuard::set(0o022);
    let tier = system_tier(ctx);
    if let Some(p) = &python {
        tier::interpreter_version(p)?;
    }
    if let Some(parent) = tier.root.parent() {
        if !crate::sys::fsutil::root_controlled(parent) {
            ui.warn(&format!(
                "{} (or a folder above it) is writable by someone other than root; the system \
                 tier is only as safe as its parent folders",
                parent.display()
            ));
        }
    }
    refuse_foreign_root(&tier)?;
    tier.create_dirs()?;
    // Put owner and modes right before taking the lock, so nothing below runs in a folder
    // another account could still change.
    let repaired_before = health::repair_system_tier(&tier)?;
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in the system tier to finish...")
    })?;
    let created = transaction::ensure_venv(ctx, ui, &tier, &lock, python.as_deref())?;
    if !created {
        if let (Some(p), Some(have)) = (&python, tier.python_version()) {
            let wanted = tier::interpreter_version(p)?;
            if tier::minor_version(&wanted) != tier::minor_version(&have) {
                ui.warn(&format!(
                    "the system venv already runs Python {have}; --python {} (Python {wanted}) \
                     is only used when the venv is created. `sudo pyctl clean` re-creates it.",
                    p.display()
                ));
            }
        }
        ensure_baseline(&tier)?;
    }
    shims::ensure_shims(&tier, &ctx.exe)?;
    drop(lock);
    let repaired_after = health::repair_system_tier(&tier)?;
    let repaired = repaired_before + repaired_after;
    if repaired > 0 {
        ui.info(&format!(
            "repaired owner or mode of {repaired} path(s) under {}",
            tier.root.display()
        ));
        crate::sys::syslog::syslog_line(&format!(
            "system tier {}: repaired owner or mode of {repaired} path(s)",
            tier.root.display()
        ));
    }
    if created {
        ui.info(&format!(
            "system tier ready: {} (python {})",
            tier.venv().display(),
            tier.python_version().unwrap_or_default()
        ));
    } else {
        ui.info(&format!(
            "system tier already set up at {}; shims, baseline, owner and modes checked",
            tier.venv().display()
        ));
    }
    Ok(ExitCode::Success)
}

/// A tier folder that some other account made is not adopted: whatever it put inside (links,
/// scripts, a venv) would become root's to run.
fn refuse_foreign_root(tier: &Tier) -> Result<()> {
    match std::fs::symlink_metadata(&tier.root) {
        Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => bail!(
            "{} is not a folder (a symlink or a file); move it aside and run `pyctl system init` \
             again",
            tier.root.display()
        ),
        Ok(meta) if meta.uid() != 0 => bail!(
            "{} belongs to uid {}, not root; pyctl will not adopt a system tier another account \
             made. Check what is inside, move it aside, and run `pyctl system init` again",
            tier.root.display(),
            meta.uid()
        ),
        _ => Ok(()),
    }
}

/// Writes the `baseline` snapshot of a venv that has none (a tier made before snapshots were
/// configured on, or whose baseline was deleted), when the configuration asks for one.
fn ensure_baseline(tier: &Tier) -> Result<()> {
    let config = tier.config()?;
    let path = snapshot::snapshot_path(tier, snapshot::BASELINE)?;
    if !config.snapshots.auto_baseline || path.exists() || !tier.venv_exists() {
        return Ok(());
    }
    let set = PackageSet::scan(&tier.venv())?;
    snapshot::write_snapshot(
        tier,
        snapshot::BASELINE,
        &set,
        &crate::sys::clock::now_timestamp(),
        None,
    )?;
    Ok(())
}

#[derive(Debug, Serialize)]
struct StatusJson {
    root: PathBuf,
    venv: PathBuf,
    provisioned: bool,
    venv_exists: bool,
    python: Option<String>,
    packages: Option<usize>,
    history_entries: usize,
    last_operation: Option<String>,
    baseline: bool,
    shims_ok: bool,
    bad_paths: Vec<health::BadPath>,
    problems: Vec<String>,
}

fn collect_status(ctx: &Context, tier: &Tier) -> StatusJson {
    let mut problems = Vec::new();
    let provisioned = tier.is_provisioned();
    if !provisioned {
        problems.push(format!(
            "{} is not set up: run `sudo pyctl system init`",
            tier.root.display()
        ));
    }
    let packages = if tier.venv_exists() {
        match PackageSet::scan(&tier.venv()) {
            Ok(set) => Some(set.len()),
            Err(e) => {
                problems.push(format!("cannot read the package set: {e:#}"));
                None
            }
        }
    } else {
        if provisioned {
            problems.push(format!(
                "the venv {} is missing: `sudo pyctl system init` re-creates it",
                tier.venv().display()
            ));
        }
        None
    };
    if health::interpreter_missing(tier) {
        problems.push(format!(
            "the venv's interpreter {} is broken (a Python upgrade?): `sudo pyctl doctor --fix`",
            tier.python().display()
        ));
    }
    let (history_entries, last_operation) = match history::read_log(&tier.history_dir()) {
        Ok(log) => (
            log.entries.len(),
            log.last()
                .map(|e| format!("#{} {} ({})", e.id, e.before.command, e.before.timestamp)),
        ),
        Err(e) => {
            // The system tier's history is root's alone: other accounts are not told it.
            if provisioned && ctx.is_root() {
                problems.push(format!("cannot read the history: {e:#}"));
            }
            (0, None)
        }
    };
    let baseline = snapshot::snapshot_path(tier, snapshot::BASELINE).is_ok_and(|p| p.is_file());
    let shims_ok = tier.venv_exists() && shims::missing_shims(tier, &ctx.exe).is_empty();
    if tier.venv_exists() && !shims_ok {
        problems.push("the venv's pip shims are missing or stale: `sudo pyctl system init`".into());
    }
    let bad_paths = if tier.root.exists() {
        health::audit_system_tier(tier)
    } else {
        Vec::new()
    };
    if !bad_paths.is_empty() {
        problems.push(format!(
            "{} path(s) not root's or writable by others: `sudo pyctl system init` repairs them",
            bad_paths.len()
        ));
    }
    StatusJson {
        root: tier.root.clone(),
        venv: tier.venv(),
        provisioned,
        venv_exists: tier.venv_exists(),
        python: tier.python_version(),
        packages,
        history_entries,
        last_operation,
        baseline,
        shims_ok,
        bad_paths,
        problems,
    }
}

/// `pyctl system status [--json]`: exit 0 when the tier is set up and sound, 1 otherwise.
pub fn status(ctx: &Context, ui: &Ui, json: bool) -> Result<ExitCode> {
    require_root(ctx, "status")?;
    let tier = system_tier(ctx);
    let st = collect_status(ctx, &tier);
    let code = ExitCode::success_if(st.problems.is_empty());
    if json {
        return print_report(ui, &[serde_json::to_string_pretty(&st)?], code);
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut lines = vec![
        format!("{:<10}{}", "tier", "system"),
        format!("{:<10}{}", "venv", st.venv.display()),
        format!("{:<10}{}", "set up", yes_no(st.provisioned)),
    ];
    if let Some(v) = &st.python {
        lines.push(format!("{:<10}{v}", "python"));
    }
    if let Some(n) = st.packages {
        lines.push(format!("{:<10}{n}", "packages"));
    }
    if st.provisioned {
        lines.push(format!("{:<10}{}", "history", st.history_entries));
        if let Some(last) = &st.last_operation {
            lines.push(format!("{:<10}{last}", "last op"));
        }
        lines.push(format!("{:<10}{}", "baseline", yes_no(st.baseline)));
    }
    lines.extend(crate::commands::status::problem_lines(ui, &st.problems));
    for b in st.bad_paths.iter().take(10) {
        lines.push(format!("    {}: {}", b.path.display(), b.problem));
    }
    print_report(ui, &lines, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_folder_another_account_made_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sys");
        let tier = Tier::new(TierKind::System, root.clone());
        assert!(
            refuse_foreign_root(&tier).is_ok(),
            "a missing folder is created"
        );
        std::fs::create_dir(&root).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let verdict = refuse_foreign_root(&tier);
        assert_eq!(verdict.is_ok(), me == 0, "{verdict:?}");
        if me == 0 {
            std::os::unix::fs::lchown(&root, Some(1), None).unwrap();
            let err = refuse_foreign_root(&tier).unwrap_err().to_string();
            assert!(err.contains("not root"), "{err}");
        }
        std::fs::remove_dir(&root).unwrap();
        std::os::unix::fs::symlink("/", &root).unwrap();
        let err = refuse_foreign_root(&tier).unwrap_err().to_string();
        assert!(err.contains("not a folder"), "{err}");
    }
}
