//! A three-node cluster of real `ticketd` processes started from config
//! files: serves holds and confirmations, survives kill -9 of a group's
//! leader, and the killed node catches up when it comes back.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{call, cluster};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Creates a small venue and an on-sale event in ap-south; returns the event id.
async fn small_event(c: &support::Cluster, base: &str, admin: &str) -> String {
    let venue = json!({"name": "Test Hall", "city": "Pune", "region": "ap-south",
        "sections": [{"name": "Floor", "category": "regular", "rows": [{"label": "A", "seats": 10}, {"label": "B", "seats": 10}]}]});
    let (s, v) =
        call(&c.client, Method::POST, &format!("{base}/v1/admin/venues"), Some(admin), Some(venue), None).await;
    assert_eq!(s, 201, "{v}");
    let event = json!({"venue_id": v["venue_id"], "title": "Test Night", "kind": "concert",
        "starts_at": rfc3339(now_ms() + 30 * DAY_MS), "genre": "rock", "language": "en", "currency": "INR",
        "prices": {"regular": 1000}, "sale_opens_at": rfc3339(now_ms() - DAY_MS)});
    let (s, e) =
        call(&c.client, Method::POST, &format!("{base}/v1/admin/events"), Some(admin), Some(event), None).await;
    assert_eq!(s, 201, "{e}");
    e["event_id"].as_str().unwrap().to_string()
}

async fn hold_and_book(c: &support::Cluster, base: &str, token: &str, event: &str, seats: &[&str]) -> Value {
    let (s, hold) = call(
        &c.client,
        Method::POST,
        &format!("{base}/v1/events/{event}/holds"),
        Some(token),
        Some(json!({"seat_ids": seats})),
        None,
    )
    .await;
    assert_eq!(s, 201, "{hold}");
    let (s, booking) = call(
        &c.client,
        Method::POST,
        &format!("{base}/v1/bookings"),
        Some(token),
        Some(json!({"hold_id": hold["hold_id"], "payment": {"token": "tok_visa"}})),
        Some(&format!("book-{}", seats[0])),
    )
    .await;
    assert_eq!(s, 201, "{booking}");
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["tickets"].as_array().unwrap().len(), seats.len());
    booking
}

async fn applied(c: &support::Cluster, base: &str, admin: &str, node: u64, group: u64) -> Option<u64> {
    let (s, v) = call(&c.client, Method::GET, &format!("{base}/v1/admin/cluster"), Some(admin), None, None).await;
    assert_eq!(s, 200, "{v}");
    let node = v["nodes"].as_array()?.iter().find(|n| n["node_id"] == node)?;
    node["groups"].as_array()?.iter().find(|g| g["group_id"] == group)?["applied_index"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_books_through_a_leader_kill_and_the_node_catches_up() {
    let mut c = cluster(3, false);
    let g1 = c.gateway(1);
    let g2 = c.gateway(2);
    c.wait_ready(&g1, Duration::from_secs(60)).await;
    c.wait_ready(&g2, Duration::from_secs(60)).await;
    let admin = c.token(&g1, "root", &["admin"]).await;
    let alice = c.token(&g1, "alice", &[]).await;
    let event = small_event(&c, &g1, &admin).await;
    let first = hold_and_book(&c, &g1, &alice, &event, &["Floor-A-1", "Floor-A-2"]).await;

    // Node 1 leads ap-south (leaders are spread in id order). Kill it hard.
    c.nodes[0].kill();
    let second = hold_and_book(&c, &g2, &alice, &event, &["Floor-A-3"]).await;
    let (s, b) = call(
        &c.client,
        Method::GET,
        &format!("{g2}/v1/bookings/{}", first["booking_id"].as_str().unwrap()),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "confirmed", "the booking acknowledged before the kill survives");
    let (s, map) = call(&c.client, Method::GET, &format!("{g2}/v1/events/{event}/seats"), None, None, None).await;
    assert_eq!(s, 200);
    let booked: Vec<&str> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "booked")
        .map(|s| s["seat_id"].as_str().unwrap())
        .collect();
    assert_eq!(booked, ["Floor-A-1", "Floor-A-2", "Floor-A-3"]);

    // Back up: it catches up with the group.
    c.nodes[0].start();
    let target = applied(&c, &g2, &admin, 2, 1).await.expect("node 2 reports group 1");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if applied(&c, &g2, &admin, 1, 1).await.is_some_and(|a| a >= target) {
            break;
        }
        assert!(Instant::now() < deadline, "node 1 did not catch up\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.wait_ready(&g1, Duration::from_secs(60)).await;
    let (s, b) = call(
        &c.client,
        Method::GET,
        &format!("{g1}/v1/bookings/{}", second["booking_id"].as_str().unwrap()),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "confirmed");
    for node in &mut c.nodes {
        assert!(node.stop(), "node {} did not shut down cleanly on SIGTERM\n", node.id);
    }
}

fn run_with(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ticketd"));
    cmd.args(["run", "--config"]).arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

const GOOD: &str = r#"
[node]
id = 1
data_dir = "/tmp/never-used"
[cluster]
secret = "0123456789abcdef-secret"
peers = { 1 = "127.0.0.1:1" }
regions = { ap-south = 1 }
[gateway]
http_listen = "127.0.0.1:1"
jwt_secret = "0123456789abcdef0123456789abcdef"
ticket_key_seed = "0000000000000000000000000000000000000000000000000000000000000001"
"#;

#[test]
fn a_bad_config_stops_start_up_naming_the_key() {
    let (code, err) =
        run_with(&GOOD.replace("jwt_secret = \"0123456789abcdef0123456789abcdef\"", "jwt_secret = \"x\""), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("gateway.jwt_secret"), "{err}");
    let (code, err) = run_with(&GOOD.replace("regions = { ap-south = 1 }", ""), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("regions"), "{err}");
    let (code, err) = run_with(GOOD, &[("TICKETD_NODE__ID", "0")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("node.id"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["run", "--config", "/nonexistent/ticketd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ticketd.toml"));
}

/// Cluster operations over the network, as `ticketctl` will use them: a new
/// node joins a group (learner, catch-up, promotion), a node is removed,
/// leadership moves, a region group is added at run time and survives a
/// restart, and a data directory never serves under another node id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_operations_over_the_network() {
    use raft::{ClusterClient, Consistency, Query};
    let mut c = cluster(3, false);
    let g1 = c.gateway(1);
    c.wait_ready(&g1, Duration::from_secs(60)).await;
    let admin = c.token(&g1, "root", &["admin"]).await;
    let alice = c.token(&g1, "alice", &[]).await;
    let event = small_event(&c, &g1, &admin).await;
    hold_and_book(&c, &g1, &alice, &event, &["Floor-B-1"]).await;

    c.add_storage_node(4);
    let addr4 = c.grpc(4);
    let ops = ClusterClient::new(
        (1..=3).map(|i| c.grpc(i)).collect(),
        support::SECRET,
        Duration::from_secs(5),
        Duration::from_secs(30),
    );
    // Join: learner first (returns once caught up), then a voter.
    ops.add_learner(1, 4, &addr4).await.expect("add learner");
    ops.change_voters(1, &[1, 2, 3, 4]).await.expect("promote");
    let leader_view = ops.node_status(&c.grpc(1)).await.unwrap();
    let g = leader_view.groups.iter().find(|g| g.group == 1).unwrap();
    assert_eq!(g.voters, vec![1, 2, 3, 4]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Node 4 may still be starting (the learner's catch-up is driven by
        // the leader, which retries), and its status may briefly not list
        // the group yet.
        if let Ok(s4) = ops.node_status(&addr4).await {
            if s4.groups.iter().find(|g| g.group == 1).is_some_and(|mine| mine.applied_index >= g.commit_index) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "node 4 did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Remove node 3 and move the leadership to node 4.
    ops.change_voters(1, &[1, 2, 4]).await.expect("remove node 3");
    ops.transfer_leader(1, 4).await.expect("transfer");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s4 = ops.node_status(&addr4).await.unwrap();
        let mine = s4.groups.iter().find(|g| g.group == 1).unwrap();
        if mine.leader == Some(4) {
            assert_eq!(mine.voters, vec![1, 2, 4]);
            break;
        }
        assert!(Instant::now() < deadline, "node 4 did not take over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The gateway keeps booking through the new leader.
    hold_and_book(&c, &g1, &alice, &event, &["Floor-B-2"]).await;

    // A region group added at run time, on nodes 1, 2 and 4.
    for addr in [c.grpc(1), c.grpc(2), addr4.clone()] {
        ops.open_group(&addr, 9).await.expect("open group 9");
    }
    let members = [(1, c.grpc(1)), (2, c.grpc(2)), (4, addr4.clone())].into_iter().collect();
    ops.initialize(&c.grpc(1), 9, &members).await.expect("initialize group 9");
    let venue = statemachine::VenueSpec {
        name: "Runtime Hall".into(),
        city: "Lima".into(),
        region: "sa-west".into(),
        sections: vec![statemachine::SectionSpec {
            name: "Floor".into(),
            category: "regular".into(),
            rows: vec![statemachine::RowSpec { label: "A".into(), seats: 4 }],
        }],
        blocked_seats: vec![],
        accessible_seats: vec![],
    };
    let cmd = statemachine::Command::new("root", "v1", statemachine::Op::CreateVenue(venue));
    let (applied, index) = ops.propose(9, &cmd).await.expect("propose to the new group");
    assert!(applied.result.is_ok(), "{applied:?}");
    // Node 4 restarts and reopens the group from its storage.
    c.nodes[3].kill();
    c.nodes[3].start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s4) = ops.node_status(&addr4).await {
            if s4.groups.iter().any(|g| g.group == 9 && g.applied_index >= raft::log_index_of(index)) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "group 9 not back on node 4\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let read = ops.read(9, &Query::Fingerprint, Consistency::Linearizable).await.unwrap();
    assert!(read.applied_index >= index);

    // Node 4's data never serves as another node.
    c.nodes[3].kill();
    let text = std::fs::read_to_string(&c.nodes[3].config)
        .unwrap()
        .replace("id = 4\n", "id = 5\n")
        .replace("4 = \"", "5 = \"");
    let other = c.dir.path().join("node5.toml");
    std::fs::write(&other, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["run", "--config"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to node 4"), "{err}");
}

/// A group without a quorum answers 503 with Retry-After, and serves again
/// once a majority is back; nothing acknowledged before is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_is_503_with_retry_after_until_a_majority_returns() {
    let mut c = cluster(3, false);
    let g1 = c.gateway(1);
    c.wait_ready(&g1, Duration::from_secs(60)).await;
    let admin = c.token(&g1, "root", &["admin"]).await;
    let alice = c.token(&g1, "alice", &[]).await;
    let event = small_event(&c, &g1, &admin).await;
    let booked = hold_and_book(&c, &g1, &alice, &event, &["Floor-A-1"]).await;
    c.nodes[1].kill();
    c.nodes[2].kill();
    let r = c
        .client
        .post(format!("{g1}/v1/events/{event}/holds"))
        .bearer_auth(&alice)
        .json(&json!({"seat_ids": ["Floor-A-2"]}))
        .header("Idempotency-Key", "during-outage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    let ready = c.client.get(format!("{g1}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    c.nodes[1].start();
    c.wait_ready(&g1, Duration::from_secs(60)).await;
    // The retry with the same key is applied once, whether or not the first
    // attempt reached the log.
    let retry = |key: &'static str| {
        let (c, g1, alice, event) = (&c, &g1, &alice, &event);
        async move {
            call(
                &c.client,
                Method::POST,
                &format!("{g1}/v1/events/{event}/holds"),
                Some(alice),
                Some(json!({"seat_ids": ["Floor-A-2"]})),
                Some(key),
            )
            .await
        }
    };
    let (s1, h1) = retry("during-outage").await;
    let (s2, h2) = retry("during-outage").await;
    assert_eq!((s1, s2), (201, 201), "{h1} {h2}");
    assert_eq!(h1, h2);
    let (s, b) = call(
        &c.client,
        Method::GET,
        &format!("{g1}/v1/bookings/{}", booked["booking_id"].as_str().unwrap()),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("confirmed")));
}
