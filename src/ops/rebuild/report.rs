//! What the rest of pyctl sees of rebuilds: the lines `history` shows under one, why `undo`
//! stops at one, what a new venv of the tier holds (`clean`), and the problems `status` and
//! `doctor` report (a changed interpreter, what is not rebuilt yet, version tiers whose Python is
//! gone).

use anyhow::{bail, Result};

use super::{detect, Change, PENDING};
use crate::context::Context;
use crate::python::freeze::freeze_map;
use crate::tier::history::{Entry, Kind, Log};
use crate::tier::{self, Tier};

/// What a new venv of the tier holds by itself, as freeze text: what the newest rebuild's new
/// Python brought, else what the first init recorded. `clean` starts from it.
pub fn fresh_venv_freeze(log: &Log) -> Option<String> {
    let newest_rebuild = log
        .entries
        .iter()
        .rev()
        .filter(|e| e.before.kind == Kind::Rebuild)
        .filter_map(|e| e.after.as_ref()?.rebuild.as_ref())
        .find(|r| !r.own.is_empty());
    if let Some(r) = newest_rebuild {
        return Some(r.own.iter().map(|l| format!("{l}\n")).collect());
    }
    log.entries
        .iter()
        .find(|e| e.before.kind == Kind::Init)
        .and_then(|e| e.after.as_ref())
        .map(|a| a.freeze.to_string())
}

/// Why `undo` cannot take a rebuild entry (or go past one): the Python it would go back to is
/// gone.
pub fn refuse_undo_past(log: &Log, oldest_reverted: u64) -> Result<()> {
    // A rebuild that was killed or could not make its venv changed nothing: no obstacle.
    let changed = |e: &Entry| {
        e.after.as_ref().is_some_and(|a| {
            a.rebuild.as_ref().is_some_and(|r| !r.own.is_empty())
                || a.changes.as_ref().is_some_and(|c| !c.is_empty())
        })
    };
    if let Some(e) = log
        .entries
        .iter()
        .rev()
        .find(|e| e.id >= oldest_reverted && e.before.kind == Kind::Rebuild && changed(e))
    {
        let from = e
            .after
            .as_ref()
            .and_then(|a| a.rebuild.as_ref())
            .map_or_else(|| e.before.python.clone(), |r| r.from.clone());
        // `undo --to ID` undoes the entries after ID: a hint only when there are some.
        let newest = log.entries.last().is_some_and(|last| last.id == e.id);
        let hint = if newest {
            "nothing recorded after it can be undone".to_string()
        } else {
            format!("`pyctl undo --to {}` is as far back as it goes", e.id)
        };
        bail!(
            "cannot undo past #{} ({}): it rebuilt the venv on a new Python because Python {from} \
             was gone or replaced, and a venv cannot go back to an interpreter that is gone; undo \
             stops at the rebuild ({hint})",
            e.id,
            e.before.command,
        );
    }
    Ok(())
}

/// The lines `pyctl history` shows under a rebuild entry.
pub fn history_lines(entry: &Entry) -> Vec<String> {
    let Some(r) = entry.after.as_ref().and_then(|a| a.rebuild.as_ref()) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if r.from != r.to {
        lines.push(format!("Python {} -> {}", r.from, r.to));
    }
    for (what, list) in [
        ("from the store", &r.store),
        ("reinstalled by pip", &r.pip),
        ("not rebuilt (tried again at the next use)", &r.missing),
        ("replaced by the new Python's own", &r.replaced),
    ] {
        if !list.is_empty() {
            lines.push(format!("{what}: {}", list.join(", ")));
        }
    }
    lines
}

/// For `status` and `doctor`: the caller's version tiers (`py3X/`) whose Python is gone, each
/// with how to move its packages.
pub fn stranded_version_tiers(ctx: &Context) -> Vec<(Tier, String)> {
    let Ok(tiers) = tier::all_tiers(ctx) else {
        return Vec::new();
    };
    tiers
        .into_iter()
        .filter_map(|t| {
            let minor = t.version_dir_minor()?;
            if !t.venv_exists() || !matches!(detect(&t), Some(Change::Gone { .. })) {
                return None;
            }
            let advice = move_advice(ctx, &minor);
            Some((t, advice))
        })
        .collect()
}

fn move_advice(ctx: &Context, minor: &str) -> String {
    let sudo = if ctx.is_root() { "sudo " } else { "" };
    format!(
        "Python {minor} is gone; to move its packages to the Python there now: `{sudo}pyctl \
         --python {minor} export --requested -o /tmp/py{minor}.txt`, then `{sudo}pip install -r \
         /tmp/py{minor}.txt` (or `pip3.Y` for another version), then remove the folder"
    )
}

/// Problems for `status` and `doctor`: the selected tier's interpreter changed (version tiers
/// are not rebuilt), what a rebuild could not put back yet, and stranded version tiers.
pub fn problems(ctx: &Context, tier: &Tier) -> Vec<String> {
    let mut out = Vec::new();
    if tier.version_dir_minor().is_none() {
        if let Some(change) = tier.venv_exists().then(|| detect(tier)).flatten() {
            out.push(format!(
                "{}: {}; the owner's next pip or pyctl command rebuilds it",
                tier.venv().display(),
                change.describe(tier)
            ));
        }
    }
    if let Ok(text) = crate::sys::fsutil::read_regular_to_string(&tier.root.join(PENDING)) {
        let lines: Vec<String> = freeze_map(&text).into_values().collect();
        if !lines.is_empty() {
            out.push(format!(
                "not rebuilt on this Python yet (no wheel for it was reachable): {}; tried again \
                 at the next use once a wheel folder changes, or within the hour",
                lines.join(", ")
            ));
        }
    }
    for (t, advice) in stranded_version_tiers(ctx) {
        out.push(format!("{}: {advice}", t.root.display()));
    }
    out
}
