//! direct_url.json (PEP 610) through the site-packages scan and the freeze line it makes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl::inventory::PackageSet;
use pyctl_fuzz::{put, scratch_path};

fuzz_target!(|data: &[u8]| {
    let metadata = scratch_path("site/alpha-1.0.dist-info/METADATA");
    put(
        &metadata,
        b"Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n",
    );
    put(
        &scratch_path("site/alpha-1.0.dist-info/direct_url.json"),
        data,
    );
    let site = metadata.parent().unwrap().parent().unwrap();
    let set = PackageSet::scan_site(site).expect("the scan reads a folder it can list");
    let alpha = set
        .get("alpha")
        .expect("a bad direct_url.json does not hide the distribution");
    assert_eq!(alpha.name, "alpha");
    let lines = alpha.freeze_lines();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| !l.is_empty()));
    let _ = set.freeze();
});
