//! What the fuzz targets share: the checks (also run by tests/reliability/main.rs) and a scratch
//! folder that lives as long as the fuzzing process.

pub mod checks;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();

/// `<the process's scratch folder>/rel` (the folder is removed when the process ends normally).
pub fn scratch(rel: &str) -> PathBuf {
    let top: &Path = SCRATCH
        .get_or_init(|| tempfile::tempdir().expect("a scratch folder for the fuzz target"))
        .path();
    top.join(rel)
}
