//! Bad input and every limit: the offender gets a reason, nobody else
//! notices, and the tracker keeps serving.

use std::time::Duration;

use super::*;
use crate::tracker::TrackerLimits;

fn limits(f: impl FnOnce(&mut TrackerLimits)) -> TrackerConfig {
    let mut config = TrackerConfig::default();
    f(&mut config.limits);
    config
}

#[tokio::test]
async fn malformed_messages_get_a_failure_reason_and_the_socket_stays_usable() {
    let h = start(TrackerConfig::default()).await;
    let mut a = Peer::connect(&h, 1).await;
    let pid = a.peer_id.as_ascii().unwrap().to_owned();
    let cases: Vec<(String, &str)> = vec![
        ("{nope".into(), "malformed JSON"),
        ("".into(), "malformed JSON"),
        ("[1,2,3]".into(), "must be a JSON object"),
        ("null".into(), "must be a JSON object"),
        (r#"{"action":"dance"}"#.into(), "unknown action \"dance\""),
        (r#"{"action":7}"#.into(), "unknown action (not a string)"),
        (format!(r#"{{"info_hash":"{SWARM}"}}"#), "missing action"),
        (
            format!(r#"{{"action":"announce","info_hash":"tooshort","peer_id":"{pid}"}}"#),
            "invalid info_hash: expected 20 characters, got 8",
        ),
        (
            format!(r#"{{"action":"announce","info_hash":"{SWARM}xx","peer_id":"{pid}"}}"#),
            "invalid info_hash: expected 20 characters, got 22",
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{SWARM}","peer_id":"-PM0203-\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac"}}"#
            ),
            "invalid peer_id: character U+20AC at position 8",
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{SWARM}","peer_id":"{pid}","answer":{{"type":"answer","sdp":"x"}},"to_peer_id":"short","offer_id":"{SWARM}"}}"#
            ),
            "invalid to_peer_id",
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{SWARM}","peer_id":"{pid}","answer":{{"type":"answer","sdp":"x"}}}}"#
            ),
            "needs to_peer_id and offer_id",
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{SWARM}","peer_id":"{pid}","offers":[{{"offer":{{"type":"offer","sdp":"x"}},"offer_id":"x"}}]}}"#
            ),
            "invalid offer_id",
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{SWARM}","peer_id":"{pid}","offers":"lots"}}"#
            ),
            "invalid announce",
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{SWARM}","peer_id":"{pid}","event":"exploded"}}"#
            ),
            "unknown variant `exploded`",
        ),
        (
            r#"{"action":"scrape","info_hash":["short"]}"#.into(),
            "invalid info_hash",
        ),
    ];
    for (input, expected) in &cases {
        a.send_text(input.clone()).await;
        let text = a.recv_text().await;
        // Always with an action, or bittorrent-tracker clients would drop
        // the socket.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["action"] == "announce" || v["action"] == "scrape",
            "{text}"
        );
        let TrackerMessage::Failure(f) = serde_json::from_str(&text).unwrap() else {
            panic!("expected a failure, got {text}")
        };
        assert!(
            f.reason.contains(expected),
            "for {input}: expected {expected:?} in {:?}",
            f.reason
        );
    }
    // A failure names the swarm when it could be read, so the right client
    // (which filters by info_hash) sees it.
    a.send_text(format!(
        r#"{{"action":"announce","info_hash":"{SWARM}","peer_id":"short"}}"#
    ))
    .await;
    let f = a.recv_failure().await;
    assert_eq!(f.info_hash, Some(id(SWARM)));
    // Binary frames are read as text; non-UTF-8 ones are refused.
    a.ws.send(Message::binary(vec![0xff, 0xfe])).await.unwrap();
    assert!(a.recv_failure().await.reason.contains("not UTF-8"));

    // The same socket still works, and so does everyone else.
    assert_eq!(a.join(id(SWARM)).await.incomplete, 1);
    still_serves(&h).await;
}

#[tokio::test]
async fn an_oversized_message_closes_only_that_socket() {
    let h = start(limits(|l| l.max_message_bytes = 4096)).await;
    let ih = id(SWARM);
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    a.join(ih).await;
    b.join(ih).await;
    let mut big = AnnounceRequest::with_offers(ih, a.peer_id, None, offers(a.peer_id, 1));
    big.offers.as_mut().unwrap()[0].offer.sdp = "a".repeat(10_000);
    a.send(big).await;
    let (code, reason) = a.expect_closed().await.expect("a close frame");
    assert_eq!(code, 1009);
    assert!(reason.contains("4096"), "{reason}");
    eventually("A was removed", || !is_member(&h, &ih, &peer_id(1))).await;
    // B never saw the offer and carries on.
    b.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(b.join(ih).await.incomplete, 1);
    still_serves(&h).await;
}

#[tokio::test]
async fn offers_beyond_the_cap_are_dropped_with_a_warning() {
    let h = start(limits(|l| l.max_offers_per_announce = 2)).await;
    let ih = id(SWARM);
    let mut others = Vec::new();
    for n in 10..16 {
        let mut p = Peer::connect(&h, n).await;
        p.join(ih).await;
        others.push(p);
    }
    let mut a = Peer::connect(&h, 1).await;
    a.announce_offers(ih, 200).await;
    let reply = a.recv_reply().await;
    let warning = reply.warning.expect("a warning message");
    assert!(
        warning.contains("200 offers sent; only the first 2"),
        "{warning}"
    );
    let mut relayed = 0;
    for p in &mut others {
        if let Ok(Some(Ok(Message::Text(_)))) =
            tokio::time::timeout(Duration::from_millis(300), p.ws.next()).await
        {
            relayed += 1;
        }
    }
    assert_eq!(relayed, 2);
    still_serves(&h).await;
}

#[tokio::test]
async fn a_socket_may_join_only_so_many_swarms() {
    let h = start(limits(|l| l.max_swarms_per_socket = 2)).await;
    let swarms = [
        id("swarm-00000000000001"),
        id("swarm-00000000000002"),
        id("swarm-00000000000003"),
    ];
    let mut a = Peer::connect(&h, 1).await;
    a.join(swarms[0]).await;
    a.join(swarms[1]).await;
    a.announce(swarms[2], Some(AnnounceEvent::Started)).await;
    let f = a.recv_failure().await;
    assert!(f.reason.contains("already in 2 swarms"), "{}", f.reason);
    assert_eq!(f.info_hash, Some(swarms[2]));
    // Re-announcing a swarm it is in is fine; leaving one makes room.
    a.announce(swarms[0], None).await;
    a.recv_reply().await;
    a.announce(swarms[1], Some(AnnounceEvent::Stopped)).await;
    a.recv_reply().await;
    assert_eq!(a.join(swarms[2]).await.incomplete, 1);
    still_serves(&h).await;
}

#[tokio::test]
async fn an_address_may_open_only_so_many_sockets() {
    let h = start(limits(|l| {
        l.max_sockets_per_ip = 2;
        l.exempt_loopback_from_ip_limit = false;
    }))
    .await;
    let a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    let url = format!("ws://{}/announce", h.addr);
    match tokio_tungstenite::connect_async(url.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let body = String::from_utf8(resp.body().clone().unwrap_or_default()).unwrap();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(
                v["error"]
                    .as_str()
                    .unwrap()
                    .contains("2 connections from this address")
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // The sockets already open are unaffected; closing one makes room.
    assert_eq!(b.join(id(SWARM)).await.incomplete, 1);
    drop(a);
    eventually("A's slot was freed", || h.tracker.overview().sockets == 1).await;
    let mut c = Peer::connect(&h, 3).await;
    assert_eq!(c.join(id(SWARM)).await.incomplete, 2);
}

#[tokio::test]
async fn loopback_is_exempt_from_the_per_address_limit_by_default() {
    let h = start(limits(|l| l.max_sockets_per_ip = 1)).await;
    let _a = Peer::connect(&h, 1).await;
    let _b = Peer::connect(&h, 2).await;
    still_serves(&h).await;
}

#[tokio::test]
async fn the_total_socket_limit_holds() {
    let h = start(limits(|l| l.max_sockets = 1)).await;
    let mut a = Peer::connect(&h, 1).await;
    let url = format!("ws://{}/announce", h.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    a.join(id(SWARM)).await;
}

#[tokio::test]
async fn full_swarms_and_a_full_tracker_refuse_newcomers_only() {
    let h = start(limits(|l| {
        l.max_peers_per_swarm = 2;
        l.max_swarms = 2;
        l.max_peers = 4;
    }))
    .await;
    let (one, two, three) = (
        id("swarm-00000000000001"),
        id("swarm-00000000000002"),
        id("swarm-00000000000003"),
    );
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    let mut c = Peer::connect(&h, 3).await;
    a.join(one).await;
    b.join(one).await;
    c.announce(one, Some(AnnounceEvent::Started)).await;
    assert!(
        c.recv_failure()
            .await
            .reason
            .contains("this swarm has 2 peers")
    );
    c.join(two).await;
    c.announce(three, Some(AnnounceEvent::Started)).await;
    assert!(c.recv_failure().await.reason.contains("holds 2 swarms"));
    b.join(two).await;
    a.announce(two, Some(AnnounceEvent::Started)).await;
    assert!(a.recv_failure().await.reason.contains("holds 4 peers"));
    // Members keep working.
    a.announce_offers(one, 1).await;
    a.recv_reply().await;
    assert!(matches!(b.recv().await, TrackerMessage::Offer(_)));
    // The local member is exempt: the daemon must be in what it seeds.
    let local = h.tracker.connect_local().unwrap();
    local.send(AnnounceRequest::new(one, id("-SS0001-daemonseeder"), None));
    assert_eq!(h.tracker.swarm_info(&one).unwrap().peers.len(), 3);
    assert_eq!(h.tracker.overview().peers, 5);
}

#[tokio::test]
async fn a_flood_of_messages_is_rate_limited_for_that_socket_only() {
    let h = start(limits(|l| {
        l.messages_per_second = 2;
        l.message_burst = 3;
    }))
    .await;
    let ih = id(SWARM);
    let mut a = Peer::connect(&h, 1).await;
    for _ in 0..20 {
        a.announce(ih, None).await;
    }
    for _ in 0..3 {
        a.recv_reply().await;
    }
    let f = a.recv_failure().await;
    assert!(f.reason.contains("too many messages"), "{}", f.reason);
    // The rest of the flood is dropped silently.
    a.expect_silence(Duration::from_millis(200)).await;
    // Others are unaffected.
    still_serves(&h).await;
    // After a pause, A may speak again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    a.announce(ih, None).await;
    a.recv_reply().await;
}

#[tokio::test]
async fn a_peer_that_does_not_read_loses_its_own_messages_only() {
    let h = start(limits(|l| l.outbox_messages = 2)).await;
    let ih = id(SWARM);
    // The slow peer never reads; its outbox (and then its TCP window)
    // fills with offers for it.
    let mut slow = Peer::connect(&h, 1).await;
    slow.join(ih).await;
    let mut fast = Peer::connect(&h, 2).await;
    fast.join(ih).await;
    for round in 0..40 {
        let mut p = Peer::connect(&h, 100 + round).await;
        p.announce_offers(ih, 5).await;
        p.recv_reply().await;
        drop(p);
    }
    // Everyone else is still served promptly.
    still_serves(&h).await;
    // The peer that reads gets what was queued for it, then its reply.
    fast.announce(ih, None).await;
    let mut offers_first = 0;
    while let TrackerMessage::Offer(_) = fast.recv().await {
        offers_first += 1;
    }
    assert!(offers_first > 0);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_last_forwarded_for_entry_is_the_address() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut config = limits(|l| {
        l.max_sockets_per_ip = 1;
        l.exempt_loopback_from_ip_limit = false;
    });
    config.trust_forwarded_for = true;
    let h = start(config).await;
    let url = format!("ws://{}/announce", h.addr);
    let connect = |xff: &'static str| {
        let mut req = url.clone().into_client_request().unwrap();
        req.headers_mut()
            .insert("x-forwarded-for", xff.parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    // The first entry is whatever the client claimed; the last is what
    // our proxy saw.
    let (ws, _) = connect("203.0.113.9, 198.51.100.1").await.unwrap();
    let mut a = Peer {
        ws,
        peer_id: peer_id(1),
    };
    let (_b, _) = connect("198.51.100.2").await.unwrap();
    match connect("198.51.100.1").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    a.join(id(SWARM)).await;
    let info = h.tracker.swarm_info(&id(SWARM)).unwrap();
    assert_eq!(info.peers[0].remote.as_deref(), Some("198.51.100.1"));
}
