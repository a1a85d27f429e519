//! Which store entry each distribution of a venv is. A version can be in the store more than
//! once (installed by name, with `REQUESTED`, and as a dependency, without), and the history
//! records which copy each state had, so that going back to a state takes that copy and no
//! other.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use super::Store;
use crate::python::inventory::{MetadataFormat, PackageSet};

impl Store {
    /// Canonical name → entry folder name, for each distribution of `set` (scanned in the venv
    /// at `venv`) the store holds: the entry whose `RECORD` is the venv's (the same inode,
    /// as a link or a keep leaves it), or else whose content key is the venv's RECORD hash
    /// (stores that copy). Distributions the store does not hold are left out.
    pub fn entries_of(&self, venv: &Path, set: &PackageSet) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        // One listing for the whole set.
        let Ok(by_prefix) = self.names_by_prefix() else {
            return out;
        };
        for dist in set.dists.values() {
            if dist.format != MetadataFormat::DistInfo {
                continue;
            }
            let Some(names) = by_prefix.get(&Self::entry_prefix(dist)) else {
                continue;
            };
            let Ok(rel) = dist.metadata_path.strip_prefix(venv) else {
                continue;
            };
            let record = dist.metadata_path.join("RECORD");
            let Ok(here) = std::fs::symlink_metadata(&record) else {
                continue;
            };
            let same_inode = names.iter().find(|name| {
                let stored = self.dir.join(name).join("files").join(rel).join("RECORD");
                std::fs::symlink_metadata(stored)
                    .is_ok_and(|m| m.dev() == here.dev() && m.ino() == here.ino())
            });
            let found = same_inode.cloned().or_else(|| {
                let bytes = std::fs::read(&record).ok()?;
                let name = Self::entry_name(dist, &bytes);
                names.contains(&name).then_some(name)
            });
            if let Some(name) = found {
                out.insert(dist.canonical.clone(), name);
            }
        }
        out
    }

    /// The store's entry folder names by their `<name>-<version>` prefix, from one listing.
    pub(super) fn names_by_prefix(&self) -> std::io::Result<HashMap<String, Vec<String>>> {
        let mut by_prefix: HashMap<String, Vec<String>> = HashMap::new();
        for item in std::fs::read_dir(&self.dir)?.filter_map(Result::ok) {
            let name = item.file_name().to_string_lossy().into_owned();
            if let Some((prefix, _)) = name.rsplit_once('-').filter(|_| !name.starts_with('.')) {
                by_prefix.entry(prefix.to_string()).or_default().push(name);
            }
        }
        Ok(by_prefix)
    }
}
