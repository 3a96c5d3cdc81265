//! The fault-injection suite: runs a real `ticketd` cluster, drives a
//! workload through the gateway API while a nemesis injects faults, records
//! the history in Jepsen's shape and checks it.
//!
//! # Layout
//! - `history`: operations (invoke / ok / fail / info) as JSON lines.
//! - `model`, `wgl`: the sequential model of one event's seats and the
//!   linearizability search over it.
//! - `checker`: every checker, pure functions over a history.

pub mod checker;
pub mod history;
mod model;
mod wgl;

#[cfg(test)]
mod tests;
