//! Region shards as openraft groups on RocksDB, many groups per node.
//!
//! # Layout
//! - `types`: the openraft type configuration (`LogCmd` carries commands and
//!   the leader's time; `CmdResp` their results).
//! - `store`: the node's RocksDB, shared by every group it hosts; the Raft log
//!   of a group (`LogStore`) with group commit through one flusher thread.
//! - `sm`: the state-machine storage around `statemachine::State`, snapshots,
//!   the ids a group has retired from its membership.
//! - `snapshot`: the encoding of a group snapshot (retired ids + state).
//! - `network`: Raft messages over gRPC, one channel per peer, routed by group.
//! - `batch`: proposals that reach a leader together share one log entry.
//! - `node`: a node hosting many groups; proposals with leader-stamped time,
//!   linearizable reads, membership, the periodic expiry sweep.
//! - `query`: the reads a gateway sends (`Query`) and their answers.
//! - `service`: the `Shard` gRPC service (propose, read, cluster operations).
//! - `debug`: hooks for the fault-injection suite only (planted bugs, a
//!   skewable clock, state digests); off unless a test turns them on.
//! - `client`: `ClusterClient`, the gateway's and operator's side of it:
//!   finds each group's leader, follows redirects, retries safely.
//!
//! openraft types stay behind this crate's API so that an upgrade touches
//! one crate.

mod batch;
mod client;
pub mod debug;
mod events;
mod feed;
#[cfg(test)]
mod fuzz;
mod network;
mod node;
mod query;
mod service;
mod sm;
mod snapshot;
mod store;
mod types;

pub use batch::{log_index_of, state_index, Batching, ENTRY_COMMANDS_LIMIT, INDEX_SHIFT};
pub use client::{ClientError, ClusterClient, Consistency, EventStream, EventWatch, NodeStatus, Watch, WatchStream};
pub use events::{IndexedEvents, EVENTS_KEPT_MAX};
pub use feed::{SeatChange, FEED_CHANGES_MAX};
pub use node::{GroupStatus, JoinRefused, NodeConfig, NodeError, RaftNode, SNAPSHOT_LOGS_DEFAULT};
pub use query::{answer, Answer, Query, ReadReply, AUDIT_PAGE_MAX, EVENTS_PAGE_MAX, INTENTS_PAGE_MAX};
pub use sm::{ShardSm, ShardState, SnapshotBuilder};
pub use store::{FlushStats, LogStore, NodeStore};
pub use types::{CmdResp, GroupId, LogCmd, PeerNode, TypeConfig};

/// A group's Raft handle.
pub(crate) type ShardRaft = openraft::Raft<TypeConfig, ShardSm>;
