//! apt's DPkg::Pre-Install-Pkgs input (protocol versions 1 to 3) as `pyctl hook apt` reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let actions = pyctl::hooks::parse_apt_input(&text);
    assert!(actions.len() <= text.lines().count());
    for a in &actions {
        if let Some(deb) = &a.deb {
            // The hook only ever reads .deb paths that apt gave it.
            assert!(text.contains(deb.as_str()), "{deb:?} is not in the input");
        }
    }
});
