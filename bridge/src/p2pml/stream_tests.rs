use serde_json::Value;

use super::*;

fn url(s: &str) -> Url {
    Url::parse(s).expect("test URL")
}

fn hash(s: &Stream, g: Generation) -> &str {
    std::str::from_utf8(&s.names[g.slot()].info_hash).expect("ASCII info_hash")
}

/// The multivariant playlist of P2PML.md §2's first three rows.
const ROW1_MASTER: &str = "#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",CHANNELS=\"2\",URI=\"audio/en.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\",FRAME-RATE=30.000,AUDIO=\"aud\"
360p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aud\"
720p.m3u8
";

#[test]
fn p2pml_md_worked_examples() {
    let master = url("http://127.0.0.1:8080/hls/master.m3u8?token=abc");
    let base = swarm_base(&master);
    assert_eq!(base, "http://127.0.0.1:8080/hls/master.m3u8");
    let s = streams(&base, &master, ROW1_MASTER.as_bytes()).expect("row 1 master");
    assert_eq!(s.len(), 3);
    assert_eq!(
        s[0].swarm_id(Generation::V23),
        "v2-http://127.0.0.1:8080/hls/master.m3u8-main-cpNaOfbW48j1w2yYNbCuOSW9raU="
    );
    assert_eq!(hash(&s[0], Generation::V23), "YhJrpLz3GUfFSrnkrJmd");
    assert!(
        s[1].swarm_id(Generation::V23)
            .ends_with("-main-yxD28g3/vL3LSjOZXHRCPhOpLyo=")
    );
    assert_eq!(hash(&s[1], Generation::V23), "dpZrbPmvSk2floNp2/2U");
    assert_eq!(s[2].kind, StreamKind::Secondary);
    assert_eq!(
        s[2].playlist.as_str(),
        "http://127.0.0.1:8080/hls/audio/en.m3u8"
    );
    assert!(
        s[2].swarm_id(Generation::V23)
            .ends_with("-secondary-bdjQ1B4N2yrcTDHyU5j7iDGV9sY=")
    );
    assert_eq!(hash(&s[2], Generation::V23), "cgbIlBRi7Et0HIlRX+He");
    assert_eq!(
        s[2].swarm_id(Generation::V22),
        "v2-http://127.0.0.1:8080/hls/master.m3u8-secondary-0"
    );

    let ffmpeg = url("http://127.0.0.1:8080/hls/master.m3u8");
    let body = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=950400,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"\nstream_0.m3u8\n";
    let s = streams(&swarm_base(&ffmpeg), &ffmpeg, body.as_bytes()).expect("ffmpeg master");
    assert_eq!(s.len(), 1);
    assert!(
        s[0].swarm_id(Generation::V23)
            .ends_with("-main-+nyR1QfB+PzFi0sQxA6LKlWLWzA=")
    );
    // Observed on the wire from a real browser.
    assert_eq!(&s[0].info_hash(Generation::V23), b"SwVvb8BOagSGmrfnl/B4");
}

#[test]
fn short_id_pre_images() {
    // The pre-images P2PML.md gives, hashed by hand with SHA-1 + Base64.
    for (props, index) in [
        (
            ShortIdProps {
                bitrate: 1280000.0,
                codecs: Some("avc1.4d401e"),
                width: Some(640.0),
                height: Some(360.0),
                frame_rate: Some("30.000"),
                ..Default::default()
            },
            "1280000-avc1.4d401e-640-360----30-",
        ),
        (ShortIdProps::bitrate_only(0.0), "0--------"),
        (
            ShortIdProps {
                codecs: Some("mp4a.40.2"),
                language: Some("en"),
                channels: Some("2"),
                name: Some("English"),
                ..Default::default()
            },
            "0-mp4a.40.2---en-2-english--",
        ),
    ] {
        assert_eq!(short_id(&props), BASE64.encode(Sha1::digest(index)));
    }
    assert_eq!(normalise_codec(" AVC1.66.30 "), "avc1.42001e");
    assert_eq!(normalise_codec("avc.77.40"), "avc.4d0028");
    assert_eq!(normalise_codec("avc1.066.30"), "avc1.066.30");
}

fn s(v: &Value) -> &str {
    v.as_str().expect("string in vector")
}

#[test]
fn library_stream_vectors() {
    let json: Value =
        serde_json::from_str(include_str!("../../../tests/vectors/p2pml-streams.json"))
            .expect("p2pml-streams.json");
    assert_eq!(
        s(&json["peer_id_prefix"]["v22"]),
        Generation::V22.peer_id_prefix()
    );
    assert_eq!(
        s(&json["peer_id_prefix"]["v23"]),
        Generation::V23.peer_id_prefix()
    );
    let cases = json["cases"].as_array().expect("cases");
    assert!(cases.len() >= 16);
    for case in cases {
        let name = s(&case["name"]);
        let playlist_url = url(s(&case["playlist_url"]));
        let base = s(&case["swarm_base"]);
        if case["config_swarm_id"].is_null() {
            assert_eq!(swarm_base(&playlist_url), base, "{name}");
        }
        let got = streams(base, &playlist_url, s(&case["body"]).as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (g, key) in [(Generation::V22, "v22"), (Generation::V23, "v23")] {
            // Streams without a playlist (URI-less renditions) have no swarm to seed.
            let want: Vec<&Value> = case[key]
                .as_array()
                .expect("streams")
                .iter()
                .filter(|w| !s(&w["playlist"]).is_empty())
                .collect();
            assert_eq!(got.len(), want.len(), "{name} {key}");
            for (got, want) in got.iter().zip(want) {
                assert_eq!(got.kind.as_str(), s(&want["type"]), "{name} {key}");
                assert_eq!(got.playlist.as_str(), s(&want["playlist"]), "{name} {key}");
                assert_eq!(got.swarm_id(g), s(&want["swarm_id"]), "{name} {key}");
                assert_eq!(hash(got, g), s(&want["info_hash"]), "{name} {key}");
            }
        }
    }
    let short_ids = json["short_ids"].as_array().expect("short_ids");
    assert!(short_ids.len() >= 19);
    for v in short_ids {
        let p = &v["props"];
        let text = |k: &str| p[k].as_str();
        let props = ShortIdProps {
            bitrate: p["bitrate"].as_f64().unwrap_or(0.0),
            codecs: text("codecs"),
            width: p["width"].as_f64(),
            height: p["height"].as_f64(),
            language: text("language"),
            channels: text("channels"),
            name: text("name"),
            frame_rate: text("frameRate"),
            video_range: text("videoRange"),
        };
        assert_eq!(short_id(&props), s(&v["index"]), "{p}");
    }
}

#[test]
fn swarm_base_strips_query_and_fragment() {
    for (u, base) in [
        (
            "https://a.example/x/m.m3u8?t=1?u=2",
            "https://a.example/x/m.m3u8",
        ),
        (
            "https://a.example/x/m.m3u8#frag?x",
            "https://a.example/x/m.m3u8",
        ),
        ("https://a.example:443/m.m3u8", "https://a.example/m.m3u8"),
        (
            "http://127.0.0.1:8080/hls/master.m3u8",
            "http://127.0.0.1:8080/hls/master.m3u8",
        ),
    ] {
        assert_eq!(swarm_base(&url(u)), base);
    }
}

#[test]
fn media_playlist_is_one_main_stream() {
    let u = url("https://v.example/movie/index.m3u8?sig=1");
    let body = b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\ns0.ts\n";
    let got = streams("base", &u, body).expect("media playlist");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].kind, &got[0].playlist), (StreamKind::Main, &u));
    assert_eq!(got[0].swarm_id(Generation::V22), "v2-base-main-0");
    assert_eq!(
        got[0].swarm_id(Generation::V23),
        format!("v2-base-main-{}", BASE64.encode(Sha1::digest("0--------")))
    );
    // 2.2: Base64 of MD5 bytes 1..16 of the swarm id.
    let md5 = Md5::digest(b"v2-base-main-0");
    assert_eq!(hash(&got[0], Generation::V22), BASE64.encode(&md5[1..]));
}

#[test]
fn malformed_playlists_are_errors() {
    let u = url("https://v.example/m.m3u8");
    let err = |body: &str| streams("b", &u, body.as_bytes()).expect_err(body);
    assert!(matches!(err(""), StreamError::NotAPlaylist));
    assert!(matches!(err("<html>"), StreamError::NotAPlaylist));
    assert!(matches!(
        err("#EXTM3U\n#EXT-X-VERSION:3\n"),
        StreamError::NoVariants
    ));
    assert!(matches!(
        err("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"{$c}\"\nv.m3u8\n"),
        StreamError::UndefinedVariable(v) if v == "c"
    ));
    assert!(matches!(
        err("#EXTM3U\n#EXT-X-DEFINE:NAME=\"a\",VALUE=\"1\"\n#EXT-X-DEFINE:NAME=\"a\",VALUE=\"2\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"),
        StreamError::DuplicateVariable(v) if v == "a"
    ));
    assert!(matches!(
        err("#EXTM3U\n#EXT-X-DEFINE:QUERYPARAM=\"tok\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"),
        StreamError::MissingQueryParam(v) if v == "tok"
    ));
    let opaque = url("mailto:someone@example.com");
    assert!(matches!(
        streams(
            "b",
            &opaque,
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"
        ),
        Err(StreamError::BadUri { .. })
    ));
    // An unknown reference in EXT-X-MEDIA is not fatal in hls.js.
    let ok = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"{$x}\",URI=\"a.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\nv.m3u8\n";
    assert_eq!(
        streams("b", &u, ok.as_bytes()).map(|s| s.len()).ok(),
        Some(2)
    );
}

#[test]
fn no_panic_on_truncated_or_mangled_input() {
    let json: Value =
        serde_json::from_str(include_str!("../../../tests/vectors/p2pml-streams.json"))
            .expect("p2pml-streams.json");
    let u = url("https://v.example/a/m.m3u8?x=1");
    for case in json["cases"].as_array().expect("cases") {
        let body = s(&case["body"]).as_bytes();
        for cut in 0..=body.len() {
            let _ = streams("b", &u, &body[..cut]);
        }
        for (i, junk) in [
            &b"\xff"[..],
            b"\xe2\x80\xa8",
            b"\"",
            b"=",
            b",",
            b"\r",
            b"{$",
        ]
        .iter()
        .enumerate()
        {
            let mut mangled = body.to_vec();
            for at in (i..mangled.len()).step_by(7).rev() {
                mangled.splice(at..at, junk.iter().copied());
            }
            let _ = streams("b", &u, &mangled);
        }
    }
}

#[test]
fn peertube_uuid_swarms_match_peertubes_own_vectors() {
    // shared/PEERTUBE.md §10.
    let uuid = "11111111-2222-3333-4444-555555555555";
    let (id, hash) = peertube_uuid_swarm(uuid, StreamKind::Main, Some(720));
    assert_eq!(id, format!("pt-v2-{uuid}-main-default-720"));
    assert_eq!(std::str::from_utf8(&hash).unwrap(), "fBjg3VSP7L0/hKx1mbzj");
    let (id, hash) = peertube_uuid_swarm(uuid, StreamKind::Secondary, Some(0));
    assert_eq!(id, format!("pt-v2-{uuid}-secondary-default-default"));
    assert_eq!(std::str::from_utf8(&hash).unwrap(), "vLxNlc6khQvrTTrWsVpi");
}
