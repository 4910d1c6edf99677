//! Targets over Coffer's own binary formats: the KMS ciphertext blob and the encrypted
//! segment format. Besides never panicking on any bytes, a changed byte must never open:
//! a well-formed value is sealed, the input says how to tamper with it, and the result
//! opens if and only if it is unchanged, to exactly what was sealed.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use coffer_crypto::Secret;
use coffer_crypto::stream::{Binding, HEADER_LEN, Opener, SEGMENT, SEGMENT_STORED, Sealer};
use coffer_kms::ciphertext::{self, Header};

use crate::input::tamper;

fn context() -> BTreeMap<String, String> {
    BTreeMap::from([("purpose".to_owned(), "fuzz".to_owned())])
}

/// The first input byte picks a mode: odd bytes read the rest as a blob; even ones read
/// it as edits to a freshly sealed blob.
pub fn kms_ciphertext(data: &[u8]) {
    let material = Secret::new(vec![0x42; 32]);
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        if let Ok(h) = Header::decode(rest) {
            assert_eq!(
                h.encode(),
                rest[..ciphertext::HEADER_LEN],
                "a decoded header encodes back to the bytes it came from"
            );
            let _ = ciphertext::open(rest, &material, &context());
        }
        return;
    }
    let header = Header {
        key_id: uuid::Uuid::from_bytes([5; 16]),
        version: 3,
    };
    let plaintext = b"the plaintext a data key protects";
    let blob = ciphertext::seal(header, &material, &context(), plaintext).expect("seal");
    let changed = tamper(&blob, rest);
    let opened = ciphertext::open(&changed, &material, &context());
    if changed == blob {
        let opened = opened.expect("an untouched blob opens");
        assert_eq!(opened.expose(), plaintext);
    } else {
        assert!(opened.is_err(), "a tampered ciphertext blob opened");
    }
}

/// An object's plaintext, two segments long, sealed once with a fixed salt.
fn sealed_extent() -> &'static (Vec<u8>, Vec<u8>) {
    static EXTENT: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    EXTENT.get_or_init(|| {
        let plain: Vec<u8> = (0..SEGMENT + 1000).map(|i| (i % 251) as u8).collect();
        let mut s = Sealer::with_salt(&segment_key(), binding(), [3; 16]).expect("sealer");
        let mut stored = s.push(&plain).expect("push");
        stored.extend(s.finish().expect("finish"));
        (plain, stored)
    })
}

fn segment_key() -> Secret {
    Secret::new(vec![7; 32])
}

fn binding() -> Binding {
    Binding {
        object: [9; 16],
        part: 1,
    }
}

/// Edits to a sealed two-segment extent; each segment is then opened from where a reader
/// would take it. A segment opens if and only if its stored bytes and the header are
/// unchanged, and then to exactly the plaintext sealed there.
pub fn segment(data: &[u8]) {
    let (plain, stored) = sealed_extent();
    let changed = tamper(stored, data);
    let Some(header) = changed.get(..HEADER_LEN) else {
        return;
    };
    let Ok(opener) = Opener::new(&segment_key(), binding(), header, plain.len() as u64) else {
        assert_ne!(
            header,
            &stored[..HEADER_LEN],
            "an untouched header is refused"
        );
        return;
    };
    let header_same = header == &stored[..HEADER_LEN];
    for index in 0..2u64 {
        let start = HEADER_LEN + index as usize * SEGMENT_STORED;
        let end = |len: usize| {
            if index == 0 {
                (start + SEGMENT_STORED).min(len)
            } else {
                len
            }
        };
        let Some(got) = changed.get(start..end(changed.len())) else {
            continue;
        };
        let want = &stored[start..end(stored.len())];
        let opened = opener.open(index, got);
        if header_same && got == want {
            let p = opened.expect("an untouched segment opens");
            let from = index as usize * SEGMENT;
            assert_eq!(
                p,
                &plain[from..from + p.len()],
                "a segment opened to other bytes"
            );
        } else {
            assert!(opened.is_err(), "a tampered segment opened");
        }
    }
}
