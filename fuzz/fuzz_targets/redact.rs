//! Credentials masking (`pyctl::sys::redact`) on any text: no URL keeps its password.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    checks::redact(data);
});
