//! RECORD (the CSV list of an installed distribution's files).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    checks::record(data);
});
