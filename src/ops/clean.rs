//! `pyctl clean` (back to what a new venv holds, or to the baseline snapshot, in a new venv)
//! and `pyctl gc` (store entries nothing refers to).

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::ops::snapshots::read_snapshot;
use crate::ops::target::{open_tier, read_log, transact, Target};
use crate::ops::transaction::{self, Operation};
use crate::tier::gc::referenced_lines;
use crate::tier::history::Kind;
use crate::tier::snapshot;
use crate::ui::human_bytes;
use crate::ui::Ui;

pub fn clean(ctx: &Context, ui: &Ui, keep_baseline: bool, dry_run: bool) -> Result<ExitCode> {
    let (tier, config, lock) = open_tier(ctx, ui)?;
    let log = read_log(&tier, ui)?;
    let freeze = if keep_baseline {
        let path = snapshot::snapshot_path(&tier, snapshot::BASELINE)?;
        read_snapshot(&tier, snapshot::BASELINE, &path)?
    } else {
        // What a new venv holds: the state the newest rebuild's new venv or the first init
        // recorded, or once pruning has removed those, the baseline snapshot.
        let from_init = crate::ops::rebuild::fresh_venv_freeze(&log);
        match from_init {
            Some(freeze) => freeze,
            None => {
                let path = snapshot::snapshot_path(&tier, snapshot::BASELINE)?;
                crate::sys::fsutil::read_regular_to_string(&path).with_context(|| {
                    format!(
                        "no init entry in the history and no {} to tell what a new venv holds",
                        path.display()
                    )
                })?
            }
        }
    };
    let target = Target {
        op: Operation::new(
            Kind::Clean,
            if keep_baseline {
                "pyctl clean --keep-baseline"
            } else {
                "pyctl clean"
            },
        ),
        freeze,
        entries: Default::default(),
        fresh_venv: true,
        skip_if_empty: false,
        python: None,
        folders: None,
    };
    transact(ctx, ui, &tier, &config, &lock, Some(&log), target, dry_run)
}

pub fn gc(ctx: &Context, ui: &Ui) -> Result<ExitCode> {
    let (tier, config, _lock) = open_tier(ctx, ui)?;
    let log = read_log(&tier, ui)?;
    let referenced = referenced_lines(&tier, &log);
    let (removed, freed) = transaction::store_of(&tier, &config).collect_garbage(&referenced)?;
    ui.info(&format!(
        "removed {removed} store entries no history entry or snapshot refers to; freed {}",
        human_bytes(freed)
    ));
    Ok(ExitCode::Success)
}
