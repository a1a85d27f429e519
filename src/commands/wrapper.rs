//! The pip wrapper: the binary run as `pip`, `pip3` or `pip3.X` (argv[0] dispatch, as rustup's
//! proxies), or through a venv shim (`pyctl __shim VENV NAME ARGS...`).
//!
//! Routing: a project venv (`VIRTUAL_ENV` that is not a tier) gets its own pip, unrecorded; root
//! gets the system tier; everyone else their user tier, created on first use. Read-only pip
//! commands are exec'd straight away; writes are recorded (see `record`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::context::Context;
use crate::ops::transaction::{self, Operation};
use crate::python::pipargs::PipArgs;
use crate::sys::pip::PipFor;
use crate::tier::{self, Tier, TierKind};
use crate::ui::{ColorChoice, Ui};

pub use crate::sys::pip::ACTIVE_ENV;

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

/// Classifies a pip command line as pip's own parser reads it (`pipargs`). When pip would reject
/// an option before its command word, the line is taken as a write if it names `install` or
/// `uninstall` anywhere: recording a pip that fails costs one entry, missing a write costs the
/// truth of the history.
pub fn classify(args: &[String]) -> PipAction {
    classify_parsed(args, &PipArgs::parse(args))
}

/// `classify`, for a line already read.
fn classify_parsed(args: &[String], parsed: &PipArgs) -> PipAction {
    if parsed.has_general("--python") {
        return PipAction::OtherInterpreter;
    }
    let Some(command) = parsed.command_name() else {
        let names_a_write = args.iter().any(|a| a == "install" || a == "uninstall");
        return if parsed.unclear && names_a_write {
            PipAction::Write
        } else {
            PipAction::ReadOnly
        };
    };
    if parsed.has("--help") {
        return PipAction::ReadOnly;
    }
    match command {
        "install" if parsed.has("--dry-run") => PipAction::ReadOnly,
        "install" | "uninstall" => PipAction::Write,
        _ => PipAction::ReadOnly,
    }
}

/// Runs as `pip` / `pip3` / `pip3.X`.
pub fn run_as_pip(ctx: &Context, name: &str, args: Vec<OsString>) -> Result<i32> {
    if let Some(active) = active_venv(ctx) {
        return exec_pip(ctx, &active, &args, PipFor::AnyVenv);
    }
    if let Some(project) = project_venv(ctx) {
        log::debug!("VIRTUAL_ENV={}: passing through", project.display());
        return exec_pip(ctx, &project, &args, PipFor::AnyVenv);
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
        return exec_pip(ctx, &active, &rest, PipFor::AnyVenv);
    }
    let Some(tier) = tier::tier_of_venv(ctx, &venv) else {
        // Not (or no longer) a tier: behave as that venv's own pip.
        return exec_pip(ctx, &venv, &rest, PipFor::AnyVenv);
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
/// venv is the caller's own. Root follows it only to a venv whose interpreter and everything
/// above it root alone controls: the variable may come from a caller's environment (`sudo -E`).
fn active_venv(ctx: &Context) -> Option<PathBuf> {
    let venv = ctx.var_path(ACTIVE_ENV)?;
    if !venv.is_absolute() || !venv.join("pyvenv.cfg").is_file() {
        return None;
    }
    if ctx.is_root() {
        if !tier::root_trusts_venv(&venv) {
            log::warn!(
                "ignoring {ACTIVE_ENV}={}: as root pyctl only runs interpreters that root alone \
                 can change",
                venv.display()
            );
            return None;
        }
        return Some(venv);
    }
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
    if ctx.is_root() && !tier::root_trusts_venv(&venv) {
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
        // `pip3.11` left behind after the distro moved to another Python: no tier to set up.
        if let Some(minor) = tier.version_dir_minor() {
            if let Err(e) = tier::python_for_version(ctx, &minor) {
                bail!("pip{minor} has no Python {minor} to run: {e:#}; `pip` runs the system's python3");
            }
        }
        bail!(
            "the system tier {} is not set up yet; provision it with `sudo pyctl system init` \
             (the distro package does this on install)",
            tier.root.display()
        );
    }
    tier.check_owner(ctx)?;
    crate::ops::rebuild::on_use(ctx, &ui, tier)?;
    if tier.venv_exists() {
        tier.check_interpreter()?;
    }
    let (args, dropped_user) = drop_user_option(args);
    let str_args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // pip's own -q quiets pyctl's summary too.
    let mut ui = ui;
    let parsed = PipArgs::parse(&str_args);
    ui.quiet = parsed.quiet_count() > 0;
    if ctx.is_root() {
        note_dropped_for_root(ctx, &ui);
    }
    note_user_habit(ctx, &ui, tier, &parsed, dropped_user);
    let action = classify_parsed(&str_args, &parsed);
    // `pip config` shows the user's settings as they are; every other command runs with
    // `--user` off.
    let shows_config = parsed.command_name() == Some("config");
    if action != PipAction::Write && tier.venv_exists() {
        if shows_config {
            return exec_pip(ctx, &tier.venv(), &args, PipFor::AnyVenv);
        }
        return exec_pip(ctx, &tier.venv(), &args, PipFor::Tier);
    }

    // The interpreter of a tier to be made is found first, so that a `pip3.X` for a Python that
    // is not installed fails without leaving an empty tier folder behind.
    let python = if tier.venv_exists() {
        None
    } else {
        Some(transaction::choose_python(ctx, tier)?)
    };
    tier.create_dirs()?;
    let lock = tier.lock_waiting(ctx, &ui)?;
    let created = transaction::ensure_venv(ctx, &ui, tier, &lock, python.as_deref())?;
    if created && tier.kind == TierKind::User {
        crate::tier::shell::setup_path(ctx, &ui, tier)?;
    }
    if action != PipAction::Write {
        drop(lock);
        if shows_config {
            return exec_pip(ctx, &tier.venv(), &args, PipFor::AnyVenv);
        }
        return exec_pip(ctx, &tier.venv(), &args, PipFor::Tier);
    }
    let command = std::iter::once(name.to_string())
        .chain(crate::sys::redact::redact_all(&str_args))
        .chain(dropped_user.then(|| "(--user dropped)".to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let op = Operation {
        pip_args: crate::sys::redact::redact_all(&str_args),
        ..Operation::new(crate::tier::history::Kind::Pip, command)
    };
    let outcome = transaction::record(ctx, &ui, tier, &lock, &config, &op, || {
        lock.keep_across_exec()?;
        run_pip_child(ctx, &tier.venv(), &args)
    })?;
    drop(lock);
    if config.history.show_diff_after_install {
        print_outcome(&ui, &op, &outcome);
    }
    Ok(outcome.exit_code)
}

/// Commands whose `--user` pyctl drops in a tier: the tier is already the caller's own place
/// (install, uninstall), and everything in it is the caller's (list, freeze).
const USER_HABIT_COMMANDS: &[&str] = &["install", "uninstall", "list", "freeze"];

/// Takes `--user` out of a pip command line run in a tier (pip refuses it in a venv: "User
/// site-packages are not visible in this virtualenv"). Only the whole spelling after the command
/// word and before a `--` is taken: a prefix such as `--use` is ambiguous to pip too.
fn drop_user_option(args: Vec<OsString>) -> (Vec<OsString>, bool) {
    let strs: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let parsed = PipArgs::parse(&strs);
    let Some((at, command)) = &parsed.command else {
        return (args, false);
    };
    if !USER_HABIT_COMMANDS.contains(&command.as_str()) || strs[..*at].iter().any(|a| a == "--") {
        return (args, false);
    }
    let mut out = Vec::with_capacity(args.len());
    let mut dropped = false;
    let mut options_end = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i > *at && !options_end {
            if strs[i] == "--" {
                options_end = true;
            } else if strs[i] == "--user" {
                dropped = true;
                continue;
            }
        }
        out.push(arg);
    }
    (out, dropped)
}

/// One line when an old `--user` habit meets a tier: the option dropped, or `PIP_USER` / a
/// pip.conf `user = true` turned off for this run.
fn note_user_habit(ctx: &Context, ui: &Ui, tier: &Tier, parsed: &PipArgs, dropped: bool) {
    if ui.quiet {
        return;
    }
    let place = match tier.kind {
        TierKind::System => "as root, pip already installs into the system tier".to_string(),
        TierKind::User => format!(
            "pip already installs into your own tier ({})",
            tier.venv().display()
        ),
    };
    let command = parsed.command_name();
    if dropped {
        let what = match command {
            Some("list") | Some("freeze") => {
                "everything in the tier is yours, so all of it is listed".to_string()
            }
            _ => place.clone(),
        };
        ui.info(&format!("--user is not needed and was dropped: {what}"));
        return;
    }
    if command != Some("install") {
        return;
    }
    let from_env = !ctx.is_root()
        && ctx.var_str("PIP_USER").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
    let source = if from_env {
        Some("PIP_USER in the environment".to_string())
    } else {
        crate::python::index::config_sets_user(ctx, Some(&tier.venv()))
            .map(|file| format!("`user = true` in {}", file.display()))
    };
    if let Some(source) = source {
        ui.info(&format!("{source} is ignored for this tier: {place}"));
    }
}

/// One line naming the caller's pip and Python variables that root's pip does not see.
fn note_dropped_for_root(ctx: &Context, ui: &Ui) {
    let dropped = crate::sys::pip::dropped_for_root(ctx);
    if dropped.is_empty() || ui.quiet {
        return;
    }
    ui.info(&format!(
        "as root, pip ignores {} from the environment: root's pip takes its settings from root's \
         pip.conf and the command line (SECURITY.md)",
        dropped.join(", ")
    ));
}

fn print_outcome(ui: &Ui, op: &Operation, outcome: &transaction::Outcome) {
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
    for line in crate::tier::history::change_lines(ui, &outcome.changes, true) {
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

/// Replaces this process with the venv's pip: a tier's (`PipFor::Tier`, `--user` off) for
/// pass-through commands, or any venv's (`PipFor::AnyVenv`: an active or project venv, or a
/// read-only command).
fn exec_pip(ctx: &Context, venv: &Path, args: &[OsString], pip_for: PipFor) -> Result<i32> {
    let python = venv.join("bin/python");
    let err = crate::sys::pip::command(ctx, venv, pip_for)
        .args(args)
        .exec();
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
    let mut child = crate::sys::pip::command(ctx, venv, PipFor::Tier)
        .args(args)
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
        // Found by an attack: pip reads unique prefixes of long options.
        assert_eq!(
            classify(&s(&["--retr", "1", "install", "x"])),
            PipAction::Write
        );
        assert_eq!(
            classify(&s(&["--cache", "/d", "install", "x"])),
            PipAction::Write
        );
        assert_eq!(
            classify(&s(&["install", "--dry", "x"])),
            PipAction::ReadOnly
        );
        assert_eq!(classify(&s(&["install", "--hel"])), PipAction::ReadOnly);
        assert_eq!(classify(&s(&["install", "-r", "--help"])), PipAction::Write);
        assert_eq!(
            classify(&s(&["--pyth", "/x/python", "install", "y"])),
            PipAction::OtherInterpreter
        );
        assert_eq!(classify(&s(&["--", "install", "x"])), PipAction::Write);
        assert_eq!(classify(&s(&["--bogus", "install", "x"])), PipAction::Write);
        assert_eq!(classify(&s(&["--bogus", "list"])), PipAction::ReadOnly);
    }
}
