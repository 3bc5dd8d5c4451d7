"""sessiontally.keys: API key generation and hashing (CONTRACT.md sections 1 and 2)."""

from __future__ import annotations

import base64
import hashlib
import re

from sessiontally import keys


def test_key_shape_and_entropy():
    key = keys.generate_key(42)
    assert key.startswith(keys.KEY_PREFIX + "42_")
    body = key[len(keys.KEY_PREFIX + "42_"):]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body), key
    # 43 URL-safe base64 characters decode to 32 bytes: 256 bits (the contract asks for >= 122)
    assert len(base64.urlsafe_b64decode(body + "=")) == 32
    assert len(key) <= keys.MAX_KEY_LENGTH


def test_keys_are_distinct():
    generated = {keys.generate_key(7) for _ in range(1000)}
    assert len(generated) == 1000
    # every URL-safe character turns up somewhere: not a constant or low-entropy source
    assert len(set("".join(k[5:] for k in generated))) == 64


def test_workspace_of_reads_only_well_formed_keys():
    assert keys.workspace_of(keys.generate_key(1234)) == 1234
    for bad in ("", "st_", "st_0_" + "A" * 43, "st_1_" + "A" * 42, "st_1_" + "A" * 44,
                "xx_1_" + "A" * 43, "st_-1_" + "A" * 43, "st_١_" + "A" * 43, "st_1_" + "é" * 43):
        assert keys.workspace_of(bad) is None, bad


def test_hash_is_sha256_and_stable():
    key = "st_" + "A" * 43
    digest = keys.hash_key(key)
    assert digest == hashlib.sha256(key.encode()).digest()
    assert len(digest) == 32
    assert keys.hash_key(key) == digest
    assert keys.hash_key(key + "B") != digest
    assert keys.hash_key("st_é") == hashlib.sha256("st_é".encode()).digest()


def test_hash_of_odd_text_does_not_raise():
    # a header can carry anything; a lone surrogate must not crash authentication
    assert len(keys.hash_key("\ud800")) == 32
    assert len(keys.hash_key("")) == 32


def test_hashes_match():
    a = keys.hash_key(keys.generate_key(1))
    b = keys.hash_key(keys.generate_key(1))
    assert keys.hashes_match(a, a)
    assert keys.hashes_match(a, bytes(a))
    assert not keys.hashes_match(a, b)
    assert not keys.hashes_match(a, a[:-1])
    assert not keys.hashes_match(a, b"")


def test_display_prefix_does_not_reveal_the_key():
    key = keys.generate_key(5)
    prefix = keys.display_prefix(key)
    assert key.startswith(prefix)
    assert len(prefix) == len("st_5_") + 6  # 6 of the 43 secret characters


def test_permissions_are_the_contract_ones():
    assert set(keys.PERMISSIONS) == {
        "sessions.data_series", "sessions.track", "users.track", "users.delete", "segments.list",
        "segments.details", "kpi.dau.data_series", "kpi.mau.data_series", "kpi.new_users.data_series",
        "kpi.uninstalls.data_series", "events.list", "events.data_series",
    }
