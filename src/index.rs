//! The package index, read through its JSON simple API (PEP 691, "JSON-based Simple API for
//! Python Package Indexes"; the `versions` key is PEP 700's): the latest version of a project.
//! The index URL follows pip's `PIP_INDEX_URL`; requests have a short timeout so that a machine
//! without network answers at once.

use std::io::Read;
use std::time::Duration;

use serde::Deserialize;

use crate::context::Context;

pub const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple";
/// PEP 691's content type, version 1.
const JSON_CONTENT_TYPE: &str = "application/vnd.pypi.simple.v1+json";
/// A project page larger than this is not read.
const MAX_REPLY_BYTES: u64 = 32 * 1024 * 1024;

/// The index URL pip would use, as far as the environment says.
pub fn index_url(ctx: &Context) -> String {
    ctx.var_str("PIP_INDEX_URL")
        .unwrap_or_else(|| DEFAULT_INDEX_URL.to_string())
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
        if let Some(stem) = name.strip_suffix(".whl") {
            return stem.split('-').nth(1);
        }
        [".tar.gz", ".zip", ".tar.bz2", ".tgz"]
            .iter()
            .find_map(|ext| name.strip_suffix(ext))
            .and_then(|stem| stem.rsplit_once('-'))
            .map(|(_, v)| v)
    }
}

/// The latest version of `canonical` on the index at `index`, within `timeout`.
pub fn latest_version(index: &str, canonical: &str, timeout: Duration) -> Latest {
    let url = format!("{}/{canonical}/", index.trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .try_proxy_from_env(true)
        .build();
    let reply = match agent.get(&url).set("Accept", JSON_CONTENT_TYPE).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(404, _)) => return Latest::NotOnIndex,
        Err(ureq::Error::Status(code, _)) => {
            return Latest::Unknown(format!("{url} answered HTTP {code}"))
        }
        // The transport error names the URL.
        Err(ureq::Error::Transport(t)) => return Latest::Offline(t.to_string()),
    };
    let content_type = reply.content_type().to_string();
    if content_type != JSON_CONTENT_TYPE && content_type != "application/json" {
        return Latest::Unknown(format!(
            "{url} answered {content_type}, not the JSON simple API (PEP 691)"
        ));
    }
    let mut body = Vec::new();
    if let Err(e) = reply
        .into_reader()
        .take(MAX_REPLY_BYTES)
        .read_to_end(&mut body)
    {
        return Latest::Offline(format!("{url}: {e}"));
    }
    match serde_json::from_slice::<ProjectPage>(&body) {
        Ok(page) => match newest(&page) {
            Some(v) => Latest::Version(v),
            None => Latest::Unknown(format!("{url} lists no installable version")),
        },
        Err(e) => Latest::Unknown(format!("{url}: malformed reply: {e}")),
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
    fn unreachable_index_is_offline() {
        let latest = latest_version("http://127.0.0.1:9/simple", "x", Duration::from_secs(2));
        assert!(matches!(latest, Latest::Offline(_)), "{latest:?}");
    }
}
