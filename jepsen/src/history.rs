//! The history of a run in Jepsen's shape: every client operation is an
//! `invoke` followed by one completion, `ok` (it happened), `fail` (it did
//! not) or `info` (unknown: it may have happened, at any time after its
//! invoke). Stored as JSON lines, one operation a line, in time order.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// The process of nemesis operations (fault starts and stops).
pub const NEMESIS_PROCESS: u64 = u64::MAX;

/// What a history line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// A request was sent.
    Invoke,
    /// It definitely happened.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Its outcome is unknown.
    Info,
}

/// The operation's function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum F {
    /// Hold explicit seats of an event.
    Hold,
    /// Release a hold.
    Release,
    /// Pay for a hold (booking).
    Confirm,
    /// Cancel a booking.
    Cancel,
    /// A linearizable seat-map read.
    Read,
    /// The event's availability counters.
    Counts,
    /// A user's bookings (the final read after healing).
    Bookings,
    /// A liveness probe after healing: hold and confirm on a fresh event.
    Probe,
    /// Join an event's waiting room (again: the same place).
    Join,
    /// A waiting-room status poll.
    QueueStatus,
    /// A fault starts or stops.
    Nemesis,
}

/// A seat's status in a seat map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SeatStatus {
    /// Free to hold.
    Available,
    /// Held by a live hold.
    Held,
    /// Booked.
    Booked,
    /// Never for sale.
    Blocked,
}

/// A booking as a user's bookings list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingRec {
    /// Booking id.
    pub booking: String,
    /// The hold it came from.
    pub hold: String,
    /// Event id.
    pub event: String,
    /// Seats.
    pub seats: Vec<String>,
    /// `confirmed`, `pending` or `cancelled`.
    pub status: String,
}

/// Availability counters of one category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// `total` as reported.
    pub total: u64,
    /// Available seats.
    pub available: u64,
    /// Held seats.
    pub held: u64,
    /// Booked seats.
    pub booked: u64,
    /// Blocked seats.
    pub blocked: u64,
}

/// The arguments and results of an operation. Flat and optional so one
/// shape serves every function; absent fields are not written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// Event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The acting user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Idempotency key sent with the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Seats asked for (hold) or got (confirm).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seats: Vec<String>,
    /// Hold id (argument of release and confirm, result of hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// Booking id (argument of cancel, result of confirm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<String>,
    /// A hold's expiry as the reply states it (log time, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// A seat map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_map: Option<BTreeMap<String, SeatStatus>>,
    /// Availability per category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<BTreeMap<String, Counts>>,
    /// A user's bookings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bookings: Option<Vec<BookingRec>>,
    /// A place in a waiting room (join and status results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// A waiting-room status: `waiting`, `admitted` or `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_state: Option<String>,
    /// The gateway (node id) the request went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// Nemesis: the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Nemesis: the nodes it hits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<u64>,
    /// Set on the final reads after healing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// invoke, ok, fail or info.
    #[serde(rename = "type")]
    pub ty: OpType,
    /// What was called.
    pub f: F,
    /// The logical client; a process whose call ended `info` never calls again.
    pub process: u64,
    /// Nanoseconds since the run started.
    pub time: u64,
    /// The Raft log index the reply carries (seat maps: `as_of_index`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Arguments and results.
    pub value: Value,
    /// Error code of a failure, or why the outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// An invocation.
    pub fn invoke(f: F, process: u64, time: u64, value: Value) -> Op {
        Op { ty: OpType::Invoke, f, process, time, index: None, value, error: None }
    }

    /// The time in milliseconds since the start.
    pub fn time_ms(&self) -> u64 {
        self.time / 1_000_000
    }
}

/// Errors reading or writing a history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be read or written.
    #[error("history i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not an operation.
    #[error("history line {line}: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// Why.
        source: serde_json::Error,
    },
    /// A completion without an open invocation of its process, or an
    /// invocation while the process had one open.
    #[error("history line {line}: {reason}")]
    Shape {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
}

/// Writes `ops` as JSON lines.
pub fn write_jsonl(ops: &[Op], out: &mut impl Write) -> Result<(), HistoryError> {
    for op in ops {
        serde_json::to_writer(&mut *out, op).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Reads JSON lines written by [`write_jsonl`].
pub fn read_jsonl(input: impl BufRead) -> Result<Vec<Op>, HistoryError> {
    let mut ops = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        ops.push(serde_json::from_str(&line).map_err(|source| HistoryError::Parse { line: i + 1, source })?);
    }
    Ok(ops)
}

/// An invocation with its completion, if any.
#[derive(Clone, Debug)]
pub struct Call {
    /// Position of the invocation in the history.
    pub pos: usize,
    /// The invocation.
    pub invoke: Op,
    /// The completion; `None` when the run ended first (as good as `info`).
    pub complete: Option<Op>,
}

impl Call {
    /// The completion type; a missing completion is `info`.
    pub fn outcome(&self) -> OpType {
        self.complete.as_ref().map_or(OpType::Info, |c| c.ty)
    }

    /// The completion's value (results), or the invocation's.
    pub fn result(&self) -> &Value {
        self.complete.as_ref().map_or(&self.invoke.value, |c| &c.value)
    }

    /// The invocation time, ms since the start.
    pub fn inv_ms(&self) -> u64 {
        self.invoke.time_ms()
    }

    /// The completion time, ms; `None` for an unknown outcome (it may take
    /// effect at any time after the invocation).
    pub fn ret_ms(&self) -> Option<u64> {
        match &self.complete {
            Some(c) if c.ty != OpType::Info => Some(c.time_ms().max(self.inv_ms())),
            _ => None,
        }
    }

    /// The error code of the completion.
    pub fn error(&self) -> Option<&str> {
        self.complete.as_ref().and_then(|c| c.error.as_deref())
    }
}

/// Pairs each invocation with its completion (by process). Nemesis lines
/// pair like any other process's.
pub fn pair(ops: &[Op]) -> Result<Vec<Call>, HistoryError> {
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut calls: Vec<Call> = Vec::new();
    for (pos, op) in ops.iter().enumerate() {
        match op.ty {
            OpType::Invoke => {
                if open.contains_key(&op.process) && op.process != NEMESIS_PROCESS {
                    return Err(HistoryError::Shape {
                        line: pos + 1,
                        reason: format!("process {} invoked with a call open", op.process),
                    });
                }
                open.insert(op.process, calls.len());
                calls.push(Call { pos, invoke: op.clone(), complete: None });
            }
            _ => {
                let Some(i) = open.remove(&op.process) else {
                    return Err(HistoryError::Shape {
                        line: pos + 1,
                        reason: format!("completion of process {} without an invocation", op.process),
                    });
                };
                if calls[i].invoke.f != op.f {
                    return Err(HistoryError::Shape {
                        line: pos + 1,
                        reason: format!("completion {:?} of an invocation {:?}", op.f, calls[i].invoke.f),
                    });
                }
                calls[i].complete = Some(op.clone());
            }
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_pairing() {
        let v = Value { event: Some("evt-1-1".into()), seats: vec!["A-1-1".into()], ..Value::default() };
        let mut done = Op::invoke(F::Hold, 3, 2_000_000, v.clone());
        done.ty = OpType::Ok;
        done.value.hold = Some("hld-1-4".into());
        done.value.expires_at_ms = Some(5_000);
        let ops = vec![Op::invoke(F::Hold, 3, 1_000_000, v), done];
        let mut buf = Vec::new();
        write_jsonl(&ops, &mut buf).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.contains("\"type\":\"invoke\"") && text.contains("\"f\":\"hold\""), "{text}");
        let back = read_jsonl(&buf[..]).unwrap();
        assert_eq!(back, ops);
        let calls = pair(&back).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].outcome(), OpType::Ok);
        assert_eq!(calls[0].ret_ms(), Some(2));
    }

    #[test]
    fn a_completion_without_invocation_is_refused() {
        let mut op = Op::invoke(F::Read, 1, 0, Value::default());
        op.ty = OpType::Ok;
        assert!(matches!(pair(&[op]), Err(HistoryError::Shape { .. })));
        let a = Op::invoke(F::Read, 1, 0, Value::default());
        assert!(pair(&[a.clone(), a]).is_err(), "two open calls on one process");
    }
}
