//! One line to the system log (a tier change, a hook's report).

/// Sends `message` to syslog as pyctl; a missing syslog is only logged at debug level.
/// One line to syslog (ident `pyctl`); a missing syslog is only logged.
pub fn syslog_line(message: &str) {
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_USER,
        hostname: None,
        process: "pyctl".into(),
        pid: std::process::id(),
    };
    match syslog::unix(formatter) {
        Ok(mut writer) => {
            if let Err(e) = writer.info(message) {
                log::debug!("syslog write failed: {e}");
            }
        }
        Err(e) => log::debug!("syslog unavailable: {e}"),
    }
}
