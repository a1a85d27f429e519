//! Surviving a Python upgrade: a tier whose interpreter went away (its `bin/python` dangles) or
//! changed minor version under an unchanged link (Debian's venvs point `bin/python3` at
//! `/usr/bin/python3`, so a release upgrade changes the Python under the same name) is rebuilt on
//! the Python that is there now, with the same set, as one recorded `rebuild` entry.
//!
//! Detection reads `pyvenv.cfg` and resolves `bin/python` (no program runs), on every command
//! that touches a tier. The rebuild: the old venv waits aside (`.venv-before-rebuild`) while the
//! new one is made at the venv's own path (its scripts and activate files name that path);
//! pure-Python distributions are placed from the store into the new `lib/python3.X`, byte-compiled
//! by the new Python, their RECORD rewritten; compiled ones are reinstalled by pip at the same
//! version, from the recorded wheel folders first, then the index. A kill half-way puts the old
//! venv back at the next command, which starts the rebuild again. What no wheel could be found
//! for is named, kept in `.rebuild-pending` and tried again at each use.
//!
//! Only the default Python's tier is rebuilt, and only by its owner. A version tier (`py3X/`)
//! whose Python is gone is reported by `status` and `doctor`, never rebuilt silently.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::context::Context;
use crate::ops::transaction::{self as record, Operation};
use crate::python::freeze::{freeze_map, requirement_name};
use crate::python::inventory::{Distribution, MetadataFormat, PackageSet};
use crate::sys::fsutil::TierLock;
use crate::tier::config::Config;
use crate::tier::history::{self, Entry, Half, Kind, Log, Rebuilt};
use crate::tier::store::{self, Store, StoreEntry};
use crate::tier::{self, Tier, TierKind};
use crate::ui::Ui;

/// Where the old venv waits while its replacement is built.
pub const ASIDE: &str = ".venv-before-rebuild";
/// Requirement lines a rebuild could not put back: tried again at each use.
pub const PENDING: &str = ".rebuild-pending";
/// How long the new interpreter may take to say it can make a venv.
const PREFLIGHT_LIMIT: Duration = Duration::from_secs(20);
/// How long the package manager's hook waits for the system tier's lock.
const HOOK_LOCK_WAIT: Duration = Duration::from_secs(10);

/// What became of a tier's interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `bin/python` resolves to nothing: the Python it was made with is gone.
    Gone { was: String },
    /// `bin/python` now resolves to another minor version (`now`, `3.X`).
    Moved { was: String, now: String },
}

impl Change {
    /// The version the venv was made with (`pyvenv.cfg`).
    pub fn was(&self) -> &str {
        match self {
            Change::Gone { was } | Change::Moved { was, .. } => was,
        }
    }

    pub fn describe(&self, tier: &Tier) -> String {
        match self {
            Change::Gone { was } => format!(
                "the Python {was} it was made with is gone ({} resolves to nothing)",
                tier.python().display()
            ),
            Change::Moved { was, now } => format!(
                "it was made with Python {was}, and {} is Python {now} now",
                tier.python().display()
            ),
        }
    }
}

/// Whether the tier's interpreter is gone or changed minor version, by `pyvenv.cfg` and the real
/// file `bin/python` resolves to: no program runs. A venv whose interpreter is not a
/// `python3.X` file (a copy, an unversioned build) is only caught when it is gone.
pub fn detect(tier: &Tier) -> Option<Change> {
    let was = tier.python_version()?;
    match std::fs::canonicalize(tier.python()) {
        Err(_) => Some(Change::Gone { was }),
        Ok(real) => {
            let now = minor_of_program(&real)?;
            (now != tier::minor_version(&was)).then_some(Change::Moved { was, now })
        }
    }
}

/// `python3.13` (or `python3.13t`, `python3.13d`) → `3.13`.
fn minor_of_program(path: &Path) -> Option<String> {
    let rest = path.file_name()?.to_str()?.strip_prefix("python")?;
    let (major, tail) = rest.split_once('.')?;
    let minor: String = tail.chars().take_while(char::is_ascii_digit).collect();
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && !minor.is_empty())
        .then(|| format!("{major}.{minor}"))
}

/// What `on_use` or the hook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Nothing,
    /// The new Python cannot make a venv yet (a package manager is half-way): nothing touched.
    Waiting(String),
    /// A rebuild (or the finishing of one) was recorded with this exit code.
    Recorded(i32),
}

/// Run by every command that touches a tier, before it does what was asked: rebuilds the tier
/// when its Python changed, puts back the old venv of a rebuild that was killed, and finishes
/// what an earlier rebuild could not put back. Costs two `stat`s, a small read and a `realpath`
/// when there is nothing to do. Root never gets here for a user's tier (it is not root's).
pub fn on_use(ctx: &Context, ui: &Ui, tier: &Tier) -> Result<Done> {
    let change = if tier.venv_exists() {
        detect(tier)
    } else {
        None
    };
    let leftover = |name: &str| std::fs::symlink_metadata(tier.root.join(name)).is_ok();
    if change.is_none() && !leftover(ASIDE) && !leftover(PENDING) {
        return Ok(Done::Nothing);
    }
    if tier.version_dir_minor().is_some() || tier.owner() != Some(ctx.uid) {
        return Ok(Done::Nothing);
    }
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
    match run_locked(ctx, ui, tier, &lock)? {
        Done::Waiting(why) => {
            // The command goes on: it says what the venv's broken Python does.
            ui.warn(&format!(
                "cannot rebuild {} yet: {why}",
                tier.venv().display()
            ));
            Ok(Done::Waiting(why))
        }
        done => Ok(done),
    }
}

/// `pyctl hook rebuild`: the package managers' hook after a transaction (apt's
/// `DPkg::Post-Invoke`, dnf's and pacman's on the python3 package). Rebuilds the system tier
/// when its Python changed. Never fails the transaction: a Python that cannot make a venv yet
/// (apt runs the hook after each dpkg run of an upgrade, maybe before python3.X-venv is
/// configured) is left for the next run or the next use, in one quiet line.
pub fn hook(ctx: &Context, ui: &Ui) -> Result<i32> {
    if !ctx.is_root() {
        return Ok(0);
    }
    let tier = tier::tier_for(ctx, None)?;
    let change = tier.venv_exists().then(|| detect(&tier)).flatten();
    let leftover = |name: &str| std::fs::symlink_metadata(tier.root.join(name)).is_ok();
    if change.is_none() && !leftover(ASIDE) && !leftover(PENDING) {
        return Ok(0);
    }
    if !tier.is_provisioned() || tier.owner() != Some(0) {
        return Ok(0);
    }
    let result = tier
        .check_no_symlinks()
        .and_then(|()| {
            crate::sys::fsutil::TierLock::acquire(&tier.lock_path(), 0o600, HOOK_LOCK_WAIT, || {})
        })
        .and_then(|lock| run_locked(ctx, ui, &tier, &lock));
    match result {
        Ok(Done::Waiting(why)) => ui.info(&format!(
            "the system tier waits for its new Python ({why}); it is rebuilt at the next package \
             operation or use"
        )),
        Ok(_) => {}
        Err(e) => ui.warn(&format!(
            "the system tier was not rebuilt: {e:#}; it is tried again at the next package \
             operation or use"
        )),
    }
    Ok(0)
}

fn run_locked(ctx: &Context, ui: &Ui, tier: &Tier, lock: &TierLock) -> Result<Done> {
    put_old_venv_back(ui, tier)?;
    if let Some(change) = tier.venv_exists().then(|| detect(tier)).flatten() {
        return rebuild(ctx, ui, tier, lock, &change);
    }
    if std::fs::symlink_metadata(tier.root.join(PENDING)).is_ok() {
        return finish_pending(ctx, ui, tier, lock);
    }
    Ok(Done::Nothing)
}

/// A rebuild killed half-way left the old venv aside: the half-made one goes, the old one comes
/// back, and the rebuild starts again (the history marks the killed entry as interrupted).
fn put_old_venv_back(ui: &Ui, tier: &Tier) -> Result<()> {
    let aside = tier.root.join(ASIDE);
    if std::fs::symlink_metadata(&aside).is_err() {
        return Ok(());
    }
    let venv = tier.venv();
    if std::fs::symlink_metadata(&venv).is_ok() {
        let trash = trash_name(tier);
        std::fs::rename(&venv, &trash)
            .with_context(|| format!("cannot move the half-made {} aside", venv.display()))?;
        delete_in_background(&trash);
    }
    std::fs::rename(&aside, &venv)
        .with_context(|| format!("cannot put {} back at {}", aside.display(), venv.display()))?;
    ui.warn("a rebuild of this tier was interrupted; the venv as it was is back, and the rebuild starts again");
    Ok(())
}

fn trash_name(tier: &Tier) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    tier.root
        .join(format!(".trash-rebuild-{}-{nanos}", std::process::id()))
}

fn delete_in_background(path: &Path) {
    let _ = crate::sys::tool::system_tool("rm")
        .arg("-rf")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// The interpreter a tier is rebuilt on: the one its venv was made with when that path is still
/// there (Debian's `/usr/bin/python3`, now another version), else the tier's default.
fn new_python(ctx: &Context, tier: &Tier, change: &Change) -> Result<PathBuf> {
    let same_path = match change {
        Change::Moved { .. } => tier::venv_base_python(&tier.venv()),
        Change::Gone { .. } => None,
    };
    let python = match same_path {
        Some(p) => p,
        None => record::choose_python(ctx, tier)?,
    };
    if ctx.is_root() {
        let real = std::fs::canonicalize(&python)
            .with_context(|| format!("{}: cannot resolve", python.display()))?;
        if !crate::sys::fsutil::root_controlled(&python)
            || !crate::sys::fsutil::root_controlled(&real)
        {
            bail!(
                "{}: root rebuilds the system tier only on an interpreter that root alone can \
                 change",
                python.display()
            );
        }
    }
    Ok(python)
}

/// The new interpreter's version and byte-code tag, once it can make a venv with pip.
fn preflight(python: &Path) -> std::result::Result<(String, String), String> {
    const CHECK: &str = "import sys, venv, ensurepip\nensurepip.version()\n\
                         print('%d.%d.%d' % sys.version_info[:3])\n\
                         print(sys.implementation.cache_tag)\n";
    let mut cmd = Command::new(python);
    cmd.env_clear()
        .env("PATH", crate::sys::pip::ROOT_PATH)
        .args(["-I", "-c", CHECK]);
    match crate::sys::tool::run_bounded_output(&mut cmd, PREFLIGHT_LIMIT, 64 * 1024) {
        Ok(out) if out.success => {
            let mut lines = out.stdout.lines();
            match (lines.next(), lines.next()) {
                (Some(v), Some(tag)) => Ok((v.trim().to_string(), tag.trim().to_string())),
                _ => Err(format!("{} said nothing", python.display())),
            }
        }
        Ok(out) => Err(format!(
            "{} cannot make a venv with pip yet: {}",
            python.display(),
            out.stderr.lines().last().unwrap_or("").trim()
        )),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// How one distribution comes back.
enum How {
    /// Pure Python: placed from this store entry.
    Store(PathBuf, Box<StoreEntry>),
    /// Reinstalled by pip (compiled, editable, or not in the store).
    Pip,
}

/// The set the old Python's venv brought by itself: the newest rebuild's `own`, else the first
/// init's after, else the baseline snapshot.
fn old_own(tier: &Tier, log: &Log) -> BTreeMap<String, String> {
    if let Some(freeze) = fresh_venv_freeze(log) {
        return freeze_map(&freeze);
    }
    crate::tier::snapshot::snapshot_path(tier, crate::tier::snapshot::BASELINE)
        .ok()
        .and_then(|p| crate::sys::fsutil::read_regular_to_string(&p).ok())
        .map(|t| freeze_map(&t))
        .unwrap_or_default()
}

/// What a new venv of the tier holds by itself, as freeze text: what the newest rebuild's new
/// Python brought, else what the first init recorded. `clean` starts from it.
pub fn fresh_venv_freeze(log: &Log) -> Option<String> {
    let newest_rebuild = log
        .entries
        .iter()
        .rev()
        .filter(|e| e.before.kind == Kind::Rebuild)
        .filter_map(|e| e.after.as_ref()?.rebuild.as_ref())
        .find(|r| !r.own.is_empty());
    if let Some(r) = newest_rebuild {
        return Some(r.own.iter().map(|l| format!("{l}\n")).collect());
    }
    log.entries
        .iter()
        .find(|e| e.before.kind == Kind::Init)
        .and_then(|e| e.after.as_ref())
        .map(|a| a.freeze.clone())
}

/// Whether a stored distribution is pure Python: its WHEEL says `Root-Is-Purelib: true` and
/// every tag is `*-none-any` ("The .dist-info directory", binary distribution format), and it
/// holds no extension module.
fn is_pure(dir: &Path, entry: &StoreEntry) -> bool {
    let wheel = dir.join("files").join(&entry.dist_info).join("WHEEL");
    let Ok(text) = crate::sys::fsutil::read_regular_to_string(&wheel) else {
        return false;
    };
    let mut purelib = false;
    let mut tags = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "root-is-purelib" => purelib = value.eq_ignore_ascii_case("true"),
            "tag" => {
                if !value.ends_with("-none-any") {
                    return false;
                }
                tags += 1;
            }
            _ => {}
        }
    }
    let extension = |p: &str| p.ends_with(".so") || p.contains(".so.") || p.ends_with(".pyd");
    purelib && tags > 0 && !entry.files.iter().any(|f| extension(&f.path))
}

/// Byte-code pip or Python wrote for one version: never carried to another.
fn is_cached_bytecode(path: &str) -> bool {
    path.ends_with(".pyc") && path.split('/').any(|c| c == "__pycache__")
}

/// `lib/python3.11/...` → `lib/python3.13/...`; other paths (`bin/`, `share/`) unchanged.
fn reroot(path: &str, old_lib: &str, new_lib: &str) -> String {
    match path.strip_prefix(old_lib) {
        Some(rest) => format!("{new_lib}{rest}"),
        None => path.to_string(),
    }
}

/// One placed distribution, for the byte-code and RECORD step.
struct Placed {
    line: String,
    /// The new venv-relative `.dist-info`.
    dist_info: String,
    /// The store's RECORD of it.
    record: PathBuf,
    /// Placed `.py` files under the new site-packages (absolute).
    sources: Vec<PathBuf>,
}

/// Places a pure distribution's files from the store into the new venv, re-rooted, without
/// byte-code and without RECORD (written once the new byte-code exists).
fn place(
    store: &Store,
    dir: &Path,
    entry: &StoreEntry,
    venv: &Path,
    old_lib: &str,
    new_lib: &str,
) -> Result<Placed> {
    Store::verify(dir, entry).map_err(|e| anyhow!("{e}"))?;
    let files = dir.join("files");
    let record = format!("{}/RECORD", entry.dist_info);
    let metadata = format!("{}/METADATA", entry.dist_info);
    let new_dist_info = reroot(&entry.dist_info, old_lib, new_lib);
    let mut sources = Vec::new();
    // METADATA last: a kill never leaves a distribution that looks installed without its files
    // (a kill is undone whole anyway, by putting the old venv back).
    let mut order: Vec<&store::StoredFile> = entry
        .files
        .iter()
        .filter(|f| f.path != record && f.path != metadata && !is_cached_bytecode(&f.path))
        .collect();
    order.extend(entry.files.iter().filter(|f| f.path == metadata));
    for file in order {
        let rel = Path::new(&file.path);
        if rel.is_absolute() || rel.components().any(|c| c == Component::ParentDir) {
            bail!(
                "{}: store entry names a path outside the venv: {}",
                dir.display(),
                file.path
            );
        }
        let new_rel = reroot(&file.path, old_lib, new_lib);
        let dest = venv.join(&new_rel);
        store.put_back(&files.join(rel), &dest)?;
        if new_rel.starts_with(new_lib) && new_rel.ends_with(".py") {
            sources.push(dest);
        }
    }
    Ok(Placed {
        line: entry.line.clone(),
        dist_info: new_dist_info,
        record: files.join(&record),
        sources,
    })
}

/// Byte-compiles the placed sources with the new venv's Python, as pip does at install.
fn compile(venv: &Path, placed: &[Placed]) -> Result<()> {
    let list: String = placed
        .iter()
        .flat_map(|p| &p.sources)
        .map(|s| format!("{}\n", s.display()))
        .collect();
    if list.is_empty() {
        return Ok(());
    }
    let python = venv.join("bin/python");
    let mut child = Command::new(&python)
        .env_clear()
        .env("PATH", crate::sys::pip::ROOT_PATH)
        .args(["-I", "-m", "compileall", "-q", "-i", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(list.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        // A module with a syntax error for this Python fails here as it does under pip: the
        // others are compiled, and Python compiles at import what is left.
        log::warn!(
            "compileall: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

/// Writes a placed distribution's RECORD: the stored rows less the old byte-code, plus the new
/// byte-code with its hash and size ("Recording installed projects").
fn write_record(venv: &Path, placed: &Placed, cache_tag: &str) -> Result<()> {
    let bytes = std::fs::read(&placed.record)
        .with_context(|| format!("{}: cannot read", placed.record.display()))?;
    let rows = crate::python::record::parse_record(&bytes)?;
    let dist_info = venv.join(&placed.dist_info);
    let site = dist_info
        .parent()
        .context("a .dist-info without a parent")?;
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let record_rel = format!(
        "{}/RECORD",
        dist_info.file_name().unwrap_or_default().to_string_lossy()
    );
    for row in rows
        .iter()
        .filter(|r| !is_cached_bytecode(&r.path) && r.path != record_rel)
    {
        out.write_record([
            row.path.as_str(),
            row.hash.as_deref().unwrap_or(""),
            &row.size.map(|s| s.to_string()).unwrap_or_default(),
        ])?;
    }
    for source in &placed.sources {
        let (Some(parent), Some(stem)) = (source.parent(), source.file_stem()) else {
            continue;
        };
        let pyc = parent
            .join("__pycache__")
            .join(format!("{}.{cache_tag}.pyc", stem.to_string_lossy()));
        let Ok(meta) = std::fs::metadata(&pyc) else {
            continue;
        };
        let Ok(rel) = pyc.strip_prefix(site) else {
            continue;
        };
        out.write_record([
            rel.to_string_lossy().as_ref(),
            &store::file_hash(&pyc)?,
            &meta.len().to_string(),
        ])?;
    }
    out.write_record([record_rel.as_str(), "", ""])?;
    let text = out.into_inner().map_err(|e| anyhow!("{e}"))?;
    crate::sys::fsutil::write_atomic(&dist_info.join("RECORD"), &text)
}

/// `pip install --no-deps` of each line at its version: all together from the recorded wheel
/// folders first, then one by one (folders, then the index). Output is kept off the terminal
/// (the command the user asked for prints next); returns the lines that could not be installed.
fn pip_reinstall(
    ctx: &Context,
    venv: &Path,
    lock: &TierLock,
    find_links: &[PathBuf],
    lines: &[String],
) -> Result<Vec<String>> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let find_links: Vec<&PathBuf> = find_links
        .iter()
        .filter(|d| d.is_dir() && (!ctx.is_root() || crate::sys::fsutil::root_controlled(d)))
        .collect();
    let run = |offline: bool, reqs: &[String]| -> Result<bool> {
        let mut cmd = crate::sys::pip::command(ctx, venv, crate::sys::pip::PipFor::Tier);
        cmd.args([
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
        ]);
        if offline {
            cmd.arg("--no-index");
            for dir in &find_links {
                cmd.arg("--find-links").arg(dir);
            }
        }
        for line in reqs {
            match line.strip_prefix("-e ") {
                Some(path) => cmd.args(["-e", path.trim()]),
                None => cmd.arg(line),
            };
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("{}: cannot run pip", venv.display()))?;
        if !out.status.success() {
            log::info!(
                "pip install {}: {}",
                reqs.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.status.success())
    };
    // pip holds the tier lock while it runs: pyctl killed meanwhile, nothing else (the
    // recovery that puts the old venv back included) starts before pip is done.
    lock.keep_across_exec()?;
    let result = (|| {
        if !find_links.is_empty() && run(true, lines)? {
            return Ok(Vec::new());
        }
        let mut missing = Vec::new();
        for line in lines {
            let one = std::slice::from_ref(line);
            let done = (!find_links.is_empty() && run(true, one)?) || run(false, one)?;
            if !done {
                missing.push(line.clone());
            }
        }
        Ok(missing)
    })();
    lock.close_on_exec()?;
    result
}

/// Rebuilds the tier on the Python there now. `Waiting` when that Python cannot make a venv yet.
fn rebuild(ctx: &Context, ui: &Ui, tier: &Tier, lock: &TierLock, change: &Change) -> Result<Done> {
    let python = new_python(ctx, tier, change)?;
    let (now, cache_tag) = match preflight(&python) {
        Ok(v) => v,
        Err(why) => return Ok(Done::Waiting(why)),
    };
    let was = change.was().to_string();
    let (old_minor, new_minor) = (tier::minor_version(&was), tier::minor_version(&now));
    if matches!(change, Change::Moved { .. }) && old_minor == new_minor {
        return Ok(Done::Nothing);
    }
    let config = tier.config()?;
    let whose = match tier.kind {
        TierKind::User => "your tier",
        TierKind::System => "the system tier",
    };
    if old_minor == new_minor {
        ui.info(&format!(
            "{whose}'s Python {was} is gone: rebuilding it on {} (Python {now}) with the same \
             packages",
            python.display()
        ));
    } else {
        ui.info(&format!(
            "{whose} moves to Python {new_minor} (from {old_minor}): rebuilding it with the same \
             packages"
        ));
    }
    let log = history::read_log(&tier.history_dir())?;
    let find_links = crate::ops::engine::recorded_find_links(
        log.entries.iter().map(|e| e.before.pip_args.clone()),
    );
    let own = old_own(tier, &log);
    let op = Operation {
        kind: Kind::Rebuild,
        command: format!("pyctl rebuild (Python {was} -> {now})"),
        pip_args: Vec::new(),
        reverts: Vec::new(),
        reapplies: Vec::new(),
        target: None,
    };
    let mut detail = Rebuilt {
        from: was.clone(),
        to: now.clone(),
        ..Rebuilt::default()
    };
    let started = std::time::Instant::now();
    let outcome = record::record(ctx, ui, tier, lock, &config, &op, || {
        let _umask = (tier.kind == TierKind::System).then(SystemUmask::set);
        // Every program the rebuild runs (venv, compileall, pip) holds the tier lock while it
        // runs: pyctl killed meanwhile, the next command waits for them before it puts the old
        // venv back.
        lock.keep_across_exec()?;
        let result = rebuild_venv(
            ctx,
            ui,
            tier,
            lock,
            &config,
            RebuildInput {
                python: &python,
                old_minor: &old_minor,
                new_minor: &new_minor,
                cache_tag: &cache_tag,
                own: &own,
                find_links: &find_links,
            },
            &mut detail,
        );
        lock.close_on_exec()?;
        let code = result?;
        let trash = trash_name(tier);
        let aside = tier.root.join(ASIDE);
        if std::fs::symlink_metadata(&aside).is_ok() {
            std::fs::rename(&aside, &trash)
                .with_context(|| format!("cannot move {} to the trash", aside.display()))?;
            delete_in_background(&trash);
        }
        Ok(code)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if let Err(e) = amend_after(tier, outcome.id, detail.clone()) {
        log::warn!(
            "rebuild #{}: the details were not recorded: {e:#}",
            outcome.id
        );
    }
    log::info!(
        "rebuild #{} took {seconds:.2} s ({} from the store, {} by pip)",
        outcome.id,
        detail.store.len(),
        detail.pip.len()
    );
    if !detail.missing.is_empty() {
        ui.warn(&format!(
            "not rebuilt on Python {new_minor} (no wheel for it reachable): {}; the rest works, \
             and these are tried again at the next use",
            detail.missing.join(", ")
        ));
    }
    Ok(Done::Recorded(outcome.exit_code))
}

struct RebuildInput<'a> {
    python: &'a Path,
    old_minor: &'a str,
    new_minor: &'a str,
    cache_tag: &'a str,
    own: &'a BTreeMap<String, String>,
    find_links: &'a [PathBuf],
}

/// The recorded part of a rebuild: old venv aside, new venv, the set back, old venv gone.
fn rebuild_venv(
    ctx: &Context,
    ui: &Ui,
    tier: &Tier,
    lock: &TierLock,
    config: &Config,
    input: RebuildInput,
    detail: &mut Rebuilt,
) -> Result<i32> {
    let venv = tier.venv();
    let old_set = PackageSet::scan(&venv)?;
    let store = record::store_of(tier, config);
    // The old venv's own (pip, setuptools) are left to the new Python's venv, unless something
    // carried over declares it needs them.
    let carried_names: BTreeSet<String> = old_set
        .requirement_map()
        .into_iter()
        .filter(|(name, line)| input.own.get(name) != Some(line))
        .map(|(name, _)| name)
        .collect();
    let needed: BTreeSet<String> = carried_names
        .iter()
        .filter_map(|n| old_set.dists.get(n))
        .flat_map(crate::python::depcheck::declared_requirements)
        .map(|r| requirement_name(&r))
        .collect();
    let mut carry: Vec<(String, String, How)> = Vec::new();
    for (name, line) in old_set.requirement_map() {
        if !carried_names.contains(&name) && !needed.contains(&name) {
            detail.replaced.push(line);
            continue;
        }
        let how = old_set
            .dists
            .get(&name)
            .and_then(|d| pure_entry(&store, d, &line))
            .map_or(How::Pip, |(dir, entry)| How::Store(dir, Box::new(entry)));
        carry.push((name, line, how));
    }

    let aside = tier.root.join(ASIDE);
    std::fs::rename(&venv, &aside)
        .with_context(|| format!("cannot move {} aside", venv.display()))?;
    if let Err(e) = tier::create_venv(
        tier,
        input.python,
        config.venv.inherit_system_packages,
        ctx.is_root(),
    ) {
        if std::fs::symlink_metadata(&venv).is_ok() {
            let trash = trash_name(tier);
            std::fs::rename(&venv, &trash)?;
            delete_in_background(&trash);
        }
        std::fs::rename(&aside, &venv)
            .with_context(|| format!("cannot put {} back", aside.display()))?;
        ui.error(&format!("{e:#}"));
        detail.replaced.clear();
        return Ok(1);
    }
    let new_set = PackageSet::scan(&venv)?;
    detail.own = new_set.freeze().lines().map(str::to_string).collect();
    let new_map = new_set.requirement_map();
    let venv_real = venv.canonicalize().context("the new venv vanished")?;
    let old_lib = format!("lib/python{}/", input.old_minor);
    let new_lib = format!("lib/python{}/", input.new_minor);
    let mut placed = Vec::new();
    let mut via_pip = Vec::new();
    for (name, line, how) in carry {
        match new_map.get(&name) {
            Some(l) if *l == line => continue,
            // The new venv has another version of it (pip): pip swaps it.
            Some(_) => {
                via_pip.push(line);
                continue;
            }
            None => {}
        }
        match how {
            How::Store(dir, entry) => {
                match place(&store, &dir, &entry, &venv_real, &old_lib, &new_lib) {
                    Ok(p) => placed.push(p),
                    Err(e) => {
                        ui.warn(&format!("{line}: {e:#}; reinstalling it with pip"));
                        via_pip.push(line);
                    }
                }
            }
            How::Pip => via_pip.push(line),
        }
    }
    compile(&venv_real, &placed)?;
    for p in &placed {
        write_record(&venv_real, p, input.cache_tag)?;
        detail.store.push(p.line.clone());
    }
    let missing = pip_reinstall(ctx, &venv_real, lock, input.find_links, &via_pip)?;
    detail.pip = via_pip
        .into_iter()
        .filter(|l| !missing.contains(l))
        .collect();
    detail.missing = missing;
    write_pending(tier, &detail.missing, input.find_links)?;
    rewrite_baseline(tier, input.own, &new_set)?;
    Ok(if detail.missing.is_empty() { 0 } else { 1 })
}

/// The store entry of an installed distribution when it is pure Python and sound to place.
fn pure_entry(store: &Store, dist: &Distribution, line: &str) -> Option<(PathBuf, StoreEntry)> {
    if dist.format != MetadataFormat::DistInfo || dist.is_editable() || line.starts_with("-e ") {
        return None;
    }
    let (dir, entry) = store.entry_for_installed(dist)?;
    is_pure(&dir, &entry).then_some((dir, entry))
}

/// Keeps (or clears) the lines a rebuild could not put back.
fn write_pending(tier: &Tier, missing: &[String], find_links: &[PathBuf]) -> Result<()> {
    let path = tier.root.join(PENDING);
    if missing.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("{}: cannot remove", path.display()))
            }
            _ => Ok(()),
        };
    }
    let mut text = format!("{PENDING_HEADER}{}\n", attempt_stamp(find_links));
    text.extend(missing.iter().map(|l| format!("{l}\n")));
    crate::sys::fsutil::write_atomic(&path, text.as_bytes())
}

const PENDING_HEADER: &str = "# pyctl: not rebuilt yet; last tried ";
/// How long a failed attempt is not repeated while the wheel folders stay as they were.
const RETRY_AFTER: u64 = 3600;

/// When an attempt was made and what the wheel folders held (their change times): a wheel
/// added to a folder changes it.
fn attempt_stamp(find_links: &[PathBuf]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{now} {}", folders_stamp(find_links))
}

fn folders_stamp(find_links: &[PathBuf]) -> String {
    use std::os::unix::fs::MetadataExt;
    let stamps: Vec<String> = find_links
        .iter()
        .map(|d| {
            std::fs::metadata(d).map_or_else(
                |_| "-".to_string(),
                |m| format!("{}.{}", m.mtime(), m.mtime_nsec()),
            )
        })
        .collect();
    stamps.join(",")
}

/// Whether the last attempt failed so recently, with the wheel folders unchanged since, that
/// trying again now would fail the same way (and add an entry to the history on each command).
fn tried_recently(text: &str, find_links: &[PathBuf]) -> bool {
    let Some(stamp) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(PENDING_HEADER))
    else {
        return false;
    };
    let Some((when, folders)) = stamp.split_once(' ') else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    when.parse::<u64>()
        .is_ok_and(|t| now.saturating_sub(t) < RETRY_AFTER)
        && folders == folders_stamp(find_links)
}

/// The baseline snapshot says what a new venv holds: when it still holds the old Python's own
/// set, it now holds the new one's. A baseline the user wrote is left alone.
fn rewrite_baseline(
    tier: &Tier,
    old_own: &BTreeMap<String, String>,
    new: &PackageSet,
) -> Result<()> {
    let path = crate::tier::snapshot::snapshot_path(tier, crate::tier::snapshot::BASELINE)?;
    let Ok(text) = crate::sys::fsutil::read_regular_to_string(&path) else {
        return Ok(());
    };
    if freeze_map(&text) == *old_own {
        crate::tier::snapshot::write_snapshot(
            tier,
            crate::tier::snapshot::BASELINE,
            new,
            &crate::sys::clock::now_timestamp(),
        )?;
    }
    Ok(())
}

/// Tries again what a rebuild could not put back, as one more `rebuild` entry.
fn finish_pending(ctx: &Context, ui: &Ui, tier: &Tier, lock: &TierLock) -> Result<Done> {
    let path = tier.root.join(PENDING);
    crate::sys::fsutil::refuse_symlink(&path)?;
    let text = crate::sys::fsutil::read_regular_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let current = PackageSet::scan(&tier.venv())?.requirement_map();
    let wanted: Vec<String> = freeze_map(&text)
        .into_iter()
        .filter(|(name, line)| current.get(name) != Some(line))
        .map(|(_, line)| line)
        .collect();
    if wanted.is_empty() {
        write_pending(tier, &[], &[])?;
        return Ok(Done::Nothing);
    }
    let config = tier.config()?;
    let log = history::read_log(&tier.history_dir())?;
    let find_links = crate::ops::engine::recorded_find_links(
        log.entries.iter().map(|e| e.before.pip_args.clone()),
    );
    if tried_recently(&text, &find_links) {
        log::info!(
            "not rebuilt yet: {}; the wheel folders are as they were at the last attempt",
            wanted.join(", ")
        );
        return Ok(Done::Nothing);
    }
    let version = tier.python_version().unwrap_or_default();
    let op = Operation {
        kind: Kind::Rebuild,
        command: format!(
            "pyctl rebuild (finishing on Python {version}: {})",
            wanted.join(", ")
        ),
        pip_args: Vec::new(),
        reverts: Vec::new(),
        reapplies: Vec::new(),
        target: None,
    };
    let mut detail = Rebuilt {
        from: version.clone(),
        to: version,
        ..Rebuilt::default()
    };
    let outcome = record::record(ctx, ui, tier, lock, &config, &op, || {
        let _umask = (tier.kind == TierKind::System).then(SystemUmask::set);
        let venv = tier.venv().canonicalize().context("the venv vanished")?;
        let missing = pip_reinstall(ctx, &venv, lock, &find_links, &wanted)?;
        detail.pip = wanted
            .iter()
            .filter(|l| !missing.contains(l))
            .cloned()
            .collect();
        detail.missing = missing;
        write_pending(tier, &detail.missing, &find_links)?;
        Ok(if detail.missing.is_empty() { 0 } else { 1 })
    })?;
    if let Err(e) = amend_after(tier, outcome.id, detail.clone()) {
        log::warn!(
            "rebuild #{}: the details were not recorded: {e:#}",
            outcome.id
        );
    }
    if detail.missing.is_empty() {
        ui.info(&format!(
            "finished the rebuild: {} put back",
            detail.pip.join(", ")
        ));
    } else {
        ui.warn(&format!(
            "still not rebuilt (no wheel for this Python reachable): {}; tried again at the next \
             use",
            detail.missing.join(", ")
        ));
    }
    Ok(Done::Recorded(outcome.exit_code))
}

/// Adds what a rebuild did to its after file.
fn amend_after(tier: &Tier, id: u64, detail: Rebuilt) -> Result<()> {
    let dir = tier.history_dir();
    let mut after = history::read_half(&dir, id, Half::After).map_err(|p| anyhow!("{p}"))?;
    after.rebuild = Some(detail);
    history::write_record(&dir, Half::After, &after)?;
    Ok(())
}

/// The system tier's files are 0644 and folders 0755 whatever umask the package manager runs
/// the hook with.
struct SystemUmask(nix::sys::stat::Mode);

impl SystemUmask {
    fn set() -> SystemUmask {
        SystemUmask(nix::sys::stat::umask(
            nix::sys::stat::Mode::from_bits_truncate(0o022),
        ))
    }
}

impl Drop for SystemUmask {
    fn drop(&mut self) {
        nix::sys::stat::umask(self.0);
    }
}

/// Why `undo` cannot take a rebuild entry (or go past one): the Python it would go back to is
/// gone.
pub fn refuse_undo_past(log: &Log, oldest_reverted: u64) -> Result<()> {
    // A rebuild that was killed or could not make its venv changed nothing: no obstacle.
    let changed = |e: &Entry| {
        e.after.as_ref().is_some_and(|a| {
            a.rebuild.as_ref().is_some_and(|r| !r.own.is_empty())
                || a.changes.as_ref().is_some_and(|c| !c.is_empty())
        })
    };
    if let Some(e) = log
        .entries
        .iter()
        .rev()
        .find(|e| e.id >= oldest_reverted && e.before.kind == Kind::Rebuild && changed(e))
    {
        let from = e
            .after
            .as_ref()
            .and_then(|a| a.rebuild.as_ref())
            .map_or_else(|| e.before.python.clone(), |r| r.from.clone());
        bail!(
            "cannot undo past #{} ({}): it rebuilt the venv on a new Python because Python {from} \
             was gone or replaced, and a venv cannot go back to an interpreter that is gone; undo \
             stops at the rebuild (`pyctl undo --to {}` is as far back as it goes)",
            e.id,
            e.before.command,
            e.id
        );
    }
    Ok(())
}

/// The lines `pyctl history` shows under a rebuild entry.
pub fn history_lines(entry: &Entry) -> Vec<String> {
    let Some(r) = entry.after.as_ref().and_then(|a| a.rebuild.as_ref()) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if r.from != r.to {
        lines.push(format!("Python {} -> {}", r.from, r.to));
    }
    for (what, list) in [
        ("from the store", &r.store),
        ("reinstalled by pip", &r.pip),
        ("not rebuilt (tried again at the next use)", &r.missing),
        ("replaced by the new Python's own", &r.replaced),
    ] {
        if !list.is_empty() {
            lines.push(format!("{what}: {}", list.join(", ")));
        }
    }
    lines
}

/// For `status` and `doctor`: the caller's version tiers (`py3X/`) whose Python is gone, each
/// with how to move its packages.
pub fn stranded_version_tiers(ctx: &Context) -> Vec<(Tier, String)> {
    let Ok(tiers) = tier::all_tiers(ctx) else {
        return Vec::new();
    };
    tiers
        .into_iter()
        .filter_map(|t| {
            let minor = t.version_dir_minor()?;
            if !t.venv_exists() || !matches!(detect(&t), Some(Change::Gone { .. })) {
                return None;
            }
            let advice = move_advice(ctx, &minor);
            Some((t, advice))
        })
        .collect()
}

fn move_advice(ctx: &Context, minor: &str) -> String {
    let sudo = if ctx.is_root() { "sudo " } else { "" };
    format!(
        "Python {minor} is gone; to move its packages to the Python there now: `{sudo}pyctl \
         --python {minor} export --requested -o /tmp/py{minor}.txt`, then `{sudo}pip install -r \
         /tmp/py{minor}.txt` (or `pip3.Y` for another version), then remove the folder"
    )
}

/// Problems for `status` and `doctor`: the selected tier's interpreter changed (version tiers
/// are not rebuilt), what a rebuild could not put back yet, and stranded version tiers.
pub fn problems(ctx: &Context, tier: &Tier) -> Vec<String> {
    let mut out = Vec::new();
    if tier.version_dir_minor().is_none() {
        if let Some(change) = tier.venv_exists().then(|| detect(tier)).flatten() {
            out.push(format!(
                "{}: {}; the owner's next pip or pyctl command rebuilds it",
                tier.venv().display(),
                change.describe(tier)
            ));
        }
    }
    if let Ok(text) = crate::sys::fsutil::read_regular_to_string(&tier.root.join(PENDING)) {
        let lines: Vec<String> = freeze_map(&text).into_values().collect();
        if !lines.is_empty() {
            out.push(format!(
                "not rebuilt on this Python yet (no wheel for it was reachable): {}; tried again \
                 at the next use once a wheel folder changes, or within the hour",
                lines.join(", ")
            ));
        }
    }
    for (t, advice) in stranded_version_tiers(ctx) {
        out.push(format!("{}: {advice}", t.root.display()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_program_names() {
        for (name, want) in [
            ("/usr/bin/python3.13", Some("3.13")),
            ("/x/python3.11", Some("3.11")),
            ("/x/python3.13t", Some("3.13")),
            ("/x/python3", None),
            ("/x/python", None),
            ("/x/pypy3.10", None),
            ("/x/python3.", None),
        ] {
            assert_eq!(minor_of_program(Path::new(name)).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn rerooting_and_bytecode() {
        assert_eq!(
            reroot(
                "lib/python3.11/site-packages/a/__init__.py",
                "lib/python3.11/",
                "lib/python3.13/"
            ),
            "lib/python3.13/site-packages/a/__init__.py"
        );
        assert_eq!(
            reroot("bin/tool", "lib/python3.11/", "lib/python3.13/"),
            "bin/tool"
        );
        assert!(is_cached_bytecode(
            "lib/python3.11/site-packages/a/__pycache__/x.cpython-311.pyc"
        ));
        assert!(!is_cached_bytecode("lib/python3.11/site-packages/a/x.pyc"));
    }
}
