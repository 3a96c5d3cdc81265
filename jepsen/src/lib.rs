//! The fault-injection suite: runs a real `ticketd` cluster, drives a
//! workload through the gateway API while a nemesis injects faults, records
//! the history in Jepsen's shape and checks it.
//!
//! # Layout
//! - `history`: operations (invoke / ok / fail / info) as JSON lines.
//! - `model`, `wgl`: the sequential model of one event's seats and the
//!   linearizability search over it.
//! - `checker`: every checker, pure functions over a history.
//! - `api`: the gateway calls the workload makes (one trait, HTTP today).
//! - `cluster`: `ticketd` processes, network namespaces, faults on them.
//! - `proxy`: partitions without root, a stalling proxy on every link.
//! - `nemesis`: fault schedules from a seed, partition shapes, targets.
//! - `workload`: the seat-contention workload and the history recorder.
//! - `runner`: one run from start to verdict; `report`: its directory.

mod api;
pub mod checker;
pub mod cluster;
pub mod history;
mod model;
pub mod nemesis;
mod proxy;
mod report;
pub mod runner;
mod wgl;
mod workload;

pub use api::ApiError;

#[cfg(test)]
mod tests;
