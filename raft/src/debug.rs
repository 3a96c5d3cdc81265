//! Debug-only hooks for the fault-injection suite (`jepsen/`): bugs it can
//! plant to prove its checkers catch them, a clock it can skew, and state
//! digests it compares across replicas. **Never for production.** Nothing
//! here is active unless the process calls [`plant`],
//! [`set_clock_offset_file`] or [`set_digest_dir`]; `ticketd run` does so
//! only when told to by flags *and* an environment variable that says the
//! process is a test (see `node/src/debug.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use statemachine::{Millis, State};

/// A bug the suite can plant in a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plant {
    /// Linearizable reads skip ReadIndex and the leadership check: any
    /// replica answers from its applied state (a read from a follower, or a
    /// deposed leader, without a read index).
    StaleRead,
    /// Log appends skip the write-ahead log and are acknowledged at once:
    /// acknowledged entries live only in memory until RocksDB flushes.
    AckBeforeSync,
    /// The leader evicts live holds of other users on the seats a hold asks
    /// for before proposing it: the hold-conflict check is skipped.
    SkipHoldConflict,
    /// Each replica applies entries at its own wall clock instead of the
    /// leader's stamp, so holds expire by the node's clock.
    WallClockExpiry,
}

impl Plant {
    /// Every plant, with its flag name.
    pub const ALL: [(Plant, &'static str); 4] = [
        (Plant::StaleRead, "stale-read"),
        (Plant::AckBeforeSync, "ack-before-sync"),
        (Plant::SkipHoldConflict, "skip-hold-conflict"),
        (Plant::WallClockExpiry, "wall-clock-expiry"),
    ];

    /// The plant named `name`.
    pub fn parse(name: &str) -> Option<Plant> {
        Plant::ALL.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
    }

    fn bit(self) -> u8 {
        match self {
            Plant::StaleRead => 1,
            Plant::AckBeforeSync => 2,
            Plant::SkipHoldConflict => 4,
            Plant::WallClockExpiry => 8,
        }
    }
}

static PLANTED: AtomicU8 = AtomicU8::new(0);

/// Plants `bug` in this process.
pub fn plant(bug: Plant) {
    PLANTED.fetch_or(bug.bit(), Ordering::SeqCst);
    tracing::warn!(?bug, "DEBUG: a bug is planted in this node; never run it in production");
}

/// Whether `bug` is planted.
pub(crate) fn planted(bug: Plant) -> bool {
    PLANTED.load(Ordering::Relaxed) & bug.bit() != 0
}

static OFFSET_FILE: OnceLock<PathBuf> = OnceLock::new();
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);
static OFFSET_READ_AT_MS: AtomicU64 = AtomicU64::new(0);
/// How often the offset file is re-read: skew takes effect within this.
const OFFSET_REREAD_MS: u64 = 50;

/// Adds the number of milliseconds in `path` (re-read every 50 ms; missing
/// or unreadable means 0) to every clock reading of this node.
pub fn set_clock_offset_file(path: PathBuf) {
    let _ = OFFSET_FILE.set(path);
    tracing::warn!("DEBUG: this node's clock is skewed by a file; never run it in production");
}

fn real_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The node's wall clock: the system clock plus the debug offset, if any.
pub(crate) fn wall_ms() -> Millis {
    let now = real_ms();
    let Some(path) = OFFSET_FILE.get() else { return now };
    if now.saturating_sub(OFFSET_READ_AT_MS.load(Ordering::Relaxed)) >= OFFSET_REREAD_MS {
        OFFSET_READ_AT_MS.store(now, Ordering::Relaxed);
        let offset = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse::<i64>().ok()).unwrap_or(0);
        OFFSET_MS.store(offset, Ordering::Relaxed);
    }
    now.saturating_add_signed(OFFSET_MS.load(Ordering::Relaxed))
}

static DIGEST_DIR: OnceLock<PathBuf> = OnceLock::new();
/// The last index recorded per group, so unchanged states are not repeated.
static DIGESTED: Mutex<BTreeMap<u64, u64>> = Mutex::new(BTreeMap::new());

/// Appends `{node, group, index, hash}` lines to `dir/digests.jsonl`
/// whenever a group's applied index changed (sampled by the sweep loop).
pub fn set_digest_dir(dir: PathBuf) {
    let _ = DIGEST_DIR.set(dir);
}

/// Records the digest of `state` if digests are on and the index moved.
pub(crate) fn record_digest(node: u64, group: u64, state: &State) {
    let Some(dir) = DIGEST_DIR.get() else { return };
    let index = state.last_index();
    {
        let mut seen = DIGESTED.lock().expect("digest lock poisoned");
        if seen.get(&group) == Some(&index) {
            return;
        }
        seen.insert(group, index);
    }
    // SipHash with fixed keys: the same bytes hash alike in every process.
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hasher::write(&mut h, &state.snapshot());
    let hash = format!("{:016x}", std::hash::Hasher::finish(&h));
    let line = format!("{{\"node\":{node},\"group\":{group},\"index\":{index},\"hash\":\"{hash}\"}}\n");
    let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("digests.jsonl"));
    if let Ok(mut f) = file {
        let _ = f.write_all(line.as_bytes());
    }
}

static DIAL_MAP: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// Makes this node dial `to` whenever it would dial `from` (peer gRPC and
/// the gateway's cluster client alike), so the suite can put a fault proxy
/// on every link between nodes that share loopback (no root, no network
/// namespaces). Addresses not in the map are dialled as they are.
pub fn set_dial_map(map: BTreeMap<String, String>) {
    tracing::warn!(links = map.len(), "DEBUG: peer connections go through a fault proxy; never run it in production");
    let _ = DIAL_MAP.set(map);
}

/// The address to connect to for the peer known by `addr`.
pub(crate) fn dial(addr: &str) -> &str {
    DIAL_MAP.get().and_then(|m| m.get(addr)).map_or(addr, String::as_str)
}
