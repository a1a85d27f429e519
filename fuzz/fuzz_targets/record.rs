//! RECORD (the CSV list of an installed distribution's files).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = pyctl::store::parse_record(data) {
        let lines = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
        assert!(rows.len() <= lines);
        assert!(rows.iter().all(|r| !r.path.is_empty()));
    }
});
