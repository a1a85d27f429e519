//! The pip wrapper: the binary run as `pip`, `pip3` or `pip3.X` (argv[0] dispatch, as rustup's
//! proxies), or through a venv shim (`pyctl __shim VENV NAME ARGS...`).
//!
//! Routing: a project venv (`VIRTUAL_ENV` that is not a tier) gets its own pip, unrecorded; root
//! gets the system tier; everyone else their user tier, created on first use. Read-only pip
//! commands are exec'd straight away; writes are recorded (see `record`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::context::Context;
use crate::record::{self, Operation};
use crate::tier::{self, Tier, TierKind};
use crate::ui::{ColorChoice, Ui};

/// Set for the pip that a wrapper runs: a pip started from inside it (a build backend calling
/// `pip` on PATH) goes straight to the venv, never waiting on the lock its parent holds.
pub const ACTIVE_ENV: &str = "PYCTL_ACTIVE";

/// Whether a program name makes this binary the pip wrapper: `pip`, `pip3`, `pip3.X`.
pub fn is_pip_name(name: &str) -> bool {
    match name.strip_prefix("pip") {
        Some("") | Some("3") => true,
        Some(rest) => rest
            .strip_prefix("3.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// `pip3.12` → `Some("3.12")`.
fn requested_minor(name: &str) -> Option<String> {
    name.strip_prefix("pip")
        .filter(|rest| rest.starts_with("3."))
        .map(str::to_string)
}

/// pip's general options that take a value, so the command word can be found after them.
pub(crate) const VALUE_OPTIONS: &[&str] = &[
    "--python",
    "--log",
    "--log-file",
    "--local-log",
    "--keyring-provider",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--trusted-host",
    "--cert",
    "--client-cert",
    "--cache-dir",
    "--use-feature",
    "--use-deprecated",
    "--resume-retries",
];

/// What a pip command line will do to the venv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipAction {
    /// Changes the venv: recorded.
    Write,
    /// Reads only (`list`, `show`, `--version`, `help`, `install --dry-run`, ...): exec'd.
    ReadOnly,
    /// `--python` sends pip to another interpreter: not ours to record.
    OtherInterpreter,
}

/// The pip command word and its index in `args`.
pub fn pip_command(args: &[String]) -> Option<(usize, &str)> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" {
            return None;
        }
        if !arg.starts_with('-') {
            return Some((i, arg));
        }
        if VALUE_OPTIONS.contains(&arg) {
            i += 1;
        }
        i += 1;
    }
    None
}

pub fn classify(args: &[String]) -> PipAction {
    let Some((index, command)) = pip_command(args) else {
        return PipAction::ReadOnly;
    };
    let globals = &args[..index];
    if globals
        .iter()
        .any(|a| a == "--python" || a.starts_with("--python="))
    {
        return PipAction::OtherInterpreter;
    }
    let rest = &args[index + 1..];
    let has = |flag: &str| rest.iter().any(|a| a == flag) || globals.iter().any(|a| a == flag);
    if has("-h") || has("--help") {
        return PipAction::ReadOnly;
    }
    match command {
        "install" if has("--dry-run") => PipAction::ReadOnly,
        "install" | "uninstall" => PipAction::Write,
        _ => PipAction::ReadOnly,
    }
}

/// Runs as `pip` / `pip3` / `pip3.X`.
pub fn run_as_pip(ctx: &Context, name: &str, args: Vec<OsString>) -> Result<i32> {
    if let Some(active) = active_venv(ctx) {
        return exec_pip(ctx, &active, &args);
    }
    if let Some(project) = project_venv(ctx) {
        log::debug!("VIRTUAL_ENV={}: passing through", project.display());
        return exec_pip(ctx, &project, &args);
    }
    let minor = requested_minor(name);
    let tier = tier::tier_for(ctx, minor.as_deref())?;
    run_in_tier(ctx, &tier, name, args)
}

/// Runs as a venv shim: `pyctl __shim VENV NAME ARGS...`.
pub fn run_as_shim(ctx: &Context, args: Vec<OsString>) -> Result<i32> {
    let mut args = args.into_iter();
    let (Some(venv), Some(name)) = (args.next(), args.next()) else {
        bail!("usage: pyctl __shim VENV NAME [PIP ARGS...] (this is how venv shims call pyctl)");
    };
    let venv = PathBuf::from(venv);
    let name = name.to_string_lossy().into_owned();
    let rest: Vec<OsString> = args.collect();
    if let Some(active) = active_venv(ctx) {
        return exec_pip(ctx, &active, &rest);
    }
    let Some(tier) = tier::tier_of_venv(ctx, &venv) else {
        // Not (or no longer) a tier: behave as that venv's own pip.
        return exec_pip(ctx, &venv, &rest);
    };
    if tier.kind == TierKind::System && !ctx.is_root() {
        bail!(
            "{} is the system tier: only root may change it (use `sudo pip ...`); your own \
             packages go to your user tier with plain `pip`",
            tier.venv().display()
        );
    }
    run_in_tier(ctx, &tier, &name, rest)
}

/// The venv named by `PYCTL_ACTIVE`, when this process runs under a recording wrapper and that
/// venv is the caller's own.
fn active_venv(ctx: &Context) -> Option<PathBuf> {
    let venv = ctx.var_path(ACTIVE_ENV)?;
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&venv).ok()?);
    (owner == ctx.uid).then_some(venv)
}

/// `VIRTUAL_ENV`, when it names a venv that is not a pyctl tier. Root follows it only when root
/// owns it and nobody else can write it.
fn project_venv(ctx: &Context) -> Option<PathBuf> {
    let venv = ctx.var_path("VIRTUAL_ENV")?;
    if tier::tier_of_venv(ctx, &venv).is_some() {
        return None;
    }
    if !venv.join("pyvenv.cfg").is_file() {
        log::warn!(
            "VIRTUAL_ENV={} is not a venv (no pyvenv.cfg); ignoring it",
            venv.display()
        );
        return None;
    }
    if ctx.is_root() && !tier::root_controlled(&venv.join("bin")) {
        Ui::plain().warn(&format!(
            "ignoring VIRTUAL_ENV={}: as root pyctl only runs interpreters that root alone can \
             change; using the system tier",
            venv.display()
        ));
        return None;
    }
    Some(venv)
}

fn run_in_tier(ctx: &Context, tier: &Tier, name: &str, args: Vec<OsString>) -> Result<i32> {
    let config = tier.config()?;
    let ui = Ui::new(ColorChoice::Auto, ctx.no_color(), config.ui.color, false);
    if tier.kind == TierKind::System && !tier.is_provisioned() {
        bail!(
            "the system tier {} is not set up yet; provision it with `sudo pyctl system init` \
             (the distro package does this on install)",
            tier.root.display()
        );
    }
    tier.check_owner(ctx)?;
    if tier.venv_exists() {
        tier.check_interpreter()?;
    }
    let str_args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // pip's own -q quiets pyctl's summary too.
    let mut ui = ui;
    ui.quiet = str_args
        .iter()
        .any(|a| a == "--quiet" || (a.starts_with("-q") && a[1..].bytes().all(|b| b == b'q')));
    let action = classify(&str_args);
    if action != PipAction::Write && tier.venv_exists() {
        return exec_pip(ctx, &tier.venv(), &args);
    }

    // The interpreter of a tier to be made is found first, so that a `pip3.X` for a Python that
    // is not installed fails without leaving an empty tier folder behind.
    let python = if tier.venv_exists() {
        None
    } else {
        Some(record::choose_python(ctx, tier)?)
    };
    tier.create_dirs()?;
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
    let created = record::ensure_venv(ctx, &ui, tier, &lock, python.as_deref())?;
    if created && tier.kind == TierKind::User {
        crate::commands::setup_path(ctx, &ui, tier)?;
    }
    if action != PipAction::Write {
        drop(lock);
        return exec_pip(ctx, &tier.venv(), &args);
    }
    let op = Operation {
        kind: crate::history::Kind::Pip,
        command: std::iter::once(name.to_string())
            .chain(str_args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        pip_args: str_args,
        reverts: Vec::new(),
        reapplies: Vec::new(),
        target: None,
    };
    let outcome = record::record(ctx, &ui, tier, &lock, &config, &op, || {
        lock.keep_across_exec()?;
        run_pip_child(ctx, &tier.venv(), &args)
    })?;
    drop(lock);
    if config.history.show_diff_after_install {
        print_outcome(&ui, &op, &outcome);
    }
    Ok(outcome.exit_code)
}

fn print_outcome(ui: &Ui, op: &Operation, outcome: &record::Outcome) {
    if ui.quiet {
        return;
    }
    let status = if outcome.exit_code == 0 {
        String::new()
    } else {
        format!(" (pip exited {})", outcome.exit_code)
    };
    ui.info(&format!(
        "recorded #{} {}: {}{status}",
        outcome.id,
        op.command,
        outcome.changes.summary()
    ));
    for line in ui.change_lines(&outcome.changes, true) {
        eprintln!("{line}");
    }
    if !outcome.changes.is_empty() {
        eprintln!(
            "  {}",
            ui.err(
                crate::ui::Style::Dim,
                &format!(
                    "undo with `pyctl undo`, details with `pyctl diff {}`",
                    outcome.id
                )
            )
        );
    }
}

/// The real pip of a venv: `<venv>/bin/python -m pip ARGS`, with the recursion guard set and,
/// for root, isolated from the caller (see `isolate_for_root`).
fn pip_command_for(ctx: &Context, venv: &Path, args: &[OsString]) -> Command {
    let mut cmd = Command::new(venv.join("bin/python"));
    if ctx.is_root() {
        isolate_for_root(ctx, &mut cmd);
    }
    cmd.arg("-m").arg("pip").args(args).env(ACTIVE_ENV, venv);
    cmd
}

/// pip's settings that name a place to write or a file to read settings from: under `sudo -E`
/// they come from the caller and would make root write (or log, cache, build) wherever the
/// caller likes.
const ROOT_DROPPED_PIP_VARS: &[&str] = &[
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_ROOT",
    "PIP_USER",
    "PIP_CONFIG_FILE",
    "PIP_SRC",
    "PIP_LOG",
    "PIP_LOG_FILE",
    "PIP_LOCAL_LOG",
    "PIP_CACHE_DIR",
    "PIP_REPORT",
    "PIP_BUILD",
    "PIP_BUILD_DIR",
    "PIP_DEST",
    "PIP_DOWNLOAD",
    "PIP_WHEEL_DIR",
];

/// For a Python that root runs (must be called before the first argument): `-I`, so neither
/// `PYTHON*` variables, the user site nor the current folder (`python -m` puts it first on
/// `sys.path`) bring in the caller's code; the caller's `PYTHON*`, pip path settings, XDG
/// folders and temp folder removed, and `HOME` set to root's own, so pip reads root's
/// configuration and writes its cache and temp files in root's places only.
pub fn isolate_for_root(ctx: &Context, cmd: &mut Command) {
    cmd.arg("-I");
    for key in ctx.env().keys() {
        let k = key.to_string_lossy();
        if k.starts_with("PYTHON")
            || k.starts_with("XDG_")
            || ROOT_DROPPED_PIP_VARS.contains(&k.as_ref())
            || matches!(k.as_ref(), "TMPDIR" | "TMP" | "TEMP" | "VIRTUAL_ENV")
        {
            cmd.env_remove(key);
        }
    }
    match &ctx.home {
        Some(home) => cmd.env("HOME", home),
        None => cmd.env_remove("HOME"),
    };
}

/// Replaces this process with the venv's pip (read-only commands, pass-through).
fn exec_pip(ctx: &Context, venv: &Path, args: &[OsString]) -> Result<i32> {
    let python = venv.join("bin/python");
    let err = pip_command_for(ctx, venv, args).exec();
    Err(err).with_context(|| format!("{}: cannot run", python.display()))
}

/// Runs pip as a child with the terminal, stdin and signals passed through; returns its exit
/// code (128 + signal when a signal ended it).
fn run_pip_child(ctx: &Context, venv: &Path, args: &[OsString]) -> Result<i32> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    use std::os::unix::process::ExitStatusExt;

    let python = venv.join("bin/python");
    // Register before spawning, so no signal in between can kill the wrapper and lose the
    // after-record.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        .context("cannot install signal handlers")?;
    let mut child = pip_command_for(ctx, venv, args)
        .spawn()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            // Ctrl-C at a terminal already reached pip (same process group); a SIGINT sent to
            // the wrapper alone is passed on.
            if sig == SIGINT && same_foreground_group() {
                continue;
            }
            if let Ok(signal) = nix::sys::signal::Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(pid, signal);
            }
        }
    });
    let status = child.wait().context("waiting for pip")?;
    handle.close();
    let _ = forwarder.join();
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Whether this process is in the terminal's foreground process group (so a Ctrl-C at the
/// terminal was delivered to the whole group).
fn same_foreground_group() -> bool {
    let stdin = std::io::stdin();
    match nix::unistd::tcgetpgrp(&stdin) {
        Ok(fg) => fg == nix::unistd::getpgrp(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn pip_names() {
        for ok in ["pip", "pip3", "pip3.11", "pip3.9"] {
            assert!(is_pip_name(ok), "{ok}");
        }
        for bad in ["pipx", "pip2", "pip3.", "pip3.x", "pyctl", "pip-3"] {
            assert!(!is_pip_name(bad), "{bad}");
        }
        assert_eq!(requested_minor("pip3.12").as_deref(), Some("3.12"));
        assert_eq!(requested_minor("pip3"), None);
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&s(&["install", "x"])), PipAction::Write);
        assert_eq!(
            classify(&s(&["-q", "uninstall", "-y", "x"])),
            PipAction::Write
        );
        assert_eq!(
            classify(&s(&["--timeout", "5", "install", "x"])),
            PipAction::Write
        );
        assert_eq!(
            classify(&s(&["--cache-dir", "install", "list"])),
            PipAction::ReadOnly
        );
        assert_eq!(
            classify(&s(&["install", "--dry-run", "x"])),
            PipAction::ReadOnly
        );
        assert_eq!(classify(&s(&["install", "--help"])), PipAction::ReadOnly);
        assert_eq!(classify(&s(&["list"])), PipAction::ReadOnly);
        assert_eq!(classify(&s(&["--version"])), PipAction::ReadOnly);
        assert_eq!(classify(&s(&[])), PipAction::ReadOnly);
        assert_eq!(
            classify(&s(&["--python", "/x/python", "install", "y"])),
            PipAction::OtherInterpreter
        );
    }
}
