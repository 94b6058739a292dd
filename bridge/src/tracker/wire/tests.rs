//! Encoding and decoding, without a tracker.
use super::*;

fn id(s: &str) -> Id20 {
    Id20::from_binary_str(s).unwrap()
}

#[test]
fn binary_strings_map_chars_to_bytes_both_ways() {
    let mut bytes = [0u8; 20];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = [0x00, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xa0, 0xe9, 0xff, 0x41][i % 10];
    }
    let id = Id20(bytes);
    let json = serde_json::to_string(&id).unwrap();
    // Control characters are escaped; 0x80..0xFF travel as 2-byte UTF-8.
    assert!(
        json.contains("\\u0000") && json.contains("\\u001f"),
        "{json}"
    );
    assert!(json.contains("\\\"") && json.contains("\\\\"), "{json}");
    assert!(json.contains('é') && json.contains('ÿ') && json.contains('\u{80}'));
    let back: Id20 = serde_json::from_str(&json).unwrap();
    assert_eq!(back, id);
    // What JSON.stringify produces for the same bytes decodes the same.
    let js = "\"\\u0000\\u001f\\\"\\\\\u{7f}\u{80}\u{a0}é\u{ff}A\\u0000\\u001f\\\"\\\\\u{7f}\u{80}\u{a0}\\u00e9ÿA\"";
    assert_eq!(serde_json::from_str::<Id20>(js).unwrap(), id);
    assert_eq!(Id20::from_hex(&id.to_hex()).unwrap(), id);
    assert_eq!(id.to_hex().len(), 40);
    assert_eq!(id.as_ascii(), None);
    assert_eq!(
        Id20(*b"-PM0203-Zg1LSKTU4qFt").as_ascii(),
        Some("-PM0203-Zg1LSKTU4qFt")
    );
}

#[test]
fn binary_strings_of_wrong_length_or_wide_chars_are_refused() {
    assert_eq!(
        Id20::from_binary_str("0123456789012345678"),
        Err(Id20Error::Length(19))
    );
    assert_eq!(
        Id20::from_binary_str("012345678901234567890"),
        Err(Id20Error::Length(21))
    );
    assert_eq!(
        Id20::from_binary_str("0123456789012345678€"),
        Err(Id20Error::NotByte {
            code: 0x20ac,
            position: 19
        })
    );
    // 20 bytes of UTF-8 but 10 chars: length counts chars, not bytes.
    assert_eq!(
        Id20::from_binary_str("éééééééééé"),
        Err(Id20Error::Length(10))
    );
    assert!(Id20::from_hex("zz").is_err());
}

#[test]
fn browser_messages_decode() {
    let start = r#"{"numwant":5,"uploaded":0,"downloaded":0,"event":"started","action":"announce","info_hash":"SwVvb8BOagSGmrfnl/B4","peer_id":"-PM0203-Zg1LSKTU4qFt","offers":[{"offer":{"type":"offer","sdp":"v=0\r\n"},"offer_id":"\u00ff\u0001bcdefghijklmnopqrs"}]}"#;
    let ClientMessage::Announce(a) = decode_client_message(start).unwrap() else {
        panic!()
    };
    assert_eq!(a.info_hash, id("SwVvb8BOagSGmrfnl/B4"));
    assert_eq!(a.event, Some(AnnounceEvent::Started));
    assert_eq!(a.numwant, Some(5));
    let offers = a.offers.unwrap();
    assert_eq!(offers[0].offer_id.0[0], 0xff);
    assert_eq!(offers[0].offer.kind, SdpType::Offer);

    let answer = r#"{"action":"announce","info_hash":"SwVvb8BOagSGmrfnl/B4","peer_id":"-PM0203-Zg1LSKTU4qFt","to_peer_id":"-PM0203-aaaaaaaaaaaa","answer":{"type":"answer","sdp":"v=0"},"offer_id":"abcdefghijklmnopqrst","trackerid":"x"}"#;
    let ClientMessage::Announce(a) = decode_client_message(answer).unwrap() else {
        panic!()
    };
    assert_eq!(a.to_peer_id, Some(id("-PM0203-aaaaaaaaaaaa")));
    assert!(a.answer.is_some());

    let odd = r#"{"action":"announce","info_hash":"SwVvb8BOagSGmrfnl/B4","peer_id":"-PM0203-Zg1LSKTU4qFt","left":null,"uploaded":1.5,"downloaded":"7","numwant":-1}"#;
    let ClientMessage::Announce(a) = decode_client_message(odd).unwrap() else {
        panic!()
    };
    assert_eq!(
        (a.left, a.uploaded, a.downloaded, a.numwant),
        (None, Some(1), Some(7), None)
    );

    let scrape = r#"{"action":"scrape","info_hash":"SwVvb8BOagSGmrfnl/B4"}"#;
    assert_eq!(
        decode_client_message(scrape).unwrap(),
        ClientMessage::Scrape(ScrapeRequest {
            info_hash: Some(vec![id("SwVvb8BOagSGmrfnl/B4")])
        })
    );
    let scrape = r#"{"action":"scrape","info_hash":["SwVvb8BOagSGmrfnl/B4"]}"#;
    assert!(decode_client_message(scrape).is_ok());
}

#[test]
fn bad_messages_get_reasons_that_name_the_problem() {
    let e = decode_client_message("{nope").unwrap_err();
    assert!(e.reason.starts_with("malformed JSON"), "{e}");
    let e = decode_client_message("[1,2]").unwrap_err();
    assert!(e.reason.contains("JSON object"), "{e}");
    let e = decode_client_message(r#"{"action":"dance"}"#).unwrap_err();
    assert!(e.reason.contains("unknown action \"dance\""), "{e}");
    let e = decode_client_message(r#"{"info_hash":"x"}"#).unwrap_err();
    assert!(e.reason.contains("missing action"), "{e}");
    let e = decode_client_message(
        r#"{"action":"announce","info_hash":"SwVvb8BOagSGmrfnl/B4","peer_id":"short"}"#,
    )
    .unwrap_err();
    assert!(
        e.reason
            .contains("invalid peer_id: expected 20 characters, got 5"),
        "{e}"
    );
    assert_eq!(e.action, Some(Action::Announce));
    assert_eq!(e.info_hash, Some(id("SwVvb8BOagSGmrfnl/B4")));
    let e = decode_client_message(
        r#"{"action":"announce","info_hash":"SwVvb8BOagSGmrfnl/B€","peer_id":"-PM0203-Zg1LSKTU4qFt"}"#,
    )
    .unwrap_err();
    assert!(
        e.reason.contains("invalid info_hash: character U+20AC"),
        "{e}"
    );
    assert_eq!(e.info_hash, None);
    let e = decode_client_message(
        r#"{"action":"announce","info_hash":"SwVvb8BOagSGmrfnl/B4","peer_id":"-PM0203-Zg1LSKTU4qFt","offers":[{"offer":{"type":"offer","sdp":"x"},"offer_id":"short"}]}"#,
    )
    .unwrap_err();
    assert!(e.reason.contains("invalid offer_id"), "{e}");
    let e = decode_client_message(
        r#"{"action":"announce","info_hash":5,"peer_id":"-PM0203-Zg1LSKTU4qFt"}"#,
    )
    .unwrap_err();
    assert!(
        e.reason
            .contains("info_hash as a 20-character binary string"),
        "{e}"
    );
}

#[test]
fn tracker_messages_round_trip_in_the_shapes_browsers_expect() {
    let ih = id("SwVvb8BOagSGmrfnl/B4");
    let pid = id("-PM0203-Zg1LSKTU4qFt");
    let oid = Id20([0xfe; 20]);
    let sdp = |kind| SessionDescription {
        kind,
        sdp: "v=0\r\n".into(),
    };
    let messages = [
        TrackerMessage::Announce(AnnounceReply {
            info_hash: ih,
            complete: 1,
            incomplete: 2,
            interval: Some(120),
            min_interval: None,
            warning: None,
        }),
        TrackerMessage::Offer(RelayedOffer {
            info_hash: ih,
            peer_id: pid,
            offer: sdp(SdpType::Offer),
            offer_id: oid,
        }),
        TrackerMessage::Answer(RelayedAnswer {
            info_hash: ih,
            peer_id: pid,
            answer: sdp(SdpType::Answer),
            offer_id: oid,
        }),
        TrackerMessage::Scrape(ScrapeReply {
            files: [(
                ih,
                ScrapeCounts {
                    complete: 0,
                    incomplete: 1,
                    downloaded: 0,
                },
            )]
            .into(),
            flags: Some(ScrapeFlags {
                min_request_interval: 120,
            }),
        }),
        TrackerMessage::Failure(Failure {
            reason: "no".into(),
            action: Some(Action::Announce),
            info_hash: Some(ih),
        }),
    ];
    for m in messages {
        let json = serde_json::to_string(&m).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let action = if matches!(m, TrackerMessage::Scrape(_)) {
            "scrape"
        } else {
            "announce"
        };
        assert_eq!(v["action"], action, "{json}");
        assert_eq!(serde_json::from_str::<TrackerMessage>(&json).unwrap(), m);
    }
    let reply: TrackerMessage = serde_json::from_str(
        r#"{"complete":0,"incomplete":1,"action":"announce","interval":120,"info_hash":"SwVvb8BOagSGmrfnl/B4"}"#,
    )
    .unwrap();
    assert!(matches!(reply, TrackerMessage::Announce(r) if r.interval == Some(120)));

    let req = ClientMessage::from(AnnounceRequest::answer(ih, pid, pid, oid, "v=0".into()));
    let json = serde_json::to_string(&req).unwrap();
    assert!(json.starts_with(r#"{"action":"announce""#), "{json}");
    assert_eq!(decode_client_message(&json).unwrap(), req);
}
