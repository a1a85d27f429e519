//! What an operation changed: the difference between two package sets (added, removed,
//! modified lines), its summary, and the coloured lines listings print.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::python::inventory::requirement_key;
use crate::ui::{Style, Ui};

/// One modified distribution: the requirement line before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modified {
    pub name: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<Modified>,
}

impl Changes {
    /// The difference between two requirement maps (canonical name → requirement line). Lines
    /// that differ only in how the project name is spelled are the same distribution.
    pub fn between(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Self {
        let mut changes = Changes::default();
        for (name, line) in after {
            match before.get(name) {
                None => changes.added.push(line.clone()),
                Some(old) if requirement_key(old) != requirement_key(line) => {
                    changes.modified.push(Modified {
                        name: name.clone(),
                        from: old.clone(),
                        to: line.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        for (name, line) in before {
            if !after.contains_key(name) {
                changes.removed.push(line.clone());
            }
        }
        changes
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }

    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("{} added", self.added.len()));
        }
        if !self.removed.is_empty() {
            parts.push(format!("{} removed", self.removed.len()));
        }
        if !self.modified.is_empty() {
            parts.push(format!("{} changed", self.modified.len()));
        }
        if parts.is_empty() {
            "no changes".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// The lines of a change list, one distribution each, coloured by kind of change.
pub fn change_lines(ui: &Ui, changes: &Changes, for_stderr: bool) -> Vec<String> {
    let paint = |style, text: &str| {
        if for_stderr {
            ui.err(style, text)
        } else {
            ui.out(style, text)
        }
    };
    let mut lines = Vec::new();
    for line in &changes.added {
        lines.push(format!("  {} {line}", paint(Style::Added, "added     ")));
    }
    for m in &changes.modified {
        let (style, word, text) = describe_modified(m);
        lines.push(format!("  {} {text}", paint(style, word)));
    }
    for line in &changes.removed {
        lines.push(format!("  {} {line}", paint(Style::Removed, "removed   ")));
    }
    lines
}

/// Upgrade, downgrade or other change, with a short `name old -> new` text.
fn describe_modified(m: &Modified) -> (Style, &'static str, String) {
    let version = |line: &str| {
        line.split_once("==")
            .map(|(_, v)| v.trim_start_matches('=').to_string())
    };
    match (version(&m.from), version(&m.to)) {
        (Some(a), Some(b)) => {
            let name = m.to.split("==").next().unwrap_or(&m.name).to_string();
            let order = match (
                a.parse::<pep440_rs::Version>(),
                b.parse::<pep440_rs::Version>(),
            ) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => a.cmp(&b),
            };
            let (style, word) = if order.is_lt() {
                (Style::Upgraded, "upgraded  ")
            } else if order.is_gt() {
                (Style::Downgraded, "downgraded")
            } else {
                (Style::Changed, "changed   ")
            };
            (style, word, format!("{name} {a} -> {b}"))
        }
        _ => (
            Style::Changed,
            "changed   ",
            format!("{} -> {}", m.from, m.to),
        ),
    }
}
