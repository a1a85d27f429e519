//! Snapshots: `pyctl snapshot NAME` saves the current set, `pyctl restore NAME` goes back to it
//! (one transaction, [`crate::ops::target`]), `list-snapshots` and `delete-snapshot`.

use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::target::{open_tier, transact, Target};
use crate::ops::transaction::Operation;
use crate::tier::gc::current_set;
use crate::tier::history::Kind;
use crate::tier::snapshot::{self, list};
use crate::tier::{self, Tier};
use crate::ui::Ui;

pub fn restore(ctx: &Context, ui: &Ui, name: &str, dry_run: bool) -> Result<ExitCode> {
    let (tier, config, lock) = open_tier(ctx, ui)?;
    let path = snapshot::snapshot_path(&tier, name)?;
    let (text, exact) = snapshot::ExactState::split(&read_snapshot(&tier, name, &path)?);
    let exact = exact
        .unwrap_or_else(|e| {
            ui.warn(&format!(
                "{}: its `# pyctl state:` line cannot be read ({e}); restoring the versions alone",
                path.display()
            ));
            None
        })
        .unwrap_or_default();
    let target = Target {
        entries: exact.entries,
        folders: exact.folders,
        ..Target::set(
            Operation::new(Kind::Restore, format!("pyctl restore {name}")),
            text,
        )
    };
    transact(ctx, ui, &tier, &config, &lock, None, target, dry_run)
}

/// The text of snapshot `name` (at `path`); a missing one is named with those there are.
pub fn read_snapshot(tier: &Tier, name: &str, path: &Path) -> Result<String> {
    crate::sys::fsutil::refuse_symlink(path)?;
    match crate::sys::fsutil::read_regular_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let known: Vec<String> = list(tier).into_iter().map(|s| s.name).collect();
            bail!(
                "no snapshot named {name:?}; known: {}",
                if known.is_empty() {
                    "none yet (`pyctl snapshot NAME` makes one)".to_string()
                } else {
                    known.join(", ")
                }
            )
        }
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
    }
}

pub fn snapshot_cmd(ctx: &Context, ui: &Ui, name: &str, force: bool) -> Result<ExitCode> {
    snapshot::validate_name(name)?;
    let (tier, config, _lock) = open_tier(ctx, ui)?;
    let path = snapshot::snapshot_path(&tier, name)?;
    if path.exists() && !force {
        bail!(
            "snapshot {name:?} already exists ({}); use --force to replace it",
            path.display()
        );
    }
    let set = current_set(&tier)?;
    let exact = snapshot::ExactState {
        entries: crate::ops::transaction::stored_entries(&tier, &config, &set),
        folders: tier::folders::empty(&tier.venv()),
    };
    let now = crate::sys::clock::now_timestamp();
    snapshot::write_snapshot(&tier, name, &set, &now, Some(&exact))?;
    ui.info(&format!(
        "saved snapshot {name:?}: {} packages in {}",
        set.len(),
        path.display()
    ));
    Ok(ExitCode::Success)
}

pub fn list_snapshots(ctx: &Context, ui: &Ui) -> Result<ExitCode> {
    let tier = tier::current(ctx)?;
    let snaps = list(&tier);
    if ui.json {
        println!("{}", serde_json::to_string_pretty(&snaps)?);
        return Ok(ExitCode::Success);
    }
    if snaps.is_empty() {
        ui.info("no snapshots yet; `pyctl snapshot NAME` saves one");
        return Ok(ExitCode::Success);
    }
    let width = snaps.iter().map(|s| s.name.len()).max().unwrap_or(4);
    for s in snaps {
        println!(
            "{:<width$}  {}  {} packages",
            s.name,
            s.modified.replace('T', " ").trim_end_matches('Z'),
            s.packages
        );
    }
    Ok(ExitCode::Success)
}

pub fn delete_snapshot(ctx: &Context, ui: &Ui, name: &str) -> Result<ExitCode> {
    snapshot::validate_name(name)?;
    let (tier, _config, _lock) = open_tier(ctx, ui)?;
    let path = snapshot::snapshot_path(&tier, name)?;
    read_snapshot(&tier, name, &path)?;
    std::fs::remove_file(&path).with_context(|| format!("{}: cannot delete", path.display()))?;
    ui.info(&format!("deleted snapshot {name:?}"));
    Ok(ExitCode::Success)
}
