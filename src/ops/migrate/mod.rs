//! `pyctl migrate`: moves what `pip install --user` put in the user site
//! (`~/.local/lib/python3.X/site-packages`, scripts in `~/.local/bin`) into the tier. Each
//! distribution is installed in the tier at the same version by the tier's pip (`--no-deps`, from
//! the index or `--find-links`), as one recorded operation (kind `migrate`), and only then taken
//! out of the user site, file by file from its RECORD ("Recording installed projects", PyPA
//! specs), as `pip uninstall` does, except that the files are moved into
//! `<tier>/migrated/<entry id>/` (with a `manifest.json` of original -> backup paths) instead of
//! deleted ([`backup`]). Undoing the entry puts them back ([`backup::put_back`]). What pip cannot
//! get stays in the user site, and is named.

pub mod backup;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::transaction::{self, Operation};
use crate::python::inventory::{Distribution, MetadataFormat, PackageSet};
use crate::sys::fsutil::TierLock;
use crate::tier::config::Config;
use crate::tier::history::Kind;
use crate::tier::{self, Tier, TierKind};
use crate::ui::{Style, Ui};

/// The user site of one Python version: where `pip install --user` writes.
#[derive(Debug, Clone)]
pub struct UserSite {
    /// `PYTHONUSERBASE`, or `~/.local`.
    pub base: PathBuf,
    /// `<base>/lib/python3.X/site-packages`.
    pub site: PathBuf,
}

/// The user site for Python `minor` (`3.11`), as `site.getusersitepackages()` gives it on Linux.
pub fn user_site(ctx: &Context, minor: &str) -> Option<UserSite> {
    let base = ctx
        .var_path("PYTHONUSERBASE")
        .filter(|p| p.is_absolute())
        .or_else(|| ctx.home.as_ref().map(|h| h.join(".local")))?;
    let site = base
        .join("lib")
        .join(format!("python{minor}"))
        .join("site-packages");
    Some(UserSite { base, site })
}

/// The Python version (`3.11`) of a tier: its venv's, its `py3X` folder's, or the default
/// interpreter's when it has no venv yet.
fn tier_minor(ctx: &Context, tier: &Tier) -> Option<String> {
    tier.python_version()
        .map(|v| tier::minor_version(&v))
        .or_else(|| tier.version_dir_minor())
        .or_else(|| {
            let python = tier::default_python(ctx).ok()?;
            tier::interpreter_version(&python)
                .ok()
                .map(|v| tier::minor_version(&v))
        })
}

/// `name==version` of each distribution in the user site of the tier's Python, for the notices
/// of `init` and `doctor`. Empty when there is none (or no user site).
pub fn user_site_packages(ctx: &Context, tier: &Tier) -> (Option<UserSite>, Vec<String>) {
    if tier.kind != TierKind::User {
        return (None, Vec::new());
    }
    let Some(site) = tier_minor(ctx, tier).and_then(|m| user_site(ctx, &m)) else {
        return (None, Vec::new());
    };
    let names = PackageSet::scan_site(&site.site)
        .map(|set| set.dists.values().map(Distribution::name_version).collect())
        .unwrap_or_default();
    (Some(site), names)
}

/// What happens to one distribution of the user site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    /// Installed in the tier, then taken out of the user site.
    Move,
    /// Cannot be moved (the item's `reason` says why): stays in the user site.
    Keep,
    /// The tier already has that version: only the user site's copy goes.
    Remove,
}

/// One distribution of the user site, and what happens to it.
#[derive(Debug, Clone, Serialize)]
struct Item {
    name: String,
    version: String,
    action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// After the run: whether it is now in the tier and gone from the user site.
    #[serde(skip_serializing_if = "Option::is_none")]
    moved: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    user_site: &'a Path,
    tier: &'a Path,
    dry_run: bool,
    history_id: Option<u64>,
    /// Where the files taken out of the user site are kept until an undo puts them back.
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<&'a Path>,
    items: &'a [Item],
}

/// Why a distribution cannot be reinstalled by name and version, if it cannot.
fn cannot_move(dist: &Distribution, tier_set: &PackageSet) -> Option<String> {
    if dist.is_editable() || dist.egg_link.is_some() {
        return Some("an editable install: install it in the tier with `pip install -e`".into());
    }
    if dist.format != MetadataFormat::DistInfo || !dist.metadata_path.join("RECORD").is_file() {
        return Some("no RECORD (a legacy egg-info install): reinstall it by hand".into());
    }
    if let Some(there) = tier_set.get(&dist.name) {
        if there.display_version() != dist.display_version() {
            return Some(format!(
                "the tier has {} {}; left alone so as not to change it",
                there.name,
                there.display_version()
            ));
        }
    }
    None
}

pub fn run(ctx: &Context, ui: &Ui, dry_run: bool, find_links: Option<PathBuf>) -> Result<ExitCode> {
    if ctx.is_root() {
        bail!(
            "migrate moves a user's `pip install --user` packages into that user's tier; root has \
             no user tier"
        );
    }
    let find_links = find_links.map(|dir| check_find_links(&dir)).transpose()?;
    let tier = tier::current(ctx)?;
    tier.check_owner(ctx)?;
    let minor = tier_minor(ctx, &tier).context("cannot tell the tier's Python version")?;
    let site = user_site(ctx, &minor).context("cannot tell your home folder: set HOME")?;
    let user_set = PackageSet::scan_site(&site.site)?;
    if user_set.is_empty() {
        ui.info(&format!(
            "nothing to migrate: no distributions in {}",
            site.site.display()
        ));
        if ui.json {
            print_report(&site, &tier, dry_run, None, None, &[])?;
        }
        return Ok(ExitCode::Success);
    }
    let mut items = plan_items(&tier, &user_set)?;
    if dry_run {
        if ui.json {
            print_report(&site, &tier, true, None, None, &items)?;
        } else {
            print_items(ui, &items, &site, &tier)?;
        }
        return Ok(ExitCode::Success);
    }

    tier.create_dirs()?;
    let lock = tier.lock_waiting(ctx, ui)?;
    transaction::ensure_venv(ctx, ui, &tier, &lock, None)?;
    let config = tier.config()?;
    let history_id = record_install(
        ctx,
        ui,
        &tier,
        &lock,
        &config,
        &items,
        find_links.as_deref(),
    )?;
    let manifest = take_out(
        &tier,
        &site,
        &user_set,
        &mut items,
        history_id,
        find_links.as_deref(),
    )?;
    drop(lock);
    let backup = history_id
        .map(|id| backup::backup_dir(&tier, id))
        .filter(|_| !manifest.dists.is_empty());
    let kept = items.iter().filter(|i| i.action == Action::Keep).count();
    if ui.json {
        print_report(&site, &tier, false, history_id, backup.as_deref(), &items)?;
    } else {
        print_items(ui, &items, &site, &tier)?;
        if let (Some(id), Some(dir)) = (history_id, &backup) {
            ui.info(&format!(
                "the user site's files are kept in {}; `pyctl undo` (of #{id}) takes the \
                 packages out of the tier and puts those files back",
                dir.display()
            ));
        }
    }
    Ok(if kept == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// What happens to each distribution of the user site, before anything is done.
fn plan_items(tier: &Tier, user_set: &PackageSet) -> Result<Vec<Item>> {
    let tier_set = if tier.venv_exists() {
        PackageSet::scan(&tier.venv())?
    } else {
        PackageSet::default()
    };
    Ok(user_set
        .dists
        .values()
        .map(|d| {
            let reason = cannot_move(d, &tier_set);
            let action = match (&reason, tier_set.get(&d.name)) {
                (Some(_), _) => Action::Keep,
                (None, Some(_)) => Action::Remove,
                (None, None) => Action::Move,
            };
            Item {
                name: d.name.clone(),
                version: d.display_version().to_string(),
                action,
                reason,
                moved: None,
            }
        })
        .collect())
}

/// Installs what moves with the tier's pip as one recorded `migrate` entry, and returns its id.
/// Anything leaving the user site is recorded (even when pip installs nothing: the tier already
/// had them all), so that undo can put it back; `None` when nothing leaves.
fn record_install(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    lock: &TierLock,
    config: &Config,
    items: &[Item],
    find_links: Option<&Path>,
) -> Result<Option<u64>> {
    let wanted: Vec<String> = items
        .iter()
        .filter(|i| i.action == Action::Move)
        .map(|i| format!("{}=={}", i.name, i.version))
        .collect();
    if items.iter().all(|i| i.action == Action::Keep) {
        return Ok(None);
    }
    let mut pip_args: Vec<String> = vec!["install".into(), "--no-deps".into()];
    let mut command = "pyctl migrate".to_string();
    if let Some(dir) = find_links {
        pip_args.push("--find-links".into());
        pip_args.push(dir.display().to_string());
        command.push_str(&format!(" --find-links {}", dir.display()));
    }
    let op = Operation {
        pip_args: pip_args.iter().chain(&wanted).cloned().collect(),
        ..Operation::new(Kind::Migrate, command)
    };
    let venv = tier.venv();
    let outcome = transaction::record(ctx, ui, tier, lock, config, &op, || {
        if wanted.is_empty() {
            return Ok(0);
        }
        install(ctx, ui, &venv, &pip_args, &wanted)
    })?;
    ui.info(&format!(
        "recorded as #{} ({})",
        outcome.id,
        outcome.changes.summary()
    ));
    Ok(Some(outcome.id))
}

/// Takes out of the user site what the tier now has at the same version, moved into the entry's
/// backup folder, never deleted; the rest is kept, with the reason. Returns what moved.
fn take_out(
    tier: &Tier,
    site: &UserSite,
    user_set: &PackageSet,
    items: &mut [Item],
    history_id: Option<u64>,
    find_links: Option<&Path>,
) -> Result<backup::Manifest> {
    let now = PackageSet::scan(&tier.venv())?;
    let backup = history_id.map(|id| backup::backup_dir(tier, id));
    let mut manifest = backup::Manifest {
        id: history_id.unwrap_or_default(),
        user_base: site.base.clone(),
        dists: Vec::new(),
    };
    for item in items.iter_mut().filter(|i| i.action != Action::Keep) {
        let in_tier = now
            .get(&item.name)
            .is_some_and(|d| d.display_version() == item.version);
        let Some(backup) = backup.as_deref().filter(|_| in_tier) else {
            item.action = Action::Keep;
            item.reason = Some(format!(
                "pip could not install {}=={} in the tier (from {})",
                item.name,
                item.version,
                match find_links {
                    Some(dir) => format!("the index or {}", dir.display()),
                    None => "the index".to_string(),
                }
            ));
            item.moved = Some(false);
            continue;
        };
        let dist = user_set
            .get(&item.name)
            .context("a distribution of the user site vanished")?;
        backup::move_out_of_user_site(site, dist, backup, &mut manifest).with_context(|| {
            format!(
                "moving {}=={} out of the user site (what moved is in {}; `pyctl undo` puts it \
                 back)",
                item.name,
                item.version,
                backup.display()
            )
        })?;
        item.moved = Some(true);
    }
    Ok(manifest)
}
fn check_find_links(dir: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(dir)
        .with_context(|| format!("--find-links {}: bad path", dir.display()))?;
    if !absolute.is_dir() {
        bail!(
            "--find-links {}: not a folder (give the folder holding the wheels)",
            dir.display()
        );
    }
    Ok(absolute)
}

/// Installs `wanted` with the tier's pip, all at once; when that fails (pip installs nothing
/// when one requirement cannot be had), one at a time, so the rest still go in. Returns 0 when
/// every one went in.
fn install(
    ctx: &Context,
    ui: &Ui,
    venv: &Path,
    pip_args: &[String],
    wanted: &[String],
) -> Result<i32> {
    if run_pip(ctx, venv, pip_args, wanted)? {
        return Ok(0);
    }
    if wanted.len() == 1 {
        return Ok(1);
    }
    ui.warn("pip could not install them all at once; trying one at a time");
    let mut code = 0;
    for requirement in wanted {
        if !run_pip(ctx, venv, pip_args, std::slice::from_ref(requirement))? {
            code = 1;
        }
    }
    Ok(code)
}

fn run_pip(
    ctx: &Context,
    venv: &Path,
    pip_args: &[String],
    requirements: &[String],
) -> Result<bool> {
    let python = venv.join("bin/python");
    let status = crate::sys::pip::command(ctx, venv, crate::sys::pip::PipFor::Tier)
        .arg("--disable-pip-version-check")
        .args(pip_args)
        .args(requirements)
        // pip's progress goes to stderr: stdout is migrate's report (JSON with --json).
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    Ok(status.success())
}

fn print_report(
    site: &UserSite,
    tier: &Tier,
    dry_run: bool,
    history_id: Option<u64>,
    backup: Option<&Path>,
    items: &[Item],
) -> Result<()> {
    let report = Report {
        user_site: &site.site,
        tier: &tier.root,
        dry_run,
        history_id,
        backup,
        items,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// One line per distribution: what will happen (dry run) or what happened.
fn print_items(ui: &Ui, items: &[Item], site: &UserSite, tier: &Tier) -> Result<()> {
    let width = items
        .iter()
        .map(|i| i.name.len() + i.version.len() + 2)
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for item in items {
        let spec = format!("{}=={}", item.name, item.version);
        let (style, word, tail) = match (item.action, item.moved) {
            (Action::Move, Some(true)) => (Style::Added, "moved  ", "into the tier".to_string()),
            (Action::Remove, Some(true)) => (
                Style::Added,
                "removed",
                "from the user site (the tier already has it)".to_string(),
            ),
            (Action::Move, _) => (Style::Added, "move   ", "into the tier".to_string()),
            (Action::Remove, _) => (
                Style::Changed,
                "remove ",
                "from the user site (the tier already has it)".to_string(),
            ),
            _ => (
                Style::Warn,
                "kept   ",
                format!(
                    "in the user site: {}",
                    item.reason.as_deref().unwrap_or("not moved")
                ),
            ),
        };
        lines.push(format!("{} {spec:<width$}  {tail}", ui.out(style, word)));
    }
    lines.push(ui.out(
        Style::Dim,
        &format!("({} -> {})", site.site.display(), tier.venv().display()),
    ));
    // A reader that went away (`pyctl migrate --dry-run | head -1`) is not a failure: the
    // error chain ends in BrokenPipe, which `lib::run` counts as success for every command.
    ui.print_lines(&lines).context("cannot write to stdout")
}
