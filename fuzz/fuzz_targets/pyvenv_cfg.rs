//! pyvenv.cfg: the venv's Python version, as pyctl reads it to name tiers and shims.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::{checks, scratch};

fuzz_target!(|data: &[u8]| {
    checks::pyvenv_cfg(&scratch("venv"), data);
});
