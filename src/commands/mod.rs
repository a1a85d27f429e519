//! The `pyctl` subcommands: each takes the context and a checked request, does the work, and
//! prints through `ui`.

pub mod config;
pub mod conflicts;
pub mod diff;
pub mod doctor;
pub mod export;
pub mod freeze;
pub mod history;
pub mod hooks;
pub mod info;
pub mod init;
pub mod search;
pub mod shared;
pub mod status;
pub mod system;
pub mod uninstall;
pub mod wrapper;

use anyhow::Result;

use crate::cli::{Cli, Command, HookManager, SelfCommand, SystemCommand};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::undo;
use crate::tier;
use crate::ui::Ui;

/// Runs a subcommand; `config` is the tier's configuration when it could be read.
pub fn dispatch(
    ctx: &Context,
    cli: Cli,
    config: Option<&crate::tier::config::Config>,
) -> Result<ExitCode> {
    let config_color = config.is_none_or(|c| c.ui.color);
    let mut ui = Ui::new(cli.color, ctx.no_color(), config_color, cli.quiet);
    ui.json = cli.json;
    let json = cli.json;
    if touches_tier(&cli.command) {
        if let Ok(tier) = tier::current(ctx) {
            crate::ops::rebuild::on_use(ctx, &ui, &tier)?;
        }
    }
    match cli.command {
        Command::Init {
            python,
            no_modify_path,
        } => init::run(ctx, &ui, python, no_modify_path),
        Command::Status => status::run(ctx, &ui, json),
        Command::History { limit } => history::run(ctx, &ui, limit, json),
        Command::Diff { id } => diff::run(ctx, &ui, id, json),
        Command::Undo { steps, to, dry_run } => undo::undo(ctx, &ui, steps, to, dry_run),
        Command::Redo { dry_run } => undo::redo(ctx, &ui, dry_run),
        Command::Snapshot { name, force } => {
            crate::ops::snapshots::snapshot_cmd(ctx, &ui, &name, force)
        }
        Command::Restore { name, dry_run } => {
            crate::ops::snapshots::restore(ctx, &ui, &name, dry_run)
        }
        Command::ListSnapshots => crate::ops::snapshots::list_snapshots(ctx, &ui),
        Command::DeleteSnapshot { name } => crate::ops::snapshots::delete_snapshot(ctx, &ui, &name),
        Command::Clean {
            keep_baseline,
            dry_run,
        } => crate::ops::clean::clean(ctx, &ui, keep_baseline, dry_run),
        Command::Gc => crate::ops::clean::gc(ctx, &ui),
        Command::Doctor { fix } => crate::commands::doctor::run(ctx, &ui, fix),
        Command::Hook { manager } => match manager {
            HookManager::Apt => crate::commands::hooks::apt(ctx, &ui),
            HookManager::Dnf { packages } => {
                crate::commands::hooks::dnf(ctx, &ui, &packages, false)
            }
            HookManager::Dnf5 { packages } => {
                crate::commands::hooks::dnf(ctx, &ui, &packages, true)
            }
            HookManager::Pacman => crate::commands::hooks::pacman(ctx, &ui),
            HookManager::Rebuild => crate::ops::rebuild::hook(ctx, &ui),
        },
        Command::Freeze { path } => freeze::run(ctx, &ui, path),
        Command::Config { key, value } => config::run(ctx, &ui, key, value, json),
        Command::Export { requested, output } => {
            crate::commands::export::run(ctx, &ui, requested, output.as_deref())
        }
        Command::Info { package, offline } => {
            crate::commands::info::run(ctx, &ui, &package, offline, json)
        }
        Command::Search {
            term,
            limit,
            refresh,
        } => crate::commands::search::run(
            ctx,
            &ui,
            &tier::current(ctx)?,
            &term,
            usize::try_from(limit).unwrap_or(usize::MAX),
            refresh,
            json,
        ),
        Command::Migrate {
            dry_run,
            find_links,
        } => crate::ops::migrate::run(ctx, &ui, dry_run, find_links),
        Command::System { command } => match command {
            SystemCommand::Init { python } => crate::commands::system::init(ctx, &ui, python),
            SystemCommand::Status => crate::commands::system::status(ctx, &ui, json),
        },
        Command::Generate { what } => {
            crate::cli::generate::run(&ui, what).map(|()| ExitCode::Success)
        }
        Command::SelfCmd {
            command: SelfCommand::Uninstall,
        } => uninstall::run(ctx, &ui),
    }
}

/// Commands that work on the caller's tier: a tier whose Python changed is rebuilt first
/// (`crate::ops::rebuild`). `doctor` does not: it reports the change, and `doctor --fix` repairs it as one of its fixes.
fn touches_tier(command: &Command) -> bool {
    !matches!(
        command,
        Command::Init { .. }
            | Command::Doctor { .. }
            | Command::Hook { .. }
            | Command::System { .. }
            | Command::Generate { .. }
            | Command::SelfCmd { .. }
            | Command::Config { .. }
            | Command::Freeze { path: Some(_) }
    )
}
