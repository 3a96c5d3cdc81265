//! The live seat map: `GET /v1/events/{id}/seats/stream` as a `Stream`.
//!
//! The gateway marks the last change of each log entry with `id: <index>`.
//! The stream remembers the last such id and, when the connection drops or
//! goes quiet, reconnects with `Last-Event-ID`, so the gateway resends
//! everything after it: changes may repeat (the rest of a partly received
//! entry), but none is skipped. A consumer applies each change as "seat X is
//! now in state Y", which makes repeats harmless.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::{api_error, seg, Answer, Client, Error, Result, SeatStatus};

/// The gateway sends a keep-alive every 15 s; this much silence means the
/// connection is dead even if the socket does not say so.
pub(crate) const IDLE_MS_MAX: u64 = 45_000;

/// One seat's new state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatChange {
    /// The seat.
    pub seat_id: String,
    /// Its state from now on.
    pub status: SeatStatus,
    /// The log index of the change.
    pub index: u64,
}

pub(crate) type Events =
    Pin<Box<dyn Stream<Item = std::result::Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// Seat changes of one event, resumed across disconnects. Yields an error
/// and ends when the gateway refuses the stream (unknown event) or cannot
/// be reached for the retry policy's `retries_max` attempts in a row.
pub struct SeatStream {
    inner: Pin<Box<dyn Stream<Item = Result<SeatChange>> + Send>>,
    last: Arc<Mutex<Option<u64>>>,
}

impl SeatStream {
    /// The log index the stream would resume after: pass it to
    /// [`Client::seat_stream`] to continue later without a gap.
    pub fn last_event_id(&self) -> Option<u64> {
        *self.last.lock().expect("lock poisoned")
    }
}

impl Stream for SeatStream {
    type Item = Result<SeatChange>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for SeatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeatStream").field("last_event_id", &self.last_event_id()).finish()
    }
}

struct State {
    client: Client,
    path: String,
    last: Arc<Mutex<Option<u64>>>,
    events: Option<Events>,
    /// Connection failures in a row.
    failures: u32,
    done: bool,
}

pub(crate) enum Connect {
    Open(Events),
    /// Worth trying again (transport failure, 5xx, 429).
    Retry(Option<u64>, String),
    /// The gateway refused for good.
    Refused(Error),
}

impl Client {
    /// The live seat map of an event as a stream of changes.
    ///
    /// With `after: None` the stream starts with every seat of a
    /// linearizable seat map, then its changes. With `after:
    /// Some(index)` (a [`SeatMap::as_of_index`](crate::SeatMap) or an
    /// earlier stream's [`SeatStream::last_event_id`]) it continues with
    /// the changes after that log index, or, if the gateway no longer has
    /// them, with a full map again.
    pub fn seat_stream(&self, event_id: &str, after: Option<u64>) -> SeatStream {
        let last = Arc::new(Mutex::new(after));
        let state = State {
            client: self.clone(),
            path: format!("/v1/events/{}/seats/stream", seg(event_id)),
            last: Arc::clone(&last),
            events: None,
            failures: 0,
            done: false,
        };
        SeatStream { inner: Box::pin(futures::stream::unfold(state, next)), last }
    }

    /// Opens an SSE stream at `path` on the current gateway.
    pub(crate) async fn connect(&self, path: &str, headers: &[(&'static str, String)]) -> Connect {
        let (index, base) = self.endpoint();
        // No overall timeout: the body is endless. Only the wait for the
        // answer's head is bounded.
        let mut req = self.inner.http.get(format!("{base}{path}")).header("accept", "text/event-stream");
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let head = tokio::time::timeout(Duration::from_millis(self.inner.retry.attempt_timeout_ms), req.send()).await;
        let response = match head {
            Err(_) => {
                self.rotate(index);
                return Connect::Retry(None, format!("{base}: no answer in time"));
            }
            Ok(Err(e)) => {
                self.rotate(index);
                return Connect::Retry(None, format!("{base}: {e}"));
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        if status == 200 {
            return Connect::Open(body_events(response));
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let answer = Answer { status, headers, body, key: None };
        if crate::retryable_status(status) {
            if status != 429 {
                self.rotate(index);
            }
            Connect::Retry(crate::retry_after(&answer.headers), format!("{base}: {status}"))
        } else {
            Connect::Refused(api_error(&answer))
        }
    }
}

/// The body's bytes as SSE events (reqwest without its `stream` feature).
pub(crate) fn body_events(response: reqwest::Response) -> Events {
    let bytes = futures::stream::unfold(Some(response), |response| async move {
        let mut response = response?;
        match response.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    Box::pin(bytes.eventsource())
}

async fn next(mut st: State) -> Option<(Result<SeatChange>, State)> {
    loop {
        if st.done {
            return None;
        }
        let Some(events) = st.events.as_mut() else {
            let after = *st.last.lock().expect("lock poisoned");
            let headers: Vec<(&'static str, String)> =
                after.map(|a| ("last-event-id", a.to_string())).into_iter().collect();
            match st.client.connect(&st.path, &headers).await {
                Connect::Open(events) => st.events = Some(events),
                Connect::Refused(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Connect::Retry(retry_after, why) => {
                    let policy = st.client.inner.retry.clone();
                    if st.failures >= policy.retries_max {
                        st.done = true;
                        let e = Error::Unreachable { attempts: st.failures + 1, last: why, idempotency_key: None };
                        return Some((Err(e), st));
                    }
                    tokio::time::sleep(policy.backoff(st.failures, retry_after)).await;
                    st.failures += 1;
                }
            }
            continue;
        };
        match tokio::time::timeout(Duration::from_millis(IDLE_MS_MAX), events.next()).await {
            Ok(Some(Ok(event))) => {
                if event.event != "seat" {
                    continue;
                }
                let change: SeatChange = match serde_json::from_str(&event.data) {
                    Ok(c) => c,
                    Err(e) => {
                        st.done = true;
                        let e = Error::Decode { status: 200, reason: format!("seat event {:?}: {e}", event.data) };
                        return Some((Err(e), st));
                    }
                };
                // Only the last change of a log entry carries the id; resume
                // after it, never in the middle of an entry.
                if let Ok(id) = event.id.trim().parse::<u64>() {
                    *st.last.lock().expect("lock poisoned") = Some(id);
                }
                st.failures = 0;
                return Some((Ok(change), st));
            }
            // Dropped, broken or silent: reconnect after the last id.
            Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                st.events = None;
                let pause = st.client.inner.retry.backoff(st.failures, None);
                st.failures = st.failures.saturating_add(1);
                tokio::time::sleep(pause).await;
            }
        }
    }
}
