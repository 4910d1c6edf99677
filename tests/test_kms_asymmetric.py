"""Asymmetric signing keys (RSA_2048/3072/4096, ECC_NIST_P256/P384/P521, ECC_SECG_P256K1;
SIGN_VERIFY) through boto3 and the aws CLI, checked against independent implementations:
every signature Coffer makes verifies with Python's `cryptography` and with `openssl`
using the public key from GetPublicKey, and Coffer's Verify agrees."""

import base64
import hashlib
import subprocess
import tempfile

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from conftest import Server
from test_iam import code


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-asym-") as d:
        s = Server(d).start()
        yield s
        s.stop()


HASH = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
HASHLIB = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def independent_verify(public_der, algorithm, message, signature):
    pub = serialization.load_der_public_key(public_der)
    h = HASH[algorithm.rsplit("_", 1)[1]]
    if algorithm.startswith("ECDSA"):
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        pub.verify(signature, message, ec.ECDSA(h))
    elif algorithm.startswith("RSASSA_PSS"):
        assert isinstance(pub, rsa.RSAPublicKey)
        pub.verify(signature, message, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    else:
        pub.verify(signature, message, padding.PKCS1v15(), h)


@pytest.mark.parametrize("spec,curve", [
    ("ECC_NIST_P256", "secp256r1"), ("ECC_NIST_P384", "secp384r1"), ("ECC_NIST_P521", "secp521r1"),
    ("ECC_SECG_P256K1", "secp256k1"), ("RSA_2048", None), ("RSA_3072", None), ("RSA_4096", None),
])
def test_signatures_verify_with_cryptography_and_coffer(srv, spec, curve):
    kms = srv.client("kms")
    k = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert k["KeySpec"] == spec and k["KeyUsage"] == "SIGN_VERIFY" and "EncryptionAlgorithms" not in k, k
    pk = kms.get_public_key(KeyId=k["KeyId"])
    assert pk["KeySpec"] == spec and pk["SigningAlgorithms"] == k["SigningAlgorithms"], pk
    pub = serialization.load_der_public_key(pk["PublicKey"])
    if curve:
        assert pub.curve.name == curve
    else:
        assert pub.key_size == int(spec.split("_")[1])
    message = b"the statement to sign"
    for alg in k["SigningAlgorithms"]:
        sig = kms.sign(KeyId=k["KeyId"], Message=message, MessageType="RAW", SigningAlgorithm=alg)
        assert sig["KeyId"] == k["Arn"] and sig["SigningAlgorithm"] == alg
        independent_verify(pk["PublicKey"], alg, message, sig["Signature"])
        assert kms.verify(KeyId=k["KeyId"], Message=message, Signature=sig["Signature"],
                          SigningAlgorithm=alg)["SignatureValid"] is True
        # DIGEST: the caller hashes; the signature is the same kind.
        digest = HASHLIB[alg.rsplit("_", 1)[1]](message).digest()
        dsig = kms.sign(KeyId=k["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm=alg)["Signature"]
        independent_verify(pk["PublicKey"], alg, message, dsig)
        assert kms.verify(KeyId=k["KeyId"], Message=message, MessageType="RAW", Signature=dsig,
                          SigningAlgorithm=alg)["SignatureValid"] is True
        assert code(kms.verify, KeyId=k["KeyId"], Message=b"another statement", Signature=sig["Signature"],
                    SigningAlgorithm=alg) == (400, "KMSInvalidSignatureException")
        if spec in ("RSA_3072", "RSA_4096"):
            break  # every algorithm on RSA_2048; one on the larger sizes
    if spec == "RSA_2048":
        assert sorted(k["SigningAlgorithms"]) == sorted(
            f"RSASSA_{p}_SHA_{n}" for p in ("PSS", "PKCS1_V1_5") for n in (256, 384, 512)), k


def test_openssl_verifies_a_coffer_signature(srv, tmp_path):
    kms = srv.client("kms")
    kid = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    (tmp_path / "pub.der").write_bytes(kms.get_public_key(KeyId=kid)["PublicKey"])
    (tmp_path / "msg").write_bytes(b"signed by coffer")
    # The aws CLI (v1 sends blob arguments as given, so the message goes through a file).
    out = srv.aws("kms", "sign", "--key-id", kid, "--message", f"fileb://{tmp_path / 'msg'}",
                  "--message-type", "RAW", "--signing-algorithm", "ECDSA_SHA_256", expect_json=True)
    (tmp_path / "sig").write_bytes(base64.b64decode(out["Signature"]))
    p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.der"), "-keyform", "DER",
                        "-signature", str(tmp_path / "sig"), str(tmp_path / "msg")], capture_output=True, text=True)
    assert p.returncode == 0 and "Verified OK" in p.stdout, p.stdout + p.stderr
    (tmp_path / "msg").write_bytes(b"signed by someone else")
    p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.der"), "-keyform", "DER",
                        "-signature", str(tmp_path / "sig"), str(tmp_path / "msg")], capture_output=True, text=True)
    assert p.returncode != 0


def test_asymmetric_key_errors_and_restart():
    with tempfile.TemporaryDirectory(prefix="coffer-asym-restart-") as d:
        s = Server(d).start()
        kms = s.client("kms")
        k = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        sym = kms.create_key()["KeyMetadata"]["KeyId"]
        assert code(kms.sign, KeyId=k, Message=b"m", SigningAlgorithm="ECDSA_SHA_256") == (400, "InvalidKeyUsageException")
        assert code(kms.sign, KeyId=k, Message=b"short", MessageType="DIGEST",
                    SigningAlgorithm="ECDSA_SHA_384")[1] == "ValidationException"
        assert code(kms.sign, KeyId=sym, Message=b"m", SigningAlgorithm="ECDSA_SHA_256") == (400, "InvalidKeyUsageException")
        assert code(kms.encrypt, KeyId=k, Plaintext=b"m") == (400, "InvalidKeyUsageException")
        assert code(kms.get_public_key, KeyId=sym)[1] == "UnsupportedOperationException"
        assert code(kms.create_key, KeySpec="ECC_NIST_P256")[1] == "ValidationException"
        assert code(kms.enable_key_rotation, KeyId=k) == (400, "UnsupportedOperationException")
        sig = kms.sign(KeyId=k, Message=b"m", SigningAlgorithm="ECDSA_SHA_384")["Signature"]
        der = kms.get_public_key(KeyId=k)["PublicKey"]
        kms.disable_key(KeyId=k)
        assert code(kms.sign, KeyId=k, Message=b"m", SigningAlgorithm="ECDSA_SHA_384") == (400, "DisabledException")
        kms.enable_key(KeyId=k)
        s.stop()
        s.start()
        kms = s.client("kms")
        assert kms.get_public_key(KeyId=k)["PublicKey"] == der
        assert kms.verify(KeyId=k, Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_384")["SignatureValid"]
        s.stop()


@pytest.mark.parametrize("spec", ["RSA_2048", "RSA_3072", "RSA_4096"])
def test_data_encrypted_outside_with_the_public_key_decrypts_in_coffer(srv, spec, tmp_path):
    kms = srv.client("kms")
    k = kms.create_key(KeySpec=spec, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    assert k["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"], k
    pk = kms.get_public_key(KeyId=k["KeyId"])
    assert pk["EncryptionAlgorithms"] == k["EncryptionAlgorithms"] and "SigningAlgorithms" not in pk, pk
    pub = serialization.load_der_public_key(pk["PublicKey"])
    for alg, h in [("RSAES_OAEP_SHA_1", hashes.SHA1()), ("RSAES_OAEP_SHA_256", hashes.SHA256())]:
        outside = pub.encrypt(b"made outside", padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
        got = kms.decrypt(KeyId=k["KeyId"], CiphertextBlob=outside, EncryptionAlgorithm=alg)
        assert got["Plaintext"] == b"made outside" and got["EncryptionAlgorithm"] == alg, got
        inside = kms.encrypt(KeyId=k["KeyId"], Plaintext=b"made inside", EncryptionAlgorithm=alg)["CiphertextBlob"]
        assert kms.decrypt(KeyId=k["KeyId"], CiphertextBlob=inside, EncryptionAlgorithm=alg)["Plaintext"] == b"made inside"
        bad = bytes([outside[0] ^ 1]) + outside[1:]
        assert code(kms.decrypt, KeyId=k["KeyId"], CiphertextBlob=bad, EncryptionAlgorithm=alg) == \
            (400, "InvalidCiphertextException")
    # openssl, as AWS's documentation does it.
    (tmp_path / "pub.der").write_bytes(pk["PublicKey"])
    (tmp_path / "plain").write_bytes(b"wrapped by openssl")
    subprocess.run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", str(tmp_path / "pub.der"), "-keyform", "DER",
                    "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256",
                    "-in", str(tmp_path / "plain"), "-out", str(tmp_path / "enc")], check=True, capture_output=True)
    got = kms.decrypt(KeyId=k["KeyId"], CiphertextBlob=(tmp_path / "enc").read_bytes(),
                      EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"]
    assert got == b"wrapped by openssl"
    # Symmetric operations, and RSA decryption without the key id, are refused.
    assert code(kms.encrypt, KeyId=k["KeyId"], Plaintext=b"x")[1] == "InvalidKeyUsageException"
    assert code(kms.generate_data_key, KeyId=k["KeyId"], KeySpec="AES_256")[1] == "InvalidKeyUsageException"
    assert code(kms.decrypt, CiphertextBlob=outside, EncryptionAlgorithm="RSAES_OAEP_SHA_256")[1] == "ValidationException"
    assert code(kms.encrypt, KeyId=k["KeyId"], Plaintext=b"x" * 600, EncryptionAlgorithm="RSAES_OAEP_SHA_256")[1] == \
        "ValidationException"


@pytest.mark.parametrize("pair_spec", ["ECC_NIST_P256", "ECC_SECG_P256K1", "RSA_2048"])
def test_generate_data_key_pair(srv, pair_spec):
    kms = srv.client("kms")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    ctx = {"purpose": "pair"}
    r = kms.generate_data_key_pair(KeyId=kid, KeyPairSpec=pair_spec, EncryptionContext=ctx)
    assert r["KeyPairSpec"] == pair_spec and r["KeyId"].endswith(kid), r
    private = serialization.load_der_private_key(r["PrivateKeyPlaintext"], password=None)
    public = serialization.load_der_public_key(r["PublicKey"])
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert private.public_key().public_bytes(*der) == public.public_bytes(*der)
    # The sealed private key opens with Decrypt under the same context only.
    assert kms.decrypt(CiphertextBlob=r["PrivateKeyCiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == \
        r["PrivateKeyPlaintext"]
    assert code(kms.decrypt, CiphertextBlob=r["PrivateKeyCiphertextBlob"]) == (400, "InvalidCiphertextException")
    w = kms.generate_data_key_pair_without_plaintext(KeyId=kid, KeyPairSpec=pair_spec)
    assert "PrivateKeyPlaintext" not in w and w["PublicKey"] != r["PublicKey"], w
    opened = kms.decrypt(CiphertextBlob=w["PrivateKeyCiphertextBlob"])["Plaintext"]
    assert serialization.load_der_private_key(opened, password=None).public_key().public_bytes(*der) == \
        serialization.load_der_public_key(w["PublicKey"]).public_bytes(*der)
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    assert code(kms.generate_data_key_pair, KeyId=signing, KeyPairSpec=pair_spec)[1] == "InvalidKeyUsageException"
    assert code(kms.generate_data_key_pair, KeyId=kid, KeyPairSpec="RSA_1024")[1] == "ValidationException"


@pytest.mark.parametrize("spec,curve", [("ECC_NIST_P256", ec.SECP256R1()), ("ECC_NIST_P384", ec.SECP384R1()),
                                        ("ECC_NIST_P521", ec.SECP521R1())])
def test_derive_shared_secret_matches_the_peer(srv, spec, curve):
    kms = srv.client("kms")
    k = kms.create_key(KeySpec=spec, KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    assert k["KeyAgreementAlgorithms"] == ["ECDH"], k
    pk = kms.get_public_key(KeyId=k["KeyId"])
    assert pk["KeyAgreementAlgorithms"] == ["ECDH"] and pk["KeyUsage"] == "KEY_AGREEMENT", pk
    peer = ec.generate_private_key(curve)
    peer_der = peer.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    got = kms.derive_shared_secret(KeyId=k["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
    ours = peer.exchange(ec.ECDH(), serialization.load_der_public_key(pk["PublicKey"]))
    assert got["SharedSecret"] == ours and got["KeyId"] == k["Arn"], got
    # Wrong curve, a signing key, and a KEY_AGREEMENT key used to sign.
    other = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert code(kms.derive_shared_secret, KeyId=k["KeyId"], KeyAgreementAlgorithm="ECDH",
                PublicKey=other)[1] == "ValidationException"
    assert code(kms.sign, KeyId=k["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")[1] == \
        "InvalidKeyUsageException"
    signing = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    assert code(kms.derive_shared_secret, KeyId=signing, KeyAgreementAlgorithm="ECDH",
                PublicKey=peer_der)[1] == "InvalidKeyUsageException"
