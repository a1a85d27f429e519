//! The one reader of Core metadata headers: a `.dist-info/METADATA`, an `.egg-info/PKG-INFO`
//! (or an `.egg-info` file), and a wheel's `WHEEL` file, which share the layout
//! (<https://packaging.python.org/en/latest/specifications/core-metadata/>): RFC 822 style
//! `Key: value` lines up to the first blank line, the body after it (the long description) not
//! read.
//!
//! - Folding: a line that starts with a space or a tab goes on with the header before it (RFC 822
//!   section 3.1.1): unfolding drops the line break and keeps the rest of the line, white space
//!   included. (Python's `email` parser, which pip reads these files with, keeps the break too;
//!   a requirement or a summary reads the same either way.)
//! - A header may stand more than once (`Requires-Dist`, `Classifier`): each is kept, in order.
//! - Keys match whatever their case; values are trimmed.
//! - Bytes that are not UTF-8 (an old `PKG-INFO` in Latin-1) become U+FFFD in that line only.
//! - A line with no colon that does not continue a header is skipped.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The headers of one metadata file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    /// Reads the headers of the file at `path`, stopping at the blank line that ends them.
    /// `Ok(None)` when there is no such file.
    pub fn read(path: &Path) -> std::io::Result<Option<Headers>> {
        match std::fs::File::open(path) {
            Ok(file) => Headers::from_reader(file).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The headers at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Headers {
        Headers::from_reader(bytes).unwrap_or_default()
    }

    fn from_reader(input: impl Read) -> std::io::Result<Headers> {
        let mut reader = BufReader::new(input);
        let mut fields: Vec<(String, String)> = Vec::new();
        // Whether the line before was a header (so a folded line has one to go on with).
        let mut in_header = false;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut().filter(|_| in_header) {
                    value.push_str(line);
                }
                continue;
            }
            in_header = match line.split_once(':') {
                Some((key, value)) => {
                    fields.push((key.trim().to_string(), value.to_string()));
                    true
                }
                None => false,
            };
        }
        for (_, value) in &mut fields {
            *value = value.trim().to_string();
        }
        Ok(Headers { fields })
    }

    /// The first value of `key` (any case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (any case), in file order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_go_on_with_the_header_before_them() {
        let h = Headers::parse(
            b"Metadata-Version: 2.1\r\nName: demo\r\nSummary: a summary\r\n  that goes on\r\n\
              Requires-Dist: other (>=1.0) ;\n\tpython_version >= \"3.8\"\nVersion: 1.0\n",
        );
        assert_eq!(h.get("summary"), Some("a summary  that goes on"));
        assert_eq!(
            h.get("Requires-Dist"),
            Some("other (>=1.0) ;\tpython_version >= \"3.8\"")
        );
        assert_eq!(h.get("VERSION"), Some("1.0"));
        // A continuation with no header before it continues nothing.
        let h = Headers::parse(b"  stray\nno colon here\n more\nName: x\n");
        assert_eq!(h.fields, vec![("Name".to_string(), "x".to_string())]);
    }

    #[test]
    fn repeated_headers_are_all_kept_in_order() {
        let h = Headers::parse(
            b"Name: a\nRequires-Dist: one\nClassifier: X\nrequires-dist: two ; extra == \"t\"\n\
              Name: b\n",
        );
        assert_eq!(
            h.get_all("Requires-Dist").collect::<Vec<_>>(),
            ["one", "two ; extra == \"t\""]
        );
        assert_eq!(h.get("name"), Some("a"));
        assert_eq!(h.get_all("License").count(), 0);
        assert_eq!(h.get("License"), None);
    }

    #[test]
    fn the_body_after_the_blank_line_is_not_read() {
        let h = Headers::parse(b"Name: a\nVersion: 1\n\nRequires-Dist: not-a-header\nName: body\n");
        assert_eq!(h.get_all("requires-dist").count(), 0);
        assert_eq!(h.get_all("name").collect::<Vec<_>>(), ["a"]);
        assert_eq!(Headers::parse(b"\nName: a\n"), Headers::default());
        assert_eq!(Headers::parse(b""), Headers::default());
    }

    #[test]
    fn bytes_that_are_not_utf8_spoil_only_their_own_line() {
        let h = Headers::parse(b"Author: Fran\xe7ois\nName: caf\xc3\xa9\nVersion: 2.0\n");
        assert_eq!(h.get("author"), Some("Fran\u{fffd}ois"));
        assert_eq!(h.get("name"), Some("caf\u{e9}"));
        assert_eq!(h.get("version"), Some("2.0"));
    }

    #[test]
    fn files_are_read_up_to_the_body_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("METADATA");
        let mut text = b"Name: big\nVersion: 1\n\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 100_000));
        std::fs::write(&path, &text).unwrap();
        let h = Headers::read(&path).unwrap().unwrap();
        assert_eq!((h.get("name"), h.get("version")), (Some("big"), Some("1")));
        assert_eq!(Headers::read(&dir.path().join("none")).unwrap(), None);
        // A folder where the file should be is an error, not "no file".
        assert!(Headers::read(dir.path()).is_err());
    }
}
