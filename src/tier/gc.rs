//! The store's garbage-collection roots: what history, snapshots and the venv still refer to.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::python::freeze::freeze_map;
use crate::python::inventory::{requirement_key, PackageSet};
use crate::tier::history::Log;
use crate::tier::snapshot::list;
use crate::tier::Tier;

/// The packages in the tier's venv (none when it has no venv yet).
pub fn current_set(tier: &Tier) -> Result<PackageSet> {
    if !tier.venv_exists() {
        return Ok(PackageSet::default());
    }
    Ok(PackageSet::scan(&tier.venv())?)
}

/// The [`requirement_key`] of every requirement line some history entry, snapshot or the venv
/// refers to.
pub fn referenced_lines(tier: &Tier, log: &Log) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    for e in &log.entries {
        lines.extend(
            freeze_map(&e.before.freeze)
                .values()
                .map(|l| requirement_key(l)),
        );
        if let Some(a) = &e.after {
            lines.extend(freeze_map(&a.freeze).values().map(|l| requirement_key(l)));
        }
    }
    for s in list(tier) {
        if let Ok(text) = crate::sys::fsutil::read_regular_to_string(&s.path) {
            lines.extend(freeze_map(&text).values().map(|l| requirement_key(l)));
        }
    }
    if let Ok(set) = current_set(tier) {
        lines.extend(set.requirement_map().values().map(|l| requirement_key(l)));
    }
    lines
}
