//! pyvenv.cfg: the venv's Python version, as pyctl reads it to name tiers and shims.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl_fuzz::{put, scratch_path};

fuzz_target!(|data: &[u8]| {
    let cfg = scratch_path("venv/pyvenv.cfg");
    put(&cfg, data);
    if let Some(v) = pyctl::tier::venv_python_version(cfg.parent().unwrap()) {
        let minor = pyctl::tier::minor_version(&v);
        assert!(minor.split('.').count() == 2, "{v:?} → {minor:?}");
        // The shims are files in the venv's bin/: their names never leave it.
        for name in pyctl::shims::shim_names(&v) {
            assert!(
                name.starts_with("pip") && !name.contains('/') && !name.contains(".."),
                "{name:?}"
            );
        }
    }
});
