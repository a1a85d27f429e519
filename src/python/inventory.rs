//! The package set of a venv, read straight from its site-packages: never by running pip.
//!
//! What is read, and the spec each part follows:
//! - `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` headers (Core metadata, "Name", "Version"),
//!   <https://packaging.python.org/en/latest/specifications/core-metadata/>;
//! - `*.dist-info/direct_url.json` (PEP 610, "Recording the Direct URL Origin of installed
//!   distributions"), for URL, VCS and editable installs;
//! - `*.egg-link` files and path lines of `*.pth` files, which put more folders on `sys.path`
//!   the way `site.addsitedir` does, so legacy `setup.py develop` installs are found too.
//!
//! `PackageSet::freeze_as` renders the set exactly as `pip freeze --all` does (pip's
//! `operations/freeze.py`): sorted by the lower-cased project name, `name==version` with the
//! version normalised per PEP 440, `name @ url` for direct-URL installs, and `-e location` with a
//! comment line for editable ones. Which name and version text pip prints depends on the pip
//! (and Python) of the venv: see [`PipReader`]. What pyctl records (history, snapshots, the
//! store) is always the METADATA spelling, `PackageSet::freeze`, and lines are matched by
//! [`requirement_key`], so a pip upgrade in a tier changes nothing recorded.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Errors reading a venv's package set.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{path}: no site-packages folder found (is this a Python venv?)")]
    NoSitePackages { path: PathBuf },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// PEP 503 normalised project name: runs of `-`, `_` and `.` become one `-`, all lower case.
pub fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.extend(c.to_lowercase());
            in_sep = false;
        }
    }
    out
}

/// A requirement or freeze line with its project name in PEP 503 form: two lines about the same
/// distribution spelled by different pips (`zope.interface==1.0`, `zope-interface==1.0`) have
/// the same key. Versions, URLs and editable paths are kept as written.
pub fn requirement_key(line: &str) -> String {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("-e ") {
        return match rest.split_once("#egg=") {
            Some((before, egg)) => {
                let end = egg.find('&').unwrap_or(egg.len());
                format!(
                    "-e {before}#egg={}{}",
                    canonical_name(&egg[..end]),
                    &egg[end..]
                )
            }
            None => line.to_string(),
        };
    }
    let end = line
        .find(['=', ' ', '@', '<', '>', '!', '~', ';', '['])
        .unwrap_or(line.len());
    format!("{}{}", canonical_name(&line[..end]), &line[end..])
}

/// Which reader of installed metadata the venv's `pip freeze` goes through, and so where the
/// name and version it prints come from. Read from pip's source (github.com/pypa/pip):
///
/// - pip < 21.2: `operations/freeze.py` (`FrozenRequirement.from_dist`) prints pkg_resources'
///   `dist.project_name`, which `Distribution.from_location` in `_vendor/pkg_resources` takes
///   from the `.dist-info`/`.egg-info` folder name (the part before the first `-`, through
///   `safe_name`: runs of characters other than ASCII letters, digits and `.` become `-`), and
///   the version from the folder name too for `.dist-info` (`.egg-info` reloads it from
///   PKG-INFO). Debian 11's pip 20.3.4 is one: `zope_interface-8.0.1.dist-info` holding
///   `Name: zope.interface` prints `zope-interface==8.0.1`.
/// - pip >= 21.2 (commit "Remove pkg_resources usages from 'pip freeze'"): the name is
///   `dist.raw_name`, the METADATA `Name` (`metadata/base.py`), whatever the backend. The
///   version still depends on the backend `metadata/__init__.py` selects:
///   - pkg_resources (every pip before 22.1; pip >= 22.1 on Python < 3.11, or when
///     `_PIP_USE_IMPORTLIB_METADATA` says so): from the folder name, as above;
///   - importlib.metadata (pip >= 22.1 on Python >= 3.11 by default, always on Python >= 3.14
///     from pip 25.3): the METADATA `Version` up to pip 24.1 (`metadata/importlib/_dists.py`),
///     and from pip 24.2 the text after the first `-` of a `.dist-info` folder name when there
///     is one (`parse_name_and_version_from_info_directory` in `metadata/importlib/_compat.py`).
///
/// Not followed: a Python whose `importlib.metadata` was patched by its distributor with
/// `_PIP_USE_IMPORTLIB_METADATA = False` (no Debian release does this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipReader {
    /// pip < 21.2: name and version from the folder name (pkg_resources' `project_name`).
    PkgResourcesProjectName,
    /// pip >= 21.2 on the pkg_resources backend: METADATA name, version from the folder name.
    PkgResources,
    /// pip 22.1 to 24.1 on the importlib.metadata backend: METADATA name and version.
    Importlib,
    /// pip >= 24.2 on the importlib.metadata backend: METADATA name, version from the
    /// `.dist-info` folder name.
    ImportlibFolderVersion,
}

impl PipReader {
    /// The spelling pyctl records: METADATA's own name and version, whatever pip the tier has.
    pub const RECORDED: PipReader = PipReader::Importlib;

    /// The reader of pip `pip_version` on Python `python` (major, minor); `use_importlib` is
    /// the `_PIP_USE_IMPORTLIB_METADATA` environment variable when set.
    pub fn for_pip(pip_version: &str, python: (u64, u64), use_importlib: Option<&str>) -> Self {
        let Ok(pip) = pip_version.trim().parse::<pep440_rs::Version>() else {
            return PipReader::RECORDED;
        };
        let at_least = |v: &str| pip >= v.parse::<pep440_rs::Version>().expect("a version");
        if !at_least("21.2") {
            return PipReader::PkgResourcesProjectName;
        }
        let importlib = if !at_least("22.1") {
            false
        } else if python >= (3, 14) && at_least("25.3") {
            true
        } else {
            match use_importlib.and_then(strtobool) {
                Some(choice) => choice,
                None => python >= (3, 11),
            }
        };
        match (importlib, at_least("24.2")) {
            (false, _) => PipReader::PkgResources,
            (true, false) => PipReader::Importlib,
            (true, true) => PipReader::ImportlibFolderVersion,
        }
    }

    /// The reader of the venv's own pip (`pip` in `set`, its Python from the site-packages
    /// folder name), without running anything; the recorded spelling when the venv has no pip.
    pub fn of_venv(venv: &Path, set: &PackageSet, use_importlib: Option<&str>) -> Self {
        let python = site_packages_dirs(venv)
            .ok()
            .and_then(|dirs| dirs.iter().find_map(|d| python_of_site_packages(d)));
        match (set.get("pip"), python) {
            (Some(pip), Some(python)) => {
                PipReader::for_pip(&pip.raw_version, python, use_importlib)
            }
            _ => PipReader::RECORDED,
        }
    }

    /// The project name this pip prints for `dist`.
    fn name(self, dist: &Distribution) -> String {
        match self {
            PipReader::PkgResourcesProjectName => dist.folder_project_name(),
            _ => dist.name.clone(),
        }
    }

    /// The version text this pip prints for `dist` (before PEP 440 normalisation).
    fn version(self, dist: &Distribution) -> String {
        let from_folder = match (self, dist.format) {
            (PipReader::Importlib, _) | (_, MetadataFormat::EggInfo) => None,
            (PipReader::ImportlibFolderVersion, MetadataFormat::DistInfo) => dist
                .folder_stem()
                .split_once('-')
                .map(|(_, v)| v.to_string()),
            (_, MetadataFormat::DistInfo) => dist.folder_stem().split('-').nth(1).map(String::from),
        };
        from_folder
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| dist.raw_version.clone())
    }
}

/// Python's `distutils.util.strtobool`, which pip applies to `_PIP_USE_IMPORTLIB_METADATA`;
/// `None` for anything else (pip then ignores the variable).
fn strtobool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "y" | "yes" | "t" | "true" | "on" | "1" => Some(true),
        "n" | "no" | "f" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `.../lib/python3.11/site-packages` → (3, 11).
fn python_of_site_packages(dir: &Path) -> Option<(u64, u64)> {
    let name = dir.parent()?.file_name()?.to_str()?;
    let (major, minor) = name.strip_prefix("python")?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// pkg_resources' `safe_name`: each run of characters other than ASCII letters, digits and `.`
/// becomes one `-`.
fn pkg_resources_safe_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

/// A PEP 610 `direct_url.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdirectory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcs_info: Option<VcsInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_info: Option<ArchiveInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir_info: Option<DirInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcsInfo {
    pub vcs: String,
    pub commit_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    /// The legacy `"<algorithm>=<hex>"` field; pip's freeze prints only this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirInfo {
    #[serde(default)]
    pub editable: bool,
}

impl DirectUrl {
    /// PEP 610 says exactly one of the three info keys is present; anything else is invalid and,
    /// like pip, we then ignore the file.
    fn is_valid(&self) -> bool {
        let infos = [
            self.vcs_info.is_some(),
            self.archive_info.is_some(),
            self.dir_info.is_some(),
        ];
        infos.iter().filter(|x| **x).count() == 1
    }

    fn is_editable(&self) -> bool {
        self.dir_info.as_ref().is_some_and(|d| d.editable)
    }

    /// The PEP 440 direct reference pip's freeze prints (`direct_url_as_pep440_direct_reference`).
    fn as_direct_reference(&self, name: &str) -> String {
        let mut req = format!("{name} @ ");
        let mut fragments = Vec::new();
        if let Some(vcs) = &self.vcs_info {
            req.push_str(&format!("{}+{}@{}", vcs.vcs, self.url, vcs.commit_id));
        } else {
            req.push_str(&self.url);
            if let Some(hash) = self.archive_info.as_ref().and_then(|a| a.hash.as_ref()) {
                fragments.push(hash.clone());
            }
        }
        if let Some(sub) = &self.subdirectory {
            fragments.push(format!("subdirectory={sub}"));
        }
        if !fragments.is_empty() {
            req.push('#');
            req.push_str(&fragments.join("&"));
        }
        req
    }
}

/// How a distribution's metadata is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataFormat {
    DistInfo,
    EggInfo,
}

/// One installed distribution.
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

    /// `name==version`, or `name===version` for a version that is not PEP 440 (pip's
    /// `_format_as_name_version`), in the recorded spelling.
    pub fn name_version(&self) -> String {
        self.name_version_as(PipReader::RECORDED)
    }

    fn name_version_as(&self, reader: PipReader) -> String {
        let name = reader.name(self);
        let raw = reader.version(self);
        let normal = if raw == self.raw_version {
            self.version.clone()
        } else {
            normalize_version(&raw)
        };
        match normal {
            Some(v) => format!("{name}=={v}"),
            None => format!("{name}==={raw}"),
        }
    }

    /// The metadata folder's (or file's) name without its extension: `zope_interface-1.0`.
    fn folder_stem(&self) -> &str {
        let file_name = self
            .metadata_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // `os.path.splitext`: the last `.` that is not leading.
        match file_name.rfind('.') {
            Some(dot) if dot > 0 => &file_name[..dot],
            _ => file_name,
        }
    }

    /// pkg_resources' `project_name` (`Distribution.from_location`): the folder name up to its
    /// first `-`, through `safe_name`; `Unknown` when that is empty.
    fn folder_project_name(&self) -> String {
        let stem = self.folder_stem();
        let name = stem.split('-').next().unwrap_or_default();
        if name.is_empty() {
            return "Unknown".to_string();
        }
        pkg_resources_safe_name(name)
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

    /// The lines `pip freeze` prints for this distribution (comments first), in the recorded
    /// spelling.
    pub fn freeze_lines(&self) -> Vec<String> {
        self.freeze_lines_as(PipReader::RECORDED)
    }

    /// The lines the pip read by `reader` prints for this distribution (comments first).
    pub fn freeze_lines_as(&self, reader: PipReader) -> Vec<String> {
        if self.is_editable() {
            return match self.editable_location() {
                Some(location) => editable_lines(self, reader, &normalize_path(&location)),
                None => vec![self.name_version_as(reader)],
            };
        }
        match &self.direct_url {
            Some(du) => vec![du.as_direct_reference(&reader.name(self))],
            None => vec![self.name_version_as(reader)],
        }
    }
}

/// The editable part of pip's freeze (`_get_editable_info`): a VCS requirement when the project
/// lives in a git checkout with a remote, otherwise the bare location with a comment.
fn editable_lines(dist: &Distribution, reader: PipReader, location: &Path) -> Vec<String> {
    let display = dist.name_version_as(reader);
    let loc = location.display().to_string();
    let Some(repo_root) = find_git_root(location) else {
        return vec![
            format!("# Editable install with no version control ({display})"),
            format!("-e {loc}"),
        ];
    };
    match git_requirement(&repo_root, location, &reader.name(dist)) {
        Some(req) => vec![format!("-e {req}")],
        None => vec![
            format!("# Editable Git install with no remote ({display})"),
            format!("-e {loc}"),
        ],
    }
}

fn find_git_root(location: &Path) -> Option<PathBuf> {
    location
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `git+<remote>@<commit>#egg=<name>[&subdirectory=...]`, as pip's Git backend builds it. Runs
/// git, as pip does: this only happens for editable installs from a git checkout.
fn git_requirement(repo_root: &Path, location: &Path, name: &str) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        // Root runs only the system's git, with the system PATH: never a program a user put
        // earlier on PATH.
        let mut cmd = if nix::unistd::geteuid().is_root() {
            crate::sys::tool::system_tool("git")
        } else {
            Command::new("git")
        };
        let out = cmd.arg("-C").arg(location).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let remotes = git(&["config", "--get-regexp", r"remote\..*\.url"])?;
    let mut urls = remotes.lines().filter_map(|l| l.split_once(' '));
    let first = urls.clone().next()?;
    let url = urls
        .find(|(key, _)| *key == "remote.origin.url")
        .unwrap_or(first)
        .1
        .to_string();
    let url = if url.contains("://") || url.starts_with("file:") {
        url
    } else if Path::new(&url).exists() {
        format!("file://{}", normalize_path(&location.join(&url)).display())
    } else if let Some((user_host, path)) = url.split_once(':') {
        format!("ssh://{user_host}/{path}")
    } else {
        url
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let mut req = format!("git+{url}@{commit}#egg={}", name.replace('-', "_"));
    if let Ok(sub) = location.strip_prefix(repo_root) {
        if !sub.as_os_str().is_empty() {
            req.push_str(&format!("&subdirectory={}", sub.display()));
        }
    }
    Some(req)
}

/// `file:///a%20b` → `/a b`; `None` for anything that is not a local file URL.
pub fn file_url_to_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file://")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    Some(PathBuf::from(decoded.as_ref()))
}

/// `os.path.abspath` without touching the filesystem: drop `.`, fold `..`.
fn normalize_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The distributions of one venv, keyed by canonical name.
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

    /// The set in the recorded spelling (METADATA names and versions), as `pip freeze --all`
    /// of a pip >= 22.1 on Python >= 3.11 prints it: one requirement per line, each line
    /// ending in a newline.
    pub fn freeze(&self) -> String {
        self.freeze_as(PipReader::RECORDED)
    }

    /// The set exactly as `pip freeze --all` of the pip read by `reader` prints it.
    pub fn freeze_as(&self, reader: PipReader) -> String {
        let mut entries: Vec<(String, &Distribution)> = self
            .dists
            .values()
            .map(|d| (reader.name(d).to_lowercase(), d))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for (_, dist) in entries {
            for line in dist.freeze_lines_as(reader) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    /// canonical name → the requirement line that identifies the installed distribution (the
    /// last freeze line: comments dropped).
    pub fn requirement_map(&self) -> BTreeMap<String, String> {
        self.dists
            .iter()
            .map(|(k, d)| (k.clone(), d.freeze_lines().pop().unwrap_or_default()))
            .collect()
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
    let Some(headers) = read_headers(&path.join("METADATA"))? else {
        return Ok(None);
    };
    let direct_url = std::fs::read(path.join("direct_url.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<DirectUrl>(&bytes).ok())
        .filter(DirectUrl::is_valid);
    Ok(make_dist(
        headers,
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
    let Some(headers) = read_headers(&pkg_info)? else {
        return Ok(None);
    };
    Ok(make_dist(
        headers,
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
                let headers = read_headers(&p.join("PKG-INFO")).ok()??;
                return make_dist(headers, &p, MetadataFormat::EggInfo, None, Some(target));
            }
        }
    }
    None
}

struct Headers {
    name: String,
    version: String,
}

/// Reads the `Name` and `Version` headers of an RFC 822 style metadata file, stopping at the
/// first blank line (the body is the long description). Missing file: `None`.
fn read_headers(path: &Path) -> std::io::Result<Option<Headers>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut name = None;
    let mut version = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            if key.eq_ignore_ascii_case("name") && name.is_none() {
                name = Some(value.to_string());
            } else if key.eq_ignore_ascii_case("version") && version.is_none() {
                version = Some(value.to_string());
            }
        }
        if name.is_some() && version.is_some() {
            break;
        }
    }
    Ok(match (name, version) {
        (Some(name), Some(version)) if !name.is_empty() => Some(Headers { name, version }),
        _ => None,
    })
}

fn make_dist(
    headers: Headers,
    metadata_path: &Path,
    format: MetadataFormat,
    direct_url: Option<DirectUrl>,
    egg_link: Option<PathBuf>,
) -> Option<Distribution> {
    let version = normalize_version(&headers.version);
    Some(Distribution {
        canonical: canonical_name(&headers.name),
        name: headers.name,
        raw_version: headers.version,
        version,
        direct_url,
        egg_link,
        metadata_path: metadata_path.to_path_buf(),
        format,
    })
}

/// PEP 440 normal form of a version string, or `None` if it is not a valid version.
pub fn normalize_version(raw: &str) -> Option<String> {
    raw.trim()
        .parse::<pep440_rs::Version>()
        .ok()
        .map(|v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist_in(folder: &str, name: &str, version: &str) -> Distribution {
        let format = if folder.ends_with(".egg-info") {
            MetadataFormat::EggInfo
        } else {
            MetadataFormat::DistInfo
        };
        make_dist(
            Headers {
                name: name.into(),
                version: version.into(),
            },
            &Path::new("/venv/lib/python3.9/site-packages").join(folder),
            format,
            None,
            None,
        )
        .unwrap()
    }

    #[test]
    fn pip_readers_follow_the_pip_and_python_versions() {
        use PipReader::*;
        for (pip, python, env, want) in [
            ("20.3.4", (3, 9), None, PkgResourcesProjectName),
            ("21.1.3", (3, 11), None, PkgResourcesProjectName),
            ("21.2", (3, 11), None, PkgResources),
            ("22.0.4", (3, 11), None, PkgResources),
            ("22.0.4", (3, 11), Some("1"), PkgResources),
            ("22.1", (3, 11), None, Importlib),
            ("23.0.1", (3, 11), None, Importlib),
            ("23.0.1", (3, 9), None, PkgResources),
            ("23.0.1", (3, 9), Some("true"), Importlib),
            ("23.0.1", (3, 11), Some("off"), PkgResources),
            ("23.0.1", (3, 11), Some("maybe"), Importlib),
            ("24.1.2", (3, 12), None, Importlib),
            ("24.2", (3, 12), None, ImportlibFolderVersion),
            ("25.1.1", (3, 13), None, ImportlibFolderVersion),
            ("25.1.1", (3, 13), Some("0"), PkgResources),
            ("25.3", (3, 14), Some("0"), ImportlibFolderVersion),
            ("25.1", (3, 14), Some("0"), PkgResources),
            ("not a version", (3, 11), None, PipReader::RECORDED),
        ] {
            assert_eq!(
                PipReader::for_pip(pip, python, env),
                want,
                "{pip} {python:?} {env:?}"
            );
        }
    }

    #[test]
    fn pip_20_3_spells_names_from_the_folder_through_safe_name() {
        let legacy = PipReader::PkgResourcesProjectName;
        for (folder, metadata_name, want) in [
            (
                "zope_interface-8.0.1.dist-info",
                "zope.interface",
                "zope-interface",
            ),
            (
                "typing_extensions-4.16.0.dist-info",
                "typing_extensions",
                "typing-extensions",
            ),
            (
                "Typing_Extensions-4.16.0.dist-info",
                "typing-extensions",
                "Typing-Extensions",
            ),
            ("ruamel.yaml-0.18.6.dist-info", "ruamel.yaml", "ruamel.yaml"),
            ("a__b..c-1.0.dist-info", "a-b-c", "a-b..c"),
            ("Foo_Bar-1.0-py3.9.egg-info", "foo-bar", "Foo-Bar"),
            ("foo_bar.egg-info", "Foo.Bar", "foo-bar"),
            ("-1.0.dist-info", "odd", "Unknown"),
        ] {
            let d = dist_in(folder, metadata_name, "1.0");
            assert_eq!(legacy.name(&d), want, "{folder}");
            for newer in [
                PipReader::PkgResources,
                PipReader::Importlib,
                PipReader::ImportlibFolderVersion,
            ] {
                assert_eq!(newer.name(&d), metadata_name, "{folder} {newer:?}");
            }
        }
    }

    #[test]
    fn versions_come_from_the_folder_where_pip_takes_them_from_there() {
        let d = dist_in("vmis-1.0.0.dist-info", "vmis", "1.0");
        let line = |r: PipReader| d.freeze_lines_as(r).pop().unwrap();
        assert_eq!(line(PipReader::PkgResourcesProjectName), "vmis==1.0.0");
        assert_eq!(line(PipReader::PkgResources), "vmis==1.0.0");
        assert_eq!(line(PipReader::Importlib), "vmis==1.0");
        assert_eq!(line(PipReader::ImportlibFolderVersion), "vmis==1.0.0");
        // `.egg-info`: pkg_resources reloads the version from PKG-INFO, importlib has none in
        // the folder name.
        let egg = dist_in("vmis-1.0.0-py3.9.egg-info", "vmis", "1.0");
        for r in [
            PipReader::PkgResourcesProjectName,
            PipReader::PkgResources,
            PipReader::Importlib,
            PipReader::ImportlibFolderVersion,
        ] {
            assert_eq!(egg.freeze_lines_as(r), vec!["vmis==1.0"], "{r:?}");
        }
        // A folder with no version: METADATA's.
        let bare = dist_in("vmis.dist-info", "vmis", "2.0");
        assert_eq!(
            bare.freeze_lines_as(PipReader::PkgResources),
            vec!["vmis==2.0"]
        );
    }

    #[test]
    fn freeze_sorts_by_the_name_the_pip_prints() {
        let mut set = PackageSet::default();
        for d in [
            dist_in("zope_interface-1.0.dist-info", "zope.interface", "1.0"),
            dist_in("zope-1.0.dist-info", "zope", "1.0"),
            dist_in("Foo_Bar-2.0.dist-info", "foo-bar", "2.0"),
        ] {
            set.dists.insert(d.canonical.clone(), d);
        }
        assert_eq!(
            set.freeze(),
            "foo-bar==2.0\nzope==1.0\nzope.interface==1.0\n"
        );
        assert_eq!(
            set.freeze_as(PipReader::PkgResourcesProjectName),
            "Foo-Bar==2.0\nzope==1.0\nzope-interface==1.0\n"
        );
    }

    #[test]
    fn requirement_keys_ignore_the_spelling_of_names_only() {
        for (a, b) in [
            ("zope.interface==1.0", "zope-interface==1.0"),
            ("Typing_Extensions==4.16.0", "typing-extensions==4.16.0"),
            (
                "x.y @ file:///w/x_y-1.0-py3-none-any.whl",
                "X_Y @ file:///w/x_y-1.0-py3-none-any.whl",
            ),
            (
                "-e git+https://h/r.git@abc#egg=zope_interface&subdirectory=s",
                "-e git+https://h/r.git@abc#egg=zope.interface&subdirectory=s",
            ),
        ] {
            assert_eq!(requirement_key(a), requirement_key(b));
        }
        for (a, b) in [
            ("zope.interface==1.0", "zope.interface==1.0.0"),
            ("x @ file:///a/X.whl", "x @ file:///a/x.whl"),
            ("-e /src/Foo", "-e /src/foo"),
        ] {
            assert_ne!(requirement_key(a), requirement_key(b));
        }
    }

    #[test]
    fn python_versions_come_from_the_site_packages_folder() {
        assert_eq!(
            python_of_site_packages(Path::new("/v/lib/python3.11/site-packages")),
            Some((3, 11))
        );
        assert_eq!(
            python_of_site_packages(Path::new("/v/lib/pypy/site-packages")),
            None
        );
    }

    #[test]
    fn canonical_names_follow_pep_503() {
        assert_eq!(canonical_name("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(canonical_name("zope.interface"), "zope-interface");
        assert_eq!(canonical_name("A--B"), "a-b");
    }

    #[test]
    fn versions_are_normalised() {
        assert_eq!(
            normalize_version("1.0.0-alpha1").as_deref(),
            Some("1.0.0a1")
        );
        assert_eq!(normalize_version("1.0-post1").as_deref(), Some("1.0.post1"));
        assert_eq!(normalize_version("0!1.0").as_deref(), Some("1.0"));
        assert_eq!(normalize_version("not a version"), None);
    }

    #[test]
    fn direct_reference_matches_pip() {
        let du = DirectUrl {
            url: "https://example.org/x.tar.gz".into(),
            subdirectory: Some("sub".into()),
            vcs_info: None,
            archive_info: Some(ArchiveInfo {
                hash: Some("sha256=abc".into()),
                hashes: None,
            }),
            dir_info: None,
        };
        assert_eq!(
            du.as_direct_reference("x"),
            "x @ https://example.org/x.tar.gz#sha256=abc&subdirectory=sub"
        );
        let vcs = DirectUrl {
            url: "https://example.org/r.git".into(),
            subdirectory: None,
            vcs_info: Some(VcsInfo {
                vcs: "git".into(),
                commit_id: "deadbeef".into(),
                requested_revision: None,
            }),
            archive_info: None,
            dir_info: None,
        };
        assert_eq!(
            vcs.as_direct_reference("r"),
            "r @ git+https://example.org/r.git@deadbeef"
        );
    }

    #[test]
    fn file_urls_decode() {
        assert_eq!(
            file_url_to_path("file:///tmp/a%20b").unwrap(),
            PathBuf::from("/tmp/a b")
        );
        assert!(file_url_to_path("https://x").is_none());
    }
}
