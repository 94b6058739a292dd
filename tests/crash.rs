//! kill -9 while segments are being written, again and again: the store
//! always opens, and no byte that differs from the CDN's is ever served.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::cdn::TestCdn;
use support::daemon::Daemon;
use support::hls::Object;
use support::{TEST_TIMEOUT, client, fixtures, hls};

const CYCLES: usize = 8;

/// Fixtures plus multi-block segments, so kills land inside long writes.
fn origin(dir: &Path) {
    let copy = |name: &str| {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(fixtures().join(name))
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    };
    copy("ts");
    copy("fmp4");
    std::fs::create_dir_all(dir.join("big")).unwrap();
    let mut playlist = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
    for i in 0..6u64 {
        let data: Vec<u8> = (0..(3 << 20) + i * 1000)
            .map(|b| ((b * 7 + i * 13) % 256) as u8)
            .collect();
        std::fs::write(dir.join(format!("big/b{i}.ts")), data).unwrap();
        playlist.push_str(&format!("#EXTINF:4,\nb{i}.ts\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(dir.join("big/index.m3u8"), playlist).unwrap();
}

async fn every_object(daemon: &Daemon, cdn: &TestCdn, root: &Path) -> Vec<Object> {
    let client = client();
    let gateway = format!("http://{}", daemon.addr);
    let mut all = Vec::new();
    for p in ["ts/master.m3u8", "fmp4/master.m3u8", "big/index.m3u8"] {
        all.extend(hls::objects(&client, &gateway, &daemon.hls(&cdn.url(p)), &root.join(p)).await);
    }
    all
}

/// Each object is either served whole and exact, or refused; never wrong.
async fn never_wrong(daemon: &Daemon, objects: &[Object]) -> (usize, usize) {
    let client = client();
    let (mut exact, mut refused) = (0, 0);
    for o in objects {
        let r = client.get(daemon.url(&o.path)).send().await.unwrap();
        if r.status().is_success() {
            let body = r.bytes().await.unwrap();
            assert!(
                body == o.expected,
                "{}: wrong bytes served after a crash",
                o.path
            );
            exact += 1;
        } else {
            assert!(r.status().is_server_error(), "{}", r.status());
            refused += 1;
        }
    }
    (exact, refused)
}

fn block_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(data.join("store/blocks"))
        .unwrap()
        .flatten()
    {
        if shard.file_name() == ".tmp" {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_writes_never_serves_wrong_bytes() {
    tokio::time::timeout(TEST_TIMEOUT * 2, async {
        let work = support::workdir();
        let root = work.path().join("origin");
        std::fs::create_dir_all(&root).unwrap();
        origin(&root);
        let home = work.path().join("node");
        let cdn = TestCdn::start(&root).await;
        let daemon = Daemon::start(&home, "").await;
        // Playlists first, so the CDN-down check below can name every segment.
        let objects = every_object(&daemon, &cdn, &root).await;
        drop(daemon);

        for cycle in 0..CYCLES {
            let mut daemon = Daemon::start(&home, "").await;
            let client = client();
            let requests: Vec<_> = objects
                .iter()
                .map(|o| {
                    let (client, url) = (client.clone(), daemon.url(&o.path));
                    tokio::spawn(
                        async move { client.get(&url).send().await.ok()?.bytes().await.ok() },
                    )
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(15 + 37 * cycle as u64 % 200)).await;
            daemon.kill9();
            for r in requests {
                let _ = r.await;
            }
            // Restart with the CDN up: whatever is served is exact.
            let daemon = Daemon::start(&home, "").await;
            let (exact, refused) = never_wrong(&daemon, &objects).await;
            assert_eq!(
                (exact, refused),
                (objects.len(), 0),
                "cycle {cycle}: CDN is up, so all are served"
            );
        }

        // With the CDN down, only what is stored can be served, and it is exact.
        let cdn_addr = cdn.addr;
        cdn.stop().await;
        let daemon = Daemon::start(&home, "").await;
        let (exact, _) = never_wrong(&daemon, &objects).await;
        assert_eq!(
            exact,
            objects.len(),
            "everything was stored by the last cycle"
        );
        drop(daemon);

        // Damage every block on disk: nothing may be served from them.
        let blocks = block_files(&home.join("data"));
        assert!(
            blocks.len() > objects.len(),
            "multi-block segments are stored as several blocks"
        );
        for b in &blocks {
            let mut data = std::fs::read(b).unwrap();
            if let Some(x) = data.last_mut() {
                *x ^= 0x5a;
            } else {
                data.push(1);
            }
            std::fs::write(b, data).unwrap();
        }
        let daemon = Daemon::start(&home, "").await;
        let (exact, refused) = never_wrong(&daemon, &objects).await;
        assert_eq!(
            (exact, refused),
            (0, objects.len()),
            "damaged blocks are never served"
        );
        assert!(daemon.healthy().await);
        drop(daemon);

        // With the CDN back, damaged segments are fetched again and repaired.
        let cdn = TestCdn::restart_on(cdn_addr, &root).await;
        let mut daemon = Daemon::start(&home, "").await;
        let (exact, _) = never_wrong(&daemon, &objects).await;
        assert_eq!(exact, objects.len());
        assert!(cdn.media_bytes_sent() > 0);
        // A clean stop finishes the store writes under way.
        assert!(daemon.terminate().success());
        cdn.stop().await;
        let daemon = Daemon::start(&home, "").await;
        let (exact, _) = never_wrong(&daemon, &objects).await;
        assert_eq!(
            exact,
            objects.len(),
            "repaired blocks are served from the store"
        );
    })
    .await
    .expect("test timed out");
}
