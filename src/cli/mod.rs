//! The `pyctl` command line (clap derive), turned into a checked request before any work.

pub mod generate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::ui::ColorChoice;

#[derive(Debug, Parser)]
#[command(
    name = "pyctl",
    version,
    about = "Two-tier Python packages: plain `pip install` goes to your own venv, and every change \
             is recorded",
    long_about = None,
    arg_required_else_help = true,
    propagate_version = true
)]
pub struct Cli {
    /// When to use colour.
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// More diagnostics on stderr (-v, -vv); PYCTL_LOG takes env_logger filters too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors and what was asked for.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print listings and plans as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Work on the tier of this Python version (`py3X/` under your tier folder) instead of the
    /// default interpreter's: `pyctl --python 3.12 history`.
    #[arg(long, value_name = "3.X", value_parser = parse_python_version)]
    pub python: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create your tier (root: the system tier is made with `pyctl system init`).
    Init {
        /// The interpreter to build the venv with (default: /usr/bin/python3).
        #[arg(long, value_name = "PATH")]
        python: Option<PathBuf>,
        /// Do not add the venv's bin folder to PATH in shell start-up files.
        #[arg(long)]
        no_modify_path: bool,
    },
    /// Show the tier: where it is, its Python, its packages, the last operation, problems.
    Status,
    /// List recorded operations, newest first.
    History {
        /// Show at most this many entries.
        #[arg(long, short = 'n', value_name = "N")]
        limit: Option<usize>,
    },
    /// Show what an operation changed (default: the latest).
    Diff {
        /// The entry id, as `pyctl history` shows it (`42` or `#42`).
        #[arg(value_name = "ID", value_parser = parse_entry_id)]
        id: Option<u64>,
    },
    /// Print the installed set exactly as `pip freeze --all` would, without running pip.
    Freeze {
        /// Read this venv instead of your tier.
        #[arg(long, value_name = "VENV")]
        path: Option<PathBuf>,
    },
    /// Show the effective configuration and where each value comes from; show or set one key.
    #[command(after_help = "Keys: history.max_entries, history.auto_snapshot, \
                            history.show_diff_after_install, snapshots.auto_baseline, ui.color, \
                            ui.verbose, venv.inherit_system_packages, store.link_mode, \
                            hooks.on_conflict. A bare name works when unique: \
                            `pyctl config max_entries 50`.")]
    Config {
        /// The key, `section.name` or a unique bare `name`.
        #[arg(value_name = "KEY")]
        key: Option<String>,
        /// The new value, written to the tier's config.toml.
        #[arg(value_name = "VALUE", requires = "key", allow_negative_numbers = true)]
        value: Option<String>,
    },
    /// Print the installed set as requirements (as `pyctl freeze`), or only what you asked for.
    Export {
        /// Only the packages named in recorded `pip install` commands (not later uninstalled,
        /// still installed), pinned to the installed versions.
        #[arg(long)]
        requested: bool,
        /// Write to FILE (atomically) instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show an installed package: version, files, requirements, which operation brought it in,
    /// and the latest version on the index.
    Info {
        #[arg(value_name = "PACKAGE")]
        package: String,
        /// Do not ask the index for the latest version.
        #[arg(long)]
        offline: bool,
    },
    /// Search the index's project names (pip's index URL; the list is cached in the tier for a
    /// day): exact, prefix, substring and close matches, marking what is installed.
    Search {
        #[arg(value_name = "TERM")]
        term: String,
        /// Show at most this many results.
        #[arg(long, short = 'n', value_name = "N", default_value_t = 20,
              value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Fetch the project list again even when the cached one is fresh.
        #[arg(long)]
        refresh: bool,
    },
    /// Move what `pip install --user` put in ~/.local into the tier: installed there at the same
    /// versions (recorded: `pyctl undo` takes them out of the tier again), then removed from the
    /// user site.
    Migrate {
        /// Show what would move and stop.
        #[arg(long)]
        dry_run: bool,
        /// A folder of wheels pip may install from, besides the index.
        #[arg(long, value_name = "DIR")]
        find_links: Option<PathBuf>,
    },
    /// Return the venv to the state before the last N operations not yet undone.
    Undo {
        /// How many operations to undo.
        #[arg(value_name = "N", default_value_t = 1, conflicts_with = "to")]
        steps: usize,
        /// Go to the state right after entry ID instead.
        #[arg(long, value_name = "ID", value_parser = parse_entry_id)]
        to: Option<u64>,
        /// Show the plan and stop.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert the latest undo.
    Redo {
        #[arg(long)]
        dry_run: bool,
    },
    /// Save the installed set as a named snapshot (a requirements file).
    Snapshot {
        #[arg(value_name = "NAME")]
        name: String,
        /// Replace an existing snapshot of that name.
        #[arg(long)]
        force: bool,
    },
    /// Make the venv exactly a snapshot's set.
    Restore {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// List snapshots: name, date, package count.
    ListSnapshots,
    /// Delete a snapshot.
    DeleteSnapshot {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Recreate the venv (recorded: `pyctl undo` brings everything back).
    Clean {
        /// Restore the `baseline` snapshot into the new venv.
        #[arg(long)]
        keep_baseline: bool,
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove store entries that no history entry or snapshot refers to.
    Gc,
    /// Check the tier's health: interpreter, shims, PATH, history, dependencies, store, modes.
    Doctor {
        /// Repair what pyctl can repair itself.
        #[arg(long)]
        fix: bool,
    },
    /// Package-manager hooks (run by apt, dnf and pacman, not by people).
    Hook {
        #[command(subcommand)]
        manager: HookManager,
    },
    /// The root-only system tier (/opt/system-python): set it up, repair it, show it.
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Write man pages or shell completions generated from these definitions (for packagers).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: GenerateWhat,
    },
    /// Manage pyctl itself.
    #[command(name = "self")]
    SelfCmd {
        #[command(subcommand)]
        command: SelfCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum HookManager {
    /// apt's DPkg::Pre-Install-Pkgs hook (protocol version 3 on standard input).
    Apt,
    /// dnf 4's post-transaction action, with the package names.
    Dnf {
        #[arg(value_name = "PACKAGE", allow_hyphen_values = true)]
        packages: Vec<String>,
    },
    /// dnf 5's post_transaction action, with the package names (messages also as
    /// `log.WARNING=` lines on standard output, which dnf 5 reads).
    Dnf5 {
        #[arg(value_name = "PACKAGE", allow_hyphen_values = true)]
        packages: Vec<String>,
    },
    /// pacman's hook, with the target names on standard input.
    Pacman,
    /// After a transaction that may have changed the Python (apt's DPkg::Post-Invoke, dnf's and
    /// pacman's hooks on the python3 package): rebuild the system tier on the new Python. Never
    /// fails; a Python not complete yet is tried again at the next run or use.
    Rebuild,
}

#[derive(Debug, Subcommand)]
pub enum SelfCommand {
    /// Remove the PATH lines `pyctl init` added to shell start-up files (tiers are kept).
    Uninstall,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Create or repair the system tier (root only): venv, shims, history, baseline, owner and
    /// modes. Safe to run again.
    Init {
        /// The interpreter to build the venv with (default: /usr/bin/python3).
        #[arg(long, value_name = "PATH")]
        python: Option<PathBuf>,
    },
    /// Show the system tier and any problem with it (root only); exits 1 when something is
    /// wrong.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum GenerateWhat {
    /// Man pages: pyctl.1 and one pyctl-COMMAND.1 per subcommand.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Completions for bash (pyctl.bash), zsh (_pyctl) and fish (pyctl.fish).
    Completions {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `3.12`: a Python 3 minor version.
pub fn parse_python_version(s: &str) -> Result<String, String> {
    match s.split_once('.') {
        Some(("3", minor)) if minor.len() <= 3 && minor.bytes().all(|b| b.is_ascii_digit()) => {
            match minor.parse::<u32>() {
                Ok(n) => Ok(format!("3.{n}")),
                Err(_) => Err(format!(
                    "{s:?} is not a Python version: give it as 3.X, e.g. 3.12"
                )),
            }
        }
        _ => Err(format!(
            "{s:?} is not a Python version: give it as 3.X, e.g. 3.12"
        )),
    }
}

/// `42` or `#42`.
fn parse_entry_id(s: &str) -> Result<u64, String> {
    let digits = s.strip_prefix('#').unwrap_or(s);
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!("{s:?} is not an entry id (a positive number, as `pyctl history` shows)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn python_versions_are_three_dot_minor() {
        assert_eq!(parse_python_version("3.12").as_deref(), Ok("3.12"));
        assert!(parse_python_version("3").is_err());
        assert!(parse_python_version("2.7").is_err());
        assert!(parse_python_version("3.x").is_err());
        assert!(parse_python_version("/usr/bin/python3").is_err());
    }

    #[test]
    fn entry_ids_accept_hash_prefix() {
        assert_eq!(parse_entry_id("#42"), Ok(42));
        assert!(parse_entry_id("0").is_err());
        assert!(parse_entry_id("x").is_err());
    }
}
