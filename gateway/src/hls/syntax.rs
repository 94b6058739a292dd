//! The line rules of RFC 8216 that m3u8-rs does not enforce, checked
//! before it reads a playlist.
//!
//! m3u8-rs reads attribute lists leniently: an attribute name runs to the
//! next `=` and a quoted string to the next `"`, across line ends. So one
//! malformed line can swallow the lines after it, and the same text reads
//! differently once the rewrite has changed those lines: a player would be
//! handed URIs the gateway never minted. A playlist is refused instead when
//! a line holds a control character, when a tag whose attribute list
//! m3u8-rs reads is not a well-formed list on its own line, or when a tag
//! that names a URI could not be read at all (m3u8-rs keeps it verbatim,
//! and the player would fetch what it names from the gateway's path).

use m3u8_rs::{ExtTag, Playlist};

/// Tags whose value m3u8-rs reads as an attribute list.
const ATTRIBUTE_TAGS: [&str; 9] = [
    "#EXT-X-STREAM-INF:",
    "#EXT-X-I-FRAME-STREAM-INF:",
    "#EXT-X-MEDIA:",
    "#EXT-X-SESSION-DATA:",
    "#EXT-X-SESSION-KEY:",
    "#EXT-X-KEY:",
    "#EXT-X-MAP:",
    "#EXT-X-DATERANGE:",
    "#EXT-X-START:",
];

/// Tags that name a URI the rewrite must route or make absolute, as
/// m3u8-rs names an unread tag (without `#EXT-`).
const URI_TAGS: [&str; 7] = [
    "X-STREAM-INF",
    "X-I-FRAME-STREAM-INF",
    "X-MEDIA",
    "X-SESSION-DATA",
    "X-SESSION-KEY",
    "X-KEY",
    "X-MAP",
];

/// Why a playlist's text breaks the line rules.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("line {0} holds a control character")]
    ControlCharacter(usize),
    #[error("line {0}: malformed attribute list")]
    AttributeList(usize),
    #[error("#EXT-{0} cannot be read")]
    UnreadTag(String),
}

/// Checks every line of `body` before it is parsed.
pub fn check_lines(body: &[u8]) -> Result<(), SyntaxError> {
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
            return Err(SyntaxError::ControlCharacter(n));
        }
        if let Some(tag) = ATTRIBUTE_TAGS
            .iter()
            .find(|t| line.starts_with(t.as_bytes()))
            && !is_attribute_list(&line[tag.len()..])
        {
            return Err(SyntaxError::AttributeList(n));
        }
    }
    Ok(())
}

/// `NAME=VALUE(,NAME=VALUE)*`, a value quoted (no `"` inside) or not (no
/// `,` or `"`); spaces before a name and a trailing comma are let pass,
/// as m3u8-rs and players allow them.
fn is_attribute_list(mut rest: &[u8]) -> bool {
    loop {
        while let [b' ', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            return true;
        }
        let Some(eq) = rest.iter().position(|b| *b == b'=') else {
            return false;
        };
        let name = &rest[..eq];
        if name.is_empty() || name.iter().any(|b| matches!(b, b',' | b'"')) {
            return false;
        }
        rest = &rest[eq + 1..];
        let value_end = match rest.first() {
            Some(b'"') => match rest[1..].iter().position(|b| *b == b'"') {
                Some(close) => close + 2,
                None => return false,
            },
            _ => rest.iter().position(|b| *b == b',').unwrap_or(rest.len()),
        };
        let value = &rest[..value_end];
        if value.is_empty() || (value[0] != b'"' && value.contains(&b'"')) {
            return false;
        }
        rest = &rest[value_end..];
        match rest {
            [] => return true,
            [b',', tail @ ..] => rest = tail,
            _ => return false,
        }
    }
}

/// Refuses a parsed playlist that kept a URI-naming tag unread.
pub fn check_parsed(playlist: &Playlist) -> Result<(), SyntaxError> {
    let unread = |tags: &[ExtTag]| -> Result<(), SyntaxError> {
        match tags.iter().find(|t| URI_TAGS.contains(&t.tag.as_str())) {
            Some(t) => Err(SyntaxError::UnreadTag(t.tag.clone())),
            None => Ok(()),
        }
    };
    match playlist {
        Playlist::MasterPlaylist(m) => unread(&m.unknown_tags),
        Playlist::MediaPlaylist(m) => {
            unread(&m.unknown_tags)?;
            m.segments.iter().try_for_each(|s| unread(&s.unknown_tags))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_lists_pass() {
        for list in [
            "BANDWIDTH=800000,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360",
            "URI=\"init.mp4\",BYTERANGE=\"720@0\"",
            "METHOD=NONE",
            " TIME-OFFSET=-3, PRECISE=YES,",
            "",
        ] {
            assert!(is_attribute_list(list.as_bytes()), "{list}");
        }
    }

    #[test]
    fn lists_that_would_swallow_the_next_line_are_refused() {
        for list in [
            "URI=\"init.mp4\",cqabs#g3df",
            "URI=\"unterminated",
            "URI=a\"b",
            "=x",
            "URI=",
            "URI=\"a\"junk",
            "A=\"x\",,B=1",
        ] {
            assert!(!is_attribute_list(list.as_bytes()), "{list}");
        }
        let body =
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\",x\n#EXTINF:2,\na.ts\n";
        assert_eq!(
            check_lines(body.as_bytes()),
            Err(SyntaxError::AttributeList(3))
        );
        assert_eq!(
            check_lines(b"#EXTM3U\n#EXT-X-KEY\0:METHOD=NONE\n"),
            Err(SyntaxError::ControlCharacter(2))
        );
        // Unknown tags and URI lines are free-form; CRLF and tabs are fine.
        assert!(check_lines(b"#EXTM3U\r\n#EXT-X-VENDOR:\"a\r\n#EXTINF:2,\tt\r\na.ts\r\n").is_ok());
    }
}
