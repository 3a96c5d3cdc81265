//! Raft messages between nodes over gRPC.
//!
//! One lazily connected channel per peer address serves every group (HTTP/2
//! multiplexes their calls); each call names its group, its sender and its
//! intended target. The server dispatches by group id and handles calls
//! concurrently, so a slow or stuck group never blocks another. Every call
//! carries the cluster secret; a peer without it is refused.
//!
//! The one exception is `Prove`: before a leader adds a node to a group (and
//! so starts sending it the secret), the node must prove it holds the secret
//! by answering a random nonce with an HMAC bound to its id and address
//! ([`prove_peer`]). Neither side sends the secret in that call, so naming a
//! listener of one's own as a new node's address yields nothing.
//!
//! Deadlines: every call is bounded by the deadline openraft passes in
//! `RPCOption` (its soft TTL), both as a gRPC timeout and locally.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RPCTypes, RaftNetworkV2, Snapshot};
use proto::raft_v1::raft_transport_client::RaftTransportClient;
use proto::raft_v1::raft_transport_server::RaftTransport;
use proto::raft_v1::{snapshot_frame, ProveReply, ProveRequest, RaftReply, RaftRequest, SnapshotFrame};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::types::{GroupId, PeerNode, SnapshotMeta, TypeConfig, Vote};
use crate::ShardRaft;

/// Metadata key carrying the cluster secret.
pub(crate) const SECRET_HEADER: &str = "x-cluster-secret";
/// Largest gRPC message a node sends or accepts.
pub(crate) const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest snapshot a node accepts.
const SNAPSHOT_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Snapshot chunk size when openraft does not set one.
const SNAPSHOT_CHUNK_BYTES_DEFAULT: usize = 1024 * 1024;
/// Length of a membership proof's nonce.
pub(crate) const PROOF_NONCE_BYTES: usize = 32;
/// Largest answer to a proof request the asker decodes: the node that
/// answers is not trusted yet, so it gets no room for a large message.
const PROOF_REPLY_BYTES_MAX: usize = 4 * 1024;
/// What a membership proof's HMAC covers before the nonce, so that the MAC
/// cannot stand for anything else keyed with the secret.
const PROOF_LABEL: &[u8] = b"ticketing.raft.v1 membership proof\0";

type ShardSnapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, Vec<u8>>;

/// The groups a node hosts, by id.
pub(crate) type Groups = Arc<RwLock<HashMap<GroupId, ShardRaft>>>;

/// One channel per peer address, shared by every group.
#[derive(Clone, Default)]
pub(crate) struct PeerPool {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl PeerPool {
    pub(crate) fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock().expect("peer pool lock poisoned");
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = endpoint(addr)?.keep_alive_while_idle(true).connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }
}

fn endpoint(addr: &str) -> Result<Endpoint, String> {
    Ok(Endpoint::from_shared(format!("http://{}", crate::debug::dial(addr)))
        .map_err(|e| format!("bad peer address {addr:?}: {e}"))?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5)))
}

/// The MAC node `id` at `addr` answers `nonce` with.
fn membership_proof(secret: &str, nonce: &[u8], id: u64, addr: &str) -> [u8; 32] {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(PROOF_LABEL);
    mac.update(nonce);
    mac.update(&id.to_be_bytes());
    mac.update(addr.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// Why a node named to join was not trusted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProofFailure {
    /// Nothing answered at the address in time (not listening yet, down, or
    /// partitioned away): asking again later may succeed.
    Unreachable(String),
    /// Something answered, but not with a proof that it is the named node
    /// of this cluster.
    Refused(String),
}

/// Pause between proof attempts while nothing listens at the address yet.
const PROOF_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Asks the node at `addr` to prove that it is node `id` of this cluster
/// (holds the secret, and listens at `addr` under that id), trying again
/// while nothing answers, for at most `wait`. The requests carry no secret
/// and go over a connection of their own that closes afterwards, so an
/// address that fails leaves nothing behind.
pub(crate) async fn prove_peer(secret: &str, id: u64, addr: &str, wait: Duration) -> Result<(), ProofFailure> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match prove_once(secret, id, addr, deadline).await {
            Err(ProofFailure::Unreachable(_))
                if deadline.saturating_duration_since(tokio::time::Instant::now()) > PROOF_RETRY_PAUSE =>
            {
                tokio::time::sleep(PROOF_RETRY_PAUSE).await;
            }
            outcome => return outcome,
        }
    }
}

async fn prove_once(secret: &str, id: u64, addr: &str, deadline: tokio::time::Instant) -> Result<(), ProofFailure> {
    let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
    let nonce: [u8; PROOF_NONCE_BYTES] = rand::random();
    let channel = endpoint(addr).map_err(ProofFailure::Refused)?.connect_lazy();
    let mut client = RaftTransportClient::new(channel).max_decoding_message_size(PROOF_REPLY_BYTES_MAX);
    let mut request = Request::new(ProveRequest { nonce: nonce.to_vec() });
    request.set_timeout(wait);
    let reply = match tokio::time::timeout_at(deadline, client.prove(request)).await {
        Err(_) => return Err(ProofFailure::Unreachable(format!("no answer within {} ms", wait.as_millis()))),
        Ok(Err(status)) if matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) => {
            return Err(ProofFailure::Unreachable(status.message().to_string()))
        }
        Ok(Err(status)) => return Err(ProofFailure::Refused(format!("{:?}: {}", status.code(), status.message()))),
        Ok(Ok(reply)) => reply.into_inner(),
    };
    if reply.node_id != id || reply.addr != addr {
        return Err(ProofFailure::Refused(format!("it answers as node {} at {:?}", reply.node_id, reply.addr)));
    }
    if !constant_time_eq::constant_time_eq(&reply.proof, &membership_proof(secret, &nonce, id, addr)) {
        return Err(ProofFailure::Refused("its proof does not match this cluster's secret".to_string()));
    }
    Ok(())
}

/// Creates the per-peer clients of one group.
pub(crate) struct NetworkFactory {
    pub(crate) pool: PeerPool,
    pub(crate) group: GroupId,
    pub(crate) from: u64,
    pub(crate) secret: Arc<str>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> PeerClient {
        PeerClient {
            channel: self.pool.channel(&node.addr),
            group: self.group,
            from: self.from,
            target,
            secret: Arc::clone(&self.secret),
        }
    }
}

/// A group's view of one peer.
pub(crate) struct PeerClient {
    channel: Result<Channel, String>,
    group: GroupId,
    from: u64,
    target: u64,
    secret: Arc<str>,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("encoding to memory cannot fail")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("undecodable message: {e}"))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

fn unreachable(msg: impl Into<String>) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&Failure(msg.into())))
}

fn status_error(status: Status, action: RPCTypes, from: u64, target: u64, ttl: Duration) -> RPCError<TypeConfig> {
    match status.code() {
        Code::DeadlineExceeded | Code::Cancelled => {
            RPCError::Timeout(Timeout { action, id: from, target, timeout: ttl })
        }
        // A peer that is down, does not host the group, is not the node we
        // meant, or refuses our secret: back off before trying again.
        Code::Unavailable
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::Unauthenticated
        | Code::PermissionDenied
        | Code::Unknown => unreachable(status.message().to_string()),
        _ => RPCError::Network(NetworkError::new(&Failure(status.message().to_string()))),
    }
}

impl PeerClient {
    fn client(&self) -> Result<RaftTransportClient<Channel>, RPCError<TypeConfig>> {
        let channel = self.channel.clone().map_err(unreachable)?;
        Ok(RaftTransportClient::new(channel)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX))
    }

    fn request<T: Serialize>(&self, body: &T, ttl: Duration) -> Request<RaftRequest> {
        let mut request = Request::new(RaftRequest {
            group_id: self.group,
            from: self.from,
            target: self.target,
            body: encode(body),
        });
        request.set_timeout(ttl);
        self.authorize(&mut request);
        request
    }

    fn authorize<T>(&self, request: &mut Request<T>) {
        if let Ok(value) = MetadataValue::try_from(&*self.secret) {
            request.metadata_mut().insert(SECRET_HEADER, value);
        }
    }

    async fn unary<Req, Resp, F, Fut>(
        &self,
        body: &Req,
        action: RPCTypes,
        option: &RPCOption,
        call: F,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(RaftTransportClient<Channel>, Request<RaftRequest>) -> Fut,
        Fut: Future<Output = Result<Response<RaftReply>, Status>>,
    {
        let ttl = option.soft_ttl();
        let request = self.request(body, ttl);
        let client = self.client()?;
        let reply = match tokio::time::timeout(ttl, call(client, request)).await {
            Err(_) => {
                return Err(RPCError::Timeout(Timeout { action, id: self.from, target: self.target, timeout: ttl }))
            }
            Ok(Err(status)) => return Err(status_error(status, action, self.from, self.target, ttl)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        decode(&reply.body).map_err(|e| RPCError::Network(NetworkError::new(&Failure(e))))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(&rpc, RPCTypes::AppendEntries, &option, |mut c, r| async move { c.append(r).await }).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(&rpc, RPCTypes::Vote, &option, |mut c, r| async move { c.vote(r).await }).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(&rpc, RPCTypes::Vote, &option, |mut c, r| async move { c.pre_vote(r).await }).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.unary(&req, RPCTypes::TransferLeader, &option, |mut c, r| async move { c.transfer_leader(r).await }).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: ShardSnapshot,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let chunk_bytes = option.snapshot_chunk_size().unwrap_or(SNAPSHOT_CHUNK_BYTES_DEFAULT).max(1);
        let Snapshot { meta, snapshot: bytes } = snapshot;
        let head =
            RaftRequest { group_id: self.group, from: self.from, target: self.target, body: encode(&(vote, meta)) };
        let mut frames = vec![SnapshotFrame { frame: Some(snapshot_frame::Frame::Head(head)) }];
        frames.extend(
            bytes.chunks(chunk_bytes).map(|c| SnapshotFrame { frame: Some(snapshot_frame::Frame::Chunk(c.to_vec())) }),
        );
        // The whole transfer may take many chunk deadlines; bound it by the
        // number of chunks rather than by one RPC's deadline.
        let ttl = option.soft_ttl().max(Duration::from_secs(1)) * (frames.len() as u32).max(1);
        let mut request = Request::new(futures::stream::iter(frames));
        request.set_timeout(ttl);
        self.authorize(&mut request);
        let mut client = self.client()?;
        let send = async move { client.install_snapshot(request).await };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            reply = tokio::time::timeout(ttl, send) => match reply {
                Err(_) => Err(StreamingError::Timeout(Timeout {
                    action: RPCTypes::InstallSnapshot, id: self.from, target: self.target, timeout: ttl,
                })),
                Ok(Err(status)) => Err(status_error(status, RPCTypes::InstallSnapshot, self.from, self.target, ttl).into()),
                Ok(Ok(reply)) => decode(&reply.into_inner().body)
                    .map_err(|e| StreamingError::Network(NetworkError::new(&Failure(e)))),
            },
        }
    }
}

/// The server side: routes each call to the group it names.
/// When each group last accepted an append from a current leader.
pub(crate) type LeaderContact = Arc<Mutex<HashMap<GroupId, std::time::Instant>>>;

pub(crate) struct TransportService {
    pub(crate) contact: LeaderContact,
    pub(crate) node_id: u64,
    /// The address this node listens at, as its proofs name it.
    pub(crate) addr: String,
    pub(crate) groups: Groups,
    pub(crate) secret: Arc<str>,
}

/// Checks a caller's secret in constant time.
pub(crate) fn check_secret<T>(request: &Request<T>, secret: &str) -> Result<(), Status> {
    let given = request.metadata().get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if constant_time_eq::constant_time_eq(given, secret.as_bytes()) {
        Ok(())
    } else {
        Err(Status::unauthenticated("missing or wrong cluster secret"))
    }
}

impl TransportService {
    fn route(&self, request: &Request<RaftRequest>) -> Result<ShardRaft, Status> {
        check_secret(request, &self.secret)?;
        self.group(request.get_ref())
    }

    fn group(&self, msg: &RaftRequest) -> Result<ShardRaft, Status> {
        if msg.target != self.node_id {
            return Err(Status::failed_precondition(format!("this is node {}, not node {}", self.node_id, msg.target)));
        }
        let groups = self.groups.read().expect("groups lock poisoned");
        groups.get(&msg.group_id).cloned().ok_or_else(|| Status::not_found(format!("no group {}", msg.group_id)))
    }
}

fn body<T: DeserializeOwned>(request: &Request<RaftRequest>) -> Result<T, Status> {
    decode(&request.get_ref().body).map_err(Status::invalid_argument)
}

fn reply<T: Serialize>(value: &T) -> Result<Response<RaftReply>, Status> {
    Ok(Response::new(RaftReply { body: encode(value) }))
}

fn fatal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("group is not serving: {e}"))
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn append(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let raft = self.route(&request)?;
        let group = request.get_ref().group_id;
        let rpc: AppendEntriesRequest<TypeConfig> = body(&request)?;
        // An entry no leader of ours would make is refused before the Raft
        // core stores it: applying it would stop the replica.
        if let Some(e) = rpc.entries.iter().find(|e| match &e.payload {
            openraft::EntryPayload::Normal(cmd) => !(1..=crate::ENTRY_COMMANDS_LIMIT).contains(&cmd.cmds.len()),
            _ => false,
        }) {
            return Err(Status::invalid_argument(format!(
                "entry {} carries a number of commands outside 1 to {}",
                e.log_id.index,
                crate::ENTRY_COMMANDS_LIMIT
            )));
        }
        let response = raft.append_entries(rpc).await.map_err(fatal)?;
        // Anything but a higher vote means the sender leads the current term.
        if !matches!(response, AppendEntriesResponse::HigherVote(_)) {
            self.contact.lock().expect("contact lock poisoned").insert(group, std::time::Instant::now());
        }
        reply(&response)
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let raft = self.route(&request)?;
        let rpc: VoteRequest<TypeConfig> = body(&request)?;
        reply(&raft.vote(rpc).await.map_err(fatal)?)
    }

    async fn pre_vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let raft = self.route(&request)?;
        let rpc: VoteRequest<TypeConfig> = body(&request)?;
        reply(&raft.pre_vote(rpc).await.map_err(fatal)?)
    }

    async fn transfer_leader(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let raft = self.route(&request)?;
        let rpc: TransferLeaderRequest<TypeConfig> = body(&request)?;
        reply(&raft.handle_transfer_leader(rpc).await.map_err(fatal)?)
    }

    async fn install_snapshot(
        &self,
        request: Request<tonic::Streaming<SnapshotFrame>>,
    ) -> Result<Response<RaftReply>, Status> {
        check_secret(&request, &self.secret)?;
        let mut frames = request.into_inner();
        let head = match frames.message().await? {
            Some(SnapshotFrame { frame: Some(snapshot_frame::Frame::Head(head)) }) => head,
            _ => return Err(Status::invalid_argument("a snapshot stream must start with its head")),
        };
        let raft = self.group(&head)?;
        let (vote, meta): (Vote, SnapshotMeta) = decode(&head.body).map_err(Status::invalid_argument)?;
        let mut bytes = Vec::new();
        while let Some(frame) = frames.message().await? {
            match frame.frame {
                Some(snapshot_frame::Frame::Chunk(chunk)) => {
                    if bytes.len() + chunk.len() > SNAPSHOT_BYTES_MAX {
                        return Err(Status::resource_exhausted("snapshot larger than the node accepts"));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                _ => return Err(Status::invalid_argument("a snapshot stream has one head")),
            }
        }
        // Refuse a bad snapshot here, before the Raft core sees it: an error
        // there would take the group out of service.
        crate::sm::check_snapshot(&meta, &bytes).map_err(Status::invalid_argument)?;
        let response = raft.install_full_snapshot(vote, Snapshot { meta, snapshot: bytes }).await.map_err(fatal)?;
        reply(&response)
    }

    /// Answers without checking a secret: the proof is what tells the
    /// asker whether to trust this node.
    async fn prove(&self, request: Request<ProveRequest>) -> Result<Response<ProveReply>, Status> {
        let nonce = &request.get_ref().nonce;
        if nonce.len() != PROOF_NONCE_BYTES {
            return Err(Status::invalid_argument(format!("a proof nonce has {PROOF_NONCE_BYTES} bytes")));
        }
        let proof = membership_proof(&self.secret, nonce, self.node_id, &self.addr);
        Ok(Response::new(ProveReply { node_id: self.node_id, addr: self.addr.clone(), proof: proof.to_vec() }))
    }
}

#[cfg(test)]
mod tests {
    use super::membership_proof;

    #[test]
    fn a_proof_binds_secret_nonce_id_and_address() {
        let nonce = [7u8; super::PROOF_NONCE_BYTES];
        let proof = membership_proof("secret", &nonce, 4, "127.0.0.1:7104");
        assert_eq!(proof, membership_proof("secret", &nonce, 4, "127.0.0.1:7104"));
        assert_ne!(proof, membership_proof("secret!", &nonce, 4, "127.0.0.1:7104"));
        assert_ne!(proof, membership_proof("secret", &[8u8; super::PROOF_NONCE_BYTES], 4, "127.0.0.1:7104"));
        assert_ne!(proof, membership_proof("secret", &nonce, 5, "127.0.0.1:7104"));
        assert_ne!(proof, membership_proof("secret", &nonce, 4, "127.0.0.1:7105"));
    }
}
