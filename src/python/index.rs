//! The package index, read through its JSON simple API (PEP 691, "JSON-based Simple API for
//! Python Package Indexes"; the `versions` key is PEP 700's): the latest version of a project,
//! and the index's list of projects. The index URL follows pip's own configuration
//! (`PIP_INDEX_URL`, then `index-url` in pip.conf); requests have a short connect timeout so that
//! a machine without network answers at once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::context::Context;
use crate::python::filename::{sdist_name_version, WheelName};

pub const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple";
/// PEP 691's content type, version 1.
const JSON_CONTENT_TYPE: &str = "application/vnd.pypi.simple.v1+json";
/// A project page larger than this is not read.
const MAX_REPLY_BYTES: u64 = 32 * 1024 * 1024;

/// The index root (project list) may be large: PyPI's is tens of megabytes.
const MAX_ROOT_BYTES: u64 = 512 * 1024 * 1024;

/// The index URL pip would use: `PIP_INDEX_URL`, else the last `index-url` of the `[global]`
/// sections of pip's configuration files, else PyPI. `venv` is the venv whose pip would run (its
/// own `pip.conf` is pip's "site" file).
pub fn index_url(ctx: &Context, venv: Option<&Path>) -> String {
    // Root's pip takes no index from the environment (see `pip::root_env`); neither does this.
    if let Some(url) = ctx.var_str("PIP_INDEX_URL").filter(|_| !ctx.is_root()) {
        return url;
    }
    // The last file that sets it wins, so look from the end.
    pip_config_files(ctx, venv)
        .iter()
        .rev()
        .find_map(|file| {
            let url = global_index_url(&std::fs::read_to_string(file).ok()?)?;
            log::debug!(
                "index-url {} from {}",
                crate::sys::redact::redact(&url),
                file.display()
            );
            Some(url)
        })
        .unwrap_or_else(|| DEFAULT_INDEX_URL.to_string())
}

/// pip's configuration files in the order pip loads them (later ones win): global
/// (`/etc/xdg/pip/pip.conf`, `/etc/pip.conf`), user (`~/.pip/pip.conf`, then
/// `$XDG_CONFIG_HOME/pip/pip.conf`), site (`<venv>/pip.conf`), then `PIP_CONFIG_FILE`. As in pip,
/// `PIP_CONFIG_FILE=/dev/null` (`os.devnull`) turns every file off.
fn pip_config_files(ctx: &Context, venv: Option<&Path>) -> Vec<PathBuf> {
    let env_file = ctx.var_path("PIP_CONFIG_FILE").filter(|_| !ctx.is_root());
    if env_file.as_deref() == Some(Path::new("/dev/null")) {
        return Vec::new();
    }
    let mut files = vec![
        PathBuf::from("/etc/xdg/pip/pip.conf"),
        PathBuf::from("/etc/pip.conf"),
    ];
    if let Some(home) = &ctx.home {
        files.push(home.join(".pip/pip.conf"));
        let config_home = ctx
            .var_path("XDG_CONFIG_HOME")
            .filter(|p| p.is_absolute() && !ctx.is_root())
            .unwrap_or_else(|| home.join(".config"));
        files.push(config_home.join("pip/pip.conf"));
    }
    if let Some(venv) = venv {
        files.push(venv.join("pip.conf"));
    }
    files.extend(env_file);
    files
}

/// Whether pip's configuration files (as `pip_config_files` finds them) set `user` to true in
/// `[global]` or `[install]`: pip would then install with `--user`.
pub fn config_sets_user(ctx: &Context, venv: Option<&Path>) -> Option<PathBuf> {
    pip_config_files(ctx, venv).into_iter().rev().find(|file| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            section_value(&text, &["global", "install"], &["user"]).is_some_and(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
            })
        })
    })
}

/// The last value of one of `keys` in one of `sections` of a pip.conf (an INI file as Python's
/// configparser reads it: `key = value` or `key: value`, `#` and `;` comment lines).
fn section_value(text: &str, sections: &[&str], keys: &[&str]) -> Option<String> {
    let mut inside = false;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = sections.contains(&section.trim());
            continue;
        }
        if !inside {
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            continue;
        };
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        if keys.contains(&key) && !value.is_empty() {
            found = Some(value.to_string());
        }
    }
    found
}

/// `index-url` (or `index_url`) in the `[global]` section of a pip.conf.
fn global_index_url(text: &str) -> Option<String> {
    section_value(text, &["global"], &["index-url", "index_url"])
}

/// Why the project list could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The index could not be reached (no network, refused, timed out).
    #[error("{0}")]
    Offline(String),
    /// The index answered, but not with a PEP 691 project list.
    #[error("{0}")]
    BadReply(String),
}

/// PEP 691 index root: `{"meta": {...}, "projects": [{"name": "..."}]}`.
#[derive(Debug, Deserialize)]
struct RootPage {
    projects: Vec<RootProject>,
}

#[derive(Debug, Deserialize)]
struct RootProject {
    name: String,
}

/// The names of every project on the index at `index` (PEP 691's root page). `connect` bounds
/// reaching the index; reading the (large) reply may take longer but each read is bounded too.
pub fn project_list(index: &str, connect: Duration) -> Result<Vec<String>, ListError> {
    let url = format!("{}/", index.trim_end_matches('/'));
    let shown = crate::sys::redact::redact(&url).into_owned();
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(connect)
        .timeout_read(Duration::from_secs(30))
        .try_proxy_from_env(true)
        .build();
    let reply = match agent.get(&url).set("Accept", JSON_CONTENT_TYPE).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => {
            return Err(ListError::BadReply(format!("{shown} answered HTTP {code}")))
        }
        Err(ureq::Error::Transport(t)) => return Err(ListError::Offline(t.to_string())),
    };
    let content_type = reply.content_type().to_string();
    if content_type != JSON_CONTENT_TYPE && content_type != "application/json" {
        return Err(ListError::BadReply(format!(
            "{shown} answered {content_type}, not the JSON simple API (PEP 691)"
        )));
    }
    let mut body = Vec::new();
    reply
        .into_reader()
        .take(MAX_ROOT_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| ListError::Offline(format!("{shown}: {e}")))?;
    let page: RootPage = serde_json::from_slice(&body)
        .map_err(|e| ListError::BadReply(format!("{shown}: malformed reply: {e}")))?;
    Ok(page.projects.into_iter().map(|p| p.name).collect())
}

/// What the index says about a project's latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Latest {
    Version(String),
    /// The index answered 404 for the project.
    NotOnIndex,
    /// The index could not be reached (no network, refused, timed out).
    Offline(String),
    /// The index answered, but not in a way that gives a version.
    Unknown(String),
}

/// PEP 691 project page: only what is read here.
#[derive(Debug, Deserialize)]
struct ProjectPage {
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    files: Vec<ProjectFile>,
}

#[derive(Debug, Deserialize)]
struct ProjectFile {
    filename: String,
    /// `false`, `true`, or a string giving the reason (PEP 592 as carried by PEP 691).
    #[serde(default)]
    yanked: serde_json::Value,
}

impl ProjectFile {
    fn is_yanked(&self) -> bool {
        !matches!(
            self.yanked,
            serde_json::Value::Null | serde_json::Value::Bool(false)
        )
    }

    /// The version in a wheel (`name-version-...whl`) or sdist (`name-version.tar.gz`) name.
    fn version(&self) -> Option<&str> {
        let name = &self.filename;
        if name.ends_with(".whl") {
            return WheelName::parse(name).ok().map(|w| w.version);
        }
        sdist_name_version(name).map(|(_, v)| v)
    }
}

/// The latest version of `canonical` on the index at `index`, within `timeout`.
pub fn latest_version(index: &str, canonical: &str, timeout: Duration) -> Latest {
    let url = format!("{}/{canonical}/", index.trim_end_matches('/'));
    let shown = crate::sys::redact::redact(&url).into_owned();
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .try_proxy_from_env(true)
        .build();
    let reply = match agent.get(&url).set("Accept", JSON_CONTENT_TYPE).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(404, _)) => return Latest::NotOnIndex,
        Err(ureq::Error::Status(code, _)) => {
            return Latest::Unknown(format!("{shown} answered HTTP {code}"))
        }
        // The transport error names the URL.
        Err(ureq::Error::Transport(t)) => return Latest::Offline(t.to_string()),
    };
    let content_type = reply.content_type().to_string();
    if content_type != JSON_CONTENT_TYPE && content_type != "application/json" {
        return Latest::Unknown(format!(
            "{shown} answered {content_type}, not the JSON simple API (PEP 691)"
        ));
    }
    let mut body = Vec::new();
    if let Err(e) = reply
        .into_reader()
        .take(MAX_REPLY_BYTES)
        .read_to_end(&mut body)
    {
        return Latest::Offline(format!("{shown}: {e}"));
    }
    match serde_json::from_slice::<ProjectPage>(&body) {
        Ok(page) => match newest(&page) {
            Some(v) => Latest::Version(v),
            None => Latest::Unknown(format!("{shown} lists no installable version")),
        },
        Err(e) => Latest::Unknown(format!("{shown}: malformed reply: {e}")),
    }
}

/// The highest final release among files not yanked (a pre-release only when there is nothing
/// else), or from `versions` when no file names one.
fn newest(page: &ProjectPage) -> Option<String> {
    let mut versions: Vec<&str> = page
        .files
        .iter()
        .filter(|f| !f.is_yanked())
        .filter_map(ProjectFile::version)
        .collect();
    if versions.is_empty() {
        versions = page.versions.iter().map(String::as_str).collect();
    }
    let parsed: Vec<pep440_rs::Version> = versions
        .iter()
        .filter_map(|v| v.parse::<pep440_rs::Version>().ok())
        .collect();
    let finals = parsed.iter().filter(|v| !v.any_prerelease()).max();
    finals
        .or_else(|| parsed.iter().max())
        .map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_skips_yanked_files_and_prereleases() {
        let page: ProjectPage = serde_json::from_str(
            r#"{"meta": {"api-version": "1.1"}, "name": "alpha",
                "files": [
                  {"filename": "alpha-1.0-py3-none-any.whl", "url": "x", "hashes": {}},
                  {"filename": "alpha-2.1.tar.gz", "url": "x", "hashes": {}, "yanked": false},
                  {"filename": "alpha-3.0-py3-none-any.whl", "url": "x", "hashes": {},
                   "yanked": "broken"},
                  {"filename": "alpha-4.0rc1-py3-none-any.whl", "url": "x", "hashes": {}}
                ],
                "versions": ["1.0", "2.1", "3.0", "4.0rc1"]}"#,
        )
        .unwrap();
        assert_eq!(newest(&page).as_deref(), Some("2.1"));
    }

    #[test]
    fn pip_conf_index_url_comes_from_the_global_section_only() {
        let text = "# comment\n[install]\nindex-url = http://install/\n[global]\n\
                    cert = /x\nindex_url: http://a/simple\n; index-url = http://no/\n\
                    index-url = http://b/simple\n[freeze]\nindex-url = http://c/\n";
        assert_eq!(global_index_url(text).as_deref(), Some("http://b/simple"));
        assert_eq!(global_index_url("[global]\ncert = /x\n"), None);
        assert_eq!(global_index_url("index-url = http://nosection/\n"), None);
    }

    #[test]
    fn unreachable_index_has_no_project_list() {
        let list = project_list("http://127.0.0.1:9/simple", Duration::from_secs(2));
        assert!(matches!(list, Err(ListError::Offline(_))), "{list:?}");
    }

    #[test]
    fn unreachable_index_is_offline() {
        let latest = latest_version("http://127.0.0.1:9/simple", "x", Duration::from_secs(2));
        assert!(matches!(latest, Latest::Offline(_)), "{latest:?}");
    }
}
