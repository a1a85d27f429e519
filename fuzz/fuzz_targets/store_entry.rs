//! A store entry's entry.json, through the store's listing, lookup and verification.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl::store::Store;
use pyctl_fuzz::{put, scratch_path};

fuzz_target!(|data: &[u8]| {
    let json = scratch_path("store/alpha-1.0-0123456789abcdef/entry.json");
    std::fs::create_dir_all(json.with_file_name("files")).unwrap();
    put(&json, data);
    let store = Store::new(
        scratch_path("store/x").parent().unwrap().into(),
        Default::default(),
    );
    for (dir, entry) in store.entries() {
        // The entry's files are not there: verify says so, it does not panic.
        assert!(Store::verify(&dir, &entry).is_err() || entry.files.is_empty());
    }
    let _ = store.find("alpha", "alpha==1.0");
});
