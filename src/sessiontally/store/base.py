"""The store interface every engine implements, and the records it passes around."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

from ..errors import Conflict


@dataclass(frozen=True, slots=True)
class Workspace:
    workspace_id: int
    name: str
    time_zone: str
    rate_limit: int
    retention_days: int | None = None  # raw rows older than this are deleted; None: kept


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What an operator may see of an API key: never the key, never its hash."""

    key_id: int
    name: str
    prefix: str  # the key's first characters, to recognise it
    permissions: tuple[str, ...]
    allowed_ips: tuple[str, ...]
    created_at: int  # seconds since the epoch
    last_seen_at: int | None  # seconds; None: never used
    revoked_at: int | None  # seconds; None: active


@dataclass(frozen=True, slots=True)
class App:
    workspace_id: int
    app_key: int
    app_id: str
    name: str
    platform: str | None
    write_key: str = ""  # the tracking API's credential for this app (not a secret)
    session_timeout_s: int = 1800  # sessions derived from its events (CONTRACT section 11)
    allowed_origins: tuple[str, ...] = ()  # browser origins its write key works from; empty = any
    event_limit: int = 10_000_000  # tracking-API messages per UTC hour


@dataclass(frozen=True, slots=True)
class ApiKey:
    workspace_id: int
    key_id: int
    name: str
    key_hash: bytes
    permissions: frozenset[str]
    allowed_ips: tuple[str, ...]
    revoked: bool
    last_seen_at: int | None


class NewSession(NamedTuple):
    """A validated session, ready to record (times in microseconds since the epoch).

    A NamedTuple, not a frozen dataclass: one is built per recorded session, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) costs several times
    more."""

    session_id: str
    external_id: str
    app_key: int
    started_at: int
    ended_at: int | None


class NewEvent(NamedTuple):
    """A validated tracking-API message, ready to record (times in microseconds since the
    epoch). ``person`` is its anonymousId, else its userId."""

    message_id: str
    type: str
    event: str | None
    person: str
    user_id: str | None
    occurred_at: int
    received_at: int


@dataclass(frozen=True, slots=True)
class Segment:
    workspace_id: int
    segment_key: int
    segment_id: str
    name: str
    description: str
    tags: tuple[str, ...]
    filter_json: str
    analytics_enabled: bool
    tracking_since: int | None  # microseconds since the epoch
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Member:
    """A person who signs in to one workspace's dashboard."""

    workspace_id: int
    member_id: int
    email: str  # trimmed, in lower case; unique across workspaces
    password_hash: str  # argon2id PHC string (passwords.py)
    created_at: int  # microseconds since the epoch
    last_sign_in_at: int | None  # microseconds; None: never


@dataclass(frozen=True, slots=True)
class TrackedSegment:
    """What recording needs of a tracked segment: its rollup key and its filter."""

    segment_key: int
    filter_json: str


# Given the workspace's tracked segments, the users of a batch and the stored attributes
# (JSON text) of those who have any, return the segment keys each user matches.
Classifier = Callable[
    [Sequence[TrackedSegment], Sequence[str], Mapping[str, str]], Mapping[str, Sequence[int]]
]

# Given the stored attributes (JSON text) of the users that exist, return the new JSON
# text of every user to write.
UserUpdater = Callable[[Mapping[str, str]], Mapping[str, str]]

# Given the messageIds a batch newly recorded (in no particular order), the users whose
# attributes those messages change and how; None when they change none. Written in the
# batch's transaction, after its sessions are classified.
EventUserUpdates = Callable[[Sequence[str]], tuple[Sequence[str], UserUpdater] | None]

MAX_TRACKED_SEGMENTS = 25


class TrackingLimitError(Conflict):
    """Turning tracking on would exceed MAX_TRACKED_SEGMENTS in the workspace."""


class TrackedFilterChange(Conflict):
    """A new filter for a segment whose analytics tracking is on."""


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    recorded: int
    duplicates: int


class Store(Protocol):
    """Persistence for one deployment. Every method that touches tenant data takes the
    workspace id first and filters on it; nothing crosses workspaces.

    Engines raise only ``sessiontally.errors`` for conditions a caller handles:
    ``StoreUnavailable`` when the database cannot be reached, ``StoreBusy`` when it stays
    locked, ``DuplicateName`` for a taken name; driver exceptions never leave an engine.
    """

    # Reads never wait for a writer (SQLite in WAL mode), so a caller may run them on an
    # event loop, inside ``pinned_reads``. An engine that sets it raises ``StoreBusy``
    # quickly there instead of waiting, and the caller then retries in a worker thread.
    reads_never_block: ClassVar[bool]

    def migrate(self) -> int: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...

    def pinned_reads(self) -> AbstractContextManager[None]:
        """Reads of this thread inside the block see the data as of its start (where the
        engine can do so cheaply; else the block changes nothing)."""
        ...

    def change_token(self) -> object | None:
        """A value that is the same object as one this thread got earlier only while no
        write has been committed since; callers keep answers derived from the stored data
        under it. None when the engine cannot tell cheaply (then nothing is kept)."""
        ...

    # workspaces
    def create_workspace(self, name: str, time_zone: str, rate_limit: int) -> Workspace: ...
    def get_workspace(self, workspace_id: int) -> Workspace | None: ...
    def find_workspace(self, name: str) -> Workspace | None: ...
    def list_workspaces(self) -> list[tuple[Workspace, int]]:
        """Every workspace with its creation time (seconds since the epoch), by id."""
        ...
    def set_rate_limit(self, workspace_id: int, rate_limit: int) -> bool: ...
    def delete_workspace(self, workspace_id: int) -> bool:
        """Delete the workspace and every row of it in every table (apps, keys, users,
        segments, sessions, events, counts, members and their sessions), in one
        transaction; False when there was no such workspace."""
        ...

    # apps
    def create_app(
        self, workspace_id: int, app_id: str, name: str, platform: str | None,
        write_key: str | None = None,
    ) -> App: ...
    def find_app(self, workspace_id: int, app_id: str) -> App | None: ...
    def find_app_by_write_key(self, workspace_id: int, write_key: str) -> App | None: ...
    def list_apps(self, workspace_id: int) -> list[App]: ...
    def set_write_key(self, workspace_id: int, app_key: int, write_key: str) -> bool: ...
    def update_app(
        self,
        workspace_id: int,
        app_key: int,
        session_timeout_s: int | None = None,
        allowed_origins: Sequence[str] | None = None,
        event_limit: int | None = None,
    ) -> bool: ...
    def delete_app(self, workspace_id: int, app_key: int) -> bool:
        """Delete the app, its raw rows and every count it contributed (its own rows, and
        its share of the all-apps rows: series, events, DAU, MAU, new users, uninstalls),
        in one transaction; False when there was no such app."""
        ...

    # API keys
    def create_key(
        self,
        workspace_id: int,
        name: str,
        key_hash: bytes,
        key_prefix: str,
        permissions: Sequence[str],
        allowed_ips: Sequence[str],
    ) -> int: ...
    def find_key_by_hash(self, workspace_id: int, key_hash: bytes) -> ApiKey | None: ...
    def revoke_key(self, workspace_id: int, key_hash: bytes | None, key_id: int | None) -> bool: ...
    def touch_key(self, workspace_id: int, key_id: int, seen_at: int) -> None: ...
    def list_keys(self, workspace_id: int) -> list[KeyInfo]:
        """The workspace's keys, revoked ones included, by id."""
        ...

    # users and segments
    def update_users(
        self, workspace_id: int, external_ids: Sequence[str], update: UserUpdater, now: int
    ) -> None: ...
    def user_attributes(self, workspace_id: int, external_id: str) -> str | None: ...
    def create_segment(
        self,
        workspace_id: int,
        segment_id: str,
        name: str,
        description: str,
        tags: Sequence[str],
        filter_json: str,
        analytics: bool,
        now: int,
    ) -> Segment: ...
    def set_segment_tracking(
        self, workspace_id: int, segment_id: str, enabled: bool, now: int
    ) -> Segment | None: ...
    def get_segment(self, workspace_id: int, segment_id: str) -> Segment | None: ...
    def update_segment(
        self,
        workspace_id: int,
        segment_id: str,
        now: int,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        filter_json: str | None = None,
    ) -> Segment | None:
        """Change what is given; None when there is no such segment. A new filter for a
        segment whose tracking is on: ``TrackedFilterChange`` (its counts were made with
        the filter it has)."""
        ...
    def delete_segment(self, workspace_id: int, segment_id: str) -> bool:
        """Delete the segment, its counts (sessions and events) and its key in the derived
        sessions, in one transaction; False when there was no such segment."""
        ...
    def list_segments(
        self, workspace_id: int, offset: int, limit: int, descending: bool
    ) -> list[Segment]: ...

    # sessions
    def record_sessions(
        self, workspace_id: int, sessions: Sequence[NewSession], classify: Classifier | None = None
    ) -> RecordOutcome: ...
    def record_events(
        self,
        workspace_id: int,
        app: App,
        events: Sequence[NewEvent],
        now_us: int,
        classify: Classifier | None = None,
        user_updates: EventUserUpdates | None = None,
    ) -> RecordOutcome:
        """Record a batch of tracking-API messages in one transaction: those whose
        (app, messageId) is new are stored, the activity among them updates the
        derived sessions and their counts (CONTRACT section 11), and ``user_updates``
        of the new ones sets user attributes (``identify`` traits; a repeated message
        changes nothing). The batch first takes ``len(events)`` from the app's hourly
        message limit: ``RateLimited`` if it would go over (then nothing is recorded)."""
        ...
    def count_by_quarters(
        self, workspace_id: int, app_key: int, segment_key: int, boundaries: Sequence[int]
    ) -> list[int]: ...
    # erasure and retention
    def erase_user(
        self, workspace_id: int, external_id: str, classify: Classifier | None = None
    ) -> bool:
        """In one transaction, delete the user's attributes, recorded sessions, events and
        derived sessions, and those of every anonymous person whose events carry it as
        userId, with every count they contributed (series, segments, KPIs, events).
        ``classify`` matches rows recorded before their segments were stored. Whether
        anything of theirs was stored."""
        ...
    def set_retention(self, workspace_id: int, days: int | None) -> bool:
        """Keep raw rows ``days`` days (None: forever); False when there is no such workspace."""
        ...
    def retention_workspaces(self) -> list[tuple[int, int]]:
        """``(workspace_id, retention_days)`` of every workspace with a retention."""
        ...
    def expire_raw_rows(self, workspace_id: int, horizon_us: int, batch: int = 1000) -> dict[str, int]:
        """Delete recorded sessions and events older than ``horizon_us`` and derived
        sessions that ended before it (less the longest session timeout, so that no event
        of the horizon can touch them), ``batch`` rows per transaction; no count changes.
        Rows deleted per table."""
        ...
    def count_raw_sessions(self, workspace_id: int) -> int: ...
    def has_sessions(self, workspace_id: int) -> bool: ...
    # KPIs and custom events (local days: days since 1970-01-01 in the workspace's zone)
    def kpi_series(
        self, workspace_id: int, app_key: int, kind: int, first_day: int, last_day: int
    ) -> list[int]: ...
    def event_names(self, workspace_id: int, offset: int, limit: int) -> list[str]: ...
    def event_name_key(self, workspace_id: int, name: str) -> int | None: ...
    def count_events_by_quarters(
        self, workspace_id: int, app_key: int, segment_key: int, name_key: int, boundaries: Sequence[int]
    ) -> list[int]: ...
    def active_days(self, workspace_id: int, app_key: int) -> dict[str, set[int]]: ...
    def change_time_zone(self, workspace_id: int, time_zone: str) -> None:
        """Set the workspace's zone and rebuild what is kept per local day (persons'
        active days, DAU, MAU, new users, uninstalls) from the raw sessions and events,
        in one transaction."""
        ...
    def derived_sessions(self, workspace_id: int, app_key: int) -> list[tuple[str, int, int]]:
        """Every derived session of an app as ``(person, started_at, ended_at)`` (tests,
        integrity checks)."""
        ...
    def count_raw_in_range(
        self, workspace_id: int, app_key: int, start_us: int, end_us: int
    ) -> int: ...
    def rollup_total(self, workspace_id: int, app_key: int, segment_key: int) -> int: ...

    # dashboard members (e-mails are unique across workspaces: one sign-in form)
    def add_member(
        self, workspace_id: int, email: str, password_hash: str, now_us: int
    ) -> Member:
        """``DuplicateName`` when a member of any workspace has the e-mail."""
        ...
    def find_member(self, email: str) -> Member | None: ...
    def get_member(self, workspace_id: int, member_id: int) -> Member | None: ...
    def list_members(self, workspace_id: int) -> list[Member]:
        """By e-mail, in code-point order."""
        ...
    def remove_member(self, workspace_id: int, member_id: int) -> bool:
        """Delete the member and its sessions; False when there was no such member."""
        ...
    def set_member_password(
        self, workspace_id: int, member_id: int, password_hash: str, now_us: int,
        end_sessions: bool = True,
    ) -> bool:
        """Store a new hash and, unless told not to (a rehash of the same password), end
        every session of the member (signed out everywhere)."""
        ...
    def start_member_session(
        self, workspace_id: int, member_id: int, token_hash: bytes, now_s: int, expires_s: int
    ) -> None:
        """Store a session (nothing when the member is gone), set the member's last
        sign-in, and delete its expired sessions."""
        ...
    def member_session(self, workspace_id: int, token_hash: bytes, now_s: int) -> Member | None:
        """The member a session token's hash signs in: None when there is no such session,
        it has expired, or its member is gone."""
        ...
    def member_session_expiry(
        self, workspace_id: int, token_hash: bytes, now_s: int
    ) -> tuple[Member, int] | None:
        """As ``member_session``, with the session's expiry (seconds since the epoch)."""
        ...
    def end_member_session(self, workspace_id: int, token_hash: bytes) -> None: ...
    def count_sign_in_attempts(self, throttle_keys: Sequence[str], window_start: int) -> list[int]:
        """Add one attempt to each key's window starting at ``window_start`` and return
        each key's count after that, in the order given; windows that started before are
        deleted. One transaction: exact across processes."""
        ...
    def purge_sign_in_attempts(self, before_window: int) -> int:
        """Delete every key's windows that started before ``before_window`` (keys never
        seen again included); how many rows were deleted."""
        ...
