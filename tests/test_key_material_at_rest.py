"""No key material at rest in plaintext, for every kind, also after deletion.

Generated material never leaves the server, so the test finds it the way an attacker with
the data directory and the root key would: it unwraps each `kms_materials` row with the
root key file (AES-256-GCM, `0x01 || nonce || ciphertext || tag`, associated data
`coffer:kms-material:v1:KEY_ID:VERSION`), proves the result is the key's real material
with an independent library (Python's `hmac` reproduces GenerateMac; `cryptography`
derives GetPublicKey's public key from the private key; a symmetric key opens an Encrypt
ciphertext blob by its documented format), and then scans every file of the data
directory for that material (raw, hex and base64). The same scan covers what the server
hands out and must not keep: imported material, GenerateDataKeyPair private keys,
GenerateDataKey plaintexts and role-session secrets and tokens. After every key is
deleted (a short KMS day), the scan runs again."""

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from conftest import TIER, Server

pytestmark = pytest.mark.skipif(TIER == "s3", reason="reads the embedded store's files")

KINDS = [
    ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    ("HMAC_224", "GENERATE_VERIFY_MAC"),
    ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ("HMAC_384", "GENERATE_VERIFY_MAC"),
    ("HMAC_512", "GENERATE_VERIFY_MAC"),
    ("RSA_2048", "SIGN_VERIFY"),
    ("RSA_3072", "ENCRYPT_DECRYPT"),
    ("RSA_4096", "SIGN_VERIFY"),
    ("ECC_NIST_P256", "SIGN_VERIFY"),
    ("ECC_NIST_P384", "SIGN_VERIFY"),
    ("ECC_NIST_P521", "SIGN_VERIFY"),
    ("ECC_SECG_P256K1", "SIGN_VERIFY"),
    ("ECC_NIST_P256", "KEY_AGREEMENT"),
]


def encodings(secret: bytes):
    """The secret as bytes, hex in either case, and base64 (standard and URL-safe) at each
    of the three alignments it can have inside a longer base64 text (or wrapped PEM: the
    middle of a line's worth is enough)."""
    yield secret
    yield secret.hex().encode()
    yield secret.hex().upper().encode()
    for shift in range(3):
        b64 = base64.b64encode(bytes(shift) + secret)
        # Drop the characters that also encode the padding and the final partial group.
        core = b64[4:-4] if shift else b64[:-4]
        core = core[:64]
        if len(core) >= 16:
            yield core
            yield core.replace(b"+", b"-").replace(b"/", b"_")


def holders(data_dir, secrets):
    """(file, secret name) for every file of the data directory holding a secret."""
    found = []
    for p in sorted(data_dir.rglob("*")):
        if not p.is_file():
            continue
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            continue
        for name, secret in secrets.items():
            if any(e in data for e in encodings(secret)):
                found.append((str(p.relative_to(data_dir)), name))
    return found


def unwrap_all(data_dir):
    """key id -> {version: material}, unwrapped with the root key file."""
    root = (data_dir / "root.key").read_bytes()
    assert len(root) == 32
    db = sqlite3.connect(f"file:{data_dir / 'meta.sqlite'}?mode=ro", uri=True)
    out = {}
    for key_id, version, wrapped in db.execute("SELECT key_id, version, wrapped FROM kms_materials"):
        assert wrapped[0] == 1, "wrap format version"
        aad = f"coffer:kms-material:v1:{key_id}:{version}".encode()
        out.setdefault(key_id, {})[version] = AESGCM(root).decrypt(wrapped[1:13], wrapped[13:], aad)
    db.close()
    return out


def import_rsa(kms):
    """An EXTERNAL RSA_2048 key with material made here, wrapped as AWS documents
    (RSA_AES_KEY_WRAP_SHA_256). Returns (key id, PKCS#8 DER)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    k = kms.create_key(Origin="EXTERNAL", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    p = kms.get_parameters_for_import(KeyId=k["KeyId"], WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
                                      WrappingKeySpec="RSA_3072")
    wrapping = serialization.load_der_public_key(p["PublicKey"])
    aes = os.urandom(32)
    wrapped = wrapping.encrypt(aes, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                 algorithm=hashes.SHA256(), label=None))
    wrapped += aes_key_wrap_with_padding(aes, der)
    kms.import_key_material(KeyId=k["KeyId"], ImportToken=p["ImportToken"],
                            EncryptedKeyMaterial=wrapped, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    return k["KeyId"], der


def open_ciphertext(blob, material, context):
    """A KMS ciphertext blob opened by its documented format: version 0x01, the key id's
    16 bytes, the material version (u32 BE), a 12-byte nonce, the ciphertext and tag;
    associated data the 21-byte header and the canonical context."""
    header = blob[:21]
    aad = header
    if context:
        aad += b"coffer-ec-v1"
        for k, v in sorted((k.encode(), v.encode()) for k, v in context.items()):
            aad += len(k).to_bytes(4, "big") + k + len(v).to_bytes(4, "big") + v
    return AESGCM(material).decrypt(blob[21:33], blob[33:], aad)


def test_no_key_material_at_rest_in_plaintext_for_any_kind_also_after_deletion(tmp_path):
    d = tmp_path / "data"
    s = Server(d).start()
    try:
        kms = s.client("kms")
        secrets = {}
        keys = {}
        for spec, usage in KINDS:
            k = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
            keys[k["KeyId"]] = (spec, usage)
        sym = next(k for k, v in keys.items() if v[0] == "SYMMETRIC_DEFAULT")
        kms.rotate_key_on_demand(KeyId=sym)
        ctx = {"purpose": "at-rest test"}
        blob = kms.encrypt(KeyId=sym, Plaintext=b"opened outside", EncryptionContext=ctx)["CiphertextBlob"]
        macs = {}
        publics = {}
        for kid, (spec, usage) in keys.items():
            if spec.startswith("HMAC"):
                alg = "HMAC_SHA_" + spec.split("_")[1]
                macs[kid] = (alg, kms.generate_mac(KeyId=kid, Message=b"m", MacAlgorithm=alg)["Mac"])
            elif spec != "SYMMETRIC_DEFAULT":
                publics[kid] = kms.get_public_key(KeyId=kid)["PublicKey"]
        imported, der = import_rsa(kms)
        secrets["imported RSA private key"] = der
        for pair in ("RSA_2048", "ECC_NIST_P256"):
            r = kms.generate_data_key_pair(KeyId=sym, KeyPairSpec=pair)
            secrets[f"data key pair {pair} private key"] = r["PrivateKeyPlaintext"]
        secrets["data key"] = kms.generate_data_key(KeyId=sym, KeySpec="AES_256")["Plaintext"]
        iam = s.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"AWS": f"arn:aws:iam::{s.client('sts').get_caller_identity()['Account']}:root"}}]}
        role = iam.create_role(RoleName="at-rest", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        cred = s.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="at-rest")["Credentials"]
        secrets["role session secret"] = cred["SecretAccessKey"].encode()
        secrets["role session token"] = cred["SessionToken"].encode()
    finally:
        s.stop()

    materials = unwrap_all(d)
    # Every key's material was found and is the real thing.
    assert set(keys) | {imported} <= set(materials), set(keys) - set(materials)
    assert len(materials[sym]) == 2, "the rotated key has two material versions"
    assert open_ciphertext(blob, materials[sym][max(materials[sym])], ctx) == b"opened outside"
    for kid, (alg, mac) in macs.items():
        digest = {"224": hashlib.sha224, "256": hashlib.sha256, "384": hashlib.sha384,
                  "512": hashlib.sha512}[alg.rsplit("_", 1)[1]]
        assert hmac.new(materials[kid][0], b"m", digest).digest() == mac, kid
    for kid, public in publics.items():
        private = serialization.load_der_private_key(materials[kid][0], password=None)
        assert private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public, kid
        if isinstance(private, ec.EllipticCurvePrivateKey):
            scalar = private.private_numbers().private_value
            n = (private.curve.key_size + 7) // 8
            secrets[f"{keys[kid]} private scalar"] = scalar.to_bytes(n, "big")
        else:
            secrets[f"{keys[kid]} private exponent"] = private.private_numbers().d.to_bytes(
                private.key_size // 8, "big")
    assert materials[imported][0] == der
    for kid, versions in materials.items():
        for v, m in versions.items():
            secrets[f"{keys.get(kid, ('imported', ''))} material v{v}"] = m
    assert holders(d, secrets) == []
    # The scan's control: it does find a secret kept in plaintext (the root key file's).
    assert holders(d, {"root key": (d / "root.key").read_bytes()}) == [("root.key", "root key")]

    # Deleted: every key scheduled for deletion, gone after the window (short days now:
    # an import token lives one day).
    s = Server(d, env={"COFFER_KMS_DAY_SECONDS": "0.05"}).start()
    try:
        kms = s.client("kms")
        for kid in list(keys) + [imported]:
            kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
        deadline = time.monotonic() + 60
        remaining = None
        while time.monotonic() < deadline:
            remaining = [k["KeyId"] for k in kms.list_keys()["Keys"] if k["KeyId"] in keys or k["KeyId"] == imported]
            if not remaining:
                break
            time.sleep(0.1)
        assert not remaining, remaining
    finally:
        s.stop()
    deleted = set(keys) | {imported}
    assert not set(unwrap_all(d)) & deleted, "deleted keys' material is still stored"
    assert holders(d, secrets) == []
