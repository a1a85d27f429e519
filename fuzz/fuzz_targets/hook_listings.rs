//! What the dnf, pacman and apt hooks read back from the package tools: `rpm -ql` (dnf),
//! `pacman -Ql` and `dpkg-deb --contents` listings, down to the distributions they ship.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl::python::inventory::PackageSet;
use pyctl_fuzz::{checks, scratch};
use std::sync::OnceLock;

static SET: OnceLock<PackageSet> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    checks::hook_listings(
        SET.get_or_init(|| checks::small_set(&scratch("site"))),
        data,
    );
});
