//! The conflict model shared by the package-manager hooks and `doctor`: where a distro package
//! and a pyctl tier disagree about Python distributions or commands.
//!
//! Kinds: (1) the same distribution (PEP 503 name) shipped by a distro package and installed in
//! the system venv, or in a tier that inherits system packages, at another version; (2) a
//! distro package's requirements broken by what the tier makes visible; (3) a console script in
//! a tier that shadows, or is shadowed by, a distro command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::python::inventory::{canonical_name, normalize_version, PackageSet};
use crate::sys::tool::{run_bounded_output, system_tool};

/// A Python distribution a distro package ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistroDist {
    /// The distro package (`python3-requests`), when known.
    pub package: Option<String>,
    pub name: String,
    pub canonical: String,
    pub version: String,
    /// The `.dist-info` / `.egg-info` path inside the package.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    VersionMismatch,
    BrokenRequirement,
    ShadowedCommand,
}

/// One conflict, saying which package, which tier, both versions and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub kind: ConflictKind,
    pub package: String,
    pub tier: String,
    pub name: String,
    pub distro_version: String,
    pub tier_version: String,
    pub advice: String,
}

impl Conflict {
    /// What conflicts, without the advice.
    pub fn summary(&self) -> String {
        match self.kind {
            ConflictKind::VersionMismatch => format!(
                "{} ships {} {} but the {} venv has {} {}",
                self.package,
                self.name,
                self.distro_version,
                self.tier,
                self.name,
                self.tier_version
            ),
            ConflictKind::BrokenRequirement => format!(
                "{}: {} in the {} venv breaks it ({})",
                self.package, self.name, self.tier, self.tier_version
            ),
            ConflictKind::ShadowedCommand => format!(
                "command {} from {} is shadowed by the {} venv's {}",
                self.name, self.package, self.tier, self.tier_version
            ),
        }
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.summary(), self.advice)
    }
}

/// Python distributions among a package's file paths: `.dist-info` and `.egg-info` entries
/// under a `dist-packages` or `site-packages` folder. Name and version come from the folder
/// name (`name-version.dist-info`, `name-version[-pyX.Y].egg-info`), which is how both wheel
/// installs and Debian's packaging name them.
pub fn dists_in_paths<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    package: Option<&str>,
) -> Vec<DistroDist> {
    let mut found: BTreeMap<String, DistroDist> = BTreeMap::new();
    for path in paths {
        let path = path.trim_end_matches('/');
        let mut parts = path.rsplit('/');
        let (Some(leaf), Some(parent)) = (parts.next(), parts.next()) else {
            continue;
        };
        if parent != "dist-packages" && parent != "site-packages" {
            continue;
        }
        let Some(stem) = leaf
            .strip_suffix(".dist-info")
            .or_else(|| leaf.strip_suffix(".egg-info"))
        else {
            continue;
        };
        let mut fields = stem.splitn(3, '-');
        let (Some(name), Some(version)) = (fields.next(), fields.next()) else {
            continue;
        };
        if name.is_empty() || version.is_empty() {
            continue;
        }
        let canonical = canonical_name(name);
        let version = normalize_version(version).unwrap_or_else(|| version.to_string());
        found.entry(canonical.clone()).or_insert(DistroDist {
            package: package.map(str::to_string),
            name: name.to_string(),
            canonical,
            version,
            path: path.to_string(),
        });
    }
    found.into_values().collect()
}

/// Kind (1): distro distributions that the tier's set also has, at another version.
pub fn version_conflicts(
    distro: &[DistroDist],
    tier_name: &str,
    set: &PackageSet,
) -> Vec<Conflict> {
    let mut out = Vec::new();
    for d in distro {
        let Some(mine) = set.dists.get(&d.canonical) else {
            continue;
        };
        if mine.display_version() == d.version {
            continue;
        }
        out.push(Conflict {
            kind: ConflictKind::VersionMismatch,
            package: d
                .package
                .clone()
                .unwrap_or_else(|| "a distro package".into()),
            tier: tier_name.to_string(),
            name: d.name.clone(),
            distro_version: d.version.clone(),
            tier_version: mine.display_version().to_string(),
            advice: format!(
                "code run by the {tier_name} venv's Python sees {} {}, distro tools see {}; align \
                 them (`pip install {}=={}` in that tier) or keep them apart",
                mine.name,
                mine.display_version(),
                d.version,
                mine.name,
                d.version
            ),
        });
    }
    out
}

/// Kind (3): console scripts in a tier's `bin/` that share a name with a distro command in
/// `/usr/bin` (the tier is first on PATH for its user, so it wins). `owner` names the distro
/// package of a command, when it can tell.
pub fn shadowed_commands(
    tier_name: &str,
    tier_bin: &Path,
    distro_bin: &Path,
    owner: impl Fn(&Path) -> Option<String>,
) -> Vec<Conflict> {
    let Ok(read) = std::fs::read_dir(tier_bin) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !is_venv_own_script(n))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let distro = distro_bin.join(&name);
            if !distro.exists() {
                return None;
            }
            Some(Conflict {
                kind: ConflictKind::ShadowedCommand,
                package: owner(&distro).unwrap_or_else(|| distro.display().to_string()),
                tier: tier_name.to_string(),
                name: name.clone(),
                distro_version: String::new(),
                tier_version: tier_bin.join(&name).display().to_string(),
                advice: format!(
                    "`{name}` now runs the venv's script; call {} for the distro's",
                    distro.display()
                ),
            })
        })
        .collect()
}

/// Scripts every venv has, which shadow nothing on purpose.
fn is_venv_own_script(name: &str) -> bool {
    name.starts_with("python")
        || name.starts_with("pip")
        || name.starts_with("activate")
        || name.starts_with("Activate")
        || name == "easy_install"
        || name.starts_with("easy_install-")
}

/// Runs a command with a time limit and an output cap, so a hook never hangs its package
/// manager. Returns stdout.
pub fn run_bounded(cmd: &mut Command, limit: Duration, max_bytes: usize) -> Result<String> {
    let out = run_bounded_output(cmd, limit, max_bytes)?;
    if !out.success {
        bail!("{} failed ({})", out.program, out.status);
    }
    Ok(out.stdout)
}

/// Paths inside a `.deb`, from `dpkg-deb --contents` (tar listing: the path is the sixth
/// field; symlinks end in ` -> target`).
pub fn parse_dpkg_contents(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| {
            let mut rest = line;
            for _ in 0..5 {
                let trimmed = rest.trim_start();
                let end = trimmed.find(char::is_whitespace)?;
                rest = &trimmed[end..];
            }
            let path = rest.trim_start();
            let path = path.split(" -> ").next().unwrap_or(path);
            Some(path.trim_start_matches('.').to_string())
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// The distro package owning a path, asked of dpkg (bounded).
pub fn dpkg_owner(path: &Path) -> Option<String> {
    let out = run_bounded(
        system_tool("dpkg-query").arg("-S").arg(path),
        Duration::from_secs(5),
        64 * 1024,
    )
    .ok()?;
    out.lines()
        .next()
        .and_then(|l| l.split(':').next())
        .map(str::to_string)
}

/// Python distributions installed by the distro in the usual folders (dpkg-independent: any
/// distro's layout), each with its owning package when dpkg can tell.
pub fn installed_distro_dists(roots: &[PathBuf]) -> Vec<DistroDist> {
    let mut paths = Vec::new();
    for root in roots {
        if let Ok(read) = std::fs::read_dir(root) {
            for item in read.filter_map(Result::ok) {
                paths.push(item.path().to_string_lossy().into_owned());
            }
        }
    }
    dists_in_paths(paths.iter().map(String::as_str), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dists_from_debian_style_paths() {
        let paths = [
            "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/",
            "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO",
            "/usr/lib/python3/dist-packages/requests/__init__.py",
            "/usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info",
            "/usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/",
            "/usr/lib/python3/dist-packages/six-1.16.0-py3.11.egg-info",
            "/usr/share/doc/python3-requests/x.egg-info",
        ];
        let d = dists_in_paths(paths.iter().copied(), Some("pkg"));
        let names: Vec<(&str, &str)> = d
            .iter()
            .map(|x| (x.canonical.as_str(), x.version.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("jinja2", "3.1.2"),
                ("python-apt", "2.6.0"),
                ("requests", "2.28.1"),
                ("six", "1.16.0")
            ]
        );
    }

    #[test]
    fn dpkg_contents_listing() {
        let listing = "drwxr-xr-x root/root         0 2023-01-01 00:00 ./usr/lib/python3/dist-packages/requests-2.28.1.egg-info/\n\
                       -rw-r--r-- root/root      1234 2023-01-01 00:00 ./usr/lib/python3/dist-packages/requests/api.py\n\
                       lrwxrwxrwx root/root         0 2023-01-01 00:00 ./usr/bin/x -> y\n";
        assert_eq!(
            parse_dpkg_contents(listing),
            vec![
                "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/",
                "/usr/lib/python3/dist-packages/requests/api.py",
                "/usr/bin/x"
            ]
        );
    }

    #[test]
    fn bounded_run_times_out() {
        let err = run_bounded(
            Command::new("sleep").arg("5"),
            Duration::from_millis(100),
            1024,
        )
        .unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
