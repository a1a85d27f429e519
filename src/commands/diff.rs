//! `pyctl diff [ID]`: what one recorded operation changed.

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::commands::shared::{print_json, print_listing};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::python::inventory::PackageSet;
use crate::sys::fsutil::TierLock;
use crate::tier;
use crate::tier::history::EntryState;
use crate::tier::history::{self, Changes};
use crate::ui::local_time;
use crate::ui::{Style, Ui};

#[derive(Serialize)]
struct DiffJson<'a> {
    id: u64,
    kind: &'a str,
    command: &'a str,
    timestamp: &'a str,
    state: EntryState,
    exit_code: Option<i32>,
    changes: Changes,
}

pub fn run(ctx: &Context, ui: &Ui, id: Option<u64>, json: bool) -> Result<ExitCode> {
    let tier = tier::current(ctx)?;
    let log = history::read_log(&tier.history_dir())?;
    for problem in &log.problems {
        ui.warn(&format!("skipping {problem}"));
    }
    let entry = match id {
        Some(id) => log
            .get(id)
            .with_context(|| match (log.entries.first(), log.last()) {
                (Some(first), Some(last)) => {
                    format!(
                        "no entry #{id} in {} (entries go from #{} to #{})",
                        tier.history_dir().display(),
                        first.id,
                        last.id
                    )
                }
                _ => format!(
                    "no entry #{id}: nothing is recorded yet in {}",
                    tier.history_dir().display()
                ),
            })?,
        None => log.last().with_context(|| {
            format!(
                "nothing is recorded yet in {}",
                tier.history_dir().display()
            )
        })?,
    };
    let lock_held = TierLock::is_held(&tier.lock_path());
    let changes = match entry.changes() {
        Some(c) => c.clone(),
        None => {
            // Unfinished: compare its before with the venv as it is now.
            let now = PackageSet::scan(&tier.venv())
                .map(|s| s.requirement_map())
                .unwrap_or_default();
            Changes::between(
                &crate::python::freeze::freeze_map(&entry.before.freeze),
                &now,
            )
        }
    };
    let state = entry.state(lock_held);
    if json {
        let out = DiffJson {
            id: entry.id,
            kind: entry.before.kind.as_str(),
            command: &entry.before.command,
            timestamp: &entry.before.timestamp,
            state,
            exit_code: entry.after.as_ref().and_then(|a| a.exit_code),
            changes,
        };
        return print_json(ui, &out);
    }
    let mut lines = vec![format!(
        "{}  {}  {}  ({}{})",
        ui.out(Style::Bold, &format!("#{}", entry.id)),
        local_time(&entry.before.timestamp),
        entry.before.command,
        changes.summary(),
        if state == EntryState::Ok {
            String::new()
        } else {
            format!("; {state}")
        }
    )];
    lines.extend(crate::tier::history::change_lines(ui, &changes, false));
    print_listing(ui, &lines)
}
