//! The waiting room's HTTP side: joins batched into one log entry per
//! event, queue and access tokens, status (polled and streamed), the hold
//! gate, load activation and the pre-queue audit.
//!
//! The order and the admissions live in the event's shard (see the
//! state machine's `queue` module); a gateway keeps nothing a restart could
//! lose. A join is answered only after its batch committed, so every
//! acknowledged position is durable, and joining again (at any gateway)
//! returns it.
//!
//! Status answers come from a per-event summary of the room, read
//! linearizably at most every [`SUMMARY_TTL`] and shared by every poll and
//! stream of that event on this gateway; the user's position travels in
//! their signed queue token, so a poll costs no read of its own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use raft::{Answer, Query};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use statemachine::{EventId, Op, Outcome, QueuePhase, QueuePlace, QueueView, Rejection};
use tokio::sync::{mpsc, oneshot};

use super::auth::Purpose;
use super::http::{rejection, ApiError, Caller};
use super::ids::EVENT;
use super::Gateway;
use crate::text::rfc3339 as format_rfc3339;

/// How old a room summary may be when a status is computed from it.
pub(crate) const SUMMARY_TTL: Duration = Duration::from_millis(300);
/// Room summaries a gateway caches at most.
const SUMMARIES_MAX: usize = 10_000;
/// Joins waiting for their batch, per group; beyond this a join is 503.
const JOIN_PENDING_MAX: usize = 65_536;
/// Users one join entry carries at most (within the state machine's bound).
const JOIN_BATCH_USERS_MAX: usize = 2_048;
/// Join batches of one group in flight at once.
const JOIN_BATCHES_IN_FLIGHT_MAX: usize = 4;
/// How long a queue token lives after the event starts (then it is moot).
const QUEUE_TOKEN_SLACK_SECS: u64 = 24 * 3600;
/// How often a position stream re-checks the room.
const STREAM_TICK: Duration = Duration::from_millis(500);
/// Longest a position stream stays open.
const STREAM_SECS_MAX: u64 = 3_600;

/// The claims of a queue token: a place in one event's room for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueueClaims {
    /// The user.
    pub(crate) sub: String,
    /// The event's external id.
    pub(crate) evt: String,
    /// The position, once known (absent in the pre-queue).
    #[serde(default)]
    pub(crate) pos: Option<u64>,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
}

/// The claims of an access token: admission to hold seats of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) sub: String,
    pub(crate) evt: String,
    pub(crate) pos: u64,
    pub(crate) exp: u64,
}

struct JoinReq {
    event: EventId,
    user: String,
    reply: oneshot::Sender<Result<QueuePlace, ApiError>>,
}

/// One event's cached summary: readers check it without waiting; one
/// caller at a time refreshes it (the others wait for that read).
#[derive(Default)]
struct Slot {
    fresh: std::sync::RwLock<Option<(Option<Arc<QueueView>>, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Slot {
    fn get(&self) -> Option<Option<Arc<QueueView>>> {
        let fresh = self.fresh.read().expect("summary lock");
        fresh.as_ref().filter(|(_, at)| at.elapsed() < SUMMARY_TTL).map(|(v, _)| v.clone())
    }
}

/// Hold requests counted per event and second, for load activation.
#[derive(Default)]
struct HoldRate {
    second: u64,
    count: u32,
    proposed_at: u64,
}

/// The gateway's waiting-room state: nothing here needs to survive a
/// restart.
pub(crate) struct Rooms {
    joins: HashMap<u64, mpsc::Sender<JoinReq>>,
    receivers: Mutex<Vec<(u64, mpsc::Receiver<JoinReq>)>>,
    summaries: std::sync::RwLock<HashMap<(u64, EventId), Arc<Slot>>>,
    addr_limiter: DefaultKeyedRateLimiter<IpAddr>,
    hold_rates: Mutex<HashMap<(u64, EventId), HoldRate>>,
}

impl Rooms {
    pub(crate) fn new(groups: &[u64], join_addr_per_sec: u32, join_addr_burst_max: u32) -> Rooms {
        let mut joins = HashMap::new();
        let mut receivers = Vec::new();
        for &g in groups {
            let (tx, rx) = mpsc::channel(JOIN_PENDING_MAX);
            joins.insert(g, tx);
            receivers.push((g, rx));
        }
        let per_sec = NonZeroU32::new(join_addr_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(join_addr_burst_max).unwrap_or(NonZeroU32::MIN);
        Rooms {
            joins,
            receivers: Mutex::new(receivers),
            summaries: std::sync::RwLock::new(HashMap::new()),
            addr_limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
            hold_rates: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn prune_limiter(&self) {
        self.addr_limiter.retain_recent();
        self.addr_limiter.shrink_to_fit();
    }
}

/// Starts one join batcher per group; they stop when `stop` changes.
pub(crate) fn spawn_batchers(
    gw: &Gateway,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let receivers = std::mem::take(&mut *gw.rooms().receivers.lock().expect("rooms lock"));
    receivers.into_iter().map(|(group, rx)| tokio::spawn(run_batcher(gw.clone(), group, rx, stop.clone()))).collect()
}

/// Takes whatever joins are waiting (one at least), groups them by event
/// and proposes one entry per event. Batches grow with load by themselves:
/// while batches are in flight, joins queue up for the next one.
async fn run_batcher(
    gw: Gateway,
    group: u64,
    mut rx: mpsc::Receiver<JoinReq>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(JOIN_BATCHES_IN_FLIGHT_MAX));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&in_flight).acquire_owned() => p.expect("never closed"),
            _ = stop.changed() => return,
        };
        let first = tokio::select! {
            r = rx.recv() => match r { Some(r) => r, None => return },
            _ = stop.changed() => return,
        };
        let mut batch = vec![first];
        while batch.len() < JOIN_BATCH_USERS_MAX {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let gw = gw.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut by_event: std::collections::BTreeMap<EventId, Vec<JoinReq>> = Default::default();
            for r in batch {
                by_event.entry(r.event).or_default().push(r);
            }
            for (event, reqs) in by_event {
                propose_joins(&gw, group, event, reqs).await;
            }
        });
    }
}

async fn propose_joins(gw: &Gateway, group: u64, event: EventId, reqs: Vec<JoinReq>) {
    let users: Vec<String> = reqs.iter().map(|r| r.user.clone()).collect();
    metrics::histogram!("gateway_queue_join_batch_users").record(users.len() as f64);
    let seed: [u8; 32] = rand::random();
    let op = Op::JoinQueue { event, users, seed };
    let request = format!("join:{}", uuid::Uuid::new_v4());
    let result = gw.propose(group, "gateway", &request, op).await;
    match result {
        Ok(applied) => match applied.result {
            Ok(Outcome::QueueJoined { places }) if places.len() == reqs.len() => {
                for (r, place) in reqs.into_iter().zip(places) {
                    let _ = r.reply.send(Ok(place));
                }
            }
            Ok(other) => {
                for r in reqs {
                    let _ = r.reply.send(Err(ApiError::internal(format!("unexpected answer to a join: {other:?}"))));
                }
            }
            Err(Rejection::SoldOut) => {
                for r in reqs {
                    let _ = r.reply.send(Err(sold_out()));
                }
            }
            Err(why) => {
                for r in reqs {
                    let _ = r.reply.send(Err(rejection(why.clone(), group)));
                }
            }
        },
        Err(e) => {
            for r in reqs {
                let _ = r.reply.send(Err(e.clone()));
            }
        }
    }
}

impl Gateway {
    /// The room summary of `event` (`None`: the event has no room), at most
    /// [`SUMMARY_TTL`] old. Concurrent callers share one read.
    pub(crate) async fn room_summary(&self, group: u64, event: EventId) -> Result<Option<Arc<QueueView>>, ApiError> {
        let known = self.rooms().summaries.read().expect("summaries lock").get(&(group, event)).cloned();
        let slot = match known {
            Some(slot) => slot,
            None => {
                let mut map = self.rooms().summaries.write().expect("summaries lock");
                if map.len() >= SUMMARIES_MAX {
                    map.clear();
                }
                Arc::clone(map.entry((group, event)).or_default())
            }
        };
        if let Some(view) = slot.get() {
            return Ok(view);
        }
        let _refreshing = slot.refresh.lock().await;
        if let Some(view) = slot.get() {
            return Ok(view);
        }
        let view = match self.read(group, Query::Queue { event, user: None }).await? {
            Answer::Queue(v) => v.map(Arc::new),
            _ => return Err(ApiError::internal("unexpected answer to a room read")),
        };
        if let Some(v) = &view {
            let label = EVENT.format(group, event.0);
            let depth = v.pre_queue + v.positions - v.admitted_through;
            metrics::gauge!("gateway_waiting_room_depth", "event" => label.clone()).set(depth as f64);
            metrics::gauge!("gateway_waiting_room_active", "event" => label.clone()).set(v.active as f64);
            metrics::gauge!("gateway_waiting_room_admitted", "event" => label).set(v.admitted_through as f64);
        }
        *slot.fresh.write().expect("summary lock") = Some((view.clone(), Instant::now()));
        Ok(view)
    }

    /// The hold gate: while the event's room is active, a hold needs an
    /// access token for this user and event. The state machine checks the
    /// admission again in the log, so a stale summary here can let through
    /// nobody the room has not admitted.
    pub(crate) async fn check_access(
        &self,
        group: u64,
        event: EventId,
        event_ext: &str,
        user: &str,
        headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        let Some(view) = self.room_summary(group, event).await? else { return Ok(()) };
        if view.activate_above_per_sec.is_some() && view.activated_at_ms.is_none() {
            self.count_hold(group, event, view.activate_above_per_sec.unwrap_or(u32::MAX));
        }
        if !view.gate_active {
            return Ok(());
        }
        let required = || {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "queue_required",
                "this event's waiting room is active: join the queue",
            )
            .details(json!({"queue": format!("/v1/events/{event_ext}/queue")}))
        };
        let token = headers.get("x-access-token").and_then(|v| v.to_str().ok()).ok_or_else(required)?;
        let claims: AccessClaims = self.auth().open(Purpose::Access, token).map_err(|_| required())?;
        if claims.sub != user || claims.evt != event_ext || claims.exp <= self.now_secs() {
            return Err(required());
        }
        Ok(())
    }

    /// Counts a hold request for a load-activated room and activates the
    /// room when this gateway alone sees more than `above` a second.
    fn count_hold(&self, group: u64, event: EventId, above: u32) {
        let now = self.now_secs();
        let fire = {
            let mut rates = self.rooms().hold_rates.lock().expect("hold rates lock");
            if rates.len() >= SUMMARIES_MAX && !rates.contains_key(&(group, event)) {
                rates.clear();
            }
            let r = rates.entry((group, event)).or_default();
            if r.second != now {
                r.second = now;
                r.count = 0;
            }
            r.count = r.count.saturating_add(1);
            let fire = r.count > above && r.proposed_at + 2 <= now;
            if fire {
                r.proposed_at = now;
            }
            fire
        };
        if fire {
            let gw = self.clone();
            tokio::spawn(async move {
                let request = format!("activate:{}:{}", event.0, uuid::Uuid::new_v4());
                if let Err(e) = gw.propose(group, "gateway", &request, Op::ActivateQueue { event }).await {
                    tracing::warn!("activating the waiting room of event {event}: {}", e.message);
                }
            });
        }
    }

    fn queue_token(&self, user: &str, event_ext: &str, pos: Option<u64>, view: &QueueView) -> String {
        let now = self.now_secs();
        let claims = QueueClaims {
            sub: user.to_string(),
            evt: event_ext.to_string(),
            pos,
            iat: now,
            exp: now.max(view.opens_at_ms / 1000) + QUEUE_TOKEN_SLACK_SECS * 30,
        };
        self.auth().sign(Purpose::Queue, &claims)
    }
}

fn invalid_queue_token(why: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_queue_token", why.to_string())
}

fn no_room(id: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "no_waiting_room", format!("event {id} has no waiting room"))
}

fn sold_out() -> ApiError {
    ApiError::new(StatusCode::GONE, "sold_out", "the event sold out")
}

fn wait_secs(ahead: u64, view: &QueueView) -> u64 {
    (ahead * 60).div_ceil(u64::from(view.admit_per_minute.max(1)))
}

/// The status of the holder of `pos` in `view` at `now_ms`.
fn status_body(gw: &Gateway, user: &str, event_ext: &str, pos: Option<u64>, view: &QueueView) -> Value {
    let now_ms = gw.now_ms();
    let Some(pos) = pos else {
        let until_open = view.opens_at_ms.saturating_sub(now_ms).div_ceil(1000);
        return json!({"position": null, "ahead": null, "estimated_wait_secs": until_open, "admitted": false,
                      "pre_queue": true, "opens_at": format_rfc3339(view.opens_at_ms)});
    };
    if pos <= view.admitted_through {
        let live = view.live_steps.iter().find(|(through, _)| *through >= pos).filter(|_| pos > view.expired_through);
        if let Some(&(_, at_ms)) = live {
            let expires_ms = at_ms + view.access_ms;
            if expires_ms > now_ms {
                let claims =
                    AccessClaims { sub: user.to_string(), evt: event_ext.to_string(), pos, exp: expires_ms / 1000 };
                return json!({"admitted": true, "position": pos, "ahead": 0, "estimated_wait_secs": 0,
                              "access_token": gw.auth().sign(Purpose::Access, &claims),
                              "access_expires_at": format_rfc3339(expires_ms)});
            }
        }
        return json!({"admitted": false, "position": pos, "ahead": 0, "estimated_wait_secs": 0,
                      "access_expired": true});
    }
    let ahead = pos - view.admitted_through - 1;
    json!({"admitted": false, "position": pos, "ahead": ahead, "estimated_wait_secs": wait_secs(ahead, view),
           "paused": view.none_available})
}

#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/queue",
    tag = "Waiting room",
    params(("event_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "`{\"queue_token\", \"position\", \"ahead\", \"estimated_wait_secs\", \"pre_queue\"}`; `position` is null in the pre-queue until the sale opens; joining again returns the same position"),
        (status = 401, description = "missing or invalid token", body = super::routes::ErrorBody),
        (status = 404, description = "event_not_found", body = super::routes::ErrorBody),
        (status = 409, description = "no_waiting_room, not_on_sale, queue_full", body = super::routes::ErrorBody),
        (status = 410, description = "sold_out", body = super::routes::ErrorBody),
        (status = 429, description = "rate_limited (per user and per address)", body = super::routes::ErrorBody),
        (status = 503, description = "unavailable", body = super::routes::ErrorBody)
    )
)]
pub(crate) async fn join(
    State(gw): State<Gateway>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if let Err(not_until) = gw.rooms().addr_limiter.check_key(&addr.ip()) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        metrics::counter!("gateway_rate_limited_total", "by" => "address").increment(1);
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many joins from this address")
            .retry_after(wait.as_secs() + 1));
    }
    let (group, event) = super::routes::event_id(&gw, &id)?;
    let view = gw.room_summary(group, event).await?.ok_or_else(|| no_room(&id))?;
    if view.sold_out {
        return Err(sold_out());
    }
    if view.phase == QueuePhase::Closed {
        return Err(rejection(Rejection::NotOnSale, group));
    }
    let (tx, rx) = oneshot::channel();
    let sender = gw.rooms().joins.get(&group).ok_or_else(|| ApiError::internal("no join batcher"))?;
    sender.try_send(JoinReq { event, user: caller.user.clone(), reply: tx }).map_err(|_| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "too many joins in flight").retry_after(1)
    })?;
    let place = rx.await.map_err(|_| ApiError::internal("the join batcher stopped"))??;
    metrics::counter!("gateway_queue_joins_total").increment(1);
    let pos = match place {
        QueuePlace::Position(p) => Some(p),
        QueuePlace::PreQueue => None,
        QueuePlace::Full => {
            return Err(ApiError::new(StatusCode::CONFLICT, "queue_full", "the waiting room is full"));
        }
        QueuePlace::InvalidUser => return Err(ApiError::bad_request("the token's user id is not valid here")),
    };
    let mut body = status_body(&gw, &caller.user, &id, pos, &view);
    body["queue_token"] = json!(gw.queue_token(&caller.user, &id, pos, &view));
    body["pre_queue"] = json!(pos.is_none());
    body["user_digest"] = json!(format!("{:032x}", statemachine::user_digest(&caller.user)));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A queue token's claims, checked against the caller and the event.
fn verify_queue_token(gw: &Gateway, token: &str, user: Option<&str>, event_ext: &str) -> Result<QueueClaims, ApiError> {
    let claims: QueueClaims =
        gw.auth().open(Purpose::Queue, token).map_err(|e| invalid_queue_token(&format!("queue token: {e}")))?;
    if user.is_some_and(|u| u != claims.sub) {
        return Err(invalid_queue_token("the queue token was issued to another user"));
    }
    if claims.evt != event_ext {
        return Err(invalid_queue_token("the queue token is for another event"));
    }
    if claims.exp <= gw.now_secs() {
        return Err(invalid_queue_token("the queue token expired"));
    }
    Ok(claims)
}

/// The status of a token's holder, as JSON, or the error to answer with.
async fn status_of(
    gw: &Gateway,
    group: u64,
    event: EventId,
    event_ext: &str,
    claims: &QueueClaims,
) -> Result<Value, ApiError> {
    let view = gw.room_summary(group, event).await?.ok_or_else(|| no_room(event_ext))?;
    if view.sold_out {
        return Err(sold_out());
    }
    if view.phase == QueuePhase::Closed {
        return Err(rejection(Rejection::NotOnSale, group));
    }
    let mut pos = claims.pos;
    let mut fresh_token = None;
    if pos.is_none() && view.phase == QueuePhase::Open {
        // Drawn at the opening: this user's position is in the shard, not
        // yet in their token. Read it once and hand out a token with it.
        let user = Some(claims.sub.clone());
        if let Answer::Queue(Some(v)) = gw.read(group, Query::Queue { event, user }).await? {
            pos = v.user.and_then(|u| u.position);
            if let Some(p) = pos {
                fresh_token = Some(gw.queue_token(&claims.sub, event_ext, Some(p), &view));
            }
        }
    }
    let mut body = status_body(gw, &claims.sub, event_ext, pos, &view);
    if let Some(t) = fresh_token {
        body["queue_token"] = json!(t);
    }
    Ok(body)
}

#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/queue/status",
    tag = "Waiting room",
    params(
        ("event_id" = String, Path, description = "external id"),
        ("X-Queue-Token" = String, Header, description = "the token from the join")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"position\", \"ahead\", \"estimated_wait_secs\", \"admitted\": false}` or `{\"admitted\": true, \"access_token\", \"access_expires_at\"}`; `access_expired: true` when the turn passed unused; a pre-queue token gets its drawn position and a fresh `queue_token` after the opening"),
        (status = 400, description = "invalid_queue_token (forged, another user's or another event's)", body = super::routes::ErrorBody),
        (status = 401, description = "missing or invalid token", body = super::routes::ErrorBody),
        (status = 404, description = "event_not_found", body = super::routes::ErrorBody),
        (status = 409, description = "no_waiting_room, not_on_sale", body = super::routes::ErrorBody),
        (status = 410, description = "sold_out", body = super::routes::ErrorBody)
    )
)]
pub(crate) async fn status(
    State(gw): State<Gateway>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (group, event) = super::routes::event_id(&gw, &id)?;
    let token = headers
        .get("x-queue-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| invalid_queue_token("missing X-Queue-Token"))?;
    let claims = verify_queue_token(&gw, token, Some(&caller.user), &id)?;
    let body = status_of(&gw, group, event, &id, &claims).await?;
    Ok(Json(body).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamParams {
    /// The queue token (browsers' EventSource cannot send headers).
    queue_token: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/queue/stream",
    tag = "Waiting room",
    params(("event_id" = String, Path, description = "external id"), StreamParams),
    responses(
        (status = 200, description = "`text/event-stream`: `event: status` with the status JSON whenever it changes; ends after `admitted: true`, or with `event: sold_out` / `event: closed`. The queue token (header `X-Queue-Token` or `?queue_token=`) is the credential; a bearer token, if sent, must name the same user."),
        (status = 400, description = "invalid_queue_token", body = super::routes::ErrorBody),
        (status = 404, description = "event_not_found", body = super::routes::ErrorBody),
        (status = 503, description = "too_many_streams", body = super::routes::ErrorBody)
    )
)]
pub(crate) async fn stream(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<StreamParams>,
) -> Result<Response, ApiError> {
    let (group, event) = super::routes::event_id(&gw, &id)?;
    let token = headers
        .get("x-queue-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(params.queue_token)
        .ok_or_else(|| invalid_queue_token("missing queue token"))?;
    let bearer_user = match headers.get(axum::http::header::AUTHORIZATION) {
        Some(h) => {
            let h = h.to_str().map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "bad header"))?;
            let t = super::auth::bearer(h)
                .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "expected a bearer token"))?;
            let c = gw
                .auth()
                .verify(t, gw.now_secs())
                .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))?;
            Some(c.sub)
        }
        None => None,
    };
    let mut claims = verify_queue_token(&gw, &token, bearer_user.as_deref(), &id)?;
    gw.check_rate(&claims.sub)?;
    let permit = gw.stream_permit()?;
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(4);
    tokio::spawn(async move {
        let _permit = permit;
        let started = Instant::now();
        let mut last: Option<Value> = None;
        while started.elapsed() < Duration::from_secs(STREAM_SECS_MAX) {
            let (kind, body, last_one) = match status_of(&gw, group, event, &id, &claims).await {
                Ok(body) => {
                    let done = body["admitted"] == json!(true) || body["access_expired"] == json!(true);
                    ("status", body, done)
                }
                Err(e) if e.code == "sold_out" => ("sold_out", json!({"error": {"code": e.code}}), true),
                Err(e) if e.code == "not_on_sale" => ("closed", json!({"error": {"code": e.code}}), true),
                Err(e) => {
                    tracing::debug!("queue stream of event {id}: {}", e.message);
                    tokio::select! {
                        _ = tokio::time::sleep(STREAM_TICK) => {}
                        _ = tx.closed() => return,
                    }
                    continue;
                }
            };
            if let Some(p) = body["position"].as_u64() {
                claims.pos = Some(p);
            }
            if last.as_ref() != Some(&body) {
                let sse = SseEvent::default().event(kind).data(body.to_string());
                if tx.send(Ok(sse)).await.is_err() {
                    return;
                }
                last = Some(body);
            }
            if last_one {
                return;
            }
            // A client that left frees its stream place at once, not when
            // its position next changes.
            tokio::select! {
                _ = tokio::time::sleep(STREAM_TICK) => {}
                _ = tx.closed() => return,
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// Positions after this one (default 0).
    after: Option<u64>,
    /// Page size (default 1000, at most 10000).
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/queue/audit",
    tag = "Waiting room",
    params(("event_id" = String, Path, description = "external id"), AuditParams),
    responses(
        (status = 200, description = "`{\"seed\", \"drawn\", \"rule\", \"entries\": [{\"position\", \"user_digest\"}], \"next_after\"}`: the pre-queue draw, recomputable by anyone: positions 1..=drawn are the drawn users sorted by SHA-256(seed ‖ user digest as 16 little-endian bytes); a user digest is the xxh3-128 of the user id. The seed is null until the sale opens."),
        (status = 404, description = "event_not_found", body = super::routes::ErrorBody),
        (status = 409, description = "no_waiting_room", body = super::routes::ErrorBody),
        (status = 429, description = "rate_limited: too many costly reads from this address", body = super::routes::ErrorBody)
    )
)]
pub(crate) async fn audit(
    State(gw): State<Gateway>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    UrlQuery(params): UrlQuery<AuditParams>,
) -> Result<Response, ApiError> {
    // A page scans the room's users on the leader: limited per address.
    gw.check_read_rate(addr.ip())?;
    let (group, event) = super::routes::event_id(&gw, &id)?;
    let after = params.after.unwrap_or(0);
    let limit = params.limit.unwrap_or(1_000).clamp(1, raft::AUDIT_PAGE_MAX);
    let audit = match gw.read(group, Query::QueueAudit { event, after, limit }).await? {
        Answer::QueueAudit(a) => a,
        _ => return Err(ApiError::internal("unexpected answer to an audit read")),
    };
    let audit = match audit {
        Some(a) => a,
        // No room record yet: either no room at all, or nobody joined.
        None => {
            gw.room_summary(group, event).await?.ok_or_else(|| no_room(&id))?;
            statemachine::QueueAudit { seed: None, drawn: 0, entries: Vec::new() }
        }
    };
    let next_after = (audit.entries.len() as u32 == limit).then(|| audit.entries.last().map(|(p, _)| *p)).flatten();
    let entries: Vec<Value> =
        audit.entries.iter().map(|(p, d)| json!({"position": p, "user_digest": format!("{d:032x}")})).collect();
    Ok(Json(json!({
        "event_id": id,
        "seed": audit.seed.map(hex::encode),
        "drawn": audit.drawn,
        "rule": "positions 1..=drawn: drawn users by ascending SHA-256(seed || user_digest as 16 little-endian bytes); user_digest = xxh3-128(user id)",
        "entries": entries,
        "next_after": next_after,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::auth::Auth;

    #[test]
    fn room_tokens_are_not_user_tokens_nor_each_other() {
        let auth = Auth::new(b"secret-secret-secret-secret-0123");
        let q = QueueClaims { sub: "alice".into(), evt: "evt-1-1".into(), pos: Some(3), iat: 1, exp: u64::MAX / 2 };
        let token = auth.sign(Purpose::Queue, &q);
        assert_eq!(auth.open::<QueueClaims>(Purpose::Queue, &token).unwrap(), q);
        assert!(auth.open::<AccessClaims>(Purpose::Access, &token).is_err());
        assert!(auth.verify(&token, 1).is_err(), "a queue token is no bearer token");
        let user = auth.issue("alice", &[], 1, 1000);
        assert!(auth.open::<QueueClaims>(Purpose::Queue, &user).is_err());
        let other = Auth::new(b"another-secret-another-secret-01");
        assert!(other.open::<QueueClaims>(Purpose::Queue, &token).is_err());
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(auth.open::<QueueClaims>(Purpose::Queue, &forged).is_err());
    }
}
