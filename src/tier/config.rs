//! Configuration: `/etc/pyctl/config.toml` gives defaults, a tier's `config.toml` overrides them.
//! Unknown keys and wrong types are errors naming the file and the line. `KEYS` is what
//! `pyctl config` lists and sets; `set_in_file` edits a file with `toml_edit`, so that its
//! comments and order survive.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// The system-wide defaults file.
pub const SYSTEM_CONFIG: &str = "/etc/pyctl/config.toml";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub history: HistoryConfig,
    pub snapshots: SnapshotsConfig,
    pub ui: UiConfig,
    pub venv: VenvConfig,
    pub store: StoreConfig,
    pub hooks: HooksConfig,
    pub search: SearchConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// How long `pyctl search` uses its cached project list before asking the index again.
    pub cache_hours: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig { cache_hours: 24 }
    }
}

/// What the package-manager hooks do on a conflict with a pyctl tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Say so in the package manager's output and syslog, and let it go on.
    #[default]
    Warn,
    /// Refuse the transaction (where the hook runs before it: apt).
    Block,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    pub on_conflict: OnConflict,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// How undo, redo, restore and clean put files back: `hardlink` (copy across
    /// filesystems) or `copy`.
    pub link_mode: crate::tier::store::LinkMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    pub max_entries: usize,
    pub auto_snapshot: bool,
    pub show_diff_after_install: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotsConfig {
    pub auto_baseline: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    pub color: bool,
    pub verbose: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VenvConfig {
    pub inherit_system_packages: bool,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            auto_baseline: true,
        }
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            max_entries: 100,
            auto_snapshot: true,
            show_diff_after_install: true,
        }
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            color: true,
            verbose: false,
        }
    }
}

impl Config {
    /// The effective configuration for a tier: defaults, then the system file, then the tier's.
    pub fn load(tier_config: Option<&Path>) -> Result<Config> {
        Config::load_from(Path::new(SYSTEM_CONFIG), tier_config)
    }

    /// As `load`, with the system file at `system`.
    pub fn load_from(system: &Path, tier_config: Option<&Path>) -> Result<Config> {
        let mut merged = toml::Table::new();
        for path in [Some(system), tier_config].into_iter().flatten() {
            if let Some(table) = read_table(path)? {
                merge(&mut merged, table);
            }
        }
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(config)
    }
}

/// The values a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Bool,
    /// A whole number, 0 or more.
    Count,
    /// One of these words.
    Choice(&'static [&'static str]),
}

impl KeyType {
    /// What is allowed, for error messages and listings.
    pub fn allowed(self) -> String {
        match self {
            KeyType::Bool => "true or false".to_string(),
            KeyType::Count => "a whole number, 0 or more".to_string(),
            KeyType::Choice(words) => words.join(" or "),
        }
    }
}

/// One configuration key, as `pyctl config` knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// `section.name`, as in the file.
    pub name: &'static str,
    pub kind: KeyType,
    pub help: &'static str,
}

impl Key {
    fn section(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(s, _)| s)
    }

    fn leaf(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(_, l)| l)
    }

    /// Checks `text` against the key's type and turns it into the TOML value to write.
    pub fn parse_value(&self, text: &str) -> Result<toml_edit::Value, ConfigError> {
        let bad = || ConfigError::BadValue {
            key: self.name,
            value: text.to_string(),
            allowed: self.kind.allowed(),
        };
        match self.kind {
            KeyType::Bool => match text {
                "true" => Ok(true.into()),
                "false" => Ok(false.into()),
                _ => Err(bad()),
            },
            KeyType::Count => text
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Into::into)
                .ok_or_else(bad),
            KeyType::Choice(words) => words
                .iter()
                .find(|w| **w == text)
                .map(|w| (*w).into())
                .ok_or_else(bad),
        }
    }
}

/// Every key, in the order `pyctl config` lists them.
pub const KEYS: &[Key] = &[
    Key {
        name: "history.max_entries",
        kind: KeyType::Count,
        help: "operations kept per tier, the oldest pruned first (0 keeps all)",
    },
    Key {
        name: "history.auto_snapshot",
        kind: KeyType::Bool,
        help: "keep each operation's files in the store, so undo is exact and offline (false: \
               undo reinstalls what the store lacks with pip)",
    },
    Key {
        name: "history.show_diff_after_install",
        kind: KeyType::Bool,
        help: "print what changed after each recorded pip command",
    },
    Key {
        name: "snapshots.auto_baseline",
        kind: KeyType::Bool,
        help: "record a new venv as the `baseline` snapshot",
    },
    Key {
        name: "ui.color",
        kind: KeyType::Bool,
        help: "colour on a terminal when --color is auto",
    },
    Key {
        name: "ui.verbose",
        kind: KeyType::Bool,
        help: "diagnostics on stderr as with -v",
    },
    Key {
        name: "venv.inherit_system_packages",
        kind: KeyType::Bool,
        help: "new venvs see the distro's packages (--system-site-packages)",
    },
    Key {
        name: "store.link_mode",
        kind: KeyType::Choice(&["hardlink", "copy"]),
        help: "how undo, redo and restore put files back",
    },
    Key {
        name: "hooks.on_conflict",
        kind: KeyType::Choice(&["warn", "block"]),
        help: "what the package-manager hooks do on a conflict",
    },
    Key {
        name: "search.cache_hours",
        kind: KeyType::Count,
        help: "hours `pyctl search` uses its cached project list before asking the index again \
               (0: always ask)",
    },
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key {key:?}{hint}; allowed keys: {allowed}")]
    UnknownKey {
        key: String,
        hint: String,
        allowed: String,
    },
    #[error("{key:?} is ambiguous: it could be {candidates}")]
    Ambiguous { key: String, candidates: String },
    #[error("{key} takes {allowed}, not {value:?}")]
    BadValue {
        key: &'static str,
        value: String,
        allowed: String,
    },
}

/// Finds a key by its full name (`history.max_entries`) or, when unique, its bare name
/// (`max_entries`).
pub fn find_key(name: &str) -> Result<&'static Key, ConfigError> {
    if let Some(key) = KEYS.iter().find(|k| k.name == name) {
        return Ok(key);
    }
    let bare: Vec<&'static Key> = KEYS.iter().filter(|k| k.leaf() == name).collect();
    match bare.as_slice() {
        [one] => Ok(one),
        [] => {
            let close: Vec<&str> = KEYS
                .iter()
                .filter(|k| {
                    strsim::levenshtein(k.name, name) <= 2
                        || strsim::levenshtein(k.leaf(), name) <= 2
                })
                .map(|k| k.name)
                .collect();
            Err(ConfigError::UnknownKey {
                key: name.to_string(),
                hint: if close.is_empty() {
                    String::new()
                } else {
                    format!(" (did you mean {}?)", close.join(" or "))
                },
                allowed: KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
            })
        }
        many => Err(ConfigError::Ambiguous {
            key: name.to_string(),
            candidates: many.iter().map(|k| k.name).collect::<Vec<_>>().join(" or "),
        }),
    }
}

/// Where an effective value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The system-wide file.
    System(PathBuf),
    /// The tier's own file.
    Tier(PathBuf),
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::System(_) => "system",
            Source::Tier(_) => "tier",
        }
    }

    pub fn file(&self) -> Option<&Path> {
        match self {
            Source::Default => None,
            Source::System(p) | Source::Tier(p) => Some(p),
        }
    }
}

/// A key's effective value and where it comes from.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: &'static Key,
    pub value: toml::Value,
    pub source: Source,
}

/// Every key's effective value for a tier whose file is `tier`, with `system` as the system
/// file.
pub fn effective(system: &Path, tier: &Path) -> Result<Vec<Setting>> {
    let system_table = read_table(system)?;
    let tier_table = read_table(tier)?;
    let config = Config::load_from(system, Some(tier))?;
    let values = toml::Value::try_from(&config).context("cannot render the configuration")?;
    let has = |table: &Option<toml::Table>, key: &Key| {
        table
            .as_ref()
            .and_then(|t| t.get(key.section()))
            .and_then(toml::Value::as_table)
            .is_some_and(|s| s.contains_key(key.leaf()))
    };
    Ok(KEYS
        .iter()
        .map(|key| {
            let source = if has(&tier_table, key) {
                Source::Tier(tier.to_path_buf())
            } else if has(&system_table, key) {
                Source::System(system.to_path_buf())
            } else {
                Source::Default
            };
            let value = values
                .get(key.section())
                .and_then(|s| s.get(key.leaf()))
                .cloned()
                .unwrap_or(toml::Value::String(String::new()));
            Setting { key, value, source }
        })
        .collect())
}

/// Sets `key` to `value` in the file at `path` (created when missing), keeping its comments,
/// order and formatting, and checks that the result is a valid configuration before writing it
/// atomically. The caller holds the tier lock when the tier has one.
pub fn set_in_file(path: &Path, key: &Key, value: toml_edit::Value) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{}: malformed TOML", path.display()))?;
    let section = doc
        .as_table_mut()
        .entry(key.section())
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .with_context(|| {
            format!(
                "{}: `{}` is not a table; fix the file by hand",
                path.display(),
                key.section()
            )
        })?;
    match section
        .get_mut(key.leaf())
        .and_then(toml_edit::Item::as_value_mut)
    {
        Some(old) => {
            // Keep a trailing comment and the spacing around the value.
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        None => {
            section.insert(key.leaf(), toml_edit::Item::Value(value));
        }
    }
    let new_text = doc.to_string();
    toml::from_str::<Config>(&new_text)
        .with_context(|| format!("{}: invalid configuration", path.display()))?;
    crate::sys::fsutil::write_atomic(path, new_text.as_bytes())
}

fn read_table(path: &Path) -> Result<Option<toml::Table>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: malformed TOML", path.display()))?;
    // Validate this file on its own, from its text, so that the error names the file at fault
    // and the line.
    toml::from_str::<Config>(&text)
        .with_context(|| format!("{}: invalid configuration", path.display()))?;
    Ok(Some(table))
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "[history]\nmax_entries = 7\n").unwrap();
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.history.max_entries, 7);
        assert!(c.history.show_diff_after_install);
    }

    #[test]
    fn unknown_key_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "[history]\nmax_entriez = 7\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&p)).unwrap_err());
        assert!(err.contains("config.toml"), "{err}");
        assert!(err.contains("max_entries"), "{err}");
    }

    #[test]
    fn keys_are_exactly_the_fields_of_config() {
        let values = toml::Value::try_from(Config::default()).unwrap();
        let mut fields = Vec::new();
        for (section, table) in values.as_table().unwrap() {
            for leaf in table.as_table().unwrap().keys() {
                fields.push(format!("{section}.{leaf}"));
            }
        }
        fields.sort();
        let mut keys: Vec<String> = KEYS.iter().map(|k| k.name.to_string()).collect();
        keys.sort();
        assert_eq!(fields, keys);
    }

    #[test]
    fn every_key_accepts_its_default_and_rejects_nonsense() {
        let values = toml::Value::try_from(Config::default()).unwrap();
        for key in KEYS {
            let default = &values[key.section()][key.leaf()];
            let text = match default {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            key.parse_value(&text).unwrap();
            let err = key.parse_value("nonsense").unwrap_err().to_string();
            assert!(
                err.contains(key.name) && err.contains("\"nonsense\""),
                "{err}"
            );
        }
    }

    #[test]
    fn bare_names_resolve_when_unique() {
        assert_eq!(find_key("max_entries").unwrap().name, "history.max_entries");
        assert_eq!(find_key("ui.color").unwrap().name, "ui.color");
        let err = find_key("colour").unwrap_err().to_string();
        assert!(
            err.contains("ui.color") && err.contains("allowed keys"),
            "{err}"
        );
    }

    #[test]
    fn set_keeps_comments_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        let before =
            "# mine\n[ui]\ncolor = true # trailing\n\n[history]\n# keep\nmax_entries = 7\n";
        std::fs::write(&p, before).unwrap();
        let key = find_key("max_entries").unwrap();
        set_in_file(&p, key, key.parse_value("50").unwrap()).unwrap();
        let key = find_key("color").unwrap();
        set_in_file(&p, key, key.parse_value("false").unwrap()).unwrap();
        let key = find_key("link_mode").unwrap();
        set_in_file(&p, key, key.parse_value("copy").unwrap()).unwrap();
        let after = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            after,
            "# mine\n[ui]\ncolor = false # trailing\n\n[history]\n# keep\nmax_entries = 50\n\n\
             [store]\nlink_mode = \"copy\"\n"
        );
        let c = Config::load_from(&dir.path().join("none"), Some(&p)).unwrap();
        assert_eq!(c.history.max_entries, 50);
        assert!(!c.ui.color);
    }

    #[test]
    fn sources_are_default_system_or_tier() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        let tier = dir.path().join("tier.toml");
        std::fs::write(&system, "[ui]\ncolor = false\nverbose = true\n").unwrap();
        std::fs::write(&tier, "[ui]\nverbose = false\n").unwrap();
        let all = effective(&system, &tier).unwrap();
        let get = |name: &str| all.iter().find(|s| s.key.name == name).unwrap();
        assert_eq!(get("ui.color").source, Source::System(system.clone()));
        assert_eq!(get("ui.color").value, toml::Value::Boolean(false));
        assert_eq!(get("ui.verbose").source, Source::Tier(tier.clone()));
        assert_eq!(get("ui.verbose").value, toml::Value::Boolean(false));
        assert_eq!(get("history.max_entries").source, Source::Default);
        assert_eq!(get("history.max_entries").value, toml::Value::Integer(100));
    }

    #[test]
    fn malformed_and_wrong_type_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "[ui]\ncolor = true\n[store]\nlink_mode = \"symlink\"\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&p)).unwrap_err());
        assert!(
            err.contains("config.toml") && err.contains("line 4"),
            "{err}"
        );
        assert!(err.contains("hardlink") && err.contains("copy"), "{err}");
        std::fs::write(&p, "[ui\ncolor = true\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&p)).unwrap_err());
        assert!(
            err.contains("config.toml") && err.contains("line 1"),
            "{err}"
        );
    }
}
