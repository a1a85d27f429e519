//! The time stamps pyctl writes (history entries, snapshots, the store, the index cache).

/// Now, in UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_timestamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
