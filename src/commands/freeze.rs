//! `pyctl freeze`: the installed set as `pip freeze --all` prints it, without running pip.

use std::path::PathBuf;

use anyhow::Result;

use crate::commands::shared::existing_venv;
use crate::commands::shared::print_listing;
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::python::freeze::PipReader;
use crate::python::inventory::PackageSet;
use crate::tier;
use crate::ui::Ui;

pub fn run(ctx: &Context, ui: &Ui, path: Option<PathBuf>) -> Result<ExitCode> {
    let venv = match path {
        Some(p) => p,
        None => existing_venv(&tier::current(ctx)?)?,
    };
    let set = PackageSet::scan(&venv)?;
    // Spelled as the venv's own pip spells it (its version read from its dist-info); what
    // pyctl records keeps METADATA's spelling whatever that pip is.
    let use_importlib = ctx.var_str("_PIP_USE_IMPORTLIB_METADATA");
    let reader = PipReader::of_venv(&venv, &set, use_importlib.as_deref());
    let text = set.freeze_as(reader);
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    print_listing(ui, &lines)
}
