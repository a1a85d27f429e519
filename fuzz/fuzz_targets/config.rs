//! config.toml: a tier's file on top of a valid system file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::{checks, scratch};

fuzz_target!(|data: &[u8]| {
    let system = scratch("system.toml");
    if !system.exists() {
        std::fs::write(
            &system,
            b"[history]\nmax_entries = 50\n[ui]\ncolor = false\n",
        )
        .unwrap();
    }
    checks::config(&system, &scratch("tier/config.toml"), data);
});
