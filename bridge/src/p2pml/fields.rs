//! Command payloads: the code byte and the named fields of
//! `binary-serialization.ts` (sign-magnitude ints, similar int arrays).

use super::command::{Command, CommandError, MAX_VALUE};

/// The most groups one id list can have (the count is one byte, 0 is 256).
pub(super) const MAX_GROUPS: usize = 255;

const TYPE_INT: u8 = 0;
const TYPE_INT_ARRAY: u8 = 1;

pub(super) fn push_int(out: &mut Vec<u8>, v: u64) {
    // The library's length: bits of the magnitude plus a sign bit, in bytes.
    let bits = (64 - v.leading_zeros()).max(1) as usize;
    let len = (bits + 8) / 8;
    out.push((TYPE_INT << 4) | len as u8);
    out.extend_from_slice(&u128::from(v).to_be_bytes()[16 - len..]);
}

pub(super) fn push_int_array(out: &mut Vec<u8>, ids: &[u64]) {
    // Groups by 256-aligned block in order of first appearance, as the
    // library does, but never more than 255 members to a group.
    let mut blocks: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for &id in ids {
        let high = id & !0xff;
        let i = *index.entry(high).or_insert_with(|| {
            blocks.push((high, Vec::new()));
            blocks.len() - 1
        });
        blocks[i].1.push(id as u8);
    }
    let groups: Vec<(u64, &[u8])> = blocks
        .iter()
        .flat_map(|(high, low)| low.chunks(255).map(move |c| (*high, c)))
        .take(MAX_GROUPS)
        .collect();
    out.push(TYPE_INT_ARRAY << 4);
    out.push(groups.len() as u8);
    for (high, low) in groups {
        push_int(out, high | low.len() as u64);
        out.extend_from_slice(low);
    }
}

/// The command's payload: code byte and fields in the library's order.
pub(super) fn serialize(cmd: &Command) -> Vec<u8> {
    let mut out = vec![cmd.code()];
    fn int(out: &mut Vec<u8>, name: u8, v: u64) {
        out.push(name);
        push_int(out, v);
    }
    match cmd {
        Command::Announcement { loaded, loading } => {
            for (name, ids) in [(b'l', loaded), (b'p', loading)] {
                if !ids.is_empty() {
                    out.push(name);
                    push_int_array(&mut out, ids);
                }
            }
        }
        Command::Request {
            id,
            request_id,
            offset,
        } => {
            int(&mut out, b'i', *id);
            int(&mut out, b'r', *request_id);
            if *offset > 0 {
                int(&mut out, b'b', *offset);
            }
        }
        Command::Data {
            id,
            size,
            request_id,
        } => {
            int(&mut out, b'i', *id);
            int(&mut out, b's', *size);
            int(&mut out, b'r', *request_id);
        }
        Command::Completed { id, request_id }
        | Command::Absent { id, request_id }
        | Command::Cancel { id, request_id } => {
            int(&mut out, b'i', *id);
            int(&mut out, b'r', *request_id);
        }
    }
    out
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CommandError> {
        let v = *self.b.get(self.at).ok_or(CommandError::Truncated)?;
        self.at += 1;
        Ok(v)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], CommandError> {
        let end = self.at.checked_add(n).ok_or(CommandError::Truncated)?;
        let v = self.b.get(self.at..end).ok_or(CommandError::Truncated)?;
        self.at = end;
        Ok(v)
    }

    /// An int whose type byte is next. Non-minimal lengths and a zero
    /// length (which the library decodes as 0) are accepted.
    fn int(&mut self, field: u8) -> Result<u64, CommandError> {
        let head = self.byte()?;
        if head >> 4 != TYPE_INT {
            return Err(CommandError::WrongType {
                field,
                type_code: head >> 4,
            });
        }
        let bytes = self.bytes(usize::from(head & 0x0f))?;
        let Some((&first, rest)) = bytes.split_first() else {
            return Ok(0);
        };
        let magnitude = rest
            .iter()
            .fold(u128::from(first & 0x7f), |m, &b| (m << 8) | u128::from(b));
        if first & 0x80 != 0 && magnitude != 0 {
            return Err(CommandError::Negative);
        }
        u64::try_from(magnitude)
            .ok()
            .filter(|&v| v <= MAX_VALUE)
            .ok_or(CommandError::TooLarge)
    }

    fn int_array(&mut self, field: u8) -> Result<Vec<u64>, CommandError> {
        let head = self.byte()?;
        if head >> 4 != TYPE_INT_ARRAY {
            return Err(CommandError::WrongType {
                field,
                type_code: head >> 4,
            });
        }
        let groups = self.byte()?;
        let mut ids = Vec::new();
        for _ in 0..groups {
            let header = self.int(field)?;
            let high = header & !0xff;
            let low = self.bytes((header & 0xff) as usize)?;
            ids.extend(low.iter().map(|&b| high | u64::from(b)));
        }
        Ok(ids)
    }
}

enum Value {
    Int(u64),
    Ids(Vec<u64>),
}

/// Decodes an unframed command payload, strictly: every field known to the
/// command, well-typed, once, and the required ones present.
pub(super) fn decode(payload: &[u8]) -> Result<Command, CommandError> {
    let (&code, _) = payload.split_first().ok_or(CommandError::Empty)?;
    let fields: &[u8] = match code {
        0 => b"lp",
        1 => b"irb",
        2 => b"isr",
        3..=5 => b"ir",
        _ => return Err(CommandError::UnknownCommand(code)),
    };
    let mut values: [Option<Value>; 3] = [None, None, None];
    let mut r = Reader { b: payload, at: 1 };
    while r.at < payload.len() {
        let name = r.byte()?;
        let slot = fields
            .iter()
            .position(|&f| f == name)
            .ok_or(CommandError::UnexpectedField {
                command: code,
                field: name,
            })?;
        let type_code = *payload.get(r.at).ok_or(CommandError::Truncated)? >> 4;
        // Type 2 (string) exists in the serializer; no command has one.
        let value = match (code, type_code) {
            (0, TYPE_INT_ARRAY) => Value::Ids(r.int_array(name)?),
            (1..=5, TYPE_INT) => Value::Int(r.int(name)?),
            _ => {
                return Err(CommandError::WrongType {
                    field: name,
                    type_code,
                });
            }
        };
        if values[slot].replace(value).is_some() {
            return Err(CommandError::DuplicateField(name));
        }
    }
    let [v0, v1, v2] = values;
    let int = |v: Option<Value>, slot: usize| match v {
        Some(Value::Int(x)) => Ok(x),
        _ => Err(CommandError::MissingField(fields[slot])),
    };
    let ids = |v: Option<Value>| match v {
        Some(Value::Ids(x)) => x,
        _ => Vec::new(),
    };
    Ok(match code {
        0 => Command::Announcement {
            loaded: ids(v0),
            loading: ids(v1),
        },
        1 => Command::Request {
            id: int(v0, 0)?,
            request_id: int(v1, 1)?,
            offset: int(v2, 2).unwrap_or(0),
        },
        2 => Command::Data {
            id: int(v0, 0)?,
            size: int(v1, 1)?,
            request_id: int(v2, 2)?,
        },
        3 => Command::Completed {
            id: int(v0, 0)?,
            request_id: int(v1, 1)?,
        },
        4 => Command::Absent {
            id: int(v0, 0)?,
            request_id: int(v1, 1)?,
        },
        _ => Command::Cancel {
            id: int(v0, 0)?,
            request_id: int(v1, 1)?,
        },
    })
}
