//! The waiting-room helper: join, wait for admission, hold with the access
//! token.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Admission, Client, Error, ErrorCode, Hold, HoldRequest, QueueStatus, QueueTicket, Result};

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

    /// Polls the status until the user is admitted, at most `wait_max`;
    /// polls more often as the estimated wait shrinks. Ends with 410
    /// [`ErrorCode::SoldOut`] if the event sells out meanwhile,
    /// [`Error::AdmissionLapsed`] if the turn passed unused, and
    /// [`Error::Timeout`] when `wait_max` runs out.
    pub async fn wait_for_admission(&self, wait_max: Duration) -> Result<Admission> {
        self.wait_with(wait_max, |_| {}).await
    }

    /// [`WaitingRoom::wait_for_admission`], calling `progress` with every
    /// status seen while waiting (to show the place in line).
    pub async fn wait_with(&self, wait_max: Duration, mut progress: impl FnMut(&QueueStatus)) -> Result<Admission> {
        let started = Instant::now();
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

    /// Holds seats with the admission's access token.
    pub async fn hold(&self, admission: &Admission, request: &HoldRequest) -> Result<Hold> {
        self.client.hold_with_access(&self.event_id, request, &admission.access_token).await
    }
}
