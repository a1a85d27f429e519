//! METADATA (dist-info) and PKG-INFO (egg-info) through the site-packages scan and freeze.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::{checks, scratch};

fuzz_target!(|data: &[u8]| {
    checks::metadata(&scratch("site"), data);
});
