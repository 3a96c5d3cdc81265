//! The `ticketd` node: storage and gateway roles, configuration, the HTTP
//! API, the demo data and the dev cluster.
//!
//! # Layout
//! - `config`: `ticketd run` configuration (TOML, environment, flags).
//! - `run`: a node's life: the storage role (Raft groups on RocksDB), the
//!   gateway role, bootstrap, graceful shutdown.
//! - `gateway`: the HTTP API of the contract, routed to group leaders.
//! - `debug`: debug-only hooks for the fault-injection suite (planted
//!   bugs, a skewable clock, digests), refused outside tests.
//! - `dev`: `ticketd dev`, a three-node local cluster from one command.
//! - `shard`: the [`shard::Shard`] trait (propose a command, read the applied
//!   state) and [`shard::LocalShard`], a shard inside this process.
//! - `demo`: the demo catalog of three regions and its idempotent loader.
//! - `preview`: `ticketd preview`, the in-process demo without a network.
//! - `payments_sandbox`: `ticketd payments-sandbox`, a local payment
//!   provider process speaking docs/payments.md with the test tokens.
//! - `text`: times and money as the output shows them.

pub mod config;
pub mod debug;
pub mod demo;
pub mod dev;
pub mod gateway;
pub mod payments_sandbox;
pub mod preview;
pub mod run;
pub mod shard;
mod text;
