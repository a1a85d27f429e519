//! Configuration: `/etc/pyctl/config.toml` gives defaults, a tier's `config.toml` overrides them.
//! Unknown keys and wrong types are errors naming the file.

use std::path::Path;

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
    pub link_mode: crate::store::LinkMode,
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
        let mut merged = toml::Table::new();
        for path in [Some(Path::new(SYSTEM_CONFIG)), tier_config]
            .into_iter()
            .flatten()
        {
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

fn read_table(path: &Path) -> Result<Option<toml::Table>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: malformed TOML", path.display()))?;
    // Validate this file on its own, so the error names the file at fault.
    toml::Value::Table(table.clone())
        .try_into::<Config>()
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
}
