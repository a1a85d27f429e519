//! What the dnf, pacman and apt hooks read back from the package tools: `rpm -ql` (dnf),
//! `pacman -Ql` and `dpkg-deb --contents` listings, down to the distributions they ship.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl::conflicts::{dists_in_paths, parse_dpkg_contents};
use pyctl::inventory::canonical_name;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let rpm = dists_in_paths(text.lines(), Some("pkg"));
    let pacman = pyctl::hooks::parse_pacman_files(&text);
    let from_pacman = dists_in_paths(pacman.iter().map(|(_, f)| f.as_str()), Some("pkg"));
    let deb = parse_dpkg_contents(&text);
    let from_deb = dists_in_paths(deb.iter().map(String::as_str), Some("pkg"));
    for d in rpm.iter().chain(&from_pacman).chain(&from_deb) {
        assert!(!d.name.is_empty() && !d.version.is_empty(), "{d:?}");
        assert_eq!(d.canonical, canonical_name(&d.name));
    }
});
