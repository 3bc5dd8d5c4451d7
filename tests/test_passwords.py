"""passwords.py: argon2id with the library's defaults, the rules, generated passwords."""

from __future__ import annotations

import argon2
import pytest

from sessiontally import passwords
from sessiontally.errors import InvalidInput


def test_production_hashing_is_argon2id_with_the_library_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", passwords.PRODUCTION)
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert argon2.extract_parameters(stored) == argon2.profiles.RFC_9106_LOW_MEMORY
    assert passwords.verify_password(stored, "correct horse battery")
    assert not passwords.needs_rehash(stored)


def test_hashes_are_salted_and_verify() -> None:
    first, second = passwords.hash_password("pw-0123456789"), passwords.hash_password("pw-0123456789")
    assert first != second and first.startswith("$argon2id$")
    assert passwords.verify_password(first, "pw-0123456789")
    assert not passwords.verify_password(first, "pw-0123456780")


@pytest.mark.parametrize("stored", ["", "garbage", "$argon2id$v=19$m=8,t=1,p=1$xx$yy", "$2b$12$abc"])
def test_verify_never_raises_on_a_bad_hash(stored: str) -> None:
    assert passwords.verify_password(stored, "whatever-password") is False


def test_a_hash_of_other_parameters_needs_rehash_but_still_verifies() -> None:
    stored = passwords.PRODUCTION.hash("pw-0123456789")  # tests hash with cheaper parameters
    assert passwords.verify_password(stored, "pw-0123456789")
    assert passwords.needs_rehash(stored)
    assert not passwords.needs_rehash(passwords.hash_password("pw-0123456789"))
    assert passwords.needs_rehash("not a hash")


def test_spend_verify_time_accepts_anything() -> None:
    passwords.spend_verify_time("")
    passwords.spend_verify_time("x" * 5000)


def test_generated_passwords_are_random_and_pass_the_rules() -> None:
    made = {passwords.generate_password() for _ in range(50)}
    assert len(made) == 50
    for password in made:
        assert len(password) == 20
        passwords.check_password_rules(password)


@pytest.mark.parametrize("password, fragment", [
    ("short", "at least 10"),
    ("123456789", "at least 10"),
    ("x" * 1025, "at most 1024"),
    (" " * 12, "whitespace"),
    ("\t\n " * 5, "whitespace"),
    ("password-\udcff-x", "valid Unicode"),
])
def test_rules_refuse(password: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        passwords.check_password_rules(password)


@pytest.mark.parametrize("password", ["0123456789", "x" * 1024, " spaces ok inside ", "pässwörd-ü€"])
def test_rules_accept(password: str) -> None:
    passwords.check_password_rules(password)
