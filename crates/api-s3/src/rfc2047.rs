//! User metadata values as S3 carries them in headers (AWS's "Working with object
//! metadata": values are "character decoded as per RFC 2047 before storing and encoded as
//! per RFC 2047 ... before returning"): encoded words `=?UTF-8?B?...?=` / `=?UTF-8?Q?...?=`
//! are decoded on the way in; a value that is not printable ASCII goes out as one encoded
//! word — `Q` when most of it is ASCII, `B` otherwise, as S3 answers (its replies as
//! recorded in LocalStack's AWS-validated snapshots); printable ASCII goes out as stored.

use base64_simd::STANDARD as B64;

/// The stored value of a metadata header: its encoded words decoded, trailing blanks
/// trimmed. A value that is not a well-formed encoded word is kept as sent.
pub fn decode(value: &str) -> String {
    let trimmed = value.trim_end_matches([' ', '\t']);
    decode_word(trimmed).unwrap_or_else(|| trimmed.to_owned())
}

fn decode_word(v: &str) -> Option<String> {
    let inner = v.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let charset = parts.next()?;
    let encoding = parts.next()?;
    let text = parts.next()?;
    if !charset.eq_ignore_ascii_case("UTF-8") {
        return None;
    }
    let bytes = if encoding.eq_ignore_ascii_case("B") {
        B64.decode_to_vec(text.as_bytes()).ok()?
    } else if encoding.eq_ignore_ascii_case("Q") {
        let mut out = Vec::with_capacity(text.len());
        let mut b = text.bytes();
        while let Some(c) = b.next() {
            match c {
                b'_' => out.push(b' '),
                b'=' => {
                    let hex = [b.next()?, b.next()?];
                    let s = std::str::from_utf8(&hex).ok()?;
                    out.push(u8::from_str_radix(s, 16).ok()?);
                }
                c => out.push(c),
            }
        }
        out
    } else {
        return None;
    };
    String::from_utf8(bytes).ok()
}

/// Whether a character needs encoding: control characters and anything beyond ASCII.
fn special(c: char) -> bool {
    !(' '..='~').contains(&c)
}

/// The header value of a stored metadata value.
pub fn encode(value: &str) -> String {
    if !value.chars().any(special) {
        return value.to_owned();
    }
    let non_ascii = value.chars().filter(|c| special(*c)).count();
    let ascii = value.chars().count() - non_ascii;
    if non_ascii < ascii {
        let mut out = String::from("=?UTF-8?Q?");
        for b in value.bytes() {
            match b {
                b' ' => out.push('_'),
                b'=' | b'?' | b'_' => out.push_str(&format!("={b:02X}")),
                0x21..=0x7e => out.push(char::from(b)),
                _ => out.push_str(&format!("={b:02X}")),
            }
        }
        out.push_str("?=");
        out
    } else {
        format!("=?UTF-8?B?{}?=", B64.encode_to_string(value.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_as_s3_answers_them() {
        // S3's recorded replies.
        assert_eq!(decode("=?UTF-8?B?YWJj?="), "abc");
        assert_eq!(decode("=?UTF-8?Q?actually-ascii?="), "actually-ascii");
        assert_eq!(encode("abc"), "abc");
        assert_eq!(
            encode("ÄMÄZÕÑ S3"),
            "=?UTF-8?Q?=C3=84M=C3=84Z=C3=95=C3=91_S3?="
        );
        assert_eq!(encode("\u{0}\u{1}\u{2}\u{3}"), "=?UTF-8?B?AAECAw==?=");
        assert_eq!(decode(&encode("ÄMÄZÕÑ S3")), "ÄMÄZÕÑ S3");
        assert_eq!(decode(&encode("a_b=c?d%é")), "a_b=c?d%é");
        assert_eq!(decode("plain  "), "plain", "trailing blanks are trimmed");
        assert_eq!(decode("=?ISO-8859-1?Q?x?="), "=?ISO-8859-1?Q?x?=");
        assert_eq!(decode("=?UTF-8?B?!!!?="), "=?UTF-8?B?!!!?=");
    }
}
