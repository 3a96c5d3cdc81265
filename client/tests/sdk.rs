//! The SDK against a real three-node cluster of `ticketd` processes: every
//! call and its typed errors, a booking retried through a killed leader
//! that books exactly once, and the live seat map resumed across a killed
//! gateway.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use client::{
    BookingOutcome, BookingStatus, Client, ErrorCode, EventQuery, HoldRequest, HoldStatus, NewEvent, NewRow,
    NewSection, NewVenue, RetryPolicy, SeatStatus,
};
use futures::StreamExt;
use support::{now_ms, rfc3339, DAY_MS};

fn venue(name: &str, region: &str, rows: &[(&str, &str, &str, u32)]) -> NewVenue {
    let mut sections: Vec<NewSection> = Vec::new();
    for (section, category, row, seats) in rows {
        let row = NewRow { label: row.to_string(), seats: *seats };
        match sections.iter_mut().find(|s| s.name == *section) {
            Some(s) => s.rows.push(row),
            None => {
                sections.push(NewSection { name: section.to_string(), category: category.to_string(), rows: vec![row] })
            }
        }
    }
    NewVenue {
        name: name.into(),
        city: "Pune".into(),
        region: region.into(),
        sections,
        blocked_seats: vec![],
        accessible_seats: vec![],
    }
}

fn event(venue_id: &str, title: &str, prices: &[(&str, u64)]) -> NewEvent {
    NewEvent {
        venue_id: venue_id.into(),
        title: title.into(),
        kind: "concert".into(),
        starts_at: rfc3339(now_ms() + 30 * DAY_MS),
        genre: "jazz".into(),
        language: "en".into(),
        currency: "INR".into(),
        prices: prices.iter().map(|(c, p)| (c.to_string(), *p)).collect(),
        sale_opens_at: rfc3339(now_ms() - DAY_MS),
        sale_closes_at: None,
        max_seats_per_hold: None,
        hold_ttl_secs: None,
        refund_policy: None,
        waiting_room: None,
    }
}

async fn user(anon: &Client, name: &str, roles: &[&str]) -> Client {
    anon.with_token(anon.dev_token(name, roles).await.expect("dev token"))
}

fn code(e: &client::Error) -> ErrorCode {
    e.code().cloned().unwrap_or_else(|| panic!("not an API error: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_the_sdk_against_a_real_cluster() {
    let c = support::cluster(3);
    let g1 = c.gateway(1);
    c.wait_ready(&g1).await;
    let anon = Client::new(&g1).unwrap();

    // Operations.
    anon.healthz().await.unwrap();
    let ready = anon.readyz().await.unwrap();
    assert!(ready.ready, "{ready:?}");
    assert_eq!(ready.regions.len(), 3);
    assert!(anon.metrics().await.unwrap().contains("http_requests_total"));
    let doc = anon.openapi().await.unwrap();
    assert!(doc["paths"]["/v1/admin/cluster/nodes"]["post"].is_object(), "admin routes are documented");
    let key = anon.public_key().await.unwrap();
    assert_eq!(key.algorithm, "Ed25519");

    let admin = user(&anon, "root", &["admin"]).await;
    let alice = user(&anon, "alice", &[]).await;
    let bob = user(&anon, "bob", &[]).await;
    let scanner = user(&anon, "gate-7", &["scanner"]).await;

    // Unauthenticated and unauthorized calls are typed errors.
    let e = anon.my_holds().await.unwrap_err();
    assert_eq!((code(&e), e.api().unwrap().status), (ErrorCode::Unauthorized, 401));
    assert!(e.api().unwrap().request_id.is_some(), "errors carry the request id");

    // Catalog.
    let hall = venue(
        "Gala Hall",
        "ap-south",
        &[("Floor", "premium", "A", 10), ("Floor", "premium", "B", 10), ("Balcony", "regular", "C", 8)],
    );
    let e = alice.create_venue(&hall).await.unwrap_err();
    assert_eq!((code(&e), e.api().unwrap().status), (ErrorCode::Forbidden, 403));
    let mut empty = hall.clone();
    empty.sections.clear();
    assert_eq!(code(&admin.create_venue(&empty).await.unwrap_err()), ErrorCode::InvalidLayout);
    let mut elsewhere = hall.clone();
    elsewhere.region = "mars-north".into();
    assert_eq!(code(&admin.create_venue(&elsewhere).await.unwrap_err()), ErrorCode::InvalidRegion);
    let venue_id = admin.create_venue(&hall).await.unwrap().venue_id;
    let mut bad = event(&venue_id, "Gala Night", &[("premium", 5000)]);
    assert_eq!(code(&admin.create_event(&bad).await.unwrap_err()), ErrorCode::InvalidEvent, "a category lacks a price");
    bad.prices.insert("regular".into(), 2000);
    let event_id = admin.create_event(&bad).await.unwrap().event_id;

    // Browse: search finds it (typo tolerated) within 2 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page =
            anon.list_events(&EventQuery { q: Some("gala nigth".into()), ..EventQuery::default() }).await.unwrap();
        if page.events.iter().any(|e| e.event_id == event_id) {
            break;
        }
        assert!(Instant::now() < deadline, "search never found the event: {page:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let details = anon.event(&event_id).await.unwrap();
    assert_eq!(details.title, "Gala Night");
    assert_eq!(details.availability["premium"].total, 20);
    assert_eq!(details.availability["regular"].available, 8);
    assert_eq!(code(&anon.event("evt-1-999999").await.unwrap_err()), ErrorCode::EventNotFound);
    let map = anon.seat_map(&event_id).await.unwrap();
    assert_eq!(map.seats.len(), 28);
    assert!(map.seats.iter().all(|s| s.status == SeatStatus::Available));

    // Holds and their errors.
    let hold = alice.hold(&event_id, &HoldRequest::seats(["Floor-A-1", "Floor-A-2"])).await.unwrap();
    assert_eq!(hold.seat_ids, ["Floor-A-1", "Floor-A-2"]);
    assert_eq!(hold.total_price, 10_000);
    // Every write names the log entry it was applied at, refusals the log
    // decided too; reads name none.
    let held_at = alice.last_raft_index().expect("a hold names its log index");
    let e = bob.hold(&event_id, &HoldRequest::seats(["Floor-A-2", "Floor-A-3"])).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::SeatsUnavailable);
    assert!(bob.last_raft_index().expect("a refusal from the log names its index") > held_at);
    alice.my_holds().await.unwrap();
    assert_eq!(alice.last_raft_index(), None, "a read proposes nothing");
    assert_eq!(e.api().unwrap().details["unavailable"], serde_json::json!(["Floor-A-2"]));
    let e = alice.hold(&event_id, &HoldRequest::seats(["Floor-B-1"])).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::HoldLimit);
    assert_eq!(e.api().unwrap().details["hold_id"], hold.hold_id.as_str());
    assert_eq!(
        code(&bob.hold(&event_id, &HoldRequest::seats(["Nowhere-Z-1"])).await.unwrap_err()),
        ErrorCode::InvalidSeats
    );
    assert_eq!(
        code(&bob.hold(&event_id, &HoldRequest::best(11, "premium", false)).await.unwrap_err()),
        ErrorCode::TooManySeats
    );
    assert_eq!(alice.get_hold(&hold.hold_id).await.unwrap().status, HoldStatus::Active);
    assert_eq!(code(&bob.get_hold(&hold.hold_id).await.unwrap_err()), ErrorCode::Forbidden);
    let mine = alice.my_holds().await.unwrap();
    assert_eq!(mine.iter().map(|h| &h.hold_id).collect::<Vec<_>>(), [&hold.hold_id]);
    alice.release_hold(&hold.hold_id).await.unwrap();
    assert_eq!(alice.get_hold(&hold.hold_id).await.unwrap().status, HoldStatus::Released);
    let map = anon.seat_map(&event_id).await.unwrap();
    assert!(map.seats.iter().all(|s| s.status == SeatStatus::Available), "released seats are free at once");

    // Best available, together, then paid.
    let hold = alice.hold(&event_id, &HoldRequest::best(4, "premium", true)).await.unwrap();
    assert_eq!(hold.seat_ids.len(), 4);
    let rows: Vec<&str> = hold.seat_ids.iter().map(|s| s.rsplit_once('-').unwrap().0).collect();
    assert!(rows.windows(2).all(|w| w[0] == w[1]), "together means one row: {:?}", hold.seat_ids);
    let booking = match alice.book(&hold.hold_id, "tok_visa").await.unwrap() {
        BookingOutcome::Confirmed(b) => b,
        other => panic!("{other:?}"),
    };
    assert_eq!(booking.status, BookingStatus::Confirmed);
    assert_eq!(booking.seat_ids, hold.seat_ids);
    assert_eq!(booking.tickets.len(), 4);
    assert_eq!(alice.booking(&booking.booking_id).await.unwrap().booking_id, booking.booking_id);
    assert_eq!(alice.my_bookings().await.unwrap().len(), 1);
    assert_eq!(code(&bob.booking(&booking.booking_id).await.unwrap_err()), ErrorCode::Forbidden);
    assert_eq!(code(&alice.book(&hold.hold_id, "tok_visa").await.unwrap_err()), ErrorCode::HoldConfirmed);

    // Tickets: read, QR, transfer, check-in.
    let ticket = alice.ticket(&booking.tickets[0].ticket_id).await.unwrap();
    assert_eq!((ticket.holder.as_str(), ticket.status.as_str()), ("alice", "valid"));
    assert!(alice.ticket_qr_svg(&ticket.ticket_id).await.unwrap().contains("<svg"));
    let moved = alice.transfer_ticket(&ticket.ticket_id, "bob").await.unwrap();
    assert_eq!(moved.holder, "bob");
    assert!(moved.version > ticket.version);
    assert_eq!(code(&scanner.check_in(&ticket.qr_payload).await.unwrap_err()), ErrorCode::InvalidTicket);
    assert_eq!(code(&alice.ticket(&ticket.ticket_id).await.unwrap_err()), ErrorCode::Forbidden, "only bob reads it");
    let moved = bob.ticket(&ticket.ticket_id).await.unwrap();
    assert_eq!((moved.holder.as_str(), moved.version), ("bob", ticket.version + 1));
    assert_eq!(code(&alice.check_in(&moved.qr_payload).await.unwrap_err()), ErrorCode::Forbidden);
    let done = scanner.check_in(&moved.qr_payload).await.unwrap();
    assert_eq!(done.seat_id, ticket.seat_id);
    let e = scanner.check_in(&moved.qr_payload).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::AlreadyCheckedIn);
    assert!(e.api().unwrap().details["checked_in_at"].is_string());
    assert_eq!(code(&bob.transfer_ticket(&ticket.ticket_id, "carol").await.unwrap_err()), ErrorCode::TicketUsed);

    // Payment outcomes and cancellation.
    let hold = bob.hold(&event_id, &HoldRequest::best(2, "regular", false)).await.unwrap();
    let e = bob.book(&hold.hold_id, "tok_declined").await.unwrap_err();
    assert_eq!((code(&e), e.api().unwrap().status), (ErrorCode::PaymentDeclined, 402));
    assert_eq!(bob.get_hold(&hold.hold_id).await.unwrap().status, HoldStatus::Active, "a declined card keeps the hold");
    let paid = match bob.book(&hold.hold_id, "tok_visa").await.unwrap() {
        BookingOutcome::Confirmed(b) => b,
        other => panic!("{other:?}"),
    };
    let cancelled = bob.cancel_booking(&paid.booking_id).await.unwrap();
    assert_eq!((cancelled.status, cancelled.refund_percent), (BookingStatus::Cancelled, 100));
    assert_eq!(cancelled.refund_amount, paid.total_price);
    assert_eq!(code(&bob.cancel_booking(&paid.booking_id).await.unwrap_err()), ErrorCode::AlreadyCancelled);
    let hold = bob.hold(&event_id, &HoldRequest::seats(["Balcony-C-8"])).await.unwrap();
    let pending = bob.book(&hold.hold_id, "tok_timeout").await.unwrap();
    let BookingOutcome::Pending { booking_id } = pending else { panic!("tok_timeout is pending: {pending:?}") };
    assert_eq!(bob.booking(&booking_id).await.unwrap().status, BookingStatus::Pending);

    // Waitlist: a sold-out event, an entry, leaving it.
    let tiny = admin.create_venue(&venue("Tiny Room", "eu-west", &[("Room", "regular", "A", 2)])).await.unwrap();
    let tiny_event =
        admin.create_event(&event(&tiny.venue_id, "Tiny Gig", &[("regular", 100)])).await.unwrap().event_id;
    let carol = user(&anon, "carol", &[]).await;
    assert_eq!(code(&carol.join_waitlist(&tiny_event, 1, "regular").await.unwrap_err()), ErrorCode::NotSoldOut);
    let taken = alice.hold(&tiny_event, &HoldRequest::best(2, "regular", false)).await.unwrap();
    assert_eq!(
        code(&bob.hold(&tiny_event, &HoldRequest::best(1, "regular", false)).await.unwrap_err()),
        ErrorCode::SoldOut
    );
    let entry = carol.join_waitlist(&tiny_event, 1, "regular").await.unwrap();
    assert_eq!(entry.position, 1);
    carol.leave_waitlist(&entry.waitlist_id).await.unwrap();
    assert_eq!(code(&carol.leave_waitlist(&entry.waitlist_id).await.unwrap_err()), ErrorCode::WaitlistNotFound);
    let entry = carol.join_waitlist(&tiny_event, 1, "regular").await.unwrap();
    assert!(!entry.waitlist_id.is_empty());
    alice.release_hold(&taken.hold_id).await.unwrap();
    let offers = carol.my_holds().await.unwrap();
    assert_eq!(offers.len(), 1, "the freed seat is offered in the same commit: {offers:?}");
    assert_eq!(offers[0].origin.as_deref(), Some("waitlist"));

    // Paging through a filtered list: two events in Pune, one per page.
    let pune = |cursor: Option<String>| EventQuery {
        city: Some("Pune".into()),
        limit: Some(1),
        cursor,
        ..EventQuery::default()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = loop {
        let page = anon.list_events(&pune(None)).await.unwrap();
        if page.next_cursor.is_some() {
            break page;
        }
        assert!(Instant::now() < deadline, "the second Pune event never listed: {page:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first.events.len(), 1);
    let second = anon.list_events(&pune(first.next_cursor.clone())).await.unwrap();
    assert_eq!(second.events.len(), 1);
    assert_eq!(second.next_cursor, None);
    let mut titles = vec![first.events[0].title.clone(), second.events[0].title.clone()];
    titles.sort();
    assert_eq!(titles, ["Gala Night", "Tiny Gig"]);
    let e = anon.list_events(&EventQuery { limit: Some(0), ..EventQuery::default() }).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::InvalidRequest);

    // A caller-chosen idempotency key: a repeat is the first answer, a
    // different request under it is refused.
    let keyed = bob.with_idempotency_key("bob-balcony-1");
    let first = keyed.hold(&tiny_event, &HoldRequest::best(1, "regular", false)).await.unwrap();
    let again = keyed.hold(&tiny_event, &HoldRequest::best(1, "regular", false)).await.unwrap();
    assert_eq!(first, again);
    let e = keyed.hold(&tiny_event, &HoldRequest::best(2, "regular", false)).await.unwrap_err();
    assert_eq!((code(&e), e.api().unwrap().status), (ErrorCode::IdempotencyKeyReused, 422));

    // The cluster as an admin sees it.
    let status = admin.cluster_status().await.unwrap();
    assert_eq!(status.nodes.len(), 3);
    assert!(status.nodes.iter().all(|n| n.reachable));
    assert_eq!(status.groups.len(), 3);
    assert!(status.groups.iter().all(|g| g.leader.is_some() && g.members.len() == 3), "{status:?}");
    assert_eq!(code(&alice.cluster_status().await.unwrap_err()), ErrorCode::Forbidden);
}

/// The leader of the event's group is killed while holds are in flight,
/// and the next leader while their payments are. Attempts time out (the
/// short attempt timeout makes the SDK give up on attempts the gateway is
/// still working on, and some of those commit later) and are retried, each
/// with its call's one idempotency key: every buyer ends up with exactly
/// one hold and one booking. Then a majority is down: readiness says so,
/// reads end as 503, and a hold retried through the 503s lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_retried_through_killed_leaders_book_exactly_once() {
    const BUYERS: usize = 6;
    let mut c = support::cluster(3);
    for id in 1..=3 {
        c.wait_ready(&c.gateway(id)).await;
    }
    let setup = Client::new(c.gateway(1)).unwrap();
    let admin = user(&setup, "root", &["admin"]).await;
    let seats = (2 * BUYERS) as u32;
    let hall = admin.create_venue(&venue("Kill Hall", "us-east", &[("Floor", "premium", "A", seats)])).await.unwrap();
    let event_id =
        admin.create_event(&event(&hall.venue_id, "Kill Night", &[("premium", 1000)])).await.unwrap().event_id;
    let leader_of = |status: &client::ClusterStatus| {
        status.groups.iter().find(|g| g.region == "us-east").unwrap().leader.expect("us-east has a leader")
    };
    let impatient =
        RetryPolicy { retries_max: 200, backoff_ms_initial: 20, backoff_ms_max: 300, attempt_timeout_ms: 150 };
    let mut tokens = Vec::new();
    for i in 0..BUYERS {
        tokens.push(c.token(&c.gateway(1), &format!("buyer-{i}"), &[]).await);
    }

    // The holds go through a gateway that survives: it keeps proposing
    // through the election, longer than the SDK waits for an attempt, so
    // an attempt the SDK gave up on may still commit. Staggered starts put
    // some of them in flight at the kill.
    let first_leader = leader_of(&admin.cluster_status().await.unwrap());
    let via = (1..=3).find(|id| *id != first_leader).unwrap();
    let gateway = Client::builder().endpoint(c.gateway(via)).retry(impatient.clone()).build().unwrap();
    let mut calls = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let (buyer, event_id) = (gateway.with_token(token), event_id.clone());
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3 * i as u64)).await;
            buyer.hold(&event_id, &HoldRequest::best(2, "premium", false)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(8)).await;
    c.node(first_leader).kill();
    let mut holds = Vec::new();
    for call in calls {
        holds.push(call.await.unwrap().expect("every hold goes through after the leader change"));
    }
    c.node(first_leader).start();
    c.wait_ready(&c.gateway(first_leader)).await;

    // The payments, through a gateway that does not lead either; the new
    // leader dies while they are in flight. (One gateway: the sandbox
    // provider lives in one gateway's memory, and another gateway's
    // sandbox would answer a retried charge as pending.)
    let admin2 = admin.with_token(c.token(&c.gateway(via), "root", &["admin"]).await);
    let second_leader = leader_of(&admin2.cluster_status().await.unwrap());
    let via = (1..=3).find(|id| *id != second_leader).unwrap();
    let gateway = Client::builder().endpoint(c.gateway(via)).retry(impatient).build().unwrap();
    let mut calls = Vec::new();
    for (i, (token, hold)) in tokens.iter().zip(&holds).enumerate() {
        let (payer, hold_id) = (gateway.with_token(token), hold.hold_id.clone());
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3 * i as u64)).await;
            payer.book(&hold_id, "tok_visa").await
        }));
    }
    tokio::time::sleep(Duration::from_millis(8)).await;
    c.node(second_leader).kill();
    let mut booked = Vec::new();
    for (call, token) in calls.into_iter().zip(&tokens) {
        let booking_id = match call.await.unwrap().expect("every booking goes through") {
            BookingOutcome::Confirmed(b) => b.booking_id,
            // The charge's answer was lost: reconciliation settles it.
            BookingOutcome::Pending { booking_id } => booking_id,
        };
        let payer = gateway.with_token(token);
        let deadline = Instant::now() + Duration::from_secs(30);
        while payer.booking(&booking_id).await.unwrap().status != BookingStatus::Confirmed {
            assert!(Instant::now() < deadline, "booking {booking_id} never confirmed\n{}", c.logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        booked.push(booking_id);
    }

    // Ground truth through plain HTTP: one booking per buyer, of the seats
    // of their one hold, and nothing else taken.
    let other = c.gateway(via);
    let mut all_seats = Vec::new();
    for ((token, hold), booking_id) in tokens.iter().zip(&holds).zip(&booked) {
        let (s, live) = c.get(&format!("{other}/v1/me/holds"), Some(token)).await;
        assert_eq!(s, 200, "{live}");
        assert_eq!(live["holds"].as_array().unwrap().len(), 0, "the only hold was confirmed: {live}");
        let (s, bookings) = c.get(&format!("{other}/v1/me/bookings"), Some(token)).await;
        assert_eq!(s, 200, "{bookings}");
        let bookings = bookings["bookings"].as_array().unwrap();
        assert_eq!(bookings.len(), 1, "exactly one booking: {bookings:?}");
        assert_eq!(bookings[0]["booking_id"], booking_id.as_str());
        assert_eq!(bookings[0]["status"], "confirmed");
        assert_eq!(bookings[0]["seat_ids"], serde_json::json!(hold.seat_ids));
        all_seats.extend(hold.seat_ids.clone());
    }
    all_seats.sort();
    all_seats.dedup();
    assert_eq!(all_seats.len(), 2 * BUYERS, "no seat in two holds");
    let (_, map) = c.get(&format!("{other}/v1/events/{event_id}/seats"), None).await;
    assert!(map["seats"].as_array().unwrap().iter().all(|s| s["status"] == "booked"), "{map}");

    // With a second node down the groups have no quorum: readiness says so
    // at once (a health check is not retried), and reads are 503 once the
    // retries are used up.
    let admin_via = Client::new(c.gateway(via)).unwrap().with_token(c.token(&c.gateway(via), "root", &["admin"]).await);
    let outage_hall =
        admin_via.create_venue(&venue("Outage Hall", "us-east", &[("Floor", "premium", "A", 4)])).await.unwrap();
    let outage_event = admin_via
        .create_event(&event(&outage_hall.venue_id, "Outage Night", &[("premium", 900)]))
        .await
        .unwrap()
        .event_id;
    let last = (1..=3).find(|id| *id != via && *id != second_leader).unwrap();
    c.node(last).kill();
    let lonely = Client::builder()
        .endpoint(c.gateway(via))
        .retry(RetryPolicy { retries_max: 1, backoff_ms_initial: 10, backoff_ms_max: 10, attempt_timeout_ms: 10_000 })
        .build()
        .unwrap();
    let started = Instant::now();
    let ready = lonely.readyz().await.unwrap();
    assert!(!ready.ready, "{ready:?}");
    assert!(ready.regions.values().any(|r| r == "unavailable"), "{ready:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "readyz took {:?}", started.elapsed());
    let e = lonely.with_token(&tokens[0]).release_hold(&holds[0].hold_id).await.unwrap_err();
    assert_eq!(e.api().map(|a| a.status), Some(503), "{e}");
    assert!(e.api().unwrap().idempotency_key.is_some(), "an unknown outcome names its key");
    let e = lonely.seat_map(&event_id).await.unwrap_err();
    assert_eq!((e.code(), e.api().map(|a| a.status)), (Some(&ErrorCode::Unavailable), Some(503)), "{e}");
    assert!(e.api().unwrap().retry_after_secs.is_some());

    // A hold that meets the outage is retried through the 503s (the
    // gateway answers 503 after its 5 s budget) and lands once when a
    // majority is back.
    let patient = Client::builder()
        .endpoint(c.gateway(via))
        .retry(RetryPolicy {
            retries_max: 100,
            backoff_ms_initial: 100,
            backoff_ms_max: 500,
            attempt_timeout_ms: 10_000,
        })
        .build()
        .unwrap();
    let token = c.token(&c.gateway(via), "late-buyer", &[]).await;
    let late = patient.with_token(&token);
    let started = Instant::now();
    let hold_call = {
        let (late, outage_event) = (late.clone(), outage_event.clone());
        tokio::spawn(async move { late.hold(&outage_event, &HoldRequest::best(2, "premium", false)).await })
    };
    tokio::time::sleep(Duration::from_secs(6)).await;
    c.node(last).start();
    let hold = hold_call.await.unwrap().expect("the hold lands once a majority is back");
    assert!(started.elapsed() > Duration::from_secs(6), "the first attempts met the outage");
    let live = late.my_holds().await.unwrap();
    assert_eq!(live.iter().map(|h| &h.hold_id).collect::<Vec<_>>(), [&hold.hold_id], "exactly one hold");
}

/// The live seat map: every change after a seat map arrives, and when the
/// gateway the stream reads from is killed, the stream resumes on another
/// one from its last event id: the final picture equals the seat map.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seat_stream_delivers_every_change_and_resumes_on_another_gateway() {
    let mut c = support::cluster(3);
    for id in 1..=3 {
        c.wait_ready(&c.gateway(id)).await;
    }
    let setup = Client::new(c.gateway(1)).unwrap();
    let admin = user(&setup, "root", &["admin"]).await;
    let hall = admin.create_venue(&venue("Stream Hall", "ap-south", &[("Floor", "premium", "A", 10)])).await.unwrap();
    let event_id =
        admin.create_event(&event(&hall.venue_id, "Stream Night", &[("premium", 1000)])).await.unwrap().event_id;
    let status = admin.cluster_status().await.unwrap();
    let leader = status.groups.iter().find(|g| g.region == "ap-south").unwrap().leader.unwrap();
    // Read the stream from a gateway that does not lead the event's group,
    // so killing it leaves the group running.
    let reader = (1..=3).find(|id| *id != leader).unwrap();
    let fallback = (1..=3).find(|id| *id != leader && *id != reader).unwrap();
    let watcher = Client::builder()
        .endpoint(c.gateway(reader))
        .endpoint(c.gateway(fallback))
        .retry(RetryPolicy { retries_max: 50, backoff_ms_initial: 50, backoff_ms_max: 500, attempt_timeout_ms: 2_000 })
        .build()
        .unwrap();
    let buyer = Client::new(c.gateway(leader)).unwrap();
    let buyer = user(&buyer, "erin", &[]).await;

    // From scratch: the full map first.
    let mut from_scratch = watcher.seat_stream(&event_id, None);
    let mut seen = BTreeMap::new();
    while seen.len() < 10 {
        let change =
            tokio::time::timeout(Duration::from_secs(10), from_scratch.next()).await.unwrap().unwrap().unwrap();
        seen.insert(change.seat_id, change.status);
    }
    assert!(seen.values().all(|s| *s == SeatStatus::Available));
    assert!(from_scratch.last_event_id().is_some());
    drop(from_scratch);

    // After a seat map: only the changes.
    let map = watcher.seat_map(&event_id).await.unwrap();
    let mut seats: BTreeMap<String, SeatStatus> = map.seats.iter().map(|s| (s.seat_id.clone(), s.status)).collect();
    let mut stream = watcher.seat_stream(&event_id, Some(map.as_of_index));
    let hold = buyer.hold(&event_id, &HoldRequest::seats(["Floor-A-1", "Floor-A-2"])).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let change = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
        assert!(change.index > map.as_of_index, "nothing from before the map: {change:?}");
        got.push((change.seat_id.clone(), change.status));
        seats.insert(change.seat_id, change.status);
    }
    assert_eq!(got, [("Floor-A-1".to_string(), SeatStatus::Held), ("Floor-A-2".to_string(), SeatStatus::Held)]);

    // Kill the gateway the stream reads from; change seats meanwhile.
    c.node(reader).kill();
    buyer.book(&hold.hold_id, "tok_visa").await.unwrap();
    let second = user(&buyer, "frank", &[]).await;
    second.hold(&event_id, &HoldRequest::seats(["Floor-A-5"])).await.unwrap();
    let truth = buyer.seat_map(&event_id).await.unwrap();
    let expected: BTreeMap<String, SeatStatus> = truth.seats.iter().map(|s| (s.seat_id.clone(), s.status)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seats != expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let change = tokio::time::timeout(left, stream.next())
            .await
            .unwrap_or_else(|_| panic!("stream did not catch up: {seats:?} vs {expected:?}"))
            .unwrap()
            .unwrap();
        seats.insert(change.seat_id, change.status);
    }
    assert_eq!(seats["Floor-A-1"], SeatStatus::Booked);
    assert_eq!(seats["Floor-A-5"], SeatStatus::Held);
    assert!(stream.last_event_id().unwrap() >= map.as_of_index);
}

/// A stream of an unknown event ends with the typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_gateways_and_unknown_events_are_typed_errors() {
    // Nothing listens on this port.
    let port = support::free_port();
    let dead = Client::builder()
        .endpoint(format!("http://127.0.0.1:{port}"))
        .retry(RetryPolicy { retries_max: 2, backoff_ms_initial: 10, backoff_ms_max: 20, attempt_timeout_ms: 500 })
        .build()
        .unwrap();
    match dead.event("evt-1-1").await {
        Err(client::Error::Unreachable { attempts, idempotency_key: None, .. }) => assert_eq!(attempts, 3),
        other => panic!("{other:?}"),
    }
    match dead.release_hold("hld-1-1").await {
        Err(client::Error::Unreachable { idempotency_key: Some(key), .. }) => assert_eq!(key.len(), 36, "a UUID"),
        other => panic!("a mutating call names its key: {other:?}"),
    }
    let mut stream = dead.seat_stream("evt-1-1", None);
    assert!(matches!(stream.next().await, Some(Err(client::Error::Unreachable { .. }))));
    assert!(stream.next().await.is_none());
    assert!(matches!(Client::new("not a url"), Err(client::Error::Config(_))));

    let c = support::cluster(1);
    let g1 = c.gateway(1);
    c.wait_ready(&g1).await;
    let anon = Client::new(&g1).unwrap();
    let mut stream = anon.seat_stream("evt-1-424242", None);
    let first = stream.next().await.unwrap().unwrap_err();
    assert_eq!(first.code(), Some(&ErrorCode::EventNotFound));
    assert!(stream.next().await.is_none());
}
