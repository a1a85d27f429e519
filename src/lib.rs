//! pyctl: a two-tier Python package setup. Plain `pip install` goes to a per-user venv
//! (`~/.local/python-packages/venv`), root's to a root-only system venv
//! (`/opt/system-python/venv`), and every change is recorded so it can be seen and undone.
//!
//! One binary: named `pip`, `pip3` or `pip3.X` it is the pip wrapper (`wrapper`); otherwise it
//! is the `pyctl` command (`cli`, `commands`).

pub mod cli;
pub mod commands;
pub mod context;
pub mod exit_codes;
mod layers;
pub mod ops;
pub mod python;
pub mod sys;
pub mod tier;
pub mod ui;

use std::ffi::OsString;
use std::path::Path;

use clap::Parser;

use crate::context::Context;
use crate::exit_codes::ExitCode;

/// Runs pyctl with `args` (argv, program name first) and returns the process exit code.
pub fn run(mut ctx: Context, args: Vec<OsString>) -> i32 {
    let program = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = if commands::wrapper::is_pip_name(&program) {
        init_logging(&ctx, 0);
        commands::wrapper::run_as_pip(&ctx, &program, args.into_iter().skip(1).collect())
    } else if args.get(1).is_some_and(|a| a == "__shim") {
        init_logging(&ctx, 0);
        commands::wrapper::run_as_shim(&ctx, args.into_iter().skip(2).collect())
    } else if args.get(1).is_some_and(|a| a == "__pip-options") {
        // The option table the wrapper reads pip's command lines with, for the checks against
        // each real pip (tests/security.rs, the distro scenario).
        for line in python::pipargs::table_lines() {
            println!("{line}");
        }
        Ok(ExitCode::Success.code())
    } else if args.get(1).is_some_and(|a| a == "__delete-trash") && args.len() == 3 {
        // The background deletion of a `.trash-*` folder (see `ops::target::delete_in_background`).
        tier::store::trash::delete_trash(Path::new(&args[2])).map(|()| ExitCode::Success.code())
    } else if args.get(1).is_some_and(|a| a == "__pip-launcher") {
        // The Python code pyctl runs pip with, for bench/launcher.sh.
        print!("{}", sys::pip::LAUNCHER);
        Ok(ExitCode::Success.code())
    } else {
        let cli = match cli::Cli::try_parse_from(&args) {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                // `--help` and `--version` come this way too, on stdout.
                let code = if e.use_stderr() {
                    ExitCode::Usage
                } else {
                    ExitCode::Success
                };
                return code.code();
            }
        };
        if matches!(
            cli.command,
            cli::Command::Status
                | cli::Command::History { .. }
                | cli::Command::Diff { .. }
                | cli::Command::Freeze { .. }
                | cli::Command::Export { .. }
                | cli::Command::Info { .. }
                | cli::Command::ListSnapshots
        ) {
            restore_sigpipe();
        }
        ctx.python = cli.python.clone();
        // Read once here: `ui.verbose` sets the log level before anything logs, `ui.color` is
        // for the output. A broken file is reported by the commands that need it.
        let config = tier::current(&ctx).ok().and_then(|t| t.config().ok());
        let verbose = match config {
            Some(ref c) if c.ui.verbose && cli.verbose == 0 && !cli.quiet => 1,
            _ => cli.verbose,
        };
        init_logging(&ctx, verbose);
        commands::dispatch(&ctx, cli, config.as_ref()).map(ExitCode::code)
    };
    match result {
        Ok(code) => code,
        Err(err) => report(&err).code(),
    }
}

/// Prints the error chain once, as `pyctl: error: ...`, and picks the exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::Success;
    }
    ui::Ui::plain().error(&format!("{err:#}"));
    ExitCode::Failure
}

fn init_logging(ctx: &Context, verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level).format_target(false);
    if let Some(filters) = ctx.var_str("PYCTL_LOG") {
        builder.parse_filters(&filters);
    }
    let _ = builder.try_init();
}

/// Like other command-line tools, the listing commands end quietly when the reader of their
/// output goes away (`pyctl history | head -1`) instead of failing on the write: Rust starts
/// with SIGPIPE ignored, this puts the default back. Not for the wrapper or for commands that
/// change a tier, which must never be cut short by where their output goes.
fn restore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: installs the default disposition, no handler code; called before any thread
    // is started.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
}
