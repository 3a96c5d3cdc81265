//! gRPC definitions between nodes, generated at build time from `proto/`.

#![allow(missing_docs, unreachable_pub, clippy::all)]

/// Raft transport and shard calls, version 1.
pub mod raft_v1 {
    tonic::include_proto!("ticketing.raft.v1");
}
