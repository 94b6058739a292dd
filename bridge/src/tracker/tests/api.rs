//! `GET /api/v1/tracker`, `GET /api/v1/tracker/{info_hash}`, and the HTTP
//! side of `/announce`.

use super::*;

#[tokio::test]
async fn the_api_lists_swarms_and_their_peers() {
    let h = start(TrackerConfig::default()).await;
    let ih = id(SWARM);
    let mut a = Peer::connect(&h, 1).await;
    a.join(ih).await;
    let mut b = Peer::connect(&h, 2).await;
    let mut seeder = AnnounceRequest::new(ih, b.peer_id, Some(AnnounceEvent::Started));
    seeder.left = Some(0);
    b.send(seeder).await;
    b.recv_reply().await;
    let daemon_id = id("-SS0001-daemonseeder");
    let local = h.tracker.connect_local().unwrap();
    local.send(AnnounceRequest::new(
        ih,
        daemon_id,
        Some(AnnounceEvent::Started),
    ));
    let binary = Id20([0xff; 20]);
    a.join(binary).await;

    let (status, body) = http_get(&h, "/api/v1/tracker").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["sockets"].as_u64(), v["peers"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(v["interval_secs"], 120);
    let swarms = v["swarms"].as_array().unwrap();
    assert_eq!(swarms.len(), 2);
    let s = swarms
        .iter()
        .find(|s| s["info_hash"] == ih.to_hex())
        .unwrap();
    assert_eq!(s["info_hash_str"], SWARM);
    assert_eq!(
        (
            s["complete"].as_u64(),
            s["incomplete"].as_u64(),
            s["total"].as_u64(),
            s["local"].as_u64()
        ),
        (Some(1), Some(2), Some(3), Some(1))
    );
    let s = swarms
        .iter()
        .find(|s| s["info_hash"] == "ff".repeat(20))
        .unwrap();
    assert_eq!(s["info_hash_str"], "\u{ff}".repeat(20));

    // By hex, and by the url-encoded 20-character string (which has a '/').
    for path in [
        format!("/api/v1/tracker/{}", ih.to_hex()),
        format!("/api/v1/tracker/{}", ih.to_hex().to_uppercase()),
        format!("/api/v1/tracker/{}", url_encode(SWARM)),
    ] {
        let (status, body) = http_get(&h, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["info_hash"], ih.to_hex());
        assert_eq!(v["total"], 3);
        let peers = v["peers"].as_array().unwrap();
        let pa = peers
            .iter()
            .find(|p| p["peer_id"] == a.peer_id.to_hex())
            .unwrap();
        assert_eq!(pa["peer_id_ascii"], a.peer_id.as_ascii().unwrap());
        assert_eq!(pa["local"], false);
        assert_eq!(pa["complete"], false);
        assert!(
            pa["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{pa}"
        );
        assert!(pa["last_seen_secs_ago"].as_u64().unwrap() < 5);
        assert!(pa["last_seen_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
        let pb = peers
            .iter()
            .find(|p| p["peer_id"] == b.peer_id.to_hex())
            .unwrap();
        assert_eq!(pb["complete"], true);
        let pd = peers
            .iter()
            .find(|p| p["peer_id"] == daemon_id.to_hex())
            .unwrap();
        assert_eq!(
            (pd["local"].as_bool(), pd["remote"].is_null()),
            (Some(true), true)
        );
    }
    let (status, body) = http_get(
        &h,
        &format!("/api/v1/tracker/{}", url_encode(&binary.to_binary_string())),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = http_get(&h, &format!("/api/v1/tracker/{}", "ab".repeat(20))).await;
    assert_eq!(status, 404);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["error"],
        format!("no swarm with info_hash {}", "ab".repeat(20))
    );

    for bad in ["/api/v1/tracker/xyz", "/api/v1/tracker/%E2%82%AC%E2%82%AC"] {
        let (status, body) = http_get(&h, bad).await;
        assert_eq!(status, 400, "{bad}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("40 hex digits"),
            "{body}"
        );
    }
    let (status, body) = http_get(&h, "/api/v1/tracker/%FF").await;
    assert_eq!(status, 400, "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string());
}

#[tokio::test]
async fn remote_addresses_can_be_hidden() {
    let h = start(TrackerConfig {
        show_remote_addresses: false,
        ..TrackerConfig::default()
    })
    .await;
    let mut a = Peer::connect(&h, 1).await;
    a.join(id(SWARM)).await;
    let (_, body) = http_get(&h, &format!("/api/v1/tracker/{}", id(SWARM).to_hex())).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["peers"][0]["remote"].is_null(), "{body}");
}

#[tokio::test]
async fn a_plain_get_of_announce_is_told_to_use_a_websocket() {
    let h = start(TrackerConfig::default()).await;
    let (status, body) = http_get(&h, "/announce").await;
    assert_eq!(status, 426);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("connect with a WebSocket"),
        "{body}"
    );
}
