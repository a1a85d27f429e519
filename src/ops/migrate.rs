//! `pyctl migrate`: moves what `pip install --user` put in the user site
//! (`~/.local/lib/python3.X/site-packages`, scripts in `~/.local/bin`) into the tier. Each
//! distribution is installed in the tier at the same version by the tier's pip (`--no-deps`, from
//! the index or `--find-links`), as one recorded operation (kind `migrate`), and only then taken
//! out of the user site, file by file from its RECORD ("Recording installed projects", PyPA
//! specs), as `pip uninstall` does, except that the files are moved into
//! `<tier>/migrated/<entry id>/` (with a `manifest.json` of original -> backup paths) instead of
//! deleted. Undoing the entry puts them back ([`put_back`]). What pip cannot get stays in the
//! user site, and is named.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::ops::transaction::{self, Operation};
use crate::python::inventory::{Distribution, MetadataFormat, PackageSet};
use crate::tier::history::Kind;
use crate::tier::store;
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
#[derive(Debug, Clone, Serialize)]
struct Item {
    name: String,
    version: String,
    /// `move`, `keep` (cannot be moved: `reason` says why) or `remove` (the tier already has
    /// that version: only the user site's copy goes).
    action: &'static str,
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

pub fn run(ctx: &Context, ui: &Ui, dry_run: bool, find_links: Option<PathBuf>) -> Result<i32> {
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
        return Ok(0);
    }
    let tier_set = if tier.venv_exists() {
        PackageSet::scan(&tier.venv())?
    } else {
        PackageSet::default()
    };
    let mut items: Vec<Item> = user_set
        .dists
        .values()
        .map(|d| {
            let reason = cannot_move(d, &tier_set);
            let action = match (&reason, tier_set.get(&d.name)) {
                (Some(_), _) => "keep",
                (None, Some(_)) => "remove",
                (None, None) => "move",
            };
            Item {
                name: d.name.clone(),
                version: d.display_version().to_string(),
                action,
                reason,
                moved: None,
            }
        })
        .collect();
    if dry_run {
        if ui.json {
            print_report(&site, &tier, true, None, None, &items)?;
        } else {
            print_items(ui, &items, &site, &tier)?;
        }
        return Ok(0);
    }

    tier.create_dirs()?;
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
    transaction::ensure_venv(ctx, ui, &tier, &lock, None)?;
    let config = tier.config()?;
    let wanted: Vec<String> = items
        .iter()
        .filter(|i| i.action == "move")
        .map(|i| format!("{}=={}", i.name, i.version))
        .collect();
    let mut history_id = None;
    // Anything leaving the user site is recorded (even when pip installs nothing: the tier
    // already had them all), so that undo can put it back.
    if items.iter().any(|i| i.action != "keep") {
        let mut pip_args: Vec<String> = vec!["install".into(), "--no-deps".into()];
        if let Some(dir) = &find_links {
            pip_args.push("--find-links".into());
            pip_args.push(dir.display().to_string());
        }
        let mut command = "pyctl migrate".to_string();
        if let Some(dir) = &find_links {
            command.push_str(&format!(" --find-links {}", dir.display()));
        }
        let op = Operation {
            kind: Kind::Migrate,
            command,
            pip_args: pip_args.iter().chain(&wanted).cloned().collect(),
            reverts: Vec::new(),
            reapplies: Vec::new(),
            target: None,
        };
        let venv = tier.venv();
        let outcome = transaction::record(ctx, ui, &tier, &lock, &config, &op, || {
            if wanted.is_empty() {
                return Ok(0);
            }
            install(ctx, ui, &venv, &pip_args, &wanted)
        })?;
        history_id = Some(outcome.id);
        ui.info(&format!(
            "recorded as #{} ({})",
            outcome.id,
            outcome.changes.summary()
        ));
    }
    // Only what the tier now has at the same version leaves the user site, moved into the
    // entry's backup folder, never deleted.
    let now = PackageSet::scan(&tier.venv())?;
    let backup = history_id.map(|id| backup_dir(&tier, id));
    let mut manifest = Manifest {
        id: history_id.unwrap_or_default(),
        user_base: site.base.clone(),
        dists: Vec::new(),
    };
    for item in items.iter_mut().filter(|i| i.action != "keep") {
        let in_tier = now
            .get(&item.name)
            .is_some_and(|d| d.display_version() == item.version);
        let Some(backup) = backup.as_deref().filter(|_| in_tier) else {
            item.action = "keep";
            item.reason = Some(format!(
                "pip could not install {}=={} in the tier (from {})",
                item.name,
                item.version,
                match &find_links {
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
        move_out_of_user_site(&site, dist, backup, &mut manifest).with_context(|| {
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
    drop(lock);
    let backup = backup.filter(|_| !manifest.dists.is_empty());
    let kept = items.iter().filter(|i| i.action == "keep").count();
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
    Ok(if kept == 0 { 0 } else { 1 })
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

/// Where migrate entry `id` keeps the files it moved out of the user site.
pub fn backup_dir(tier: &Tier, id: u64) -> PathBuf {
    tier.root.join("migrated").join(id.to_string())
}

const MANIFEST: &str = "manifest.json";

/// `<backup dir>/manifest.json`: every file moved out of the user site, where it came from and
/// where it is kept (relative to the backup folder). Written before the files move, so a run
/// killed half-way still says where everything went.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    id: u64,
    user_base: PathBuf,
    dists: Vec<ManifestDist>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestDist {
    name: String,
    version: String,
    files: Vec<MovedFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MovedFile {
    original: PathBuf,
    backup: PathBuf,
}

impl Manifest {
    fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        crate::sys::fsutil::write_atomic(&dir.join(MANIFEST), &serde_json::to_vec_pretty(self)?)
    }

    fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a manifest", path.display()))
    }
}

/// `/home/u/.local/bin/x` is kept as `files/home/u/.local/bin/x`.
fn backup_name(original: &Path) -> PathBuf {
    let mut out = PathBuf::from("files");
    for c in original.components() {
        if let std::path::Component::Normal(part) = c {
            out.push(part);
        }
    }
    out
}

/// Takes a distribution out of the user site as `pip uninstall` would (every file its RECORD
/// lists inside the user base, scripts in `bin/` included, their `__pycache__` entries, the
/// `.dist-info` folder), but moves the files into `dir` instead of deleting them, and lists them
/// in the manifest there. Folders left empty in the site are removed.
fn move_out_of_user_site(
    site: &UserSite,
    dist: &Distribution,
    dir: &Path,
    manifest: &mut Manifest,
) -> Result<()> {
    let rows = store::installed_files(&site.base, dist)?;
    let mut originals: Vec<PathBuf> = Vec::new();
    let mut folders: Vec<PathBuf> = Vec::new();
    for row in rows {
        let path = site.base.join(&row.path);
        if path.extension().is_some_and(|e| e == "py") {
            originals.extend(bytecode_of(&path));
        }
        if let Some(parent) = path.parent() {
            folders.push(parent.to_path_buf());
        }
        originals.push(path);
    }
    // What is in the .dist-info folder but not in RECORD (RECORD itself, often).
    collect_files(&dist.metadata_path, &mut originals);
    originals.sort();
    originals.dedup();
    originals.retain(|p| p.symlink_metadata().is_ok_and(|m| !m.is_dir()));
    let files: Vec<MovedFile> = originals
        .into_iter()
        .map(|original| MovedFile {
            backup: backup_name(&original),
            original,
        })
        .collect();
    manifest.dists.push(ManifestDist {
        name: dist.name.clone(),
        version: dist.display_version().to_string(),
        files: files.clone(),
    });
    manifest.write(dir)?;
    for file in &files {
        move_file(&file.original, &dir.join(&file.backup))?;
    }
    if dist.metadata_path.is_dir() {
        remove_empty_dirs(&dist.metadata_path);
    }
    // Deepest first, and never the site-packages or bin folders themselves.
    folders.sort_by_key(|f| std::cmp::Reverse(f.components().count()));
    folders.dedup();
    for folder in folders {
        let mut dir = folder.as_path();
        while dir.starts_with(&site.site) && dir != site.site {
            let pycache = dir.join("__pycache__");
            if pycache.is_dir() && is_empty_dir(&pycache) {
                let _ = std::fs::remove_dir(&pycache);
            }
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
            match dir.parent() {
                Some(p) => dir = p,
                None => break,
            }
        }
    }
    Ok(())
}

/// Every file (not folder) under `dir`, recursively.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&path, out),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
}

/// Removes the folders under `dir` (and `dir`) that hold no file, deepest first.
fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Moves `from` to `to` (its folder created): a rename on the same filesystem, a copy then a
/// delete across filesystems. A missing `from` is not an error (nothing to move).
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if from.symlink_metadata().is_err() {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            let meta = from.symlink_metadata()?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(from)
                    .with_context(|| format!("{}: cannot read the link", from.display()))?;
                std::os::unix::fs::symlink(&target, to)
                    .with_context(|| format!("{}: cannot create", to.display()))?;
            } else {
                std::fs::copy(from, to).with_context(|| {
                    format!("cannot copy {} to {}", from.display(), to.display())
                })?;
            }
            remove_file(from)
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
        }
    }
}

/// What putting back one migrate entry's files did.
#[derive(Debug, Default)]
pub struct PutBack {
    /// `name==version` of each distribution whose files went back.
    pub dists: Vec<String>,
    pub files: usize,
    /// Files not put back because something is already at their place.
    pub skipped: Vec<PathBuf>,
    /// The backup folder, when it stays (something was skipped or could not move).
    pub kept: Option<PathBuf>,
}

/// Moves the files migrate entry `id` took out of the user site back to their places, never over
/// an existing file (those are skipped, named, and stay in the backup folder). Removes the
/// backup folder once it is empty. `None` when the entry has no backup folder.
pub fn put_back(ui: &Ui, tier: &Tier, id: u64) -> Result<Option<PutBack>> {
    let dir = backup_dir(tier, id);
    if !dir.join(MANIFEST).is_file() {
        return Ok(None);
    }
    let manifest = Manifest::read(&dir)?;
    let mut result = PutBack::default();
    let mut left = Manifest {
        id: manifest.id,
        user_base: manifest.user_base.clone(),
        dists: Vec::new(),
    };
    for dist in manifest.dists {
        let mut remaining = Vec::new();
        let mut moved_any = false;
        for file in dist.files {
            let backup = dir.join(&file.backup);
            if backup.symlink_metadata().is_err() {
                // Never moved (a run killed half-way), or already back.
                continue;
            }
            if file.original.symlink_metadata().is_ok() {
                ui.warn(&format!(
                    "{} exists; not overwritten (the migrated copy stays in {})",
                    file.original.display(),
                    backup.display()
                ));
                result.skipped.push(file.original.clone());
                remaining.push(file);
                continue;
            }
            match move_file(&backup, &file.original) {
                Ok(()) => {
                    moved_any = true;
                    result.files += 1;
                }
                Err(e) => {
                    ui.warn(&format!("{e:#}; it stays in {}", backup.display()));
                    remaining.push(file);
                }
            }
        }
        if moved_any {
            result
                .dists
                .push(format!("{}=={}", dist.name, dist.version));
        }
        if !remaining.is_empty() {
            left.dists.push(ManifestDist {
                files: remaining,
                ..dist
            });
        }
    }
    if left.dists.is_empty() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("{}: cannot remove", dir.display()))?;
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    } else {
        left.write(&dir)?;
        remove_empty_dirs(&dir.join("files"));
        result.kept = Some(dir);
    }
    Ok(Some(result))
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("{}: cannot remove", path.display())),
    }
}

/// `x.py`'s `__pycache__/x.*.pyc`.
fn bytecode_of(py: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (py.parent(), py.file_stem().and_then(|s| s.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir.join("__pycache__")) else {
        return Vec::new();
    };
    let prefix = format!("{stem}.");
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".pyc")
        })
        .map(|entry| entry.path())
        .collect()
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none())
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
            ("move", Some(true)) => (Style::Added, "moved  ", "into the tier".to_string()),
            ("remove", Some(true)) => (
                Style::Added,
                "removed",
                "from the user site (the tier already has it)".to_string(),
            ),
            ("move", _) => (Style::Added, "move   ", "into the tier".to_string()),
            ("remove", _) => (
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
    match ui.print_lines(&lines) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}
