//! The openraft type configuration of a region shard. These types stay
//! inside this crate's API; nothing outside `raft/` names openraft.

use std::fmt;

use serde::{Deserialize, Serialize};
use statemachine::{Applied, Command, Millis};

/// A log entry's payload: state-machine commands (those that reached the
/// leader together, see `batch`) and the time the leader stamped on them.
/// Hold expiry is decided by this time, never by a replica's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCmd {
    /// Leader's time when it proposed the entry.
    pub time_ms: Millis,
    /// The commands, applied in this order (at least one, at most
    /// `batch::ENTRY_COMMANDS_LIMIT`).
    pub cmds: Vec<Command>,
}

impl fmt::Display for LogCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cmds.first() {
            Some(first) if self.cmds.len() == 1 => write!(f, "{}/{}@{}", first.client, first.request, self.time_ms),
            Some(first) => {
                write!(f, "{}/{} and {} more@{}", first.client, first.request, self.cmds.len() - 1, self.time_ms)
            }
            None => write!(f, "nothing@{}", self.time_ms),
        }
    }
}

/// What applying an entry answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmdResp {
    /// The commands' results, in the entry's order.
    Applied(Vec<Applied>),
    /// Blank and membership entries carry no command.
    Noop,
}

/// A peer as recorded in the group's membership: where to reach it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerNode {
    /// gRPC address, `host:port`.
    pub addr: String,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

openraft::declare_raft_types!(
    /// openraft types of a region shard.
    pub TypeConfig:
        D = LogCmd,
        R = CmdResp,
        NodeId = u64,
        Node = PeerNode,
);

pub(crate) type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub(crate) type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub(crate) type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub(crate) type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub(crate) type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;

/// Identifies a region group within a node.
pub type GroupId = u64;
