//! Every decoder of bytes that come from outside this process (peers,
//! gateways, the log and snapshots on disk) refuses what it cannot read and
//! never panics, whatever the bytes; what it accepts encodes back to bytes
//! that decode to the same value.

use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::query::{Answer, Query, ReadReply};
use crate::types::{CmdResp, Entry, LogCmd, SnapshotMeta, TypeConfig, Vote};

/// Decodes `bytes` as `T`; anything accepted must survive a round trip
/// (compared as encodings: not every message type has an equality).
fn survives<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = postcard::from_bytes::<T>(bytes) {
        let once = postcard::to_allocvec(&value).expect("encoding to memory cannot fail");
        let back = postcard::from_bytes::<T>(&once);
        prop_assert!(back.is_ok(), "an accepted message does not decode after encoding");
        let twice = postcard::to_allocvec(&back.expect("checked")).expect("encoding to memory cannot fail");
        prop_assert_eq!(once, twice);
    }
    Ok(())
}

/// Bytes that start like a real message more often than uniform bytes do:
/// small varints, then anything.
fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (prop::collection::vec(0u8..8, 0..8), prop::collection::vec(any::<u8>(), 0..256)).prop_map(|(mut a, b)| {
            a.extend(b);
            a
        }),
        // Varints at their extremes (u64::MAX and past it), as lengths and counts.
        (prop::collection::vec(0u8..4, 0..4), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(mut a, b)| {
            a.extend([0xff; 9]);
            a.push(0x01);
            a.extend(b);
            a
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    /// What a gateway sends a node (`Shard.Propose` / `Shard.Read`).
    #[test]
    fn gateway_requests_never_panic(bytes in message_bytes()) {
        survives::<statemachine::Command>(&bytes)?;
        survives::<Query>(&bytes)?;
    }

    /// What a node answers a gateway.
    #[test]
    fn node_answers_never_panic(bytes in message_bytes()) {
        survives::<statemachine::Applied>(&bytes)?;
        survives::<ReadReply>(&bytes)?;
        survives::<Answer>(&bytes)?;
        survives::<Vec<crate::feed::SeatChange>>(&bytes)?;
        survives::<Vec<(u64, Vec<statemachine::DomainEvent>)>>(&bytes)?;
    }

    /// What peers send each other, and what the log store reads back.
    #[test]
    fn peer_messages_and_log_entries_never_panic(bytes in message_bytes()) {
        survives::<AppendEntriesRequest<TypeConfig>>(&bytes)?;
        survives::<VoteRequest<TypeConfig>>(&bytes)?;
        survives::<TransferLeaderRequest<TypeConfig>>(&bytes)?;
        survives::<(Vote, SnapshotMeta)>(&bytes)?;
        survives::<Entry>(&bytes)?;
        survives::<LogCmd>(&bytes)?;
        survives::<CmdResp>(&bytes)?;
    }

    /// A group snapshot's header (retired ids) in front of the state.
    #[test]
    fn group_snapshot_headers_never_panic(bytes in message_bytes()) {
        let _ = crate::snapshot::decode(&bytes);
    }
}
