//! Exactly-once: a request's fingerprint, so that a repeated request id with
//! a *different* request is refused rather than answered with the first
//! request's result.

use crate::command::Op;

/// What the exactly-once table is keyed by: a 128-bit digest of the
/// (client, request) pair. Keys of fixed size make every command's lookup a
/// few integer comparisons instead of string ones. Two different requests
/// colliding is as unlikely as two random UUIDs colliding, and even then the
/// stored fingerprint of the request turns it into `IdempotencyKeyReused`,
/// never into another request's answer.
pub(crate) type RequestKey = u128;

/// The key of a (client, request) pair; the client is length-prefixed so
/// that no two pairs share an encoding.
pub(crate) fn request_key(client: &str, request: &str) -> RequestKey {
    let len = 8 + client.len() + request.len();
    if len > KEY_STACK_BYTES {
        return request_key_streamed(client, request);
    }
    // The same bytes hashed in one call: xxh3 streamed or in one piece gives
    // the same digest, and the one-piece form is several times faster on
    // inputs this short.
    let mut buf = [0u8; KEY_STACK_BYTES];
    buf[..8].copy_from_slice(&(client.len() as u64).to_le_bytes());
    buf[8..8 + client.len()].copy_from_slice(client.as_bytes());
    buf[8 + client.len()..len].copy_from_slice(request.as_bytes());
    xxhash_rust::xxh3::xxh3_128(&buf[..len])
}

/// Keys of ids up to this many bytes in all (two ids of the default 128-byte
/// bound and the length) are hashed from the stack.
const KEY_STACK_BYTES: usize = 272;

fn request_key_streamed(client: &str, request: &str) -> RequestKey {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&(client.len() as u64).to_le_bytes());
    hasher.update(client.as_bytes());
    hasher.update(request.as_bytes());
    hasher.digest128()
}

/// What the per-user indexes are keyed by: a 128-bit digest of the user
/// id, compared as two integers instead of as a string. Entries also carry
/// the hold or booking id, so two users whose ids collide still get entries
/// of their own, and every reader checks the record's user, so a collision
/// changes nothing but the order in which one user's entries are visited.
pub(crate) type UserKey = u128;

/// The index key of a user id.
pub(crate) fn user_key(user: &str) -> UserKey {
    xxhash_rust::xxh3::xxh3_128(user.as_bytes())
}

/// Ops whose encoding fits this many bytes are encoded on the stack; every
/// command is fingerprinted, and a heap buffer per command is measurable.
const STACK_BYTES: usize = 512;

/// A stable 64-bit digest of an op's log encoding.
pub(crate) fn fingerprint(op: &Op) -> u64 {
    let mut buf = [0u8; STACK_BYTES];
    match postcard::to_slice(op, &mut buf) {
        Ok(bytes) => xxhash_rust::xxh3::xxh3_64(bytes),
        // Larger ops (venue layouts) take the heap; the bytes are the same.
        Err(_) => {
            let bytes = postcard::to_allocvec(op).expect("encoding to memory cannot fail");
            xxhash_rust::xxh3::xxh3_64(&bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{RowSpec, SectionSpec, Selection, VenueSpec};
    use crate::ids::EventId;

    fn heap_digest(op: &Op) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&postcard::to_allocvec(op).unwrap())
    }

    #[test]
    fn request_keys_are_the_streamed_digest_whatever_the_length() {
        for (c, r) in [(0, 0), (1, 1), (5, 36), (100, 148), (120, 128), (200, 100), (300, 300)] {
            let (client, request) = ("c".repeat(c), "r".repeat(r));
            assert_eq!(request_key(&client, &request), request_key_streamed(&client, &request), "{c} + {r}");
        }
    }

    #[test]
    fn request_keys_do_not_depend_on_where_client_ends() {
        assert_ne!(request_key("ab", "c"), request_key("a", "bc"));
        assert_eq!(request_key("alice", "k1"), request_key("alice", "k1"));
        assert_ne!(request_key("alice", "k1"), request_key("alice", "k2"));
    }

    #[test]
    fn digest_is_of_the_log_encoding_whatever_its_size() {
        let small = Op::Hold { event: EventId(7), user: "u".into(), selection: Selection::Seats(vec!["A-1-1".into()]) };
        let venue = VenueSpec {
            name: "Hall".into(),
            city: "Pune".into(),
            region: "ap-south".into(),
            sections: vec![SectionSpec {
                name: "S".into(),
                category: "std".into(),
                rows: (1..=200).map(|r| RowSpec { label: r.to_string(), seats: 10 }).collect(),
            }],
            blocked_seats: vec![],
            accessible_seats: vec![],
        };
        let large = Op::CreateVenue(venue);
        assert!(postcard::to_allocvec(&small).unwrap().len() < STACK_BYTES);
        assert!(postcard::to_allocvec(&large).unwrap().len() > STACK_BYTES);
        for op in [small, large] {
            assert_eq!(fingerprint(&op), heap_digest(&op));
        }
    }
}
