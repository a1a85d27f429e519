//! `store/.sizes.json`: per entry, the bytes of its files and one of them to sample, so the
//! figure `pyctl status` shows (what the store holds that the venv no longer links to) costs one
//! `stat` per entry instead of a walk of every stored file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{read_entry, Store, StoreEntry};
use crate::sys::fsutil::write_atomic;

pub(super) const SIZES_FILE: &str = ".sizes.json";
const SIZES_SCHEMA: u32 = 1;

/// `store/.sizes.json`: entry folder name → its size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Sizes {
    schema: u32,
    entries: BTreeMap<String, EntrySize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct EntrySize {
    /// Bytes of the regular files under `files/`.
    bytes: u64,
    /// A file under the entry folder (its `.dist-info/METADATA`) whose link count says whether
    /// the venv still holds the entry's files: pip replaces or removes a distribution's files
    /// all together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sample: Option<String>,
}

impl Store {
    /// Bytes of stored distribution files no venv file shares (hard-link count 1; the store's
    /// own `entry.json` files aside).
    ///
    /// An entry whose sample file has one link left counts whole; an entry `.sizes.json` does
    /// not know yet (made by an older pyctl, or by an operation running now) is walked.
    pub fn extra_bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let sizes = self.read_sizes();
        self.entry_names()
            .iter()
            .map(|name| {
                let dir = self.dir.join(name);
                let known = sizes.entries.get(name);
                match known.and_then(|k| Some((k.bytes, k.sample.as_ref()?))) {
                    Some((bytes, sample)) => match std::fs::symlink_metadata(dir.join(sample)) {
                        Ok(m) if m.nlink() > 1 => 0,
                        Ok(_) => bytes,
                        Err(_) => unlinked_bytes(&dir.join("files")),
                    },
                    None => unlinked_bytes(&dir.join("files")),
                }
            })
            .sum()
    }

    /// The entry folders' names (temp folders and the sizes file aside).
    fn entry_names(&self) -> Vec<String> {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        read.filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    /// `.sizes.json`, or nothing known when it is missing, unreadable or of another schema.
    fn read_sizes(&self) -> Sizes {
        std::fs::read(self.dir.join(SIZES_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<Sizes>(&b).ok())
            .filter(|s| s.schema == SIZES_SCHEMA)
            .unwrap_or_default()
    }

    /// Brings `.sizes.json` in line with the entries present: measures the entries it lacks
    /// (a walk of those only) and drops the ones gone. Written only when something changed;
    /// called under the tier lock.
    pub fn update_sizes(&self) -> Result<()> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        let old = self.read_sizes();
        let mut sizes = Sizes {
            schema: SIZES_SCHEMA,
            entries: BTreeMap::new(),
        };
        for name in self.entry_names() {
            let size = match old.entries.get(&name) {
                Some(known) => known.clone(),
                None => {
                    let dir = self.dir.join(&name);
                    let Some(entry) = read_entry(&dir) else {
                        continue;
                    };
                    measure_entry(&dir, &entry)
                }
            };
            sizes.entries.insert(name, size);
        }
        if sizes != old {
            write_atomic(&self.dir.join(SIZES_FILE), &serde_json::to_vec(&sizes)?)?;
        }
        Ok(())
    }
}

/// The bytes of an entry's files, and its `.dist-info/METADATA` as the sample.
fn measure_entry(dir: &Path, entry: &StoreEntry) -> EntrySize {
    use std::os::unix::fs::MetadataExt;
    let bytes = walkdir::WalkDir::new(dir.join("files"))
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.size())
        .sum();
    let sample = format!("files/{}/METADATA", entry.dist_info);
    let sample = std::fs::symlink_metadata(dir.join(&sample))
        .is_ok_and(|m| m.is_file())
        .then_some(sample);
    EntrySize { bytes, sample }
}

/// Bytes of the files under `dir` that nothing else links to.
pub(super) fn unlinked_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file() && m.nlink() == 1)
        .map(|m| m.len())
        .sum()
}
