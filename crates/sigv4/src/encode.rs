//! URI encoding as SigV4 defines it: every byte except the unreserved set
//! `A-Z a-z 0-9 - _ . ~` becomes `%XX` (upper-case hex).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Encodes `s`; `/` is encoded only when `encode_slash` (query components) is set.
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let set = if encode_slash {
        UNRESERVED
    } else {
        UNRESERVED_AND_SLASH
    };
    utf8_percent_encode(s, set).to_string()
}

/// Encodes an object path (`/bucket/key`) for the canonical request of S3, which encodes
/// the path once and keeps `/` separators.
pub fn uri_encode_path(path: &str) -> String {
    uri_encode(path, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode("a b/c~d", true), "a%20b%2Fc~d");
        assert_eq!(
            uri_encode_path("/bucket/a b+c/ü"),
            "/bucket/a%20b%2Bc/%C3%BC"
        );
    }
}
