//! The waiting-room helper: join, wait for admission, hold with the access
//! token.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};

use crate::stream::{Connect, Events, IDLE_MS_MAX};
use crate::types::RawQueueStatus;
use crate::{seg, Admission, ApiError, Client, Error, ErrorCode, Hold, HoldRequest, QueueStatus, QueueTicket, Result};

/// Shortest pause between two status polls, in milliseconds.
const POLL_MS_MIN: u64 = 250;
/// Longest pause between two status polls, in milliseconds: a user near
/// the front should not wait long after being let in.
const POLL_MS_MAX: u64 = 5_000;

/// A place in an event's waiting room.
///
/// ```no_run
/// # async fn demo(alice: client::Client) -> client::Result<()> {
/// use std::time::Duration;
/// use client::HoldRequest;
/// let room = alice.waiting_room("evt-1-5").await?;
/// let admission = room.wait_for_admission(Duration::from_secs(600)).await?;
/// let hold = room.hold(&admission, &HoldRequest::best(2, "premium", true)).await?;
/// # let _ = hold;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct WaitingRoom {
    client: Client,
    event_id: String,
    ticket: QueueTicket,
    /// The token status requests carry; the gateway replaces it once a
    /// pre-queue place is drawn.
    token: Arc<Mutex<String>>,
}

impl Client {
    /// Joins the waiting room of an event (joining again keeps the place).
    pub async fn waiting_room(&self, event_id: &str) -> Result<WaitingRoom> {
        let ticket = self.join_queue(event_id).await?;
        let token = Arc::new(Mutex::new(ticket.queue_token.clone()));
        Ok(WaitingRoom { client: self.clone(), event_id: event_id.to_string(), ticket, token })
    }

    /// Holds seats, going through the event's waiting room if it is
    /// active: when the hold is refused with 403 `queue_required`, joins
    /// the room, waits for admission (at most `wait_max`) and holds with
    /// the access token.
    pub async fn hold_through_queue(&self, event_id: &str, request: &HoldRequest, wait_max: Duration) -> Result<Hold> {
        match self.hold(event_id, request).await {
            Err(e) if e.code() == Some(&ErrorCode::QueueRequired) => {
                let room = self.waiting_room(event_id).await?;
                let admission = room.wait_for_admission(wait_max).await?;
                room.hold(&admission, request).await
            }
            other => other,
        }
    }
}

impl WaitingRoom {
    /// What joining answered (first queue token, first position).
    pub fn ticket(&self) -> &QueueTicket {
        &self.ticket
    }

    /// The queue token in use now.
    pub fn queue_token(&self) -> String {
        self.token.lock().expect("lock poisoned").clone()
    }

    /// The event.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// Where the user stands now.
    pub async fn status(&self) -> Result<QueueStatus> {
        let (status, fresh) = self.client.queue_status_raw(&self.event_id, &self.queue_token()).await?;
        if let Some(t) = fresh {
            *self.token.lock().expect("lock poisoned") = t;
        }
        Ok(status)
    }

    /// Waits until the user is admitted, at most `wait_max`. Ends with 410
    /// [`ErrorCode::SoldOut`] if the event sells out meanwhile,
    /// [`Error::AdmissionLapsed`] if the turn passed unused, and
    /// [`Error::Timeout`] when `wait_max` runs out.
    ///
    /// Follows the gateway's status stream ([`WaitingRoom::updates`]); where
    /// the gateway has none, or it drops, polls the status, more often as
    /// the estimated wait shrinks.
    pub async fn wait_for_admission(&self, wait_max: Duration) -> Result<Admission> {
        self.wait_with(wait_max, |_| {}).await
    }

    /// [`WaitingRoom::wait_for_admission`], calling `progress` with every
    /// status seen while waiting (to show the place in line).
    pub async fn wait_with(&self, wait_max: Duration, mut progress: impl FnMut(&QueueStatus)) -> Result<Admission> {
        let started = Instant::now();
        let mut updates = self.updates();
        loop {
            let left = wait_max.saturating_sub(started.elapsed());
            let next = match tokio::time::timeout(left, updates.next()).await {
                Err(_) => {
                    return Err(Error::Timeout { what: "admission", waited_ms: started.elapsed().as_millis() as u64 })
                }
                Ok(next) => next,
            };
            match next {
                Some(Ok(status)) => {
                    progress(&status);
                    match status {
                        QueueStatus::Admitted(admission) => return Ok(admission),
                        QueueStatus::AccessExpired { .. } => return Err(Error::AdmissionLapsed),
                        QueueStatus::Waiting { .. } => {}
                    }
                }
                // A gateway without the stream route, or a stream that
                // could not be kept up: polling gets there too.
                Some(Err(Error::Api(e))) if e.code == ErrorCode::NotFound => break,
                Some(Err(Error::Unreachable { .. })) | None => break,
                Some(Err(e)) => return Err(e),
            }
        }
        self.poll_until_admitted(started, wait_max, progress).await
    }

    /// [`WaitingRoom::wait_with`] by polling the status only, without the
    /// stream: for networks that cut long-lived connections.
    pub async fn poll_for_admission(
        &self,
        wait_max: Duration,
        progress: impl FnMut(&QueueStatus),
    ) -> Result<Admission> {
        self.poll_until_admitted(Instant::now(), wait_max, progress).await
    }

    async fn poll_until_admitted(
        &self,
        started: Instant,
        wait_max: Duration,
        mut progress: impl FnMut(&QueueStatus),
    ) -> Result<Admission> {
        loop {
            let status = self.status().await?;
            progress(&status);
            let estimate_secs = match status {
                QueueStatus::Admitted(admission) => return Ok(admission),
                QueueStatus::AccessExpired { .. } => return Err(Error::AdmissionLapsed),
                QueueStatus::Waiting { estimated_wait_secs, .. } => estimated_wait_secs,
            };
            let waited = started.elapsed();
            if waited >= wait_max {
                return Err(Error::Timeout { what: "admission", waited_ms: waited.as_millis() as u64 });
            }
            // A quarter of the estimate: early enough not to waste the
            // admission window, rarely enough to spare the gateway.
            let pause_ms = estimate_secs.unwrap_or(1).saturating_mul(250).clamp(POLL_MS_MIN, POLL_MS_MAX);
            let pause = Duration::from_millis(pause_ms).min(wait_max - waited);
            tokio::time::sleep(pause).await;
        }
    }

    /// The status as it changes, from the gateway's status stream
    /// (`GET /v1/events/{id}/queue/stream`, server-sent events). Ends after
    /// [`QueueStatus::Admitted`] or [`QueueStatus::AccessExpired`]; yields
    /// 410 [`ErrorCode::SoldOut`] (or 409 [`ErrorCode::NotOnSale`] once the
    /// sale is over) and ends. Reconnects after a drop; yields
    /// [`Error::Unreachable`] and ends after the retry policy's
    /// `retries_max` failed connections in a row.
    pub fn updates(&self) -> QueueUpdates {
        let state = UpdatesState { room: self.clone(), events: None, failures: 0, done: false };
        QueueUpdates { inner: Box::pin(futures::stream::unfold(state, next_update)) }
    }

    /// Holds seats with the admission's access token.
    pub async fn hold(&self, admission: &Admission, request: &HoldRequest) -> Result<Hold> {
        self.client.hold_with_access(&self.event_id, request, &admission.access_token).await
    }
}

/// The status of a place in a waiting room as it changes; see
/// [`WaitingRoom::updates`].
pub struct QueueUpdates {
    inner: Pin<Box<dyn Stream<Item = Result<QueueStatus>> + Send>>,
}

impl Stream for QueueUpdates {
    type Item = Result<QueueStatus>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for QueueUpdates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueUpdates").finish_non_exhaustive()
    }
}

struct UpdatesState {
    room: WaitingRoom,
    events: Option<Events>,
    /// Connection failures in a row.
    failures: u32,
    done: bool,
}

/// The error the stream's final events stand for.
fn final_event(status: u16, code: ErrorCode, message: &str) -> Error {
    Error::Api(Box::new(ApiError {
        status,
        code,
        message: message.to_string(),
        details: serde_json::Value::Null,
        request_id: None,
        retry_after_secs: None,
        idempotency_key: None,
    }))
}

async fn next_update(mut st: UpdatesState) -> Option<(Result<QueueStatus>, UpdatesState)> {
    let policy = st.room.client.inner.retry.clone();
    loop {
        if st.done {
            return None;
        }
        let Some(events) = st.events.as_mut() else {
            let path = format!("/v1/events/{}/queue/stream", seg(&st.room.event_id));
            let headers = [("x-queue-token", st.room.queue_token())];
            match st.room.client.connect(&path, &headers).await {
                Connect::Open(events) => st.events = Some(events),
                Connect::Refused(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Connect::Retry(retry_after, why) => {
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
            Ok(Some(Ok(event))) => match event.event.as_str() {
                "status" => {
                    let raw: RawQueueStatus = match serde_json::from_str(&event.data) {
                        Ok(raw) => raw,
                        Err(e) => {
                            st.done = true;
                            let e =
                                Error::Decode { status: 200, reason: format!("queue status {:?}: {e}", event.data) };
                            return Some((Err(e), st));
                        }
                    };
                    let mut raw = raw;
                    if let Some(token) = raw.queue_token.take() {
                        *st.room.token.lock().expect("lock poisoned") = token;
                    }
                    let Some(status) = raw.into_status() else {
                        st.done = true;
                        let e = Error::Decode { status: 200, reason: "admitted without an access_token".into() };
                        return Some((Err(e), st));
                    };
                    st.failures = 0;
                    st.done = !matches!(status, QueueStatus::Waiting { .. });
                    return Some((Ok(status), st));
                }
                "sold_out" => {
                    st.done = true;
                    return Some((Err(final_event(410, ErrorCode::SoldOut, "the event sold out")), st));
                }
                "closed" => {
                    st.done = true;
                    return Some((Err(final_event(409, ErrorCode::NotOnSale, "the sale is over")), st));
                }
                _ => continue,
            },
            // Dropped, broken or silent: connect again (the status is a
            // state, not a log, so nothing is lost).
            Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                st.events = None;
                let pause = policy.backoff(st.failures, None);
                st.failures = st.failures.saturating_add(1);
                tokio::time::sleep(pause).await;
            }
        }
    }
}
