//! The admin cluster routes on real processes: a node joins every region
//! group over HTTP (learner, catch-up, voter), takes a group's leadership,
//! replicas snapshot on demand, and the node is removed again; the gateway
//! keeps booking throughout, and bad requests change nothing. An address
//! that cannot prove it is a node of the cluster is refused without being
//! sent the secret, and a node that is only a learner is removed too.

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

fn group<'a>(answer: &'a Value, region: &str) -> &'a Value {
    answer["groups"].as_array().unwrap().iter().find(|g| g["region"] == region).unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_operations_over_http() {
    let mut c = cluster(3, false);
    let g1 = c.gateway(1);
    c.wait_ready(&g1, Duration::from_secs(60)).await;
    let admin = c.token(&g1, "root", &["admin"]).await;
    let alice = c.token(&g1, "alice", &[]).await;
    let client = c.client.clone();
    let url = |path: &str| format!("{g1}{path}");
    let admin_call = |method: Method, path: &str, body: Option<Value>| {
        let (client, url, admin) = (client.clone(), url(path), admin.clone());
        async move { call(&client, method, &url, Some(&admin), body, None).await }
    };

    // Only admins, and only well-formed requests.
    let body = json!({"node_id": 4, "addr": "127.0.0.1:1"});
    let (s, v) = call(&client, Method::POST, &url("/v1/admin/cluster/nodes"), Some(&alice), Some(body), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")), "{v}");
    let (s, v) =
        admin_call(Method::POST, "/v1/admin/cluster/nodes", Some(json!({"node_id": 4, "addr": "nowhere"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{v}");
    let (s, v) = admin_call(Method::POST, "/v1/admin/cluster/groups/mars/transfer", Some(json!({"to": 1}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_region")), "{v}");
    let (s, v) = admin_call(Method::POST, "/v1/admin/cluster/groups/ap-south/transfer", Some(json!({"to": 9}))).await;
    assert_eq!(s, 400, "node 9 is no voter: {v}");
    let (s, v) = admin_call(Method::DELETE, "/v1/admin/cluster/nodes/x", None).await;
    assert_eq!(s, 400, "{v}");

    // A venue and event to book through all of it.
    let venue = json!({"name": "Ops Hall", "city": "Pune", "region": "ap-south",
        "sections": [{"name": "Floor", "category": "regular", "rows": [{"label": "A", "seats": 10}]}]});
    let (s, v) = admin_call(Method::POST, "/v1/admin/venues", Some(venue)).await;
    assert_eq!(s, 201, "{v}");
    let event = json!({"venue_id": v["venue_id"], "title": "Ops Night", "kind": "concert",
        "starts_at": rfc3339(now_ms() + 30 * DAY_MS), "genre": "rock", "language": "en", "currency": "INR",
        "prices": {"regular": 1000}, "sale_opens_at": rfc3339(now_ms() - DAY_MS)});
    let (s, e) = admin_call(Method::POST, "/v1/admin/events", Some(event)).await;
    assert_eq!(s, 201, "{e}");
    let event = e["event_id"].as_str().unwrap().to_string();
    let hold = |seat: &'static str| {
        let (client, g1, alice, event) = (client.clone(), g1.clone(), alice.clone(), event.clone());
        async move {
            let url = format!("{g1}/v1/events/{event}/holds");
            let (s, h) = call(&client, Method::POST, &url, Some(&alice), Some(json!({"seat_ids": [seat]})), None).await;
            assert_eq!(s, 201, "{h}");
            let url = format!("{g1}/v1/holds/{}", h["hold_id"].as_str().unwrap());
            let (s, _) = call(&client, Method::DELETE, &url, Some(&alice), None, None).await;
            assert_eq!(s, 204);
        }
    };
    hold("Floor-A-1").await;

    // Node 4 joins every region group.
    c.add_storage_node(4);
    let addr4 = c.grpc(4);
    let (s, v) = admin_call(Method::POST, "/v1/admin/cluster/nodes", Some(json!({"node_id": 4, "addr": addr4}))).await;
    assert_eq!(s, 200, "{v}\n{}", c.logs());
    for region in ["ap-south", "eu-west", "us-east"] {
        assert_eq!(ids(&group(&v, region)["members"]), [1, 2, 3, 4], "{region}: {v}");
    }
    // Repeating it changes nothing.
    let (s, again) =
        admin_call(Method::POST, "/v1/admin/cluster/nodes", Some(json!({"node_id": 4, "addr": addr4}))).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(ids(&group(&again, "ap-south")["members"]), [1, 2, 3, 4]);
    hold("Floor-A-2").await;

    // Node 4 takes over ap-south.
    let (s, v) = admin_call(Method::POST, "/v1/admin/cluster/groups/ap-south/transfer", Some(json!({"to": 4}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(group(&v, "ap-south")["leader"], 4);
    let (s, status) = admin_call(Method::GET, "/v1/admin/cluster", None).await;
    assert_eq!(s, 200);
    assert_eq!(group(&status, "ap-south")["leader"], 4, "{status}");
    hold("Floor-A-3").await;

    // Snapshots on demand: one node's replica, then every member's.
    let (s, v) =
        admin_call(Method::POST, "/v1/admin/cluster/groups/eu-west/snapshot", Some(json!({"node_id": 2}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(&group(&v, "eu-west")["snapshotted"]), [2]);
    let (s, v) = admin_call(Method::POST, "/v1/admin/cluster/groups/ap-south/snapshot", Some(json!({}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(&group(&v, "ap-south")["snapshotted"]), [1, 2, 3, 4]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, status) = admin_call(Method::GET, "/v1/admin/cluster", None).await;
        if group(&status, "ap-south")["snapshot_index"].as_u64().is_some_and(|i| i > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no snapshot reported: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Node 4 leaves every group, leadership included.
    let (s, v) = admin_call(Method::DELETE, "/v1/admin/cluster/nodes/4", None).await;
    assert_eq!(s, 200, "{v}");
    for region in ["ap-south", "eu-west", "us-east"] {
        assert_eq!(ids(&group(&v, region)["members"]), [1, 2, 3], "{region}: {v}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, status) = admin_call(Method::GET, "/v1/admin/cluster", None).await;
        let leader = group(&status, "ap-south")["leader"].as_u64();
        if leader.is_some_and(|l| l != 4) {
            break;
        }
        assert!(Instant::now() < deadline, "ap-south has no new leader: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hold("Floor-A-4").await;
    let (s, v) = admin_call(Method::DELETE, "/v1/admin/cluster/nodes/4", None).await;
    assert_eq!(s, 200, "removing a non-member changes nothing: {v}");
    for region in ["ap-south", "eu-west", "us-east"] {
        assert_eq!(ids(&group(&v, region)["retired"]), [4], "{region}: {v}");
    }

    // Its id is retired: it never joins again, the replacement takes a new one.
    let (s, v) = admin_call(Method::POST, "/v1/admin/cluster/nodes", Some(json!({"node_id": 4, "addr": addr4}))).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "cluster_refused", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("never rejoins"), "{v}");
    let (_, status) = admin_call(Method::GET, "/v1/admin/cluster", None).await;
    assert_eq!(ids(&group(&status, "ap-south")["members"]), [1, 2, 3], "the refused add changed the group: {status}");
    assert_eq!(ids(&group(&status, "ap-south")["retired"]), [4], "{status}");
    hold("Floor-A-5").await;
}

/// Every request a listener on loopback got: its path and its headers.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A listener that speaks HTTP/2 (what a leader dials for a peer), records
/// every request, and answers each as a gRPC server that knows no such
/// method. It stands for an address an admin names that is no node of the
/// cluster.
async fn recording_listener() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Seen = Default::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        record.lock().unwrap().push((request.uri().path().to_string(), headers));
        async {
            axum::response::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "12")
                .body(axum::body::Body::empty())
                .unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_node_needs_proof_and_remove_node_drops_learners() {
    let mut c = cluster(3, false);
    let g1 = c.gateway(1);
    c.wait_ready(&g1, Duration::from_secs(60)).await;
    let admin = c.token(&g1, "root", &["admin"]).await;
    let client = c.client.clone();
    let admin_call = |method: Method, path: &str, body: Option<Value>| {
        let (client, url, admin) = (client.clone(), format!("{g1}{path}"), admin.clone());
        async move { call(&client, method, &url, Some(&admin), body, None).await }
    };
    let regions = ["ap-south", "eu-west", "us-east"];

    // An address that is no node of the cluster: refused with a clear
    // answer, it never sees the secret, and no group changes.
    let (fake, seen) = recording_listener().await;
    let (s, v) = admin_call(Method::POST, "/v1/admin/cluster/nodes", Some(json!({"node_id": 9, "addr": fake}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("cluster_refused")), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(&fake) && message.contains("did not prove"), "{v}");
    // Give a leader that did add it the time to dial it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = seen.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the leader never asked the address for a proof");
    for (path, headers) in &requests {
        assert!(path.ends_with("/Prove"), "the leader called {path} on an unproven address");
        for (name, value) in headers {
            assert!(!value.contains(support::SECRET), "the secret went to the address in {name} of {path}");
        }
    }
    let (_, status) = admin_call(Method::GET, "/v1/admin/cluster", None).await;
    for region in regions {
        let g = group(&status, region);
        assert_eq!(ids(&g["members"]), [1, 2, 3], "{region}: {status}");
        assert_eq!((ids(&g["learners"]), ids(&g["retired"])), (vec![], vec![]), "{region}: {status}");
    }

    // A genuine node that is only a learner of every group (added through
    // the Shard service, never promoted) is removed from all of them.
    c.add_storage_node(4);
    let addr4 = c.grpc(4);
    let ops = raft::ClusterClient::new(
        (1..=3).map(|n| c.grpc(n)).collect(),
        support::SECRET,
        Duration::from_secs(2),
        Duration::from_secs(20),
    );
    for region in regions {
        let id = group(&status, region)["group_id"].as_u64().unwrap();
        ops.add_learner(id, 4, &addr4).await.unwrap_or_else(|e| panic!("{region}: {e}\n{}", c.logs()));
    }
    let (_, status) = admin_call(Method::GET, "/v1/admin/cluster", None).await;
    for region in regions {
        assert_eq!(ids(&group(&status, region)["learners"]), [4], "{region}: {status}");
    }
    let (s, v) = admin_call(Method::DELETE, "/v1/admin/cluster/nodes/4", None).await;
    assert_eq!(s, 200, "{v}");
    let (_, status) = admin_call(Method::GET, "/v1/admin/cluster", None).await;
    for region in regions {
        let g = group(&status, region);
        assert_eq!((ids(&g["members"]), ids(&g["learners"])), (vec![1, 2, 3], vec![]), "{region}: {status}");
        assert_eq!(ids(&g["retired"]), [4], "{region}: {status}");
    }
}
