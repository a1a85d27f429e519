//! `pyctl self uninstall`: takes pyctl's PATH lines out of the shell start-up files; the
//! packages stay.

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::tier;
use crate::tier::shell;
use crate::ui::Ui;

pub fn run(ctx: &Context, ui: &Ui) -> Result<ExitCode> {
    let home = ctx
        .home
        .clone()
        .context("cannot tell your home folder: set HOME")?;
    let changed = shell::remove_path_blocks(&home)?;
    for file in &changed {
        ui.info(&format!("removed the PATH lines from {}", file.display()));
    }
    if changed.is_empty() {
        ui.info("no PATH lines of pyctl found in your shell start-up files");
    }
    if let Ok(tier) = tier::current(ctx) {
        if tier.venv_exists() {
            ui.info(&format!(
                "your packages stay in {}; its pip keeps working without pyctl. Delete the \
                 folder {} to remove them.",
                tier.venv().display(),
                tier.root.display()
            ));
        }
    }
    Ok(ExitCode::Success)
}
