//! The `Shard` gRPC service a node offers gateways and operators: proposals
//! and reads on the groups it leads, and cluster operations. It shares the
//! node's gRPC server (and its cluster secret) with the Raft transport.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};

use proto::raft_v1::shard_server::Shard;
use proto::raft_v1::{
    AddLearnerRequest, ChangeVotersRequest, Empty, GroupRequest, GroupStatus as GroupStatusMsg, InitializeRequest,
    Member, NodeStatusReply, ProposeReply, ProposeRequest, ReadConsistency, ReadReply, ReadRequest,
    RemoveLearnerRequest, SeatChanges, TransferLeaderRequest, WatchEventsRequest, WatchSeatsRequest,
};
use statemachine::Command;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::network::check_secret;
use crate::node::{NodeError, RaftNode};
use crate::query::Query;
use crate::types::PeerNode;

/// Metadata key naming what went wrong.
pub(crate) const ERROR_KIND: &str = "x-shard-error";
/// Metadata key with the leader's node id on `not_leader`.
pub(crate) const LEADER_ID: &str = "x-leader-id";
/// Metadata key with the leader's address on `not_leader`.
pub(crate) const LEADER_ADDR: &str = "x-leader-addr";

pub(crate) struct ShardService {
    pub(crate) node: Weak<RaftNode>,
    pub(crate) secret: Arc<str>,
}

fn with_kind(mut status: Status, kind: &'static str) -> Status {
    status.metadata_mut().insert(ERROR_KIND, MetadataValue::from_static(kind));
    status
}

/// The status a node error travels as; the client turns it back.
pub(crate) fn to_status(e: NodeError) -> Status {
    let message = e.to_string();
    match e {
        NodeError::NotLeader { leader, .. } => {
            let mut status = with_kind(Status::failed_precondition(message), "not_leader");
            if let Some((id, addr)) = leader {
                status.metadata_mut().insert(LEADER_ID, MetadataValue::from(id));
                if let Ok(addr) = MetadataValue::try_from(addr.as_str()) {
                    status.metadata_mut().insert(LEADER_ADDR, addr);
                }
            }
            status
        }
        NodeError::Unknown(_) => with_kind(Status::unavailable(message), "unknown"),
        NodeError::NoQuorum(_) => with_kind(Status::unavailable(message), "no_quorum"),
        NodeError::NoSuchGroup(_) => with_kind(Status::not_found(message), "no_group"),
        NodeError::Config(_) => with_kind(Status::invalid_argument(message), "bad_request"),
        NodeError::Retired { .. } => with_kind(Status::invalid_argument(message), "retired"),
        // Asking again will not make the node prove itself.
        NodeError::Unproven(_) => with_kind(Status::invalid_argument(message), "unproven"),
        // Perhaps not listening yet: the client asks again within its budget.
        NodeError::Unreachable(_) => with_kind(Status::unavailable(message), "unreachable"),
        // Dropped again: its id is retired, so a retry cannot succeed.
        NodeError::NotCaughtUp { removed: true, .. } => with_kind(Status::invalid_argument(message), "not_caught_up"),
        NodeError::NotCaughtUp { removed: false, .. } => with_kind(Status::unavailable(message), "not_caught_up"),
        NodeError::Fatal { .. } | NodeError::Io(_) => with_kind(Status::internal(message), "fatal"),
    }
}

fn bad_request(message: impl Into<String>) -> Status {
    with_kind(Status::invalid_argument(message.into()), "bad_request")
}

impl ShardService {
    fn node<T>(&self, request: &Request<T>) -> Result<Arc<RaftNode>, Status> {
        check_secret(request, &self.secret)?;
        self.node.upgrade().ok_or_else(|| with_kind(Status::unavailable("the node is shutting down"), "fatal"))
    }
}

fn members(list: &[Member]) -> Result<BTreeMap<u64, PeerNode>, Status> {
    let mut out = BTreeMap::new();
    for m in list {
        if m.id == 0 || m.addr.is_empty() {
            return Err(bad_request("a member needs a non-zero id and an address"));
        }
        if out.insert(m.id, PeerNode { addr: m.addr.clone() }).is_some() {
            return Err(bad_request(format!("member {} listed twice", m.id)));
        }
    }
    if out.is_empty() {
        return Err(bad_request("no members"));
    }
    Ok(out)
}

/// Seat changes one watch message carries at most (whole entries, so a
/// message may exceed it by one entry).
const WATCH_CHANGES_MAX: usize = 1_000;

fn seat_changes(changes: &[crate::feed::SeatChange]) -> SeatChanges {
    SeatChanges { changes: postcard::to_allocvec(changes).expect("encoding to memory cannot fail"), gap: false }
}

/// Splits changes into messages at entry boundaries.
fn chunks(changes: Vec<crate::feed::SeatChange>) -> Vec<SeatChanges> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=changes.len() {
        let boundary = i == changes.len() || changes[i].index != changes[i - 1].index;
        if boundary && (i - start >= WATCH_CHANGES_MAX || i == changes.len()) {
            out.push(seat_changes(&changes[start..i]));
            start = i;
        }
    }
    out
}

type WatchStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<SeatChanges, Status>> + Send>>;
type EventsStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<proto::raft_v1::DomainEvents, Status>> + Send>>;

#[tonic::async_trait]
impl Shard for ShardService {
    type WatchSeatsStream = WatchStream;
    type WatchEventsStream = EventsStream;

    async fn watch_events(&self, request: Request<WatchEventsRequest>) -> Result<Response<EventsStream>, Status> {
        use crate::events::EventsResume;
        use proto::raft_v1::DomainEvents;
        let node = self.node(&request)?;
        let msg = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<DomainEvents, Status>>(64);
        let encode = |entries: &[(u64, Vec<statemachine::DomainEvent>)]| DomainEvents {
            entries: postcard::to_allocvec(entries).expect("encoding to memory cannot fail"),
            gap: false,
        };
        match node.watch_events(msg.group_id, msg.after_index).map_err(to_status)? {
            EventsResume::Gap => {
                let _ = tx.send(Ok(DomainEvents { entries: Vec::new(), gap: true })).await;
            }
            EventsResume::Events(past, mut live) => {
                tokio::spawn(async move {
                    for chunk in past.chunks(256) {
                        let entries: Vec<_> = chunk.iter().map(|e| (e.0, e.1.clone())).collect();
                        if tx.send(Ok(encode(&entries))).await.is_err() {
                            return;
                        }
                    }
                    loop {
                        match live.recv().await {
                            Ok(entry) => {
                                if tx.send(Ok(encode(&[(entry.0, entry.1.clone())]))).await.is_err() {
                                    return;
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                let _ = tx.send(Ok(DomainEvents { entries: Vec::new(), gap: true })).await;
                                return;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        }
                    }
                });
            }
        }
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn watch_seats(&self, request: Request<WatchSeatsRequest>) -> Result<Response<WatchStream>, Status> {
        use crate::feed::Resume;
        let node = self.node(&request)?;
        let msg = request.into_inner();
        let event = statemachine::EventId(msg.event_id);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<SeatChanges, Status>>(64);
        match node.watch_seats(msg.group_id, event, msg.after_index).map_err(to_status)? {
            Resume::Gap => {
                let _ = tx.send(Ok(SeatChanges { changes: Vec::new(), gap: true })).await;
            }
            Resume::Changes(past, mut live) => {
                tokio::spawn(async move {
                    for message in chunks(past) {
                        if tx.send(Ok(message)).await.is_err() {
                            return;
                        }
                    }
                    loop {
                        match live.recv().await {
                            Ok(entry) => {
                                let mine: Vec<_> = entry.iter().filter(|c| c.event == event).cloned().collect();
                                if !mine.is_empty() && tx.send(Ok(seat_changes(&mine))).await.is_err() {
                                    return;
                                }
                            }
                            // Too slow to keep up: the reader starts over.
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                let _ = tx.send(Ok(SeatChanges { changes: Vec::new(), gap: true })).await;
                                return;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        }
                    }
                });
            }
        }
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn propose(&self, request: Request<ProposeRequest>) -> Result<Response<ProposeReply>, Status> {
        let node = self.node(&request)?;
        let msg = request.into_inner();
        let cmd: Command =
            postcard::from_bytes(&msg.command).map_err(|e| bad_request(format!("undecodable command: {e}")))?;
        let (applied, index) = node.propose_indexed(msg.group_id, cmd).await.map_err(to_status)?;
        let bytes = postcard::to_allocvec(&applied).expect("encoding to memory cannot fail");
        Ok(Response::new(ProposeReply { applied: bytes, index }))
    }

    async fn read(&self, request: Request<ReadRequest>) -> Result<Response<ReadReply>, Status> {
        let node = self.node(&request)?;
        let msg = request.into_inner();
        let query: Query =
            postcard::from_bytes(&msg.query).map_err(|e| bad_request(format!("undecodable query: {e}")))?;
        let reply = match ReadConsistency::try_from(msg.consistency) {
            Ok(ReadConsistency::Linearizable) => node.query(msg.group_id, &query).await,
            // The leader itself answers a follower read linearizably.
            Ok(ReadConsistency::Follower) if node.leader(msg.group_id).map_err(to_status)? == Some(node.id()) => {
                node.query(msg.group_id, &query).await
            }
            Ok(ReadConsistency::Follower) => node.follower_query(msg.group_id, &query, msg.max_lag_entries),
            Err(_) => return Err(bad_request("unknown read consistency")),
        }
        .map_err(to_status)?;
        let bytes = postcard::to_allocvec(&reply).expect("encoding to memory cannot fail");
        Ok(Response::new(ReadReply { reply: bytes }))
    }

    async fn open_group(&self, request: Request<GroupRequest>) -> Result<Response<Empty>, Status> {
        let node = self.node(&request)?;
        node.open_group(request.into_inner().group_id).await.map_err(to_status)?;
        Ok(Response::new(Empty {}))
    }

    async fn initialize(&self, request: Request<InitializeRequest>) -> Result<Response<Empty>, Status> {
        let node = self.node(&request)?;
        let msg = request.into_inner();
        node.initialize(msg.group_id, members(&msg.members)?).await.map_err(to_status)?;
        Ok(Response::new(Empty {}))
    }

    async fn add_learner(&self, request: Request<AddLearnerRequest>) -> Result<Response<Empty>, Status> {
        let node = self.node(&request)?;
        let msg = request.into_inner();
        let learner = msg.learner.ok_or_else(|| bad_request("no learner"))?;
        let (id, peer) = members(&[learner])?.into_iter().next().expect("one member");
        node.add_learner(msg.group_id, id, peer).await.map_err(to_status)?;
        Ok(Response::new(Empty {}))
    }

    async fn change_voters(&self, request: Request<ChangeVotersRequest>) -> Result<Response<Empty>, Status> {
        let node = self.node(&request)?;
        let msg = request.into_inner();
        let voters: BTreeSet<u64> = msg.voters.iter().copied().collect();
        if voters.is_empty() || voters.len() != msg.voters.len() || voters.contains(&0) {
            return Err(bad_request("voters must be distinct non-zero ids, at least one"));
        }
        node.change_voters(msg.group_id, voters).await.map_err(to_status)?;
        Ok(Response::new(Empty {}))
    }

    async fn remove_learner(&self, request: Request<RemoveLearnerRequest>) -> Result<Response<Empty>, Status> {
        let node = self.node(&request)?;
        let msg = request.into_inner();
        if msg.id == 0 {
            return Err(bad_request("a learner id is non-zero"));
        }
        node.remove_learner(msg.group_id, msg.id).await.map_err(to_status)?;
        Ok(Response::new(Empty {}))
    }

    async fn transfer_leader(&self, request: Request<TransferLeaderRequest>) -> Result<Response<Empty>, Status> {
        let node = self.node(&request)?;
        let msg = request.into_inner();
        node.transfer_leader(msg.group_id, msg.to).await.map_err(to_status)?;
        Ok(Response::new(Empty {}))
    }

    async fn trigger_snapshot(&self, request: Request<GroupRequest>) -> Result<Response<Empty>, Status> {
        let node = self.node(&request)?;
        node.trigger_snapshot(request.into_inner().group_id).await.map_err(to_status)?;
        Ok(Response::new(Empty {}))
    }

    async fn node_status(&self, request: Request<Empty>) -> Result<Response<NodeStatusReply>, Status> {
        let node = self.node(&request)?;
        let groups = node
            .statuses()
            .into_iter()
            .map(|s| GroupStatusMsg {
                group_id: s.group,
                leader: s.leader.unwrap_or(0),
                term: s.term,
                voters: s.voters,
                learners: s.learners,
                last_log_index: s.last_log_index,
                commit_index: s.commit_index,
                applied_index: s.applied_index,
                snapshot_index: s.snapshot_index.unwrap_or(0),
                purged_index: s.purged_index.unwrap_or(0),
                members: s.members.into_iter().map(|(id, addr)| Member { id, addr }).collect(),
                retired: s.retired,
            })
            .collect();
        Ok(Response::new(NodeStatusReply { node_id: node.id(), addr: node.peer().addr, groups }))
    }
}
