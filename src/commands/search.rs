//! `pyctl search TERM`: PyPI has no search API, so the index's project list (the PEP 691 root
//! page) is fetched, cached in the tier as `cache/projects.json`, and ranked here by name: exact,
//! prefix, substring, then close spellings. What the tier has installed is marked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::commands::shared::{print_json, print_listing};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::python::index::{self, ListError};
use crate::python::inventory::{canonical_name, PackageSet};
use crate::sys::fsutil;
use crate::tier::Tier;
use crate::ui::{Style, Ui};

/// How long reaching the index may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Version of the cache file's layout.
const CACHE_SCHEMA: u32 = 1;

/// The cached project list of one index.
#[derive(Debug, Serialize, Deserialize)]
struct Cache {
    schema: u32,
    index: String,
    /// When it was fetched, as a UTC timestamp.
    fetched: String,
    projects: Vec<String>,
}

/// How a name matched the term, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    Exact,
    Prefix,
    Substring,
    Fuzzy,
}

/// One ranked project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub name: String,
    pub kind: Match,
    /// Within a kind, lower ranks first (length, position or edit distance).
    score: usize,
}

/// Ranks `projects` against `term` (compared as PEP 503 normalised names); returns every match,
/// best first.
pub fn rank(projects: &[String], term: &str) -> Vec<Hit> {
    let wanted = canonical_name(term);
    // One edit per five characters: `reqests` finds `requests`, but `beta` does not find `zeta`.
    let max_distance = wanted.chars().count() / 5;
    let mut hits: Vec<Hit> = projects
        .iter()
        .filter_map(|name| {
            let canonical = canonical_name(name);
            let (kind, score) = if canonical == wanted {
                (Match::Exact, 0)
            } else if canonical.starts_with(&wanted) {
                (Match::Prefix, canonical.len())
            } else if let Some(at) = canonical.find(&wanted) {
                (Match::Substring, at * 1000 + canonical.len())
            } else if max_distance > 0 && canonical.len().abs_diff(wanted.len()) <= max_distance {
                // Only names of about the right length can be close spellings: cheap to skip
                // the rest of a list of hundreds of thousands.
                let distance = strsim::damerau_levenshtein(&canonical, &wanted);
                if distance > max_distance {
                    return None;
                }
                (Match::Fuzzy, distance)
            } else {
                return None;
            };
            Some(Hit {
                name: name.clone(),
                kind,
                score,
            })
        })
        .collect();
    hits.sort_by_cached_key(|h| (h.kind, h.score, canonical_name(&h.name)));
    hits
}

/// Where the project list was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum ListSource {
    /// Fetched now.
    Index,
    Cache,
}

/// Where the list came from, for the summary line and `--json`.
#[derive(Debug, Serialize)]
struct Source {
    index: String,
    cache: PathBuf,
    from: ListSource,
    fetched: String,
    age_seconds: u64,
    /// Why the index was not used although the cache was stale or a refresh was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    index_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ResultJson<'a> {
    name: &'a str,
    #[serde(rename = "match")]
    kind: Match,
    installed: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct SearchJson<'a> {
    term: &'a str,
    total_matches: usize,
    source: Source,
    results: Vec<ResultJson<'a>>,
}

/// Checks a search term: a project name or part of one.
fn check_term(term: &str) -> Result<()> {
    if term.is_empty()
        || !term
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!("{term:?} is not a project name or part of one (letters, digits, '.', '_' and '-')");
    }
    if !term.chars().any(|c| c.is_ascii_alphanumeric()) {
        bail!("{term:?} has no letter or digit to search for");
    }
    Ok(())
}

pub fn run(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    term: &str,
    limit: usize,
    refresh: bool,
    json: bool,
) -> Result<ExitCode> {
    check_term(term)?;
    let venv = tier.venv_exists().then(|| tier.venv());
    let index = index::index_url(ctx, venv.as_deref());
    let cache_path = cache_path(tier);
    // A cached list younger than `search.cache_hours` is used without asking the index
    // (`--refresh` asks anyway).
    let max_age = Duration::from_secs(tier.config()?.search.cache_hours.saturating_mul(3600));
    let (projects, source) = project_list(ctx, ui, tier, &index, &cache_path, refresh, max_age)?;
    let installed: HashMap<String, String> = match &venv {
        Some(v) => PackageSet::scan(v)
            .map(|set| {
                set.dists
                    .values()
                    .map(|d| (d.canonical.clone(), d.display_version().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        None => HashMap::new(),
    };
    let hits = rank(&projects, term);
    let total = hits.len();
    let shown = &hits[..total.min(limit)];
    let installed_of = |name: &str| installed.get(&canonical_name(name)).map(String::as_str);
    if json {
        let out = SearchJson {
            term,
            total_matches: total,
            results: shown
                .iter()
                .map(|h| ResultJson {
                    name: &h.name,
                    kind: h.kind,
                    installed: installed_of(&h.name),
                })
                .collect(),
            source,
        };
        return print_json(ui, &out);
    }
    let from = match source.from {
        ListSource::Index => format!("{} projects on {}", projects.len(), source.index),
        ListSource::Cache => format!(
            "{} projects on {}, list cached {} ago",
            projects.len(),
            source.index,
            human_age(source.age_seconds)
        ),
    };
    if shown.is_empty() {
        ui.info(&format!("no project matches {term:?} ({from})"));
        return Ok(ExitCode::Success);
    }
    let width = shown.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let lines: Vec<String> = shown
        .iter()
        .map(|h| {
            let mark = installed_of(&h.name)
                .map(|v| ui.out(Style::Added, &format!("installed {v}")))
                .unwrap_or_default();
            let line = format!(
                "{}  {}  {mark}",
                ui.out(Style::Bold, &format!("{:<width$}", h.name)),
                ui.out(Style::Dim, &format!("{:<9}", match_word(h.kind)))
            );
            line.trim_end().to_string()
        })
        .collect();
    print_listing(ui, &lines)?;
    ui.info(&format!(
        "{} of {total} matches shown ({from})",
        shown.len()
    ));
    Ok(ExitCode::Success)
}

fn match_word(kind: Match) -> &'static str {
    match kind {
        Match::Exact => "exact",
        Match::Prefix => "prefix",
        Match::Substring => "substring",
        Match::Fuzzy => "close",
    }
}

pub fn cache_path(tier: &Tier) -> PathBuf {
    tier.root.join("cache").join("projects.json")
}

/// The project list: the cache when it is of this index and fresh, else the index (and the cache
/// rewritten), else a stale cache with a warning saying how old it is.
fn project_list(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    index: &str,
    cache_path: &Path,
    refresh: bool,
    max_age: Duration,
) -> Result<(Vec<String>, Source)> {
    let shown = crate::sys::redact::redact(index).into_owned();
    let cache = read_cache(ui, cache_path).filter(|c| c.index == shown);
    let now = jiff::Timestamp::now();
    let age = |c: &Cache| {
        c.fetched
            .parse::<jiff::Timestamp>()
            .map(|t| now.as_second().saturating_sub(t.as_second()).max(0) as u64)
            .unwrap_or(u64::MAX)
    };
    if let Some(c) = &cache {
        if !refresh && age(c) < max_age.as_secs() {
            log::debug!("using {} ({}s old)", cache_path.display(), age(c));
            let source = Source {
                index: shown.clone(),
                cache: cache_path.to_path_buf(),
                from: ListSource::Cache,
                fetched: c.fetched.clone(),
                age_seconds: age(c),
                index_error: None,
            };
            return Ok((cache.unwrap().projects, source));
        }
    }
    match index::project_list(index, CONNECT_TIMEOUT) {
        Ok(projects) => {
            let fetched = crate::sys::clock::now_timestamp();
            let fresh = Cache {
                schema: CACHE_SCHEMA,
                index: shown.clone(),
                fetched: fetched.clone(),
                projects,
            };
            if let Err(e) = write_cache(ctx, tier, cache_path, &fresh) {
                ui.warn(&format!("the project list is not cached: {e:#}"));
            }
            let source = Source {
                index: shown.clone(),
                cache: cache_path.to_path_buf(),
                from: ListSource::Index,
                fetched,
                age_seconds: 0,
                index_error: None,
            };
            Ok((fresh.projects, source))
        }
        Err(e) => {
            let what = match &e {
                ListError::Offline(_) => "cannot reach the index",
                ListError::BadReply(_) => "the index gave no project list",
            };
            let Some(c) = cache else {
                bail!(
                    "{what} ({e}), and there is no cached project list of {index} in {}; \
                     search needs the index once",
                    cache_path.display()
                );
            };
            let age_seconds = age(&c);
            ui.warn(&format!(
                "{what} ({e}); using the list cached {} ago ({})",
                human_age(age_seconds),
                c.fetched
            ));
            let source = Source {
                index: shown.clone(),
                cache: cache_path.to_path_buf(),
                from: ListSource::Cache,
                fetched: c.fetched,
                age_seconds,
                index_error: Some(e.to_string()),
            };
            Ok((c.projects, source))
        }
    }
}

/// The cache file, or `None` when there is none; a damaged one is reported and ignored.
fn read_cache(ui: &Ui, path: &Path) -> Option<Cache> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            ui.warn(&format!("{}: cannot read: {e}", path.display()));
            return None;
        }
    };
    match serde_json::from_slice::<Cache>(&bytes) {
        Ok(c) if c.schema == CACHE_SCHEMA => Some(c),
        Ok(c) => {
            ui.warn(&format!(
                "{}: cache schema {} is not {CACHE_SCHEMA}; ignoring it",
                path.display(),
                c.schema
            ));
            None
        }
        Err(e) => {
            ui.warn(&format!(
                "{}: damaged cache ({e}); ignoring it",
                path.display()
            ));
            None
        }
    }
}

/// Writes the cache atomically. Not under the tier lock: it is not part of the tier's state, a
/// download of tens of megabytes must not hold up pip, and two writers each rename a whole file.
/// Another account's tier is left alone.
fn write_cache(ctx: &Context, tier: &Tier, path: &Path, cache: &Cache) -> Result<()> {
    if tier.owner().is_some_and(|uid| uid != ctx.uid) {
        bail!("{} belongs to another account", tier.root.display());
    }
    let dir = path.parent().context("cache path has no folder")?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    fsutil::write_atomic(path, &serde_json::to_vec(cache)?)
}

/// `42 seconds`, `5 minutes`, `3 hours`, `2 days`.
pub fn human_age(seconds: u64) -> String {
    let (n, unit) = match seconds {
        u64::MAX => return "an unknown time".to_string(),
        s if s < 120 => (s, "second"),
        s if s < 2 * 3600 => (s / 60, "minute"),
        s if s < 2 * 86400 => (s / 3600, "hour"),
        s => (s / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(hits: &[Hit]) -> Vec<(&str, Match)> {
        hits.iter().map(|h| (h.name.as_str(), h.kind)).collect()
    }

    #[test]
    fn ranks_exact_then_prefix_then_substring_then_close_spellings() {
        let projects: Vec<String> = [
            "flask-login",
            "Flask",
            "pytest-flask",
            "flasky",
            "flusk",
            "django",
            "FLASK_admin",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let hits = rank(&projects, "flask");
        assert_eq!(
            names(&hits),
            vec![
                ("Flask", Match::Exact),
                ("flasky", Match::Prefix),
                ("FLASK_admin", Match::Prefix),
                ("flask-login", Match::Prefix),
                ("pytest-flask", Match::Substring),
                ("flusk", Match::Fuzzy),
            ]
        );
    }

    #[test]
    fn compares_normalised_names() {
        let projects = vec!["Zope.Interface".to_string(), "zope_event".to_string()];
        let hits = rank(&projects, "zope-interface");
        assert_eq!(names(&hits), vec![("Zope.Interface", Match::Exact)]);
        assert_eq!(rank(&projects, "ZOPE").len(), 2);
    }

    #[test]
    fn terms_must_look_like_names() {
        assert!(check_term("req").is_ok());
        assert!(check_term("a b").is_err());
        assert!(check_term("").is_err());
        assert!(check_term("--").is_err());
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(human_age(1), "1 second");
        assert_eq!(human_age(300), "5 minutes");
        assert_eq!(human_age(3 * 3600), "3 hours");
        assert_eq!(human_age(86400 * 3), "3 days");
    }
}
