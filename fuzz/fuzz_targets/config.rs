//! config.toml: a tier's file on top of a valid system file. Either a configuration, or an error
//! that names the file at fault.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::{put, scratch_path};

fuzz_target!(|data: &[u8]| {
    let system = scratch_path("etc/config.toml");
    put(
        &system,
        b"[history]\nmax_entries = 50\n[ui]\ncolor = false\n",
    );
    let tier = scratch_path("tier/config.toml");
    put(&tier, data);
    if let Err(e) = pyctl::config::Config::load_from(&system, Some(&tier)) {
        let said = format!("{e:#}");
        assert!(said.contains(&*tier.to_string_lossy()), "{said}");
    }
});
