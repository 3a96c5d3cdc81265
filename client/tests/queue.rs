//! The waiting-room helper end to end on real processes: holds on an event
//! whose room is active need admission; the helper joins, waits, and holds
//! with the access token; a token is the user's and the event's alone; a
//! user who joined before the opening (pre-queue) is drawn a place and let
//! in once the sale opens.

mod support;

use std::time::Duration;

use futures::StreamExt;

use client::{
    Client, ErrorCode, HoldRequest, NewEvent, NewRow, NewSection, NewVenue, QueueStatus, WaitingRoomSettings,
};
use support::{now_ms, rfc3339, DAY_MS};

async fn user(anon: &Client, name: &str, roles: &[&str]) -> Client {
    anon.with_token(anon.dev_token(name, roles).await.expect("dev token"))
}

fn queued_event(venue_id: &str, title: &str, sale_opens_at_ms: u64) -> NewEvent {
    NewEvent {
        venue_id: venue_id.into(),
        title: title.into(),
        kind: "concert".into(),
        starts_at: rfc3339(now_ms() + 30 * DAY_MS),
        genre: "pop".into(),
        language: "en".into(),
        currency: "INR".into(),
        prices: [("premium".to_string(), 5000)].into_iter().collect(),
        sale_opens_at: rfc3339(sale_opens_at_ms),
        sale_closes_at: None,
        max_seats_per_hold: None,
        hold_ttl_secs: None,
        refund_policy: None,
        waiting_room: Some(WaitingRoomSettings {
            enabled: true,
            admit_per_minute: Some(6_000),
            active_max: Some(100),
            activate_above_per_sec: None,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_room_helper_joins_waits_and_holds() {
    let c = support::cluster(3);
    let g1 = c.gateway(1);
    c.wait_ready(&g1).await;
    let anon = Client::new(&g1).unwrap();
    let admin = user(&anon, "root", &["admin"]).await;
    let venue = NewVenue {
        name: "Queue Arena".into(),
        city: "Delhi".into(),
        region: "ap-south".into(),
        sections: vec![NewSection {
            name: "Floor".into(),
            category: "premium".into(),
            rows: vec![NewRow { label: "A".into(), seats: 20 }],
        }],
        blocked_seats: vec![],
        accessible_seats: vec![],
    };
    let venue_id = admin.create_venue(&venue).await.unwrap().venue_id;
    let open = admin.create_event(&queued_event(&venue_id, "Queue Live", now_ms() - DAY_MS)).await.unwrap().event_id;

    // Without admission the room refuses holds.
    let alice = user(&anon, "alice", &[]).await;
    let two = HoldRequest::best(2, "premium", true);
    let e = alice.hold(&open, &two).await.unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::QueueRequired), "{e}");
    assert_eq!(e.api().unwrap().status, 403);

    // The one-call helper: refused, joins, waits, holds.
    let hold = alice.hold_through_queue(&open, &two, Duration::from_secs(60)).await.unwrap();
    assert_eq!(hold.seat_ids.len(), 2);

    // Step by step, watching the place in line.
    let bob = user(&anon, "bob", &[]).await;
    let room = bob.waiting_room(&open).await.unwrap();
    assert!(room.ticket().position.is_some(), "the room is open: a place at once");
    assert!(!room.ticket().pre_queue);
    let again = bob.join_queue(&open).await.unwrap();
    assert_eq!(again.position, room.ticket().position, "joining again keeps the place");
    let mut seen = Vec::new();
    let admission = room.wait_with(Duration::from_secs(60), |s| seen.push(s.clone())).await.unwrap();
    assert!(matches!(seen.last(), Some(QueueStatus::Admitted(_))), "{seen:?}");
    let bobs = room.hold(&admission, &HoldRequest::seats(["Floor-A-20"])).await.unwrap();
    assert_eq!(bobs.seat_ids, ["Floor-A-20"]);

    // The status stream: changes until admitted, then it ends.
    let frank = user(&anon, "frank", &[]).await;
    let room = frank.waiting_room(&open).await.unwrap();
    let updates: Vec<_> =
        tokio::time::timeout(Duration::from_secs(60), room.updates().collect::<Vec<_>>()).await.unwrap();
    let last = updates.last().expect("at least one status").as_ref().unwrap();
    let QueueStatus::Admitted(franks) = last else { panic!("{updates:?}") };
    assert!(updates.iter().all(|u| u.is_ok()), "{updates:?}");
    room.hold(franks, &HoldRequest::seats(["Floor-A-18"])).await.unwrap();
    // Polling only gets there too.
    let gina = user(&anon, "gina", &[]).await;
    let room = gina.waiting_room(&open).await.unwrap();
    let mut polled = 0;
    let ginas = room.poll_for_admission(Duration::from_secs(60), |_| polled += 1).await.unwrap();
    assert!(polled >= 1);
    room.hold(&ginas, &HoldRequest::seats(["Floor-A-17"])).await.unwrap();

    // Tokens are the user's and the event's alone.
    let carol = user(&anon, "carol", &[]).await;
    let e =
        carol.hold_with_access(&open, &HoldRequest::seats(["Floor-A-19"]), &admission.access_token).await.unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::QueueRequired), "another user's access token: {e}");
    let e = carol.queue_status(&open, &room.queue_token()).await.unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::InvalidQueueToken), "another user's queue token: {e}");
    let e = carol.queue_status(&open, "forged.token").await.unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::InvalidQueueToken), "{e}");

    // ticketctl: refused without waiting, through the room with it.
    let helen = anon.dev_token("helen", &[]).await.unwrap();
    let ctl = |extra: &[&str]| {
        let mut args =
            vec!["--url", g1.as_str(), "--token", helen.as_str(), "--json", "bookings", "hold", open.as_str()];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_ticketctl"))
            .args(&args)
            .env("HOME", "/nonexistent")
            .output()
            .unwrap()
    };
    let out = ctl(&["--seats", "Floor-A-16"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "queue_required");
    let out = ctl(&["--seats", "Floor-A-16", "--queue-wait-secs", "60"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seat_ids"], serde_json::json!(["Floor-A-16"]));

    // The pre-queue: joined before the sale opens, drawn a place at the
    // opening, then let in.
    let opens_ms = now_ms() + 4_000;
    let soon = admin.create_event(&queued_event(&venue_id, "Queue Soon", opens_ms)).await.unwrap().event_id;
    let dana = user(&anon, "dana", &[]).await;
    let early = dana.waiting_room(&soon).await.unwrap();
    assert!(early.ticket().pre_queue, "{:?}", early.ticket());
    assert_eq!(early.ticket().position, None);
    match early.status().await.unwrap() {
        QueueStatus::Waiting { pre_queue: true, position: None, .. } => {}
        other => panic!("before the opening: {other:?}"),
    }
    let admission = early.wait_for_admission(Duration::from_secs(60)).await.unwrap();
    assert!(now_ms() + 1_000 >= opens_ms, "admitted only once the sale opened");
    assert_ne!(early.queue_token(), early.ticket().queue_token, "the drawn place came with a new queue token");
    let held = early.hold(&admission, &HoldRequest::best(1, "premium", false)).await.unwrap();
    assert_eq!(held.seat_ids.len(), 1);
}
