//! Cluster operations over HTTP (admin): add and remove a storage node,
//! transfer a region group's leadership, trigger snapshots. They map onto
//! the `Shard` service through the gateway's `ClusterClient`; `ticketctl
//! cluster` is their command line.
//!
//! Every operation acts on the region groups the gateway serves and
//! answers `{"groups": [{"region", "group_id", "members", "leader",
//! "snapshotted"}]}` with each touched group's state afterwards. Each is
//! safe to repeat: adding a node that is already a voter, or removing one
//! that is no member, changes nothing. A removed node's id is retired: adding
//! it again is refused (409 `cluster_refused`); a replacement node joins
//! under a new id.
//!
//! A node named in add-node must prove to each group's leader that it is a
//! member of this cluster (it answers a random challenge with a MAC keyed by
//! the cluster secret) before the leader proposes it or sends it anything
//! secret; an address that answers without such a proof is refused (409
//! `cluster_refused`), one where nothing answers is 503 `unavailable`, and
//! no group changes. Remove-node drops the node from every group whether it
//! votes there or only learns.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{ApiError, ApiJson, Caller};
use super::routes::ErrorBody;
use super::Gateway;

type ApiResult = Result<Response, ApiError>;

/// How long an operation waits to see its effect (a new leader, a new
/// membership) before answering.
const SETTLE_WAIT_MS_MAX: u64 = 10_000;
/// How long a transfer waits for the target to take over before asking again.
const TRANSFER_RETRY_MS: u64 = 2_000;

pub(super) fn routes() -> Router<Gateway> {
    Router::new()
        .route("/v1/admin/cluster/nodes", post(add_node))
        .route("/v1/admin/cluster/nodes/{node_id}", delete(remove_node))
        .route("/v1/admin/cluster/groups/{region}/transfer", post(transfer_leader))
        .route("/v1/admin/cluster/groups/{region}/snapshot", post(trigger_snapshot))
}

/// The cluster refused an operation (a bad address, an unknown node): not
/// worth retrying as is.
fn refused(e: raft::ClientError) -> ApiError {
    match e {
        raft::ClientError::Refused(reason) => ApiError::new(StatusCode::CONFLICT, "cluster_refused", reason),
        other => other.into(),
    }
}

/// The freshest view of `group` any node gives: the leader's own, or else
/// the one with the highest term and commit.
async fn group_view(gw: &Gateway, group: u64) -> Option<raft::GroupStatus> {
    let mut best: Option<raft::GroupStatus> = None;
    for addr in gw.cluster().seeds() {
        let Ok(status) = gw.cluster().node_status(addr).await else { continue };
        for g in status.groups.into_iter().filter(|g| g.group == group) {
            let leads = |s: &raft::GroupStatus| s.leader == Some(s.node);
            let better =
                best.as_ref().is_none_or(|b| (leads(&g), g.term, g.commit_index) > (leads(b), b.term, b.commit_index));
            if better {
                best = Some(g);
            }
        }
    }
    best
}

async fn view_or_503(gw: &Gateway, group: u64) -> Result<raft::GroupStatus, ApiError> {
    group_view(gw, group).await.ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("no node reports group {group}"))
            .retry_after(1)
    })
}

/// Polls the group's view for at most `wait_ms` until `done` holds for it;
/// the last view, and whether it did.
async fn wait_for(
    gw: &Gateway,
    group: u64,
    wait_ms: u64,
    done: impl Fn(&raft::GroupStatus) -> bool,
) -> Result<(raft::GroupStatus, bool), ApiError> {
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    loop {
        let view = view_or_503(gw, group).await?;
        if done(&view) {
            return Ok((view, true));
        }
        if Instant::now() >= deadline {
            return Ok((view, false));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn not_settled(group: u64, view: &raft::GroupStatus) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("group {group} did not show the change in time (voters {:?}, leader {:?})", view.voters, view.leader),
    )
    .retry_after(1)
}

/// The group's view once `done` holds for it: a membership change is
/// committed on the leader first and reaches the other replicas with the
/// next append, and the answer should show the change.
async fn settled(
    gw: &Gateway,
    group: u64,
    done: impl Fn(&raft::GroupStatus) -> bool,
) -> Result<raft::GroupStatus, ApiError> {
    match wait_for(gw, group, SETTLE_WAIT_MS_MAX, done).await? {
        (view, true) => Ok(view),
        (view, false) => Err(not_settled(group, &view)),
    }
}

fn group_json(region: &str, view: &raft::GroupStatus, snapshotted: &[u64]) -> Value {
    json!({"region": region, "group_id": view.group, "members": view.voters, "learners": view.learners,
           "leader": view.leader, "retired": view.retired, "snapshotted": snapshotted})
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddNodeReq {
    /// The new node's id.
    node_id: u64,
    /// Its gRPC address (`host:port`).
    addr: String,
}

#[utoipa::path(
    post,
    path = "/v1/admin/cluster/nodes",
    tag = "Admin",
    request_body = AddNodeReq,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"groups\": [{\"region\", \"group_id\", \"members\", \"leader\"}]}`: the node is a voter of every region group"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 409, description = "cluster_refused, and no group changes: the node at `addr` did not prove it is node `node_id` of this cluster (it must run with the cluster's secret, under that id, listening at exactly that address, and answer within a second); or the id was removed before (ids are never reused); or the new learner did not catch up in time and was dropped again (its id is then retired)", body = ErrorBody),
        (status = 503, description = "unavailable (among others: nothing answers at `addr` yet; start the node first; no group changes)", body = ErrorBody)
    )
)]
pub(crate) async fn add_node(
    State(gw): State<Gateway>,
    caller: Caller,
    ApiJson(req): ApiJson<AddNodeReq>,
) -> ApiResult {
    caller.require("admin")?;
    if req.node_id == 0 {
        return Err(ApiError::bad_request("node_id must be at least 1"));
    }
    if req.addr.parse::<std::net::SocketAddr>().is_err() && !looks_like_host_port(&req.addr) {
        return Err(ApiError::bad_request(format!("addr {:?} is not host:port", req.addr)));
    }
    let mut out = Vec::new();
    for (region, &group) in gw.regions() {
        let view = view_or_503(&gw, group).await?;
        if !view.voters.contains(&req.node_id) {
            // A learner first: it receives the log without voting, and the
            // call returns once it has caught up, so promoting it never
            // leaves the group waiting on a voter that is far behind.
            gw.cluster().add_learner(group, req.node_id, &req.addr).await.map_err(refused)?;
            let mut voters: BTreeSet<u64> = view.voters.iter().copied().collect();
            voters.insert(req.node_id);
            let voters: Vec<u64> = voters.into_iter().collect();
            gw.cluster().change_voters(group, &voters).await.map_err(refused)?;
        }
        let view = settled(&gw, group, |v| v.voters.contains(&req.node_id)).await?;
        out.push(group_json(region, &view, &[]));
    }
    Ok(Json(json!({"groups": out})).into_response())
}

fn looks_like_host_port(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[utoipa::path(
    delete,
    path = "/v1/admin/cluster/nodes/{node_id}",
    tag = "Admin",
    params(("node_id" = u64, Path, description = "the node to remove")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"groups\": [...]}`: the node is no member (voter or learner) of any region group any more"),
        (status = 400, description = "invalid_request (it is the last voter of a group)", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 409, description = "cluster_refused", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody)
    )
)]
pub(crate) async fn remove_node(State(gw): State<Gateway>, caller: Caller, Path(node): Path<String>) -> ApiResult {
    caller.require("admin")?;
    let node: u64 = node.parse().map_err(|_| ApiError::bad_request("node_id must be a number"))?;
    let mut out = Vec::new();
    for (region, &group) in gw.regions() {
        let view = view_or_503(&gw, group).await?;
        if view.voters.contains(&node) {
            let voters: Vec<u64> = view.voters.iter().copied().filter(|v| *v != node).collect();
            if voters.is_empty() {
                return Err(ApiError::bad_request(format!("node {node} is the last voter of {region}")));
            }
            gw.cluster().change_voters(group, &voters).await.map_err(refused)?;
        } else if view.learners.contains(&node) {
            // Changing the voters keeps learners: drop it on its own.
            gw.cluster().remove_learner(group, node).await.map_err(refused)?;
        }
        let view = settled(&gw, group, |v| !v.voters.contains(&node) && !v.learners.contains(&node)).await?;
        out.push(group_json(region, &view, &[]));
    }
    Ok(Json(json!({"groups": out})).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaderTransferReq {
    /// The node to lead the group.
    to: u64,
}

#[utoipa::path(
    post,
    path = "/v1/admin/cluster/groups/{region}/transfer",
    tag = "Admin",
    request_body = LeaderTransferReq,
    params(("region" = String, Path, description = "the region of the group")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"groups\": [{\"region\", \"group_id\", \"members\", \"leader\"}]}` once the new leader leads"),
        (status = 400, description = "invalid_region, invalid_request (not a voter)", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 409, description = "cluster_refused", body = ErrorBody),
        (status = 503, description = "unavailable, or the transfer did not complete in time", body = ErrorBody)
    )
)]
pub(crate) async fn transfer_leader(
    State(gw): State<Gateway>,
    caller: Caller,
    Path(region): Path<String>,
    ApiJson(req): ApiJson<LeaderTransferReq>,
) -> ApiResult {
    caller.require("admin")?;
    let group = gw.group_of_region(&region)?;
    let view = view_or_503(&gw, group).await?;
    if !view.voters.contains(&req.to) {
        return Err(ApiError::bad_request(format!("node {} is not a voter of {region}", req.to)));
    }
    // Answer once the group says so, so a script's next step sees the new
    // leader. A transfer the target could not complete (it was still
    // catching up, or another election got in the way) is asked for again.
    let deadline = Instant::now() + Duration::from_millis(SETTLE_WAIT_MS_MAX);
    let mut view = view;
    while view.leader != Some(req.to) {
        if Instant::now() >= deadline {
            return Err(not_settled(group, &view));
        }
        gw.cluster().transfer_leader(group, req.to).await.map_err(refused)?;
        let left_ms = deadline.saturating_duration_since(Instant::now()).as_millis() as u64;
        (view, _) = wait_for(&gw, group, left_ms.min(TRANSFER_RETRY_MS), |v| v.leader == Some(req.to)).await?;
    }
    Ok(Json(json!({"groups": [group_json(&region, &view, &[])]})).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotReq {
    /// Only this node's replica; every member's by default (`{}`).
    #[serde(default)]
    node_id: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/v1/admin/cluster/groups/{region}/snapshot",
    tag = "Admin",
    request_body = SnapshotReq,
    params(("region" = String, Path, description = "the region of the group")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"groups\": [{\"region\", \"group_id\", \"snapshotted\": [node ids]}]}`"),
        (status = 400, description = "invalid_region, invalid_request (not a member)", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 409, description = "cluster_refused", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody)
    )
)]
pub(crate) async fn trigger_snapshot(
    State(gw): State<Gateway>,
    caller: Caller,
    Path(region): Path<String>,
    ApiJson(req): ApiJson<SnapshotReq>,
) -> ApiResult {
    caller.require("admin")?;
    let group = gw.group_of_region(&region)?;
    let view = view_or_503(&gw, group).await?;
    let mut targets: Vec<&(u64, String)> =
        view.members.iter().filter(|(id, _)| req.node_id.is_none_or(|n| n == *id)).collect();
    targets.sort();
    if targets.is_empty() {
        return Err(ApiError::bad_request(format!("node {:?} is not a member of {region}", req.node_id)));
    }
    let mut done = Vec::new();
    for (id, addr) in targets {
        gw.cluster().trigger_snapshot(addr, group).await.map_err(refused)?;
        done.push(*id);
    }
    Ok(Json(json!({"groups": [group_json(&region, &view, &done)]})).into_response())
}
