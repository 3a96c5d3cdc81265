//! The `ticketd` node: storage and gateway roles, configuration, the HTTP
//! API and the demo data. Today it holds the demo catalog and `ticketd dev`,
//! which runs the demo in-process; replication and the gateway come next.
//!
//! # Layout
//! - `shard`: the [`shard::Shard`] trait (propose a command, read the applied
//!   state) and [`shard::LocalShard`], a shard inside this process. Code
//!   written against the trait runs unchanged on the Raft-backed shard.
//! - `demo`: the demo catalog of three regions and its idempotent loader.
//! - `dev`: `ticketd dev`, the in-process preview.
//! - `text`: times and money as the output shows them.

pub mod demo;
pub mod dev;
pub mod shard;
mod text;
