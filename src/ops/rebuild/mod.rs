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

mod carry;
mod pending;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::target::{delete_in_background, unique_trash};
use crate::ops::transaction::{self as record, Operation};
use crate::python::inventory::PackageSet;
use crate::sys::fsutil::TierLock;
use crate::tier::config::Config;
use crate::tier::history::{self, Half, Kind, Rebuilt};
use crate::tier::{self, Tier, TierKind};
use crate::ui::Ui;

pub use report::{
    fresh_venv_freeze, history_lines, problems, refuse_undo_past, stranded_version_tiers,
};

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
    if tier.venv_half_made() {
        return None;
    }
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
    let lock = tier.lock_waiting(ctx, ui)?;
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
pub fn hook(ctx: &Context, ui: &Ui) -> Result<ExitCode> {
    if !ctx.is_root() {
        return Ok(ExitCode::Success);
    }
    let tier = tier::tier_for(ctx, None)?;
    let change = tier.venv_exists().then(|| detect(&tier)).flatten();
    let leftover = |name: &str| std::fs::symlink_metadata(tier.root.join(name)).is_ok();
    if change.is_none() && !leftover(ASIDE) && !leftover(PENDING) {
        return Ok(ExitCode::Success);
    }
    if !tier.is_provisioned() || tier.owner() != Some(0) {
        return Ok(ExitCode::Success);
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
    Ok(ExitCode::Success)
}

fn run_locked(ctx: &Context, ui: &Ui, tier: &Tier, lock: &TierLock) -> Result<Done> {
    put_old_venv_back(ui, tier)?;
    if let Some(change) = tier.venv_exists().then(|| detect(tier)).flatten() {
        return rebuild(ctx, ui, tier, lock, &change);
    }
    if std::fs::symlink_metadata(tier.root.join(PENDING)).is_ok() {
        return pending::finish_pending(ctx, ui, tier, lock);
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
        let trash = unique_trash(tier, "rebuild");
        crate::sys::fsutil::move_to_trash(&venv, &trash)
            .with_context(|| format!("cannot move the half-made {} aside", venv.display()))?;
        delete_in_background(&trash);
    }
    crate::sys::fsutil::move_dir(&aside, &venv)
        .with_context(|| format!("cannot put {} back at {}", aside.display(), venv.display()))?;
    ui.warn("a rebuild of this tier was interrupted; the venv as it was is back, and the rebuild starts again");
    Ok(())
}

/// The interpreter a tier is rebuilt on: the one its venv was made with when that path is still
/// there (Debian's `/usr/bin/python3`, now another version), else the tier's default.
fn new_python(ctx: &Context, tier: &Tier, change: &Change) -> Result<PathBuf> {
    let same_path = match change {
        Change::Moved { .. } => tier.base_python(),
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
    let own = carry::old_own(tier, &log);
    let op = Operation::new(
        Kind::Rebuild,
        format!("pyctl rebuild (Python {was} -> {now})"),
    );
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
        let trash = unique_trash(tier, "rebuild");
        let aside = tier.root.join(ASIDE);
        if std::fs::symlink_metadata(&aside).is_ok() {
            crate::sys::fsutil::move_to_trash(&aside, &trash)
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
    let (carry, replaced) = carry::sort_out(&old_set, input.own, &store);
    detail.replaced = replaced;
    if let Some(e) = swap_in_new_venv(ctx, tier, config, input.python)? {
        ui.error(&format!("{e:#}"));
        detail.replaced.clear();
        return Ok(1);
    }
    let new_set = PackageSet::scan(&venv)?;
    detail.own = new_set.freeze().lines().map(str::to_string).collect();
    let venv_real = venv.canonicalize().context("the new venv vanished")?;
    let libs = carry::Libs {
        old: format!("lib/python{}/", input.old_minor),
        new: format!("lib/python{}/", input.new_minor),
    };
    let (placed, via_pip) = carry::place_all(
        ui,
        &store,
        carry,
        &new_set.requirement_map(),
        &venv_real,
        &libs,
    );
    carry::compile(&venv_real, &placed)?;
    for p in &placed {
        carry::write_record(&venv_real, p, input.cache_tag)?;
        detail.store.push(p.line.clone());
    }
    let missing = carry::pip_reinstall(ctx, &venv_real, lock, input.find_links, &via_pip)?;
    detail.pip = via_pip
        .into_iter()
        .filter(|l| !missing.contains(l))
        .collect();
    detail.missing = missing;
    pending::write_pending(tier, &detail.missing, input.find_links)?;
    carry::rewrite_baseline(tier, input.own, &new_set)?;
    Ok(if detail.missing.is_empty() { 0 } else { 1 })
}

/// Moves the old venv aside and makes the new one at its path. When the new one cannot be made,
/// the old one is put back and the reason returned.
fn swap_in_new_venv(
    ctx: &Context,
    tier: &Tier,
    config: &Config,
    python: &Path,
) -> Result<Option<anyhow::Error>> {
    let venv = tier.venv();
    let aside = tier.root.join(ASIDE);
    crate::sys::fsutil::move_dir(&venv, &aside)
        .with_context(|| format!("cannot move {} aside", venv.display()))?;
    let Err(e) = tier::create_venv(
        tier,
        python,
        config.venv.inherit_system_packages,
        &tier::pip_from(ctx, tier),
    ) else {
        return Ok(None);
    };
    if std::fs::symlink_metadata(&venv).is_ok() {
        let trash = unique_trash(tier, "rebuild");
        crate::sys::fsutil::move_to_trash(&venv, &trash)?;
        delete_in_background(&trash);
    }
    crate::sys::fsutil::move_dir(&aside, &venv)
        .with_context(|| format!("cannot put {} back", aside.display()))?;
    Ok(Some(e))
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
pub(super) struct SystemUmask(nix::sys::stat::Mode);

impl SystemUmask {
    pub(super) fn set() -> SystemUmask {
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
}
