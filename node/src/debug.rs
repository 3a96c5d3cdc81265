//! Debug-only hooks of `ticketd run` for the fault-injection suite
//! (`jepsen/`): planted bugs (`--debug-plant <bug>`), a skewable clock and
//! replica state digests. **Never for production.** Every one of them is
//! refused unless the environment also carries
//! `DEBUG_TICKETD_ALLOW=i-know-this-is-not-production`, so a stray flag in
//! a deployment stops the node at start-up instead of running it broken.
//! (The variables do not start with `TICKETD_`: those are configuration
//! keys, and unknown ones stop the node.)

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use raft::debug::Plant;

/// The variable that must be set for any debug hook.
pub const ALLOW_ENV: &str = "DEBUG_TICKETD_ALLOW";
/// Its one accepted value.
pub const ALLOW_VALUE: &str = "i-know-this-is-not-production";
/// A file holding a signed number of milliseconds added to the node's clock
/// (re-read every 50 ms), so the suite can bump and strobe it.
pub const CLOCK_OFFSET_FILE_ENV: &str = "DEBUG_TICKETD_CLOCK_OFFSET_FILE";
/// A directory where the node appends its groups' state digests.
pub const DIGEST_DIR_ENV: &str = "DEBUG_TICKETD_DIGEST_DIR";
/// `from=to,from=to...`: peer addresses this node dials through a fault
/// proxy (`to`) instead of directly (`from`).
pub const DIAL_MAP_ENV: &str = "DEBUG_TICKETD_DIAL_MAP";

/// Turns on the hooks asked for by `plants` and the environment, or says
/// why it will not.
pub fn install(plants: &[String]) -> Result<(), String> {
    let clock = std::env::var_os(CLOCK_OFFSET_FILE_ENV).map(PathBuf::from);
    let digests = std::env::var_os(DIGEST_DIR_ENV).map(PathBuf::from);
    let dial = std::env::var(DIAL_MAP_ENV).ok();
    if plants.is_empty() && clock.is_none() && digests.is_none() && dial.is_none() {
        return Ok(());
    }
    if std::env::var(ALLOW_ENV).as_deref() != Ok(ALLOW_VALUE) {
        return Err(format!(
            "debug hooks (--debug-plant, {CLOCK_OFFSET_FILE_ENV}, {DIGEST_DIR_ENV}, {DIAL_MAP_ENV}) are for tests only; \
             set {ALLOW_ENV}={ALLOW_VALUE} if this really is a test"
        ));
    }
    let mut bugs = Vec::new();
    for name in plants {
        match Plant::parse(name) {
            Some(p) => bugs.push(p),
            None => {
                let known: Vec<&str> = Plant::ALL.iter().map(|(_, n)| *n).collect();
                return Err(format!("unknown --debug-plant {name:?}; known: {}", known.join(", ")));
            }
        }
    }
    let dial = dial.map(|text| parse_dial_map(&text)).transpose()?;
    bugs.into_iter().for_each(raft::debug::plant);
    if let Some(map) = dial {
        raft::debug::set_dial_map(map);
    }
    if let Some(path) = clock {
        raft::debug::set_clock_offset_file(path);
    }
    if let Some(dir) = digests {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{DIGEST_DIR_ENV} {}: {e}", dir.display()))?;
        raft::debug::set_digest_dir(dir);
    }
    Ok(())
}

fn parse_dial_map(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                map.insert(from.trim().to_string(), to.trim().to_string());
            }
            _ => return Err(format!("{DIAL_MAP_ENV}: {pair:?} is not from=to")),
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_maps_parse_and_bad_pairs_are_refused() {
        let map = parse_dial_map("127.0.0.1:7001=127.0.0.1:9001, 127.0.0.1:7002=127.0.0.1:9002,").unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["127.0.0.1:7002"], "127.0.0.1:9002");
        assert!(parse_dial_map("127.0.0.1:7001").is_err());
        assert!(parse_dial_map("=127.0.0.1:9001").is_err());
    }
}
