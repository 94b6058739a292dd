//! The libp2p WebRTC stream framing: every piece of a stream is a
//! varint-length-prefixed protobuf `Message { optional Flag flag = 1;
//! optional bytes message = 2; }` on the stream's data channel, flags FIN,
//! STOP_SENDING, RESET and FIN_ACK (the libp2p WebRTC spec). A peer may
//! split one frame over several channel messages (go-libp2p writes the
//! length and the body apart) or put several in one, so frames are cut
//! from the bytes as they come.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest channel message either side sends, frame and all.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Payload bytes that fit one message with its framing: a 2-byte length,
/// a tag, up to 3 bytes of field length and a spare flag field.
pub const MAX_PAYLOAD: usize = MAX_MESSAGE - 2 - 1 - 3 - 2;

/// A frame's flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// The sender sends no more.
    Fin,
    /// The sender reads no more.
    StopSending,
    /// The sender aborts the stream.
    Reset,
    /// The sender has taken the other side's FIN.
    FinAck,
}

impl Flag {
    fn code(self) -> u64 {
        match self {
            Flag::Fin => 0,
            Flag::StopSending => 1,
            Flag::Reset => 2,
            Flag::FinAck => 3,
        }
    }

    fn from_code(c: u64) -> Option<Flag> {
        Some(match c {
            0 => Flag::Fin,
            1 => Flag::StopSending,
            2 => Flag::Reset,
            3 => Flag::FinAck,
            _ => return None,
        })
    }
}

/// One decoded frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub flag: Option<Flag>,
    pub data: Option<Bytes>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("frame of {0} bytes, over the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame")]
    Malformed,
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Reads a varint at the start of `b`: (value, bytes used), or `None` when
/// incomplete.
fn get_varint(b: &[u8]) -> Result<Option<(u64, usize)>, FramingError> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    if b.len() >= 10 {
        return Err(FramingError::Malformed);
    }
    Ok(None)
}

/// One channel message carrying `data` (at most [`MAX_PAYLOAD`] bytes)
/// and/or `flag`.
pub fn encode(flag: Option<Flag>, data: &[u8]) -> Bytes {
    let mut body = BytesMut::with_capacity(data.len() + 8);
    if let Some(f) = flag {
        body.put_u8(0x08);
        put_varint(&mut body, f.code());
    }
    if !data.is_empty() || flag.is_none() {
        body.put_u8(0x12);
        put_varint(&mut body, data.len() as u64);
        body.put_slice(data);
    }
    let mut out = BytesMut::with_capacity(body.len() + 3);
    put_varint(&mut out, body.len() as u64);
    out.put_slice(&body);
    out.freeze()
}

fn decode_body(mut b: Bytes) -> Result<Frame, FramingError> {
    let mut frame = Frame::default();
    while b.has_remaining() {
        let (key, n) = get_varint(&b)?.ok_or(FramingError::Malformed)?;
        b.advance(n);
        match (key >> 3, key & 7) {
            (1, 0) => {
                let (v, n) = get_varint(&b)?.ok_or(FramingError::Malformed)?;
                b.advance(n);
                // Unknown flags are left out, as proto2 enums are.
                frame.flag = Flag::from_code(v).or(frame.flag);
            }
            (2, 2) => {
                let (len, n) = get_varint(&b)?.ok_or(FramingError::Malformed)?;
                b.advance(n);
                let len = usize::try_from(len).map_err(|_| FramingError::Malformed)?;
                if len > b.len() {
                    return Err(FramingError::Malformed);
                }
                frame.data = Some(b.split_to(len));
            }
            // Other fields are skipped by their wire type.
            (_, 0) => {
                let (_, n) = get_varint(&b)?.ok_or(FramingError::Malformed)?;
                b.advance(n);
            }
            (_, 2) => {
                let (len, n) = get_varint(&b)?.ok_or(FramingError::Malformed)?;
                b.advance(n);
                let len = usize::try_from(len).map_err(|_| FramingError::Malformed)?;
                if len > b.len() {
                    return Err(FramingError::Malformed);
                }
                b.advance(len);
            }
            _ => return Err(FramingError::Malformed),
        }
    }
    Ok(frame)
}

/// Frames cut from a channel's messages as they arrive.
#[derive(Default)]
pub struct Decoder {
    pending: BytesMut,
}

impl Decoder {
    /// Adds one channel message.
    pub fn push(&mut self, message: &[u8]) -> Result<(), FramingError> {
        if self.pending.len() + message.len() > 4 * MAX_MESSAGE {
            return Err(FramingError::TooLarge(self.pending.len() + message.len()));
        }
        self.pending.extend_from_slice(message);
        Ok(())
    }

    /// The next whole frame, if one is in.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        let Some((len, n)) = get_varint(&self.pending)? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| FramingError::Malformed)?;
        if len > MAX_MESSAGE {
            return Err(FramingError::TooLarge(len));
        }
        if self.pending.len() < n + len {
            return Ok(None);
        }
        self.pending.advance(n);
        let body = self.pending.split_to(len).freeze();
        decode_body(body).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn frames_read_back_whole_split_or_joined() {
        let a = encode(None, b"hello");
        let b = encode(Some(Flag::Fin), b"");
        let c = encode(Some(Flag::FinAck), b"");
        // As js-libp2p and rust-libp2p write them: the flag alone, no data field.
        assert_eq!(&b[..], &[0x02, 0x08, 0x00]);
        assert_eq!(&c[..], &[0x02, 0x08, 0x03]);
        let mut joined = Decoder::default();
        joined
            .push(&[a.clone(), b.clone(), c.clone()].concat())
            .unwrap();
        let frames = all(&mut joined);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].data.as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            (frames[1].flag, frames[2].flag),
            (Some(Flag::Fin), Some(Flag::FinAck))
        );
        // Length and body apart, as go-libp2p sends them.
        let mut split = Decoder::default();
        split.push(&a[..1]).unwrap();
        assert_eq!(split.next_frame().unwrap(), None);
        split.push(&a[1..]).unwrap();
        assert_eq!(all(&mut split)[0].data.as_deref(), Some(&b"hello"[..]));
        // A full-size payload fits one message.
        let big = encode(None, &[7u8; MAX_PAYLOAD]);
        assert!(big.len() <= MAX_MESSAGE, "{}", big.len());
    }

    #[test]
    fn oversized_and_malformed_frames_are_refused() {
        let mut d = Decoder::default();
        d.push(&[0xff, 0xff, 0x03]).unwrap();
        assert!(matches!(d.next_frame(), Err(FramingError::TooLarge(_))));
        let mut d = Decoder::default();
        d.push(&[0x03, 0x12, 0x05, 0x00]).unwrap();
        assert_eq!(d.next_frame(), Err(FramingError::Malformed));
        let mut d = Decoder::default();
        assert!(d.push(&vec![0u8; 5 * MAX_MESSAGE]).is_err());
    }
}
