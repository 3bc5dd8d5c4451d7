"""members.py: operators' use cases, sign-in and its throttling, member sessions, CSRF,
and that a member never reaches another workspace; on both engines."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from sessiontally import admin, members, passwords
from sessiontally.errors import (
    DuplicateName,
    InvalidInput,
    NotFound,
    RateLimited,
    SignInFailed,
    Unauthenticated,
)
from sessiontally.store.base import Store, Workspace

NOW = 1_700_000_200.5  # 100.5 s into a sign-in window
PASSWORD = "correct horse battery"


@pytest.fixture
def acme(store: Store) -> Workspace:
    return admin.create_workspace(store, "acme")


@pytest.fixture
def other(store: Store) -> Workspace:
    return admin.create_workspace(store, "other")


def sign_in(store: Store, email: str = "amy@example.com", password: str = PASSWORD,
            ip: str | None = "192.0.2.1", now: float = NOW) -> members.SignedIn:
    return members.sign_in(store, email, password, ip, now)


# ------------------------------------------------------------------------- e-mails


@pytest.mark.parametrize("given, stored", [
    ("amy@example.com", "amy@example.com"),
    ("  Amy.Smith+Tag@Example.COM \n", "amy.smith+tag@example.com"),
    ("x@localhost", "x@localhost"),
    ("ünï@exämple.de", "ünï@exämple.de"),
    (members.EXAMPLE_EMAIL, members.EXAMPLE_EMAIL),
])
def test_emails_are_normalised(given: str, stored: str) -> None:
    assert members.normalise_email(given) == stored


@pytest.mark.parametrize("given", [
    "", "   ", "amy", "amy@", "@example.com", "amy@@example.com", "a@b@example.com",
    "amy smith@example.com", "amy@exa mple.com", "amy@example.com\x00", "am\ty@example.com",
    "amy@example.", "amy@.example.com", "a" * 250 + "@example.com",
])
def test_malformed_emails_are_refused_with_an_example(given: str) -> None:
    with pytest.raises(InvalidInput, match="name@example.com"):
        members.normalise_email(given)


# ----------------------------------------------------------------- operators' use cases


def test_add_member_generates_a_password_that_signs_in(store: Store, acme: Workspace) -> None:
    member, password = members.add_member(store, acme, " Amy@Example.com ", now=NOW)
    assert member.email == "amy@example.com" and member.workspace_id == acme.workspace_id
    assert member.created_at == int(NOW * 1_000_000) and member.last_sign_in_at is None
    assert len(password) == 20 and password not in member.password_hash
    assert member.password_hash.startswith("$argon2id$")
    session = sign_in(store, "amy@example.com", password)
    assert session.member.member_id == member.member_id and session.workspace == acme


def test_add_member_with_a_chosen_password_follows_the_rules(store: Store, acme: Workspace) -> None:
    with pytest.raises(InvalidInput, match="at least 10"):
        members.add_member(store, acme, "amy@example.com", "short")
    assert members.list_members(store, acme) == []
    _, password = members.add_member(store, acme, "amy@example.com", PASSWORD)
    assert password == PASSWORD


def test_an_email_is_taken_in_every_workspace(store: Store, acme: Workspace, other: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    for workspace in (acme, other):
        with pytest.raises(DuplicateName) as refused:
            members.add_member(store, workspace, "AMY@example.com")
        assert str(refused.value) == "a member with e-mail 'amy@example.com' already exists"
        assert "acme" not in str(refused.value)


def test_list_and_resolve(store: Store, acme: Workspace) -> None:
    zed, _ = members.add_member(store, acme, "zed@example.com")
    amy, _ = members.add_member(store, acme, "amy@example.com")
    assert members.list_members(store, acme) == [amy, zed]
    assert members.resolve_member(store, acme, "ZED@example.com ") == zed
    assert members.resolve_member(store, acme, str(amy.member_id)) == amy
    for ref in ("nobody@example.com", "999999", "9" * 40, "not an e-mail", "", "٣"):
        with pytest.raises(NotFound):
            members.resolve_member(store, acme, ref)


def test_remove_member(store: Store, acme: Workspace) -> None:
    amy, _ = members.add_member(store, acme, "amy@example.com", PASSWORD)
    session = sign_in(store)
    assert members.remove_member(store, acme, "amy@example.com").member_id == amy.member_id
    assert members.list_members(store, acme) == []
    assert members.signed_in(store, session.token, NOW + 1) is None  # signed out
    with pytest.raises(NotFound):
        members.remove_member(store, acme, str(amy.member_id))
    with pytest.raises(SignInFailed):
        sign_in(store, now=NOW + 2)


def test_reset_password_signs_out_everywhere(store: Store, acme: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    first, second = sign_in(store), sign_in(store, ip="192.0.2.2")
    new = members.reset_password(store, acme, "amy@example.com")
    assert len(new) == 20
    assert members.signed_in(store, first.token, NOW) is None
    assert members.signed_in(store, second.token, NOW) is None
    with pytest.raises(SignInFailed):
        sign_in(store)
    assert sign_in(store, password=new).member.email == "amy@example.com"
    assert members.reset_password(store, acme, "amy@example.com", "another password") == "another password"
    with pytest.raises(InvalidInput):
        members.reset_password(store, acme, "amy@example.com", " " * 12)


# -------------------------------------------------------------------- signing in


def test_sign_in_makes_a_session(store: Store, acme: Workspace) -> None:
    amy, _ = members.add_member(store, acme, "amy@example.com", PASSWORD)
    session = sign_in(store, " AMY@example.com")
    assert session.workspace == acme and session.member.member_id == amy.member_id
    assert session.member.last_sign_in_at == int(NOW) * 1_000_000
    assert session.expires_at == int(NOW) + members.SESSION_SECONDS
    assert session.token.startswith(f"{acme.workspace_id}.")
    assert len(session.token.split(".")[1]) == 43
    again = members.signed_in(store, session.token, NOW + 60)
    assert again == session
    assert store.get_member(acme.workspace_id, amy.member_id).last_sign_in_at == int(NOW) * 1_000_000  # type: ignore[union-attr]


def test_a_wrong_password_or_unknown_email_fails_alike(store: Store, acme: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    failures = []
    for email, password in (("amy@example.com", "wrong password"), ("bob@example.com", PASSWORD),
                            ("not an e-mail", PASSWORD), ("amy@example.com", ""),
                            ("amy\udcff@example.com", PASSWORD), ("amy@example.com", "pw\udcff-0123456"),
                            ("amy@example.com", PASSWORD + "x" * 2000)):
        with pytest.raises(SignInFailed) as failed:
            sign_in(store, email, password)
        failures.append(str(failed.value))
    assert set(failures) == {"E-mail or password is wrong"}
    assert isinstance(SignInFailed(), Unauthenticated)


def test_sessions_expire(store: Store, acme: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    session = sign_in(store)
    assert members.signed_in(store, session.token, session.expires_at - 1) is not None
    assert members.signed_in(store, session.token, session.expires_at) is None


def test_sign_out(store: Store, acme: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    kept, ended = sign_in(store), sign_in(store)
    members.sign_out(store, ended.token)
    members.sign_out(store, ended.token)  # idempotent
    assert members.signed_in(store, ended.token, NOW) is None
    assert members.signed_in(store, kept.token, NOW) is not None


@pytest.mark.parametrize("garbage", [
    None, "", ".", "1.", ".abc", "abc", "1.short", "0." + "a" * 43, "-1." + "a" * 43,
    "1." + "a" * 42, "1." + "a" * 44, "1." + "a" * 42 + "=", "٣." + "a" * 43, "1 ." + "a" * 43,
    "99999999999999999999." + "a" * 43, "1." + "a" * 10_000, "1.\x00" + "a" * 42, "1." + "é" * 43,
])
def test_garbage_tokens_are_no_session(store: Store, acme: Workspace, garbage: str | None) -> None:
    assert members.signed_in(store, garbage, NOW) is None
    members.sign_out(store, garbage)


# --------------------------------------------------------------------- throttling


def test_throttled_per_email_at_exactly_the_limit(store: Store, acme: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    for n in range(members.MAX_ATTEMPTS_PER_EMAIL - 1):
        with pytest.raises(SignInFailed):
            sign_in(store, password="wrong password", ip=f"192.0.2.{n}")
    sign_in(store, ip="198.51.100.1")  # the 10th attempt: still counted, still allowed
    with pytest.raises(RateLimited) as limited:
        sign_in(store, " Amy@Example.com", ip="198.51.100.2")  # the 11th, right password
    window_end = int(NOW) - int(NOW) % members.SIGN_IN_WINDOW_S + members.SIGN_IN_WINDOW_S
    assert limited.value.reset == window_end
    assert str(limited.value) == "Too many sign-in attempts; try again in 14 minutes"
    # another e-mail from the same addresses is not throttled; the next window is open
    with pytest.raises(SignInFailed):
        sign_in(store, "bob@example.com", ip="198.51.100.2")
    assert sign_in(store, now=window_end).member.email == "amy@example.com"


def test_throttled_per_address_at_exactly_the_limit(store: Store, acme: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    for n in range(members.MAX_ATTEMPTS_PER_ADDRESS - 1):
        with pytest.raises(SignInFailed):
            sign_in(store, f"user{n}@example.com", ip="203.0.113.9")
    sign_in(store, ip="203.0.113.9")  # the 50th from the address
    with pytest.raises(RateLimited):
        sign_in(store, ip="203.0.113.9")
    sign_in(store, ip="203.0.113.10")  # another address


def test_a_throttled_attempt_does_not_check_the_password(
    store: Store, acme: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    for _ in range(members.MAX_ATTEMPTS_PER_EMAIL):
        sign_in(store, ip=None)
    checked: list[str] = []
    monkeypatch.setattr(passwords, "verify_password", lambda stored, pw: checked.append(pw) or True)
    monkeypatch.setattr(passwords, "spend_verify_time", lambda pw: checked.append(pw))
    with pytest.raises(RateLimited, match="try again in 1 minute$"):
        sign_in(store, ip=None, now=NOW + members.SIGN_IN_WINDOW_S - 101)
    assert checked == []


def test_fresh_emails_from_one_address_leave_a_bounded_number_of_rows(store: Store) -> None:
    for n in range(200):
        with pytest.raises(SignInFailed if n < members.MAX_ATTEMPTS_PER_ADDRESS else RateLimited):
            sign_in(store, f"{secrets.token_hex(8)}@example.com", ip="203.0.113.7")
    # over the address's limit no e-mail is counted: its 50 e-mails and the address itself
    rows = store.purge_sign_in_attempts(10**12)  # deletes every row, and says how many
    assert rows == members.MAX_ATTEMPTS_PER_ADDRESS + 1


def test_the_maintenance_purge_deletes_the_windows_before_the_current_one(store: Store) -> None:
    for ip in ("192.0.2.1", "192.0.2.2"):
        with pytest.raises(SignInFailed):
            sign_in(store, ip=ip, now=NOW - members.SIGN_IN_WINDOW_S)  # the previous window
    with pytest.raises(SignInFailed):
        sign_in(store, ip="192.0.2.1")
    # the keys seen again lost their past window then; the one not seen again stays until
    assert members.purge_sign_in_attempts(store, NOW) == 1  # 192.0.2.2's
    assert members.purge_sign_in_attempts(store, NOW) == 0
    assert members.purge_sign_in_attempts(store, NOW + members.SIGN_IN_WINDOW_S) == 2


@pytest.mark.parametrize("address, key", [
    ("192.0.2.1", "ip:192.0.2.1"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "ip:2001:db8:1:2::/64"),
    ("2001:DB8:1:2::1", "ip:2001:db8:1:2::/64"),
    ("fe80::1%eth0", "ip:fe80::/64"),
    ("::ffff:192.0.2.1", "ip:192.0.2.1"),
    ("::1", "ip:::/64"),
    ("testclient", "ip:testclient"),
    ("x" * 100, "ip:" + "x" * 64),
])
def test_address_keys(address: str, key: str) -> None:
    assert members.address_key(address) == key


def test_an_ipv6_client_is_throttled_per_64(store: Store, acme: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    for n in range(members.MAX_ATTEMPTS_PER_ADDRESS):
        with pytest.raises(SignInFailed):
            sign_in(store, f"user{n}@example.com", ip=f"2001:db8:0:7::{n + 1:x}")
    with pytest.raises(RateLimited):  # yet another address of the same /64
        sign_in(store, ip="2001:db8:0:7:ffff:ffff:ffff:ffff")
    sign_in(store, ip="2001:db8:0:8::1")  # the next /64


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(store: Store, acme: Workspace) -> None:
    for n in range(members.MAX_ATTEMPTS_PER_ADDRESS):
        with pytest.raises(SignInFailed):
            sign_in(store, f"user{n}@example.com", ip="::ffff:198.51.100.4" if n % 2 else "198.51.100.4")
    with pytest.raises(RateLimited):
        sign_in(store, ip="198.51.100.4")


def test_an_outdated_hash_is_rehashed_on_sign_in(store: Store, acme: Workspace) -> None:
    amy, _ = members.add_member(store, acme, "amy@example.com", PASSWORD)
    earlier = sign_in(store)
    store.set_member_password(acme.workspace_id, amy.member_id, passwords.PRODUCTION.hash(PASSWORD), 1,
                              end_sessions=False)  # as if hashed before the parameters changed
    session = sign_in(store)  # rehashed here
    stored = store.get_member(acme.workspace_id, amy.member_id)
    assert stored is not None and not passwords.needs_rehash(stored.password_hash)
    assert session.member.password_hash == stored.password_hash
    assert members.signed_in(store, session.token, NOW) is not None
    assert members.signed_in(store, earlier.token, NOW) is not None  # the same password: kept


# ------------------------------------------------------------- workspace isolation


def test_a_member_never_reaches_another_workspace(store: Store, acme: Workspace, other: Workspace) -> None:
    amy, _ = members.add_member(store, acme, "amy@example.com", PASSWORD)
    members.add_member(store, other, "bob@example.com", PASSWORD)
    for ref in ("amy@example.com", str(amy.member_id)):
        with pytest.raises(NotFound):
            members.resolve_member(store, other, ref)
        with pytest.raises(NotFound):
            members.remove_member(store, other, ref)
        with pytest.raises(NotFound):
            members.reset_password(store, other, ref)
    session = sign_in(store)
    assert session.workspace == acme
    # the token replayed with another workspace's id prefix signs in no one
    secret = session.token.split(".", 1)[1]
    assert members.signed_in(store, f"{other.workspace_id}.{secret}", NOW) is None
    members.sign_out(store, f"{other.workspace_id}.{secret}")
    assert members.signed_in(store, session.token, NOW) == session
    # amy is untouched by all of the above
    assert members.list_members(store, acme)[0].password_hash == amy.password_hash


def test_the_stored_token_hash_is_of_the_whole_token(store: Store, acme: Workspace) -> None:
    members.add_member(store, acme, "amy@example.com", PASSWORD)
    session = sign_in(store)
    digest = hashlib.sha256(session.token.encode()).digest()
    assert store.member_session(acme.workspace_id, digest, int(NOW)) is not None


# ----------------------------------------------------------------------------- CSRF


def test_csrf_tokens() -> None:
    token = "1." + "a" * 43
    csrf = members.csrf_token(token)
    assert len(csrf) == 64 and csrf == members.csrf_token(token)
    assert csrf != members.csrf_token("1." + "b" * 43)
    assert members.csrf_matches(token, csrf)
    for presented in (None, "", csrf.upper(), csrf[:-1], csrf + "0", "é" * 64, "x" * 10_000):
        assert not members.csrf_matches(token, presented)
    assert not members.csrf_matches(None, csrf)
    assert not members.csrf_matches("", members.csrf_token(""))
