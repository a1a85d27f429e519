//! A record field kept as the JSON text it was read as, decoded the first time it is used.
//! Every undo and redo reads the whole history, yet uses the freeze texts and change lists of a
//! few records only: decoding (unescaping, one allocation per string) all of them was a third of
//! a redo's work on a history of hundreds of entries.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Changes;

/// A type a record keeps as read.
pub trait Deferred: DeserializeOwned + Serialize + Default {
    /// Whether `raw` (valid JSON) has to be decoded as it is read: only then may decoding it
    /// fail, which makes the whole record unreadable, as before (a freeze text that were not a
    /// string must never read as an empty set).
    fn decode_now(raw: &str) -> bool;
}

impl Deferred for String {
    fn decode_now(raw: &str) -> bool {
        // A string without `\u` escapes always decodes (serde_json has checked its escapes); a
        // `\u` escape may be half a surrogate pair, which does not.
        !raw.starts_with('"') || raw.contains("\\u")
    }
}

/// A record's `entries` (canonical name → store entry folder): only a move to that record's
/// state reads them. A map of another shape reads as none (the move then takes the newest
/// stored copy of each version, as for records written before `entries` existed).
impl Deferred for BTreeMap<String, String> {
    fn decode_now(_raw: &str) -> bool {
        false
    }
}

impl Deferred for Option<Changes> {
    fn decode_now(_raw: &str) -> bool {
        // Change lists are what people read; a record whose list has another shape keeps its
        // state and reads as one whose changes are not known (with a warning when asked).
        false
    }
}

pub struct Lazy<T> {
    raw: Option<Box<RawValue>>,
    value: OnceLock<T>,
}

impl<T: Deferred> Lazy<T> {
    pub fn new(value: T) -> Self {
        Self {
            raw: None,
            value: OnceLock::from(value),
        }
    }

    /// Whether both hold the same JSON text, without decoding either: the same text is the
    /// same value (a different text may still be too, written another way).
    pub fn same_text(&self, other: &Self) -> bool {
        matches!((&self.raw, &other.raw), (Some(a), Some(b)) if a.get() == b.get())
    }
}

impl<T: Deferred> Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.value.get_or_init(|| {
            let Some(raw) = &self.raw else {
                return T::default();
            };
            serde_json::from_str(raw.get()).unwrap_or_else(|e| {
                log::warn!("history: a record's field cannot be read ({e}); taken as empty");
                T::default()
            })
        })
    }
}

/// For `skip_serializing_if`: a change list neither read nor set.
pub fn no_changes(changes: &Lazy<Option<Changes>>) -> bool {
    changes.raw.is_none() && changes.is_none()
}

/// For `skip_serializing_if`: entries neither read nor set.
pub fn no_entries(entries: &Lazy<BTreeMap<String, String>>) -> bool {
    entries.raw.is_none() && entries.is_empty()
}

impl<T: Deferred> From<T> for Lazy<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: Deferred> Default for Lazy<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Deferred + Clone> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Self {
            raw: self.raw.clone(),
            value: self.value.clone(),
        }
    }
}

impl<T: Deferred + PartialEq> PartialEq for Lazy<T> {
    fn eq(&self, other: &Self) -> bool {
        self.same_text(other) || **self == **other
    }
}

impl<T: Deferred + Eq> Eq for Lazy<T> {}

impl<T: Deferred + std::fmt::Debug> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Deferred> Serialize for Lazy<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // The text as read, when it was read (the value decoded from it is the same, or the
        // default a text of another shape was taken as: written back as it was, not lost).
        match (&self.raw, self.value.get()) {
            (Some(raw), _) => raw.serialize(s),
            (None, Some(value)) => value.serialize(s),
            (None, None) => T::default().serialize(s),
        }
    }
}

impl<'de, T: Deferred> Deserialize<'de> for Lazy<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if T::decode_now(raw.get()) {
            let value = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
            return Ok(Self::new(value));
        }
        Ok(Self {
            raw: Some(raw),
            value: OnceLock::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_decode_when_used_and_bad_ones_when_read() {
        let text: Lazy<String> = serde_json::from_str(r#""a==1\nb==2\n""#).unwrap();
        assert!(text.value.get().is_none());
        assert_eq!(&*text, "a==1\nb==2\n");
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""a==1\nb==2\n""#);
        // Another number, a lone surrogate: errors as the record is read.
        assert!(serde_json::from_str::<Lazy<String>>("5").is_err());
        assert!(serde_json::from_str::<Lazy<String>>(r#""\ud800""#).is_err());
        let escaped: Lazy<String> = serde_json::from_str(r#""\u0061==1""#).unwrap();
        assert_eq!(&*escaped, "a==1");
        // The same value written two ways is equal; only the same text is `same_text`.
        let plain: Lazy<String> = serde_json::from_str(r#""a==1""#).unwrap();
        assert!(!plain.same_text(&escaped));
        assert_eq!(plain, escaped);
        assert_eq!(plain, Lazy::new("a==1".to_string()));
    }

    #[test]
    fn change_lists_of_another_shape_read_as_unknown() {
        let good: Lazy<Option<Changes>> =
            serde_json::from_str(r#"{"added":["a==1"],"removed":[],"modified":[]}"#).unwrap();
        assert_eq!(
            good.as_ref().map(|c| c.added.clone()),
            Some(vec!["a==1".to_string()])
        );
        let odd: Lazy<Option<Changes>> = serde_json::from_str(r#"{"added":5}"#).unwrap();
        assert!(odd.is_none());
        // Written back as read: nothing of the record is lost by not decoding it.
        assert_eq!(serde_json::to_string(&odd).unwrap(), r#"{"added":5}"#);
    }

    fn record(id: u64, freeze: &str) -> crate::tier::history::Record {
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
        let with = crate::tier::history::Record {
            entries: Lazy::new(map.clone()),
            ..record(1, "solo==2.0\nneedy==1.0\n")
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(text.contains(r#""entries":{"needy":"needy-1.0-def","solo":"solo-2.0-abc"}"#));
        let back: crate::tier::history::Record = serde_json::from_str(&text).unwrap();
        assert_eq!(*back.entries, map);
        assert_eq!(back, with);
        // None: not written, read as none; a value of another shape reads as none too.
        let without = serde_json::to_string(&record(2, "")).unwrap();
        assert!(!without.contains("entries"));
        let odd = without.replacen('{', r#"{"entries":[1,2],"#, 1);
        let odd: crate::tier::history::Record = serde_json::from_str(&odd).unwrap();
        assert!(odd.entries.is_empty());
    }
}
