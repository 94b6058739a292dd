//! Offers out, answers back, intervals, and the 20-byte fields on the wire.

use std::collections::HashSet;
use std::time::Duration;

use super::*;
use crate::tracker::wire::{ScrapeRequest, TrackerMessage};

#[tokio::test]
async fn an_offer_reaches_the_other_member_and_its_answer_comes_back() {
    let h = start(TrackerConfig::default()).await;
    let ih = id(SWARM);
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;

    let reply = b.join(ih).await;
    assert_eq!(
        (
            reply.info_hash,
            reply.complete,
            reply.incomplete,
            reply.interval
        ),
        (ih, 0, 1, Some(120))
    );

    a.announce_offers(ih, 3).await;
    let text = a.recv_text().await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The reply in bittorrent-tracker's shape.
    assert_eq!(v["action"], "announce");
    assert_eq!(v["interval"], 120);
    assert_eq!(v["info_hash"], SWARM);
    assert_eq!(
        (v["complete"].as_u64(), v["incomplete"].as_u64()),
        (Some(0), Some(2))
    );

    // B is the only other member: exactly one of A's offers reaches it.
    let text = b.recv_text().await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["action"], "announce");
    assert_eq!(v["peer_id"], a.peer_id.as_ascii().unwrap());
    assert_eq!(v["offer"]["type"], "offer");
    let TrackerMessage::Offer(offer) = serde_json::from_str(&text).unwrap() else {
        panic!("not an offer: {text}")
    };
    assert_eq!((offer.info_hash, offer.peer_id), (ih, a.peer_id));
    let sent = offers(a.peer_id, 3);
    assert!(
        sent.iter()
            .any(|o| o.offer_id == offer.offer_id && o.offer == offer.offer)
    );
    b.expect_silence(Duration::from_millis(200)).await;

    // B answers; the answer reaches A with B's peer_id and the offer_id.
    let answer = AnnounceRequest::answer(
        ih,
        b.peer_id,
        a.peer_id,
        offer.offer_id,
        "v=0\r\na=answer\r\n".into(),
    );
    b.send(answer).await;
    match a.recv().await {
        TrackerMessage::Answer(ans) => {
            assert_eq!(
                (ans.info_hash, ans.peer_id, ans.offer_id),
                (ih, b.peer_id, offer.offer_id)
            );
            assert_eq!(ans.answer.kind, SdpType::Answer);
            assert_eq!(ans.answer.sdp, "v=0\r\na=answer\r\n");
        }
        other => panic!("expected an answer, got {other:?}"),
    }
    // Announces carrying an answer get no reply (as in bittorrent-tracker).
    b.expect_silence(Duration::from_millis(200)).await;
    a.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn offers_go_to_distinct_members_one_each_never_back_to_the_sender() {
    let h = start(TrackerConfig::default()).await;
    let ih = id(SWARM);
    let mut others = Vec::new();
    for n in 10..14 {
        let mut p = Peer::connect(&h, n).await;
        p.join(ih).await;
        others.push(p);
    }
    let mut a = Peer::connect(&h, 1).await;
    a.announce_offers(ih, 8).await;
    assert_eq!(a.recv_reply().await.incomplete, 5);
    let mut offer_ids = HashSet::new();
    for p in &mut others {
        match p.recv().await {
            TrackerMessage::Offer(o) => {
                assert_eq!(o.peer_id, a.peer_id);
                assert!(offer_ids.insert(o.offer_id), "one offer went out twice");
            }
            other => panic!("expected an offer, got {other:?}"),
        }
    }
    for p in &mut others {
        p.expect_silence(Duration::from_millis(100)).await;
    }
    a.expect_silence(Duration::from_millis(100)).await;

    // With fewer offers than members, each goes to a different member.
    a.announce_offers(ih, 2).await;
    a.recv_reply().await;
    let mut got = 0;
    for p in &mut others {
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(300), p.ws.next()).await
        {
            assert!(matches!(
                serde_json::from_str(t.as_str()).unwrap(),
                TrackerMessage::Offer(_)
            ));
            got += 1;
        }
    }
    assert_eq!(got, 2);
}

#[tokio::test]
async fn answers_go_only_to_members_of_that_swarm() {
    let h = start(TrackerConfig::default()).await;
    let (ih, elsewhere) = (id(SWARM), id("another-swarm-000000"));
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    a.join(elsewhere).await;
    b.join(ih).await;
    // A is not in `ih`: an answer "to A" in `ih` goes nowhere.
    b.send(AnnounceRequest::answer(
        ih,
        b.peer_id,
        a.peer_id,
        Id20([7; 20]),
        "v=0".into(),
    ))
    .await;
    a.expect_silence(Duration::from_millis(300)).await;
    b.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn the_interval_is_configurable_and_scrapes_are_answered() {
    let h = start(TrackerConfig::with_interval(Duration::from_secs(7))).await;
    let ih = id(SWARM);
    let mut a = Peer::connect(&h, 1).await;
    assert_eq!(a.join(ih).await.interval, Some(7));
    // left: 0 counts as complete.
    let mut b = Peer::connect(&h, 2).await;
    let mut seeder = AnnounceRequest::new(ih, b.peer_id, Some(AnnounceEvent::Started));
    seeder.left = Some(0);
    b.send(seeder).await;
    let r = b.recv_reply().await;
    assert_eq!((r.complete, r.incomplete), (1, 1));

    let unknown = id("nobody-is-here-00000");
    a.send(ScrapeRequest {
        info_hash: Some(vec![ih, unknown]),
    })
    .await;
    let text = a.recv_text().await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["action"], "scrape");
    assert_eq!(v["files"][SWARM]["complete"], 1);
    assert_eq!(v["files"][SWARM]["incomplete"], 1);
    assert_eq!(v["files"]["nobody-is-here-00000"]["incomplete"], 0);
    assert_eq!(v["flags"]["min_request_interval"], 7);
    // Scraping everything is refused, clearly.
    a.send_text(r#"{"action":"scrape"}"#).await;
    assert!(
        a.recv_failure()
            .await
            .reason
            .contains("scraping every swarm")
    );
}

#[tokio::test]
async fn bytes_above_0x7f_in_20_byte_fields_round_trip_through_the_tracker() {
    let h = start(TrackerConfig::default()).await;
    let mut ih = [0u8; 20];
    for (i, b) in ih.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(0x80);
    }
    ih[0] = 0x00;
    ih[1] = b'"';
    ih[2] = b'\\';
    ih[3] = 0xff;
    let ih = Id20(ih);
    let mut a = Peer::connect(&h, 1).await;
    let mut b = Peer::connect(&h, 2).await;
    b.peer_id = Id20([0xe9; 20]);
    b.join(ih).await;

    // A writes the announce by hand, as JSON.stringify would.
    let offer_id = Id20([0x80; 20]);
    let json = format!(
        r#"{{"numwant":1,"event":"started","action":"announce","info_hash":{},"peer_id":{},"offers":[{{"offer":{{"type":"offer","sdp":"v=0"}},"offer_id":{}}}]}}"#,
        serde_json::to_string(&ih.to_binary_string()).unwrap(),
        serde_json::to_string(&a.peer_id.to_binary_string()).unwrap(),
        serde_json::to_string(&offer_id.to_binary_string()).unwrap(),
    );
    assert!(json.contains("\\u0000") && json.contains('\u{ff}') && json.contains('\u{80}'));
    a.send_text(json).await;
    assert_eq!(a.recv_reply().await.info_hash, ih);

    let text = b.recv_text().await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let chars: Vec<u32> = v["info_hash"]
        .as_str()
        .unwrap()
        .chars()
        .map(u32::from)
        .collect();
    assert_eq!(
        chars,
        ih.0.iter().map(|&b| u32::from(b)).collect::<Vec<_>>()
    );
    let TrackerMessage::Offer(o) = serde_json::from_str(&text).unwrap() else {
        panic!("{text}")
    };
    assert_eq!((o.info_hash, o.offer_id), (ih, offer_id));

    b.send(AnnounceRequest::answer(
        ih,
        b.peer_id,
        a.peer_id,
        offer_id,
        "v=0".into(),
    ))
    .await;
    match a.recv().await {
        TrackerMessage::Answer(ans) => {
            assert_eq!((ans.peer_id, ans.offer_id), (Id20([0xe9; 20]), offer_id))
        }
        other => panic!("{other:?}"),
    }
    assert!(h.tracker.swarm_info(&ih).is_some());
}
