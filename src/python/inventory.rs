//! The package set of a venv, read straight from its site-packages: never by running pip.
//!
//! What is read, and the spec each part follows:
//! - `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` headers (Core metadata, "Name", "Version"),
//!   <https://packaging.python.org/en/latest/specifications/core-metadata/>, through
//!   [`Headers`];
//! - `*.dist-info/direct_url.json` (PEP 610, [`DirectUrl`]), for URL, VCS and editable installs;
//! - `*.egg-link` files and path lines of `*.pth` files, which put more folders on `sys.path`
//!   the way `site.addsitedir` does, so legacy `setup.py develop` installs are found too.
//!
//! How `pip freeze` prints the set (`Distribution::freeze_lines`, `PackageSet::freeze`, and the
//! spelling of each pip, `PipReader`) is in `python::freeze`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::python::metadata::Headers;
use crate::sys::fsutil::normalize_path;

// Names and direct URLs have their own files; these are re-exported for the callers that
// import them from here.
pub use crate::python::direct_url::{file_url_to_path, ArchiveInfo, DirInfo, DirectUrl, VcsInfo};
pub use crate::python::names::{canonical_name, normalize_version, requirement_key};

/// Errors reading a venv's package set.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{path}: no site-packages folder found (is this a Python venv?)")]
    NoSitePackages { path: PathBuf },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How a distribution's metadata is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataFormat {
    DistInfo,
    EggInfo,
}

/// One installed distribution. Its freeze lines (`name_version`, `freeze_lines`) are made in
/// `python::freeze`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// The `Name` field as written in the metadata.
    pub name: String,
    pub canonical: String,
    /// The `Version` field as written.
    pub raw_version: String,
    /// PEP 440 normalised version, or `None` when the version is not valid PEP 440.
    pub version: Option<String>,
    pub direct_url: Option<DirectUrl>,
    /// For a legacy `.egg-link` install: the project folder it points to.
    pub egg_link: Option<PathBuf>,
    /// The `.dist-info` / `.egg-info` folder (or file) holding the metadata.
    pub metadata_path: PathBuf,
    pub format: MetadataFormat,
}

impl Distribution {
    /// The version as pip prints it: normalised when valid, verbatim otherwise.
    pub fn display_version(&self) -> &str {
        self.version.as_deref().unwrap_or(&self.raw_version)
    }

    pub fn is_editable(&self) -> bool {
        self.direct_url.as_ref().is_some_and(DirectUrl::is_editable) || self.egg_link.is_some()
    }

    /// The project folder of an editable install.
    pub fn editable_location(&self) -> Option<PathBuf> {
        if let Some(du) = self.direct_url.as_ref().filter(|d| d.is_editable()) {
            return file_url_to_path(&du.url);
        }
        self.egg_link.clone()
    }
}

/// The distributions of one venv, keyed by canonical name. Its freeze (`freeze`,
/// `requirement_map`) is made in `python::freeze`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageSet {
    pub dists: BTreeMap<String, Distribution>,
}

impl PackageSet {
    /// Reads the set of the venv at `venv` (the folder holding `pyvenv.cfg`).
    pub fn scan(venv: &Path) -> Result<PackageSet, InventoryError> {
        let dirs = site_packages_dirs(venv)?;
        let mut set = PackageSet::default();
        let mut extra_paths = Vec::new();
        for dir in &dirs {
            scan_dir(dir, &mut set, true)?;
            extra_paths.extend(pth_paths(dir));
        }
        // Folders added by .pth files come after site-packages on sys.path, so what is found
        // there only counts when site-packages did not already have the name.
        for extra in extra_paths {
            if !dirs.contains(&extra) {
                scan_dir(&extra, &mut set, false)?;
            }
        }
        Ok(set)
    }

    /// Reads the distributions of one site-packages folder (a user site, say); none when the
    /// folder does not exist.
    pub fn scan_site(dir: &Path) -> Result<PackageSet, InventoryError> {
        let mut set = PackageSet::default();
        scan_dir(dir, &mut set, true)?;
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.dists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dists.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Distribution> {
        self.dists.get(&canonical_name(name))
    }
}

/// The `lib/pythonX.Y/site-packages` folders of a venv (lib64 too when it is a separate folder).
pub fn site_packages_dirs(venv: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let mut found: Vec<PathBuf> = Vec::new();
    for lib in ["lib", "lib64"] {
        let lib_dir = venv.join(lib);
        let Ok(entries) = std::fs::read_dir(&lib_dir) else {
            continue;
        };
        let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with("python") {
                continue;
            }
            let sp = entry.path().join("site-packages");
            if sp.is_dir() {
                let canonical = sp.canonicalize().unwrap_or(sp);
                if !found.contains(&canonical) {
                    found.push(canonical);
                }
            }
        }
    }
    if found.is_empty() {
        return Err(InventoryError::NoSitePackages {
            path: venv.to_path_buf(),
        });
    }
    Ok(found)
}

fn scan_dir(dir: &Path, set: &mut PackageSet, follow_egg_links: bool) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    names.sort();
    let mut egg_links = Vec::new();
    for path in names {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let lower = file_name.to_ascii_lowercase();
        let dist = if lower.ends_with(".dist-info") {
            read_dist_info(&path)
        } else if lower.ends_with(".egg-info") {
            read_egg_info(&path)
        } else {
            if lower.ends_with(".egg-link") {
                egg_links.push(path);
            }
            continue;
        };
        match dist {
            Ok(Some(dist)) => {
                set.dists.entry(dist.canonical.clone()).or_insert(dist);
            }
            Ok(None) => {}
            Err(e) => log::warn!("{}: unreadable metadata skipped: {e}", path.display()),
        }
    }
    if follow_egg_links {
        for link in egg_links {
            if let Some(dist) = read_egg_link(&link) {
                set.dists.entry(dist.canonical.clone()).or_insert(dist);
            }
        }
    }
    Ok(())
}

/// The folders a `.pth` file adds to `sys.path`: lines that are not comments, not `import`
/// statements and name an existing folder (relative ones against site-packages).
fn pth_paths(site_packages: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(site_packages) else {
        return Vec::new();
    };
    let mut pth_files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pth"))
        .collect();
    pth_files.sort();
    let mut out = Vec::new();
    for pth in pth_files {
        let Ok(text) = std::fs::read_to_string(&pth) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim_end();
            if line.is_empty()
                || line.starts_with('#')
                || line.starts_with("import ")
                || line.starts_with("import\t")
            {
                continue;
            }
            let dir = normalize_path(&site_packages.join(line));
            if dir.is_dir() && !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

fn read_dist_info(path: &Path) -> std::io::Result<Option<Distribution>> {
    let Some(headers) = Headers::read(&path.join("METADATA"))? else {
        return Ok(None);
    };
    let direct_url = std::fs::read(path.join("direct_url.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<DirectUrl>(&bytes).ok())
        .filter(DirectUrl::is_valid);
    Ok(make_dist(
        &headers,
        path,
        MetadataFormat::DistInfo,
        direct_url,
        None,
    ))
}

fn read_egg_info(path: &Path) -> std::io::Result<Option<Distribution>> {
    let pkg_info = if path.is_dir() {
        path.join("PKG-INFO")
    } else {
        path.to_path_buf()
    };
    let Some(headers) = Headers::read(&pkg_info)? else {
        return Ok(None);
    };
    Ok(make_dist(
        &headers,
        path,
        MetadataFormat::EggInfo,
        None,
        None,
    ))
}

/// A `.egg-link` names a project folder (first line) holding the project's `.egg-info`.
fn read_egg_link(link: &Path) -> Option<Distribution> {
    let text = std::fs::read_to_string(link).ok()?;
    let target = normalize_path(&link.parent()?.join(text.lines().next()?.trim()));
    let stem = link.file_stem()?.to_str()?;
    let entries = std::fs::read_dir(&target).ok()?;
    for entry in entries.filter_map(Result::ok) {
        let p = entry.path();
        let name = p.file_name()?.to_str()?.to_string();
        if let Some(project) = name.strip_suffix(".egg-info") {
            let project = project.split('-').next().unwrap_or(project);
            if canonical_name(project) == canonical_name(stem) {
                let headers = Headers::read(&p.join("PKG-INFO")).ok()??;
                return make_dist(&headers, &p, MetadataFormat::EggInfo, None, Some(target));
            }
        }
    }
    None
}

/// A distribution from its metadata headers; `None` unless they give a `Name` (not empty) and a
/// `Version` (the first of each, as pip reads them).
fn make_dist(
    headers: &Headers,
    metadata_path: &Path,
    format: MetadataFormat,
    direct_url: Option<DirectUrl>,
    egg_link: Option<PathBuf>,
) -> Option<Distribution> {
    let name = headers.get("Name").filter(|n| !n.is_empty())?;
    let raw_version = headers.get("Version")?;
    Some(Distribution {
        name: name.to_string(),
        canonical: canonical_name(name),
        raw_version: raw_version.to_string(),
        version: normalize_version(raw_version),
        direct_url,
        egg_link,
        metadata_path: metadata_path.to_path_buf(),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_folder_is_read_from_its_metadata_headers() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path();
        let write = |rel: &str, text: &[u8]| {
            let path = site.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "zope_interface-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\r\nName: zope.interface\r\nSummary: long\r\n  folded\r\n\
              Version: 1.0\r\n\r\nName: from-the-body\r\n",
        );
        // No Version: not a distribution pip would list.
        write("broken-2.0.dist-info/METADATA", b"Name: broken\n");
        // An egg-info file, in Latin-1.
        write(
            "Old-3.0-py3.11.egg-info",
            b"Metadata-Version: 1.0\nName: Old\nVersion: 3.0\nAuthor: Fran\xe7ois\n",
        );
        let set = PackageSet::scan_site(site).unwrap();
        let found: Vec<(&str, &str, &str)> = set
            .dists
            .values()
            .map(|d| {
                (
                    d.canonical.as_str(),
                    d.name.as_str(),
                    d.raw_version.as_str(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("old", "Old", "3.0"),
                ("zope-interface", "zope.interface", "1.0")
            ]
        );
        assert_eq!(set.get("Old").unwrap().format, MetadataFormat::EggInfo);
    }
}
