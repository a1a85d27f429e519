//! History files: the fuzzed file is entry 5's before or after, beside four whole entries, read by
//! the log reader, the index, the undo state and the last-known-freeze lookup.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pyctl::history::{self, Half};
use pyctl_fuzz::{put, scratch_path, HISTORY};

fuzz_target!(|data: &[u8]| {
    let dir = scratch_path("history/x");
    let dir = dir.parent().unwrap();
    if let Ok(old) = std::fs::read_dir(dir) {
        for f in old.flatten() {
            let _ = std::fs::remove_file(f.path());
        }
    }
    for (i, text) in HISTORY.iter().enumerate() {
        for half in [Half::Before, Half::After] {
            put(
                &dir.join(history::file_name(i as u64 + 1, half)),
                text.as_bytes(),
            );
        }
    }
    let half = if data.first().is_some_and(|b| b & 1 == 1) {
        Half::After
    } else {
        Half::Before
    };
    put(&dir.join(history::file_name(5, half)), data);

    let log = history::read_log(dir).expect("the log reader reads a folder it can list");
    assert!(log.entries.len() >= 4, "a bad file hid a good one");
    assert!(log.entries.len() <= 5);
    assert!(log.entries.windows(2).all(|w| w[0].id < w[1].id));
    for p in &log.problems {
        assert!(p.path.starts_with(dir), "{p}");
    }
    let _ = pyctl::undo::undo_state(&log);
    let _ = log.last_known_freeze();
    let idx = history::index(dir).expect("the index reads a folder it can list");
    assert_eq!(idx.max_id, 5);
    let _ = history::last_known_freeze(dir, &idx, |_| {});
});
