//! A native `pip check`: every installed distribution's requirements (Core metadata
//! `Requires-Dist`, PEP 508, evaluated for the venv's interpreter with no extras) against the
//! installed set, with PEP 440 specifiers. Parsing is pep508_rs's, not ours.
//!
//! Like pip's `check_package_set`, a requirement whose marker is false is ignored; a missing
//! one is reported as "requires X, which is not installed", a wrong version as "has requirement
//! R, but you have X V"; prereleases count as matching.

use std::path::Path;
use std::str::FromStr;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder, Requirement, VersionOrUrl};

use crate::python::inventory::{Distribution, MetadataFormat, PackageSet};
use crate::python::metadata::Headers;
use crate::python::names::canonical_name;

/// One broken requirement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Broken {
    Missing {
        name: String,
        version: String,
        requires: String,
    },
    Conflict {
        name: String,
        version: String,
        requirement: String,
        installed_name: String,
        installed_version: String,
    },
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Missing {
                name,
                version,
                requires,
            } => write!(
                f,
                "{name} {version} requires {requires}, which is not installed."
            ),
            Broken::Conflict {
                name,
                version,
                requirement,
                installed_name,
                installed_version,
            } => write!(
                f,
                "{name} {version} has requirement {requirement}, but you have {installed_name} \
                 {installed_version}."
            ),
        }
    }
}

/// The marker environment of a CPython `python_full_version` on this Linux machine.
pub fn marker_environment(python_full_version: &str) -> Option<MarkerEnvironment> {
    let minor: String = python_full_version
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let uname = nix::sys::utsname::uname().ok()?;
    let release = uname.release().to_string_lossy().into_owned();
    let version = uname.version().to_string_lossy().into_owned();
    let machine = uname.machine().to_string_lossy().into_owned();
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: python_full_version,
        os_name: "posix",
        platform_machine: &machine,
        platform_python_implementation: "CPython",
        platform_release: &release,
        platform_system: "Linux",
        platform_version: &version,
        python_full_version,
        python_version: &minor,
        sys_platform: "linux",
    })
    .ok()
}

/// The requirement strings a distribution declares: `Requires-Dist` headers of METADATA, or
/// an egg-info's `requires.txt` (its `[:marker]` sections turned into markers; `[extra]`
/// sections left out, as pip does when no extra is asked for).
pub fn declared_requirements(dist: &Distribution) -> Vec<String> {
    match dist.format {
        MetadataFormat::DistInfo => requires_dist(&dist.metadata_path.join("METADATA")),
        MetadataFormat::EggInfo => requires_txt(&dist.metadata_path.join("requires.txt")),
    }
}

fn requires_dist(metadata: &Path) -> Vec<String> {
    match Headers::read(metadata) {
        Ok(Some(headers)) => headers.get_all("Requires-Dist").map(String::from).collect(),
        _ => Vec::new(),
    }
}

fn requires_txt(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut marker: Option<Option<String>> = Some(None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            marker = match section.split_once(':') {
                Some(("", m)) => Some(Some(m.to_string())),
                _ => None,
            };
            continue;
        }
        match &marker {
            Some(None) => out.push(line.to_string()),
            Some(Some(m)) => out.push(format!("{line} ; {m}")),
            None => {}
        }
    }
    out
}

/// How a requirement prints in pip's message: name, extras, specifiers sorted and joined by
/// commas, then the marker.
fn requirement_text(req: &Requirement) -> String {
    let mut s = req.name.to_string();
    if !req.extras.is_empty() {
        let extras: Vec<String> = req.extras.iter().map(ToString::to_string).collect();
        s.push_str(&format!("[{}]", extras.join(",")));
    }
    if let Some(VersionOrUrl::VersionSpecifier(specs)) = &req.version_or_url {
        let mut parts: Vec<String> = specs.iter().map(ToString::to_string).collect();
        parts.sort();
        s.push_str(&parts.join(","));
    }
    if let Some(marker) = req.marker.contents() {
        s.push_str(&format!("; {marker}"));
    }
    s
}

/// Checks `set` as pip check does; `env` is the venv's interpreter environment.
pub fn check(set: &PackageSet, env: &MarkerEnvironment) -> Vec<Broken> {
    let mut broken = Vec::new();
    for (canonical, dist) in &set.dists {
        let version = dist.display_version().to_string();
        for text in declared_requirements(dist) {
            let req = match Requirement::<pep508_rs::VerbatimUrl>::from_str(&text) {
                Ok(r) => r,
                Err(e) => {
                    log::warn!(
                        "{}: unparsable requirement {text:?}: {e}",
                        dist.name_version()
                    );
                    continue;
                }
            };
            if !req.marker.evaluate(env, &[]) {
                continue;
            }
            let dep = canonical_name(req.name.as_ref());
            let Some(installed) = set.dists.get(&dep) else {
                broken.push(Broken::Missing {
                    name: canonical.clone(),
                    version: version.clone(),
                    requires: dep,
                });
                continue;
            };
            let Some(VersionOrUrl::VersionSpecifier(specs)) = &req.version_or_url else {
                continue;
            };
            let satisfied = match installed.raw_version.parse::<pep440_rs::Version>() {
                Ok(v) => specs.contains(&v),
                Err(_) => false,
            };
            if !satisfied {
                broken.push(Broken::Conflict {
                    name: canonical.clone(),
                    version: version.clone(),
                    requirement: requirement_text(&req),
                    installed_name: dep,
                    installed_version: installed.display_version().to_string(),
                });
            }
        }
    }
    broken.sort_by_key(|b| b.to_string());
    broken.dedup();
    broken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_txt_sections() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requires.txt");
        std::fs::write(
            &p,
            "six>=1.0\n\n[test]\npytest\n\n[:python_version < \"3.8\"]\nimportlib-metadata\n",
        )
        .unwrap();
        assert_eq!(
            requires_txt(&p),
            vec![
                "six>=1.0".to_string(),
                "importlib-metadata ; python_version < \"3.8\"".to_string()
            ]
        );
    }

    #[test]
    fn marker_environment_builds() {
        let env = marker_environment("3.11.2").expect("environment");
        let req = Requirement::<pep508_rs::VerbatimUrl>::from_str("x ; python_version >= \"3.8\"")
            .unwrap();
        assert!(req.marker.evaluate(&env, &[]));
        let req = Requirement::<pep508_rs::VerbatimUrl>::from_str("x ; extra == \"test\"").unwrap();
        assert!(!req.marker.evaluate(&env, &[]));
    }
}
