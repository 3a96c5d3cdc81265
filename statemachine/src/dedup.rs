//! Exactly-once: a request's fingerprint, so that a repeated request id with
//! a *different* request is refused rather than answered with the first
//! request's result.

use crate::command::Op;

/// A stable 64-bit digest of an op's log encoding.
pub(crate) fn fingerprint(op: &Op) -> u64 {
    let bytes = postcard::to_allocvec(op).expect("encoding to memory cannot fail");
    xxhash_rust::xxh3::xxh3_64(&bytes)
}
