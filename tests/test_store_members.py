"""The store's dashboard members, their sessions and sign-in attempts, on both engines."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path

import pytest
from db_support import in_threads

from sessiontally.errors import DuplicateName
from sessiontally.store import open_store
from sessiontally.store.base import Member, Store

NOW_US = 1_700_000_000_000_000
NOW_S = NOW_US // 1_000_000


def token_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@pytest.fixture
def two(store: Store) -> tuple[int, int]:
    return (store.create_workspace("a", "UTC", 100).workspace_id,
            store.create_workspace("b", "UTC", 100).workspace_id)


def test_add_find_get_list(store: Store, two: tuple[int, int]) -> None:
    a, b = two
    zed = store.add_member(a, "zed@example.com", "hash-z", NOW_US)
    amy = store.add_member(a, "amy@example.com", "hash-a", NOW_US + 1)
    bob = store.add_member(b, "bob@example.com", "hash-b", NOW_US)
    assert zed == Member(a, zed.member_id, "zed@example.com", "hash-z", NOW_US, None)
    assert len({zed.member_id, amy.member_id, bob.member_id}) == 3
    assert store.find_member("amy@example.com") == amy
    assert store.find_member("nobody@example.com") is None
    assert store.get_member(a, zed.member_id) == zed
    assert store.get_member(b, zed.member_id) is None  # another workspace's member
    assert store.list_members(a) == [amy, zed]
    assert store.list_members(b) == [bob]


def test_an_email_is_unique_across_workspaces(store: Store, two: tuple[int, int]) -> None:
    a, b = two
    store.add_member(a, "amy@example.com", "h", NOW_US)
    for workspace_id in (a, b):
        with pytest.raises(DuplicateName):
            store.add_member(workspace_id, "amy@example.com", "h2", NOW_US)
    assert len(store.list_members(a)) == 1 and store.list_members(b) == []


def test_sessions_start_expire_and_end(store: Store, two: tuple[int, int]) -> None:
    a, _ = two
    amy = store.add_member(a, "amy@example.com", "h", NOW_US)
    store.start_member_session(a, amy.member_id, token_hash("t1"), NOW_S, NOW_S + 100)
    found = store.member_session(a, token_hash("t1"), NOW_S + 99)
    assert found is not None and found.last_sign_in_at == NOW_S * 1_000_000
    assert store.member_session_expiry(a, token_hash("t1"), NOW_S) == (found, NOW_S + 100)
    assert store.member_session(a, token_hash("t1"), NOW_S + 100) is None  # expired
    assert store.member_session(a, token_hash("t2"), NOW_S) is None
    # a later sign-in deletes the member's expired sessions
    store.start_member_session(a, amy.member_id, token_hash("t2"), NOW_S + 200, NOW_S + 300)
    assert store.member_session(a, token_hash("t1"), NOW_S - 10) is None
    assert store.member_session(a, token_hash("t2"), NOW_S + 201) is not None
    store.end_member_session(a, token_hash("t2"))
    store.end_member_session(a, token_hash("t2"))  # idempotent
    assert store.member_session(a, token_hash("t2"), NOW_S + 201) is None


def test_a_session_is_found_only_in_its_workspace(store: Store, two: tuple[int, int]) -> None:
    a, b = two
    amy = store.add_member(a, "amy@example.com", "h", NOW_US)
    store.start_member_session(a, amy.member_id, token_hash("t"), NOW_S, NOW_S + 100)
    assert store.member_session(b, token_hash("t"), NOW_S) is None
    store.end_member_session(b, token_hash("t"))  # names another workspace: changes nothing
    assert store.member_session(a, token_hash("t"), NOW_S) is not None
    # a session stored under the wrong workspace never signs its member in there
    store.start_member_session(b, amy.member_id, token_hash("u"), NOW_S, NOW_S + 100)
    assert store.member_session(b, token_hash("u"), NOW_S) is None


def test_a_password_change_ends_every_session(store: Store, two: tuple[int, int]) -> None:
    a, b = two
    amy = store.add_member(a, "amy@example.com", "old", NOW_US)
    for name in ("t1", "t2"):
        store.start_member_session(a, amy.member_id, token_hash(name), NOW_S, NOW_S + 100)
    assert not store.set_member_password(b, amy.member_id, "new", NOW_US + 5)  # wrong workspace
    assert store.member_session(a, token_hash("t1"), NOW_S) is not None
    assert store.set_member_password(a, amy.member_id, "new", NOW_US + 5)
    assert store.get_member(a, amy.member_id).password_hash == "new"  # type: ignore[union-attr]
    assert store.member_session(a, token_hash("t1"), NOW_S) is None
    assert store.member_session(a, token_hash("t2"), NOW_S) is None


def test_removing_a_member_ends_its_sessions(store: Store, two: tuple[int, int]) -> None:
    a, b = two
    amy = store.add_member(a, "amy@example.com", "h", NOW_US)
    store.start_member_session(a, amy.member_id, token_hash("t"), NOW_S, NOW_S + 100)
    assert not store.remove_member(b, amy.member_id)
    assert store.member_session(a, token_hash("t"), NOW_S) is not None
    assert store.remove_member(a, amy.member_id)
    assert not store.remove_member(a, amy.member_id)
    assert store.member_session(a, token_hash("t"), NOW_S) is None
    assert store.find_member("amy@example.com") is None
    # the e-mail is free again, under a new id
    again = store.add_member(b, "amy@example.com", "h", NOW_US)
    assert again.member_id != amy.member_id
    # a session started for a removed member is not stored
    store.start_member_session(a, amy.member_id, token_hash("late"), NOW_S, NOW_S + 100)
    assert store.member_session(a, token_hash("late"), NOW_S) is None


def test_sign_in_attempts_count_per_key_and_window(store: Store) -> None:
    assert store.count_sign_in_attempts(["email:x", "ip:1"], 900) == [1, 1]
    assert store.count_sign_in_attempts(["email:x", "ip:1"], 900) == [2, 2]
    assert store.count_sign_in_attempts(["ip:1", "email:y"], 900) == [3, 1]
    assert store.count_sign_in_attempts(["email:x"], 1800) == [1]  # a new window
    assert store.count_sign_in_attempts(["email:x", "email:x"], 1800) == [2, 2]  # once per call
    assert store.count_sign_in_attempts([], 1800) == []


def test_sign_in_attempts_are_exact_under_concurrency(store: Store) -> None:
    def attempt(n: int) -> None:
        for _ in range(10):
            store.count_sign_in_attempts(["ip:1", f"email:{n % 2}"], 0)

    in_threads(8, attempt)
    assert store.count_sign_in_attempts(["ip:1", "email:0", "email:1"], 0) == [81, 41, 41]


def _attempts_in_another_process(url: str, rounds: int) -> None:
    opened = open_store(url)
    try:
        for _ in range(rounds):
            opened.count_sign_in_attempts(["ip:9"], 0)
    finally:
        opened.close()


def test_sign_in_attempts_are_exact_across_processes(store: Store, tmp_path: Path) -> None:
    url = str(getattr(store, "url", None) or store.path)  # type: ignore[attr-defined]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_attempts_in_another_process, args=(url, 15)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert store.count_sign_in_attempts(["ip:9"], 0) == [46]


def test_purging_sign_in_attempts_deletes_every_past_window(store: Store) -> None:
    # keys never seen again: counting a key deletes only that key's past windows
    assert store.count_sign_in_attempts(["email:gone", "ip:1"], 900) == [1, 1]
    assert store.count_sign_in_attempts(["ip:2"], 1800) == [1]
    assert store.count_sign_in_attempts(["email:x", "ip:3"], 2700) == [1, 1]
    assert store.purge_sign_in_attempts(2700) == 3  # the windows of 900 and 1800
    assert store.purge_sign_in_attempts(2700) == 0
    assert store.count_sign_in_attempts(["email:x", "ip:3"], 2700) == [2, 2]  # the current one stays
    assert store.count_sign_in_attempts(["email:gone"], 900) == [1]  # counted afresh: it was deleted
    assert store.purge_sign_in_attempts(10**12) == 3
