"""HMAC KMS keys (HMAC_224/256/384/512, GENERATE_VERIFY_MAC) through the aws CLI and boto3:
GenerateMac and VerifyMac, the errors AWS gives for a wrong MAC, algorithm or key usage,
key states, no rotation, and MACs that survive a restart."""

import base64
import tempfile

import pytest

from conftest import Server
from test_iam import code


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-hmac-") as d:
        s = Server(d).start()
        yield s
        s.stop()


@pytest.mark.parametrize("bits,size", [(224, 28), (256, 32), (384, 48), (512, 64)])
def test_generate_and_verify_mac(srv, bits, size):
    kms = srv.client("kms")
    k = kms.create_key(KeySpec=f"HMAC_{bits}", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    assert k["KeySpec"] == f"HMAC_{bits}" and k["MacAlgorithms"] == [f"HMAC_SHA_{bits}"], k
    assert "EncryptionAlgorithms" not in k
    alg = f"HMAC_SHA_{bits}"
    r = kms.generate_mac(KeyId=k["KeyId"], Message=b"hello", MacAlgorithm=alg)
    assert len(r["Mac"]) == size and r["KeyId"] == k["Arn"] and r["MacAlgorithm"] == alg, r
    # Deterministic for one key and message; different for another message or key.
    assert kms.generate_mac(KeyId=k["KeyId"], Message=b"hello", MacAlgorithm=alg)["Mac"] == r["Mac"]
    assert kms.generate_mac(KeyId=k["KeyId"], Message=b"hellp", MacAlgorithm=alg)["Mac"] != r["Mac"]
    other = kms.create_key(KeySpec=f"HMAC_{bits}", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    assert kms.generate_mac(KeyId=other, Message=b"hello", MacAlgorithm=alg)["Mac"] != r["Mac"]
    v = kms.verify_mac(KeyId=k["KeyId"], Message=b"hello", Mac=r["Mac"], MacAlgorithm=alg)
    assert v["MacValid"] is True and v["KeyId"] == k["Arn"], v
    bad = bytes([r["Mac"][0] ^ 1]) + r["Mac"][1:]
    assert code(kms.verify_mac, KeyId=k["KeyId"], Message=b"hello", Mac=bad, MacAlgorithm=alg) == \
        (400, "KMSInvalidMacException")
    assert code(kms.verify_mac, KeyId=other, Message=b"hello", Mac=r["Mac"], MacAlgorithm=alg) == \
        (400, "KMSInvalidMacException")


def test_hmac_key_errors(srv):
    kms = srv.client("kms")
    k = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    # Wrong algorithm for the key, MACs with an encryption key, encryption with an HMAC key.
    assert code(kms.generate_mac, KeyId=k, Message=b"m", MacAlgorithm="HMAC_SHA_512") == (400, "InvalidKeyUsageException")
    assert code(kms.generate_mac, KeyId=sym, Message=b"m", MacAlgorithm="HMAC_SHA_256") == (400, "InvalidKeyUsageException")
    assert code(kms.encrypt, KeyId=k, Plaintext=b"m") == (400, "InvalidKeyUsageException")
    assert code(kms.generate_data_key, KeyId=k, KeySpec="AES_256") == (400, "InvalidKeyUsageException")
    # HMAC keys need GENERATE_VERIFY_MAC, and do not rotate.
    assert code(kms.create_key, KeySpec="HMAC_256")[1] == "ValidationException"
    assert code(kms.create_key, KeySpec="HMAC_256", KeyUsage="ENCRYPT_DECRYPT")[1] == "ValidationException"
    assert code(kms.enable_key_rotation, KeyId=k) == (400, "UnsupportedOperationException")
    assert code(kms.rotate_key_on_demand, KeyId=k) == (400, "UnsupportedOperationException")
    # A disabled key refuses MACs.
    mac = kms.generate_mac(KeyId=k, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    kms.disable_key(KeyId=k)
    assert code(kms.generate_mac, KeyId=k, Message=b"m", MacAlgorithm="HMAC_SHA_256") == (400, "DisabledException")
    assert code(kms.verify_mac, KeyId=k, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256") == (400, "DisabledException")
    kms.enable_key(KeyId=k)
    # Empty and oversized messages.
    assert code(kms.generate_mac, KeyId=k, Message=b"x" * 4097, MacAlgorithm="HMAC_SHA_256")[1] == "ValidationException"


def test_macs_from_the_cli_verify_after_a_restart(tmp_path):
    """The aws CLI (v1 sends blob arguments as given, so they go through files)."""
    with tempfile.TemporaryDirectory(prefix="coffer-hmac-restart-") as d:
        s = Server(d).start()
        k = s.aws("kms", "create-key", "--key-spec", "HMAC_384", "--key-usage", "GENERATE_VERIFY_MAC",
                  expect_json=True)["KeyMetadata"]["KeyId"]
        (tmp_path / "msg").write_bytes(b"signed statement")
        mac = s.aws("kms", "generate-mac", "--key-id", k, "--message", f"fileb://{tmp_path / 'msg'}",
                    "--mac-algorithm", "HMAC_SHA_384", expect_json=True)["Mac"]
        (tmp_path / "mac").write_bytes(base64.b64decode(mac))
        assert len(base64.b64decode(mac)) == 48
        s.stop()
        s.start()
        out = s.aws("kms", "verify-mac", "--key-id", k, "--message", f"fileb://{tmp_path / 'msg'}",
                    "--mac", f"fileb://{tmp_path / 'mac'}", "--mac-algorithm", "HMAC_SHA_384", expect_json=True)
        assert out["MacValid"] is True, out
        # The same MAC from boto3 after the restart.
        assert base64.b64encode(s.client("kms").generate_mac(
            KeyId=k, Message=b"signed statement", MacAlgorithm="HMAC_SHA_384")["Mac"]).decode() == mac
        s.stop()
