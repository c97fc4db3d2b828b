"""SelfSignedJWTAuth: what it signs (decoded with the standard library, and an RS256
signature checked with ``cryptography`` directly, not joserfc), how long a token is
used, single flight, shared caches, and its errors (which never show the key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from delivery_auth import MemoryTokenCache, SelfSignedJWTAuth

SECRET = b"a-test-hmac-secret-of-32-bytes!!"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode(jwt: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, signature and signing input, by hand."""
    header, claims, signature = jwt.split(".")
    return (
        json.loads(b64url_decode(header)),
        json.loads(b64url_decode(claims)),
        b64url_decode(signature),
        f"{header}.{claims}".encode(),
    )


def test_hs256_token_is_what_was_asked_for() -> None:
    with SelfSignedJWTAuth(
        SECRET,
        claims={"scope": "orders"},
        issuer="client-7",
        subject="svc",
        audience="api.example",
        headers={"kid": "k1", "x-ver": "2"},
        lifetime=120,
    ) as auth:
        token = auth.get_token()
        header, claims, signature, signed = decode(token.access_token)
    assert header == {"alg": "HS256", "typ": "JWT", "kid": "k1", "x-ver": "2"}
    assert hmac.compare_digest(signature, hmac.new(SECRET, signed, hashlib.sha256).digest())
    jti = claims.pop("jti")
    assert isinstance(jti, str)
    assert len(jti) >= 16
    assert claims["exp"] - claims["iat"] == 120
    assert abs(claims.pop("iat") - time.time()) < 3600  # an epoch second, not monotonic time
    assert claims == {
        "scope": "orders",
        "iss": "client-7",
        "sub": "svc",
        "aud": "api.example",
        "exp": claims["exp"],
    }
    assert token.token_type == "Bearer"
    assert auth.token_requests == 1


def test_rs256_signature_verifies_with_the_public_key() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    with SelfSignedJWTAuth(pem.decode(), algorithm="RS256", issuer="me") as auth:
        header, claims, signature, signed = decode(auth.get_token().access_token)
    assert header["alg"] == "RS256"
    private.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    assert claims["iss"] == "me"


def test_every_mint_is_a_new_token_unless_unique_is_off() -> None:
    with SelfSignedJWTAuth(SECRET, lifetime=60) as auth:
        first = auth.get_token()
        assert auth._engine.invalidate(first)
        second = auth.get_token()
    assert first != second
    assert auth.token_requests == 2
    with SelfSignedJWTAuth(SECRET, lifetime=60, unique=False) as plain:
        assert "jti" not in decode(plain.get_token().access_token)[1]


@pytest.mark.parametrize("lifetime", [0.5, 1, 7.9, 300, 1800.0])
def test_never_used_within_the_margin_of_exp(lifetime: float) -> None:
    with SelfSignedJWTAuth(SECRET, lifetime=lifetime, refresh_margin=30) as auth:
        lease = auth._engine.current()
        _, claims, _, _ = decode(lease.token.access_token)
    assert 1 <= claims["exp"] - claims["iat"] <= max(1, lifetime)
    # The last moment the token is sent, on the wall clock of the mint: before exp.
    last_use = lease.token.issued_at + (lease.usable_until - lease.token.obtained_at)
    assert last_use < claims["exp"]
    assert last_use <= claims["exp"] - min(30, lease.token.lifetime / 4) + 1e-6


def test_a_token_past_its_usable_time_is_replaced_not_sent() -> None:
    with SelfSignedJWTAuth(SECRET, lifetime=1, refresh_ratio=1.0) as auth:
        lease = auth._engine.current()
        # Wait for the token's time to pass (what is checked is what happens after).
        time.sleep(max(0.0, lease.usable_until - time.monotonic()) + 0.01)
        fresh = auth.get_token()
    assert fresh != lease.token
    assert auth.token_requests == 2


def test_concurrent_callers_share_one_mint() -> None:
    with SelfSignedJWTAuth(SECRET) as auth:
        barrier = threading.Barrier(32)
        seen: list[str] = []

        def caller() -> None:
            barrier.wait()
            seen.append(auth.get_token().access_token)

        threads = [threading.Thread(target=caller) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(set(seen)) == 1
    assert auth.token_requests == 1


def test_a_shared_cache_shares_the_token_of_the_same_key_only() -> None:
    cache = MemoryTokenCache()
    one = SelfSignedJWTAuth(SECRET, issuer="a", cache=cache)
    two = SelfSignedJWTAuth(SECRET, issuer="a", cache=cache)
    other = SelfSignedJWTAuth(SECRET + b"x", issuer="a", cache=cache)
    with one, two, other:
        assert one.get_token() == two.get_token()
        assert other.get_token() != one.get_token()
        assert (one.token_requests, two.token_requests, other.token_requests) == (1, 0, 1)
    assert one == two
    assert one != other


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"claims": {"exp": 1}}, "claims may not set exp"),
        ({"claims": {"iat": 1, "jti": "x"}}, "claims may not set iat, jti"),
        ({"headers": {"alg": "none"}}, "pass algorithm="),
        ({"algorithm": "none"}, "algorithm must be one of"),
        ({"algorithm": "RS256"}, "not a PEM RSA private key usable with RS256"),
        ({"lifetime": 0}, "lifetime must be a positive number of seconds"),
        ({"lifetime": float("inf")}, "lifetime must be a positive number"),
        ({"lifetime": True}, "lifetime must be a positive number"),
        ({"claims": {"when": object()}}, "claims must be JSON-serialisable"),
        ({"scheme": "Bearer token"}, "scheme must be one word"),
    ],
)
def test_bad_options_are_clear_errors_without_the_key(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        SelfSignedJWTAuth(SECRET, **options)
    assert SECRET.decode() not in str(caught.value)


def test_a_public_key_cannot_sign() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError, match="private key"):
        SelfSignedJWTAuth(public, algorithm="RS256")


def test_repr_shows_claims_not_the_key_or_token() -> None:
    with SelfSignedJWTAuth(SECRET, issuer="client-7") as auth:
        token = auth.get_token()
        shown = repr(auth) + str(auth) + repr(token)
    assert "client-7" in repr(auth)
    assert SECRET.decode() not in shown
    assert token.access_token not in shown
