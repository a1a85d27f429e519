//! `pyctl history`: the recorded operations, newest first.

use anyhow::Result;
use serde::Serialize;

use crate::commands::shared::{print_json, print_listing};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::undo;
use crate::sys::fsutil::TierLock;
use crate::tier;
use crate::tier::history::{self, Changes, Entry, EntryState};
use crate::ui::local_time;
use crate::ui::{Style, Ui};

#[derive(Serialize)]
struct HistoryRow<'a> {
    id: u64,
    kind: &'a str,
    timestamp: &'a str,
    user: &'a str,
    command: &'a str,
    state: EntryState,
    undone: bool,
    exit_code: Option<i32>,
    changes: Option<&'a Changes>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reverts: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reapplies: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rebuild: Option<&'a history::Rebuilt>,
}

pub fn run(ctx: &Context, ui: &Ui, limit: Option<usize>, json: bool) -> Result<ExitCode> {
    let tier = tier::current(ctx)?;
    let log = history::read_log(&tier.history_dir())?;
    for problem in &log.problems {
        ui.warn(&format!("skipping {problem}"));
    }
    let lock_held = TierLock::is_held(&tier.lock_path());
    let undone = undo::undo_state(&log).undone;
    let entries: Vec<&Entry> = log
        .entries
        .iter()
        .rev()
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    if json {
        let rows: Vec<HistoryRow> = entries
            .iter()
            .map(|e| HistoryRow {
                id: e.id,
                kind: e.before.kind.as_str(),
                timestamp: &e.before.timestamp,
                user: &e.before.user,
                command: &e.before.command,
                state: e.state(lock_held),
                undone: undone.contains(&e.id),
                exit_code: e.after.as_ref().and_then(|a| a.exit_code),
                changes: e.changes(),
                reverts: e.before.reverts.clone(),
                reapplies: e.before.reapplies.clone(),
                rebuild: e.after.as_ref().and_then(|a| a.rebuild.as_ref()),
            })
            .collect();
        return print_json(ui, &rows);
    }
    if entries.is_empty() {
        ui.info(&format!(
            "no operations recorded yet in {}",
            tier.history_dir().display()
        ));
        return Ok(ExitCode::Success);
    }
    let id_width = entries
        .iter()
        .map(|e| e.id.to_string().len() + 1)
        .max()
        .unwrap_or(2);
    let mut lines = Vec::new();
    for e in entries {
        let id = format!("#{}", e.id);
        let state = e.state(lock_held);
        let mut tail = e.changes().map(|c| c.summary()).unwrap_or_default();
        match state {
            EntryState::Ok => {}
            EntryState::Failed => {
                let code = e.after.as_ref().and_then(|a| a.exit_code).unwrap_or(1);
                tail = format!(
                    "{tail}; {}",
                    ui.out(Style::Removed, &format!("failed (exit {code})"))
                );
            }
            other => tail = format!("{tail}; {}", ui.out(Style::Warn, other.as_str())),
        }
        if undone.contains(&e.id) {
            tail = format!("{tail}; {}", ui.out(Style::Dim, "undone"));
        }
        if !e.before.reverts.is_empty() {
            let ids: Vec<String> = e.before.reverts.iter().map(|i| format!("#{i}")).collect();
            tail = format!("{tail}; reverts {}", ids.join(" "));
        }
        if !e.before.reapplies.is_empty() {
            let ids: Vec<String> = e.before.reapplies.iter().map(|i| format!("#{i}")).collect();
            tail = format!("{tail}; brings back {}", ids.join(" "));
        }
        let tail = tail.trim_start_matches("; ").to_string();
        lines.push(format!(
            "{}  {}  {}  {}",
            ui.out(Style::Bold, &format!("{id:<id_width$}")),
            local_time(&e.before.timestamp),
            e.before.command,
            ui.out(Style::Dim, &format!("({tail})"))
        ));
        let indent = " ".repeat(id_width + 2);
        lines.extend(
            crate::ops::rebuild::history_lines(e)
                .into_iter()
                .map(|l| format!("{indent}{l}")),
        );
    }
    print_listing(ui, &lines)
}
