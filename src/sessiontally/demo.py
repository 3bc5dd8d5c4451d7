"""``sessiontally demo``: a workspace with realistic data to try the API and the dashboard on.

A workspace in America/New_York with three apps (iOS, Android, Web), a few thousand
users and months of sessions ending now. Volume follows a daily rhythm (few sessions at
night, a morning rise, a peak in the local evening), a weekly one (the mobile apps busier
at weekends, the web app much quieter) and a slow growth, with day-to-day noise. Everything
is drawn from one seeded generator, so the same seed at the same instant gives the same
data. Sessions are recorded through ``Store.record_sessions`` in large batches, like an
ingest would, and never start in the future.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from . import admin, attributes, audience, buckets, keys, kpi, members
from .errors import DuplicateName, NotFound
from .store.base import App, NewEvent, NewSession, Segment, Store, Workspace

DEMO_ZONE = "America/New_York"
DEMO_APPS = (("iOS", "ios"), ("Android", "android"), ("Web", "web"))
BASE_URL = "http://127.0.0.1:8000"
MAX_SESSIONS = 400_000  # the rate per user is lowered so that the demo stays fast
SESSIONS_PER_USER_DAY = 1.1  # per active user
RECORD_BATCH = 50_000

# Share of sessions per platform, and its factor per local weekday (Monday first).
PLATFORM_SHARE = {"ios": 0.45, "android": 0.35, "web": 0.20}
PLATFORM_WEEK = {
    "ios": (0.95, 0.95, 0.97, 1.0, 1.08, 1.25, 1.2),
    "android": (0.97, 0.96, 0.98, 1.0, 1.07, 1.2, 1.15),
    "web": (1.15, 1.18, 1.17, 1.12, 1.0, 0.55, 0.5),
}
# Relative activity per local hour (0..23) on weekdays and at weekends.
WEEKDAY_HOURS = (0.9, 0.5, 0.3, 0.2, 0.2, 0.35, 0.8, 1.6, 2.2, 2.3, 2.3, 2.5,
                 2.9, 2.8, 2.7, 2.8, 3.1, 3.6, 4.2, 4.6, 4.5, 3.8, 2.7, 1.7)
WEEKEND_HOURS = (1.4, 0.9, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.1, 1.8, 2.6, 3.1,
                 3.4, 3.4, 3.3, 3.2, 3.2, 3.4, 3.8, 4.1, 4.0, 3.6, 2.9, 2.1)
MEDIAN_SESSION_SECONDS = {"ios": 300.0, "android": 270.0, "web": 420.0}
# The web app's custom events (track's "event") and their weights; mobile uninstalls.
WEB_EVENT_WEIGHTS = (("Article Read", 70), ("Searched", 20), ("Signed Up", 6), ("Purchase Completed", 4))
WEB_EVENTS = tuple(name for name, _ in WEB_EVENT_WEIGHTS)
UNINSTALL_SHARE = 0.004  # of mobile sessions followed by an uninstall

# User attributes: (value, weight) choices.
COUNTRIES = (("US", 38), ("DE", 12), ("GB", 10), ("FR", 9), ("IN", 11), ("BR", 8), ("JP", 7), ("CA", 5))
LANGUAGE_OF = {"US": "en", "GB": "en", "CA": "en", "IN": "en", "DE": "de", "FR": "fr", "BR": "pt",
               "JP": "ja"}
PLANS = (("free", 70), ("pro", 24), ("team", 6))
DEMO_SEGMENTS = (
    # name, filter, description, tags, tracked
    ("US users", {"attribute": "country", "op": "eq", "value": "US"},
     "Users in the United States", ("geo",), True),
    ("Paying users", {"attribute": "plan", "op": "in", "value": ["pro", "team"]},
     "Users on a paid plan", ("billing",), True),
    ("Recent sign-ups", {"attribute": "signup_date", "op": "gte", "value": "<30 days ago>"},
     "Signed up in the 30 days before the demo was made", ("growth",), True),
    ("German speakers", {"attribute": "language", "op": "eq", "value": "de"},
     "Not tracked: shows in /segments/list, refused by data_series", ("geo",), False),
)


@dataclass(frozen=True, slots=True)
class DemoResult:
    workspace: Workspace
    apps: list[App]
    key: str
    created: bool  # False when the workspace existed already (only a key was made)
    sessions: int
    segments: list[Segment]
    member_email: str = ""  # the dashboard's demo member, and its password (new each run)
    member_password: str = ""


def demo_user_ids(users: int) -> list[str]:
    width = len(str(users))
    return [f"user-{n:0{width}d}" for n in range(1, users + 1)]


def add_demo_users_and_segments(
    store: Store, workspace: Workspace, rng: random.Random, users: int, now: float
) -> list[Segment]:
    """Users with attributes (country, plan, language, signup date) and segments, three of
    them tracked, created before the sessions so that the sessions count toward them."""
    countries = [c for c, _ in COUNTRIES]
    country_weights = [w for _, w in COUNTRIES]
    plans = [p for p, _ in PLANS]
    plan_weights = [w for _, w in PLANS]
    profiles: dict[str, str] = {}
    for external_id in demo_user_ids(users):
        country = rng.choices(countries, country_weights)[0]
        signup_us = int((now - rng.uniform(0, 730) * 86_400) * 1_000_000)
        values = {
            "country": attributes.Value(attributes.STRING, country),
            "plan": attributes.Value(attributes.STRING, rng.choices(plans, plan_weights)[0]),
            "language": attributes.Value(attributes.STRING, LANGUAGE_OF[country]),
            "signup_date": attributes.Value(attributes.DATETIME, signup_us),
        }
        profiles[external_id] = orjson.dumps(attributes.encode_values(values)).decode()
    store.update_users(workspace.workspace_id, list(profiles), lambda current: profiles,
                       int(now * 1_000_000))
    month_ago = datetime.fromtimestamp(now - 30 * 86_400).astimezone().isoformat(timespec="seconds")
    made = []
    for name, filter_obj, description, tags, tracked in DEMO_SEGMENTS:
        if filter_obj.get("value") == "<30 days ago>":
            filter_obj = {**filter_obj, "value": month_ago}
        made.append(admin.create_segment(store, workspace, name, orjson.dumps(filter_obj).decode(),
                                         description, tags, tracked))
    return made


def run_demo(
    store: Store,
    name: str = "demo",
    *,
    days: int = 120,
    users: int = 5000,
    seed: int = 42,
    now: float | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> DemoResult:
    """Create the demo workspace and its data, then a key with every permission. If the
    workspace exists, its data is left alone and only the key is replaced: the earlier
    keys named "demo" are revoked (said through ``log``), so that runs do not pile up
    full-permission keys nobody can find."""
    existing = store.find_workspace(name)
    if existing is None:
        try:
            workspace = admin.create_workspace(store, name, DEMO_ZONE)
        except DuplicateName:
            existing = store.find_workspace(name)  # created meanwhile by someone else
            if existing is None:
                raise
    if existing is not None:
        log(f"workspace {name!r} already exists: its data is left as it is")
        return DemoResult(existing, store.list_apps(existing.workspace_id),
                          _new_key(store, existing, log), False, 0,
                          store.list_segments(existing.workspace_id, 0, 100, False),
                          *demo_member(store, existing))

    started = time.perf_counter()
    now = time.time() if now is None else now
    apps = [admin.create_app(store, workspace, app_name, platform) for app_name, platform in DEMO_APPS]
    segments = add_demo_users_and_segments(
        store, workspace, random.Random(f"demo-users-{seed}"), users, now
    )
    classifier = audience.SegmentClassifier()
    recorded = 0
    events = random.Random(f"demo-events-{seed}")
    now_us = int(now * 1_000_000)
    for batch in generate_sessions(random.Random(seed), apps, buckets.load_zone(DEMO_ZONE),
                                   days=days, users=users, now=now):
        # Web pages send events (sessions are derived from them); the mobile apps' back
        # ends record sessions, and their uninstalls arrive as Segment's lifecycle event.
        sent: dict[int, list[NewEvent]] = {}
        kept = []
        for session in batch:
            app = next(a for a in apps if a.app_key == session.app_key)
            if app.platform == "web":
                sent.setdefault(app.app_key, []).extend(_web_events(events, session, now_us))
            else:
                kept.append(session)
                if events.random() < UNINSTALL_SHARE:
                    sent.setdefault(app.app_key, []).append(_uninstall(session, now_us))
        recorded += store.record_sessions(workspace.workspace_id, kept, classifier).recorded
        for app in apps:
            if sent.get(app.app_key):
                store.record_events(workspace.workspace_id, app, sent[app.app_key], now_us, classifier)
    recorded = store.count_raw_sessions(workspace.workspace_id)
    key = _new_key(store, workspace, log)
    log(
        f"created workspace {name!r} ({DEMO_ZONE}, id {workspace.workspace_id}) with apps "
        f"{', '.join(a.name for a in apps)}: {users:,} users, {recorded:,} sessions over the "
        f"last {days} days, {len(segments)} segments "
        f"({sum(s.analytics_enabled for s in segments)} tracked), in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return DemoResult(workspace, apps, key, True, recorded, segments, *demo_member(store, workspace))


def demo_member(store: Store, workspace: Workspace) -> tuple[str, str]:
    """The demo workspace's member for the dashboard, with a new password: added on the
    first run, its password reset on later ones (so the printed one always works)."""
    local = re.sub(r"[^a-z0-9]+", "-", workspace.name.lower()).strip("-") or "demo"
    for email in (f"{local}@example.com", f"{local}-{workspace.workspace_id}@example.com"):
        try:
            return email, members.reset_password(store, workspace, email)
        except NotFound:
            pass
        try:
            return email, members.add_member(store, workspace, email)[1]
        except DuplicateName:  # the address is a member of another workspace
            continue
    raise DuplicateName(f"no free demo e-mail address for workspace {workspace.name!r}")


def _web_events(rng: random.Random, session: NewSession, now_us: int) -> list[NewEvent]:
    """A visit as the tracker sends it: a page view at the start, then more pages and
    custom events a few minutes apart (within one session)."""
    at = session.started_at
    user = session.external_id
    made = [NewEvent(f"{session.session_id}-0", "page", "Home", user, user, at, now_us)]
    for n in range(1, 1 + min(_poisson(rng, 1.6), 6)):
        at += int(rng.uniform(20, 600) * 1_000_000)
        if at > now_us:
            break
        name = rng.choices(WEB_EVENTS, [w for _, w in WEB_EVENT_WEIGHTS])[0]
        made.append(NewEvent(f"{session.session_id}-{n}", "track", name, user, user, at, now_us))
    return made


def _uninstall(session: NewSession, now_us: int) -> NewEvent:
    at = min(session.ended_at or session.started_at, now_us)
    return NewEvent(f"{session.session_id}-uninstall", "track", kpi.UNINSTALL_EVENT,
                    session.external_id, session.external_id, at, now_us)


DEMO_KEY_NAME = "demo"


def _new_key(store: Store, workspace: Workspace, log: Callable[[str], None]) -> str:
    """A new key with every permission, named DEMO_KEY_NAME, in place of the earlier ones
    of that name (revoked: the demo prints its key, so an older one is lost anyway)."""
    earlier = [each for each in admin.list_keys(store, workspace)
               if each.name == DEMO_KEY_NAME and each.revoked_at is None]
    for each in earlier:
        with contextlib.suppress(NotFound):  # revoked meanwhile by someone else
            admin.revoke_key(store, workspace, str(each.key_id))
    created = admin.create_key(store, workspace, DEMO_KEY_NAME, keys.PERMISSIONS)
    if earlier:
        ids = ", ".join(str(each.key_id) for each in earlier)
        log(f"revoked the earlier demo key (id {ids}) and created a new one (id {created.key_id})")
    return created.key


SERVE = "sessiontally serve"


def dashboard_lines(result: DemoResult, base_url: str = BASE_URL, serve: str = SERVE) -> str:
    """Where the dashboard is and how to sign in to it."""
    return "\n".join([
        f"# the dashboard: start the server ({serve}), then open {base_url}/",
        f"#   e-mail:   {result.member_email}",
        f"#   password: {result.member_password}",
    ])


def curl_commands(result: DemoResult, base_url: str = BASE_URL, serve: str = SERVE) -> str:
    """Ready-to-paste commands (comment lines start with '#') for a server at ``base_url``,
    started with ``serve``."""
    header = f"-H 'Authorization: Bearer {result.key}'"
    url = f"{base_url}/sessions/data_series"
    out = [
        f"# sessions per day over the last 30 days (workspace {result.workspace.name!r}, "
        f"{result.workspace.time_zone}); start the API with: {serve}",
        "# (a server on another host or port: sessiontally demo --host H --port P prints these for it)",
        f"curl -s {header} '{url}?length=30&unit=day'",
    ]
    if result.apps:
        app = result.apps[0]
        out += [f"# the same for the {app.name} app only",
                f"curl -s {header} '{url}?length=30&unit=day&app_id={app.app_id}'"]
    out += ["# sessions per hour over the last 48 hours",
            f"curl -s {header} '{url}?length=48&unit=hour'"]
    tracked = [s for s in result.segments if s.analytics_enabled]
    if tracked:
        out += [f"# sessions per day of the tracked segment {tracked[0].name!r}",
                f"curl -s {header} '{url}?length=30&unit=day&segment_id={tracked[0].segment_id}'"]
    out += ["# the workspace's segments",
            f"curl -s {header} '{base_url}/segments/list'",
            "# daily and monthly active users, new users and uninstalls over the last 30 days",
            *(f"curl -s {header} '{base_url}/kpi/{name}/data_series?length=30'"
              for name in ("dau", "mau", "new_users", "uninstalls")),
            "# custom events: their names, then one of them per day",
            f"curl -s {header} '{base_url}/events/list'",
            f"curl -s {header} '{base_url}/events/data_series?event=Article%20Read&length=30&unit=day'"]
    return "\n".join(out + _tracking_commands(result.apps, base_url))


def _tracking_commands(apps: Sequence[App], base_url: str) -> list[str]:
    """Each app's write key, then a page view sent as the web app's pages would send it."""
    if not apps:
        return []
    width = max(len(app.name) for app in apps)
    out = ["# write keys: apps and pages send events with these (not secret; see docs/sending-data.md)"]
    out += [f"#   {app.name.ljust(width)}  {app.write_key}" for app in apps]
    web = next((app for app in apps if app.platform == "web"), apps[0])
    out += [f"# a page view in the {web.name} app through the tracking API (its write key as user name)",
            f"curl -s -u '{web.write_key}:' -X POST '{base_url}/v1/batch' "
            f"-H 'Content-Type: application/json' "
            f"""-d '{{"batch":[{{"type":"page","anonymousId":"visitor-1","name":"Home"}}]}}'"""]
    return out


# ---------------------------------------------------------------------- sessions


def generate_sessions(
    rng: random.Random,
    apps: Sequence[App],
    zone: ZoneInfo,
    *,
    days: int,
    users: int,
    now: float,
    batch_size: int = RECORD_BATCH,
) -> Iterator[list[NewSession]]:
    """Sessions from local midnight ``days - 1`` days before today until ``now``, in batches,
    oldest first. Deterministic for a given generator state, apps and ``now``."""
    now_us = int(now * 1_000_000)
    today = datetime.fromtimestamp(now, zone).date()
    first_day = today - timedelta(days=days - 1)
    start = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=zone).timestamp())
    hour0 = start - start % 3600

    user_ids = demo_user_ids(users)
    # Activity per user is heavy-tailed; each user has a favourite platform.
    activity = [rng.paretovariate(1.6) for _ in user_ids]
    platforms = [p for _, p in DEMO_APPS]
    favourite = rng.choices(platforms, weights=[PLATFORM_SHARE[p] for p in platforms], k=users)
    by_platform = {app.platform or "web": app for app in apps}
    log_median = {app.app_key: math.log(MEDIAN_SESSION_SECONDS.get(app.platform or "web", 300.0))
                  for app in apps}
    # Users come and go: some are there from the start, the others join through the
    # window (more of them later on); most leave after a while, a few stay for good.
    start_us = start * 1_000_000
    span_us = max(now_us - start_us, 1)
    joined = [start_us if rng.random() < 0.4 else start_us + int(rng.random() ** 0.8 * span_us)
              for _ in user_ids]
    left = [j + int(rng.expovariate(1 / 45) * 86_400_000_000) if rng.random() < 0.7 else now_us + 1
            for j in joined]
    indexes = range(users)
    users_for: dict[str, list[float]] = {}
    for platform in by_platform:
        weights = [a * (0.85 if f == platform else 0.075) for a, f in zip(activity, favourite, strict=True)]
        users_for[platform] = _cumulative(weights)

    # Sessions are drawn over every user and kept for the active ones (the share of
    # user-days that are active), so the cap applies to that share.
    active = sum(max(0, min(gone, now_us) - max(came, start_us))
                 for came, gone in zip(joined, left, strict=True))
    active_share = max(active / (users * span_us), 0.01)
    rate = min(SESSIONS_PER_USER_DAY, MAX_SESSIONS / (users * days * active_share * 1.15))
    daily = users * rate
    weekday_hours = _normalised(WEEKDAY_HOURS)
    weekend_hours = _normalised(WEEKEND_HOURS)
    day_noise: dict[date, float] = {}
    batch: list[NewSession] = []
    serial = 0

    for hour_start in range(hour0, int(now) + 1, 3600):
        local = datetime.fromtimestamp(hour_start, zone)
        day = local.date()
        if day < first_day:
            continue
        if day not in day_noise:
            day_noise[day] = max(0.5, rng.gauss(1.0, 0.07))
        weekday = local.weekday()
        profile = weekend_hours if weekday >= 5 else weekday_hours
        progress = (day - first_day).days / max(days - 1, 1)
        level = daily * profile[local.hour] * (0.8 + 0.35 * progress) * day_noise[day]
        lo_us = max(hour_start, start) * 1_000_000
        hi_us = min((hour_start + 3600) * 1_000_000, now_us)
        if hi_us <= lo_us:
            continue
        span = (hi_us - lo_us) / 3_600_000_000
        drawn: list[tuple[int, str, int]] = []
        for platform, app in by_platform.items():
            expected = level * PLATFORM_SHARE[platform] * PLATFORM_WEEK[platform][weekday] * span
            count = _poisson(rng, expected)
            if not count:
                continue
            for n in rng.choices(indexes, cum_weights=users_for[platform], k=count):
                at = lo_us + int(rng.random() * (hi_us - lo_us))
                if joined[n] <= at < left[n]:
                    drawn.append((at, user_ids[n], app.app_key))
        drawn.sort()
        for started_at, external_id, app_key in drawn:
            seconds = min(rng.lognormvariate(log_median[app_key], 0.9), 4 * 3600)
            ends = started_at + int(seconds * 1_000_000)
            ended_at = None if ends > now_us else ends  # None: still going on
            serial += 1
            batch.append(NewSession(f"demo-{serial:09d}", external_id, app_key, started_at, ended_at))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _normalised(values: Sequence[float]) -> tuple[float, ...]:
    total = sum(values)
    return tuple(v / total for v in values)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (normal approximation above 30)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k
