//! The checksum algorithms S3 added in 2025 (SHA512, MD5, XXHASH64, XXHASH3, XXHASH128),
//! which s3s 0.14's generated DTOs have no fields for.
//!
//! Requests: their `x-amz-checksum-*` headers are read here from the raw header map
//! (trailers and `x-amz-sdk-checksum-algorithm` need nothing: they name the algorithm).
//! Responses: an operation fills the DTO's `checksum_sha256` field with the value
//! *carried*, `~ALGORITHM~value` (`~` never occurs in base64), and the front restores it
//! (`restore`): the `x-amz-checksum-sha256` header and `<ChecksumSHA256>` elements that
//! carry a value become the algorithm's own header and element. Every reply with such a
//! checksum passes through `front::finish`, so a carried value never reaches a client.
//!
//! CompleteMultipartUpload bodies name part checksums as elements (`<ChecksumSHA512>` in a
//! `<Part>`), which s3s's parser refuses: the custom route reads such a body once s3s has
//! verified its signature and hash, carries them the same way (`carry_xml`), and parses it.

use bytes::Bytes;
use coffer_objects::ChecksumAlgorithm;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The algorithms carried, with their header and XML element names.
static WIDE: [(ChecksumAlgorithm, HeaderName, &str); 5] = [
    (
        ChecksumAlgorithm::Sha512,
        HeaderName::from_static("x-amz-checksum-sha512"),
        "ChecksumSHA512",
    ),
    (
        ChecksumAlgorithm::Md5,
        HeaderName::from_static("x-amz-checksum-md5"),
        "ChecksumMD5",
    ),
    (
        ChecksumAlgorithm::Xxhash64,
        HeaderName::from_static("x-amz-checksum-xxhash64"),
        "ChecksumXXHASH64",
    ),
    (
        ChecksumAlgorithm::Xxhash3,
        HeaderName::from_static("x-amz-checksum-xxhash3"),
        "ChecksumXXHASH3",
    ),
    (
        ChecksumAlgorithm::Xxhash128,
        HeaderName::from_static("x-amz-checksum-xxhash128"),
        "ChecksumXXHASH128",
    ),
];

const MARK: char = '~';
/// (A `HeaderName`, not a `&str`: every reply is looked at, and a `&str` is parsed first.)
static CARRIER_HEADER: HeaderName = HeaderName::from_static("x-amz-checksum-sha256");
const CARRIER_OPEN: &str = "<ChecksumSHA256>~";
const CARRIER_CLOSE: &str = "</ChecksumSHA256>";

/// A value to put in a DTO's `checksum_sha256` field for `restore` to move.
pub(crate) fn carry(a: ChecksumAlgorithm, value: &str) -> String {
    format!("{MARK}{}{MARK}{value}", a.as_str())
}

/// The checksums of these algorithms a request declares in headers.
pub(crate) fn declared(headers: &HeaderMap) -> impl Iterator<Item = (ChecksumAlgorithm, String)> {
    WIDE.iter().filter_map(|(a, header, _)| {
        let v = headers.get(header)?.to_str().ok()?;
        Some((*a, v.trim().to_owned()))
    })
}

/// A request body with these algorithms' elements renamed to carried `<ChecksumSHA256>`
/// ones, if it has any.
pub(crate) fn carry_xml(body: &[u8]) -> Option<String> {
    let mut text = std::str::from_utf8(body).ok()?.to_owned();
    let mut changed = false;
    for (a, _, element) in &WIDE {
        let open = format!("<{element}>");
        if text.contains(&open) {
            text = text
                .replace(
                    &open,
                    &format!("<ChecksumSHA256>{MARK}{}{MARK}", a.as_str()),
                )
                .replace(&format!("</{element}>"), CARRIER_CLOSE);
            changed = true;
        }
    }
    changed.then_some(text)
}

/// The value of a checksum field, carried or not.
pub(crate) fn uncarry_value(s: String) -> String {
    match uncarry(&s) {
        Some((_, value)) => value.to_owned(),
        None => s,
    }
}

/// `~SHA512~value` → (the algorithm's entry, value).
fn uncarry(s: &str) -> Option<(&'static (ChecksumAlgorithm, HeaderName, &'static str), &str)> {
    let (name, value) = s.strip_prefix(MARK)?.split_once(MARK)?;
    let entry = WIDE.iter().find(|(a, _, _)| a.as_str() == name)?;
    Some((entry, value))
}

/// Moves a carried checksum header to its own name.
pub(crate) fn restore_headers(headers: &mut HeaderMap) {
    let Some(carried) = headers.get(&CARRIER_HEADER) else {
        return;
    };
    let Some(((_, header, _), value)) = carried.to_str().ok().and_then(uncarry) else {
        return;
    };
    let Ok(value) = HeaderValue::from_str(value) else {
        return;
    };
    headers.remove(&CARRIER_HEADER);
    headers.insert(header.clone(), value);
}

/// An XML body with every carried `<ChecksumSHA256>` element renamed, if it has any.
pub(crate) fn restore_xml(body: &[u8]) -> Option<Bytes> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains(CARRIER_OPEN) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(CARRIER_OPEN) {
        out.push_str(&rest[..at]);
        let inner = &rest[at + CARRIER_OPEN.len() - 1..];
        let end = inner.find(CARRIER_CLOSE)?;
        let ((_, _, element), value) = uncarry(&inner[..end])?;
        out.push_str(&format!("<{element}>{value}</{element}>"));
        rest = &inner[end + CARRIER_CLOSE.len()..];
    }
    out.push_str(rest);
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_headers_are_restored() {
        let mut h = HeaderMap::new();
        let v = carry(ChecksumAlgorithm::Xxhash3, "LQaABTjTlMI=");
        h.insert(
            CARRIER_HEADER.clone(),
            HeaderValue::from_str(&v).expect("value"),
        );
        restore_headers(&mut h);
        assert!(h.get(&CARRIER_HEADER).is_none());
        assert_eq!(
            h.get("x-amz-checksum-xxhash3").map(|v| v.as_bytes()),
            Some(&b"LQaABTjTlMI="[..])
        );
        // A real SHA256 stays where it is.
        let mut h = HeaderMap::new();
        h.insert(
            CARRIER_HEADER.clone(),
            HeaderValue::from_static("uU0nuZNN="),
        );
        restore_headers(&mut h);
        assert!(h.get(&CARRIER_HEADER).is_some());
    }

    #[test]
    fn carried_elements_are_renamed_every_time() {
        let body = format!(
            "<R><Part><ChecksumSHA256>{}</ChecksumSHA256></Part><Part><ChecksumSHA256>{}</ChecksumSHA256></Part><X><ChecksumSHA256>real=</ChecksumSHA256></X></R>",
            carry(ChecksumAlgorithm::Sha512, "a+b="),
            carry(ChecksumAlgorithm::Md5, "c/d=-2")
        );
        let out = restore_xml(body.as_bytes()).expect("rewritten");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            "<R><Part><ChecksumSHA512>a+b=</ChecksumSHA512></Part><Part><ChecksumMD5>c/d=-2</ChecksumMD5></Part><X><ChecksumSHA256>real=</ChecksumSHA256></X></R>"
        );
        assert!(restore_xml(b"<R><ChecksumSHA256>real=</ChecksumSHA256></R>").is_none());
    }

    #[test]
    fn request_bodies_are_carried_and_read_back() {
        let body = b"<CompleteMultipartUpload><Part><ETag>e</ETag><ChecksumXXHASH64>x=</ChecksumXXHASH64><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        let carried = carry_xml(body).expect("carried");
        assert!(
            carried.contains("<ChecksumSHA256>~XXHASH64~x=</ChecksumSHA256>"),
            "{carried}"
        );
        assert_eq!(uncarry_value("~XXHASH64~x=".into()), "x=");
        assert_eq!(uncarry_value("plain=".into()), "plain=");
        assert!(carry_xml(b"<Part><ChecksumCRC32>c</ChecksumCRC32></Part>").is_none());
    }

    #[test]
    fn request_headers_are_read() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-sha512", HeaderValue::from_static(" v= "));
        assert_eq!(
            declared(&h).collect::<Vec<_>>(),
            vec![(ChecksumAlgorithm::Sha512, "v=".to_owned())]
        );
    }
}
