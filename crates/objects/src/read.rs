//! Reading objects: byte ranges, part numbers, HTTP conditional headers, and the stream of
//! an object's bytes across its extents.

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use time::OffsetDateTime;

use coffer_storage::{BlobStore, Extent, ObjectRecord};

use crate::{Error, Result};

/// An object's bytes as they leave the store.
pub type ObjectStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A `Range: bytes=...` request, before it is resolved against an object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=first-` or `bytes=first-last`
    FromTo { first: u64, last: Option<u64> },
    /// `bytes=-length`
    Suffix { length: u64 },
}

/// A resolved byte range: `start..end` (end exclusive) of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
    pub size: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// `bytes START-END/SIZE` for `Content-Range`.
    pub fn content_range(&self) -> String {
        format!(
            "bytes {}-{}/{}",
            self.start,
            self.end.saturating_sub(1),
            self.size
        )
    }
}

impl RangeSpec {
    /// Resolves the range as RFC 9110 and S3 do: a last byte past the end is clamped; a
    /// first byte at or past the end, or any range of an empty object, is unsatisfiable.
    pub fn resolve(self, size: u64) -> Result<ByteRange> {
        let unsatisfiable = Err(Error::InvalidRange { size });
        match self {
            RangeSpec::FromTo { first, last } => {
                if first >= size {
                    return unsatisfiable;
                }
                let end = match last {
                    Some(l) if l < first => return unsatisfiable,
                    Some(l) => l.saturating_add(1).min(size),
                    None => size,
                };
                Ok(ByteRange {
                    start: first,
                    end,
                    size,
                })
            }
            RangeSpec::Suffix { length } => {
                if length == 0 || size == 0 {
                    return unsatisfiable;
                }
                Ok(ByteRange {
                    start: size.saturating_sub(length),
                    end: size,
                    size,
                })
            }
        }
    }
}

/// The HTTP conditional request headers of a read (or of a copy source).
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<OffsetDateTime>,
    pub if_unmodified_since: Option<OffsetDateTime>,
}

fn etag_list_matches(header: &str, etag: &str) -> bool {
    header.split(',').any(|candidate| {
        let c = candidate.trim();
        let c = c.strip_prefix("W/").unwrap_or(c);
        c == "*" || c.trim_matches('"') == etag
    })
}

/// Whole seconds: HTTP dates carry no fractions, so comparisons ignore them.
fn seconds(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

impl Conditions {
    /// S3's evaluation (RFC 9110 §13.2.2): If-Match then If-Unmodified-Since (412), then
    /// If-None-Match then If-Modified-Since (304). A true If-Match makes a false
    /// If-Unmodified-Since irrelevant; a false If-None-Match makes If-Modified-Since
    /// irrelevant.
    pub fn check(&self, etag: &str, last_modified: OffsetDateTime) -> Result<()> {
        match (&self.if_match, self.if_unmodified_since) {
            (Some(m), _) => {
                if !etag_list_matches(m, etag) {
                    return Err(Error::PreconditionFailed);
                }
            }
            (None, Some(t)) => {
                if seconds(last_modified) > seconds(t) {
                    return Err(Error::PreconditionFailed);
                }
            }
            (None, None) => {}
        }
        let not_modified = Error::NotModified {
            etag: etag.to_owned(),
            last_modified,
        };
        match (&self.if_none_match, self.if_modified_since) {
            (Some(m), _) => {
                if etag_list_matches(m, etag) {
                    return Err(not_modified);
                }
            }
            (None, Some(t)) => {
                if seconds(last_modified) <= seconds(t) {
                    return Err(not_modified);
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Copy-source conditions answer 412 in every failing case, never 304.
    pub fn check_copy_source(&self, etag: &str, last_modified: OffsetDateTime) -> Result<()> {
        match self.check(etag, last_modified) {
            Err(Error::NotModified { .. }) => Err(Error::PreconditionFailed),
            other => other,
        }
    }
}

/// One piece of an extent to stream.
struct Piece {
    extent: Extent,
    offset: u64,
    len: u64,
}

fn pieces(extents: &[Extent], range: ByteRange) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    for e in extents {
        let (start, end) = (pos, pos + e.len());
        pos = end;
        if end <= range.start || start >= range.end {
            continue;
        }
        let from = range.start.max(start);
        let to = range.end.min(end);
        out.push(Piece {
            extent: e.clone(),
            offset: from - start,
            len: to - from,
        });
    }
    out
}

async fn open_piece(
    blobs: &dyn BlobStore,
    piece: Piece,
) -> Result<Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>> {
    match piece.extent {
        Extent::Inline(data) => {
            let start = usize::try_from(piece.offset)
                .map_err(|_| Error::Internal("inline offset".into()))?;
            let end = usize::try_from(piece.offset + piece.len)
                .map_err(|_| Error::Internal("inline length".into()))?;
            if end > data.len() {
                return Err(Error::Internal(
                    "inline extent shorter than recorded".into(),
                ));
            }
            let slice = data.slice(start..end);
            Ok(Box::pin(futures::stream::iter([Ok(slice)])))
        }
        Extent::Blob { id, .. } => {
            let s = blobs.read(&id, piece.offset, piece.len).await?;
            Ok(Box::pin(s.map_err(Error::from)))
        }
    }
}

/// Streams `range` of `object`. The first blob is opened before this returns, so a blob
/// freed by a concurrent overwrite is reported here (and the caller can retry) rather than
/// after the response has started.
pub async fn stream_range(
    blobs: std::sync::Arc<dyn BlobStore>,
    object: &ObjectRecord,
    range: ByteRange,
) -> Result<ObjectStream> {
    let mut rest = pieces(&object.extents, range).into_iter();
    let Some(first_piece) = rest.next() else {
        return Ok(Box::pin(futures::stream::empty()));
    };
    let first = open_piece(blobs.as_ref(), first_piece).await?;
    let later = futures::stream::iter(rest)
        .then(move |p| {
            let blobs = blobs.clone();
            async move { open_piece(blobs.as_ref(), p).await }
        })
        .try_flatten();
    Ok(Box::pin(first.chain(later)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ranges_resolve_like_s3() {
        let r = |first, last| RangeSpec::FromTo { first, last };
        assert_eq!(
            r(0, Some(9)).resolve(100).ok().map(|b| (b.start, b.end)),
            Some((0, 10))
        );
        assert_eq!(
            r(90, Some(200)).resolve(100).ok().map(|b| (b.start, b.end)),
            Some((90, 100))
        );
        assert_eq!(
            r(5, None).resolve(100).ok().map(|b| (b.start, b.end)),
            Some((5, 100))
        );
        assert!(r(100, None).resolve(100).is_err());
        assert!(r(10, Some(5)).resolve(100).is_err());
        assert!(r(0, None).resolve(0).is_err());
        let s = |length| RangeSpec::Suffix { length };
        assert_eq!(
            s(10).resolve(100).ok().map(|b| (b.start, b.end)),
            Some((90, 100))
        );
        assert_eq!(
            s(500).resolve(100).ok().map(|b| (b.start, b.end)),
            Some((0, 100))
        );
        assert!(s(0).resolve(100).is_err());
        assert_eq!(
            r(0, Some(9))
                .resolve(100)
                .map(|b| b.content_range())
                .ok()
                .as_deref(),
            Some("bytes 0-9/100")
        );
    }

    #[test]
    fn conditions_follow_rfc_9110_precedence() {
        let lm = datetime!(2024-01-02 03:04:05.678 UTC);
        let before = datetime!(2024-01-01 00:00:00 UTC);
        let after = datetime!(2024-02-01 00:00:00 UTC);
        let same_second = datetime!(2024-01-02 03:04:05 UTC);
        let c = |im: Option<&str>, inm: Option<&str>, ims, ius| Conditions {
            if_match: im.map(str::to_owned),
            if_none_match: inm.map(str::to_owned),
            if_modified_since: ims,
            if_unmodified_since: ius,
        };
        assert!(
            c(Some("\"abc\""), None, None, None)
                .check("abc", lm)
                .is_ok()
        );
        assert!(
            c(Some("\"x\", \"abc\""), None, None, None)
                .check("abc", lm)
                .is_ok()
        );
        assert!(c(Some("*"), None, None, None).check("abc", lm).is_ok());
        assert!(matches!(
            c(Some("\"x\""), None, None, None).check("abc", lm),
            Err(Error::PreconditionFailed)
        ));
        assert!(matches!(
            c(None, None, None, Some(before)).check("abc", lm),
            Err(Error::PreconditionFailed)
        ));
        // If-Match true wins over If-Unmodified-Since false.
        assert!(
            c(Some("abc"), None, None, Some(before))
                .check("abc", lm)
                .is_ok()
        );
        assert!(matches!(
            c(None, Some("\"abc\""), None, None).check("abc", lm),
            Err(Error::NotModified { .. })
        ));
        assert!(matches!(
            c(None, None, Some(after), None).check("abc", lm),
            Err(Error::NotModified { .. })
        ));
        assert!(matches!(
            c(None, None, Some(same_second), None).check("abc", lm),
            Err(Error::NotModified { .. })
        ));
        assert!(c(None, None, Some(before), None).check("abc", lm).is_ok());
        // If-None-Match false makes If-Modified-Since irrelevant.
        assert!(
            c(None, Some("\"x\""), Some(after), None)
                .check("abc", lm)
                .is_ok()
        );
        assert!(matches!(
            c(None, Some("\"abc\""), None, None).check_copy_source("abc", lm),
            Err(Error::PreconditionFailed)
        ));
    }
}
