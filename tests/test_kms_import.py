"""Bring your own key (KMS keys of origin EXTERNAL) through the aws CLI, openssl and boto3.

The first two tests follow AWS's documented procedure as written: create a key with
`--origin EXTERNAL`, download the wrapping public key and import token with
`aws kms get-parameters-for-import`, wrap the key material with `openssl pkeyutl` (and
`openssl enc -id-aes256-wrap-pad` for the RSA_AES_KEY_WRAP algorithms), then
`aws kms import-key-material`. What was imported is checked independently: HMAC tags
equal Python's `hmac` over the material, signatures verify with the public half of the
private key made by openssl, and the material is nowhere in the data directory."""

import base64
import hashlib
import hmac
import os
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from conftest import ACCESS_KEY, SECRET_KEY, Server
from test_iam import code


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-byok-") as d:
        s = Server(d).start()
        yield s
        s.stop()


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, **kw)


def files_hold(root, needle: bytes) -> bool:
    for p in Path(root).rglob("*"):
        if p.is_file() and needle in p.read_bytes():
            return True
    return False


def download_parameters(srv, work: Path, key_id, algorithm, spec):
    """AWS's guide, step 2: one `aws kms get-parameters-for-import`, then the public key
    and the import token each base64-decoded into a file (jq + openssl enc -d -base64)."""
    script = f"""
set -euo pipefail
KEY_PARAMETERS=$(aws --endpoint-url {srv.endpoint} kms get-parameters-for-import \
    --key-id {key_id} --wrapping-algorithm {algorithm} --wrapping-key-spec {spec})
echo "$KEY_PARAMETERS" | jq -r .ImportToken > ImportToken.b64
echo "$KEY_PARAMETERS" | jq -r .PublicKey > PublicKey.b64
openssl enc -d -base64 -A -in PublicKey.b64 -out PublicKey.bin
openssl enc -d -base64 -A -in ImportToken.b64 -out ImportToken.bin
"""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
    p = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def openssl_wrap(work: Path, material: Path, algorithm: str):
    """AWS's openssl commands for each wrapping algorithm → EncryptedKeyMaterial.bin."""
    md = "sha256" if algorithm.endswith("SHA_256") else "sha1"
    oaep = ["-keyform", "DER", "-pubin", "-inkey", str(work / "PublicKey.bin"),
            "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}",
            "-pkeyopt", f"rsa_mgf1_md:{md}"]
    out = work / "EncryptedKeyMaterial.bin"
    if algorithm.startswith("RSAES_OAEP"):
        sh("openssl", "pkeyutl", "-encrypt", "-in", str(material), "-out", str(out), *oaep)
        return
    aes = work / "aes-key.bin"
    sh("openssl", "rand", "-out", str(aes), "32")
    sh("openssl", "enc", "-id-aes256-wrap-pad", "-K", aes.read_bytes().hex(), "-iv", "A65959A6",
       "-in", str(material), "-out", str(work / "key-material-wrapped.bin"))
    sh("openssl", "pkeyutl", "-encrypt", "-in", str(aes), "-out", str(work / "aes-key-wrapped.bin"), *oaep)
    out.write_bytes((work / "aes-key-wrapped.bin").read_bytes() + (work / "key-material-wrapped.bin").read_bytes())


def cli_import(srv, work: Path, key_id, *extra):
    return srv.aws(
        "kms", "import-key-material", "--key-id", key_id,
        "--encrypted-key-material", f"fileb://{work / 'EncryptedKeyMaterial.bin'}",
        "--import-token", f"fileb://{work / 'ImportToken.bin'}", *extra,
        expect_json=True,
    )


@pytest.mark.parametrize("algorithm,spec", [
    ("RSAES_OAEP_SHA_256", "RSA_2048"),
    ("RSAES_OAEP_SHA_1", "RSA_3072"),
    ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096"),
    ("RSA_AES_KEY_WRAP_SHA_1", "RSA_2048"),
])
def test_the_documented_procedure_imports_symmetric_material(srv, tmp_path, algorithm, spec):
    k = srv.aws("kms", "create-key", "--origin", "EXTERNAL", "--description", "byok",
                expect_json=True)["KeyMetadata"]
    assert k["Origin"] == "EXTERNAL" and k["KeyState"] == "PendingImport" and k["Enabled"] is False, k
    assert "CurrentKeyMaterialId" not in k
    key_id = k["KeyId"]
    # Unusable until imported.
    p = srv.aws("kms", "encrypt", "--key-id", key_id, "--plaintext", "aGk=", check=False)
    assert p.returncode != 0 and "KMSInvalidStateException" in p.stderr and "pending import" in p.stderr

    sh("openssl", "rand", "-out", str(tmp_path / "PlaintextKeyMaterial.bin"), "32")
    material = (tmp_path / "PlaintextKeyMaterial.bin").read_bytes()
    download_parameters(srv, tmp_path, key_id, algorithm, spec)
    pub = serialization.load_der_public_key((tmp_path / "PublicKey.bin").read_bytes())
    assert pub.key_size == int(spec.split("_")[1])
    openssl_wrap(tmp_path, tmp_path / "PlaintextKeyMaterial.bin", algorithm)
    out = cli_import(srv, tmp_path, key_id, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert out["KeyId"].endswith(key_id) and len(out["KeyMaterialId"]) == 64, out

    m = srv.aws("kms", "describe-key", "--key-id", key_id, expect_json=True)["KeyMetadata"]
    assert m["KeyState"] == "Enabled" and m["Enabled"] is True, m
    assert m["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "ValidTo" not in m, m
    assert m["CurrentKeyMaterialId"] == out["KeyMaterialId"]

    # The key works: through the KMS and for SSE-KMS objects.
    kms = srv.client("kms")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"brought my own key")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"brought my own key"
    s3 = srv.client("s3")
    bucket = f"byok-{algorithm.lower().replace('_', '-')}-{spec[-4:]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="o", Body=b"object under my key",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    got = s3.get_object(Bucket=bucket, Key="o")
    assert got["Body"].read() == b"object under my key" and got["SSEKMSKeyId"].endswith(key_id)

    # The material never rests in plaintext, nor does the wrapped copy or the token.
    for needle in (material, (tmp_path / "EncryptedKeyMaterial.bin").read_bytes(),
                   base64.b64encode(material)):
        assert not files_hold(srv.data_dir, needle)


def test_hmac_material_imported_with_the_cli_matches_python_hmac(srv, tmp_path):
    k = srv.aws("kms", "create-key", "--origin", "EXTERNAL", "--key-spec", "HMAC_384",
                "--key-usage", "GENERATE_VERIFY_MAC", expect_json=True)["KeyMetadata"]
    material = os.urandom(64)
    (tmp_path / "PlaintextKeyMaterial.bin").write_bytes(material)
    download_parameters(srv, tmp_path, k["KeyId"], "RSAES_OAEP_SHA_256", "RSA_2048")
    openssl_wrap(tmp_path, tmp_path / "PlaintextKeyMaterial.bin", "RSAES_OAEP_SHA_256")
    cli_import(srv, tmp_path, k["KeyId"], "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    kms = srv.client("kms")
    tag = kms.generate_mac(KeyId=k["KeyId"], Message=b"msg", MacAlgorithm="HMAC_SHA_384")["Mac"]
    assert tag == hmac.new(material, b"msg", hashlib.sha384).digest()


@pytest.mark.parametrize("spec,keygen", [
    ("RSA_2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
    ("ECC_NIST_P384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
])
def test_asymmetric_keys_made_with_openssl_are_imported_and_sign(srv, tmp_path, spec, keygen):
    """AWS's procedure for asymmetric material: a PKCS#8 DER private key, wrapped with
    RSA_AES_KEY_WRAP_SHA_256 (openssl enc -id-aes256-wrap-pad + pkeyutl)."""
    pem = tmp_path / "private.pem"
    sh("openssl", "genpkey", *keygen, "-out", str(pem))
    sh("openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(pem), "-outform", "DER",
       "-out", str(tmp_path / "PrivateKey.der"))
    k = srv.aws("kms", "create-key", "--origin", "EXTERNAL", "--key-spec", spec,
                "--key-usage", "SIGN_VERIFY", expect_json=True)["KeyMetadata"]
    # RSA private keys do not fit RSA-OAEP alone: AWS requires the key-wrap algorithms.
    if spec.startswith("RSA"):
        p = srv.aws("kms", "get-parameters-for-import", "--key-id", k["KeyId"],
                    "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_4096",
                    check=False)
        assert p.returncode != 0 and "ValidationException" in p.stderr, p.stderr
    download_parameters(srv, tmp_path, k["KeyId"], "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072")
    openssl_wrap(tmp_path, tmp_path / "PrivateKey.der", "RSA_AES_KEY_WRAP_SHA_256")
    cli_import(srv, tmp_path, k["KeyId"], "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")

    own = serialization.load_pem_private_key(pem.read_bytes(), None).public_key()
    kms = srv.client("kms")
    pub = kms.get_public_key(KeyId=k["KeyId"])["PublicKey"]
    assert pub == own.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    alg = "ECDSA_SHA_384" if spec.startswith("ECC") else "RSASSA_PSS_SHA_256"
    sig = kms.sign(KeyId=k["KeyId"], Message=b"signed with my key", SigningAlgorithm=alg)["Signature"]
    if spec.startswith("ECC"):
        own.verify(sig, b"signed with my key", ec.ECDSA(hashes.SHA384()))
    else:
        own.verify(sig, b"signed with my key",
                   padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    # And openssl agrees, with the public key from our own private key.
    (tmp_path / "msg").write_bytes(b"signed with my key")
    (tmp_path / "sig").write_bytes(sig)
    sh("openssl", "pkey", "-in", str(pem), "-pubout", "-out", str(tmp_path / "public.pem"))
    opts = ["-sha384"] if spec.startswith("ECC") else [
        "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
    sh("openssl", "dgst", *opts, "-verify", str(tmp_path / "public.pem"),
       "-signature", str(tmp_path / "sig"), str(tmp_path / "msg"))


def wrap(public_der, material, algorithm="RSAES_OAEP_SHA_256"):
    pub = serialization.load_der_public_key(public_der)
    h = hashes.SHA256() if algorithm.endswith("256") else hashes.SHA1()
    return pub.encrypt(material, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))


def test_material_expires_comes_back_only_the_same_and_can_be_deleted(tmp_path):
    """boto3, with a 2-second KMS "day": ValidTo, expiry in the background, SSE-KMS reads
    stopping and resuming, IncorrectKeyMaterialException, DeleteImportedKeyMaterial, and
    the import-token errors."""
    s = Server(tmp_path / "data", env={"COFFER_KMS_DAY_SECONDS": "2"}).start()
    try:
        kms, s3 = s.client("kms"), s.client("s3")
        key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
        material = os.urandom(32)

        def params(key_id=key, alg="RSAES_OAEP_SHA_256"):
            return kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=alg,
                                                 WrappingKeySpec="RSA_2048")

        # ExpirationModel defaults to KEY_MATERIAL_EXPIRES, which needs ValidTo.
        p = params()
        assert code(kms.import_key_material, KeyId=key, ImportToken=p["ImportToken"],
                    EncryptedKeyMaterial=wrap(p["PublicKey"], material)) == (400, "ValidationException")
        # Another key's token; a tampered token.
        other = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
        q = params(other)
        assert code(kms.import_key_material, KeyId=key, ImportToken=q["ImportToken"],
                    EncryptedKeyMaterial=wrap(q["PublicKey"], material),
                    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE") == (400, "InvalidImportTokenException")
        bad = bytearray(p["ImportToken"])
        bad[-3] ^= 1
        assert code(kms.import_key_material, KeyId=key, ImportToken=bytes(bad),
                    EncryptedKeyMaterial=wrap(p["PublicKey"], material),
                    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE") == (400, "InvalidImportTokenException")
        # Material wrapped under another wrapping key; material of the wrong size.
        assert code(kms.import_key_material, KeyId=key, ImportToken=p["ImportToken"],
                    EncryptedKeyMaterial=wrap(q["PublicKey"], material),
                    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE") == (400, "InvalidCiphertextException")
        assert code(kms.import_key_material, KeyId=key, ImportToken=p["ImportToken"],
                    EncryptedKeyMaterial=wrap(p["PublicKey"], material[:16]),
                    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE") == (400, "IncorrectKeyMaterialException")
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
        # Deprecated and foreign algorithms; keys Coffer generated; rotation of EXTERNAL keys.
        assert code(params, key, "RSAES_PKCS1_V1_5") == (400, "UnsupportedOperationException")
        own = kms.create_key()["KeyMetadata"]["KeyId"]
        assert code(params, own) == (400, "UnsupportedOperationException")
        assert code(kms.enable_key_rotation, KeyId=key) == (400, "UnsupportedOperationException")
        assert code(kms.enable_key, KeyId=key) == (400, "KMSInvalidStateException")

        # Import with ValidTo a few seconds ahead (the maximum is 365 "days").
        p = params()
        too_late = datetime.now(timezone.utc) + timedelta(seconds=2 * 366)
        assert code(kms.import_key_material, KeyId=key, ImportToken=p["ImportToken"],
                    EncryptedKeyMaterial=wrap(p["PublicKey"], material),
                    ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=too_late) == (400, "ValidationException")
        valid_to = datetime.now(timezone.utc) + timedelta(seconds=4)
        r = kms.import_key_material(KeyId=key, ImportToken=p["ImportToken"],
                                    EncryptedKeyMaterial=wrap(p["PublicKey"], material),
                                    ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
        material_id = r["KeyMaterialId"]
        m = kms.describe_key(KeyId=key)["KeyMetadata"]
        assert m["KeyState"] == "Enabled" and m["ExpirationModel"] == "KEY_MATERIAL_EXPIRES", m
        # botocore sends whole seconds.
        assert abs((m["ValidTo"] - valid_to).total_seconds()) < 1, m
        s3.create_bucket(Bucket="imported")
        s3.put_object(Bucket="imported", Key="o", Body=b"kept", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=key)
        blob = kms.encrypt(KeyId=key, Plaintext=b"direct")["CiphertextBlob"]

        # At ValidTo the material is deleted: the key is PendingImport and reads stop.
        deadline = time.time() + 30
        while kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] != "PendingImport":
            assert time.time() < deadline, "imported material did not expire"
            time.sleep(0.2)
        m = kms.describe_key(KeyId=key)["KeyMetadata"]
        assert "CurrentKeyMaterialId" not in m and "ValidTo" not in m, m
        assert code(kms.decrypt, CiphertextBlob=blob) == (400, "KMSInvalidStateException")
        assert code(s3.get_object, Bucket="imported", Key="o") == (400, "KMS.KMSInvalidStateException")

        # The import token is good for 24 hours (one KMS "day"), then expires.
        stale = params()
        time.sleep(2.5)
        assert code(kms.import_key_material, KeyId=key, ImportToken=stale["ImportToken"],
                    EncryptedKeyMaterial=wrap(stale["PublicKey"], material),
                    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE") == (400, "ExpiredImportTokenException")

        # Different material is refused; the same material (any algorithm) restores
        # every ciphertext and object.
        p = params(alg="RSAES_OAEP_SHA_1")
        assert code(kms.import_key_material, KeyId=key, ImportToken=p["ImportToken"],
                    EncryptedKeyMaterial=wrap(p["PublicKey"], os.urandom(32), "RSAES_OAEP_SHA_1"),
                    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE") == (400, "IncorrectKeyMaterialException")
        r = kms.import_key_material(KeyId=key, ImportToken=p["ImportToken"],
                                    EncryptedKeyMaterial=wrap(p["PublicKey"], material, "RSAES_OAEP_SHA_1"),
                                    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
                                    ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=material_id)
        assert r["KeyMaterialId"] == material_id
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"direct"
        assert s3.get_object(Bucket="imported", Key="o")["Body"].read() == b"kept"

        # DeleteImportedKeyMaterial: unusable at once, and it survives a restart so.
        r = kms.delete_imported_key_material(KeyId=key)
        assert r["KeyMaterialId"] == material_id
        assert code(s3.get_object, Bucket="imported", Key="o") == (400, "KMS.KMSInvalidStateException")
        s.stop()
        s = Server(tmp_path / "data", env={"COFFER_KMS_DAY_SECONDS": "2"}).start()
        kms, s3 = s.client("kms"), s.client("s3")
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
        p = params()
        kms.import_key_material(KeyId=key, ImportToken=p["ImportToken"],
                                EncryptedKeyMaterial=wrap(p["PublicKey"], material),
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
        assert s3.get_object(Bucket="imported", Key="o")["Body"].read() == b"kept"
    finally:
        s.stop()
