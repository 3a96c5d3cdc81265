//! `/openapi.json` is generated from the handlers; `node/openapi.json` is
//! the committed copy. This test fails when the two drift; regenerate with
//! `UPDATE_OPENAPI=1 cargo test --release -p node --test openapi`.

use serde_json::Value;

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = node::gateway::openapi_pretty();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&path).expect("node/openapi.json is committed");
    assert_eq!(
        committed.trim_end(),
        generated.trim_end(),
        "node/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test --release -p node --test openapi"
    );
    // Every route of the contract is documented.
    let doc: Value = serde_json::from_str(&generated).unwrap();
    for (path, method) in [
        ("/v1/dev/token", "post"),
        ("/v1/admin/venues", "post"),
        ("/v1/admin/events", "post"),
        ("/v1/admin/cluster", "get"),
        ("/v1/admin/cluster/nodes", "post"),
        ("/v1/admin/cluster/nodes/{node_id}", "delete"),
        ("/v1/admin/cluster/groups/{region}/transfer", "post"),
        ("/v1/admin/cluster/groups/{region}/snapshot", "post"),
        ("/v1/events", "get"),
        ("/v1/events/{event_id}", "get"),
        ("/v1/events/{event_id}/seats", "get"),
        ("/v1/events/{event_id}/seats/stream", "get"),
        ("/v1/events/{event_id}/holds", "post"),
        ("/v1/me/holds", "get"),
        ("/v1/holds/{hold_id}", "get"),
        ("/v1/holds/{hold_id}", "delete"),
        ("/v1/bookings", "post"),
        ("/v1/bookings/{booking_id}", "get"),
        ("/v1/me/bookings", "get"),
        ("/v1/bookings/{booking_id}/cancel", "post"),
        ("/v1/tickets/{ticket_id}", "get"),
        ("/v1/tickets/{ticket_id}/qr.svg", "get"),
        ("/v1/tickets/{ticket_id}/transfer", "post"),
        ("/v1/tickets/public-key", "get"),
        ("/v1/checkin", "post"),
        ("/v1/events/{event_id}/waitlist", "post"),
        ("/v1/events/{event_id}/queue", "post"),
        ("/v1/events/{event_id}/queue/status", "get"),
        ("/v1/payments/webhook", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
    }
    let create_booking = &doc["paths"]["/v1/bookings"]["post"]["responses"];
    for status in ["201", "202", "402", "409", "410"] {
        assert!(create_booking[status].is_object(), "POST /v1/bookings lacks {status}");
    }
}
