//! What the subcommands share: printing listings, JSON and health reports (a closed pipe
//! included), and the venv a reading command needs.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

use crate::exit_codes::ExitCode;
use crate::tier::Tier;
use crate::ui::Ui;

/// The tier's venv, or an error saying it is not made yet and how it comes to be.
pub(crate) fn existing_venv(tier: &Tier) -> Result<PathBuf> {
    if !tier.venv_exists() {
        bail!(
            "no venv at {} yet; `pyctl init` or a first `pip install` creates it",
            tier.venv().display()
        );
    }
    Ok(tier.venv())
}

/// Prints a listing on stdout. A reader that went away (`pyctl history | head -1`) ends the
/// command quietly and successfully: `lib.rs` treats a broken pipe so for every command.
pub(crate) fn print_listing(ui: &Ui, lines: &[String]) -> Result<ExitCode> {
    ui.print_lines(lines).context("cannot write to stdout")?;
    Ok(ExitCode::Success)
}

/// Prints `value` as JSON on stdout, as [`print_listing`] prints lines.
pub(crate) fn print_json(ui: &Ui, value: &impl serde::Serialize) -> Result<ExitCode> {
    print_listing(ui, &[serde_json::to_string_pretty(value)?])
}

/// Prints a health report (`doctor`, `system status`) and ends with `code` even when the reader
/// went away: this exit code tells whether the tier is healthy, which the success `lib.rs` gives
/// a broken pipe would hide (`pyctl doctor | head -1` still fails on a sick tier).
pub(crate) fn print_report(ui: &Ui, lines: &[String], code: ExitCode) -> Result<ExitCode> {
    match ui.print_lines(lines) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        other => other.map(|()| code).context("cannot write to stdout"),
    }
}
