//! The binary commands p2p-media-loader peers exchange on their data
//! channel (`shared/P2PML.md` §5; `p2p/commands/` of core 2.2.2 and 2.3.1,
//! which are identical).
//!
//! A message is a command frame iff it starts with `cstr`/`dstr` and ends
//! with `cend`/`dend`; anything else is raw segment data. A frame holds a
//! command code and named fields: sign-magnitude big-endian ints, and
//! "similar int arrays" that group ids by their 256-aligned block.
//!
//! Two bugs of the library's serializer shape what we send: a group's
//! member count and the group count are stored in one byte, so a group of
//! 256 ids (a whole block) or 256 groups decode as garbage and the receiver
//! drops the whole announcement. Its decoder, though, reads groups one after
//! another without merging them, so a whole block can be sent as two groups
//! of the same block (255 + 1) and arrives complete: [`Command::announcement`]
//! does that and only drops ids past the 255-group budget.

use super::fields::{MAX_GROUPS, decode, serialize};

/// The library's default `webRtcMaxMessageSize`, also the data chunk size
/// it uses when uploading.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 65535;

/// The largest command payload a [`Reassembler`] holds: twice the largest
/// announcement list (255 groups of a 16-byte int and 255 ids) with room
/// to spare; a peer that never sends the final part costs at most this.
pub const MAX_COMMAND_SIZE: usize = 256 * 1024;

/// The largest id, size or offset accepted: JavaScript numbers hold
/// integers exactly only up to 2^53 − 1, so no library peer sends more.
pub const MAX_VALUE: u64 = (1 << 53) - 1;

const CSTR: &[u8; 4] = b"cstr";
const DSTR: &[u8; 4] = b"dstr";
const CEND: &[u8; 4] = b"cend";
const DEND: &[u8; 4] = b"dend";

/// One peer command. Ids are the segment ids of the stream's swarm
/// (`shared/P2PML.md` §6); `request_id` is the requester's choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Code 0: the sender's full set, replacing the previous one. `loaded`
    /// can be requested; `loading` are being fetched over HTTP.
    Announcement {
        /// Field `l`.
        loaded: Vec<u64>,
        /// Field `p`.
        loading: Vec<u64>,
    },
    /// Code 1: send segment `id` from byte `offset` (0: from the start).
    Request {
        /// Field `i`.
        id: u64,
        /// Field `r`.
        request_id: u64,
        /// Field `b`, omitted when 0.
        offset: u64,
    },
    /// Code 2: `size` bytes of segment `id` follow as raw data messages.
    Data {
        /// Field `i`.
        id: u64,
        /// Field `s`.
        size: u64,
        /// Field `r`.
        request_id: u64,
    },
    /// Code 3: all the bytes announced by [`Command::Data`] were sent.
    Completed {
        /// Field `i`.
        id: u64,
        /// Field `r`.
        request_id: u64,
    },
    /// Code 4: the sender does not have segment `id`.
    Absent {
        /// Field `i`.
        id: u64,
        /// Field `r`.
        request_id: u64,
    },
    /// Code 5: stop sending segment `id`.
    Cancel {
        /// Field `i`.
        id: u64,
        /// Field `r`.
        request_id: u64,
    },
}

/// Why a received message is not a command we accept. The command is lost;
/// the connection can go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A frame with no command code.
    #[error("empty command frame")]
    Empty,
    /// A command code other than 0-5.
    #[error("unknown command code {0}")]
    UnknownCommand(u8),
    /// A field name this command does not have.
    #[error("command {command} has no field {:?}", char::from(*.field))]
    UnexpectedField {
        /// The command code.
        command: u8,
        /// The field name byte.
        field: u8,
    },
    /// A field given twice.
    #[error("field {:?} given twice", char::from(*.0))]
    DuplicateField(u8),
    /// A required field left out.
    #[error("field {:?} missing", char::from(*.0))]
    MissingField(u8),
    /// A value whose type is unknown or not the field's.
    #[error("field {:?} has value type {type_code}", char::from(*.field))]
    WrongType {
        /// The field name byte.
        field: u8,
        /// The type nibble found.
        type_code: u8,
    },
    /// The frame ends inside a field.
    #[error("command truncated")]
    Truncated,
    /// A negative int (ids, sizes and offsets are not).
    #[error("negative value")]
    Negative,
    /// An int above [`MAX_VALUE`].
    #[error("value above 2^53 - 1")]
    TooLarge,
    /// A `dstr` continuation with no command being joined.
    #[error("command continuation without a first part")]
    OrphanPart,
    /// A split command growing past [`MAX_COMMAND_SIZE`].
    #[error("split command larger than {MAX_COMMAND_SIZE} bytes")]
    TooLong,
}

impl Command {
    /// The command code on the wire.
    pub fn code(&self) -> u8 {
        match self {
            Command::Announcement { .. } => 0,
            Command::Request { .. } => 1,
            Command::Data { .. } => 2,
            Command::Completed { .. } => 3,
            Command::Absent { .. } => 4,
            Command::Cancel { .. } => 5,
        }
    }

    /// An announcement of the full sets `loaded` and `loading` that a
    /// library peer decodes whole; its lists are exactly the ids announced,
    /// sorted and without duplicates.
    ///
    /// Left out, each list on its own: ids above [`MAX_VALUE`] (no library
    /// peer can hold them), and whatever does not fit in 255 groups, taking
    /// blocks from the lowest id up. A block costs one group, or two when
    /// all its 256 ids are held; when one group is left, a whole block goes
    /// out without its highest id. So the ids left out are always the
    /// highest ones, and a contiguous run (a VOD, a live window) loses
    /// nothing up to 32 767 ids from a block boundary.
    pub fn announcement(
        loaded: impl IntoIterator<Item = u64>,
        loading: impl IntoIterator<Item = u64>,
    ) -> Command {
        Command::Announcement {
            loaded: announceable(loaded),
            loading: announceable(loading),
        }
    }
}

fn announceable(ids: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut ids: Vec<u64> = ids.into_iter().filter(|&id| id <= MAX_VALUE).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::with_capacity(ids.len());
    let mut groups_left = MAX_GROUPS;
    for block in ids.chunk_by(|a, b| a >> 8 == b >> 8) {
        if groups_left == 0 {
            break;
        }
        let take = if block.len() > 255 && groups_left == 1 {
            255
        } else {
            block.len()
        };
        groups_left -= take.div_ceil(255);
        out.extend_from_slice(&block[..take]);
    }
    out
}

/// Whether the library would take this data-channel message for a command
/// frame (`isCommandChunk`).
pub fn is_frame_like(chunk: &[u8]) -> bool {
    chunk.len() >= 8 && {
        let (head, tail) = (&chunk[..4], &chunk[chunk.len() - 4..]);
        (head == CSTR || head == DSTR) && (tail == CEND || tail == DEND)
    }
}

/// Splits segment bytes into data messages of at most `max_message_size`
/// bytes (at least 1), none of which looks like a command frame: such a
/// chunk ends one byte early, which leaves it ending in `n`, not `d`.
pub fn data_chunks(data: &[u8], max_message_size: usize) -> impl Iterator<Item = &[u8]> {
    let max = max_message_size.max(1);
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut n = rest.len().min(max);
        if is_frame_like(&rest[..n]) {
            n -= 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

fn frame(head: &[u8; 4], part: &[u8], tail: &[u8; 4]) -> Vec<u8> {
    [&head[..], part, &tail[..]].concat()
}

/// The data-channel messages carrying `cmd`, split exactly as the library's
/// `BinaryCommandCreator` splits for `max_message_size` (at least 1): one
/// `cstr…cend` frame if it fits, else N equal parts `cstr…dend`,
/// `dstr…dend`…, `dstr…cend`. As in the library, a part can exceed the
/// maximum by up to its 8 framing bytes when the payload needs more than
/// about max/8 parts, which real commands at real maxima never do. Values
/// above [`MAX_VALUE`] are encoded as given, an id list past 255 groups is
/// cut there: build announcements with [`Command::announcement`].
pub fn encode(cmd: &Command, max_message_size: usize) -> Vec<Vec<u8>> {
    let max = max_message_size.max(1);
    let payload = serialize(cmd);
    let len = payload.len();
    if len + 8 <= max {
        return vec![frame(CSTR, &payload, CEND)];
    }
    let mut parts = len.div_ceil(max);
    if len.div_ceil(parts) + 8 > max {
        parts += 1;
    }
    let part_len = len.div_ceil(parts);
    (0..parts)
        .map(|i| {
            let part = &payload[(i * part_len).min(len)..((i + 1) * part_len).min(len)];
            let head = if i == 0 { CSTR } else { DSTR };
            let tail = if i == parts - 1 { CEND } else { DEND };
            frame(head, part, tail)
        })
        .collect()
}

/// What one received data-channel message was.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A whole command (from one frame or the last part of a split one).
    Command(Command),
    /// Segment bytes: the message itself.
    Data(&'a [u8]),
    /// A part of a split command; more parts must follow.
    Pending,
}

/// Sorts the messages of one data channel into commands and segment data,
/// joining split commands. Holds at most [`MAX_COMMAND_SIZE`] bytes.
#[derive(Debug, Default)]
pub struct Reassembler {
    parts: Vec<u8>,
    joining: bool,
}

impl Reassembler {
    /// A reassembler with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next message. After an error nothing is pending. A `cstr`
    /// part while joining abandons the incomplete command and starts anew
    /// (the library would drop both); data messages in between do not
    /// interrupt a split command.
    pub fn push<'a>(&mut self, msg: &'a [u8]) -> Result<Message<'a>, CommandError> {
        if !is_frame_like(msg) {
            return Ok(Message::Data(msg));
        }
        let body = &msg[4..msg.len() - 4];
        let first = &msg[..4] == CSTR;
        let last = &msg[msg.len() - 4..] == CEND;
        if first {
            self.reset();
            if last {
                return decode(body).map(Message::Command);
            }
            self.joining = true;
        } else if !self.joining {
            return Err(CommandError::OrphanPart);
        }
        if self.parts.len() + body.len() > MAX_COMMAND_SIZE {
            self.reset();
            return Err(CommandError::TooLong);
        }
        self.parts.extend_from_slice(body);
        if !last {
            return Ok(Message::Pending);
        }
        let parts = std::mem::take(&mut self.parts);
        self.reset();
        decode(&parts).map(Message::Command)
    }

    /// Whether a split command is being joined.
    pub fn is_joining(&self) -> bool {
        self.joining
    }

    fn reset(&mut self) {
        self.parts = Vec::new();
        self.joining = false;
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
