//! Freeze lines: how `pip freeze` writes a venv's set (the spelling of each pip, see
//! [`PipReader`]; editable and direct-URL lines), and reading such lines back by name.
//!
//! `PackageSet::freeze_as` renders the set exactly as `pip freeze --all` does (pip's
//! `operations/freeze.py`): sorted by the lower-cased project name, `name==version` with the
//! version normalised per PEP 440, `name @ url` for direct-URL installs, and `-e location` with a
//! comment line for editable ones. Which name and version text pip prints depends on the pip
//! (and Python) of the venv: see [`PipReader`]. What pyctl records (history, snapshots, the
//! store) is always the METADATA spelling, `PackageSet::freeze`, and lines are matched by
//! [`requirement_key`](crate::python::names::requirement_key), so a pip upgrade in a tier
//! changes nothing recorded. The freeze methods of `Distribution` and `PackageSet` are here; the
//! types and the scan are in `inventory`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::python::inventory::{site_packages_dirs, Distribution, MetadataFormat, PackageSet};
use crate::python::names::{canonical_name, normalize_version};
use crate::sys::fsutil::normalize_path;

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
            PipReader::PkgResourcesProjectName => folder_project_name(dist),
            _ => dist.name.clone(),
        }
    }

    /// The version text this pip prints for `dist` (before PEP 440 normalisation).
    fn version(self, dist: &Distribution) -> String {
        let from_folder = match (self, dist.format) {
            (PipReader::Importlib, _) | (_, MetadataFormat::EggInfo) => None,
            (PipReader::ImportlibFolderVersion, MetadataFormat::DistInfo) => folder_stem(dist)
                .split_once('-')
                .map(|(_, v)| v.to_string()),
            (_, MetadataFormat::DistInfo) => folder_stem(dist).split('-').nth(1).map(String::from),
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

impl Distribution {
    /// `name==version`, or `name===version` for a version that is not PEP 440 (pip's
    /// `_format_as_name_version`), in the recorded spelling.
    pub fn name_version(&self) -> String {
        self.name_version_as(PipReader::RECORDED)
    }

    /// `name_version` in the spelling of the pip read by `reader`.
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

/// The metadata folder's (or file's) name without its extension: `zope_interface-1.0`.
fn folder_stem(dist: &Distribution) -> &str {
    let file_name = dist
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
fn folder_project_name(dist: &Distribution) -> String {
    let stem = folder_stem(dist);
    let name = stem.split('-').next().unwrap_or_default();
    if name.is_empty() {
        return "Unknown".to_string();
    }
    pkg_resources_safe_name(name)
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

/// The nearest folder at or above `location` that holds a `.git`.
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

impl PackageSet {
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

/// An editable line's comment (`# Editable ... (name==1.0)`) names its project; a bare
/// `-e /path` line does not, so the comment's name is carried to the next line.
pub fn freeze_map(freeze: &str) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    let mut named_by_comment = None;
    for line in freeze.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            named_by_comment = line
                .rfind('(')
                .and_then(|start| line[start + 1..].split(')').next())
                .filter(|inner| inner.contains("=="))
                .map(requirement_name);
            continue;
        }
        let name = match named_by_comment.take() {
            Some(name) if line.starts_with("-e ") => name,
            _ => requirement_name(line),
        };
        map.insert(name, line.to_string());
    }
    map
}

/// The canonical project name a freeze line is about.
pub fn requirement_name(line: &str) -> String {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("-e ") {
        if let Some((_, egg)) = rest.split_once("#egg=") {
            let egg = egg.split('&').next().unwrap_or(egg);
            return canonical_name(egg);
        }
        let base = Path::new(rest.trim())
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        return canonical_name(&base);
    }
    let end = line
        .find(['=', ' ', '@', '<', '>', '!', '~', ';', '['])
        .unwrap_or(line.len());
    canonical_name(&line[..end])
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
        Distribution {
            name: name.into(),
            canonical: canonical_name(name),
            raw_version: version.into(),
            version: normalize_version(version),
            direct_url: None,
            egg_link: None,
            metadata_path: Path::new("/venv/lib/python3.9/site-packages").join(folder),
            format,
        }
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
}
