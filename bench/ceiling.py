"""The ceiling: a bare Flask app on the same server stack as the IdP (nginx, gunicorn with the
IdP's settings), answering JSON with one freshly signed ES256 JWT per request.

Nothing the IdP does can be faster than this on the same machine: no database, no templates,
no session. Each benchmark figure is printed as a ratio to it.
"""

from __future__ import annotations

import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, jsonify

KEY = ec.generate_private_key(ec.SECP256R1())
app = Flask(__name__)


@app.get("/")
def signed():
    now = int(time.time())
    claims = {
        "iss": "ceiling",
        "sub": "bench",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    return jsonify({"token": jwt.encode(claims, KEY, algorithm="ES256")})


@app.get("/readyz")
def ready():
    return jsonify({"status": "ready"})
