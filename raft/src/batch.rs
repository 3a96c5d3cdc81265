//! Proposal batching: the commands that reach a group's leader while its
//! previous entries are in flight share one log entry.
//!
//! Every log entry costs the same Raft work whatever it carries: a log id,
//! an encode and a RocksDB key on every replica, a place in an append RPC,
//! a trip through the apply stream and an answer. One command per entry
//! spent most of the leader's CPU on that. Here a task per group takes
//! every proposal waiting in its queue (up to [`Batching::entry_commands_max`]
//! commands or [`Batching::entry_bytes_max`] bytes) into one entry, with at
//! most [`Batching::entries_inflight_max`] entries proposed and not yet
//! applied. Nothing waits on purpose: a lone proposal on an idle group
//! leaves at once in an entry of its own; under load the queue fills while
//! earlier entries commit, so entries grow with the load.
//!
//! The state machine gives each command its own index, strictly
//! increasing: the entry's log index shifted left by [`INDEX_SHIFT`] bits,
//! plus the command's position in the entry (see [`state_index`]).

use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{ClientWriteError, RaftError};
use statemachine::{Applied, Command, State};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::node::{LeaderClock, NodeError};
use crate::sm::ShardState;
use crate::types::{CmdResp, GroupId, LogCmd};
use crate::ShardRaft;

/// Bits of a state index below the log index: an entry holds at most
/// `1 << INDEX_SHIFT` commands.
pub const INDEX_SHIFT: u32 = 10;

/// Commands one entry may carry at most, whatever the configuration says.
pub const ENTRY_COMMANDS_LIMIT: usize = 1 << INDEX_SHIFT;

/// The state machine's index of the command at `position` in the entry at
/// `log_index`.
pub fn state_index(log_index: u64, position: usize) -> u64 {
    assert!(position < ENTRY_COMMANDS_LIMIT, "an entry holds at most {ENTRY_COMMANDS_LIMIT} commands");
    assert!(log_index < 1 << (64 - INDEX_SHIFT), "log index {log_index} does not fit a state index");
    (log_index << INDEX_SHIFT) | position as u64
}

/// The log index of the entry that carried the command at state index
/// `index`.
pub fn log_index_of(index: u64) -> u64 {
    index >> INDEX_SHIFT
}

/// How a group coalesces proposals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// Commands one entry carries at most (1 to [`ENTRY_COMMANDS_LIMIT`]).
    pub entry_commands_max: usize,
    /// Encoded bytes of commands one entry carries at most; a command larger
    /// than this travels alone.
    pub entry_bytes_max: usize,
    /// Entries proposed and not yet applied at most; more proposals wait in
    /// the queue and leave together.
    pub entries_inflight_max: usize,
    /// Proposals waiting for an entry at most; a proposal beyond it waits
    /// for room (and its caller's deadline).
    pub queue_commands_max: usize,
}

impl Default for Batching {
    fn default() -> Batching {
        Batching {
            entry_commands_max: ENTRY_COMMANDS_LIMIT,
            // Several hundred bookings; with openraft's 300 entries per
            // append the largest append stays well inside the RPC limit.
            entry_bytes_max: 128 * 1024,
            entries_inflight_max: 8,
            queue_commands_max: 65_536,
        }
    }
}

impl Batching {
    pub(crate) fn check(&self) -> Result<(), String> {
        if !(1..=ENTRY_COMMANDS_LIMIT).contains(&self.entry_commands_max) {
            return Err(format!("entry_commands_max must be 1 to {ENTRY_COMMANDS_LIMIT}"));
        }
        if self.entry_bytes_max == 0 || self.entries_inflight_max == 0 || self.queue_commands_max == 0 {
            return Err("entry_bytes_max, entries_inflight_max and queue_commands_max must be positive".into());
        }
        Ok(())
    }
}

/// A command's result and state index, or why it has none.
pub(crate) type Reply = Result<(Applied, u64), NodeError>;

struct Proposal {
    cmd: Command,
    bytes: usize,
    reply: oneshot::Sender<Reply>,
}

/// The queue into a group's batching task.
#[derive(Clone)]
pub(crate) struct Proposer {
    tx: mpsc::Sender<Proposal>,
}

impl Proposer {
    /// Starts the batching task of `task.group`; it ends when every
    /// `Proposer` is dropped.
    pub(crate) fn start(task: Task) -> Proposer {
        let (tx, rx) = mpsc::channel(task.batching.queue_commands_max);
        tokio::spawn(run(task, rx));
        Proposer { tx }
    }

    /// Queues `cmd` and waits for its entry to be applied.
    pub(crate) async fn propose(&self, group: GroupId, cmd: Command) -> Reply {
        let bytes = postcard::experimental::serialized_size(&cmd).expect("sizing a command cannot fail");
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Proposal { cmd, bytes, reply }).await.is_err() {
            return Err(NodeError::NoSuchGroup(group));
        }
        // The task answers every proposal it took; a dropped answer means
        // the task stopped (the group closed) with the proposal's outcome
        // unknown.
        answer.await.unwrap_or(Err(NodeError::Unknown(group)))
    }
}

/// What a group's batching task works with.
pub(crate) struct Task {
    pub(crate) group: GroupId,
    pub(crate) raft: ShardRaft,
    /// Read for the applied clock when an entry is stamped.
    pub(crate) state: ShardState,
    pub(crate) clock: Arc<LeaderClock>,
    pub(crate) batching: Batching,
    /// How long an entry may wait to be applied before its commands'
    /// outcome is unknown (this also frees its in-flight slot).
    pub(crate) timeout: Duration,
}

async fn run(task: Task, mut rx: mpsc::Receiver<Proposal>) {
    let task = Arc::new(task);
    let inflight = Arc::new(Semaphore::new(task.batching.entries_inflight_max));
    // A proposal taken from the queue that did not fit the previous entry.
    let mut carried: Option<Proposal> = None;
    loop {
        // Waiting for a free slot first lets the queue fill meanwhile.
        let permit = Arc::clone(&inflight).acquire_owned().await.expect("the semaphore is never closed");
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < task.batching.entry_commands_max {
            let Ok(next) = rx.try_recv() else { break };
            if bytes + next.bytes > task.batching.entry_bytes_max {
                carried = Some(next);
                break;
            }
            bytes += next.bytes;
            batch.push(next);
        }
        let task = Arc::clone(&task);
        tokio::spawn(async move {
            task.write(batch).await;
            drop(permit);
        });
    }
}

impl Task {
    async fn write(&self, batch: Vec<Proposal>) {
        let group = self.group;
        let (cmds, replies): (Vec<Command>, Vec<_>) = batch.into_iter().map(|p| (p.cmd, p.reply)).unzip();
        let count = cmds.len();
        metrics::counter!("raft_proposals_total", "group" => group.to_string()).increment(count as u64);
        metrics::histogram!("raft_entry_commands", "group" => group.to_string()).record(count as f64);
        let entry = LogCmd { time_ms: self.clock.stamp(self.state.read(State::clock_ms)), cmds };
        // An entry caught in a leadership or membership change may never
        // hear back; after the deadline its outcome is unknown, which the
        // callers resolve by retrying with the same request ids.
        let written = tokio::time::timeout(self.timeout, self.raft.client_write(entry)).await;
        match written {
            Ok(Ok(response)) => {
                let CmdResp::Applied(results) = response.data else {
                    unreachable!("a normal entry answered like a blank one")
                };
                assert_eq!(results.len(), count, "an entry's commands and results differ in number");
                let index = response.log_id.index;
                for (position, (applied, reply)) in results.into_iter().zip(replies).enumerate() {
                    let _ = reply.send(Ok((applied, state_index(index, position))));
                }
            }
            Err(_elapsed) => answer_all(replies, || NodeError::Unknown(group)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                let leader = f.leader_id.zip(f.leader_node.map(|n| n.addr));
                answer_all(replies, || NodeError::NotLeader { group, leader: leader.clone() })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)))) => {
                answer_all(replies, || NodeError::Unknown(group))
            }
            Ok(Err(RaftError::APIError(e))) => {
                let reason = e.to_string();
                answer_all(replies, || NodeError::Fatal { group, reason: reason.clone() })
            }
            Ok(Err(RaftError::Fatal(e))) => {
                let reason = e.to_string();
                answer_all(replies, || NodeError::Fatal { group, reason: reason.clone() })
            }
        }
    }
}

fn answer_all(replies: Vec<oneshot::Sender<Reply>>, error: impl Fn() -> NodeError) {
    for reply in replies {
        let _ = reply.send(Err(error()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_indexes_increase_with_log_index_then_position() {
        assert!(state_index(1, 0) > 0);
        assert!(state_index(1, ENTRY_COMMANDS_LIMIT - 1) < state_index(2, 0));
        assert!(state_index(7, 3) < state_index(7, 4));
        for (log, pos) in [(1, 0), (5, 17), (u64::MAX >> INDEX_SHIFT, ENTRY_COMMANDS_LIMIT - 1)] {
            assert_eq!(log_index_of(state_index(log, pos)), log);
        }
    }

    #[test]
    #[should_panic(expected = "at most")]
    fn a_position_past_the_entry_limit_is_a_bug() {
        state_index(1, ENTRY_COMMANDS_LIMIT);
    }

    #[test]
    fn batching_limits_are_checked() {
        assert!(Batching::default().check().is_ok());
        for bad in [
            Batching { entry_commands_max: 0, ..Batching::default() },
            Batching { entry_commands_max: ENTRY_COMMANDS_LIMIT + 1, ..Batching::default() },
            Batching { entry_bytes_max: 0, ..Batching::default() },
            Batching { entries_inflight_max: 0, ..Batching::default() },
            Batching { queue_commands_max: 0, ..Batching::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?} passed");
        }
    }
}
