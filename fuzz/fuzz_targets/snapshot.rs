//! Snapshot files (freeze text): the freeze map and the undo engine's plan against a small set.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl::python::inventory::PackageSet;
use pyctl::tier::store::Store;
use pyctl_fuzz::{checks, scratch};
use std::sync::OnceLock;

static STATE: OnceLock<(Store, PackageSet)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (store, current) = STATE.get_or_init(|| {
        let store = Store::new(scratch("store"), Default::default());
        (store, checks::small_set(&scratch("site")))
    });
    checks::snapshot(store, current, data);
});
