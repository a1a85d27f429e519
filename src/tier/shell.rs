//! Putting the user tier's `venv/bin` first on PATH for source and `cargo install` builds, as
//! rustup does: one marked block in the shell start-up files, added once, removed cleanly by
//! `pyctl self uninstall`. Distro packages ship `/etc/profile.d/pyctl.sh` instead.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::sys::fsutil::write_atomic;
use crate::tier::Tier;
use crate::ui::Ui;

/// The system-wide snippet the distro packages install; when present, no rc file is touched.
pub const PROFILE_SNIPPET: &str = "/etc/profile.d/pyctl.sh";

const BEGIN: &str = "# >>> pyctl >>>";
const END: &str = "# <<< pyctl <<<";

/// `dir` as a shell word: `"$HOME"'/rest'` when it is under `home` (so the block survives a
/// renamed home), else the whole path single-quoted. `quote` is the shell's single-quoting:
/// nothing of the path is ever expanded or run, whatever characters it holds.
fn shell_word(home: &Path, dir: &Path, quote: fn(&str) -> String) -> String {
    match dir.strip_prefix(home) {
        Ok(rel) => format!("\"$HOME\"{}", quote(&format!("/{}", rel.display()))),
        Err(_) => quote(&dir.display().to_string()),
    }
}

/// Single quotes for sh, bash and zsh: `'` becomes `'\''`.
fn posix_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Single quotes for fish, where `\\` and `\'` are the only escapes inside them.
fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

fn posix_block(home: &Path, bin: &Path) -> String {
    let p = shell_word(home, bin, posix_quote);
    format!(
        "{BEGIN}\n# Added by `pyctl init`; `pyctl self uninstall` removes it.\n\
         pyctl_bin={p}\n\
         case \":$PATH:\" in\n    *\":$pyctl_bin:\"*) ;;\n    *) export PATH=\"$pyctl_bin:$PATH\" ;;\nesac\n\
         unset pyctl_bin\n{END}\n"
    )
}

fn fish_block(home: &Path, bin: &Path) -> String {
    let p = shell_word(home, bin, fish_quote);
    format!(
        "{BEGIN}\n# Added by `pyctl init`; `pyctl self uninstall` removes it.\n\
         if not contains -- {p} $PATH\n    set -gx PATH {p} $PATH\nend\n{END}\n"
    )
}

/// The start-up files pyctl edits: `~/.profile` always, `~/.bashrc` and `~/.zshrc` when they
/// exist, fish's `conf.d/pyctl.fish` when fish's config folder exists.
fn targets(home: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = vec![(home.join(".profile"), false)];
    for rc in [".bashrc", ".zshrc"] {
        let p = home.join(rc);
        if p.exists() {
            out.push((p, false));
        }
    }
    let fish = home.join(".config/fish");
    if fish.is_dir() {
        out.push((fish.join("conf.d/pyctl.fish"), true));
    }
    out
}

/// Adds the PATH block where missing. Returns the files changed.
pub fn add_path_blocks(home: &Path, bin: &Path) -> Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    for (file, is_fish) in targets(home) {
        let current = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", file.display())),
        };
        if current.contains(BEGIN) {
            continue;
        }
        let block = if is_fish {
            fish_block(home, bin)
        } else {
            posix_block(home, bin)
        };
        let mut text = current;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&block);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        write_atomic(&file, text.as_bytes())?;
        changed.push(file);
    }
    Ok(changed)
}

/// Removes the PATH blocks. Returns the files changed.
pub fn remove_path_blocks(home: &Path) -> Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    for (file, is_fish) in targets(home) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Some(start) = text.find(BEGIN) else {
            continue;
        };
        let Some(end_rel) = text[start..].find(END) else {
            continue;
        };
        let mut end = start + end_rel + END.len();
        if text[end..].starts_with('\n') {
            end += 1;
        }
        let rest = format!("{}{}", &text[..start], &text[end..]);
        if is_fish && rest.trim().is_empty() {
            std::fs::remove_file(&file)
                .with_context(|| format!("{}: cannot remove", file.display()))?;
        } else {
            write_atomic(&file, rest.as_bytes())?;
        }
        changed.push(file);
    }
    Ok(changed)
}

/// Puts the tier's `venv/bin` on PATH through shell start-up files, unless the distro's
/// profile.d snippet already does or `PYCTL_NO_MODIFY_PATH` is set.
pub fn setup_path(ctx: &Context, ui: &Ui, tier: &Tier) -> Result<()> {
    if std::path::Path::new(PROFILE_SNIPPET).exists() || ctx.var("PYCTL_NO_MODIFY_PATH").is_some() {
        return Ok(());
    }
    let Some(home) = &ctx.home else {
        return Ok(());
    };
    let changed = add_path_blocks(home, &tier.bin_dir())?;
    if !changed.is_empty() {
        let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
        ui.info(&format!(
            "added {} to PATH in {}; open a new shell (or `. ~/.profile`) to use it",
            tier.bin_dir().display(),
            names.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_is_idempotent_and_remove_restores() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        std::fs::write(h.join(".bashrc"), "alias ll='ls -l'").unwrap();
        let bin = h.join(".local/python-packages/venv/bin");
        assert_eq!(add_path_blocks(h, &bin).unwrap().len(), 2);
        assert!(add_path_blocks(h, &bin).unwrap().is_empty());
        let rc = std::fs::read_to_string(h.join(".bashrc")).unwrap();
        assert!(
            rc.contains("\"$HOME\"'/.local/python-packages/venv/bin'"),
            "{rc}"
        );
        remove_path_blocks(h).unwrap();
        assert_eq!(
            std::fs::read_to_string(h.join(".bashrc")).unwrap(),
            "alias ll='ls -l'\n"
        );
    }

    #[test]
    fn odd_paths_are_quoted_for_each_shell() {
        let home = Path::new("/home/u");
        let bin = Path::new("/home/u/it's \\ $(touch x) `y` \"z\"/venv/bin");
        let posix = posix_block(home, bin);
        assert!(
            posix.contains(r#"pyctl_bin="$HOME"'/it'\''s \ $(touch x) `y` "z"/venv/bin'"#),
            "{posix}"
        );
        let fish = fish_block(home, bin);
        assert!(
            fish.contains(r#""$HOME"'/it\'s \\ $(touch x) `y` "z"/venv/bin'"#),
            "{fish}"
        );
        let outside = posix_block(home, Path::new("/opt/a'b/bin"));
        assert!(
            outside.contains(r"pyctl_bin='/opt/a'\''b/bin'"),
            "{outside}"
        );
    }
}
