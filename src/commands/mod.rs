//! The `pyctl` subcommands: each takes the context and a checked request, does the work, and
//! prints through `ui`.

pub mod conflicts;
pub mod doctor;
pub mod export;
pub mod hooks;
pub mod info;
pub mod search;
pub mod system;
pub mod wrapper;

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::cli::{Cli, Command, HookManager, SelfCommand, SystemCommand};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::transaction;
use crate::ops::undo;
use crate::python::freeze::PipReader;
use crate::python::inventory::PackageSet;
use crate::sys::fsutil::TierLock;
use crate::tier::config;
use crate::tier::history::{self, Changes, Entry};
use crate::tier::shell;
use crate::tier::shell::setup_path;
use crate::tier::shims;
use crate::tier::{self, Tier, TierKind};
use crate::ui::local_time;
use crate::ui::{Style, Ui};

/// Runs a subcommand; `config` is the tier's configuration when it could be read.
pub fn dispatch(ctx: &Context, cli: Cli, config: Option<&config::Config>) -> Result<i32> {
    let config_color = config.is_none_or(|c| c.ui.color);
    let mut ui = Ui::new(cli.color, ctx.no_color(), config_color, cli.quiet);
    ui.json = cli.json;
    let json = cli.json;
    if touches_tier(&cli.command) {
        if let Ok(tier) = tier::current(ctx) {
            crate::ops::rebuild::on_use(ctx, &ui, &tier)?;
        }
    }
    match cli.command {
        Command::Init {
            python,
            no_modify_path,
        } => init(ctx, &ui, python, no_modify_path),
        Command::Status => status(ctx, &ui, json),
        Command::History { limit } => history_cmd(ctx, &ui, limit, json),
        Command::Diff { id } => diff(ctx, &ui, id, json),
        Command::Undo { steps, to, dry_run } => {
            undo::undo(ctx, &ui, steps, to, dry_run).map(ExitCode::code)
        }
        Command::Redo { dry_run } => undo::redo(ctx, &ui, dry_run).map(ExitCode::code),
        Command::Snapshot { name, force } => {
            crate::ops::snapshots::snapshot_cmd(ctx, &ui, &name, force).map(ExitCode::code)
        }
        Command::Restore { name, dry_run } => {
            crate::ops::snapshots::restore(ctx, &ui, &name, dry_run).map(ExitCode::code)
        }
        Command::ListSnapshots => {
            crate::ops::snapshots::list_snapshots(ctx, &ui).map(ExitCode::code)
        }
        Command::DeleteSnapshot { name } => {
            crate::ops::snapshots::delete_snapshot(ctx, &ui, &name).map(ExitCode::code)
        }
        Command::Clean {
            keep_baseline,
            dry_run,
        } => crate::ops::clean::clean(ctx, &ui, keep_baseline, dry_run).map(ExitCode::code),
        Command::Gc => crate::ops::clean::gc(ctx, &ui).map(ExitCode::code),
        Command::Doctor { fix } => crate::commands::doctor::run(ctx, &ui, fix),
        Command::Hook { manager } => match manager {
            HookManager::Apt => crate::commands::hooks::apt(ctx, &ui),
            HookManager::Dnf { packages } => {
                crate::commands::hooks::dnf(ctx, &ui, &packages, false)
            }
            HookManager::Dnf5 { packages } => {
                crate::commands::hooks::dnf(ctx, &ui, &packages, true)
            }
            HookManager::Pacman => crate::commands::hooks::pacman(ctx, &ui),
            HookManager::Rebuild => crate::ops::rebuild::hook(ctx, &ui).map(ExitCode::code),
        },
        Command::Freeze { path } => freeze(ctx, &ui, path),
        Command::Config { key, value } => config_cmd(ctx, &ui, key, value, json),
        Command::Export { requested, output } => {
            crate::commands::export::run(ctx, &ui, requested, output.as_deref())
        }
        Command::Info { package, offline } => {
            crate::commands::info::run(ctx, &ui, &package, offline, json)
        }
        Command::Search {
            term,
            limit,
            refresh,
        } => crate::commands::search::run(
            ctx,
            &ui,
            &current_tier(ctx)?,
            &term,
            usize::try_from(limit).unwrap_or(usize::MAX),
            refresh,
            json,
        ),
        Command::Migrate {
            dry_run,
            find_links,
        } => crate::ops::migrate::run(ctx, &ui, dry_run, find_links).map(ExitCode::code),
        Command::System { command } => match command {
            SystemCommand::Init { python } => crate::commands::system::init(ctx, &ui, python),
            SystemCommand::Status => crate::commands::system::status(ctx, &ui, json),
        },
        Command::Generate { what } => crate::cli::generate::run(&ui, what),
        Command::SelfCmd {
            command: SelfCommand::Uninstall,
        } => self_uninstall(ctx, &ui),
    }
}

/// Commands that work on the caller's tier: a tier whose Python changed is rebuilt first
/// (`crate::ops::rebuild`). `doctor` does not: it reports the change, and `doctor --fix` repairs it as one of its fixes.
fn touches_tier(command: &Command) -> bool {
    !matches!(
        command,
        Command::Init { .. }
            | Command::Doctor { .. }
            | Command::Hook { .. }
            | Command::System { .. }
            | Command::Generate { .. }
            | Command::SelfCmd { .. }
            | Command::Config { .. }
            | Command::Freeze { path: Some(_) }
    )
}

fn current_tier(ctx: &Context) -> Result<Tier> {
    tier::current(ctx)
}

fn init(ctx: &Context, ui: &Ui, python: Option<PathBuf>, no_modify_path: bool) -> Result<i32> {
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
        _ => (current_tier(ctx)?, python),
    };
    tier.check_owner(ctx)?;
    if let Some(p) = &python {
        tier::interpreter_version(p)?;
    }
    tier.create_dirs()?;
    let lock = tier.lock(ctx, || {
        ui.info("waiting for another pip in this tier to finish...")
    })?;
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
    Ok(0)
}

fn self_uninstall(ctx: &Context, ui: &Ui) -> Result<i32> {
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
    if let Ok(tier) = current_tier(ctx) {
        if tier.venv_exists() {
            ui.info(&format!(
                "your packages stay in {}; its pip keeps working without pyctl. Delete the \
                 folder {} to remove them.",
                tier.venv().display(),
                tier.root.display()
            ));
        }
    }
    Ok(0)
}

/// The state of a history entry, for listings.
fn entry_state(entry: &Entry, lock_held: bool) -> &'static str {
    entry.state(lock_held).as_str()
}

#[derive(Serialize)]
struct HistoryRow<'a> {
    id: u64,
    kind: &'a str,
    timestamp: &'a str,
    user: &'a str,
    command: &'a str,
    state: &'a str,
    undone: bool,
    exit_code: Option<i32>,
    changes: Option<&'a Changes>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reverts: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reapplies: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rebuild: Option<&'a history::Rebuilt>,
}

fn history_cmd(ctx: &Context, ui: &Ui, limit: Option<usize>, json: bool) -> Result<i32> {
    let tier = current_tier(ctx)?;
    let log = history::read_log(&tier.history_dir())?;
    for problem in &log.problems {
        ui.warn(&format!("skipping {problem}"));
    }
    let lock_held = TierLock::is_held(&tier.lock_path());
    let undone = undo::undo_state(&log).undone;
    let entries: Vec<&Entry> = log
        .entries
        .iter()
        .rev()
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    if json {
        let rows: Vec<HistoryRow> = entries
            .iter()
            .map(|e| HistoryRow {
                id: e.id,
                kind: e.before.kind.as_str(),
                timestamp: &e.before.timestamp,
                user: &e.before.user,
                command: &e.before.command,
                state: entry_state(e, lock_held),
                undone: undone.contains(&e.id),
                exit_code: e.after.as_ref().and_then(|a| a.exit_code),
                changes: e.changes(),
                reverts: e.before.reverts.clone(),
                reapplies: e.before.reapplies.clone(),
                rebuild: e.after.as_ref().and_then(|a| a.rebuild.as_ref()),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if entries.is_empty() {
        ui.info(&format!(
            "no operations recorded yet in {}",
            tier.history_dir().display()
        ));
        return Ok(0);
    }
    let id_width = entries
        .iter()
        .map(|e| e.id.to_string().len() + 1)
        .max()
        .unwrap_or(2);
    let mut lines = Vec::new();
    for e in entries {
        let id = format!("#{}", e.id);
        let state = entry_state(e, lock_held);
        let mut tail = e.changes().map(|c| c.summary()).unwrap_or_default();
        match state {
            "ok" => {}
            "failed" => {
                let code = e.after.as_ref().and_then(|a| a.exit_code).unwrap_or(1);
                tail = format!(
                    "{tail}; {}",
                    ui.out(Style::Removed, &format!("failed (exit {code})"))
                );
            }
            other => tail = format!("{tail}; {}", ui.out(Style::Warn, other)),
        }
        if undone.contains(&e.id) {
            tail = format!("{tail}; {}", ui.out(Style::Dim, "undone"));
        }
        if !e.before.reverts.is_empty() {
            let ids: Vec<String> = e.before.reverts.iter().map(|i| format!("#{i}")).collect();
            tail = format!("{tail}; reverts {}", ids.join(" "));
        }
        if !e.before.reapplies.is_empty() {
            let ids: Vec<String> = e.before.reapplies.iter().map(|i| format!("#{i}")).collect();
            tail = format!("{tail}; brings back {}", ids.join(" "));
        }
        let tail = tail.trim_start_matches("; ").to_string();
        lines.push(format!(
            "{}  {}  {}  {}",
            ui.out(Style::Bold, &format!("{id:<id_width$}")),
            local_time(&e.before.timestamp),
            e.before.command,
            ui.out(Style::Dim, &format!("({tail})"))
        ));
        let indent = " ".repeat(id_width + 2);
        lines.extend(
            crate::ops::rebuild::history_lines(e)
                .into_iter()
                .map(|l| format!("{indent}{l}")),
        );
    }
    print_or_pipe(ui, &lines)
}

fn print_or_pipe(ui: &Ui, lines: &[String]) -> Result<i32> {
    match ui.print_lines(lines) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => other.map(|_| 0).context("cannot write to stdout"),
    }
}

#[derive(Serialize)]
struct DiffJson<'a> {
    id: u64,
    kind: &'a str,
    command: &'a str,
    timestamp: &'a str,
    state: &'a str,
    exit_code: Option<i32>,
    changes: Changes,
}

fn diff(ctx: &Context, ui: &Ui, id: Option<u64>, json: bool) -> Result<i32> {
    let tier = current_tier(ctx)?;
    let log = history::read_log(&tier.history_dir())?;
    for problem in &log.problems {
        ui.warn(&format!("skipping {problem}"));
    }
    let entry = match id {
        Some(id) => log
            .get(id)
            .with_context(|| match (log.entries.first(), log.last()) {
                (Some(first), Some(last)) => {
                    format!(
                        "no entry #{id} in {} (entries go from #{} to #{})",
                        tier.history_dir().display(),
                        first.id,
                        last.id
                    )
                }
                _ => format!(
                    "no entry #{id}: nothing is recorded yet in {}",
                    tier.history_dir().display()
                ),
            })?,
        None => log.last().with_context(|| {
            format!(
                "nothing is recorded yet in {}",
                tier.history_dir().display()
            )
        })?,
    };
    let lock_held = TierLock::is_held(&tier.lock_path());
    let changes = match entry.changes() {
        Some(c) => c.clone(),
        None => {
            // Unfinished: compare its before with the venv as it is now.
            let now = PackageSet::scan(&tier.venv())
                .map(|s| s.requirement_map())
                .unwrap_or_default();
            Changes::between(
                &crate::python::freeze::freeze_map(&entry.before.freeze),
                &now,
            )
        }
    };
    let state = entry_state(entry, lock_held);
    if json {
        let out = DiffJson {
            id: entry.id,
            kind: entry.before.kind.as_str(),
            command: &entry.before.command,
            timestamp: &entry.before.timestamp,
            state,
            exit_code: entry.after.as_ref().and_then(|a| a.exit_code),
            changes,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let mut lines = vec![format!(
        "{}  {}  {}  ({}{})",
        ui.out(Style::Bold, &format!("#{}", entry.id)),
        local_time(&entry.before.timestamp),
        entry.before.command,
        changes.summary(),
        if state == "ok" {
            String::new()
        } else {
            format!("; {state}")
        }
    )];
    lines.extend(crate::tier::history::change_lines(ui, &changes, false));
    print_or_pipe(ui, &lines)
}

fn freeze(ctx: &Context, ui: &Ui, path: Option<PathBuf>) -> Result<i32> {
    let venv = match path {
        Some(p) => p,
        None => {
            let tier = current_tier(ctx)?;
            if !tier.venv_exists() {
                bail!(
                    "no venv at {} yet; `pyctl init` or a first `pip install` creates it",
                    tier.venv().display()
                );
            }
            tier.venv()
        }
    };
    let set = PackageSet::scan(&venv)?;
    // Spelled as the venv's own pip spells it (its version read from its dist-info); what
    // pyctl records keeps METADATA's spelling whatever that pip is.
    let use_importlib = ctx.var_str("_PIP_USE_IMPORTLIB_METADATA");
    let reader = PipReader::of_venv(&venv, &set, use_importlib.as_deref());
    let text = set.freeze_as(reader);
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    print_or_pipe(ui, &lines)
}

#[derive(Serialize)]
struct StatusJson {
    tier: &'static str,
    root: PathBuf,
    venv: PathBuf,
    venv_exists: bool,
    python: Option<String>,
    packages: Option<usize>,
    /// Bytes of stored distribution files the venv no longer links to.
    store_extra_bytes: Option<u64>,
    last_operation: Option<LastOp>,
    problems: Vec<String>,
    /// Every tier of yours: the default one and one per other Python version.
    tiers: Vec<TierSummary>,
}

#[derive(Serialize)]
struct TierSummary {
    root: PathBuf,
    /// `3.12` for a `py312/` tier, `None` for the default interpreter's.
    version_dir: Option<String>,
    python: Option<String>,
    packages: Option<usize>,
    /// The tier this command looked at.
    selected: bool,
}

fn tier_summaries(ctx: &Context, selected: &Tier) -> Vec<TierSummary> {
    let mut tiers = tier::all_tiers(ctx).unwrap_or_default();
    if !tiers.contains(selected) {
        tiers.push(selected.clone());
    }
    tiers
        .into_iter()
        .map(|t| TierSummary {
            version_dir: t.version_dir_minor(),
            python: t.python_version(),
            packages: t
                .venv_exists()
                .then(|| PackageSet::scan(&t.venv()).ok().map(|s| s.len()))
                .flatten(),
            selected: &t == selected,
            root: t.root,
        })
        .collect()
}

#[derive(Serialize)]
struct LastOp {
    id: u64,
    command: String,
    timestamp: String,
    state: String,
}

fn status(ctx: &Context, ui: &Ui, json: bool) -> Result<i32> {
    let tier = current_tier(ctx)?;
    let mut problems = Vec::new();
    let set = if tier.venv_exists() {
        match PackageSet::scan(&tier.venv()) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("cannot read the package set: {e}"));
                None
            }
        }
    } else {
        if tier.is_provisioned() {
            problems.push(format!(
                "the venv {} is missing; the next `pip install` re-creates it",
                tier.venv().display()
            ));
        }
        None
    };
    if tier.venv_exists() && !tier.python().exists() {
        problems.push(format!(
            "the venv's interpreter {} is broken (a Python upgrade?)",
            tier.python().display()
        ));
    }
    let log = history::read_log(&tier.history_dir())?;
    if let Some(set) = &set {
        if let Some(problem) = crate::commands::doctor::no_pip_problem(set, &log) {
            problems.push(problem);
        }
    }
    problems.extend(
        log.problems
            .iter()
            .map(|p| format!("unreadable history file {p}")),
    );
    let lock_held = TierLock::is_held(&tier.lock_path());
    for e in log.entries.iter().filter(|e| !e.is_complete()) {
        if lock_held {
            problems.push(format!(
                "operation #{} ({}) is running",
                e.id, e.before.command
            ));
        } else {
            problems.push(format!(
                "operation #{} ({}) was interrupted; the next operation records how it ended",
                e.id, e.before.command
            ));
        }
    }
    if let (Some(set), Some(known)) = (&set, log.last_known_freeze()) {
        if log.last().is_some_and(Entry::is_complete) && set.freeze() != known {
            problems.push(
                "the venv was changed outside pyctl (e.g. `python -m pip`); the next operation \
                 records it"
                    .to_string(),
            );
        }
    }
    if tier.venv_exists() {
        for shim in shims::missing_shims(&tier, &ctx.exe) {
            problems.push(format!(
                "{} is not pyctl's shim; the next operation re-makes it",
                shim.display()
            ));
        }
    }
    if tier.kind == TierKind::User
        && tier.version_dir_minor().is_none()
        && tier.venv_exists()
        && ctx.path_position(&tier.bin_dir()).is_none()
    {
        problems.push(format!(
            "{} is not on PATH; open a new login shell, or run `pyctl init` to add it",
            tier.bin_dir().display()
        ));
    }
    problems.extend(crate::ops::rebuild::problems(ctx, &tier));
    let store_extra = tier.store_dir().is_dir().then(|| {
        crate::tier::store::Store::new(tier.store_dir(), Default::default()).extra_bytes()
    });
    let last = log.last().map(|e| LastOp {
        id: e.id,
        command: e.before.command.clone(),
        timestamp: e.before.timestamp.clone(),
        state: entry_state(e, lock_held).to_string(),
    });
    if json {
        let out = StatusJson {
            tier: tier.kind.as_str(),
            root: tier.root.clone(),
            venv: tier.venv(),
            venv_exists: tier.venv_exists(),
            python: tier.python_version(),
            packages: set.as_ref().map(PackageSet::len),
            store_extra_bytes: store_extra,
            last_operation: last,
            problems,
            tiers: tier_summaries(ctx, &tier),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let kind = match tier.version_dir_minor() {
        Some(minor) => format!("{} (python {minor})", tier.kind.as_str()),
        None => tier.kind.as_str().to_string(),
    };
    let mut lines = vec![
        format!("{:<10}{kind}", "tier"),
        format!("{:<10}{}", "venv", tier.venv().display()),
    ];
    if !tier.is_provisioned() {
        lines.push(format!(
            "{:<10}not created yet: `pip install ...` or `pyctl init` creates it",
            "state"
        ));
    }
    if let Some(v) = tier.python_version() {
        lines.push(format!("{:<10}{v}", "python"));
    }
    if let Some(set) = &set {
        lines.push(format!("{:<10}{}", "packages", set.len()));
    }
    if let Some(bytes) = store_extra {
        lines.push(format!(
            "{:<10}{} beyond the venv (`pyctl gc` frees what nothing refers to)",
            "store",
            crate::ui::human_bytes(bytes)
        ));
    }
    match &last {
        Some(op) => lines.push(format!(
            "{:<10}#{} {} ({}, {})",
            "last op",
            op.id,
            op.command,
            local_time(&op.timestamp),
            op.state
        )),
        None if tier.is_provisioned() => lines.push(format!("{:<10}none recorded", "last op")),
        None => {}
    }
    if problems.is_empty() {
        if tier.is_provisioned() {
            lines.push(format!(
                "{:<10}{}",
                "problems",
                ui.out(Style::Added, "none")
            ));
        }
    } else {
        lines.push(format!("{:<10}{}", "problems", problems.len()));
        for p in &problems {
            lines.push(format!("  {} {p}", ui.out(Style::Warn, "!")));
        }
    }
    let tiers = tier_summaries(ctx, &tier);
    if tiers.len() > 1 {
        for (i, t) in tiers.iter().enumerate() {
            let about = match (&t.python, t.packages) {
                (Some(v), Some(n)) => format!("python {v}, {n} packages"),
                (Some(v), None) => format!("python {v}"),
                (None, _) => "no venv yet".to_string(),
            };
            let flag = match &t.version_dir {
                Some(minor) => format!("  (pyctl --python {minor})"),
                None => "  (default)".to_string(),
            };
            let label = if i == 0 { "tiers" } else { "" };
            let marker = if t.selected { "*" } else { " " };
            lines.push(format!(
                "{label:<10}{marker} {} ({about}){}",
                t.root.display(),
                ui.out(Style::Dim, &flag)
            ));
        }
    }
    print_or_pipe(ui, &lines)
}

#[derive(Serialize)]
struct SettingJson<'a> {
    key: &'static str,
    value: &'a toml::Value,
    source: &'static str,
    file: Option<&'a std::path::Path>,
    allowed: String,
}

impl<'a> SettingJson<'a> {
    fn new(s: &'a config::Setting) -> Self {
        SettingJson {
            key: s.key.name,
            value: &s.value,
            source: s.source.kind(),
            file: s.source.file(),
            allowed: s.key.kind.allowed(),
        }
    }
}

/// A value as people write it in `pyctl config KEY VALUE`: words unquoted.
fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `pyctl config [KEY [VALUE]]`.
fn config_cmd(
    ctx: &Context,
    ui: &Ui,
    key: Option<String>,
    value: Option<String>,
    json: bool,
) -> Result<i32> {
    let tier = current_tier(ctx)?;
    let system = std::path::Path::new(config::SYSTEM_CONFIG);
    let key = key.as_deref().map(config::find_key).transpose()?;
    let Some(key) = key else {
        let settings = config::effective(system, &tier.config_path())?;
        if json {
            let rows: Vec<SettingJson> = settings.iter().map(SettingJson::new).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(0);
        }
        let key_width = settings.iter().map(|s| s.key.name.len()).max().unwrap_or(0);
        let value_width = settings
            .iter()
            .map(|s| value_text(&s.value).len())
            .max()
            .unwrap_or(0);
        let lines: Vec<String> = settings
            .iter()
            .map(|s| {
                let source = match s.source.file() {
                    Some(file) => file.display().to_string(),
                    None => "default".to_string(),
                };
                format!(
                    "{}  {:<value_width$}  {}",
                    ui.out(Style::Bold, &format!("{:<key_width$}", s.key.name)),
                    value_text(&s.value),
                    ui.out(Style::Dim, &format!("({source})"))
                )
            })
            .collect();
        return print_or_pipe(ui, &lines);
    };
    let Some(value) = value else {
        let settings = config::effective(system, &tier.config_path())?;
        let setting = settings
            .iter()
            .find(|s| s.key == key)
            .context("the key is missing from the effective configuration")?;
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&SettingJson::new(setting))?
            );
        } else {
            print_or_pipe(ui, &[value_text(&setting.value)])?;
        }
        return Ok(0);
    };
    let new_value = key.parse_value(&value)?;
    if tier.kind == TierKind::System && !tier.is_provisioned() {
        bail!(
            "the system tier {} is not set up yet; `sudo pyctl system init` sets it up (with its \
             owner and modes) before its configuration can be changed",
            tier.root.display()
        );
    }
    tier.check_owner(ctx)?;
    std::fs::create_dir_all(&tier.root)
        .with_context(|| format!("{}: cannot create folder", tier.root.display()))?;
    // A tier not set up yet has no lock to take, and taking one would mark it as set up.
    let _lock = if tier.is_provisioned() {
        Some(tier.lock(ctx, || {
            ui.info("waiting for another pip in this tier to finish...")
        })?)
    } else {
        None
    };
    config::set_in_file(&tier.config_path(), key, new_value)?;
    ui.info(&format!(
        "{} = {value} in {}",
        key.name,
        tier.config_path().display()
    ));
    Ok(0)
}
