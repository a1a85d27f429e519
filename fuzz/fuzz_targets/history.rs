//! History files: entry 5's before or after beside four whole entries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::{checks, scratch};

fuzz_target!(|data: &[u8]| {
    checks::history(&scratch("history"), data);
});
