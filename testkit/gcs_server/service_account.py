"""The service account whose JSON key the server hands out (generated, or reused from a file)."""

import json
import os
import secrets
import subprocess
import urllib.parse

from .formats import write_json_atomic


def generate_service_account(state_dir, token_uri, email, project):
    key_pem = os.path.join(state_dir, "service-account-key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", key_pem], check=True, capture_output=True)
    os.chmod(key_pem, 0o600)
    with open(key_pem) as f:
        pem = f.read()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(100000000000000000000 + secrets.randbelow(10 ** 20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                + urllib.parse.quote(email),
        "universe_domain": "googleapis.com",
    }
    key_json = os.path.join(state_dir, "service-account.json")
    write_json_atomic(key_json, info, mode=0o600)
    return key_json, key_pem, info


def load_service_account(path, state_dir):
    with open(path) as f:
        info = json.load(f)
    key_pem = os.path.join(state_dir, "service-account-key.pem")
    with open(key_pem, "w") as f:
        f.write(info["private_key"])
    os.chmod(key_pem, 0o600)
    return path, key_pem, info
