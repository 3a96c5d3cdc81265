//! `ticketctl catalog apply FILE`: venues and events from a TOML or JSON
//! file.
//!
//! ```toml
//! [[venues]]
//! key = "hall"                 # a local name events refer to
//! name = "Gala Hall"
//! city = "Pune"
//! region = "ap-south"
//! sections = [{ name = "Floor", category = "premium", rows = [{ label = "A", seats = 10 }] }]
//!
//! [[events]]
//! venue = "hall"               # a venue key above, or venue_id = "ven-1-3"
//! title = "Gala Night"
//! kind = "concert"
//! starts_at = "2026-12-31T20:00:00Z"
//! genre = "jazz"
//! language = "en"
//! currency = "INR"
//! prices = { premium = 5000 }
//! sale_opens_at = "2026-11-01T10:00:00Z"
//! ```
//!
//! The whole file is checked before anything is created. Each create
//! carries an idempotency key derived from the file's content and the
//! entry's place, so applying the same file again (while the gateway
//! remembers the keys) answers with the same ids instead of duplicates.

use std::collections::BTreeMap;
use std::path::Path;

use client::{NewEvent, NewVenue};
use serde_json::{Map, Value};

/// A file that is not a catalog.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub(crate) struct FileError {
    pub(crate) path: String,
    pub(crate) reason: String,
}

/// A checked catalog file.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// Venues in file order, with their local keys.
    pub(crate) venues: Vec<(Option<String>, NewVenue)>,
    /// Events in file order; `venue` names a key of `venues` when set, and
    /// then `event.venue_id` is filled in once the venue exists.
    pub(crate) events: Vec<(Option<String>, NewEvent)>,
    /// Name-based id of the content, the root of the idempotency keys.
    pub(crate) digest: String,
}

/// TOML values as JSON; TOML dates become RFC 3339 strings.
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect()),
    }
}

fn take_string(entry: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match entry.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key} must be a string, not {other}")),
    }
}

/// Reads and checks a catalog file.
pub(crate) fn load(path: &Path) -> Result<Catalog, FileError> {
    let err = |reason: String| FileError { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let root: Value = if is_json {
        serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?
    } else {
        toml_to_json(toml::from_str::<toml::Value>(&text).map_err(|e| err(format!("not TOML: {e}")))?)
    };
    let Value::Object(mut root) = root else { return Err(err("expected a table of venues and events".into())) };
    let mut list = |name: &str| -> Result<Vec<Value>, FileError> {
        match root.remove(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(err(format!("{name} must be a list"))),
        }
    };
    let venue_values = list("venues")?;
    let event_values = list("events")?;
    if let Some(key) = root.keys().next() {
        return Err(err(format!("unknown key {key:?} (expected venues and events)")));
    }
    if venue_values.is_empty() && event_values.is_empty() {
        return Err(err("no venues and no events".into()));
    }

    let mut venues = Vec::new();
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    for (i, v) in venue_values.into_iter().enumerate() {
        let at = |reason: String| err(format!("venues[{i}]: {reason}"));
        let Value::Object(mut entry) = v else { return Err(at("expected a table".into())) };
        let key = take_string(&mut entry, "key").map_err(at)?;
        let venue: NewVenue = serde_json::from_value(Value::Object(entry)).map_err(|e| at(e.to_string()))?;
        if let Some(k) = &key {
            if keys.insert(k.clone(), i).is_some() {
                return Err(at(format!("key {k:?} is used twice")));
            }
        }
        venues.push((key, venue));
    }
    let mut events = Vec::new();
    for (i, v) in event_values.into_iter().enumerate() {
        let at = |reason: String| err(format!("events[{i}]: {reason}"));
        let Value::Object(mut entry) = v else { return Err(at("expected a table".into())) };
        let venue_key = take_string(&mut entry, "venue").map_err(at)?;
        match (&venue_key, entry.contains_key("venue_id")) {
            (Some(k), false) => {
                if !keys.contains_key(k) {
                    return Err(at(format!("venue {k:?} is no venue key of this file")));
                }
                // Filled in once the venue exists.
                entry.insert("venue_id".into(), Value::String(String::new()));
            }
            (None, true) => {}
            _ => return Err(at("give exactly one of venue (a key of this file) and venue_id".into())),
        }
        let event: NewEvent = serde_json::from_value(Value::Object(entry)).map_err(|e| at(e.to_string()))?;
        events.push((venue_key, event));
    }
    let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes()).to_string();
    Ok(Catalog { venues, events, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> Result<Catalog, FileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    const GOOD: &str = r#"
[[venues]]
key = "hall"
name = "Gala Hall"
city = "Pune"
region = "ap-south"
sections = [{ name = "Floor", category = "premium", rows = [{ label = "A", seats = 10 }] }]

[[events]]
venue = "hall"
title = "Gala Night"
kind = "concert"
starts_at = 2026-12-31T20:00:00Z
genre = "jazz"
language = "en"
currency = "INR"
prices = { premium = 5000 }
sale_opens_at = "2026-11-01T10:00:00Z"
"#;

    #[test]
    fn a_toml_catalog_is_read_with_its_references() {
        let c = load_text("c.toml", GOOD).unwrap();
        assert_eq!(c.venues.len(), 1);
        assert_eq!(c.venues[0].0.as_deref(), Some("hall"));
        assert_eq!(c.events[0].0.as_deref(), Some("hall"));
        assert_eq!(c.events[0].1.starts_at, "2026-12-31T20:00:00Z", "TOML dates become RFC 3339 strings");
        assert_eq!(load_text("d.toml", GOOD).unwrap().digest, c.digest, "the digest is the content's");
    }

    #[test]
    fn bad_files_name_the_problem() {
        let cases = [
            ("c.toml", GOOD.replace("city = ", "town = "), "venues[0]: unknown field `town`"),
            ("c.toml", GOOD.replace("venue = \"hall\"", "venue = \"barn\""), "events[0]: venue \"barn\""),
            ("c.toml", GOOD.replace("[[events]]", "[[shows]]"), "unknown key \"shows\""),
            ("c.toml", "this is = not toml =".to_string(), "not TOML"),
            ("c.json", "{\"venues\": 3}".to_string(), "venues must be a list"),
            ("c.json", "{}".to_string(), "no venues and no events"),
        ];
        for (name, text, wanted) in cases {
            let e = load_text(name, &text).unwrap_err().to_string();
            assert!(e.contains(wanted), "{wanted:?} not in {e:?}");
        }
        let e = load(Path::new("/nonexistent/catalog.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/catalog.toml"));
    }
}
