//! RECORD files (the list of a distribution's installed files, with hashes and sizes), and the
//! hash field they hold.

use std::io::Read;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// A row of RECORD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub path: String,
    pub hash: Option<String>,
    pub size: Option<u64>,
}

/// Parses RECORD text. Rows with no path are skipped; extra columns are ignored.
pub fn parse_record(bytes: &[u8]) -> Result<Vec<RecordRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    // One record reused for every row: a RECORD has thousands.
    let mut row = csv::StringRecord::new();
    while reader
        .read_record(&mut row)
        .context("malformed RECORD row")?
    {
        let Some(path) = row.get(0).filter(|p| !p.is_empty()) else {
            continue;
        };
        let hash = row.get(1).filter(|h| !h.is_empty()).map(str::to_string);
        let size = row.get(2).and_then(|s| s.parse().ok());
        rows.push(RecordRow {
            path: path.to_string(),
            hash,
            size,
        });
    }
    Ok(rows)
}

/// The RECORD hash field of what `input` yields: `sha256=` and the digest in URL-safe base64
/// without padding, as pip writes it.
pub fn hash_field(mut input: impl Read) -> std::io::Result<String> {
    thread_local! {
        // One buffer per thread: undo, redo and restore hash thousands of files, and a zeroed
        // 64 KiB buffer per file cost more than most of those files' hashing.
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 64 * 1024]);
    }
    let mut hasher = Sha256::new();
    BUF.with(|buf| -> std::io::Result<()> {
        let mut buf = buf.borrow_mut();
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            hasher.update(&buf[..n]);
        }
    })?;
    Ok(format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.finalize())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_fields_are_what_pip_writes() {
        // sha256("hello\n") as Python's pip computes it: urlsafe base64 without padding.
        assert_eq!(
            hash_field(&b"hello\n"[..]).unwrap(),
            "sha256=WJG1tSLV3whtD_CxEPvZ0hu0_HFjrzTQgoai6Eb2vgM"
        );
    }
}
