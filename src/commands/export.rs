//! `pyctl export`: the installed set as a requirements file, or with `--requested` only the
//! projects the user asked for, pinned to what is installed: those pip marked `REQUESTED`
//! (`-r FILE` and `-e` included), and the names of recorded `pip install` commands.

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;

use anyhow::Result;

use crate::commands::shared::existing_venv;
use crate::commands::shared::print_listing;
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::python::inventory::{canonical_name, PackageSet};
use crate::tier;
use crate::tier::history::{self, Kind, Log};
use crate::ui::Ui;

/// A pip command line split into its subcommand and its positional arguments (options and
/// their values left out), read as pip's parser reads it.
fn split_pip_args(args: &[String]) -> (Option<&str>, Vec<&str>) {
    let parsed = crate::python::pipargs::PipArgs::parse(args);
    let command = parsed.command.as_ref().map(|(i, _)| args[*i].as_str());
    let positional = parsed
        .positionals
        .iter()
        .map(|(i, _)| args[*i].as_str())
        .collect();
    (command, positional)
}

/// The canonical project name an install argument asks for: a PEP 508 requirement
/// (`name[extra]>=1`, `name @ url`) or a wheel or sdist file name. `None` for what names no
/// project by itself (a folder, a VCS URL without `#egg=`).
pub fn requested_name(arg: &str) -> Option<String> {
    if let Ok(req) = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(arg) {
        return Some(canonical_name(req.name.as_ref()));
    }
    let file = arg.rsplit('/').next().unwrap_or(arg);
    if file.ends_with(".whl") {
        let wheel = crate::python::filename::WheelName::parse(file);
        return wheel.ok().map(|w| canonical_name(w.name));
    }
    if let Some((_, egg)) = arg.split_once("#egg=") {
        return Some(canonical_name(egg.split('&').next().unwrap_or(egg)));
    }
    crate::python::filename::sdist_name_version(file).map(|(name, _)| canonical_name(name))
}

/// What the user asked for: names from successful recorded `pip install` commands, less those
/// a later `pip uninstall` removed, in history order.
pub fn requested_names(log: &Log) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in &log.entries {
        if entry.before.kind != Kind::Pip
            || entry.after.as_ref().and_then(|a| a.exit_code) != Some(0)
        {
            continue;
        }
        let (command, positional) = split_pip_args(&entry.before.pip_args);
        match command {
            Some("install") => names.extend(positional.into_iter().filter_map(requested_name)),
            Some("uninstall") => {
                for name in positional.into_iter().filter_map(requested_name) {
                    names.remove(&name);
                }
            }
            _ => {}
        }
    }
    names
}

/// Distributions pip marked as asked for (a `REQUESTED` file in the `.dist-info`, written for
/// every top-level requirement: names, `-r FILE`, `-e PATH`; not for dependencies), less those the venv came with (ensurepip marks pip and setuptools) that no
/// recorded command named.
pub fn requested_markers(set: &PackageSet, log: &Log) -> BTreeSet<String> {
    let from_init: BTreeSet<String> = log
        .entries
        .iter()
        .filter(|e| e.before.kind == Kind::Init)
        .filter_map(|e| e.after.as_ref())
        .flat_map(|a| crate::python::freeze::freeze_map(&a.freeze).into_values())
        .collect();
    set.dists
        .iter()
        .filter(|(_, d)| {
            d.format == crate::python::inventory::MetadataFormat::DistInfo
                && d.metadata_path.join("REQUESTED").is_file()
                && !d.freeze_lines().iter().any(|l| from_init.contains(l))
        })
        .map(|(canonical, _)| canonical.clone())
        .collect()
}

/// The requirements text: every installed distribution, or the requested ones still installed,
/// each as `pip freeze` writes it.
pub fn export_text(set: &PackageSet, only: Option<&BTreeSet<String>>) -> String {
    let Some(only) = only else {
        return set.freeze();
    };
    let mut dists: Vec<_> = set
        .dists
        .iter()
        .filter(|(canonical, _)| only.contains(*canonical))
        .map(|(_, d)| d)
        .collect();
    dists.sort_by_key(|d| d.name.to_lowercase());
    let mut out = String::new();
    for dist in dists {
        for line in dist.freeze_lines() {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

pub fn run(ctx: &Context, ui: &Ui, requested: bool, output: Option<&Path>) -> Result<ExitCode> {
    let tier = tier::current(ctx)?;
    let set = PackageSet::scan(&existing_venv(&tier)?)?;
    let only = if requested {
        let log = history::read_log(&tier.history_dir())?;
        for problem in &log.problems {
            ui.warn(&format!("skipping {problem}"));
        }
        if log.entries.first().is_some_and(|e| e.id > 1) {
            ui.warn(&format!(
                "the history starts at #{}: what was asked for in pruned entries is not known",
                log.entries[0].id
            ));
        }
        let mut names = requested_names(&log);
        names.extend(requested_markers(&set, &log));
        Some(names)
    } else {
        None
    };
    let text = export_text(&set, only.as_ref());
    match output {
        Some(path) => {
            crate::sys::fsutil::write_atomic(path, text.as_bytes())?;
            ui.info(&format!(
                "wrote {} requirements to {}",
                text.lines().filter(|l| !l.starts_with('#')).count(),
                path.display()
            ));
        }
        None => {
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            return print_listing(ui, &lines);
        }
    }
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_and_their_values_are_not_requirements() {
        let a = args(
            "--isolated install -r req.txt -c c.txt --find-links /w -i http://x/simple \
             --no-index -U Foo_Bar[extra]>=1 baz==2 --index-url=http://y",
        );
        let (command, positional) = split_pip_args(&a);
        assert_eq!(command, Some("install"));
        assert_eq!(positional, vec!["Foo_Bar[extra]>=1", "baz==2"]);
    }

    #[test]
    fn names_from_requirements_and_files() {
        assert_eq!(
            requested_name("Foo_Bar[extra]>=1").as_deref(),
            Some("foo-bar")
        );
        assert_eq!(
            requested_name("name @ https://x/y.whl").as_deref(),
            Some("name")
        );
        assert_eq!(
            requested_name("/w/My_Pkg-1.0-py3-none-any.whl").as_deref(),
            Some("my-pkg")
        );
        assert_eq!(
            requested_name("./dist/my-pkg-2.0.tar.gz").as_deref(),
            Some("my-pkg")
        );
        assert_eq!(
            requested_name("git+https://h/r.git#egg=thing").as_deref(),
            Some("thing")
        );
        assert_eq!(requested_name("./some/folder/"), None);
    }
}
