//! `pyctl info PKG`: one installed distribution: its metadata, files, what it requires and what
//! requires it, the recorded operation that brought it in, and the latest version on the index.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Result};
use pep508_rs::{Requirement, VerbatimUrl, VersionOrUrl};
use serde::Serialize;

use crate::commands::shared::existing_venv;
use crate::commands::shared::{print_json, print_listing};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::python::depcheck;
use crate::python::freeze::requirement_name;
use crate::python::index::{self, Latest};
use crate::python::inventory::{canonical_name, Distribution, MetadataFormat, PackageSet};
use crate::tier;
use crate::tier::history::{self, Log};
use crate::ui::{Style, Ui};

/// How long the index may take to answer.
const INDEX_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize)]
struct Info {
    name: String,
    version: String,
    summary: Option<String>,
    /// The folder holding the metadata (site-packages).
    location: PathBuf,
    /// The project folder of an editable install.
    editable_location: Option<PathBuf>,
    files: Option<usize>,
    size_bytes: Option<u64>,
    requires: Vec<String>,
    required_by: Vec<String>,
    brought_in_by: Option<BroughtIn>,
    latest: LatestJson,
}

#[derive(Debug, Serialize)]
struct BroughtIn {
    id: u64,
    command: String,
    timestamp: String,
}

/// What the index said about the latest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum LatestStatus {
    Found,
    NotOnIndex,
    Offline,
    Unknown,
    /// `--offline`: not asked.
    NotChecked,
}

#[derive(Debug, Serialize)]
struct LatestJson {
    index: String,
    status: LatestStatus,
    version: Option<String>,
    detail: Option<String>,
}

pub fn run(ctx: &Context, ui: &Ui, package: &str, offline: bool, json: bool) -> Result<ExitCode> {
    let tier = tier::current(ctx)?;
    let set = PackageSet::scan(&existing_venv(&tier)?)?;
    let Some(dist) = set.get(package) else {
        let close = close_names(&set, package);
        let hint = if close.is_empty() {
            String::new()
        } else {
            format!("; did you mean {}?", close.join(", "))
        };
        bail!(
            "{package:?} is not installed in {}{hint}",
            tier.venv().display()
        );
    };
    let log = history::read_log(&tier.history_dir())?;
    for problem in &log.problems {
        ui.warn(&format!("skipping {problem}"));
    }
    let env = tier
        .python_version()
        .and_then(|v| depcheck::marker_environment(&v));
    let (files, size_bytes) = files_and_size(&tier.venv(), dist);
    let index_url = index::index_url(ctx, Some(&tier.venv()));
    let latest = if offline {
        None
    } else {
        Some(index::latest_version(
            &index_url,
            &dist.canonical,
            INDEX_TIMEOUT,
        ))
    };
    let info = Info {
        name: dist.name.clone(),
        version: dist.display_version().to_string(),
        summary: summary(dist),
        location: dist
            .metadata_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        editable_location: dist
            .is_editable()
            .then(|| dist.editable_location())
            .flatten(),
        files,
        size_bytes,
        requires: applying_requirements(dist, env.as_ref())
            .iter()
            .map(requirement_text)
            .collect(),
        required_by: required_by(&set, dist, env.as_ref()),
        brought_in_by: brought_in_by(&log, &dist.canonical),
        latest: latest_json(crate::sys::redact::redact(&index_url).into_owned(), latest),
    };
    if json {
        return print_json(ui, &info);
    }
    print_listing(ui, &render(ui, &info))
}

/// Installed names close to `query`: a small edit distance, or one containing the other.
fn close_names(set: &PackageSet, query: &str) -> Vec<String> {
    let wanted = canonical_name(query);
    let mut scored: Vec<(usize, &str)> = set
        .dists
        .values()
        .filter_map(|d| {
            let distance = strsim::levenshtein(&d.canonical, &wanted);
            let contains = wanted.len() >= 3
                && (d.canonical.contains(&wanted) || wanted.contains(&d.canonical));
            (distance <= 2.max(wanted.len() / 4) || contains).then_some((distance, d.name.as_str()))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// The `Summary` header of the Core metadata (METADATA, or an egg-info's PKG-INFO).
fn summary(dist: &Distribution) -> Option<String> {
    let path = match dist.format {
        MetadataFormat::DistInfo => dist.metadata_path.join("METADATA"),
        MetadataFormat::EggInfo if dist.metadata_path.is_dir() => {
            dist.metadata_path.join("PKG-INFO")
        }
        MetadataFormat::EggInfo => dist.metadata_path.clone(),
    };
    let headers = crate::python::metadata::Headers::read(&path).ok()??;
    Some(headers.get("Summary")?.to_string()).filter(|v| !v.is_empty() && v != "UNKNOWN")
}

/// How many files the distribution installed into the venv and their size now, from RECORD
/// (or an egg-info's installed-files.txt).
fn files_and_size(venv: &Path, dist: &Distribution) -> (Option<usize>, Option<u64>) {
    let paths: Vec<PathBuf> = match dist.format {
        MetadataFormat::DistInfo => match crate::tier::store::installed_files(venv, dist) {
            Ok(rows) => rows.into_iter().map(|r| venv.join(r.path)).collect(),
            Err(e) => {
                log::info!("{e:#}");
                return (None, None);
            }
        },
        MetadataFormat::EggInfo => {
            let list = dist.metadata_path.join("installed-files.txt");
            match std::fs::read_to_string(list) {
                Ok(text) => text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| dist.metadata_path.join(l.trim()))
                    .collect(),
                Err(_) => return (None, None),
            }
        }
    };
    let size = paths
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| m.len())
        .sum();
    (Some(paths.len()), Some(size))
}

/// The distribution's requirements whose markers hold for the venv's interpreter (no extras).
fn applying_requirements(
    dist: &Distribution,
    env: Option<&pep508_rs::MarkerEnvironment>,
) -> Vec<Requirement<VerbatimUrl>> {
    depcheck::declared_requirements(dist)
        .iter()
        .filter_map(|text| Requirement::<VerbatimUrl>::from_str(text).ok())
        .filter(|req| env.is_none_or(|env| req.marker.evaluate(env, &[])))
        .collect()
}

/// `name[extras]specifiers`, or `name @ url`, without the marker.
fn requirement_text(req: &Requirement<VerbatimUrl>) -> String {
    let mut s = req.name.to_string();
    if !req.extras.is_empty() {
        let extras: Vec<String> = req.extras.iter().map(ToString::to_string).collect();
        s.push_str(&format!("[{}]", extras.join(",")));
    }
    match &req.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(specs)) => s.push_str(&specs.to_string()),
        Some(VersionOrUrl::Url(url)) => s.push_str(&format!(" @ {url}")),
        None => {}
    }
    s
}

/// The installed distributions that require `dist`.
fn required_by(
    set: &PackageSet,
    dist: &Distribution,
    env: Option<&pep508_rs::MarkerEnvironment>,
) -> Vec<String> {
    let mut names: Vec<String> = set
        .dists
        .values()
        .filter(|other| {
            applying_requirements(other, env)
                .iter()
                .any(|req| canonical_name(req.name.as_ref()) == dist.canonical)
        })
        .map(|other| other.name.clone())
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    names
}

/// The latest recorded operation that added the distribution.
fn brought_in_by(log: &Log, canonical: &str) -> Option<BroughtIn> {
    log.entries
        .iter()
        .rev()
        .find(|e| {
            e.changes()
                .is_some_and(|c| c.added.iter().any(|l| requirement_name(l) == canonical))
        })
        .map(|e| BroughtIn {
            id: e.id,
            command: e.before.command.clone(),
            timestamp: e.before.timestamp.clone(),
        })
}

fn latest_json(index: String, latest: Option<Latest>) -> LatestJson {
    let (status, version, detail) = match latest {
        None => (LatestStatus::NotChecked, None, None),
        Some(Latest::Version(v)) => (LatestStatus::Found, Some(v), None),
        Some(Latest::NotOnIndex) => (LatestStatus::NotOnIndex, None, None),
        Some(Latest::Offline(why)) => (LatestStatus::Offline, None, Some(why)),
        Some(Latest::Unknown(why)) => (LatestStatus::Unknown, None, Some(why)),
    };
    LatestJson {
        index,
        status,
        version,
        detail,
    }
}

fn render(ui: &Ui, info: &Info) -> Vec<String> {
    let field = |name: &str, value: String| {
        format!("{}{value}", ui.out(Style::Bold, &format!("{name:<15}")))
    };
    let list = |items: &[String]| {
        if items.is_empty() {
            "(none)".to_string()
        } else {
            items.join(", ")
        }
    };
    let mut lines = vec![
        field("name", info.name.clone()),
        field("version", info.version.clone()),
    ];
    if let Some(s) = &info.summary {
        lines.push(field("summary", s.clone()));
    }
    lines.push(field("location", info.location.display().to_string()));
    if let Some(p) = &info.editable_location {
        lines.push(field("editable", p.display().to_string()));
    }
    lines.push(field(
        "files",
        match (info.files, info.size_bytes) {
            (Some(n), Some(bytes)) => format!("{n} ({})", crate::ui::human_bytes(bytes)),
            _ => "unknown (no RECORD)".to_string(),
        },
    ));
    lines.push(field("requires", list(&info.requires)));
    lines.push(field("required by", list(&info.required_by)));
    lines.push(field(
        "brought in by",
        match &info.brought_in_by {
            Some(b) => format!(
                "#{} {} ({})",
                b.id,
                b.command,
                crate::ui::local_time(&b.timestamp)
            ),
            None => "not recorded (before the history starts)".to_string(),
        },
    ));
    let latest = &info.latest;
    let newer = |v: &str| {
        let (Ok(have), Ok(latest)) = (
            info.version.parse::<pep440_rs::Version>(),
            v.parse::<pep440_rs::Version>(),
        ) else {
            return false;
        };
        latest > have
    };
    lines.push(field(
        "latest",
        match latest.status {
            LatestStatus::Found => {
                let v = latest.version.clone().unwrap_or_default();
                if newer(&v) {
                    format!(
                        "{} on {}",
                        ui.out(Style::Upgraded, &format!("{v} (newer)")),
                        latest.index
                    )
                } else {
                    format!("{v} on {}", latest.index)
                }
            }
            LatestStatus::NotOnIndex => format!("not on {}", latest.index),
            LatestStatus::Offline => format!(
                "offline ({})",
                latest.detail.as_deref().unwrap_or("index unreachable")
            ),
            LatestStatus::Unknown => format!(
                "unknown ({})",
                latest.detail.as_deref().unwrap_or("no version found")
            ),
            LatestStatus::NotChecked => "not checked (--offline)".to_string(),
        },
    ));
    lines
}
