//! Snapshots: a versioned, checksummed binary encoding of the primary
//! records. Derived structures are rebuilt on restore and the result is
//! checked, so a snapshot that decodes but describes an impossible state is
//! refused instead of served.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! 0..8    magic  "TKTSNAP\0"
//! 8..10   format version (u16)
//! 10..18  body length in bytes (u64)
//! 18..26  xxh3-64 of the body
//! 26..    body: postcard encoding of the primary records, in key order
//! ```

use crate::limits::LimitsV3;
use crate::state::{Primary, State};

/// A format-3 body in the current layout.
fn upgrade(p: Primary<LimitsV3>) -> Primary {
    Primary {
        limits: p.limits.into(),
        last_index: p.last_index,
        clock_ms: p.clock_ms,
        next_id: p.next_id,
        venues: p.venues,
        events: p.events,
        holds: p.holds,
        bookings: p.bookings,
        tickets: p.tickets,
        waitlist: p.waitlist,
        intents: p.intents,
        dedup: p.dedup,
        rooms: p.rooms,
    }
}

const MAGIC: &[u8; 8] = b"TKTSNAP\0";
// Version 2 added waiting rooms (and their limits). Version 3 keeps the
// results of payments and bookings in the exactly-once table as the ids
// they are rebuilt from (`Recorded`). Version 4 added the exactly-once
// table's byte bound (`Limits::dedup_bytes_max`); version 3 is still read,
// with that limit at its default.
const FORMAT_VERSION: u16 = 4;
const FORMAT_VERSION_V3: u16 = 3;
const HEADER_BYTES: usize = 26;

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Fewer bytes than a header.
    #[error("snapshot is truncated: {0} bytes")]
    Truncated(usize),
    /// Not a snapshot of this state machine.
    #[error("not a seat-inventory snapshot (bad magic)")]
    BadMagic,
    /// Written by a format this build does not read.
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u16),
    /// The body is shorter or longer than the header says.
    #[error("snapshot body is {actual} bytes, header says {expected}")]
    LengthMismatch {
        /// From the header.
        expected: u64,
        /// Present.
        actual: u64,
    },
    /// The body does not match its checksum.
    #[error("snapshot checksum mismatch")]
    ChecksumMismatch,
    /// The body does not decode.
    #[error("snapshot body does not decode: {0}")]
    Decode(String),
    /// The body decodes but breaks an invariant.
    #[error("snapshot describes an inconsistent state: {0}")]
    Inconsistent(String),
}

impl State {
    /// Encodes the whole state. Equal states give equal bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let body = postcard::to_allocvec(&self.p).expect("encoding to memory cannot fail");
        let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes and checks a snapshot. Never panics on bad input.
    pub fn restore(bytes: &[u8]) -> Result<State, SnapshotError> {
        if bytes.len() < HEADER_BYTES {
            return Err(SnapshotError::Truncated(bytes.len()));
        }
        let (header, body) = bytes.split_at(HEADER_BYTES);
        if &header[0..8] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = u16::from_le_bytes([header[8], header[9]]);
        if version != FORMAT_VERSION && version != FORMAT_VERSION_V3 {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let expected = u64::from_le_bytes(header[10..18].try_into().expect("8 bytes"));
        if expected != body.len() as u64 {
            return Err(SnapshotError::LengthMismatch { expected, actual: body.len() as u64 });
        }
        let checksum = u64::from_le_bytes(header[18..26].try_into().expect("8 bytes"));
        if xxhash_rust::xxh3::xxh3_64(body) != checksum {
            return Err(SnapshotError::ChecksumMismatch);
        }
        let decoded = if version == FORMAT_VERSION_V3 {
            // Format 3 had no byte bound: the table is rebuilt without one
            // and brought within the default below.
            let lift = |(mut p, rest): (Primary, _)| {
                p.limits.dedup_bytes_max = u64::MAX;
                (p, rest)
            };
            postcard::take_from_bytes::<Primary<LimitsV3>>(body).map(|(p, rest)| lift((upgrade(p), rest)))
        } else {
            postcard::take_from_bytes::<Primary>(body)
        };
        let (primary, rest) = decoded.map_err(|e| SnapshotError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(SnapshotError::Decode(format!("{} trailing bytes", rest.len())));
        }
        let mut state = State::rebuild(primary).map_err(SnapshotError::Inconsistent)?;
        if version == FORMAT_VERSION_V3 {
            // Format 3 bounded the exactly-once table by count and age only:
            // bring it within its byte bound now, as the next entry would.
            state.p.limits.dedup_bytes_max = crate::limits::DEDUP_BYTES_MAX_DEFAULT;
            state.prune(state.p.clock_ms);
        }
        Ok(state)
    }

    /// A digest of the whole state, equal on replicas at equal applied index.
    pub fn state_hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.snapshot())
    }
}
