//! What the fuzz targets share: a scratch folder that lives as long as the fuzzing process, laid
//! out as the parts of a tier the target writes its input into.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();

/// The process's scratch folder (removed when the process ends normally).
pub fn scratch() -> &'static Path {
    SCRATCH
        .get_or_init(|| tempfile::tempdir().expect("a scratch folder for the fuzz target"))
        .path()
}

/// `scratch()/rel`, with its parent folders made.
pub fn scratch_path(rel: &str) -> PathBuf {
    let path = scratch().join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("a folder in the scratch folder");
    }
    path
}

/// Writes `bytes` to `path`; the scratch folder is the fuzzer's own, so failing here is a bug in
/// the harness, not a finding.
pub fn put(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("writing the input into the scratch folder");
}

/// Four whole history records, entries 1 to 4: the fuzzed file is always entry 5's, so a bad
/// file must never hide a good one.
pub const HISTORY: [&str; 4] = [
    r#"{"schema": 1, "id": 1, "kind": "init", "timestamp": "2026-01-01T00:00:00Z", "user": "a", "uid": 1000, "command": "pyctl init", "pip_args": [], "python": "3.11.2", "venv": "/v", "freeze": "pip==23.0.1\n"}"#,
    r#"{"schema": 1, "id": 2, "kind": "pip", "timestamp": "2026-01-01T00:00:01Z", "user": "a", "uid": 1000, "command": "pip install alpha", "pip_args": ["install", "alpha"], "python": "3.11.2", "venv": "/v", "freeze": "alpha==1.0\npip==23.0.1\n", "changes": {"added": ["alpha==1.0"], "removed": [], "modified": []}, "exit_code": 0}"#,
    r#"{"schema": 1, "id": 3, "kind": "undo", "timestamp": "2026-01-01T00:00:02Z", "user": "a", "uid": 1000, "command": "pyctl undo", "pip_args": [], "reverts": [2], "reapplies": [], "python": "3.11.2", "venv": "/v", "freeze": "pip==23.0.1\n", "target": "pip==23.0.1\n"}"#,
    r#"{"schema": 1, "id": 4, "kind": "redo", "timestamp": "2026-01-01T00:00:03Z", "user": "a", "uid": 1000, "command": "pyctl redo", "pip_args": [], "reverts": [3], "python": "3.11.2", "venv": "/v", "freeze": "alpha==1.0\npip==23.0.1\n", "changes": {"added": ["alpha==1.0"], "removed": [], "modified": []}, "exit_code": 0}"#,
];
