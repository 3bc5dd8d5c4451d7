"""sessiontally.sessionize: ``resolve`` (the incremental step the store runs per batch)
against ``sessionize`` (the definition), and the membership rules of CONTRACT section 11.

An in-memory ``IntervalSet`` plays the store: it hands ``resolve`` the stored intervals
of ``window`` (as the store's key-range read does) and applies the changes. Whatever the
batches and their order, the final intervals must be ``sessionize`` of all the times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiontally.sessionize import Activity, Changes, Interval, NewInterval, resolve, sessionize, window

T = 600_000_000  # a timeout of 10 minutes, in microseconds
BASE = 1_750_000_000_000_000


def membership(user_id: str | None) -> tuple[int, ...]:
    """A stand-in for the classifier: user ``u<n>`` matches segment ``n``; no user, none."""
    return () if user_id is None else (int(user_id[1:]),)


class IntervalSet:
    """One person's stored sessions, updated only through ``resolve``'s changes."""

    def __init__(self, timeout_us: int) -> None:
        self.timeout_us = timeout_us
        self.stored: dict[int, Interval] = {}  # by ended_at, as the store keys them

    def near(self, times: Sequence[Activity]) -> list[Interval]:
        lo, hi = window(times, self.timeout_us)
        return sorted(
            (iv for iv in self.stored.values() if iv.ended_at >= lo and iv.started_at <= hi),
            key=lambda iv: iv.ended_at,
        )

    def add(self, times: Sequence[Activity], everything: bool = False) -> Changes:
        stored = sorted(self.stored.values()) if everything else self.near(times)
        changes = resolve(stored, times, self.timeout_us)
        for gone in changes.removed:
            assert self.stored.pop(gone.ended_at) == gone, "removed a session that is not stored"
        for new in changes.added:
            segments = new.segments if new.segments is not None else membership(new.user_id)
            assert new.ended_at not in self.stored, "added over a stored session"
            self.stored[new.ended_at] = Interval(new.started_at, new.ended_at, segments)
        return changes

    def spans(self) -> list[tuple[int, int]]:
        return sorted((iv.started_at, iv.ended_at) for iv in self.stored.values())

    def starts(self) -> list[int]:
        return sorted(iv.started_at for iv in self.stored.values())


def acts(times: Iterable[int], user: str | None = None) -> list[Activity]:
    return [Activity(t, user) for t in times]


def replay(batches: Sequence[Sequence[int]], timeout_us: int = T) -> IntervalSet:
    state = IntervalSet(timeout_us)
    for batch in batches:
        state.add(acts(batch))
    return state


# ------------------------------------------------------------------ sessionize itself


def test_sessionize_by_definition_on_named_cases():
    """The oracle: gaps of exactly the timeout join, one microsecond more splits;
    duplicates and order change nothing."""
    assert sessionize([], T) == []
    assert sessionize([5], T) == [(5, 5)]
    assert sessionize([0, T], T) == [(0, T)]
    assert sessionize([0, T + 1], T) == [(0, 0), (T + 1, T + 1)]
    assert sessionize([3 * T, 0, T, 2 * T, 2 * T], T) == [(0, 3 * T)]
    assert sessionize([0, 0, 0], T) == [(0, 0)]
    assert sessionize([10 * T, T - 1, 0], T) == [(0, T - 1), (10 * T, 10 * T)]


# -------------------------------------------------------------------- resolve, named


def test_one_event_is_a_one_event_session():
    state = IntervalSet(T)
    changes = state.add(acts([BASE], "u1"))
    assert changes == Changes([], [NewInterval(BASE, BASE, None, "u1")])
    assert state.spans() == [(BASE, BASE)]


def test_gap_exactly_the_timeout_extends_and_one_more_microsecond_does_not():
    """A gap equal to the timeout is inside the session; timeout + 1 µs starts another."""
    assert replay([[BASE], [BASE + T]]).spans() == [(BASE, BASE + T)]
    assert replay([[BASE], [BASE + T + 1]]).spans() == [(BASE, BASE), (BASE + T + 1, BASE + T + 1)]
    assert replay([[BASE + T], [BASE]]).spans() == [(BASE, BASE + T)]
    assert replay([[BASE + T + 1], [BASE]]).spans() == [(BASE, BASE), (BASE + T + 1, BASE + T + 1)]


def test_a_time_inside_a_session_or_a_duplicate_changes_nothing():
    state = replay([[BASE, BASE + T, BASE + 2 * T]])
    assert state.add(acts([BASE + T // 2, BASE, BASE + 2 * T, BASE + 2 * T])) == Changes([], [])
    assert state.spans() == [(BASE, BASE + 2 * T)]


def test_extending_the_end_replaces_the_stored_session():
    state = replay([[BASE]])
    changes = state.add(acts([BASE + T]))
    assert changes.removed == [Interval(BASE, BASE, ())]
    assert [(n.started_at, n.ended_at) for n in changes.added] == [(BASE, BASE + T)]


def test_a_late_event_just_before_the_start_moves_it():
    """A start that moves: the old start stops counting, the new one counts."""
    state = replay([[BASE, BASE + 10]])
    changes = state.add(acts([BASE - T]))
    assert [iv.started_at for iv in changes.removed] == [BASE]
    assert [n.started_at for n in changes.added] == [BASE - T]
    assert state.spans() == [(BASE - T, BASE + 10)]
    # One microsecond further out it is a session of its own, and the start stays.
    state = replay([[BASE, BASE + 10]])
    state.add(acts([BASE - T - 2]))
    assert state.spans() == [(BASE - T - 2, BASE - T - 2), (BASE, BASE + 10)]


def test_an_event_between_two_sessions_within_the_timeout_of_both_merges_them():
    state = replay([[BASE], [BASE + 2 * T]])
    assert state.spans() == [(BASE, BASE), (BASE + 2 * T, BASE + 2 * T)]
    changes = state.add(acts([BASE + T]))
    assert sorted(iv.started_at for iv in changes.removed) == [BASE, BASE + 2 * T]
    assert [(n.started_at, n.ended_at) for n in changes.added] == [(BASE, BASE + 2 * T)]
    assert state.spans() == [(BASE, BASE + 2 * T)]
    # Within the timeout of one only: no merge.
    state = replay([[BASE], [BASE + 2 * T + 1]])
    state.add(acts([BASE + T]))
    assert state.spans() == [(BASE, BASE + T), (BASE + 2 * T + 1, BASE + 2 * T + 1)]


def test_one_batch_merges_many_sessions():
    """Five stored sessions 1.5 timeouts apart; a batch of the midpoints joins them all."""
    starts = [BASE + i * 3 * T // 2 for i in range(5)]
    state = replay([[s] for s in starts])
    assert len(state.spans()) == 5
    changes = state.add(acts([s + 3 * T // 4 for s in starts[:-1]]))
    assert len(changes.removed) == 5 and len(changes.added) == 1
    assert state.spans() == [(starts[0], starts[-1])]


def test_resolve_needs_only_the_window():
    """Given every stored session instead of those in ``window``, resolve changes the same."""
    for batches in ([[BASE], [BASE + 5 * T], [BASE + 3 * T]], [[BASE, BASE + 9 * T], [BASE + 4 * T]]):
        near, full = IntervalSet(T), IntervalSet(T)
        for batch in batches:
            a, b = near.add(acts(batch)), full.add(acts(batch), everything=True)
            assert (sorted(a.removed), sorted(a.added)) == (sorted(b.removed), sorted(b.added))


# ----------------------------------------------------------------------- membership


def test_a_new_session_takes_the_user_id_of_its_earliest_event():
    """None as segments (classify now), with the user id of its earliest event that has one."""
    changes = resolve([], [Activity(BASE + 5, "u2"), Activity(BASE + 1, None), Activity(BASE + 3, "u1")], T)
    assert changes.added == [NewInterval(BASE + 1, BASE + 5, None, "u1")]
    assert resolve([], acts([BASE]), T).added == [NewInterval(BASE, BASE, None, None)]


def test_a_tie_at_the_earliest_time_does_not_depend_on_the_order_of_the_batch():
    """Two first events at the same instant with different user ids: the smaller user id,
    whatever the order in the batch (SQLite keeps a batch's order, PostgreSQL sorts it
    by messageId)."""
    for batch in ([Activity(BASE, "u2"), Activity(BASE, "u1")], [Activity(BASE, "u1"), Activity(BASE, "u2")],
                  [Activity(BASE, None), Activity(BASE, "u2"), Activity(BASE, "u1")]):
        assert resolve([], batch, T).added == [NewInterval(BASE, BASE, None, "u1")]


def test_a_moved_start_keeps_the_membership():
    stored = [Interval(BASE, BASE + 10, (7,))]
    changes = resolve(stored, [Activity(BASE - T, "u3")], T)
    assert changes.added == [NewInterval(BASE - T, BASE + 10, (7,), None)]


def test_on_a_merge_the_earlier_keeps_its_own():
    stored = [Interval(BASE + 2 * T, BASE + 2 * T, (9,)), Interval(BASE, BASE, (4,))]
    changes = resolve(stored, [Activity(BASE + T, "u5")], T)
    assert changes.added == [NewInterval(BASE, BASE + 2 * T, (4,), None)]
    # Even when the new event also moves the start before both.
    stored = [Interval(BASE + T, BASE + T, ()), Interval(BASE + 3 * T, BASE + 3 * T, (9,))]
    changes = resolve(stored, [Activity(BASE, "u5"), Activity(BASE + 2 * T, "u6")], T)
    assert changes.added == [NewInterval(BASE, BASE + 3 * T, (), None)]


def test_stored_sessions_that_no_new_time_touches_stay():
    stored = [Interval(BASE, BASE, (1,)), Interval(BASE + 3 * T, BASE + 3 * T, (2,))]
    assert resolve(stored, acts([BASE + 3 * T // 2]), T) == Changes(
        [], [NewInterval(BASE + 3 * T // 2, BASE + 3 * T // 2, None, None)])


# ----------------------------------------------------------------------- properties

# Gaps where mistakes live: around the timeout, zero (duplicates), and far.
GAPS = st.sampled_from([0, 1, T - 1, T, T + 1, 2 * T, 2 * T + 1, 50 * T]) | st.integers(0, 3 * T)


@st.composite
def times_and_batches(draw, users: bool = False):
    """Times built from gaps, shuffled, some repeated, cut into batches."""
    gaps = draw(st.lists(GAPS, min_size=1, max_size=25))
    times, t = [], BASE
    for gap in gaps:
        t += gap
        times.append(t)
    times += draw(st.lists(st.sampled_from(times), max_size=5))  # repeats
    order = draw(st.permutations(times))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=6)))
    edges = [0, *cuts, len(order)]
    batches = [order[a:b] for a, b in zip(edges, edges[1:], strict=False) if a < b]
    if not users:
        return batches
    user = st.sampled_from([None, "u1", "u2", "u3"])
    return [[Activity(t, draw(user)) for t in batch] for batch in batches]


@settings(max_examples=600, deadline=None)
@given(times_and_batches())
def test_any_batching_and_order_gives_the_sessions_of_all_the_times(batches):
    """The final intervals are ``sessionize`` of every time, whatever the batches."""
    state = replay(batches)
    assert state.spans() == sessionize([t for b in batches for t in b], T)


@settings(max_examples=300, deadline=None)
@given(times_and_batches(), st.sampled_from([1, T, 1800 * 1_000_000]))
def test_changes_are_minimal_and_consistent(batches, timeout_us):
    """Each step removes only stored sessions, adds disjoint ones, and never re-adds one
    it removes unchanged; a batch already known changes nothing."""
    state = IntervalSet(timeout_us)
    for batch in batches:
        before = dict(state.stored)
        changes = state.add(acts(batch))
        assert all(before.get(gone.ended_at) == gone for gone in changes.removed)
        removed = {(iv.started_at, iv.ended_at) for iv in changes.removed}
        assert not removed & {(n.started_at, n.ended_at) for n in changes.added}
        assert state.add(acts(batch)) == Changes([], [])
    assert state.spans() == sessionize([t for b in batches for t in b], timeout_us)


@settings(max_examples=300, deadline=None)
@given(times_and_batches(users=True))
def test_membership_comes_from_a_user_of_the_session(batches):
    """Every session's membership is that of the user of one of its own events (it is set
    once, by the earliest event of the batch that first derived it, and only carried on)."""
    state = IntervalSet(T)
    for batch in batches:
        state.add(batch)
    everything = [a for b in batches for a in b]
    for iv in state.stored.values():
        inside = {membership(a.user_id) for a in everything if iv.started_at <= a.at <= iv.ended_at}
        assert iv.segments in inside


@settings(max_examples=200, deadline=None)
@given(times_and_batches(users=True))
def test_in_order_arrival_gives_each_session_the_user_of_its_first_event(batches):
    """Batches in time order (and each batch's events in any order): a session counts for
    the user of its earliest event with a user id (of two at once, the smaller id)."""
    everything = sorted((a for b in batches for a in b), key=lambda a: (a.at, a.user_id is None))
    ordered = sorted(everything, key=lambda a: a.at)
    # Re-cut the same events into time-ordered batches of the drawn sizes.
    sizes, cut, at = [len(b) for b in batches], [], 0
    for size in sizes:
        cut.append(ordered[at:at + size])
        at += size
    state = IntervalSet(T)
    for batch in cut:
        state.add(batch)
    for start, end in sessionize([a.at for a in everything], T):
        events = [a for a in everything if start <= a.at <= end]
        first_batch = next(b for b in cut if any(start <= a.at <= end for a in b))
        with_user = [(a.at, a.user_id) for a in first_batch if start <= a.at <= end and a.user_id]
        first_user = min(with_user)[1] if with_user else None  # a tie: the smaller user id
        assert state.stored[end].segments == membership(first_user), events


@pytest.mark.parametrize("timeout_s", [1, 600, 1800, 7 * 24 * 3600])
def test_the_store_window_is_wide_enough(timeout_s):
    """``window`` reaches exactly the sessions within the timeout of the batch's times."""
    timeout_us = timeout_s * 1_000_000
    lo, hi = window(acts([BASE, BASE + 5]), timeout_us)
    assert (lo, hi) == (BASE - timeout_us, BASE + 5 + timeout_us)
