//! direct_url.json (PEP 610) through the site-packages scan and the freeze line it makes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::{checks, scratch};

fuzz_target!(|data: &[u8]| {
    checks::direct_url(&scratch("site"), data);
});
