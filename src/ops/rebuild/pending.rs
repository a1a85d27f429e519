//! What a rebuild could not put back (no wheel for the new Python reachable): kept in
//! `<tier>/.rebuild-pending` with when it was last tried and what the wheel folders held then,
//! and tried again at each use (as one more `rebuild` entry) once a wheel folder changed, or
//! after an hour.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::{amend_after, carry, Done, SystemUmask, PENDING};
use crate::context::Context;
use crate::ops::transaction::{self as record, Operation};
use crate::python::freeze::freeze_map;
use crate::python::inventory::PackageSet;
use crate::sys::fsutil::TierLock;
use crate::tier::history::{self, Kind, Rebuilt};
use crate::tier::{Tier, TierKind};
use crate::ui::Ui;

/// Keeps (or clears) the lines a rebuild could not put back.
pub fn write_pending(tier: &Tier, missing: &[String], find_links: &[PathBuf]) -> Result<()> {
    let path = tier.root.join(PENDING);
    if missing.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("{}: cannot remove", path.display()))
            }
            _ => Ok(()),
        };
    }
    let mut text = format!("{PENDING_HEADER}{}\n", attempt_stamp(find_links));
    text.extend(missing.iter().map(|l| format!("{l}\n")));
    crate::sys::fsutil::write_atomic(&path, text.as_bytes())
}

const PENDING_HEADER: &str = "# pyctl: not rebuilt yet; last tried ";
/// How long a failed attempt is not repeated while the wheel folders stay as they were.
const RETRY_AFTER: u64 = 3600;

/// When an attempt was made and what the wheel folders held (their change times): a wheel
/// added to a folder changes it.
fn attempt_stamp(find_links: &[PathBuf]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{now} {}", folders_stamp(find_links))
}

fn folders_stamp(find_links: &[PathBuf]) -> String {
    use std::os::unix::fs::MetadataExt;
    let stamps: Vec<String> = find_links
        .iter()
        .map(|d| {
            std::fs::metadata(d).map_or_else(
                |_| "-".to_string(),
                |m| format!("{}.{}", m.mtime(), m.mtime_nsec()),
            )
        })
        .collect();
    stamps.join(",")
}

/// Whether the last attempt failed so recently, with the wheel folders unchanged since, that
/// trying again now would fail the same way (and add an entry to the history on each command).
fn tried_recently(text: &str, find_links: &[PathBuf]) -> bool {
    let Some(stamp) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(PENDING_HEADER))
    else {
        return false;
    };
    let Some((when, folders)) = stamp.split_once(' ') else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    when.parse::<u64>()
        .is_ok_and(|t| now.saturating_sub(t) < RETRY_AFTER)
        && folders == folders_stamp(find_links)
}

/// Tries again what a rebuild could not put back, as one more `rebuild` entry.
pub fn finish_pending(ctx: &Context, ui: &Ui, tier: &Tier, lock: &TierLock) -> Result<Done> {
    let path = tier.root.join(PENDING);
    crate::sys::fsutil::refuse_symlink(&path)?;
    let text = crate::sys::fsutil::read_regular_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let current = PackageSet::scan(&tier.venv())?.requirement_map();
    let wanted: Vec<String> = freeze_map(&text)
        .into_iter()
        .filter(|(name, line)| current.get(name) != Some(line))
        .map(|(_, line)| line)
        .collect();
    if wanted.is_empty() {
        write_pending(tier, &[], &[])?;
        return Ok(Done::Nothing);
    }
    let config = tier.config()?;
    let log = history::read_log(&tier.history_dir())?;
    let find_links = crate::ops::engine::recorded_find_links(
        log.entries.iter().map(|e| e.before.pip_args.clone()),
    );
    if tried_recently(&text, &find_links) {
        log::info!(
            "not rebuilt yet: {}; the wheel folders are as they were at the last attempt",
            wanted.join(", ")
        );
        return Ok(Done::Nothing);
    }
    let version = tier.python_version().unwrap_or_default();
    let op = Operation::new(
        Kind::Rebuild,
        format!(
            "pyctl rebuild (finishing on Python {version}: {})",
            wanted.join(", ")
        ),
    );
    let mut detail = Rebuilt {
        from: version.clone(),
        to: version,
        ..Rebuilt::default()
    };
    let outcome = record::record(ctx, ui, tier, lock, &config, &op, || {
        let _umask = (tier.kind == TierKind::System).then(SystemUmask::set);
        let venv = tier.venv().canonicalize().context("the venv vanished")?;
        let missing = carry::pip_reinstall(ctx, &venv, lock, &find_links, &wanted)?;
        detail.pip = wanted
            .iter()
            .filter(|l| !missing.contains(l))
            .cloned()
            .collect();
        detail.missing = missing;
        write_pending(tier, &detail.missing, &find_links)?;
        Ok(if detail.missing.is_empty() { 0 } else { 1 })
    })?;
    if let Err(e) = amend_after(tier, outcome.id, detail.clone()) {
        log::warn!(
            "rebuild #{}: the details were not recorded: {e:#}",
            outcome.id
        );
    }
    if detail.missing.is_empty() {
        ui.info(&format!(
            "finished the rebuild: {} put back",
            detail.pip.join(", ")
        ));
    } else {
        ui.warn(&format!(
            "still not rebuilt (no wheel for this Python reachable): {}; tried again at the next \
             use",
            detail.missing.join(", ")
        ));
    }
    Ok(Done::Recorded(outcome.exit_code))
}
