//! `Range` request headers (RFC 9110 §14), single ranges only.

/// What to send for a `Range` header against a body of known length.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeReply {
    /// No usable range: send the whole body with 200. Multi-range requests
    /// land here too, which RFC 9110 allows.
    Full,
    /// Send bytes `start..=end` with 206.
    Partial { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, length: u64) -> RangeReply {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeReply::Full;
    };
    if spec.contains(',') {
        return RangeReply::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeReply::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last N bytes.
        return match last.parse::<u64>() {
            Ok(0) | Err(_) => RangeReply::Unsatisfiable,
            Ok(_) if length == 0 => RangeReply::Unsatisfiable,
            Ok(n) => RangeReply::Partial {
                start: length.saturating_sub(n),
                end: length - 1,
            },
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeReply::Full;
    };
    if start >= length {
        return RangeReply::Unsatisfiable;
    }
    let end = if last.is_empty() {
        length - 1
    } else {
        match last.parse::<u64>() {
            Ok(e) if e >= start => e.min(length - 1),
            _ => return RangeReply::Full,
        }
    };
    RangeReply::Partial { start, end }
}

#[cfg(test)]
mod tests {
    use super::RangeReply::*;
    use super::parse;

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 10), Full);
        assert_eq!(parse(Some("bytes=0-4"), 10), Partial { start: 0, end: 4 });
        assert_eq!(parse(Some("bytes=5-"), 10), Partial { start: 5, end: 9 });
        assert_eq!(parse(Some("bytes=5-100"), 10), Partial { start: 5, end: 9 });
        assert_eq!(parse(Some("bytes=-3"), 10), Partial { start: 7, end: 9 });
        assert_eq!(parse(Some("bytes=-30"), 10), Partial { start: 0, end: 9 });
        assert_eq!(parse(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(parse(Some("bytes=4-2"), 10), Full);
        assert_eq!(parse(Some("items=0-1"), 10), Full);
        assert_eq!(parse(Some("bytes=0-"), 0), Unsatisfiable);
    }
}
