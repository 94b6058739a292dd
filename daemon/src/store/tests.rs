//! The store's policy on a real store in a temp dir: block references,
//! LRU eviction, pins and the memory cache.

use std::sync::Arc;

use bytes::Bytes;

use super::unixfs::{self, CHUNK};
use super::{Limits, Store};

fn bytes(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

async fn put(store: &Store, key: &str, data: &Bytes) -> String {
    let dag = Arc::new(unixfs::import(data));
    store
        .put_imported(key.into(), dag, data.clone(), None)
        .await
        .unwrap()
        .to_string()
}

fn open(dir: &std::path::Path, max_bytes: u64) -> Store {
    Store::open(
        dir,
        Limits {
            max_bytes,
            ..Limits::unbounded(64 << 20)
        },
    )
    .unwrap()
}

fn block_file_exists(store: &Store, cid: &str) -> bool {
    let cid = cid::Cid::try_from(cid).unwrap();
    store.inner.blocks.get(&cid).unwrap().is_some()
}

#[tokio::test]
async fn a_block_shared_by_two_objects_outlives_the_first_and_goes_with_the_last() {
    let dir = tempfile::tempdir().unwrap();
    // `whole`'s first leaf is `part`'s only block: the same CID.
    let part = bytes(1, CHUNK);
    let mut w = part.to_vec();
    w.extend_from_slice(&bytes(2, 1000));
    let whole = Bytes::from(w);
    let store = open(dir.path(), u64::MAX);
    let part_cid = put(&store, "part", &part).await;
    let whole_cid = put(&store, "whole", &whole).await;
    assert_ne!(part_cid, whole_cid);
    assert_eq!(store.inner.index.refs(&part_cid).unwrap(), 2);
    store.flush().unwrap();
    drop(store);

    // A quota with room for `whole` alone: `part`, the older, goes.
    let store = open(dir.path(), whole.len() as u64 * 11 / 10);
    assert!(store.get_segment("part").await.unwrap().is_none());
    assert_eq!(store.inner.index.refs(&part_cid).unwrap(), 1);
    assert!(
        block_file_exists(&store, &part_cid),
        "still held by `whole`"
    );
    let got = store.get_segment("whole").await.unwrap().unwrap();
    assert_eq!(got.bytes, whole);
    assert_eq!(store.usage().segments, 1);
    assert_eq!(store.usage().bytes, whole.len() as u64);
    drop(store);

    // No room at all: the last holder goes, and the block file with it.
    let store = open(dir.path(), 1);
    assert!(store.get_segment("whole").await.unwrap().is_none());
    assert_eq!(store.inner.index.refs(&part_cid).unwrap(), 0);
    assert!(!block_file_exists(&store, &part_cid));
    assert!(!block_file_exists(&store, &whole_cid));
    assert_eq!((store.usage().segments, store.usage().bytes), (0, 0));
}

#[tokio::test]
async fn eviction_is_least_recently_used_and_forgets_the_memory_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 2500);
    let (a, b, c) = (bytes(1, 1000), bytes(2, 1000), bytes(3, 1000));
    put(&store, "a", &a).await;
    put(&store, "b", &b).await;
    // Reading `a` makes `b` the least recently used.
    assert_eq!(store.get_segment("a").await.unwrap().unwrap().bytes, a);
    put(&store, "c", &c).await;
    // `b` was in the memory cache too: it must not be served from there.
    assert!(store.get_segment("b").await.unwrap().is_none());
    assert!(store.get_segment("a").await.unwrap().is_some());
    assert!(store.get_segment("c").await.unwrap().is_some());
    assert_eq!(store.usage().bytes, 2000);
}

#[tokio::test]
async fn access_order_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (bytes(1, 1000), bytes(2, 1000), bytes(3, 1000));
    {
        let store = open(dir.path(), u64::MAX);
        put(&store, "a", &a).await;
        put(&store, "b", &b).await;
        store.get_segment("a").await.unwrap().unwrap();
        store.flush().unwrap();
    }
    let store = open(dir.path(), 2500);
    put(&store, "c", &c).await;
    assert!(store.get_segment("b").await.unwrap().is_none());
    assert!(store.get_segment("a").await.unwrap().is_some());
}

#[tokio::test]
async fn serving_a_root_block_to_a_peer_counts_as_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 2500);
    let (a, b, c) = (bytes(1, 1000), bytes(2, 1000), bytes(3, 1000));
    let a_cid = put(&store, "a", &a).await;
    put(&store, "b", &b).await;
    let got = store
        .get_block(&cid::Cid::try_from(a_cid.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(got.unwrap(), a);
    put(&store, "c", &c).await;
    assert!(store.get_segment("b").await.unwrap().is_none());
    assert!(store.get_segment("a").await.unwrap().is_some());
}

#[tokio::test]
async fn pinned_objects_stay_over_the_quota_and_unpinning_makes_them_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1500);
    let (a, b, c) = (bytes(1, 1000), bytes(2, 1000), bytes(3, 1000));
    store
        .put_video("v".into(), "http://127.0.0.1/v.m3u8".into())
        .await
        .unwrap();
    for (key, data) in [("a", &a), ("c", &c)] {
        // Pinned in the write's own transaction.
        let _pending = store.expect_pin(key, "v");
        put(&store, key, data).await;
    }
    // Pins alone exceed the quota: kept.
    assert_eq!(store.usage().bytes, 2000);
    let usage = store.pin_usage("v".into()).await.unwrap();
    assert_eq!((usage.objects, usage.bytes), (2, 2000));
    // Unpinned content has no room beside them.
    put(&store, "b", &b).await;
    assert!(store.get_segment("b").await.unwrap().is_none());
    assert_eq!(store.usage().bytes, 2000);

    assert!(store.unpin("v".into()).await.unwrap());
    assert!(store.videos().await.unwrap().is_empty());
    // Now cache: the least recently used goes until under the quota.
    assert!(store.get_segment("a").await.unwrap().is_none());
    assert_eq!(store.get_segment("c").await.unwrap().unwrap().bytes, c);
    assert_eq!(store.usage().bytes, 1000);
}

#[tokio::test]
async fn a_key_given_new_bytes_drops_the_object_it_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), u64::MAX);
    let (old, new) = (bytes(1, 1000), bytes(2, 1200));
    let old_cid = put(&store, "map", &old).await;
    put(&store, "map", &new).await;
    assert_eq!(store.get_segment("map").await.unwrap().unwrap().bytes, new);
    assert_eq!((store.usage().segments, store.usage().bytes), (1, 1200));
    assert!(!block_file_exists(&store, &old_cid));
}

#[tokio::test]
async fn hot_blocks_are_served_from_memory_and_go_with_their_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), u64::MAX);
    let data = bytes(9, CHUNK + 500);
    put(&store, "seg", &data).await;
    let dag = unixfs::import(&data);
    let leaf = dag.blocks[0].cid;
    // Every block of it is held, and the usage says so (64 bytes an entry
    // for its key and bookkeeping).
    let held: u64 = dag.blocks.iter().map(|b| b.data.len() as u64 + 64).sum();
    assert_eq!(store.usage().block_cache_bytes, held);
    // Written just now: in memory, so a damaged file is not read for it.
    let path = store.inner.blocks.path_of(&leaf);
    std::fs::write(&path, b"damaged on disk").unwrap();
    assert_eq!(
        store.get_block(&leaf).await.unwrap(),
        Some(dag.blocks[0].data.clone())
    );
    // Out of memory, the disk is read and checked again: a damaged block is
    // not served, and its file is dropped.
    store.inner.hot_blocks.clear();
    assert_eq!(store.usage().block_cache_bytes, 0);
    assert_eq!(store.get_block(&leaf).await.unwrap(), None);
    assert!(!path.exists());
    // An evicted object's blocks leave memory with their files.
    let other = bytes(3, 800);
    let cid = cid::Cid::try_from(put(&store, "other", &other).await.as_str()).unwrap();
    assert!(store.inner.hot_blocks.get(&cid).is_some());
    store
        .inner
        .locked(|inner| inner.remove(&cid.to_string()))
        .unwrap();
    assert!(store.inner.hot_blocks.get(&cid).is_none());
    assert_eq!(store.get_block(&cid).await.unwrap(), None);
}

/// The files behind `for_player`'s answer, read back in order.
fn read_spans(f: &gateway::StoredFiles) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut out = Vec::new();
    for span in &f.spans {
        let mut buf = vec![0u8; span.len as usize];
        span.file.read_exact_at(&mut buf, 0).unwrap();
        out.extend_from_slice(&buf);
    }
    out
}

#[tokio::test]
async fn large_segments_go_to_players_as_checked_files_and_small_ones_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), u64::MAX);
    let small = bytes(3, 1000);
    let large = bytes(4, 2 * CHUNK + 77);
    put(&store, "small", &small).await;
    let root = put(&store, "large", &large).await;
    match store.for_player("small").await.unwrap() {
        Some(super::ForPlayer::Memory(s)) => assert_eq!(s.bytes, small),
        _ => panic!("a small segment not from memory"),
    }
    let Some(super::ForPlayer::Files(f)) = store.for_player("large").await.unwrap() else {
        panic!("a large segment not as files");
    };
    assert_eq!(f.cid, root);
    assert_eq!(f.spans.len(), 3);
    assert_eq!(read_spans(&f), large);
    drop(f);

    // A leaf changed in place is caught: dropped, and the segment gone.
    let leaf = unixfs::import(&large).blocks[1].cid;
    let path = store.inner.blocks.path_of(&leaf);
    let mut data = std::fs::read(&path).unwrap();
    data[10] ^= 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &data))
        .unwrap();
    assert!(store.for_player("large").await.unwrap().is_none());
    assert!(!path.exists(), "the damaged block file stays");
    assert!(store.for_player("small").await.unwrap().is_some());
}

#[tokio::test]
async fn the_index_knows_its_keys_across_puts_evictions_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (bytes(1, 1000), bytes(2, 1000));
    {
        let store = open(dir.path(), u64::MAX);
        assert!(!store.inner.index.may_name("a"));
        assert!(store.for_player("a").await.unwrap().is_none());
        put(&store, "a", &a).await;
        put(&store, "b", &b).await;
        assert!(store.inner.index.may_name("a") && store.inner.index.may_name("b"));
        assert!(store.for_player("b").await.unwrap().is_some());
        store.flush().unwrap();
    }
    // Reopened with room for one: `a`, the least recently used, goes on open.
    let store = open(dir.path(), 1500);
    assert!(!store.inner.index.may_name("a"), "evicted, so unnamed");
    assert!(store.inner.index.may_name("b"), "rebuilt from the index");
    assert!(store.for_player("a").await.unwrap().is_none());
    match store.for_player("b").await.unwrap() {
        Some(super::ForPlayer::Memory(s)) => assert_eq!(s.bytes, b),
        _ => panic!("`b` is stored"),
    }
    // Read from disk for a player, it is held in memory now.
    assert!(store.usage().memory_cache_bytes >= b.len() as u64);
}
