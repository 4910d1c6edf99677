"""The root key: kept in a PKCS#11 HSM (SoftHSM2, a token initialised here), and rotated
with `coffer root-key rotate` while the server keeps serving, every object, key and
credential still usable afterwards, the old key destroyed."""

import base64
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Server, coffer_bin

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def coffer(srv, *args):
    env = dict(os.environ, COFFER_ROOT_ACCESS_KEY_ID=ACCESS_KEY,
               COFFER_ROOT_SECRET_ACCESS_KEY=SECRET_KEY)
    p = subprocess.run([coffer_bin(), *args, "--endpoint", srv.endpoint],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def populate(srv):
    """Objects under SSE-KMS (a customer key and a bucket key), SSE-S3 and plaintext; a
    direct KMS ciphertext; HMAC and RSA keys; an IAM user with an access key."""
    s3, kms, iam = srv.client("s3"), srv.client("kms"), srv.client("iam")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="kept")
    s3.put_bucket_encryption(Bucket="kept", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True}]})
    objects = {}
    for i in range(5):
        body = os.urandom(1000 + i)
        s3.put_object(Bucket="kept", Key=f"kms-{i}", Body=body)
        objects[f"kms-{i}"] = body
    objects["sse-s3"] = b"sse-s3 body"
    s3.put_object(Bucket="kept", Key="sse-s3", Body=objects["sse-s3"], ServerSideEncryption="AES256")
    objects["direct"] = b"direct kms body"
    s3.put_object(Bucket="kept", Key="direct", Body=objects["direct"], ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=key, BucketKeyEnabled=False)
    blob = kms.encrypt(KeyId=key, Plaintext=b"kms ciphertext")["CiphertextBlob"]
    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    mac = kms.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    sig_key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    public = kms.get_public_key(KeyId=sig_key)["PublicKey"]
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "kms:Decrypt"], "Resource": "*"}]}))
    ak = iam.create_access_key(UserName="reader")["AccessKey"]
    return dict(objects=objects, blob=blob, mac_key=mac_key, mac=mac, sig_key=sig_key,
                public=public, user=(ak["AccessKeyId"], ak["SecretAccessKey"]))


def check(srv, state):
    s3, kms = srv.client("s3"), srv.client("kms")
    for k, body in state["objects"].items():
        assert s3.get_object(Bucket="kept", Key=k)["Body"].read() == body, k
    assert kms.decrypt(CiphertextBlob=state["blob"])["Plaintext"] == b"kms ciphertext"
    assert kms.verify_mac(KeyId=state["mac_key"], Message=b"m", MacAlgorithm="HMAC_SHA_256",
                          Mac=state["mac"])["MacValid"]
    assert kms.get_public_key(KeyId=state["sig_key"])["PublicKey"] == state["public"]
    user = srv.client("s3", access_key=state["user"][0], secret_key=state["user"][1])
    assert user.get_object(Bucket="kept", Key="kms-0")["Body"].read() == state["objects"]["kms-0"]


def test_rotating_a_file_root_key_keeps_everything_readable(tmp_path):
    data, key_file = tmp_path / "data", tmp_path / "keys" / "root.key"
    args = ["--root-key-file", str(key_file)]
    srv = Server(data, args).start()
    try:
        state = populate(srv)
        old_key = key_file.read_bytes()
        shutil.copy(key_file, tmp_path / "old-copy.key")

        # Reads go on while the rotation runs.
        stop, failures, reads = threading.Event(), [], [0]

        def reader():
            s3 = srv.client("s3")
            while not stop.is_set():
                try:
                    assert s3.get_object(Bucket="kept", Key="kms-1")["Body"].read() == state["objects"]["kms-1"]
                    reads[0] += 1
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    failures.append(repr(e))

        t = threading.Thread(target=reader)
        t.start()
        try:
            out = coffer(srv, "root-key", "rotate")
        finally:
            stop.set()
            t.join()
        assert not failures and reads[0] > 0, failures
        assert out["OldRootKey"] != out["NewRootKey"], out
        assert out["KeyMaterialsRewrapped"] >= 4 and out["SecretsRewrapped"] >= 1, out
        retired = Path(out["Retired"])
        assert retired.read_bytes() == old_key and key_file.read_bytes() != old_key
        check(srv, state)
        # New keys and writes after the rotation.
        srv.client("s3").put_object(Bucket="kept", Key="after", Body=b"after rotation")
        state["objects"]["after"] = b"after rotation"

        gone = coffer(srv, "root-key", "destroy-retired")["Destroyed"]
        assert gone == [str(retired)] and not retired.exists()
    finally:
        srv.stop()

    # After a restart everything is read with the new key alone...
    srv = Server(data, args).start()
    try:
        check(srv, state)
    finally:
        srv.stop()
    # The audit trail, signed with a KMS-held key, still verifies under the new root key...
    p = subprocess.run([coffer_bin(), "audit", "verify", "--data-dir", str(data), *args],
                       capture_output=True, text=True, env=srv.env)
    assert p.returncode == 0 and "intact" in p.stdout, p.stdout + p.stderr
    # ...and the old key opens nothing any more.
    p = subprocess.run([coffer_bin(), "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0",
                        "--root-key-file", str(tmp_path / "old-copy.key")],
                       capture_output=True, text=True, timeout=60, env=srv.env)
    assert p.returncode != 0 and "root key does not match" in p.stderr, p.stderr


@pytest.fixture
def softhsm(tmp_path):
    """A fresh SoftHSM2 token labelled `coffer`, user PIN 1234."""
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "coffer",
                    "--pin", "1234", "--so-pin", "5678"], check=True, capture_output=True, env=env)
    return env


def hsm_args():
    return ["--pkcs11-module", SOFTHSM, "--pkcs11-token-label", "coffer"]


def test_the_root_key_lives_in_a_softhsm_token_and_rotates_there(tmp_path, softhsm):
    data = tmp_path / "data"
    env = {"SOFTHSM2_CONF": softhsm["SOFTHSM2_CONF"], "COFFER_PKCS11_PIN": "1234"}
    srv = Server(data, hsm_args(), env=env).start()
    try:
        state = populate(srv)
        check(srv, state)
    finally:
        srv.stop()
    # No root key file anywhere: the key is in the token; the data directory names it.
    assert not (data / "root.key").exists()
    hsm_state = json.loads((data / "root-key-hsm.json").read_text())
    assert len(hsm_state["current"]) == 32, hsm_state

    # Refusals: wrong PIN, wrong token, and the file key instead of the HSM.
    def refused(extra, env_over):
        e = dict(srv.env, **env_over)
        p = subprocess.run([coffer_bin(), "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0",
                            *extra], capture_output=True, text=True, timeout=60, env=e)
        assert p.returncode != 0, p.stdout
        return p.stderr

    assert "COFFER_PKCS11_PIN" in refused(hsm_args(), {"COFFER_PKCS11_PIN": "9999"})
    assert "no PKCS#11 token labelled" in refused(
        ["--pkcs11-module", SOFTHSM, "--pkcs11-token-label", "other"], {})
    assert "root key does not match" in refused(["--root-key-file", str(tmp_path / "k")], {})

    # A restart with the right PIN reads everything; rotation makes a new key in the token.
    srv = Server(data, hsm_args(), env=env).start()
    try:
        check(srv, state)
        out = coffer(srv, "root-key", "rotate")
        assert out["OldRootKey"].startswith("hsm:") and out["NewRootKey"].startswith("hsm:"), out
        assert out["OldRootKey"] != out["NewRootKey"]
        check(srv, state)
        gone = coffer(srv, "root-key", "destroy-retired")["Destroyed"]
        assert gone == [out["Retired"]], (gone, out)
    finally:
        srv.stop()
    srv = Server(data, hsm_args(), env=env).start()
    try:
        check(srv, state)
    finally:
        srv.stop()
    p = subprocess.run([coffer_bin(), "audit", "verify", "--data-dir", str(data), *hsm_args()],
                       capture_output=True, text=True, env=srv.env)
    assert p.returncode == 0 and "intact" in p.stdout, p.stdout + p.stderr


def test_only_the_operator_rotates_the_root_key(tmp_path):
    srv = Server(tmp_path / "data").start()
    try:
        iam = srv.client("iam")
        iam.create_user(UserName="admin")
        iam.attach_user_policy(UserName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        ak = iam.create_access_key(UserName="admin")["AccessKey"]
        env = dict(os.environ, COFFER_ROOT_ACCESS_KEY_ID=ak["AccessKeyId"],
                   COFFER_ROOT_SECRET_ACCESS_KEY=ak["SecretAccessKey"])
        p = subprocess.run([coffer_bin(), "root-key", "rotate", "--endpoint", srv.endpoint],
                           capture_output=True, text=True, env=env)
        assert p.returncode != 0 and "AccessDenied" in p.stderr, p.stderr
    finally:
        srv.stop()
    # A root key given in COFFER_ROOT_KEY cannot be replaced by Coffer: rotation says so.
    srv = Server(tmp_path / "env-data", env={"COFFER_ROOT_KEY": base64.b64encode(os.urandom(32)).decode()}).start()
    try:
        env = dict(os.environ, COFFER_ROOT_ACCESS_KEY_ID=ACCESS_KEY, COFFER_ROOT_SECRET_ACCESS_KEY=SECRET_KEY)
        p = subprocess.run([coffer_bin(), "root-key", "rotate", "--endpoint", srv.endpoint],
                           capture_output=True, text=True, env=env)
        assert p.returncode != 0 and "COFFER_ROOT_KEY" in p.stderr, p.stderr
    finally:
        srv.stop()


def test_a_rotation_cut_short_is_finished_at_the_next_start(tmp_path):
    """A crash after the next key was recorded (ROOT.next) but before the commit: the next
    start re-wraps everything under it and commits before serving."""
    data, key_file = tmp_path / "data", tmp_path / "root.key"
    args = ["--root-key-file", str(key_file)]
    srv = Server(data, args).start()
    try:
        state = populate(srv)
    finally:
        srv.stop()
    old = key_file.read_bytes()
    nxt = os.urandom(32)
    (tmp_path / "root.key.next").write_bytes(nxt)
    (tmp_path / "root.key.next").chmod(0o600)
    srv = Server(data, args).start()
    try:
        check(srv, state)
    finally:
        srv.stop()
    assert key_file.read_bytes() == nxt and not (tmp_path / "root.key.next").exists()
    retired = [p for p in tmp_path.iterdir() if p.name.startswith("root.key.retired-")]
    assert len(retired) == 1 and retired[0].read_bytes() == old
    # The new key alone opens the data directory.
    retired[0].unlink()
    srv = Server(data, args).start()
    try:
        check(srv, state)
    finally:
        srv.stop()
