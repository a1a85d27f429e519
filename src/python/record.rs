//! RECORD files (the list of a distribution's installed files, with hashes and sizes).

use anyhow::{Context as _, Result};

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
    for row in reader.records() {
        let row = row.context("malformed RECORD row")?;
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
