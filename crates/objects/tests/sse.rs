//! Server-side encryption through the object domain, on the in-memory stores: ranged
//! reads of encrypted objects equal the slice of the plaintext, whatever the range and
//! the part layout, and stored bytes never contain the plaintext.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use proptest::prelude::*;

use coffer_crypto::{LocalRootKey, Secret};
use coffer_kms::{Caller, Kms};
use coffer_objects::{
    BodyStream, ByteRange, ChecksumRequest, CompletePart, CompleteUpload, CreateUpload, GetObject,
    Objects, PutObject, RangeSpec, SseRequest, UploadPart,
};
use coffer_storage::memory::{MemoryBlobs, MemoryKms, MemoryMeta};
use coffer_storage::{ObjectMeta, Precondition};

struct Fixture {
    objects: Objects,
    blobs: MemoryBlobs,
    key_id: String,
    rt: tokio::runtime::Runtime,
}

fn caller() -> Caller {
    Caller::trusted("111122223333", "req")
}

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let blobs = MemoryBlobs::new();
        let (objects, key_id) = rt.block_on(async {
            let root = LocalRootKey::from_secret(Secret::new(vec![3; 32])).expect("root");
            let kms = Arc::new(
                Kms::open(
                    Arc::new(MemoryKms::new()),
                    Arc::new(root),
                    coffer_kms::Config::default(),
                )
                .await
                .expect("kms"),
            );
            let key_id = kms
                .create_key(
                    &caller(),
                    coffer_kms::CreateKey::default(),
                    time::OffsetDateTime::now_utc(),
                )
                .await
                .expect("key")
                .key_id;
            let objects = Objects::new(
                Arc::new(MemoryMeta::new()),
                Arc::new(blobs.clone()),
                coffer_objects::Config {
                    inline_max: 1024,
                    ..coffer_objects::Config::default()
                },
            )
            .with_kms(kms);
            objects
                .create_bucket(
                    "111122223333",
                    "enc",
                    None,
                    false,
                    coffer_objects::Ownership::BucketOwnerEnforced,
                    None,
                )
                .await
                .expect("bucket");
            (objects, key_id)
        });
        Fixture {
            objects,
            blobs,
            key_id,
            rt,
        }
    })
}

fn body(data: &[u8], chunk: usize) -> BodyStream {
    let chunks: Vec<Result<Bytes, coffer_objects::BodyError>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn read(objects: &Objects, key: &str, range: Option<RangeSpec>) -> Vec<u8> {
    let got = objects
        .get_object(
            &GetObject {
                caller: caller(),
                customer_key: None,
                bucket: "enc".into(),
                key: key.into(),
                version_id: None,
                range,
                part_number: None,
                conditions: Default::default(),
            },
            true,
        )
        .await
        .expect("get");
    let mut out = Vec::new();
    let mut s = got.body.expect("body");
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

fn sse(f: &Fixture) -> SseRequest {
    SseRequest::Kms {
        key_id: Some(f.key_id.clone()),
        context: None,
        bucket_key: None,
    }
}

async fn put(f: &Fixture, key: &str, data: &[u8]) {
    put_with(&f.objects, key, data, sse(f)).await;
}

async fn put_with(
    objects: &Objects,
    key: &str,
    data: &[u8],
    sse: SseRequest,
) -> coffer_objects::Written {
    objects
        .put_object(
            PutObject {
                caller: caller(),
                bucket: "enc".into(),
                key: key.into(),
                meta: ObjectMeta::default(),
                tags: vec![],
                declared_len: Some(data.len() as u64),
                checksums: ChecksumRequest::default(),
                precondition: Precondition::None,
                sse,
                lock: Default::default(),
            },
            body(data, 10_000),
        )
        .await
        .expect("put")
}

async fn put_multipart(f: &Fixture, key: &str, parts: &[Vec<u8>]) {
    let up = f
        .objects
        .create_upload(CreateUpload {
            caller: caller(),
            sse: sse(f),
            initiator: "111122223333".into(),
            bucket: "enc".into(),
            key: key.into(),
            meta: ObjectMeta::default(),
            tags: vec![],
            checksum_algorithm: None,
            full_object_checksum: false,
            lock: Default::default(),
        })
        .await
        .expect("create");
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = u32::try_from(i + 1).expect("part number");
        let w = f
            .objects
            .upload_part(
                UploadPart {
                    caller: caller(),
                    customer_key: None,
                    bucket: "enc".into(),
                    key: key.into(),
                    upload_id: up.upload_id.clone(),
                    part_number: n,
                    declared_len: Some(p.len() as u64),
                    checksums: ChecksumRequest::default(),
                },
                body(p, 70_000),
            )
            .await
            .expect("part");
        done.push(CompletePart {
            part_number: n,
            etag: w.etag,
            checksum: None,
        });
    }
    f.objects
        .complete_upload(CompleteUpload {
            bucket: "enc".into(),
            key: key.into(),
            upload_id: up.upload_id,
            parts: done,
            precondition: Precondition::None,
        })
        .await
        .expect("complete");
}

#[test]
fn stored_bytes_never_contain_the_plaintext() {
    let f = fixture();
    let marker = b"PLAINTEXT-MARKER-0123456789";
    let data: Vec<u8> = marker.iter().copied().cycle().take(300_000).collect();
    f.rt.block_on(put(f, "marker", &data));
    for stored in f.blobs.all_bytes() {
        assert!(!stored.windows(marker.len()).any(|w| w == marker));
    }
    assert_eq!(f.rt.block_on(read(&f.objects, "marker", None)), data);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_ranged_read_equals_the_slice(
        len in 0usize..300_000,
        a in any::<u64>(),
        b in any::<u64>(),
        suffix in any::<bool>(),
    ) {
        let f = fixture();
        let data = pattern(len, 7);
        let key = format!("single-{len}");
        f.rt.block_on(put(f, &key, &data));
        prop_assert_eq!(f.rt.block_on(read(&f.objects, &key, None)), data.clone());
        if len > 0 {
            let (first, last) = (a % len as u64, b % len as u64);
            let (first, last) = (first.min(last), first.max(last));
            let spec = if suffix {
                RangeSpec::Suffix { length: last - first + 1 }
            } else {
                RangeSpec::FromTo { first, last: Some(last) }
            };
            let r: ByteRange = spec.resolve(len as u64).expect("range");
            let got = f.rt.block_on(read(&f.objects, &key, Some(spec)));
            prop_assert_eq!(got, data[r.start as usize..r.end as usize].to_vec());
        }
    }

    #[test]
    fn ranges_across_encrypted_parts_equal_the_slice(
        last_part in 0usize..150_000,
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let f = fixture();
        let parts = vec![pattern(5 * 1024 * 1024, 1), pattern(5 * 1024 * 1024 + 3, 2), pattern(last_part, 3)];
        let whole: Vec<u8> = parts.concat();
        let key = format!("multi-{last_part}");
        f.rt.block_on(put_multipart(f, &key, &parts));
        let n = whole.len() as u64;
        let (first, last) = (a % n, b % n);
        let (first, last) = (first.min(last), first.max(last));
        let got = f.rt.block_on(read(&f.objects, &key, Some(RangeSpec::FromTo { first, last: Some(last) })));
        prop_assert_eq!(got, whole[first as usize..=last as usize].to_vec());
    }
}

async fn put_without_headers(objects: &Objects, key: &str, data: &[u8]) -> coffer_objects::Written {
    put_with(objects, key, data, SseRequest::Default).await
}

#[test]
fn a_write_without_headers_is_sse_s3_unless_the_operator_opted_out() {
    let f = fixture();
    f.rt.block_on(async {
        let data = b"header-less secret, inline and encrypted".repeat(3);
        let w = put_without_headers(&f.objects, "no-headers", &data).await;
        let sse = w.sse.expect("encrypted by default");
        assert_eq!(sse.kind(), coffer_storage::SseKind::S3);
        assert_eq!(read(&f.objects, "no-headers", None).await, data);
        assert_eq!(
            f.objects.get_bucket_encryption("enc").await.expect("get"),
            Some(coffer_objects::BucketEncryption::sse_s3())
        );

        // The opt-out: buckets without a configuration store plaintext, and say so.
        let plain = Objects::new(
            Arc::new(MemoryMeta::new()),
            Arc::new(MemoryBlobs::new()),
            coffer_objects::Config {
                default_encryption: coffer_objects::DefaultEncryption::None,
                ..coffer_objects::Config::default()
            },
        );
        plain
            .create_bucket(
                "111122223333",
                "enc",
                None,
                false,
                coffer_objects::Ownership::BucketOwnerEnforced,
                None,
            )
            .await
            .expect("bucket");
        assert_eq!(plain.get_bucket_encryption("enc").await.expect("get"), None);
        assert!(put_without_headers(&plain, "k", &data).await.sse.is_none());
        // A new bucket blocks public access either way.
        assert_eq!(
            plain.get_public_access_block("enc").await.expect("get"),
            Some(coffer_objects::PublicAccessBlock::all())
        );
    });
}
