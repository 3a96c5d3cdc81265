//! Tests of the rules. `support` has the fixture every test file uses.

mod arbitrary;
mod best_available;
mod cancellation;
mod catalog;
mod checker;
mod dedup;
mod events;
mod expiry;
mod fuzz;
mod holds;
mod limits;
mod model;
mod overflow;
mod payments;
mod pruning;
mod queue;
mod smoke;
mod snapshot;
mod support;
mod tickets;
mod waitlist;
