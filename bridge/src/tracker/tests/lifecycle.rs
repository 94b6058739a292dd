//! Joining, leaving, expiry, heartbeats, peer_id rules, local members.

use std::time::Duration;

use super::*;

#[tokio::test]
async fn a_closed_socket_leaves_all_its_swarms() {
    let h = start(TrackerConfig::default()).await;
    let (one, two) = (id(SWARM), id("second-swarm-0000000"));
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    a.join(one).await;
    a.join(two).await;
    b.join(one).await;
    assert!(is_member(&h, &one, &a.peer_id) && is_member(&h, &two, &a.peer_id));

    a.ws.close(None).await.unwrap();
    drop(a);
    eventually("A left both swarms", || {
        !is_member(&h, &one, &peer_id(1)) && h.tracker.swarm_info(&two).is_none()
    })
    .await;
    // B's offers now have nobody to go to.
    b.announce_offers(one, 2).await;
    assert_eq!(b.recv_reply().await.incomplete, 1);
    assert_eq!(h.tracker.overview().sockets, 1);
}

#[tokio::test]
async fn stopped_leaves_one_swarm() {
    let h = start(TrackerConfig::default()).await;
    let (one, two) = (id(SWARM), id("second-swarm-0000000"));
    let mut a = Peer::connect(&h, 1).await;
    a.join(one).await;
    a.join(two).await;
    a.announce(one, Some(AnnounceEvent::Stopped)).await;
    let r = a.recv_reply().await;
    assert_eq!((r.info_hash, r.incomplete), (one, 0));
    assert!(h.tracker.swarm_info(&one).is_none());
    assert!(is_member(&h, &two, &a.peer_id));
}

#[tokio::test]
async fn silent_peers_expire_while_their_socket_stays_usable() {
    let config = TrackerConfig {
        peer_ttl: Duration::from_millis(300),
        sweep_interval: Duration::from_millis(50),
        ..TrackerConfig::default()
    };
    let h = start(config).await;
    let ih = id(SWARM);
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    a.join(ih).await;
    b.join(ih).await;
    // B keeps announcing; A falls silent.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.announce(ih, None).await;
        b.recv_reply().await;
    }
    assert!(!is_member(&h, &ih, &a.peer_id), "A should have expired");
    assert!(is_member(&h, &ih, &b.peer_id));
    // Expiry is not a disconnect: A can come back on the same socket.
    assert_eq!(a.join(ih).await.incomplete, 2);
}

#[tokio::test]
async fn sockets_that_stop_answering_pings_are_dropped() {
    let config = TrackerConfig {
        ping_interval: Duration::from_millis(150),
        ..TrackerConfig::default()
    };
    let h = start(config).await;
    let ih = id(SWARM);
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    a.join(ih).await;
    b.join(ih).await;
    // A stops reading, so its client never answers the pings; B keeps
    // reading (the client answers pings as it reads).
    let b_reads = tokio::spawn(async move {
        b.expect_silence(Duration::from_millis(1200)).await;
        b
    });
    eventually("A was dropped", || !is_member(&h, &ih, &peer_id(1))).await;
    let mut b = b_reads.await.unwrap();
    assert!(is_member(&h, &ih, &b.peer_id), "B answers pings and stays");
    assert_eq!(
        a.expect_closed().await.map(|(code, _)| code),
        Some(1001),
        "A is told why"
    );
    b.announce(ih, None).await;
    assert_eq!(b.recv_reply().await.incomplete, 1);
}

#[tokio::test]
async fn sockets_in_no_swarm_are_closed_after_the_idle_timeout() {
    let config = TrackerConfig {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(250),
        ..TrackerConfig::default()
    };
    let h = start(config).await;
    let mut idle = Peer::connect(&h, 1).await;
    let mut busy = Peer::connect(&h, 2).await;
    busy.join(id(SWARM)).await;
    // Busy keeps reading (so its client answers pings) meanwhile.
    let busy_reads = tokio::spawn(async move {
        busy.expect_silence(Duration::from_millis(600)).await;
        busy
    });
    let (code, reason) = idle.expect_closed().await.unwrap();
    assert_eq!(code, 1000);
    assert!(reason.contains("in no swarm"), "{reason}");
    let mut busy = busy_reads.await.unwrap();
    busy.announce(id(SWARM), None).await;
    busy.recv_reply().await;
}

#[tokio::test]
async fn a_socket_keeps_the_peer_id_of_its_first_announce() {
    let h = start(TrackerConfig::default()).await;
    let (one, two) = (id(SWARM), id("second-swarm-0000000"));
    let mut a = Peer::connect(&h, 1).await;
    a.join(one).await;
    let mut other = AnnounceRequest::new(two, peer_id(99), Some(AnnounceEvent::Started));
    other.offers = Some(offers(peer_id(99), 1));
    a.send(other).await;
    let f = a.recv_failure().await;
    assert!(
        f.reason.contains("one peer_id per connection"),
        "{}",
        f.reason
    );
    assert_eq!(f.info_hash, Some(two));
    assert!(h.tracker.swarm_info(&two).is_none());
    // Refused, not closed: the socket carries on under its first peer_id.
    assert_eq!(a.join(two).await.incomplete, 1);
}

#[tokio::test]
async fn a_peer_id_in_use_on_another_socket_is_refused() {
    let h = start(TrackerConfig::default()).await;
    let ih = id(SWARM);
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    a.join(ih).await;
    // B claims A's peer_id: it must not take over A's place.
    b.peer_id = a.peer_id;
    b.announce(ih, Some(AnnounceEvent::Started)).await;
    assert!(
        b.recv_failure()
            .await
            .reason
            .contains("already in this swarm")
    );
    let mut c = Peer::connect(&h, 3).await;
    c.join(ih).await;
    c.announce_offers(ih, 5).await;
    c.recv_reply().await;
    assert!(matches!(a.recv().await, TrackerMessage::Offer(_)));
    b.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_local_member_gets_offers_first_and_answers_through_the_tracker() {
    let config = TrackerConfig {
        peer_ttl: Duration::from_millis(200),
        sweep_interval: Duration::from_millis(50),
        ..TrackerConfig::default()
    };
    let h = start(config).await;
    let ih = id(SWARM);
    let daemon_id = id("-SS0001-daemonseeder");
    let mut local = h.tracker.connect_local().unwrap();
    local.send(AnnounceRequest::new(
        ih,
        daemon_id,
        Some(AnnounceEvent::Started),
    ));
    match local.recv().await.unwrap() {
        TrackerMessage::Announce(r) => assert_eq!((r.incomplete, r.interval), (1, Some(120))),
        other => panic!("{other:?}"),
    }
    let mut browsers = Vec::new();
    for n in 10..13 {
        let mut p = Peer::connect(&h, n).await;
        p.join(ih).await;
        browsers.push(p);
    }
    // One offer from a newcomer: it goes to the daemon, not to chance.
    let mut a = Peer::connect(&h, 1).await;
    a.announce_offers(ih, 1).await;
    a.recv_reply().await;
    let offer = match tokio::time::timeout(PATIENCE, local.recv())
        .await
        .unwrap()
        .unwrap()
    {
        TrackerMessage::Offer(o) => o,
        other => panic!("{other:?}"),
    };
    assert_eq!(offer.peer_id, a.peer_id);
    local.send(AnnounceRequest::answer(
        ih,
        daemon_id,
        a.peer_id,
        offer.offer_id,
        "v=0".into(),
    ));
    match a.recv().await {
        TrackerMessage::Answer(ans) => {
            assert_eq!((ans.peer_id, ans.offer_id), (daemon_id, offer.offer_id))
        }
        other => panic!("{other:?}"),
    }
    // The daemon's own offers reach browsers like anyone's.
    local.send(AnnounceRequest::with_offers(
        ih,
        daemon_id,
        None,
        offers(daemon_id, 4),
    ));
    assert!(matches!(
        local.recv().await,
        Some(TrackerMessage::Announce(_))
    ));
    for p in &mut browsers {
        match p.recv().await {
            TrackerMessage::Offer(o) => assert_eq!(o.peer_id, daemon_id),
            other => panic!("{other:?}"),
        }
    }
    // Silent for longer than the TTL, the browsers expire; the daemon does not.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info = h.tracker.swarm_info(&ih).unwrap();
    assert_eq!(info.peers.len(), 1);
    assert!(info.peers[0].local && info.peers[0].remote.is_none());
    // Dropping the connection leaves the swarm.
    drop(local);
    assert!(h.tracker.swarm_info(&ih).is_none());
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let h = start(TrackerConfig::default()).await;
    let mut a = Peer::connect(&h, 1).await;
    a.join(id(SWARM)).await;
    h.shutdown.cancel();
    assert_eq!(a.expect_closed().await.map(|(c, _)| c), Some(1001));
    assert!(h.tracker.connect_local().is_err());
}

#[tokio::test]
async fn without_connect_info_the_tracker_still_serves() {
    let h = start_with(TrackerConfig::default(), false).await;
    still_serves(&h).await;
    let info = h.tracker.swarm_info(&id("still-serving-swarm!")).unwrap();
    assert!(info.peers.iter().all(|p| p.remote.is_none()));
}
