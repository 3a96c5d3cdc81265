//! The live seat map: `GET /v1/events/{event_id}/seats/stream`, server-sent
//! events of seat changes read from a replica's seat-change feed.
//!
//! Every change is an `event: seat` with `data: {"seat_id", "status",
//! "index"}`. One log entry can change several seats; only the last change
//! of an entry carries the `id:` (its log index), so a client that drops
//! mid-entry resumes (`Last-Event-ID`) from the entry before and gets the
//! whole entry again: repeats are possible, gaps are not. When the replica
//! no longer has the changes after the client's index (or the client gives
//! none), the stream starts with every seat of the map at its index.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use raft::{Answer, Query, SeatChange, Watch};
use serde_json::json;
use statemachine::EventId;
use tokio::sync::mpsc;

use super::http::ApiError;
use super::ids::EVENT;
use super::Gateway;

/// Events buffered per client before a slow client is cut off.
const CLIENT_BUFFER_MAX: usize = 4_096;

fn seat_event(seat: &str, status: &str, index: u64, last_of_entry: bool) -> Event {
    let event =
        Event::default().event("seat").data(json!({"seat_id": seat, "status": status, "index": index}).to_string());
    if last_of_entry {
        event.id(index.to_string())
    } else {
        event
    }
}

#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/seats/stream",
    tag = "Browse",
    params(
        ("event_id" = String, Path, description = "external id"),
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this state index (a decimal no later than the log's; later ones are refused with 400 and details.as_of_index)")
    ),
    responses(
        (status = 200, description = "`text/event-stream` of `event: seat` with `id: <log index>` and `data: {\"seat_id\", \"status\", \"index\"}`"),
        (status = 400, description = "invalid_request", body = super::routes::ErrorBody),
        (status = 404, description = "event_not_found", body = super::routes::ErrorBody),
        (status = 429, description = "rate_limited: too many costly reads from this address", body = super::routes::ErrorBody),
        (status = 503, description = "too_many_streams", body = super::routes::ErrorBody)
    )
)]
pub(crate) async fn seat_stream(
    State(gw): State<Gateway>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    gw.check_read_rate(addr.ip())?;
    let (group, n) = EVENT.parse_or_404(&id)?;
    let group = gw.known_group(group, ApiError::not_found("event_not_found", "no such event"))?;
    let event = EventId(n);
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a log index"))?,
        ),
    };
    // Cheap refusals first: a stream place is taken before the read, so a
    // full gateway costs no linearizable read per refused client.
    let permit = gw.stream_permit()?;
    // The event must exist; this is also the first linearizable look.
    let read = gw.read_indexed(group, Query::Event(event)).await?;
    match read.answer {
        Answer::Event(Some(_)) => {}
        _ => return Err(ApiError::not_found("event_not_found", "no such event")),
    }
    // Every id this stream ever sent is a state index the log had applied
    // when it was sent, so a resume point past what a linearizable read
    // sees was never sent: it is refused, not waited for.
    if let Some(after) = resume {
        if after > read.applied_index {
            return Err(ApiError::bad_request(format!(
                "Last-Event-ID {after} is ahead of the log (at {})",
                read.applied_index
            ))
            .details(json!({"as_of_index": read.applied_index})));
        }
    }
    let (tx, rx) = mpsc::channel::<Event>(CLIENT_BUFFER_MAX);
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(e) = pump(&gw, group, event, resume, &tx).await {
            tracing::debug!("seat stream of {id} ended: {e}");
        }
    });
    let stream = futures::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Feeds one client until it goes away.
async fn pump(
    gw: &Gateway,
    group: u64,
    event: EventId,
    resume: Option<u64>,
    tx: &mpsc::Sender<Event>,
) -> Result<(), String> {
    let mut after = match resume {
        Some(index) => index,
        None => full_map(gw, group, event, tx).await?,
    };
    loop {
        let mut watch = match gw.cluster().watch_seats(group, event, after).await {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!("watching group {group}: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = tx.closed() => return Ok(()),
                }
                continue;
            }
        };
        loop {
            // A quiet event sends nothing for hours: the client leaving must
            // end the task (and free its stream place) without waiting for
            // the next change.
            let next = tokio::select! {
                next = watch.next() => next,
                _ = tx.closed() => return Ok(()),
            };
            match next {
                Some(Watch::Changes(changes)) => {
                    after = send_changes(changes, after, tx).await?;
                }
                Some(Watch::Gap) => {
                    after = full_map(gw, group, event, tx).await?;
                    break;
                }
                None => break,
            }
        }
        if tx.is_closed() {
            return Ok(());
        }
    }
}

/// Sends changes past `after`, marking the last change of each entry with
/// its index; returns the last index sent.
async fn send_changes(changes: Vec<SeatChange>, mut after: u64, tx: &mpsc::Sender<Event>) -> Result<u64, String> {
    let fresh: Vec<&SeatChange> = changes.iter().filter(|c| c.index > after).collect();
    for (i, c) in fresh.iter().enumerate() {
        let last_of_entry = fresh.get(i + 1).is_none_or(|next| next.index != c.index);
        tx.send(seat_event(&c.seat, c.status.as_str(), c.index, last_of_entry)).await.map_err(|_| "client gone")?;
        after = c.index;
    }
    Ok(after)
}

/// Sends every seat of the map as of a linearizable read; returns its index.
async fn full_map(gw: &Gateway, group: u64, event: EventId, tx: &mpsc::Sender<Event>) -> Result<u64, String> {
    let map = {
        let _turn = gw.seat_map_permit().await.map_err(|e| e.message)?;
        match gw.read(group, Query::SeatMap(event)).await.map_err(|e| e.message)? {
            Answer::SeatMap(Some(map)) => map,
            _ => return Err("the event is gone".into()),
        }
    };
    let count = map.seats.len();
    for (i, s) in map.seats.iter().enumerate() {
        let event = seat_event(&s.seat_id, s.status.as_str(), map.as_of_index, i + 1 == count);
        tx.send(event).await.map_err(|_| "client gone")?;
    }
    Ok(map.as_of_index)
}
