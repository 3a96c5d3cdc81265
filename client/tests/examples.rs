//! The examples run against a real cluster: `book_best_four` books four
//! seats side by side, and `watch_seat_map` prints the map and then the
//! changes as they commit.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use client::{Client, HoldRequest, NewEvent, NewRow, NewSection, NewVenue};
use support::{now_ms, rfc3339, DAY_MS};

/// `target/<profile>/examples/<name>`; `cargo test` builds the examples.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples").join(name);
    assert!(bin.exists(), "{} is missing: build it with `cargo build --release -p client --examples`", bin.display());
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_book_and_watch() {
    let c = support::cluster(1);
    let g1 = c.gateway(1);
    c.wait_ready(&g1).await;
    let anon = Client::new(&g1).unwrap();
    let admin = anon.with_token(anon.dev_token("root", &["admin"]).await.unwrap());
    let venue = NewVenue {
        name: "Example Hall".into(),
        city: "Goa".into(),
        region: "eu-west".into(),
        sections: vec![NewSection {
            name: "Floor".into(),
            category: "premium".into(),
            rows: vec![NewRow { label: "A".into(), seats: 6 }, NewRow { label: "B".into(), seats: 6 }],
        }],
        blocked_seats: vec![],
        accessible_seats: vec![],
    };
    let venue_id = admin.create_venue(&venue).await.unwrap().venue_id;
    let event = NewEvent {
        venue_id,
        title: "Example Night".into(),
        kind: "concert".into(),
        starts_at: rfc3339(now_ms() + 30 * DAY_MS),
        genre: "folk".into(),
        language: "en".into(),
        currency: "INR".into(),
        prices: [("premium".to_string(), 700)].into_iter().collect(),
        sale_opens_at: rfc3339(now_ms() - DAY_MS),
        sale_closes_at: None,
        max_seats_per_hold: None,
        hold_ttl_secs: None,
        refund_policy: None,
        waiting_room: None,
    };
    let event_id = admin.create_event(&event).await.unwrap().event_id;

    // The watcher starts first and sees the booking happen.
    let mut watcher = Command::new(example("watch_seat_map"))
        .arg(&event_id)
        .env("TICKETING_URL", &g1)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(20)).expect("the watcher prints the map");
    assert!(first.contains("12 seats, 12 available"), "{first}");

    let out = Command::new(example("book_best_four"))
        .args([&event_id, "premium"])
        .env("TICKETING_URL", &g1)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("booked bkg-") && text.contains("(4 tickets)"), "{text}");

    // Four seats go held, then booked.
    let mut booked = 0;
    while booked < 4 {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("the watcher prints the changes");
        if line.trim_end().ends_with("booked") {
            booked += 1;
        }
    }
    // Another change still arrives live.
    let user = anon.with_token(anon.dev_token("late", &[]).await.unwrap());
    let hold = user.hold(&event_id, &HoldRequest::best(1, "premium", false)).await.unwrap();
    let line = lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(line.contains(&hold.seat_ids[0]) && line.trim_end().ends_with("held"), "{line}");
    watcher.kill().unwrap();
    watcher.wait().unwrap();
}
