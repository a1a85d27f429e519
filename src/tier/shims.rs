//! The `pip` scripts inside a tier's venv. They are small `/bin/sh` scripts, not symlinks: they
//! exec the pyctl binary that wrote them when it is still there, and the venv's own
//! pip (the current folder kept off its import path) when it is not, so nothing dangles and pip can never write through one into
//! the pyctl binary. pip's self-upgrade rewrites them, so they are checked after every operation.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::sys::fsutil::write_atomic;
use crate::tier::{minor_version, Tier, TierKind};

/// The first line after the shebang, by which a shim is recognised.
const MARKER: &str = "# pyctl shim";

/// The venv-relative paths (`bin/pip`, ...) of the tier's shims: pip's own `bin/pip*` scripts
/// are replaced by them on purpose, so they are not pip's files. Empty without a venv.
pub fn shim_paths(tier: &Tier) -> std::collections::HashSet<String> {
    tier.python_version()
        .map(|v| {
            shim_names(&v)
                .into_iter()
                .map(|n| format!("bin/{n}"))
                .collect()
        })
        .unwrap_or_default()
}

/// The shim file names for a venv of Python `version`: `pip`, `pip3`, `pip3.X`.
pub fn shim_names(version: &str) -> Vec<String> {
    vec![
        "pip".to_string(),
        "pip3".to_string(),
        format!("pip{}", minor_version(version)),
    ]
}

/// Single-quotes a string for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shim for `name` in `venv`. `root_only` (the system tier) makes the fallback run the
/// interpreter isolated (`-I`), as pyctl runs root's pip.
pub fn shim_script(pyctl: &Path, venv: &Path, name: &str, root_only: bool) -> String {
    let pyctl = sh_quote(&pyctl.to_string_lossy());
    let venv_q = sh_quote(&venv.to_string_lossy());
    format!(
        "#!/bin/sh\n\
         {MARKER}: pip for this venv, through pyctl so every change is recorded.\n\
         # Re-made by pyctl after each operation; falls back to the venv's own pip without pyctl.\n\
         venv={venv_q}\n\
         if [ -x {pyctl} ]; then\n    exec {pyctl} __shim \"$venv\" {name} \"$@\"\n\
         fi\n\
         {}\n",
        crate::sys::pip::shim_fallback(root_only)
    )
}

/// Writes or rewrites the shims of a tier's venv. Returns the paths it (re)wrote.
pub fn ensure_shims(tier: &Tier, pyctl: &Path) -> Result<Vec<PathBuf>> {
    let venv = tier.venv();
    let Some(version) = tier.python_version() else {
        return Ok(Vec::new());
    };
    let bin = tier.bin_dir();
    let root_only = tier.kind == TierKind::System;
    let mut written = Vec::new();
    for name in shim_names(&version) {
        let path = bin.join(&name);
        let wanted = shim_script(pyctl, &venv, &name, root_only);
        if std::fs::read_to_string(&path).is_ok_and(|current| current == wanted) {
            continue;
        }
        // A symlink or anything else is replaced, never written through.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
            std::fs::remove_file(&path)
                .with_context(|| format!("{}: cannot replace", path.display()))?;
        }
        write_atomic(&path, wanted.as_bytes())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("{}: cannot make executable", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Whether `path` is a shim written by pyctl.
pub fn is_shim(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .is_ok_and(|t| t.lines().nth(1).is_some_and(|l| l.starts_with(MARKER)))
}

/// Shims that are missing or stale, by path.
pub fn missing_shims(tier: &Tier, pyctl: &Path) -> Vec<PathBuf> {
    let Some(version) = tier.python_version() else {
        return Vec::new();
    };
    shim_names(&version)
        .into_iter()
        .map(|name| (tier.bin_dir().join(&name), name))
        .filter(|(path, name)| {
            std::fs::read_to_string(path)
                .map(|t| t != shim_script(pyctl, &tier.venv(), name, tier.kind == TierKind::System))
                .unwrap_or(true)
        })
        .map(|(path, _)| path)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_odd_paths() {
        let s = shim_script(
            Path::new("/usr/bin/pyctl"),
            Path::new("/h/it's me/venv"),
            "pip",
            false,
        );
        assert!(s.contains(r"venv='/h/it'\''s me/venv'"), "{s}");
        assert!(s.contains("__shim \"$venv\" pip"));
    }

    #[test]
    fn names_include_the_minor_version() {
        assert_eq!(shim_names("3.11.2"), vec!["pip", "pip3", "pip3.11"]);
    }
}
