//! A venv's whole tree (path, mode, size, content), and the differences between two: what the
//! tests that check files, not names, compare.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Path → (mode, size, sha256 of the content or the link target).
pub type Tree = BTreeMap<String, (u32, u64, String)>;

pub fn tree(venv: &Path) -> Tree {
    let mut out = Tree::new();
    for e in walkdir::WalkDir::new(venv).min_depth(1) {
        let e = e.unwrap();
        let meta = e.path().symlink_metadata().unwrap();
        let what = if meta.is_file() {
            format!("{:x}", Sha256::digest(std::fs::read(e.path()).unwrap()))
        } else if meta.file_type().is_symlink() {
            std::fs::read_link(e.path()).unwrap().display().to_string()
        } else {
            String::new()
        };
        let size = if meta.is_dir() { 0 } else { meta.len() };
        let rel = e.path().strip_prefix(venv).unwrap().display().to_string();
        out.insert(rel, (meta.permissions().mode(), size, what));
    }
    out
}

/// What `got` lacks, has other, or has more than `want`, one line each.
pub fn differences(want: &Tree, got: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (path, node) in want {
        match got.get(path) {
            None => out.push(format!("missing: {path}")),
            Some(n) if n != node => out.push(format!("differs: {path}: {node:?} -> {n:?}")),
            _ => {}
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("extra: {path}"));
    }
    out
}
