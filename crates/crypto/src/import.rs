//! Key material a client brings (AWS's "importing key material"): the client wraps it
//! under an RSA wrapping public key Coffer handed out, with one of AWS's four wrapping
//! algorithms, and Coffer unwraps it with the private half.
//!
//! `RSAES_OAEP_SHA_1` / `RSAES_OAEP_SHA_256`: the material is RSA-OAEP-encrypted
//! directly (SHA-1 or SHA-256 for both the hash and MGF1). `RSA_AES_KEY_WRAP_SHA_1` /
//! `_SHA_256` (PKCS#11's `CKM_RSA_AES_KEY_WRAP`): the client makes an ephemeral AES key,
//! RSA-OAEP-encrypts it, and appends the material wrapped under it with AES Key Wrap with
//! Padding (RFC 5649); the blob is `RSA-OAEP(aes key) || AES-KWP(material)`, the first
//! part exactly as long as the RSA modulus. Every unwrap failure is one
//! [`RsaCryptError::Decrypt`].

use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey};

use crate::Secret;
use crate::asym::{RsaCryptError, rsa_decrypt};

/// AWS's wrapping algorithms that Coffer accepts. (`RSAES_PKCS1_V1_5` is deprecated by
/// AWS and refused; `SM2PKE` is for China Regions only.)
pub const WRAPPING_ALGORITHMS: &[&str] = &[
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
];

/// The RSA-OAEP algorithm name a wrapping algorithm uses for its RSA step, and whether an
/// AES key-wrap layer follows.
fn split(algorithm: &str) -> Option<(&'static str, bool)> {
    Some(match algorithm {
        "RSAES_OAEP_SHA_1" => ("RSAES_OAEP_SHA_1", false),
        "RSAES_OAEP_SHA_256" => ("RSAES_OAEP_SHA_256", false),
        "RSA_AES_KEY_WRAP_SHA_1" => ("RSAES_OAEP_SHA_1", true),
        "RSA_AES_KEY_WRAP_SHA_256" => ("RSAES_OAEP_SHA_256", true),
        _ => return None,
    })
}

/// Unwraps imported material with the wrapping key's private half (PKCS#8).
pub fn unwrap_imported(
    private: &Secret,
    algorithm: &str,
    blob: &[u8],
) -> Result<Secret, RsaCryptError> {
    let (oaep, aes) = split(algorithm).ok_or(RsaCryptError::Algorithm)?;
    if !aes {
        return rsa_decrypt(private, oaep, blob);
    }
    let modulus = PrivateDecryptingKey::from_pkcs8(private.expose())
        .map_err(|_| RsaCryptError::Key)?
        .key_size_bytes();
    if blob.len() <= modulus {
        return Err(RsaCryptError::Decrypt);
    }
    let (head, tail) = blob.split_at(modulus);
    let aes_key = rsa_decrypt(private, oaep, head)?;
    let cipher = match aes_key.len() {
        16 => &AES_128,
        32 => &AES_256,
        _ => return Err(RsaCryptError::Decrypt),
    };
    let kek = AesKek::new(cipher, aes_key.expose()).map_err(|_| RsaCryptError::Decrypt)?;
    let mut out = Secret::zeroed(tail.len());
    let n = kek
        .unwrap_with_padding(tail, out.as_mut())
        .map_err(|_| RsaCryptError::Decrypt)?
        .len();
    Ok(Secret::from_slice(&out.expose()[..n]))
}

/// The client's side: wraps `material` under a wrapping public key (DER
/// SubjectPublicKeyInfo, as GetParametersForImport returns it). For tests and tools.
pub fn wrap_for_import(
    public_der: &[u8],
    algorithm: &str,
    material: &[u8],
) -> Result<Vec<u8>, RsaCryptError> {
    let (oaep, aes) = split(algorithm).ok_or(RsaCryptError::Algorithm)?;
    let alg = match oaep {
        "RSAES_OAEP_SHA_1" => &aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1,
        _ => &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
    };
    let public = PublicEncryptingKey::from_der(public_der).map_err(|_| RsaCryptError::Key)?;
    let public = OaepPublicEncryptingKey::new(public).map_err(|_| RsaCryptError::Key)?;
    let encrypt = |plain: &[u8]| -> Result<Vec<u8>, RsaCryptError> {
        let max = public.max_plaintext_size(alg);
        if plain.is_empty() || plain.len() > max {
            return Err(RsaCryptError::TooLong(max));
        }
        let mut out = vec![0u8; public.ciphertext_size()];
        let n = public
            .encrypt(alg, plain, &mut out, None)
            .map_err(|_| RsaCryptError::Key)?
            .len();
        out.truncate(n);
        Ok(out)
    };
    if !aes {
        return encrypt(material);
    }
    let aes_key = crate::random_secret(32).map_err(|_| RsaCryptError::Key)?;
    let mut out = encrypt(aes_key.expose())?;
    let kek = AesKek::new(&AES_256, aes_key.expose()).map_err(|_| RsaCryptError::Key)?;
    let mut wrapped = vec![0u8; material.len() + 16];
    let n = kek
        .wrap_with_padding(material, &mut wrapped)
        .map_err(|_| RsaCryptError::Key)?
        .len();
    out.extend_from_slice(&wrapped[..n]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asym::{Spec, generate, public_key_der};

    #[test]
    fn every_algorithm_round_trips_and_tampering_fails() {
        let k = generate(Spec::Rsa2048).expect("generate");
        let public = public_key_der(Spec::Rsa2048, &k).expect("public");
        // Large enough that only the AES layer can carry it (an RSA-3072 PKCS#8 key).
        let big = vec![7u8; 1800];
        for alg in WRAPPING_ALGORITHMS {
            let material: &[u8] = if alg.starts_with("RSA_AES") {
                &big
            } else {
                &[5u8; 32]
            };
            let blob = wrap_for_import(&public, alg, material).expect("wrap");
            let back = unwrap_imported(&k, alg, &blob).expect("unwrap");
            assert_eq!(back.expose(), material, "{alg}");
            for i in [0, blob.len() - 1] {
                let mut bad = blob.clone();
                bad[i] ^= 1;
                assert_eq!(
                    unwrap_imported(&k, alg, &bad),
                    Err(RsaCryptError::Decrypt),
                    "{alg}"
                );
            }
        }
        // The wrong algorithm, the wrong key, and a truncated blob all fail the same way.
        let blob = wrap_for_import(&public, "RSAES_OAEP_SHA_256", &[1; 32]).expect("wrap");
        assert!(unwrap_imported(&k, "RSAES_OAEP_SHA_1", &blob).is_err());
        let other = generate(Spec::Rsa2048).expect("other");
        assert!(unwrap_imported(&other, "RSAES_OAEP_SHA_256", &blob).is_err());
        let blob = wrap_for_import(&public, "RSA_AES_KEY_WRAP_SHA_256", &[1; 32]).expect("w");
        assert_eq!(
            unwrap_imported(&k, "RSA_AES_KEY_WRAP_SHA_256", &blob[..256]),
            Err(RsaCryptError::Decrypt)
        );
        assert_eq!(
            unwrap_imported(&k, "RSAES_PKCS1_V1_5", &blob),
            Err(RsaCryptError::Algorithm)
        );
    }
}
