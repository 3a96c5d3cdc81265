//! Prints an event's seat map, then every change to it as it commits.
//!
//! ```sh
//! cargo run --release -p client --example watch_seat_map -- evt-1-5
//! ```
//!
//! The stream resumes by itself after a dropped connection; the map's
//! `as_of_index` makes it continue right after the map, without a gap.

use std::collections::BTreeMap;

use client::{Client, SeatStatus};
use futures::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let event = std::env::args().nth(1).unwrap_or_else(|| "evt-1-5".into());
    let url = std::env::var("TICKETING_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let client = Client::new(url)?;

    let map = client.seat_map(&event).await?;
    let mut seats: BTreeMap<String, SeatStatus> = map.seats.iter().map(|s| (s.seat_id.clone(), s.status)).collect();
    let available = seats.values().filter(|s| **s == SeatStatus::Available).count();
    println!("{event}: {} seats, {available} available, as of log index {}", seats.len(), map.as_of_index);

    let mut changes = client.seat_stream(&event, Some(map.as_of_index));
    while let Some(change) = changes.next().await {
        let change = change?;
        // Applying a change twice is harmless: the stream may repeat, never skip.
        if seats.insert(change.seat_id.clone(), change.status) != Some(change.status) {
            println!("{:>8}  {:<14} {}", change.index, change.seat_id, change.status.as_str());
        }
    }
    Ok(())
}
