//! Snapshot files (freeze text): the freeze map and the undo engine's plan against a small set.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl::inventory::PackageSet;
use pyctl::store::Store;
use pyctl_fuzz::{put, scratch_path};
use std::sync::OnceLock;

static CURRENT: OnceLock<PackageSet> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let current = CURRENT.get_or_init(|| {
        let metadata = scratch_path("site/alpha-1.0.dist-info/METADATA");
        put(
            &metadata,
            b"Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n",
        );
        PackageSet::scan_site(metadata.parent().unwrap().parent().unwrap()).unwrap()
    });
    let store = Store::new(scratch_path("store"), Default::default());
    let text = String::from_utf8_lossy(data);
    let map = pyctl::record::freeze_map(&text);
    assert!(map.len() <= text.lines().count());
    let plan = pyctl::engine::plan(&store, current, &text, "3.11");
    assert!(plan.add.len() + plan.change.len() <= map.len());
    let _ = plan.summary();
});
