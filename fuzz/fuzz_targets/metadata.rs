//! METADATA (dist-info) and PKG-INFO (egg-info) through the site-packages scan and freeze.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl::inventory::{canonical_name, PackageSet};
use pyctl_fuzz::{put, scratch_path};

fuzz_target!(|data: &[u8]| {
    let metadata = scratch_path("site/alpha-1.0.dist-info/METADATA");
    let pkg_info = scratch_path("site/legacy-1.0.egg-info/PKG-INFO");
    put(&metadata, data);
    put(&pkg_info, data);
    let site = metadata.parent().unwrap().parent().unwrap();
    let set = PackageSet::scan_site(site).expect("the scan reads a folder it can list");
    assert!(set.len() <= 2);
    for (key, dist) in &set.dists {
        assert!(!dist.name.is_empty());
        assert_eq!(key, &canonical_name(&dist.name));
        for line in dist.freeze_lines() {
            assert!(!line.is_empty());
        }
    }
    let _ = set.freeze();
    let _ = set.requirement_map();
});
