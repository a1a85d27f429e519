//! The bottom layer: the filesystem (atomic writes, the tier lock), running programs (pip
//! included), masking credentials, parallel map. Uses nothing of pyctl's but `context`.

pub mod clock;
pub mod fsutil;
pub mod parallel;
pub mod pip;
pub mod redact;
pub mod syslog;
pub mod tool;
