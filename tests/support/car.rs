//! CARv1 bodies read by the layout the CAR specification gives,
//! independently of the gateway's writer.

use std::io::Cursor;

use cid::Cid;

/// A CARv1's roots and blocks.
pub fn parse(body: &[u8]) -> (Vec<Cid>, Vec<(Cid, Vec<u8>)>) {
    let mut at = Cursor::new(body);
    let len = varint(&mut at) as usize;
    let start = at.position() as usize;
    let header = &body[start..start + len];
    at.set_position((start + len) as u64);
    // One root: tag 42 (0xd8 0x2a), a byte string, 0x00, the CID.
    let tag = header
        .windows(2)
        .position(|w| w == [0xd8, 0x2a])
        .expect("a CID in the header");
    let (skip, n) = match header[tag + 2] {
        b @ 0x40..=0x57 => (1, (b - 0x40) as usize),
        0x58 => (2, header[tag + 3] as usize),
        b => panic!("unexpected CBOR byte {b:#x}"),
    };
    let cid_bytes = &header[tag + 2 + skip..tag + 2 + skip + n];
    assert_eq!(cid_bytes[0], 0x00);
    let root = Cid::try_from(&cid_bytes[1..]).unwrap();
    assert!(header.ends_with(b"version\x01"));
    let mut blocks = Vec::new();
    while (at.position() as usize) < body.len() {
        let len = varint(&mut at) as usize;
        let start = at.position() as usize;
        let cid = Cid::read_bytes(&mut at).unwrap();
        let data_at = at.position() as usize;
        blocks.push((cid, body[data_at..start + len].to_vec()));
        at.set_position((start + len) as u64);
    }
    (vec![root], blocks)
}

fn varint(at: &mut Cursor<&[u8]>) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = at.get_ref()[at.position() as usize];
        at.set_position(at.position() + 1);
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
    }
    v
}

/// The raw blocks of a CARv1, concatenated in order: with duplicates sent,
/// a UnixFS file's bytes.
pub fn leaves(body: &[u8]) -> Vec<u8> {
    parse(body)
        .1
        .into_iter()
        .filter(|(cid, _)| cid.codec() == 0x55)
        .flat_map(|(_, data)| data)
        .collect()
}
