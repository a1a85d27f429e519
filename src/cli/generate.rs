//! Man pages and shell completions, generated from the clap definitions in `cli` so they never
//! drift from the real command line (`pyctl generate man DIR`, `pyctl generate completions DIR`;
//! the packaging script runs both at build time).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::ui::Ui;

/// The completion files, by shell, under the names the distros' completion folders expect.
pub const COMPLETION_FILES: &[(Shell, &str)] = &[
    (Shell::Bash, "pyctl.bash"),
    (Shell::Zsh, "_pyctl"),
    (Shell::Fish, "pyctl.fish"),
];

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create folder", dir.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

/// Renders one man page per visible (sub)command: `pyctl.1`, `pyctl-system.1`,
/// `pyctl-system-init.1`, ... Returns the files written.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    create_dir(dir)?;
    let mut root = Cli::command();
    root.build();
    let mut written = Vec::new();
    render_man(&root, "pyctl", dir, &mut written)?;
    Ok(written)
}

fn render_man(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let page = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .title(name.to_uppercase())
        .section("1")
        .manual("pyctl manual")
        .source(format!("pyctl {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .with_context(|| format!("cannot render the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    write_file(&path, &out)?;
    written.push(path);
    // `build()` adds a `help` subcommand to each level: it gets no page of its own.
    let pages = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help");
    for sub in pages {
        render_man(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

/// Writes bash, zsh and fish completions into `dir`. Returns the files written.
pub fn completions(dir: &Path) -> Result<Vec<PathBuf>> {
    create_dir(dir)?;
    let mut written = Vec::new();
    for (shell, file) in COMPLETION_FILES {
        let mut cmd = Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(*shell, &mut cmd, "pyctl", &mut out);
        let path = dir.join(file);
        write_file(&path, &out)?;
        written.push(path);
    }
    Ok(written)
}

/// `pyctl generate man|completions DIR`.
pub fn run(ui: &Ui, what: crate::cli::GenerateWhat) -> Result<()> {
    let written = match what {
        crate::cli::GenerateWhat::Man { dir } => man_pages(&dir)?,
        crate::cli::GenerateWhat::Completions { dir } => completions(&dir)?,
    };
    for path in &written {
        ui.info(&format!("wrote {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_cover_the_subcommands() {
        let dir = tempfile::tempdir().unwrap();
        let written = man_pages(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for wanted in [
            "pyctl.1",
            "pyctl-system.1",
            "pyctl-system-init.1",
            "pyctl-undo.1",
        ] {
            assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("pyctl-generate")));
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
        let top = std::fs::read_to_string(dir.path().join("pyctl.1")).unwrap();
        assert!(top.contains(".TH PYCTL 1"), "{top}");
    }

    /// The committed `man/` is what `pyctl generate man` writes now: same pages, same bytes.
    /// The packages, the PKGBUILD and the Homebrew formula install from that folder.
    #[test]
    fn committed_man_pages_are_up_to_date() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        let fresh = tempfile::tempdir().unwrap();
        man_pages(fresh.path()).unwrap();
        let pages = |dir: &Path| -> std::collections::BTreeMap<String, Vec<u8>> {
            std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "1"))
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    (name, std::fs::read(&p).unwrap())
                })
                .collect()
        };
        let (want, have) = (pages(fresh.path()), pages(&committed));
        let differ: std::collections::BTreeSet<&String> = want
            .keys()
            .chain(have.keys())
            .filter(|name| want.get(*name) != have.get(*name))
            .collect();
        assert!(
            differ.is_empty(),
            "man/ differs from `pyctl generate man` in {differ:?}; regenerate it with \
             `rm -f man/*.1 && cargo run -q -- generate man man` and commit the result"
        );
    }

    #[test]
    fn completions_for_three_shells() {
        let dir = tempfile::tempdir().unwrap();
        let written = completions(dir.path()).unwrap();
        assert_eq!(written.len(), 3);
        let bash = std::fs::read_to_string(dir.path().join("pyctl.bash")).unwrap();
        assert!(
            bash.contains("complete") && bash.contains("system"),
            "{bash}"
        );
    }
}
