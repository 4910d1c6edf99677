//! Asymmetric signing keys: generation (the private key as a PKCS#8 document in a
//! [`Secret`]), the public key as DER SubjectPublicKeyInfo, and signing and verification
//! with AWS KMS's signing algorithms, over raw messages or precomputed digests.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};

use crate::Secret;

/// An asymmetric key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
    P521,
    P256K1,
}

/// Why an asymmetric operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsymError {
    /// The signing algorithm does not go with the key.
    #[error("the signing algorithm is not valid for this key")]
    Algorithm,
    /// A DIGEST message of the wrong length for the algorithm's hash.
    #[error("the digest length does not match the signing algorithm")]
    DigestLength,
    #[error("the key material is damaged or could not be used")]
    Key,
    /// The peer's public key is malformed or of another curve.
    #[error("the public key is not valid for this key's curve")]
    PeerKey,
}

impl Spec {
    /// AWS's signing algorithms for the key type.
    pub fn signing_algorithms(self) -> &'static [&'static str] {
        match self {
            Spec::Rsa2048 | Spec::Rsa3072 | Spec::Rsa4096 => &[
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
            ],
            Spec::P256 | Spec::P256K1 => &["ECDSA_SHA_256"],
            Spec::P384 => &["ECDSA_SHA_384"],
            Spec::P521 => &["ECDSA_SHA_512"],
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, Spec::Rsa2048 | Spec::Rsa3072 | Spec::Rsa4096)
    }

    fn ecdsa(self) -> Option<&'static signature::EcdsaSigningAlgorithm> {
        Some(match self {
            Spec::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Spec::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            Spec::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            Spec::P256K1 => &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
            _ => return None,
        })
    }

    fn ecdsa_verify(self) -> Option<&'static signature::EcdsaVerificationAlgorithm> {
        Some(match self {
            Spec::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Spec::P384 => &signature::ECDSA_P384_SHA384_ASN1,
            Spec::P521 => &signature::ECDSA_P521_SHA512_ASN1,
            Spec::P256K1 => &signature::ECDSA_P256K1_SHA256_ASN1,
            _ => return None,
        })
    }
}

/// A new private key, as PKCS#8.
pub fn generate(spec: Spec) -> Result<Secret, AsymError> {
    let doc = match spec {
        Spec::Rsa2048 | Spec::Rsa3072 | Spec::Rsa4096 => {
            let size = match spec {
                Spec::Rsa2048 => KeySize::Rsa2048,
                Spec::Rsa3072 => KeySize::Rsa3072,
                _ => KeySize::Rsa4096,
            };
            RsaKeyPair::generate(size)
                .and_then(|k| k.as_der())
                .map(|d| d.as_ref().to_vec())
        }
        _ => {
            let alg = spec.ecdsa().ok_or(AsymError::Key)?;
            EcdsaKeyPair::generate(alg)
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec())
        }
    };
    doc.map(Secret::new).map_err(|_| AsymError::Key)
}

/// Checks a private key brought from outside (PKCS#8 DER) against the key type — RSA of
/// exactly the spec's size, or a key on the spec's curve — and returns it in the PKCS#8
/// form Coffer generates itself.
pub fn import_private(spec: Spec, pkcs8: &[u8]) -> Result<Secret, AsymError> {
    let doc = if spec.is_rsa() {
        let bits = match spec {
            Spec::Rsa2048 => 2048,
            Spec::Rsa3072 => 3072,
            _ => 4096,
        };
        let k = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| AsymError::Key)?;
        if k.public_modulus_len() * 8 != bits {
            return Err(AsymError::Key);
        }
        k.as_der().map(|d| d.as_ref().to_vec())
    } else {
        let alg = spec.ecdsa().ok_or(AsymError::Key)?;
        let k = EcdsaKeyPair::from_pkcs8(alg, pkcs8).map_err(|_| AsymError::Key)?;
        k.to_pkcs8v1().map(|d| d.as_ref().to_vec())
    };
    doc.map(Secret::new).map_err(|_| AsymError::Key)
}

/// The public key as DER SubjectPublicKeyInfo (what GetPublicKey returns).
pub fn public_key_der(spec: Spec, private: &Secret) -> Result<Vec<u8>, AsymError> {
    if spec.is_rsa() {
        let k = RsaKeyPair::from_pkcs8(private.expose()).map_err(|_| AsymError::Key)?;
        let der = k.public_key().as_der().map_err(|_| AsymError::Key)?;
        Ok(der.as_ref().to_vec())
    } else {
        let alg = spec.ecdsa().ok_or(AsymError::Key)?;
        let k = EcdsaKeyPair::from_pkcs8(alg, private.expose()).map_err(|_| AsymError::Key)?;
        let der = k.public_key().as_der().map_err(|_| AsymError::Key)?;
        Ok(der.as_ref().to_vec())
    }
}

/// The hash of an AWS signing algorithm.
fn hash(algorithm: &str) -> Option<&'static digest::Algorithm> {
    Some(match algorithm.rsplit('_').next()? {
        "256" => &digest::SHA256,
        "384" => &digest::SHA384,
        "512" => &digest::SHA512,
        _ => return None,
    })
}

fn rsa_encoding(algorithm: &str) -> Option<&'static dyn signature::RsaEncoding> {
    Some(match algorithm {
        "RSASSA_PSS_SHA_256" => &signature::RSA_PSS_SHA256,
        "RSASSA_PSS_SHA_384" => &signature::RSA_PSS_SHA384,
        "RSASSA_PSS_SHA_512" => &signature::RSA_PSS_SHA512,
        "RSASSA_PKCS1_V1_5_SHA_256" => &signature::RSA_PKCS1_SHA256,
        "RSASSA_PKCS1_V1_5_SHA_384" => &signature::RSA_PKCS1_SHA384,
        "RSASSA_PKCS1_V1_5_SHA_512" => &signature::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

fn rsa_verification(algorithm: &str) -> Option<&'static signature::RsaParameters> {
    Some(match algorithm {
        "RSASSA_PSS_SHA_256" => &signature::RSA_PSS_2048_8192_SHA256,
        "RSASSA_PSS_SHA_384" => &signature::RSA_PSS_2048_8192_SHA384,
        "RSASSA_PSS_SHA_512" => &signature::RSA_PSS_2048_8192_SHA512,
        "RSASSA_PKCS1_V1_5_SHA_256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RSASSA_PKCS1_V1_5_SHA_384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RSASSA_PKCS1_V1_5_SHA_512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

/// The message as the digest the signature covers: hashed here for RAW, as given (after
/// a length check) for DIGEST.
fn digest_of(algorithm: &str, message: &[u8], is_digest: bool) -> Result<Digest, AsymError> {
    let h = hash(algorithm).ok_or(AsymError::Algorithm)?;
    if is_digest {
        if message.len() != h.output_len() {
            return Err(AsymError::DigestLength);
        }
        Digest::import_less_safe(message, h).map_err(|_| AsymError::DigestLength)
    } else {
        Ok(digest::digest(h, message))
    }
}

fn check_algorithm(spec: Spec, algorithm: &str) -> Result<(), AsymError> {
    if spec.signing_algorithms().contains(&algorithm) {
        Ok(())
    } else {
        Err(AsymError::Algorithm)
    }
}

/// Signs `message` (or, with `is_digest`, the digest it is) with the private key.
pub fn sign(
    spec: Spec,
    private: &Secret,
    algorithm: &str,
    message: &[u8],
    is_digest: bool,
) -> Result<Vec<u8>, AsymError> {
    check_algorithm(spec, algorithm)?;
    let d = digest_of(algorithm, message, is_digest)?;
    if spec.is_rsa() {
        let k = RsaKeyPair::from_pkcs8(private.expose()).map_err(|_| AsymError::Key)?;
        let enc = rsa_encoding(algorithm).ok_or(AsymError::Algorithm)?;
        let mut sig = vec![0u8; k.public_modulus_len()];
        k.sign_digest(enc, &d, &mut sig)
            .map_err(|_| AsymError::Key)?;
        Ok(sig)
    } else {
        let alg = spec.ecdsa().ok_or(AsymError::Key)?;
        let k = EcdsaKeyPair::from_pkcs8(alg, private.expose()).map_err(|_| AsymError::Key)?;
        let sig = k.sign_digest(&d).map_err(|_| AsymError::Key)?;
        Ok(sig.as_ref().to_vec())
    }
}

/// Whether `signature` is the key's signature of `message` (or of the digest it is).
pub fn verify(
    spec: Spec,
    private: &Secret,
    algorithm: &str,
    message: &[u8],
    is_digest: bool,
    sig: &[u8],
) -> Result<bool, AsymError> {
    check_algorithm(spec, algorithm)?;
    let d = digest_of(algorithm, message, is_digest)?;
    let ok = if spec.is_rsa() {
        let k = RsaKeyPair::from_pkcs8(private.expose()).map_err(|_| AsymError::Key)?;
        let params = rsa_verification(algorithm).ok_or(AsymError::Algorithm)?;
        UnparsedPublicKey::new(params, k.public_key().as_ref())
            .verify_digest(&d, sig)
            .is_ok()
    } else {
        let alg = spec.ecdsa().ok_or(AsymError::Key)?;
        let k = EcdsaKeyPair::from_pkcs8(alg, private.expose()).map_err(|_| AsymError::Key)?;
        let v = spec.ecdsa_verify().ok_or(AsymError::Key)?;
        UnparsedPublicKey::new(v, k.public_key().as_ref())
            .verify_digest(&d, sig)
            .is_ok()
    };
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        for spec in [
            Spec::P256,
            Spec::P384,
            Spec::P521,
            Spec::P256K1,
            Spec::Rsa2048,
        ] {
            let k = generate(spec).expect("generate");
            assert!(!public_key_der(spec, &k).expect("der").is_empty());
            for alg in spec.signing_algorithms() {
                let sig = sign(spec, &k, alg, b"message", false).expect("sign");
                assert!(verify(spec, &k, alg, b"message", false, &sig).expect("verify"));
                assert!(!verify(spec, &k, alg, b"messagf", false, &sig).expect("verify"));
                let h = digest::digest(hash(alg).expect("hash"), b"message");
                assert!(verify(spec, &k, alg, h.as_ref(), true, &sig).expect("digest"));
                assert_eq!(
                    sign(spec, &k, alg, b"short", true),
                    Err(AsymError::DigestLength)
                );
            }
            assert_eq!(
                sign(spec, &k, "ECDSA_SHA_999", b"m", false),
                Err(AsymError::Algorithm)
            );
        }
    }
}

/// RSA encryption: AWS's `RSAES_OAEP_SHA_1` and `RSAES_OAEP_SHA_256`.
pub const RSA_ENCRYPTION_ALGORITHMS: &[&str] = &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"];

fn oaep(algorithm: &str) -> Option<&'static aws_lc_rs::rsa::OaepAlgorithm> {
    match algorithm {
        "RSAES_OAEP_SHA_1" => Some(&aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1),
        "RSAES_OAEP_SHA_256" => Some(&aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

/// Why RSA encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsaCryptError {
    #[error("the encryption algorithm is not valid for this key")]
    Algorithm,
    #[error("the plaintext is too long for this key and algorithm (at most {0} bytes)")]
    TooLong(usize),
    /// Decryption failed: wrong key, algorithm or tampered ciphertext.
    #[error("decryption failed")]
    Decrypt,
    #[error("the key material is damaged or could not be used")]
    Key,
}

fn decrypting_key(
    private: &Secret,
) -> Result<aws_lc_rs::rsa::OaepPrivateDecryptingKey, RsaCryptError> {
    let k = aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(private.expose())
        .map_err(|_| RsaCryptError::Key)?;
    aws_lc_rs::rsa::OaepPrivateDecryptingKey::new(k).map_err(|_| RsaCryptError::Key)
}

/// RSA-OAEP encryption under the key's public half.
pub fn rsa_encrypt(
    private: &Secret,
    algorithm: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, RsaCryptError> {
    let alg = oaep(algorithm).ok_or(RsaCryptError::Algorithm)?;
    let k = aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(private.expose())
        .map_err(|_| RsaCryptError::Key)?;
    let public = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(k.public_key())
        .map_err(|_| RsaCryptError::Key)?;
    let max = public.max_plaintext_size(alg);
    if plaintext.is_empty() || plaintext.len() > max {
        return Err(RsaCryptError::TooLong(max));
    }
    let mut out = vec![0u8; public.ciphertext_size()];
    let n = public
        .encrypt(alg, plaintext, &mut out, None)
        .map_err(|_| RsaCryptError::Key)?
        .len();
    out.truncate(n);
    Ok(out)
}

/// RSA-OAEP decryption; the plaintext lands in a [`Secret`].
pub fn rsa_decrypt(
    private: &Secret,
    algorithm: &str,
    ciphertext: &[u8],
) -> Result<Secret, RsaCryptError> {
    let alg = oaep(algorithm).ok_or(RsaCryptError::Algorithm)?;
    let k = decrypting_key(private)?;
    let mut out = Secret::new(vec![0u8; k.min_output_size()]);
    let n = k
        .decrypt(alg, ciphertext, out.as_mut(), None)
        .map_err(|_| RsaCryptError::Decrypt)?
        .len();
    Ok(Secret::from_slice(&out.expose()[..n]))
}

#[cfg(test)]
mod rsa_tests {
    use super::*;

    #[test]
    fn oaep_round_trips_and_rejects_what_it_should() {
        let k = generate(Spec::Rsa2048).expect("generate");
        for alg in RSA_ENCRYPTION_ALGORITHMS {
            let c = rsa_encrypt(&k, alg, b"secret").expect("encrypt");
            assert_eq!(
                rsa_decrypt(&k, alg, &c).expect("decrypt").expose(),
                b"secret"
            );
            let mut bad = c.clone();
            bad[10] ^= 1;
            assert_eq!(rsa_decrypt(&k, alg, &bad), Err(RsaCryptError::Decrypt));
        }
        assert!(matches!(
            rsa_encrypt(&k, "RSAES_OAEP_SHA_256", &[0u8; 191]),
            Err(RsaCryptError::TooLong(190))
        ));
    }
}

/// ECDH between the key (NIST curves) and a peer's public key (DER SubjectPublicKeyInfo or
/// an SEC1 point): the raw shared secret.
pub fn ecdh(spec: Spec, private: &Secret, peer: &[u8]) -> Result<Secret, AsymError> {
    use aws_lc_rs::agreement;
    let alg = match spec {
        Spec::P256 => &agreement::ECDH_P256,
        Spec::P384 => &agreement::ECDH_P384,
        Spec::P521 => &agreement::ECDH_P521,
        _ => return Err(AsymError::Algorithm),
    };
    let k = agreement::PrivateKey::from_private_key_der(alg, private.expose())
        .map_err(|_| AsymError::Key)?;
    agreement::agree(
        &k,
        agreement::UnparsedPublicKey::new(alg, peer),
        AsymError::PeerKey,
        |s| Ok(Secret::from_slice(s)),
    )
}

#[cfg(test)]
mod ecdh_tests {
    use super::*;

    #[test]
    fn both_sides_derive_the_same_secret() {
        let a = generate(Spec::P256).expect("a");
        let b = generate(Spec::P256).expect("b");
        let ab = ecdh(
            Spec::P256,
            &a,
            &public_key_der(Spec::P256, &b).expect("b pub"),
        )
        .expect("ab");
        let ba = ecdh(
            Spec::P256,
            &b,
            &public_key_der(Spec::P256, &a).expect("a pub"),
        )
        .expect("ba");
        assert_eq!(ab.expose(), ba.expose());
        assert_eq!(
            ecdh(Spec::P256, &a, b"not a key").err(),
            Some(AsymError::PeerKey)
        );
        let c = generate(Spec::P384).expect("c");
        assert_eq!(
            ecdh(
                Spec::P256,
                &a,
                &public_key_der(Spec::P384, &c).expect("c pub")
            )
            .err(),
            Some(AsymError::PeerKey)
        );
    }
}
