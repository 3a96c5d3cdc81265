//! Books the best 4 seats side by side in a category, through the waiting
//! room if the event has one active.
//!
//! ```sh
//! cargo run --release -p client --example book_best_four -- evt-1-5 premium
//! ```
//!
//! Against `ticketd dev` (dev mode: the example fetches its own user
//! token). Set `TICKETING_URL` for another gateway.

use std::time::Duration;

use client::{BookingOutcome, Client, ErrorCode, HoldRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let event = args.next().unwrap_or_else(|| "evt-1-5".into());
    let category = args.next().unwrap_or_else(|| "premium".into());
    let url = std::env::var("TICKETING_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());

    let anonymous = Client::new(url)?;
    let user = anonymous.with_token(anonymous.dev_token("example-buyer", &[]).await?);

    let request = HoldRequest::best(4, category, true);
    let hold = match user.hold_through_queue(&event, &request, Duration::from_secs(600)).await {
        Ok(hold) => hold,
        Err(e) if e.code() == Some(&ErrorCode::SoldOut) || e.code() == Some(&ErrorCode::NotTogether) => {
            println!("no 4 seats together left: {e}");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    println!("held {:?} until {} for {} {}", hold.seat_ids, hold.expires_at, hold.total_price, hold.currency);

    match user.book(&hold.hold_id, "tok_visa").await? {
        BookingOutcome::Confirmed(booking) => {
            println!("booked {} ({} tickets)", booking.booking_id, booking.tickets.len());
            for t in &booking.tickets {
                println!("  {}  {}", t.seat_id, t.ticket_id);
            }
        }
        BookingOutcome::Pending { booking_id } => {
            println!("payment outcome pending; poll booking {booking_id}");
        }
    }
    Ok(())
}
