//! `pyctl config [KEY [VALUE]]`: the effective configuration, one key, or a new value.

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::commands::shared::{print_json, print_listing};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::tier::config;
use crate::tier::{self, TierKind};
use crate::ui::{Style, Ui};

#[derive(Serialize)]
struct SettingJson<'a> {
    key: &'static str,
    value: &'a toml::Value,
    source: &'static str,
    file: Option<&'a std::path::Path>,
    allowed: String,
}

impl<'a> SettingJson<'a> {
    fn new(s: &'a config::Setting) -> Self {
        SettingJson {
            key: s.key.name,
            value: &s.value,
            source: s.source.kind(),
            file: s.source.file(),
            allowed: s.key.kind.allowed(),
        }
    }
}

/// A value as people write it in `pyctl config KEY VALUE`: words unquoted.
fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `pyctl config [KEY [VALUE]]`.
pub fn run(
    ctx: &Context,
    ui: &Ui,
    key: Option<String>,
    value: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    let tier = tier::current(ctx)?;
    let system = std::path::Path::new(config::SYSTEM_CONFIG);
    let key = key.as_deref().map(config::find_key).transpose()?;
    let Some(key) = key else {
        let settings = config::effective(system, &tier.config_path())?;
        if json {
            let rows: Vec<SettingJson> = settings.iter().map(SettingJson::new).collect();
            return print_json(ui, &rows);
        }
        let key_width = settings.iter().map(|s| s.key.name.len()).max().unwrap_or(0);
        let value_width = settings
            .iter()
            .map(|s| value_text(&s.value).len())
            .max()
            .unwrap_or(0);
        let lines: Vec<String> = settings
            .iter()
            .map(|s| {
                let source = match s.source.file() {
                    Some(file) => file.display().to_string(),
                    None => "default".to_string(),
                };
                format!(
                    "{}  {:<value_width$}  {}",
                    ui.out(Style::Bold, &format!("{:<key_width$}", s.key.name)),
                    value_text(&s.value),
                    ui.out(Style::Dim, &format!("({source})"))
                )
            })
            .collect();
        return print_listing(ui, &lines);
    };
    let Some(value) = value else {
        let settings = config::effective(system, &tier.config_path())?;
        let setting = settings
            .iter()
            .find(|s| s.key == key)
            .context("the key is missing from the effective configuration")?;
        if json {
            return print_json(ui, &SettingJson::new(setting));
        }
        return print_listing(ui, &[value_text(&setting.value)]);
    };
    let new_value = key.parse_value(&value)?;
    if tier.kind == TierKind::System && !tier.is_provisioned() {
        bail!(
            "the system tier {} is not set up yet; `sudo pyctl system init` sets it up (with its \
             owner and modes) before its configuration can be changed",
            tier.root.display()
        );
    }
    tier.check_owner(ctx)?;
    std::fs::create_dir_all(&tier.root)
        .with_context(|| format!("{}: cannot create folder", tier.root.display()))?;
    // A tier not set up yet has no lock to take, and taking one would mark it as set up.
    let _lock = if tier.is_provisioned() {
        Some(tier.lock_waiting(ctx, ui)?)
    } else {
        None
    };
    config::set_in_file(&tier.config_path(), key, new_value)?;
    ui.info(&format!(
        "{} = {value} in {}",
        key.name,
        tier.config_path().display()
    ));
    Ok(ExitCode::Success)
}
