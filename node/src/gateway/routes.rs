//! The handlers of the contract's routes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query as UrlQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use raft::{Answer, Query};
use serde::Deserialize;
use serde_json::{json, Value};
use statemachine::{
    BookingId, EventId, EventKind, EventSpec, HoldId, HoldStatus, Op, Outcome, RefundTier, RowSpec, SectionSpec,
    Selection, TicketId, TicketStatus, VenueId, VenueSpec, WaitingRoomSpec, WaitlistId,
};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use super::http::{rejection, ApiError, ApiJson, Caller, IdemKey};
use super::ids::{BOOKING, EVENT, HOLD, TICKET, VENUE, WAITLIST};
use super::search::SearchQuery;
use super::tickets::QrClaims;
use super::{saga, views, Gateway};
use crate::text::parse_rfc3339;

type ApiResult = Result<Response, ApiError>;

/// Longest user id a token may name or a transfer may target.
pub(crate) const USER_ID_BYTES_MAX: usize = 128;
/// Events one page of `GET /v1/events` holds at most.
const EVENTS_LIMIT_MAX: usize = 100;
/// The response header naming the state index a write was applied at
/// (`raft::state_index`: its log index and its place in the entry).
pub(crate) const RAFT_INDEX_HEADER: &str = "x-raft-index";
/// How long a user token from the dev route lives.
const DEV_TOKEN_TTL_SECS: u64 = 24 * 3600;

pub(super) fn router(gw: Gateway, body_bytes_max: usize) -> Router {
    let x_request_id = header::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/dev/token", post(dev_token))
        .route("/v1/admin/venues", post(create_venue))
        .route("/v1/admin/events", post(create_event))
        .route("/v1/admin/cluster", get(cluster))
        .route("/v1/events", get(list_events))
        .route("/v1/events/{event_id}", get(event_details))
        .route("/v1/events/{event_id}/seats", get(seat_map))
        .route("/v1/events/{event_id}/seats/stream", get(super::stream::seat_stream))
        .route("/v1/events/{event_id}/holds", post(create_hold))
        .route("/v1/events/{event_id}/waitlist", post(join_waitlist))
        .route("/v1/me/holds", get(my_holds))
        .route("/v1/holds/{hold_id}", get(get_hold).delete(release_hold))
        .route("/v1/bookings", post(create_booking))
        .route("/v1/me/bookings", get(my_bookings))
        .route("/v1/bookings/{booking_id}", get(get_booking))
        .route("/v1/bookings/{booking_id}/cancel", post(cancel_booking))
        .route("/v1/tickets/public-key", get(public_key))
        .route("/v1/tickets/{ticket_id}", get(get_ticket))
        .route("/v1/tickets/{ticket_id}/qr.svg", get(ticket_qr))
        .route("/v1/tickets/{ticket_id}/transfer", post(transfer_ticket))
        .route("/v1/checkin", post(checkin))
        .route("/v1/waitlist/{waitlist_id}", delete(leave_waitlist))
        .route("/v1/events/{event_id}/queue", post(super::queue::join))
        .route("/v1/events/{event_id}/queue/status", get(super::queue::status))
        .route("/v1/events/{event_id}/queue/stream", get(super::queue::stream))
        .route("/v1/events/{event_id}/queue/audit", get(super::queue::audit))
        .merge(super::admin::routes())
        .merge(super::payment_webhook::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(middleware::from_fn(observe))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(gw)
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

/// Latency and count of every request by route and status.
async fn observe(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().to_string();
    let started = Instant::now();
    // Handlers run in this task, so their proposals record their log index
    // in the task-local; the reply carries the highest one (Jepsen-style
    // histories order writes by it).
    let (mut response, index) = super::LOG_INDEX
        .scope(std::cell::Cell::new(0), async {
            let response = next.run(request).await;
            (response, super::LOG_INDEX.with(std::cell::Cell::get))
        })
        .await;
    if index > 0 {
        response.headers_mut().insert(RAFT_INDEX_HEADER, HeaderValue::from(index));
    }
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", &labels).increment(1);
    response
}

fn created(body: Value) -> ApiResult {
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn ok(body: Value) -> ApiResult {
    Ok(Json(body).into_response())
}

fn wrong_answer() -> ApiError {
    ApiError::internal("the shard answered a different query")
}

// ---- operations ----

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "Operations",
    responses(
        (status = 200, description = "the process is up")
    )
)]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "Operations",
    responses(
        (status = 200, description = "a leader is reachable for every region"),
        (status = 503, description = "some region has no reachable leader", body = ErrorBody)
    )
)]
async fn readyz(State(gw): State<Gateway>) -> Response {
    let mut groups = serde_json::Map::new();
    let mut ready = true;
    for (region, &group) in gw.regions() {
        let answer = tokio::time::timeout(Duration::from_secs(2), gw.read(group, Query::Fingerprint)).await;
        let fine = matches!(answer, Ok(Ok(Answer::Fingerprint { .. })));
        ready &= fine;
        groups.insert(region.clone(), json!(if fine { "ok" } else { "unavailable" }));
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut response = (status, Json(json!({"ready": ready, "regions": groups}))).into_response();
    if !ready {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
    }
    response
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "Operations",
    responses(
        (status = 200, description = "Prometheus text")
    )
)]
async fn metrics_text(State(gw): State<Gateway>) -> Response {
    match gw.metrics_text() {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        None => ApiError::not_found("not_found", "metrics are not enabled").into_response(),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DevTokenReq {
    #[schema(min_length = 1, max_length = 128)]
    user_id: String,
    #[serde(default)]
    roles: Vec<String>,
}

fn check_user_id(field: &str, user: &str) -> Result<(), ApiError> {
    if user.is_empty() || user.len() > USER_ID_BYTES_MAX || user.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{field} must be 1 to {USER_ID_BYTES_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/dev/token",
    tag = "Dev",
    request_body = DevTokenReq,
    responses(
        (status = 200, description = "`{\"token\"}`"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 404, description = "not in dev mode", body = ErrorBody)
    )
)]
async fn dev_token(State(gw): State<Gateway>, ApiJson(req): ApiJson<DevTokenReq>) -> ApiResult {
    if !gw.dev_mode() {
        return Err(not_found().await);
    }
    check_user_id("user_id", &req.user_id)?;
    for role in &req.roles {
        if !["admin", "scanner"].contains(&role.as_str()) {
            return Err(ApiError::bad_request(format!("unknown role {role:?}; roles are admin and scanner")));
        }
    }
    let token = gw.auth().issue(&req.user_id, &req.roles, gw.now_secs(), DEV_TOKEN_TTL_SECS);
    ok(json!({"token": token, "expires_in_secs": DEV_TOKEN_TTL_SECS}))
}

#[utoipa::path(
    get,
    path = "/v1/admin/cluster",
    tag = "Admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"nodes\", \"groups\": [{\"region\", \"leader\", \"term\", \"members\", \"commit_index\", \"applied_index\"}]}`"),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody)
    )
)]
async fn cluster(State(gw): State<Gateway>, caller: Caller) -> ApiResult {
    caller.require("admin")?;
    let mut nodes = Vec::new();
    let mut best: BTreeMap<u64, raft::GroupStatus> = BTreeMap::new();
    for addr in gw.cluster().seeds() {
        match gw.cluster().node_status(addr).await {
            Ok(status) => {
                let groups: Vec<Value> = status
                    .groups
                    .iter()
                    .map(|g| {
                        json!({"group_id": g.group, "leader": g.leader, "term": g.term,
                                    "commit_index": g.commit_index, "applied_index": g.applied_index})
                    })
                    .collect();
                nodes.push(json!({"node_id": status.node, "addr": addr, "reachable": true, "groups": groups}));
                for g in status.groups {
                    // The leader's own view is the freshest; otherwise the
                    // view with the highest term and commit.
                    let better = match best.get(&g.group) {
                        None => true,
                        Some(b) => {
                            let leads = |s: &raft::GroupStatus| s.leader == Some(s.node);
                            (leads(&g), g.term, g.commit_index) > (leads(b), b.term, b.commit_index)
                        }
                    };
                    if better {
                        best.insert(g.group, g);
                    }
                }
            }
            Err(e) => nodes.push(json!({"addr": addr, "reachable": false, "error": e.to_string()})),
        }
    }
    let groups: Vec<Value> = gw
        .regions()
        .iter()
        .map(|(region, group)| match best.get(group) {
            Some(s) => json!({"region": region, "group_id": group, "leader": s.leader, "term": s.term,
                              "members": s.voters, "learners": s.learners, "commit_index": s.commit_index,
                              "applied_index": s.applied_index, "last_log_index": s.last_log_index,
                              "snapshot_index": s.snapshot_index, "retired": s.retired}),
            None => json!({"region": region, "group_id": group, "leader": null, "term": null, "members": [],
                           "commit_index": null, "applied_index": null}),
        })
        .collect();
    ok(json!({"nodes": nodes, "groups": groups}))
}

// ---- catalog ----

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VenueReq {
    name: String,
    city: String,
    region: String,
    sections: Vec<SectionReq>,
    #[serde(default)]
    blocked_seats: Vec<String>,
    #[serde(default)]
    accessible_seats: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SectionReq {
    name: String,
    category: String,
    rows: Vec<RowReq>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RowReq {
    #[schema(min_length = 1, max_length = 200)]
    label: String,
    #[schema(minimum = 1, maximum = 2000)]
    seats: u32,
}

#[utoipa::path(
    post,
    path = "/v1/admin/venues",
    tag = "Admin",
    request_body = VenueReq,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "`{\"venue_id\"}`"),
        (status = 400, description = "invalid_layout, invalid_region, invalid_request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody)
    )
)]
async fn create_venue(
    State(gw): State<Gateway>,
    caller: Caller,
    key: IdemKey,
    ApiJson(req): ApiJson<VenueReq>,
) -> ApiResult {
    caller.require("admin")?;
    let group = gw.group_of_region(&req.region)?;
    let spec = VenueSpec {
        name: req.name,
        city: req.city,
        region: req.region,
        sections: req
            .sections
            .into_iter()
            .map(|s| SectionSpec {
                name: s.name,
                category: s.category,
                rows: s.rows.into_iter().map(|r| RowSpec { label: r.label, seats: r.seats }).collect(),
            })
            .collect(),
        blocked_seats: req.blocked_seats,
        accessible_seats: req.accessible_seats,
    };
    match gw.propose(group, &caller.user, &key.0, Op::CreateVenue(spec)).await?.result {
        Ok(Outcome::VenueCreated { venue, capacity }) => {
            created(json!({"venue_id": VENUE.format(group, venue.0), "capacity": capacity}))
        }
        Ok(_) => Err(wrong_answer()),
        Err(r) => Err(rejection(r, group)),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EventReq {
    venue_id: String,
    title: String,
    kind: String,
    starts_at: String,
    genre: String,
    language: String,
    currency: String,
    /// Price per seat category in minor units, each 0 to 1,000,000,000,000.
    prices: BTreeMap<String, u64>,
    sale_opens_at: String,
    #[serde(default)]
    sale_closes_at: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    max_seats_per_hold: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3600)]
    hold_ttl_secs: Option<u32>,
    #[serde(default)]
    refund_policy: Option<Vec<TierReq>>,
    #[serde(default)]
    waiting_room: Option<WaitingRoomReq>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TierReq {
    min_hours_before: u32,
    percent: u8,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WaitingRoomReq {
    enabled: bool,
    #[serde(default = "default_admit_per_minute")]
    admit_per_minute: u32,
    #[serde(default = "default_active_max")]
    active_max: u32,
    #[serde(default)]
    activate_above_per_sec: Option<u32>,
}

fn default_admit_per_minute() -> u32 {
    1_000
}

fn default_active_max() -> u32 {
    1_000
}

fn time_field(field: &str, text: &str) -> Result<u64, ApiError> {
    parse_rfc3339(text).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

fn event_kind(kind: &str) -> Result<EventKind, ApiError> {
    match kind {
        "movie" => Ok(EventKind::Movie),
        "concert" => Ok(EventKind::Concert),
        "sports" => Ok(EventKind::Sports),
        "theater" => Ok(EventKind::Theater),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            format!("kind {other:?} is not one of movie, concert, sports, theater"),
        )),
    }
}

#[utoipa::path(
    post,
    path = "/v1/admin/events",
    tag = "Admin",
    request_body = EventReq,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "`{\"event_id\"}`"),
        (status = 400, description = "invalid_event, invalid_request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 404, description = "venue_not_found", body = ErrorBody)
    )
)]
async fn create_event(
    State(gw): State<Gateway>,
    caller: Caller,
    key: IdemKey,
    ApiJson(req): ApiJson<EventReq>,
) -> ApiResult {
    caller.require("admin")?;
    let (group, venue) = VENUE
        .parse(&req.venue_id)
        .ok_or_else(|| ApiError::not_found("venue_not_found", format!("no venue {:?}", req.venue_id)))?;
    let group = gw.known_group(group, ApiError::not_found("venue_not_found", "no such venue"))?;
    let spec = EventSpec {
        venue: VenueId(venue),
        title: req.title,
        kind: event_kind(&req.kind)?,
        starts_at_ms: time_field("starts_at", &req.starts_at)?,
        genre: req.genre,
        language: req.language,
        currency: req.currency,
        prices: req.prices.into_iter().collect(),
        sale_opens_at_ms: time_field("sale_opens_at", &req.sale_opens_at)?,
        sale_closes_at_ms: req.sale_closes_at.as_deref().map(|t| time_field("sale_closes_at", t)).transpose()?,
        max_seats_per_hold: req.max_seats_per_hold,
        hold_ttl_secs: req.hold_ttl_secs,
        refund_policy: req.refund_policy.map(|tiers| {
            tiers.into_iter().map(|t| RefundTier { min_hours_before: t.min_hours_before, percent: t.percent }).collect()
        }),
        waiting_room: req.waiting_room.map(|w| WaitingRoomSpec {
            enabled: w.enabled,
            admit_per_minute: w.admit_per_minute,
            active_max: w.active_max,
            activate_above_per_sec: w.activate_above_per_sec,
        }),
    };
    match gw.propose(group, &caller.user, &key.0, Op::CreateEvent(spec)).await?.result {
        Ok(Outcome::EventCreated { event }) => {
            // Searchable at once through this gateway; the others pick it
            // up on their next refresh (within a second).
            if let Ok(Answer::Event(Some(view))) = gw.read(group, Query::Event(event)).await {
                gw.catalog().put(group, vec![view]);
            }
            created(json!({"event_id": EVENT.format(group, event.0)}))
        }
        Ok(_) => Err(wrong_answer()),
        Err(r) => Err(rejection(r, group)),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Words to match (at most 200 bytes, 8 words).
    #[param(max_length = 200)]
    q: Option<String>,
    city: Option<String>,
    kind: Option<String>,
    genre: Option<String>,
    language: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    cursor: Option<String>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "Browse",
    params(ListParams),
    responses(
        (status = 200, description = "`{\"events\": [{\"event_id\", \"title\", \"kind\", \"city\", \"venue_name\", \"starts_at\", \"min_price\", \"available\"}], \"next_cursor\"}`"),
        (status = 400, description = "invalid_request", body = ErrorBody)
    )
)]
async fn list_events(
    State(gw): State<Gateway>,
    params: Result<UrlQuery<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let UrlQuery(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = p.limit.unwrap_or(20);
    if limit == 0 || limit > EVENTS_LIMIT_MAX {
        return Err(ApiError::bad_request(format!("limit must be 1 to {EVENTS_LIMIT_MAX}")));
    }
    let offset = match p.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c.parse::<usize>().map_err(|_| ApiError::bad_request("malformed cursor"))?,
    };
    if let Some(kind) = &p.kind {
        event_kind(kind).map_err(|e| ApiError::bad_request(e.message))?;
    }
    let query = SearchQuery {
        q: nonempty(p.q),
        city: nonempty(p.city),
        kind: nonempty(p.kind),
        genre: nonempty(p.genre),
        language: nonempty(p.language),
        from_ms: p.from.as_deref().map(|t| time_field("from", t)).transpose()?,
        to_ms: p.to.as_deref().map(|t| time_field("to", t)).transpose()?,
        limit,
        offset,
    };
    let page = gw.catalog().search().search(&query).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let events: Vec<Value> = page
        .event_ids
        .iter()
        .filter_map(|id| gw.catalog().get(id))
        .map(|(group, e)| views::event_summary(group, &e))
        .collect();
    let next = offset + page.event_ids.len();
    let next_cursor = (next < page.total).then(|| next.to_string());
    ok(json!({"events": events, "next_cursor": next_cursor, "total": page.total}))
}

pub(super) fn event_id(gw: &Gateway, id: &str) -> Result<(u64, EventId), ApiError> {
    let (group, n) = EVENT.parse_or_404(id)?;
    let group = gw.known_group(group, ApiError::not_found("event_not_found", "no such event"))?;
    Ok((group, EventId(n)))
}

#[utoipa::path(
    get,
    path = "/v1/events/{event_id}",
    tag = "Browse",
    params(("event_id" = String, Path, description = "external id")),
    responses(
        (status = 200, description = "event details with prices and availability per category"),
        (status = 404, description = "event_not_found", body = ErrorBody)
    )
)]
async fn event_details(State(gw): State<Gateway>, Path(id): Path<String>) -> ApiResult {
    let (group, event) = event_id(&gw, &id)?;
    match gw.read(group, Query::Event(event)).await? {
        Answer::Event(Some(view)) => ok(views::event_details(group, &view)),
        Answer::Event(None) => Err(ApiError::not_found("event_not_found", "no such event")),
        _ => Err(wrong_answer()),
    }
}

#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/seats",
    tag = "Browse",
    params(("event_id" = String, Path, description = "external id")),
    responses(
        (status = 200, description = "linearizable seat map `{\"event_id\", \"as_of_index\", \"seats\"}`"),
        (status = 404, description = "event_not_found", body = ErrorBody),
        (status = 429, description = "rate_limited: too many costly reads from this address (`[gateway] read_addr_per_sec`)", body = ErrorBody),
        (status = 503, description = "busy: too many seat maps are being built; retry after `Retry-After`", body = ErrorBody)
    )
)]
async fn seat_map(
    State(gw): State<Gateway>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
) -> ApiResult {
    gw.check_read_rate(addr.ip())?;
    let (group, event) = event_id(&gw, &id)?;
    let _permit = gw.seat_map_permit().await?;
    match gw.read_indexed(group, Query::SeatMap(event)).await?.answer {
        Answer::SeatMap(Some(map)) => ok(views::seat_map(group, &map)),
        Answer::SeatMap(None) => Err(ApiError::not_found("event_not_found", "no such event")),
        _ => Err(wrong_answer()),
    }
}

// ---- holds ----

/// Longest seat id or category name a request may carry: the state
/// machine's text bound (`Limits::text_bytes_max`). Longer ones name nothing
/// and are refused here, before anything reaches the log (or is echoed in an
/// answer).
pub(crate) const NAME_BYTES_MAX: usize = 200;

fn check_seat_ids(seats: &[String]) -> Result<(), ApiError> {
    if seats.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_seats", "no seats requested"));
    }
    check_count(u32::try_from(seats.len()).unwrap_or(u32::MAX))?;
    if seats.iter().any(|s| s.len() > NAME_BYTES_MAX) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_seats",
            format!("a seat id has at most {NAME_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

/// A number of seats asked for: at least one, at most what any event allows
/// per hold (the event's own bound is the log's to check).
fn check_count(count: u32) -> Result<(), ApiError> {
    let max = statemachine::EVENT_SEATS_PER_HOLD_MAX;
    if count == 0 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_seats", "count must be at least 1"));
    }
    if count > max {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "too_many_seats", format!("at most {max} seats per hold"))
            .details(json!({"max": max})));
    }
    Ok(())
}

fn check_category(category: &str) -> Result<(), ApiError> {
    if category.is_empty() || category.len() > NAME_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_category",
            format!("a category has 1 to {NAME_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HoldReq {
    /// Seat ids (each at most 200 bytes).
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100)]
    seat_ids: Option<Vec<String>>,
    #[serde(default)]
    best_available: Option<BestReq>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BestReq {
    #[schema(minimum = 1, maximum = 100)]
    count: u32,
    #[schema(min_length = 1, max_length = 200)]
    category: String,
    #[serde(default)]
    together: bool,
    #[serde(default)]
    accessible: bool,
}

#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/holds",
    tag = "Holds",
    request_body = HoldReq,
    params(("event_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "`{\"hold_id\", \"event_id\", \"seat_ids\", \"expires_at\", \"total_price\", \"currency\"}`"),
        (status = 400, description = "invalid_seats, too_many_seats, invalid_request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "queue_required: the event's waiting room is active and no valid `X-Access-Token` for this user and event was sent (or the room has not admitted the user, or their turn ended)", body = ErrorBody),
        (status = 404, description = "event_not_found", body = ErrorBody),
        (status = 409, description = "seats_unavailable, hold_limit, not_on_sale, sold_out", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
        (status = 503, description = "unavailable", body = ErrorBody)
    )
)]
async fn create_hold(
    State(gw): State<Gateway>,
    caller: Caller,
    key: IdemKey,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<HoldReq>,
) -> ApiResult {
    let (group, event) = event_id(&gw, &id)?;
    let selection = match (req.seat_ids, req.best_available) {
        (Some(seats), None) => {
            check_seat_ids(&seats)?;
            Selection::Seats(seats)
        }
        (None, Some(b)) => {
            check_count(b.count)?;
            check_category(&b.category)?;
            Selection::Best { count: b.count, category: b.category, together: b.together, accessible: b.accessible }
        }
        _ => return Err(ApiError::bad_request("give exactly one of seat_ids and best_available")),
    };
    gw.check_access(group, event, &id, &caller.user, &headers).await?;
    let op = Op::Hold { event, user: caller.user.clone(), selection };
    match gw.propose(group, &caller.user, &key.0, op).await?.result {
        Ok(Outcome::Held(receipt)) => created(views::hold_receipt(group, &receipt)),
        Ok(_) => Err(wrong_answer()),
        Err(r) => Err(rejection(r, group)),
    }
}

#[utoipa::path(
    get,
    path = "/v1/me/holds",
    tag = "Holds",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"holds\": [...]}` live holds, waitlist offers included"),
        (status = 401, description = "missing or invalid token", body = ErrorBody)
    )
)]
async fn my_holds(State(gw): State<Gateway>, caller: Caller) -> ApiResult {
    let mut holds = Vec::new();
    for group in gw.groups() {
        match gw.read(group, Query::UserHolds(caller.user.clone())).await? {
            Answer::Holds(list) => {
                holds.extend(list.iter().filter(|h| h.status == HoldStatus::Active).map(|h| views::hold(group, h)))
            }
            _ => return Err(wrong_answer()),
        }
    }
    ok(json!({"holds": holds}))
}

fn hold_id(gw: &Gateway, id: &str) -> Result<(u64, HoldId), ApiError> {
    let (group, n) = HOLD.parse_or_404(id)?;
    let group = gw.known_group(group, ApiError::not_found("hold_not_found", "no such hold"))?;
    Ok((group, HoldId(n)))
}

#[utoipa::path(
    get,
    path = "/v1/holds/{hold_id}",
    tag = "Holds",
    params(("hold_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the hold"),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not the owner", body = ErrorBody),
        (status = 404, description = "hold_not_found", body = ErrorBody)
    )
)]
async fn get_hold(State(gw): State<Gateway>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let (group, hold) = hold_id(&gw, &id)?;
    match gw.read(group, Query::Hold(hold)).await? {
        Answer::Hold(Some(h)) if h.user == caller.user || caller.claims.has_role("admin") => ok(views::hold(group, &h)),
        Answer::Hold(Some(_)) => Err(ApiError::forbidden("not your hold")),
        Answer::Hold(None) => Err(ApiError::not_found("hold_not_found", "no such hold")),
        _ => Err(wrong_answer()),
    }
}

#[utoipa::path(
    delete,
    path = "/v1/holds/{hold_id}",
    tag = "Holds",
    params(("hold_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "released; the seats are available"),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not the owner", body = ErrorBody),
        (status = 404, description = "hold_not_found", body = ErrorBody),
        (status = 409, description = "hold_confirmed", body = ErrorBody)
    )
)]
async fn release_hold(State(gw): State<Gateway>, caller: Caller, key: IdemKey, Path(id): Path<String>) -> ApiResult {
    let (group, hold) = hold_id(&gw, &id)?;
    let op = Op::ReleaseHold { hold, user: caller.user.clone() };
    match gw.propose(group, &caller.user, &key.0, op).await?.result {
        Ok(Outcome::Released { .. }) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(_) => Err(wrong_answer()),
        Err(r) => Err(rejection(r, group)),
    }
}

// ---- bookings ----

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BookingReq {
    hold_id: String,
    payment: PaymentReq,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PaymentReq {
    #[schema(min_length = 1, max_length = 200)]
    token: String,
}

#[utoipa::path(
    post,
    path = "/v1/bookings",
    tag = "Bookings",
    request_body = BookingReq,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "`{\"booking_id\", \"status\": \"confirmed\", \"event_id\", \"seat_ids\", \"total_price\", \"currency\", \"tickets\"}`"),
        (status = 202, description = "`{\"booking_id\", \"status\": \"pending\"}`: the charge is being reconciled"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 402, description = "payment_declined", body = ErrorBody),
        (status = 403, description = "not the owner", body = ErrorBody),
        (status = 404, description = "hold_not_found", body = ErrorBody),
        (status = 409, description = "seats_lost, hold_confirmed", body = ErrorBody),
        (status = 410, description = "hold_expired", body = ErrorBody)
    )
)]
async fn create_booking(
    State(gw): State<Gateway>,
    caller: Caller,
    key: IdemKey,
    ApiJson(req): ApiJson<BookingReq>,
) -> ApiResult {
    let (group, hold) = hold_id(&gw, &req.hold_id)?;
    if req.payment.token.is_empty() || req.payment.token.len() > 200 {
        return Err(ApiError::bad_request("payment.token must be 1 to 200 bytes"));
    }
    let (status, body) = saga::pay(&gw, &caller.user, &key.0, group, hold, &req.payment.token).await?;
    Ok((status, Json(body)).into_response())
}

fn booking_id(gw: &Gateway, id: &str) -> Result<(u64, BookingId), ApiError> {
    let (group, n) = BOOKING.parse_or_404(id)?;
    let group = gw.known_group(group, ApiError::not_found("booking_not_found", "no such booking"))?;
    Ok((group, BookingId(n)))
}

#[utoipa::path(
    get,
    path = "/v1/bookings/{booking_id}",
    tag = "Bookings",
    params(("booking_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the booking (pending, confirmed, cancelled)"),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not the owner", body = ErrorBody),
        (status = 404, description = "booking_not_found", body = ErrorBody)
    )
)]
async fn get_booking(State(gw): State<Gateway>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let (group, booking) = booking_id(&gw, &id)?;
    match gw.read(group, Query::Booking(booking)).await? {
        Answer::Booking(Some(b)) if b.user == caller.user || caller.claims.has_role("admin") => {
            ok(views::booking(group, &b))
        }
        Answer::Booking(Some(_)) => Err(ApiError::forbidden("not your booking")),
        Answer::Booking(None) => Err(ApiError::not_found("booking_not_found", "no such booking")),
        _ => Err(wrong_answer()),
    }
}

#[utoipa::path(
    get,
    path = "/v1/me/bookings",
    tag = "Bookings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"bookings\": [...]}`"),
        (status = 401, description = "missing or invalid token", body = ErrorBody)
    )
)]
async fn my_bookings(State(gw): State<Gateway>, caller: Caller) -> ApiResult {
    let mut bookings = Vec::new();
    for group in gw.groups() {
        match gw.read(group, Query::UserBookings(caller.user.clone())).await? {
            Answer::Bookings(list) => bookings.extend(list.iter().map(|b| views::booking(group, b))),
            _ => return Err(wrong_answer()),
        }
    }
    ok(json!({"bookings": bookings}))
}

#[utoipa::path(
    post,
    path = "/v1/bookings/{booking_id}/cancel",
    tag = "Bookings",
    params(("booking_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"booking_id\", \"status\": \"cancelled\", \"refund_percent\", \"refund_amount\"}`"),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not the owner", body = ErrorBody),
        (status = 404, description = "booking_not_found", body = ErrorBody),
        (status = 409, description = "cancellation_closed, already_cancelled", body = ErrorBody)
    )
)]
async fn cancel_booking(State(gw): State<Gateway>, caller: Caller, key: IdemKey, Path(id): Path<String>) -> ApiResult {
    let (group, booking) = booking_id(&gw, &id)?;
    let op = Op::CancelBooking { booking, user: caller.user.clone() };
    match gw.propose(group, &caller.user, &key.0, op).await?.result {
        Ok(Outcome::Cancelled { booking, refund_percent, refund_amount }) => {
            // The refund itself is paid by the reconciliation loop, which
            // finds the intent owing it.
            ok(json!({"booking_id": BOOKING.format(group, booking.0), "status": "cancelled",
                      "refund_percent": refund_percent, "refund_amount": refund_amount}))
        }
        Ok(_) => Err(wrong_answer()),
        Err(r) => Err(rejection(r, group)),
    }
}

// ---- tickets ----

#[utoipa::path(
    get,
    path = "/v1/tickets/public-key",
    tag = "Tickets",
    responses(
        (status = 200, description = "the Ed25519 key that verifies ticket payloads")
    )
)]
async fn public_key(State(gw): State<Gateway>) -> Json<Value> {
    Json(json!({"algorithm": "Ed25519", "public_key": gw.signer().public_key_b64(), "encoding": "base64url"}))
}

fn ticket_id(gw: &Gateway, id: &str) -> Result<(u64, TicketId), ApiError> {
    let (group, n) = TICKET.parse_or_404(id)?;
    let group = gw.known_group(group, ApiError::not_found("ticket_not_found", "no such ticket"))?;
    Ok((group, TicketId(n)))
}

/// The ticket and its signed payload, for its holder (or an admin).
async fn ticket_for(
    gw: &Gateway,
    caller: &Caller,
    id: &str,
) -> Result<(u64, statemachine::TicketView, String), ApiError> {
    let (group, ticket) = ticket_id(gw, id)?;
    let view = match gw.read(group, Query::Ticket(ticket)).await? {
        Answer::Ticket(Some(t)) => t,
        Answer::Ticket(None) => return Err(ApiError::not_found("ticket_not_found", "no such ticket")),
        _ => return Err(wrong_answer()),
    };
    if view.holder != caller.user && !caller.claims.has_role("admin") {
        return Err(ApiError::forbidden("not your ticket"));
    }
    let payload = gw.signer().sign(&QrClaims {
        ticket_id: TICKET.format(group, view.id.0),
        event_id: EVENT.format(group, view.event.0),
        seat_id: view.seat.clone(),
        holder: view.holder.clone(),
        version: view.version,
    });
    Ok((group, view, payload))
}

#[utoipa::path(
    get,
    path = "/v1/tickets/{ticket_id}",
    tag = "Tickets",
    params(("ticket_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the ticket with its signed qr_payload"),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not the holder", body = ErrorBody),
        (status = 404, description = "ticket_not_found", body = ErrorBody)
    )
)]
async fn get_ticket(State(gw): State<Gateway>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let (group, view, payload) = ticket_for(&gw, &caller, &id).await?;
    ok(views::ticket(group, &view, &payload))
}

#[utoipa::path(
    get,
    path = "/v1/tickets/{ticket_id}/qr.svg",
    tag = "Tickets",
    params(("ticket_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the QR code as SVG"),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not the holder", body = ErrorBody),
        (status = 404, description = "ticket_not_found", body = ErrorBody)
    )
)]
async fn ticket_qr(State(gw): State<Gateway>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let (_, _, payload) = ticket_for(&gw, &caller, &id).await?;
    let svg = super::tickets::qr_svg(&payload).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TransferReq {
    #[schema(min_length = 1, max_length = 128)]
    to_user: String,
}

#[utoipa::path(
    post,
    path = "/v1/tickets/{ticket_id}/transfer",
    tag = "Tickets",
    request_body = TransferReq,
    params(("ticket_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"ticket_id\", \"booking_id\", \"event_id\", \"seat_id\", \"holder\", \"version\", \"status\"}` with the new version and no `qr_payload`: only the new holder reads it (GET /v1/tickets/{ticket_id}), so the giver cannot check in ahead of the recipient"),
        (status = 400, description = "invalid_request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not the holder", body = ErrorBody),
        (status = 404, description = "ticket_not_found", body = ErrorBody),
        (status = 409, description = "ticket_used", body = ErrorBody)
    )
)]
async fn transfer_ticket(
    State(gw): State<Gateway>,
    caller: Caller,
    key: IdemKey,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TransferReq>,
) -> ApiResult {
    check_user_id("to_user", &req.to_user)?;
    let (group, ticket) = ticket_id(&gw, &id)?;
    let op = Op::TransferTicket { ticket, user: caller.user.clone(), to_user: req.to_user.clone() };
    match gw.propose(group, &caller.user, &key.0, op).await?.result {
        Ok(Outcome::Transferred { ticket, version }) => {
            let view = match gw.read(group, Query::Ticket(ticket)).await? {
                Answer::Ticket(Some(t)) => t,
                _ => return Err(wrong_answer()),
            };
            // Answer with the version this transfer made, even if the new
            // holder has passed the ticket on since. No QR payload: a code
            // for the new version in the giver's hands would let them check
            // in ahead of the recipient.
            ok(json!({"ticket_id": TICKET.format(group, ticket.0), "booking_id": BOOKING.format(group, view.booking.0),
                      "event_id": EVENT.format(group, view.event.0), "seat_id": view.seat, "holder": req.to_user,
                      "version": version, "status": views::ticket_status(TicketStatus::Valid)}))
        }
        Ok(_) => Err(wrong_answer()),
        Err(r) => Err(rejection(r, group)),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckinReq {
    qr_payload: String,
}

#[utoipa::path(
    post,
    path = "/v1/checkin",
    tag = "Tickets",
    request_body = CheckinReq,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"ticket_id\", \"seat_id\", \"event_id\"}`"),
        (status = 400, description = "invalid_ticket", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not a scanner", body = ErrorBody),
        (status = 409, description = "already_checked_in", body = ErrorBody)
    )
)]
async fn checkin(
    State(gw): State<Gateway>,
    caller: Caller,
    key: IdemKey,
    ApiJson(req): ApiJson<CheckinReq>,
) -> ApiResult {
    caller.require("scanner")?;
    let invalid = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid_ticket", m.to_string());
    let claims = gw.signer().verify(&req.qr_payload).map_err(|e| invalid(&e.to_string()))?;
    let (group, n) = TICKET.parse(&claims.ticket_id).ok_or_else(|| invalid("the ticket id is malformed"))?;
    let group = gw.known_group(group, invalid("the ticket belongs to no region here"))?;
    let op = Op::CheckIn { ticket: TicketId(n), version: claims.version };
    match gw.propose(group, &caller.user, &key.0, op).await?.result {
        Ok(Outcome::CheckedIn { ticket, event, seat }) => ok(json!({
            "ticket_id": TICKET.format(group, ticket.0), "seat_id": seat, "event_id": EVENT.format(group, event.0),
            "holder": claims.holder,
        })),
        Ok(_) => Err(wrong_answer()),
        // A cancelled ticket does not admit anyone: to the scanner it is
        // just not a valid ticket.
        Err(statemachine::Rejection::TicketCancelled) => Err(invalid("the ticket was cancelled")),
        Err(statemachine::Rejection::TicketNotFound) => Err(invalid("no such ticket")),
        Err(r) => Err(rejection(r, group)),
    }
}

// ---- waitlist ----

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WaitlistReq {
    #[schema(minimum = 1, maximum = 100)]
    count: u32,
    #[schema(min_length = 1, max_length = 200)]
    category: String,
}

#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/waitlist",
    tag = "Waitlist",
    request_body = WaitlistReq,
    params(("event_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "`{\"waitlist_id\", \"position\"}`"),
        (status = 400, description = "invalid_request, invalid_seats, too_many_seats, invalid_category", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "queue_required: the event's waiting room is active and no valid `X-Access-Token` for this user and event was sent", body = ErrorBody),
        (status = 404, description = "event_not_found", body = ErrorBody),
        (status = 409, description = "not_sold_out, already_waitlisted", body = ErrorBody)
    )
)]
async fn join_waitlist(
    State(gw): State<Gateway>,
    caller: Caller,
    key: IdemKey,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<WaitlistReq>,
) -> ApiResult {
    let (group, event) = event_id(&gw, &id)?;
    check_count(req.count)?;
    check_category(&req.category)?;
    // A waitlist offer becomes a hold, so joining needs what a hold needs:
    // while the waiting room gates the event, the room's admission (the log
    // checks it again).
    gw.check_access(group, event, &id, &caller.user, &headers).await?;
    let op = Op::JoinWaitlist { event, user: caller.user.clone(), count: req.count, category: req.category };
    match gw.propose(group, &caller.user, &key.0, op).await?.result {
        Ok(Outcome::WaitlistJoined { waitlist, position }) => {
            created(json!({"waitlist_id": WAITLIST.format(group, waitlist.0), "position": position}))
        }
        Ok(_) => Err(wrong_answer()),
        Err(r) => Err(rejection(r, group)),
    }
}

#[utoipa::path(
    delete,
    path = "/v1/waitlist/{waitlist_id}",
    tag = "Waitlist",
    params(("waitlist_id" = String, Path, description = "external id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "left the waitlist"),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "not the owner", body = ErrorBody),
        (status = 404, description = "waitlist_not_found", body = ErrorBody)
    )
)]
async fn leave_waitlist(State(gw): State<Gateway>, caller: Caller, key: IdemKey, Path(id): Path<String>) -> ApiResult {
    let (group, n) = WAITLIST.parse_or_404(&id)?;
    let group = gw.known_group(group, ApiError::not_found("waitlist_not_found", "no such entry"))?;
    let op = Op::LeaveWaitlist { waitlist: WaitlistId(n), user: caller.user.clone() };
    match gw.propose(group, &caller.user, &key.0, op).await?.result {
        Ok(Outcome::WaitlistLeft { .. }) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(_) => Err(wrong_answer()),
        Err(r) => Err(rejection(r, group)),
    }
}

/// An error answer, as every route gives it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// Machine code (`seats_unavailable`, ...).
    code: String,
    /// Human text.
    message: String,
    /// Code-specific details.
    #[schema(value_type = Object)]
    details: Value,
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// What every operation shares and the handlers' annotations would repeat:
/// the optional `Idempotency-Key` of mutating requests, with its range, and
/// the 429 of every route behind a user token (the per-user rate limit).
struct Shared;

impl utoipa::Modify for Shared {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, Required, ResponseBuilder, Type};
        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "a retry with the same key and user answers the first response (1 to 200 printable ASCII bytes)",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(super::http::IDEMPOTENCY_KEY_BYTES_MAX))
                    .pattern(Some("^[ -~]+$")),
            ))
            .build();
        let limited = ResponseBuilder::new()
            .description("rate_limited: too many requests from this user (see `Retry-After`)")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let external = path.starts_with("/v1/payments/") || path.starts_with("/v1/dev/");
            for (mutates, op) in [(true, item.post.as_mut()), (true, item.delete.as_mut()), (false, item.get.as_mut())]
            {
                let Some(op) = op else { continue };
                if mutates && !external {
                    op.parameters.get_or_insert_with(Vec::new).push(key.clone());
                }
                if op.security.is_some() {
                    op.responses.responses.entry("429".to_string()).or_insert_with(|| limited.clone().into());
                }
            }
        }
    }
}

/// The OpenAPI document of the gateway, generated from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Ticketing gateway API", version = "1", description = "The HTTP API of docs/api-contract.md (ranges of every input: its section Ranges and limits)."),
    modifiers(&BearerAuth, &Shared),
    paths(
        healthz, readyz, metrics_text, openapi_json, dev_token, cluster, create_venue, create_event, list_events,
        event_details, seat_map, super::stream::seat_stream, create_hold, my_holds, get_hold, release_hold,
        create_booking, my_bookings, get_booking, cancel_booking, public_key, get_ticket, ticket_qr, transfer_ticket,
        checkin, join_waitlist, leave_waitlist,
        super::queue::join, super::queue::status, super::queue::stream, super::queue::audit,
        super::admin::add_node, super::admin::remove_node, super::admin::transfer_leader, super::admin::trigger_snapshot,
        super::payment_webhook::webhook
    ),
    components(schemas(ErrorBody))
)]
pub(crate) struct ApiDoc;

#[utoipa::path(get, path = "/openapi.json", tag = "Operations", responses((status = 200, description = "this document")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// The document as committed in `node/openapi.json`.
pub fn openapi_pretty() -> String {
    <ApiDoc as utoipa::OpenApi>::openapi().to_pretty_json().expect("the document serializes")
}
