//! Exactly-once: a request's fingerprint, so that a repeated request id with
//! a *different* request is refused rather than answered with the first
//! request's result.

use crate::command::Op;

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
