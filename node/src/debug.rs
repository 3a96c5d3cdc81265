//! Debug-only hooks of `ticketd run` for the fault-injection suite
//! (`jepsen/`): planted bugs (`--debug-plant <bug>`), a skewable clock and
//! replica state digests. **Never for production.** Every one of them is
//! refused unless the environment also carries
//! `DEBUG_TICKETD_ALLOW=i-know-this-is-not-production`, so a stray flag in
//! a deployment stops the node at start-up instead of running it broken.
//! (The variables do not start with `TICKETD_`: those are configuration
//! keys, and unknown ones stop the node.)

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

/// Turns on the hooks asked for by `plants` and the environment, or says
/// why it will not.
pub fn install(plants: &[String]) -> Result<(), String> {
    let clock = std::env::var_os(CLOCK_OFFSET_FILE_ENV).map(PathBuf::from);
    let digests = std::env::var_os(DIGEST_DIR_ENV).map(PathBuf::from);
    if plants.is_empty() && clock.is_none() && digests.is_none() {
        return Ok(());
    }
    if std::env::var(ALLOW_ENV).as_deref() != Ok(ALLOW_VALUE) {
        return Err(format!(
            "debug hooks (--debug-plant, {CLOCK_OFFSET_FILE_ENV}, {DIGEST_DIR_ENV}) are for tests only; \
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
    bugs.into_iter().for_each(raft::debug::plant);
    if let Some(path) = clock {
        raft::debug::set_clock_offset_file(path);
    }
    if let Some(dir) = digests {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{DIGEST_DIR_ENV} {}: {e}", dir.display()))?;
        raft::debug::set_digest_dir(dir);
    }
    Ok(())
}
