//! Segment CIDs equal the IPFS importer's (tests/vectors, made by
//! ipfs-unixfs-importer with DESIGN §2's parameters).

use std::io::Read;
use std::process::Command;

use bytes::Bytes;
use serde::Deserialize;
use swarmseed::store::unixfs;

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    size: u64,
    cid: String,
    root_block_hex: Option<String>,
    #[serde(default)]
    children: Vec<String>,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/cid-vectors.json"
    );
    serde_json::from_slice::<Vectors>(&std::fs::read(path).unwrap())
        .unwrap()
        .vectors
}

/// The vectors' content: byte i is i % 251.
struct Pattern {
    at: u64,
    size: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let cycle: Vec<u8> = (0..251u8).collect();
        let pos = (self.at % 251) as usize;
        let n = buf.len().min((self.size - self.at) as usize).min(251 - pos);
        buf[..n].copy_from_slice(&cycle[pos..pos + n]);
        self.at += n as u64;
        Ok(n)
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn streaming_cids_equal_the_importer_vectors() {
    let vectors = vectors();
    for size in [0, 1, 1 << 20, (1 << 20) + 1, 5 << 20, 175 << 20] {
        assert!(
            vectors.iter().any(|v| v.size == size),
            "vector for {size} bytes is committed"
        );
    }
    for v in &vectors {
        let cid = unixfs::cid_of_reader(Pattern {
            at: 0,
            size: v.size,
        })
        .unwrap();
        assert_eq!(cid.to_string(), v.cid, "{} bytes", v.size);
    }
}

#[test]
fn stored_dags_equal_the_importer_blocks() {
    for v in vectors().iter().filter(|v| v.size <= 175 << 20) {
        let mut data = Vec::with_capacity(v.size as usize);
        Pattern {
            at: 0,
            size: v.size,
        }
        .read_to_end(&mut data)
        .unwrap();
        let dag = unixfs::import(&Bytes::from(data));
        assert_eq!(dag.root.to_string(), v.cid, "{} bytes", v.size);
        let root = dag.blocks.iter().find(|b| b.cid == dag.root).unwrap();
        if let Some(want) = &v.root_block_hex {
            assert_eq!(&hex(&root.data), want, "root block of {} bytes", v.size);
        }
        if !v.children.is_empty() {
            let kids: Vec<String> = unixfs::links(&root.data)
                .unwrap()
                .iter()
                .map(|c| c.to_string())
                .collect();
            assert_eq!(kids, v.children, "children of {} bytes", v.size);
        }
    }
}

#[test]
fn the_cid_command_prints_the_importer_cid() {
    let dir = tempfile::tempdir().unwrap();
    for v in vectors().iter().filter(|v| v.size <= 5 << 20) {
        let file = dir.path().join(format!("f{}", v.size));
        let mut data = Vec::new();
        Pattern {
            at: 0,
            size: v.size,
        }
        .read_to_end(&mut data)
        .unwrap();
        std::fs::write(&file, data).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_swarmseed"))
            .arg("cid")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), v.cid);
    }
}
