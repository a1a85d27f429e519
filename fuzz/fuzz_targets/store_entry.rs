//! A store entry's entry.json, through the store's listing, lookup and verification.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::{checks, scratch};

fuzz_target!(|data: &[u8]| {
    checks::store_entry(&scratch("store"), data);
});
