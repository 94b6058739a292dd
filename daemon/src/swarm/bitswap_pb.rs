//! Bitswap 1.2.0 messages (the `bitswap.proto` of the Bitswap spec), their
//! framing (a varint length, then the protobuf) and the CID prefix that
//! blocks travel with. Only the fields a server reads or writes are here;
//! prost skips the others.

use cid::Cid;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use prost::Message as _;

use super::wire::{WireError, read_varint, varint};

/// `Wantlist.Entry.wantType`: the peer wants the block itself.
pub const WANT_BLOCK: i32 = 0;
/// `Wantlist.Entry.wantType`: the peer asks whether this node has it.
pub const WANT_HAVE: i32 = 1;
/// `BlockPresence.type`.
pub const HAVE: i32 = 0;
pub const DONT_HAVE: i32 = 1;

/// Largest message read or written: the Bitswap wire limit.
pub const MAX_MESSAGE: u64 = 4 << 20;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    #[prost(message, optional, tag = "1")]
    pub wantlist: Option<Wantlist>,
    #[prost(message, repeated, tag = "3")]
    pub payload: Vec<Block>,
    #[prost(message, repeated, tag = "4")]
    pub block_presences: Vec<BlockPresence>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Wantlist {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
    #[prost(bool, tag = "2")]
    pub full: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// The CID's bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub block: Vec<u8>,
    #[prost(int32, tag = "2")]
    pub priority: i32,
    #[prost(bool, tag = "3")]
    pub cancel: bool,
    #[prost(int32, tag = "4")]
    pub want_type: i32,
    #[prost(bool, tag = "5")]
    pub send_dont_have: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Block {
    #[prost(bytes = "vec", tag = "1")]
    pub prefix: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockPresence {
    #[prost(bytes = "vec", tag = "1")]
    pub cid: Vec<u8>,
    #[prost(int32, tag = "2")]
    pub r#type: i32,
}

/// The CID without its digest (version, codec, hash code, digest length),
/// from which the receiver rebuilds the CID by hashing the data.
pub fn prefix(cid: &Cid) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    varint(cid.version() as u64, &mut out);
    varint(cid.codec(), &mut out);
    varint(cid.hash().code(), &mut out);
    varint(u64::from(cid.hash().size()), &mut out);
    out
}

/// Reads one message; `None` at the end of the stream.
pub async fn read(s: &mut (impl AsyncRead + Unpin)) -> Result<Option<Message>, WireError> {
    let len = match read_varint(s).await {
        Ok(len) => len,
        Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > MAX_MESSAGE {
        return Err(WireError::TooLarge(len));
    }
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await?;
    Message::decode(buf.as_slice())
        .map(Some)
        .map_err(|_| WireError::Malformed)
}

pub async fn write(s: &mut (impl AsyncWrite + Unpin), m: &Message) -> Result<(), WireError> {
    let body = m.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 5);
    varint(body.len() as u64, &mut out);
    out.extend_from_slice(&body);
    s.write_all(&out).await?;
    s.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_sha256_cid_has_the_usual_prefix() {
        let cid: Cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
            .parse()
            .unwrap();
        assert_eq!(prefix(&cid), [0x01, 0x55, 0x12, 0x20]);
    }

    #[tokio::test]
    async fn a_message_survives_its_framing() {
        let m = Message {
            wantlist: Some(Wantlist {
                entries: vec![Entry {
                    block: vec![1, 2, 3],
                    want_type: WANT_HAVE,
                    send_dont_have: true,
                    ..Default::default()
                }],
                full: false,
            }),
            payload: vec![Block {
                prefix: vec![1, 0x55, 0x12, 0x20],
                data: b"hello".to_vec(),
            }],
            block_presences: vec![],
        };
        let mut buf = Vec::new();
        write(&mut futures::io::Cursor::new(&mut buf), &m)
            .await
            .unwrap();
        let mut r = futures::io::Cursor::new(buf);
        assert_eq!(read(&mut r).await.unwrap(), Some(m));
        assert_eq!(read(&mut r).await.unwrap(), None);
    }
}
