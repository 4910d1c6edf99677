//! Reading encrypted objects: a plaintext range maps to the segments that cover it in each
//! extent; only those are read and opened. A segment that fails to open ends the stream
//! with an error: wrong bytes are never returned.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};

use coffer_crypto::stream::{
    Binding, HEADER_LEN, Opener, SEGMENT, SEGMENT_STORED, segments, stored_len,
};
use coffer_crypto::{Secret, TAG_LEN};
use coffer_storage::{BlobStore, Extent, ObjectRecord};

use crate::read::{ByteRange, ObjectStream};
use crate::{Error, Result};

/// The key and identity an object's segments were sealed with.
pub struct Decryption {
    pub key: Secret,
    pub object_id: [u8; 16],
}

fn corrupt() -> Error {
    Error::Internal("stored object data failed authentication (corrupted or tampered)".into())
}

/// The plaintext length and part number of each extent of an encrypted object.
fn layout(object: &ObjectRecord) -> Result<Vec<(Extent, u64, u32)>> {
    if object.meta.parts.is_empty() {
        let e = object
            .extents
            .first()
            .ok_or_else(|| Error::Internal("encrypted object without data".into()))?;
        return Ok(vec![(e.clone(), object.size, 1)]);
    }
    if object.meta.parts.len() != object.extents.len() {
        return Err(Error::Internal("parts and extents disagree".into()));
    }
    Ok(object
        .extents
        .iter()
        .zip(&object.meta.parts)
        .map(|(e, p)| (e.clone(), p.size, p.number))
        .collect())
}

async fn read_stored(
    blobs: &dyn BlobStore,
    extent: &Extent,
    start: u64,
    end: u64,
) -> Result<ObjectStream> {
    match extent {
        Extent::Inline(data) => {
            let (s, e) = (
                usize::try_from(start).map_err(|_| corrupt())?,
                usize::try_from(end).map_err(|_| corrupt())?,
            );
            let slice = data.get(s..e).ok_or_else(corrupt)?;
            Ok(Box::pin(futures::stream::iter([Ok(
                Bytes::copy_from_slice(slice),
            )])))
        }
        Extent::Blob { id, len } => {
            if end > *len {
                return Err(corrupt());
            }
            // Whole segments per chunk: each is decrypted in place, never copied.
            let chunk = if start >= HEADER_LEN as u64 {
                16 * SEGMENT_STORED
            } else {
                HEADER_LEN
            };
            Ok(Box::pin(
                blobs
                    .read_chunked(id, start, end - start, chunk)
                    .await?
                    .map_err(Error::from),
            ))
        }
    }
}

async fn read_all(mut s: ObjectStream) -> Result<BytesMut> {
    let mut buf = BytesMut::new();
    while let Some(c) = s.next().await {
        buf.extend_from_slice(&c?);
    }
    Ok(buf)
}

/// One extent's share of a read: plaintext `[from, to)` of an extent of `plain_len`
/// bytes that was sealed as part `part`.
struct Piece {
    extent: Extent,
    plain_len: u64,
    part: u32,
    from: u64,
    to: u64,
}

/// Streams the plaintext of one piece.
async fn extent_stream(
    blobs: Arc<dyn BlobStore>,
    piece: Piece,
    key: Arc<Secret>,
    object_id: [u8; 16],
) -> Result<impl Stream<Item = Result<Bytes>> + Send> {
    let Piece {
        extent,
        plain_len,
        part,
        from,
        to,
    } = piece;
    if extent.len() != stored_len(plain_len) {
        return Err(corrupt());
    }
    let header =
        read_all(read_stored(blobs.as_ref(), &extent, 0, HEADER_LEN as u64).await?).await?;
    let opener = Opener::new(
        &key,
        Binding {
            object: object_id,
            part,
        },
        &header,
        plain_len,
    )
    .map_err(|_| corrupt())?;
    let seg = SEGMENT as u64;
    let first = from / seg;
    let last = if to > from { (to - 1) / seg } else { first };
    let (start, end) = Opener::stored_range(first, last, plain_len);
    let reader = read_stored(blobs.as_ref(), &extent, start, end).await?;
    let nseg = segments(plain_len);
    let opener = Arc::new(opener);
    let state = (reader, BytesMut::new(), first);
    Ok(
        futures::stream::try_unfold(state, move |(mut reader, mut buf, i)| {
            let opener = opener.clone();
            async move {
                if i > last {
                    return Ok(None);
                }
                let want = if i + 1 == nseg {
                    usize::try_from(plain_len - i * seg).map_err(|_| corrupt())? + TAG_LEN
                } else {
                    SEGMENT_STORED
                };
                while buf.len() < want {
                    match reader.next().await {
                        // A uniquely owned chunk becomes the buffer without a copy.
                        Some(chunk) if buf.is_empty() => buf = BytesMut::from(chunk?),
                        Some(chunk) => buf.extend_from_slice(&chunk?),
                        None => return Err(corrupt()),
                    }
                }
                // Decrypt in place: the segment's buffer becomes the output, no copy.
                let mut stored = buf.split_to(want);
                let n = opener
                    .open_in_place(i, &mut stored)
                    .map_err(|_| corrupt())?;
                let plain = stored.freeze();
                let seg_start = i * seg;
                let lo = usize::try_from(from.max(seg_start) - seg_start).map_err(|_| corrupt())?;
                let hi = usize::try_from(to.min(seg_start + n as u64) - seg_start)
                    .map_err(|_| corrupt())?;
                if lo > hi || hi > n {
                    return Err(corrupt());
                }
                Ok(Some((plain.slice(lo..hi), (reader, buf, i + 1))))
            }
        })
        .try_filter(|b| futures::future::ready(!b.is_empty())),
    )
}

/// Streams `range` of an encrypted object. The first segment is opened before this
/// returns, so damage near the start is reported before any response is sent.
pub async fn stream_range(
    blobs: Arc<dyn BlobStore>,
    object: &ObjectRecord,
    range: ByteRange,
    decryption: Decryption,
) -> Result<ObjectStream> {
    if range.is_empty() {
        return Ok(Box::pin(futures::stream::empty()));
    }
    let key = Arc::new(decryption.key);
    let mut pieces = Vec::new();
    let mut pos = 0u64;
    for (extent, plain_len, part) in layout(object)? {
        let (start, end) = (pos, pos + plain_len);
        pos = end;
        if range.start >= end || range.end <= start {
            continue;
        }
        pieces.push(Piece {
            extent,
            plain_len,
            part,
            from: range.start.max(start) - start,
            to: range.end.min(end) - start,
        });
    }
    if pos != object.size {
        return Err(Error::Internal(
            "part sizes do not add up to the object size".into(),
        ));
    }
    let object_id = decryption.object_id;
    let streams = futures::stream::iter(pieces)
        .then(move |piece| {
            let blobs = blobs.clone();
            let key = key.clone();
            async move { extent_stream(blobs, piece, key, object_id).await }
        })
        .try_flatten();
    let mut s: ObjectStream = Box::pin(streams);
    match s.next().await {
        None => Ok(Box::pin(futures::stream::empty())),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(Box::pin(futures::stream::iter([Ok(first)]).chain(s))),
    }
}
