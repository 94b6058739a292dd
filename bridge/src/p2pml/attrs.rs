//! hls.js attribute lists (`utils/attr-list.ts`) and `EXT-X-DEFINE`
//! variables (`utils/variable-substitution.ts`): the exact values hls.js
//! reads from a tag, which are the strings p2pml hashes.

use std::collections::HashMap;

use url::Url;

use super::js;
use super::stream::StreamError;

/// `EXT-X-DEFINE` variables (`utils/variable-substitution.ts`).
pub(super) struct Vars {
    list: Option<HashMap<String, String>>,
    has_refs: bool,
}

/// Finds `{$name}` references (`/\{\$([a-zA-Z0-9-_]+)\}/g`): byte ranges of
/// the whole reference and of the name.
fn variable_refs(s: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 1 < b.len() {
            if b[i] == b'{' && b[i + 1] == b'$' {
                let name_len = b[i + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
                    .count();
                let close = i + 2 + name_len;
                if name_len > 0 && b.get(close) == Some(&b'}') {
                    let found = (i, close + 1, &s[i + 2..close]);
                    i = close + 1;
                    return Some(found);
                }
            }
            i += 1;
        }
        None
    })
}

fn has_variable_refs(text: &str) -> bool {
    variable_refs(text).next().is_some()
}

impl Vars {
    /// No variables yet; `text` is the whole playlist (hls.js checks it
    /// for references up front).
    pub(super) fn new(text: &str) -> Vars {
        Vars {
            list: None,
            has_refs: has_variable_refs(text),
        }
    }

    /// `substituteVariables`; an unknown name is an error when `fatal`,
    /// else left as written.
    pub(super) fn substitute(&self, value: &str, fatal: bool) -> Result<String, StreamError> {
        if self.list.is_none() && !self.has_refs {
            return Ok(value.to_owned());
        }
        let mut out = String::with_capacity(value.len());
        let mut last = 0;
        for (start, end, name) in variable_refs(value) {
            out.push_str(&value[last..start]);
            match self.list.as_ref().and_then(|l| l.get(name)) {
                Some(v) => out.push_str(v),
                None if fatal => return Err(StreamError::UndefinedVariable(name.to_owned())),
                None => out.push_str(&value[start..end]),
            }
            last = end;
        }
        out.push_str(&value[last..]);
        Ok(out)
    }

    /// `addVariableDefinition`.
    pub(super) fn define(&mut self, attrs: &str, base: &Url) -> Result<(), StreamError> {
        let attrs = attr_list(attrs, self, true)?;
        let (name, value) = match attrs.get("QUERYPARAM") {
            Some(param) => {
                let value = base
                    .query_pairs()
                    .find(|(k, _)| k == param)
                    .map(|(_, v)| v.into_owned())
                    .ok_or_else(|| StreamError::MissingQueryParam(param.clone()))?;
                (param.clone(), value)
            }
            // A missing NAME is JavaScript's `undefined`, used as a key.
            None => (
                attrs
                    .get("NAME")
                    .cloned()
                    .unwrap_or_else(|| "undefined".into()),
                attrs.get("VALUE").cloned().unwrap_or_default(),
            ),
        };
        let list = self.list.get_or_insert_with(HashMap::new);
        if list.contains_key(&name) {
            return Err(StreamError::DuplicateVariable(name));
        }
        list.insert(name, value);
        Ok(())
    }
}

/// hls.js `AttrList.parseAttrList`: `/(.+?)=(".*?"|.*?)(?:,|$)/g` applied
/// to `input`, names trimmed, quotes stripped, later duplicates winning;
/// quoted values (and unquoted hex sequences) get variable substitution.
pub(super) fn attr_list(
    input: &str,
    vars: &Vars,
    fatal: bool,
) -> Result<HashMap<String, String>, StreamError> {
    let b = input.as_bytes();
    let n = b.len();
    // Next-position tables keep this linear: `.` stops at line terminators
    // (U+2028/U+2029 can be inside an EXT-X-STREAM-INF line), `$` is the
    // end of the input only.
    const NONE: usize = usize::MAX;
    let mut next_eq = vec![NONE; n + 2];
    let mut next_comma = vec![n; n + 2];
    let mut next_close = vec![NONE; n + 2];
    let mut next_term = vec![NONE; n + 2];
    for i in (0..n).rev() {
        next_eq[i] = if b[i] == b'=' { i } else { next_eq[i + 1] };
        next_comma[i] = if b[i] == b',' { i } else { next_comma[i + 1] };
        let closes = b[i] == b'"' && (i + 1 == n || b[i + 1] == b',');
        next_close[i] = if closes { i } else { next_close[i + 1] };
        let term = matches!(b[i], b'\n' | b'\r')
            || (b[i] == 0xe2
                && b.get(i + 1) == Some(&0x80)
                && matches!(b.get(i + 2), Some(0xa8 | 0xa9)));
        next_term[i] = if term { i } else { next_term[i + 1] };
    }
    // (value start, value end, where the next match starts)
    let value_at = |eq: usize| -> Option<(usize, usize, usize)> {
        let v = eq + 1;
        let term = next_term[v];
        if b.get(v) == Some(&b'"') {
            let close = next_close[v + 1];
            if close != NONE && close < term {
                return Some((v, close + 1, (close + 2).min(n)));
            }
        }
        let comma = next_comma[v];
        (comma < term || term == NONE).then_some((v, comma, (comma + 1).min(n)))
    };
    let mut attrs = HashMap::new();
    let mut p = 0;
    while p < n {
        let limit = next_term[p];
        let mut eq = next_eq[p + 1];
        let mut found = None;
        while eq != NONE && (limit == NONE || eq < limit) {
            if let Some(m) = value_at(eq) {
                found = Some((eq, m));
                break;
            }
            eq = next_eq[eq + 1];
        }
        let Some((eq, (vs, ve, next))) = found else {
            if limit == NONE {
                break;
            }
            p = limit + input[limit..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let name = js::trim(&input[p..eq]);
        let raw = &input[vs..ve];
        let quoted = raw.starts_with('"') && raw.ends_with('"');
        let value = if quoted {
            raw.get(1..raw.len() - 1).unwrap_or("")
        } else {
            raw
        };
        let hex_sequence = matches!(name, "IV" | "SCTE35-CMD" | "SCTE35-IN" | "SCTE35-OUT");
        let value = if quoted || hex_sequence {
            vars.substitute(value, fatal)?
        } else {
            value.to_owned()
        };
        attrs.insert(name.to_owned(), value);
        p = next;
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(s: &str) -> HashMap<String, String> {
        let vars = Vars::new("");
        attr_list(s, &vars, true).unwrap_or_default()
    }

    #[test]
    fn attribute_list_like_hls_js() {
        let a = attrs(r#"BANDWIDTH=1280000,CODECS="avc1.4d401e,mp4a.40.2",FRAME-RATE=30.000"#);
        assert_eq!(a["BANDWIDTH"], "1280000");
        assert_eq!(a["CODECS"], "avc1.4d401e,mp4a.40.2");
        assert_eq!(a["FRAME-RATE"], "30.000");
        // A quote not followed by a comma does not close the value: the
        // quoted reading extends to a later `",` if there is one, else the
        // unquoted reading runs to the next comma and keeps the quotes.
        let a = attrs(r#"NAME="x"y,X-A="a=b,c", B =1,B=2,"#);
        assert_eq!(a["NAME"], r#"x"y,X-A="a=b,c"#);
        assert_eq!(a.get("X-A"), None);
        assert_eq!(attrs(r#"NAME="x"y,X-A=1"#)["NAME"], r#""x"y"#);
        assert_eq!(a["B"], "2");
        let a = attrs("A=\"q\",LANGUAGE=\"\",C=");
        assert_eq!(
            (a["A"].as_str(), a["LANGUAGE"].as_str(), a["C"].as_str()),
            ("q", "", "")
        );
        // U+2028 ends `.`: the name cannot cross it, the search restarts.
        let a = attrs("A=1\u{2028}x,B=2");
        assert_eq!(a.get("A"), None);
        assert_eq!(a["x,B"], "2");
    }
}
