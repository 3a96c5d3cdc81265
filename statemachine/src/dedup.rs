//! Exactly-once: a request's fingerprint, so that a repeated request id with
//! a *different* request is refused rather than answered with the first
//! request's result.

use crate::command::{Op, Selection};

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
    // The same bytes hashed in one call: xxh3 streamed or in one piece gives
    // the same digest, and the one-piece form is several times faster on
    // inputs this short. Usual keys take a buffer small enough that zeroing
    // it costs nothing worth measuring.
    if len <= KEY_SHORT_BYTES {
        request_key_in::<KEY_SHORT_BYTES>(client, request)
    } else if len <= KEY_STACK_BYTES {
        request_key_in::<KEY_STACK_BYTES>(client, request)
    } else {
        request_key_streamed(client, request)
    }
}

/// Keys of ids up to this many bytes in all (two ids of the default 128-byte
/// bound and the length) are hashed from the stack.
const KEY_STACK_BYTES: usize = 272;

/// A client id and a UUID request id fit this many bytes with their length.
const KEY_SHORT_BYTES: usize = 96;

/// The key hashed from an `N`-byte stack buffer; the pair must fit.
fn request_key_in<const N: usize>(client: &str, request: &str) -> RequestKey {
    let len = 8 + client.len() + request.len();
    let mut buf = [0u8; N];
    buf[..8].copy_from_slice(&(client.len() as u64).to_le_bytes());
    buf[8..8 + client.len()].copy_from_slice(client.as_bytes());
    buf[8 + client.len()..len].copy_from_slice(request.as_bytes());
    xxhash_rust::xxh3::xxh3_128(&buf[..len])
}

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

/// The booking flow's ops are written by hand into this many bytes on the
/// stack (a payment with two 36-byte ids and a user id of 50 takes about
/// 130); what does not fit goes to postcard.
const HOT_STACK_BYTES: usize = 192;

/// A stable 64-bit digest of an op's log encoding.
pub(crate) fn fingerprint(op: &Op) -> u64 {
    // The ops of the booking flow are written by hand (serde's generic
    // encoder was about 5 % of a payment command) into a buffer that fits
    // them with ids of usual sizes; the bytes are postcard's, so fingerprints
    // already in the exactly-once table of a snapshot still match.
    let mut small = [0u8; HOT_STACK_BYTES];
    if let Some(len) = encode_hot(op, &mut small) {
        // The unit, model and property tests check every op written by hand.
        #[cfg(test)]
        assert_eq!(&small[..len], &postcard::to_allocvec(op).expect("encodes")[..], "{op:?}");
        return xxhash_rust::xxh3::xxh3_64(&small[..len]);
    }
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

/// Postcard's encoding of the booking flow's ops (holds, releases,
/// extensions, payments), written into `buf`: the variant's position and the
/// fields in order, integers as LEB128 varints, strings and sequences
/// length-first, booleans as one byte. `None` for other ops and for
/// encodings that do not fit; the caller then asks postcard itself.
fn encode_hot(op: &Op, buf: &mut [u8]) -> Option<usize> {
    let mut w = Writer { buf, at: 0 };
    match op {
        Op::Hold { event, user, selection } => {
            w.varint(2)?;
            w.varint(event.0)?;
            w.str(user)?;
            match selection {
                Selection::Seats(seats) => {
                    w.varint(0)?;
                    w.varint(seats.len() as u64)?;
                    for seat in seats {
                        w.str(seat)?;
                    }
                }
                Selection::Best { count, category, together, accessible } => {
                    w.varint(1)?;
                    w.varint(u64::from(*count))?;
                    w.str(category)?;
                    w.bytes(&[u8::from(*together), u8::from(*accessible)])?;
                }
            }
        }
        Op::ReleaseHold { hold, user } => {
            w.varint(3)?;
            w.varint(hold.0)?;
            w.str(user)?;
        }
        Op::ExtendHold { hold, user, secs } => {
            w.varint(4)?;
            w.varint(hold.0)?;
            w.str(user)?;
            w.varint(u64::from(*secs))?;
        }
        Op::BeginPayment { hold, user, intent } | Op::ConfirmHold { hold, user, intent } => {
            w.varint(if matches!(op, Op::BeginPayment { .. }) { 6 } else { 7 })?;
            w.varint(hold.0)?;
            w.str(user)?;
            w.str(intent)?;
        }
        _ => return None,
    }
    Some(w.at)
}

/// Appends to a fixed buffer; every write says whether it fitted.
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.at.checked_add(bytes.len()).filter(|&end| end <= self.buf.len())?;
        self.buf[self.at..end].copy_from_slice(bytes);
        self.at = end;
        Some(())
    }

    /// LEB128: seven bits a byte, lowest first, the high bit set on all but the last.
    fn varint(&mut self, mut n: u64) -> Option<()> {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            *self.buf.get_mut(self.at)? = if n == 0 { byte } else { byte | 0x80 };
            self.at += 1;
            if n == 0 {
                return Some(());
            }
        }
    }

    fn str(&mut self, s: &str) -> Option<()> {
        self.varint(s.len() as u64)?;
        self.bytes(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{RowSpec, SectionSpec, Selection, VenueSpec};
    use crate::ids::{EventId, HoldId};

    fn heap_digest(op: &Op) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&postcard::to_allocvec(op).unwrap())
    }

    #[test]
    fn request_keys_are_the_streamed_digest_whatever_the_length() {
        for (c, r) in
            [(0, 0), (1, 1), (5, 36), (52, 36), (52, 37), (100, 148), (120, 144), (120, 145), (200, 100), (300, 300)]
        {
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
    fn hand_written_encodings_are_postcards() {
        let long = "x".repeat(300);
        let mut ops = vec![
            Op::Hold { event: EventId(0), user: String::new(), selection: Selection::Seats(vec![]) },
            Op::Hold {
                event: EventId(u64::MAX),
                user: "ü".repeat(70),
                selection: Selection::Seats((0..40).map(|i| format!("P{i}-{}-{}", i * 7, i * 300)).collect()),
            },
            Op::Hold {
                event: EventId(128),
                user: "u1".into(),
                selection: Selection::Best { count: 4, category: "premium".into(), together: true, accessible: false },
            },
            Op::Hold {
                event: EventId(16_383),
                user: "u1".into(),
                selection: Selection::Best { count: 300, category: String::new(), together: false, accessible: true },
            },
            Op::ExtendHold { hold: HoldId(16_384), user: "u".into(), secs: u32::MAX },
            Op::ExtendHold { hold: HoldId(1), user: long.clone(), secs: 0 },
            Op::ReleaseHold { hold: HoldId(127), user: long.clone() },
        ];
        for (hold, user, intent) in [(1, "u", "pi-1"), (1 << 35, "user-9", ""), (u64::MAX - 1, long.as_str(), &long)] {
            let (hold, user, intent) = (HoldId(hold), user.to_string(), intent.to_string());
            ops.push(Op::BeginPayment { hold, user: user.clone(), intent: intent.clone() });
            ops.push(Op::ConfirmHold { hold, user, intent });
        }
        for op in &ops {
            let encoded = postcard::to_allocvec(op).unwrap();
            let mut buf = [0u8; HOT_STACK_BYTES];
            match encode_hot(op, &mut buf) {
                Some(len) => assert_eq!(&buf[..len], &encoded[..], "{op:?}"),
                // Only what does not fit the stack buffer is left to postcard.
                None => assert!(encoded.len() > HOT_STACK_BYTES, "{op:?}"),
            }
            assert_eq!(fingerprint(op), heap_digest(op), "{op:?}");
        }
        let cold = Op::RecordRefund { intent: "pi-1".into() };
        assert_eq!(encode_hot(&cold, &mut [0u8; HOT_STACK_BYTES]), None);
        assert_eq!(fingerprint(&cold), heap_digest(&cold));
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
