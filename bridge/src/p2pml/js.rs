//! The few ECMAScript behaviours the swarm-id recipe inherits from hls.js and
//! p2pml: a browser hashes the strings JavaScript makes, so we must make the
//! same ones, including for odd inputs (`parseInt("1e3")`, `Number(" 0x1E ")`,
//! `(1e21).toString()`, slicing by UTF-16 code units).

/// ECMAScript `WhiteSpace` and `LineTerminator`: what `trim()`, `Number()`
/// and `parseInt()` skip. Not Rust's `char::is_whitespace` (which has U+0085
/// and lacks U+FEFF).
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `String.prototype.trim`.
pub(super) fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// The line terminators of ECMAScript regular expressions (what `.` and
/// `^`/`$` in multiline mode stop at).
pub(super) fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// `s.slice(0, n)`: the first `n` UTF-16 code units. A surrogate pair cut in
/// half becomes U+FFFD, which is what `TextEncoder` later makes of it.
pub(super) fn slice_utf16(s: &str, n: usize) -> String {
    let units: Vec<u16> = s.encode_utf16().take(n).collect();
    String::from_utf16_lossy(&units)
}

/// `Array.prototype.sort()` on strings: by UTF-16 code units.
pub(super) fn sort_utf16(v: &mut [String]) {
    v.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
}

/// `Number.prototype.toString()` (radix 10): shortest round-trip digits laid
/// out as ECMAScript `Number::toString` does.
pub(super) fn number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x < 0.0 {
        return format!("-{}", number_to_string(-x));
    }
    // Rust's `{:e}` also prints the shortest digits that round-trip.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{sign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{sign}{}", e.abs())
        }
    }
}

/// `Number.prototype.toString(16)` of an integral number (every `parseInt`
/// result is one); V8 prints large ones exactly.
pub(super) fn integer_to_hex(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x < 0.0 {
        return format!("-{}", integer_to_hex(-x));
    }
    let x = x.trunc();
    if x < 18_446_744_073_709_551_616.0 {
        return format!("{:x}", x as u64);
    }
    // x = mantissa · 2^exp with exp > 0: shifting by 4 bits appends a hex 0.
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1075;
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    format!(
        "{:x}{}",
        u128::from(mantissa) << (exp % 4),
        "0".repeat((exp / 4) as usize)
    )
}

/// The value of digits in a power-of-two radix (`bits` per digit), rounded
/// to the nearest double as ECMAScript requires.
fn pow2_digits_to_f64(digits: &[u32], bits: u32) -> f64 {
    let Some(first) = digits.iter().position(|&d| d != 0) else {
        return 0.0;
    };
    let digits = &digits[first..];
    let lead = bits - (32 - digits[0].leading_zeros());
    let bit_len = digits.len() as u64 * u64::from(bits) - u64::from(lead);
    let mut top: u64 = 0;
    let mut taken = 0u64;
    let mut sticky = false;
    for (i, &d) in digits.iter().enumerate() {
        let from = if i == 0 { bits - lead } else { bits };
        for b in (0..from).rev() {
            let bit = u64::from((d >> b) & 1);
            if taken < 64 {
                top = (top << 1) | bit;
                taken += 1;
            } else if bit == 1 {
                sticky = true;
            }
        }
    }
    if bit_len <= 64 {
        return top as f64;
    }
    // Bit 0 of a 64-bit `top` lies below the 53 kept bits: it can carry the
    // sticky bit so the conversion still rounds ties correctly.
    if sticky {
        top |= 1;
    }
    let shift = (bit_len - 64).min(2000) as i32;
    (top as f64) * 2f64.powi(shift)
}

fn digit_values(s: &str, radix: u32) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(radix)).collect()
}

/// `parseInt(s, 10)` when `radix10`, else `parseInt(s)` (which also reads a
/// `0x` prefix as hexadecimal).
pub(super) fn parse_int(s: &str, radix10: bool) -> f64 {
    let s = s.trim_start_matches(is_space);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, s) = match s.get(..2) {
        Some("0x" | "0X") if !radix10 => (16, &s[2..]),
        _ => (10, s),
    };
    let end = s
        .char_indices()
        .find(|(_, c)| !c.is_digit(radix))
        .map_or(s.len(), |(i, _)| i);
    let digits = &s[..end];
    if digits.is_empty() {
        return f64::NAN;
    }
    let value = if radix == 10 {
        digits.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        digit_values(digits, 16).map_or(f64::NAN, |d| pow2_digits_to_f64(&d, 4))
    };
    if negative { -value } else { value }
}

/// Whether `s` is an ECMAScript `StrUnsignedDecimalLiteral` without
/// `Infinity`: digits, an optional fraction, an optional exponent.
fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

/// `Number(s)` for a string (ECMAScript `StringToNumber`).
pub(super) fn string_to_number(s: &str) -> f64 {
    let t = trim(s);
    if t.is_empty() {
        return 0.0;
    }
    let prefixed = |radix: u32, bits: u32| {
        let rest = &t[2..];
        match digit_values(rest, radix) {
            Some(d) if !d.is_empty() => pow2_digits_to_f64(&d, bits),
            _ => f64::NAN,
        }
    };
    match t.get(..2) {
        Some("0x" | "0X") => return prefixed(16, 4),
        Some("0o" | "0O") => return prefixed(8, 3),
        Some("0b" | "0B") => return prefixed(2, 1),
        _ => {}
    }
    let (negative, unsigned) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let value = if unsigned == "Infinity" {
        f64::INFINITY
    } else if is_decimal_literal(unsigned) {
        unsigned.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        return f64::NAN;
    };
    if negative { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_to_string_matches_ecmascript() {
        for (x, s) in [
            (0.0, "0"),
            (-0.0, "0"),
            (30.0, "30"),
            (29.97, "29.97"),
            (1e21, "1e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (1.2345678901234569e23, "1.2345678901234569e+23"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (9007199254740991.0, "9007199254740991"),
        ] {
            assert_eq!(number_to_string(x), s, "{x}");
        }
    }

    #[test]
    fn integer_to_hex_matches_v8() {
        assert_eq!(integer_to_hex(66.0), "42");
        assert_eq!(integer_to_hex(-5.0), "-5");
        assert_eq!(integer_to_hex(f64::NAN), "NaN");
        assert_eq!(integer_to_hex(2f64.powi(64)), "10000000000000000");
        assert_eq!(integer_to_hex(2f64.powi(70) * 3.0), "c00000000000000000");
        assert_eq!(integer_to_hex(1e30), "c9f2c9cd04675000000000000");
    }

    #[test]
    fn parse_int_and_number() {
        assert_eq!(parse_int(" 1280000", true), 1280000.0);
        assert_eq!(parse_int("1e3", true), 1.0);
        assert_eq!(parse_int("0x1f", true), 0.0);
        assert_eq!(parse_int("0x1f", false), 31.0);
        assert!(parse_int("abc", true).is_nan());
        assert!(parse_int("-0", true).is_sign_negative());
        assert_eq!(string_to_number(" 0x1E "), 30.0);
        assert_eq!(string_to_number("1."), 1.0);
        assert_eq!(string_to_number(".5e-2"), 0.005);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        for bad in [".", "1e", "inf", "NaN", "0x", "-0x1", "1_000", "e5"] {
            assert!(string_to_number(bad).is_nan(), "{bad}");
        }
        // Beyond 64 bits the bits below the first 64 still break ties:
        // 2^64 + 2^11 is a tie (to even: 2^64), one more rounds up.
        assert_eq!(string_to_number("0x10000000000000800"), 2f64.powi(64));
        assert_eq!(
            string_to_number("0x10000000000000801"),
            2f64.powi(64) + 4096.0
        );
    }

    #[test]
    fn utf16_semantics() {
        assert_eq!(slice_utf16("pt-BR", 2), "pt");
        assert_eq!(slice_utf16("😀x", 1), "\u{fffd}");
        let mut v = vec!["\u{ff61}".to_string(), "😀".to_string(), "a".to_string()];
        sort_utf16(&mut v);
        assert_eq!(v, ["a", "😀", "\u{ff61}"]);
        assert_eq!(trim("\u{feff} x\u{a0}"), "x");
        assert_eq!(trim("\u{85}x"), "\u{85}x");
    }
}
