//! Named snapshots: `snapshots/NAME.txt`, plain requirements usable with `pip install -r`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::python::freeze::freeze_map;
use crate::python::inventory::PackageSet;
use crate::sys::fsutil::write_atomic;
use crate::tier::Tier;
use serde::{Deserialize, Serialize};

/// The snapshot `init` records.
pub const BASELINE: &str = "baseline";

/// Letters, digits, `.`, `_`, `-`; 1 to 64 characters; no leading dot.
pub fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 64 || name.starts_with('.') || !ok_chars {
        bail!(
            "invalid snapshot name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-', not \
             starting with '.'"
        );
    }
    Ok(())
}

pub fn snapshot_path(tier: &Tier, name: &str) -> Result<PathBuf> {
    validate_name(name)?;
    Ok(tier.snapshots_dir().join(format!("{name}.txt")))
}

/// What a snapshot keeps beyond its requirement lines, on a comment line of its own (`pip
/// install -r` reads past it): the stored copy each distribution was, and the venv's empty
/// folders, so that a restore gives back the files, not only the versions (as a history
/// record's `entries` and `folders` do for undo).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ExactState {
    #[serde(default)]
    pub entries: BTreeMap<String, String>,
    #[serde(default)]
    pub folders: Option<Vec<String>>,
}

const EXACT_PREFIX: &str = "# pyctl state: ";

impl ExactState {
    /// A snapshot's text without its state line, and the state it held: none in snapshots
    /// written before it was kept, or when the line cannot be read (`Err`, saying why).
    pub fn split(text: &str) -> (String, Result<Option<ExactState>, String>) {
        let mut rest = String::with_capacity(text.len());
        let mut line = None;
        for l in text.lines() {
            match l.strip_prefix(EXACT_PREFIX) {
                Some(json) => line = Some(json),
                None => {
                    rest.push_str(l);
                    rest.push('\n');
                }
            }
        }
        let state = line
            .map(|json| serde_json::from_str(json).map_err(|e| e.to_string()))
            .transpose();
        (rest, state)
    }
}

/// JSON text with every character beyond ASCII written as `\\uXXXX` (the same JSON): pip reads
/// a requirements file in the locale's encoding, and a folder name is whatever it is.
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Writes the set as a snapshot file, with a comment header saying when and from where (and
/// the `exact` state, when given).
pub fn write_snapshot(
    tier: &Tier,
    name: &str,
    set: &PackageSet,
    timestamp: &str,
    exact: Option<&ExactState>,
) -> Result<PathBuf> {
    let path = snapshot_path(tier, name)?;
    let exact = match exact {
        Some(e) => format!("{EXACT_PREFIX}{}\n", ascii_json(&serde_json::to_string(e)?)),
        None => String::new(),
    };
    let text = format!(
        "# pyctl snapshot {name:?}, {timestamp}, {} packages, python {}\n{exact}{}",
        set.len(),
        tier.python_version().unwrap_or_default(),
        set.freeze()
    );
    write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// A saved snapshot, as `list-snapshots` shows it.
#[derive(Debug, Serialize)]
pub struct SnapshotInfo {
    pub name: String,
    pub path: PathBuf,
    pub modified: String,
    pub packages: usize,
}

/// The tier's snapshots, by name.
pub fn list(tier: &Tier) -> Vec<SnapshotInfo> {
    let Ok(read) = std::fs::read_dir(tier.snapshots_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<SnapshotInfo> = read
        .filter_map(Result::ok)
        .filter_map(|item| {
            let path = item.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".txt")?
                .to_string();
            validate_name(&name).ok()?;
            let text = crate::sys::fsutil::read_regular_to_string(&path).ok()?;
            let modified = item
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            Some(SnapshotInfo {
                name,
                path,
                modified,
                packages: freeze_map(&text).len(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for ok in ["baseline", "ml-stack", "a.b_c", &"x".repeat(64)] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "..",
            "a b",
            "a\0b",
            &"x".repeat(65),
            "é",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_snapshots_state_line_is_taken_out_of_its_requirements() {
        let text = "# pyctl snapshot \"s\", t, 1 packages, python 3.11\n# pyctl state: \
                    {\"entries\":{\"a\":\"a-1.0-x\"},\"folders\":[\"share/a\"]}\na==1.0\n";
        let (rest, state) = ExactState::split(text);
        assert_eq!(
            rest,
            "# pyctl snapshot \"s\", t, 1 packages, python 3.11\na==1.0\n"
        );
        let state = state.unwrap().unwrap();
        assert_eq!(state.entries["a"], "a-1.0-x");
        assert_eq!(state.folders.unwrap(), ["share/a"]);
        let (rest, state) = ExactState::split("a==1.0\n");
        assert_eq!(
            (rest.as_str(), state.unwrap().is_none()),
            ("a==1.0\n", true)
        );
        let odd = ExactState {
            folders: Some(vec!["share/caf\u{e9}/\u{1f40d}".into()]),
            ..Default::default()
        };
        let line = ascii_json(&serde_json::to_string(&odd).unwrap());
        assert!(line.is_ascii(), "{line}");
        let back: ExactState = serde_json::from_str(&line).unwrap();
        assert_eq!(back.folders, odd.folders);
        let (rest, state) = ExactState::split("# pyctl state: {\"folders\": 3}\na==1.0\n");
        assert_eq!(rest, "a==1.0\n");
        assert!(state.is_err());
    }
}
