//! Property tests through the KMS service: any flipped ciphertext byte or changed
//! context is InvalidCiphertextException.

use super::*;
use proptest::prelude::*;

/// One KMS with one key and one ciphertext, shared by every case.
fn fixture() -> &'static (tokio::runtime::Runtime, Kms, Vec<u8>) {
    static F: std::sync::OnceLock<(tokio::runtime::Runtime, Kms, Vec<u8>)> =
        std::sync::OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (k, blob) = rt.block_on(async {
            let k = kms().await;
            let id = new_key(&k).await;
            let (blob, _) = k
                .encrypt(
                    &caller(),
                    &id,
                    &Secret::from_slice(b"property plaintext"),
                    &ctx(&[("tenant", "a"), ("purpose", "p")]),
                    t0(),
                )
                .await
                .expect("encrypt");
            (k, blob)
        });
        (rt, k, blob)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_flipped_ciphertext_byte_is_invalid_ciphertext(pos in any::<usize>(), bit in 0u8..8) {
        let (rt, k, blob) = fixture();
        let mut bad = blob.clone();
        let i = pos % bad.len();
        bad[i] ^= 1 << bit;
        let r = rt.block_on(k.decrypt(&caller(), &bad, &ctx(&[("tenant", "a"), ("purpose", "p")]), None, t0()));
        prop_assert_eq!(r.err(), Some(Error::InvalidCiphertext));
    }

    #[test]
    fn any_changed_context_is_invalid_ciphertext(which in 0usize..4, pos in any::<usize>(), bit in 0u8..7) {
        let (rt, k, blob) = fixture();
        let mut parts: Vec<Vec<u8>> = ["tenant", "a", "purpose", "p"].iter().map(|s| s.as_bytes().to_vec()).collect();
        let p = &mut parts[which];
        let i = pos % p.len();
        // Stay within ASCII so the context is still valid UTF-8; bit < 7 always changes it.
        p[i] ^= 1 << bit;
        let s = |b: &Vec<u8>| String::from_utf8(b.clone()).expect("ascii");
        let mut c = BTreeMap::new();
        c.insert(s(&parts[0]), s(&parts[1]));
        c.insert(s(&parts[2]), s(&parts[3]));
        let r = rt.block_on(k.decrypt(&caller(), blob, &c, None, t0()));
        prop_assert_eq!(r.err(), Some(Error::InvalidCiphertext));
    }
}
