//! apt's DPkg::Pre-Install-Pkgs input (protocol versions 1 to 3) as `pyctl hook apt` reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    checks::apt_hook(data);
});
