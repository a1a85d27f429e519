//! `pyctl init`: creates the caller's user tier (venv, shims, PATH lines).

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::transaction;
use crate::tier;
use crate::tier::shell::setup_path;
use crate::ui::Ui;

pub fn run(
    ctx: &Context,
    ui: &Ui,
    python: Option<PathBuf>,
    no_modify_path: bool,
) -> Result<ExitCode> {
    if ctx.is_root() {
        bail!("root has no user tier; the system tier is set up with `pyctl system init`");
    }
    // `init --python 3.12` names a version, as `pyctl --python 3.12 init` does.
    let (tier, python) = match python.as_deref().and_then(|p| p.to_str()) {
        Some(text) if !text.contains('/') && crate::cli::parse_python_version(text).is_ok() => {
            let mut ctx = ctx.clone();
            ctx.python = crate::cli::parse_python_version(text).ok();
            (tier::current(&ctx)?, None)
        }
        _ => (tier::current(ctx)?, python),
    };
    tier.check_owner(ctx)?;
    if let Some(p) = &python {
        tier::interpreter_version(p)?;
    }
    tier.create_dirs()?;
    let lock = tier.lock_waiting(ctx, ui)?;
    let created = transaction::ensure_venv(ctx, ui, &tier, &lock, python.as_deref())?;
    drop(lock);
    if let (Some(site), names) = crate::ops::migrate::user_site_packages(ctx, &tier) {
        if !names.is_empty() {
            ui.info(&format!(
                "{} distributions were installed with `pip install --user` in {}: {}; \
                 `pyctl migrate` moves them into this tier (`--dry-run` shows the plan)",
                names.len(),
                site.site.display(),
                names.join(", ")
            ));
        }
    }
    if created {
        ui.info(&format!(
            "user tier ready: {} (python {})",
            tier.venv().display(),
            tier.python_version().unwrap_or_default()
        ));
    } else {
        ui.info(&format!(
            "user tier already set up at {}; shims checked",
            tier.venv().display()
        ));
    }
    // A version tier's venv/bin holds a `python3` of another version: not for PATH. Its pip is
    // reached as `pip3.X`.
    if !no_modify_path && tier.version_dir_minor().is_none() {
        setup_path(ctx, ui, &tier)?;
    }
    Ok(ExitCode::Success)
}
