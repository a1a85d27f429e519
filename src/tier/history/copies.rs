//! A history record's `entries` (which store copy each distribution of its state is), kept as
//! read until a move to that state asks for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A record's `entries`, kept as the JSON text it was read as: only a move to that record's
/// state reads them, while every undo and redo reads the whole history (with ~100
/// distributions, half of each record's text and most of its strings are these).
#[derive(Debug, Clone, Default)]
pub struct Copies(Option<Box<serde_json::value::RawValue>>);

impl Copies {
    pub fn new(map: &BTreeMap<String, String>) -> Self {
        if map.is_empty() {
            return Self::default();
        }
        // A map of strings always serializes.
        Self(serde_json::value::to_raw_value(map).ok())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Canonical name → store entry folder; empty when there are none or the text is not such
    /// a map (the move then takes the newest stored copy of each version, as for records
    /// written before `entries` existed).
    pub fn map(&self) -> BTreeMap<String, String> {
        let Some(raw) = &self.0 else {
            return BTreeMap::new();
        };
        serde_json::from_str(raw.get()).unwrap_or_else(|e| {
            log::warn!("history: a record's entries cannot be read ({e}); ignored");
            BTreeMap::new()
        })
    }
}

impl PartialEq for Copies {
    fn eq(&self, other: &Self) -> bool {
        self.map() == other.map()
    }
}

impl Eq for Copies {}

impl Serialize for Copies {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Copies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Option::<Box<serde_json::value::RawValue>>::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::history::Record;

    fn record(id: u64, freeze: &str) -> Record {
        let text = format!(
            r#"{{"schema":1,"id":{id},"kind":"pip","timestamp":"t","user":"u","command":"c","python":"p","venv":"/v","freeze":{}}}"#,
            serde_json::to_string(freeze).unwrap()
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn entries_are_written_and_read_back_as_the_map() {
        let map: BTreeMap<String, String> = [("solo", "solo-2.0-abc"), ("needy", "needy-1.0-def")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let with = Record {
            entries: Copies::new(&map),
            ..record(1, "solo==2.0\nneedy==1.0\n")
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(text.contains(r#""entries":{"needy":"needy-1.0-def","solo":"solo-2.0-abc"}"#));
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.entries.map(), map);
        assert_eq!(back, with);
        // None: not written, read as none; a value of another shape reads as none too.
        let without = serde_json::to_string(&record(2, "")).unwrap();
        assert!(!without.contains("entries"));
        let odd = without.replacen('{', r#"{"entries":[1,2],"#, 1);
        let odd: Record = serde_json::from_str(&odd).unwrap();
        assert!(odd.entries.map().is_empty());
    }
}
