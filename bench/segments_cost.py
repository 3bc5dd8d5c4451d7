"""What tracked segments cost at recording time.

    python bench/segments_cost.py [--users 100000] [--rounds 6] [--batches 10] [--database URL]

One workspace with ``--users`` users of ~10 attributes each (created up front, straight
through the store), one app and 25 segments with typical filters. Sessions of random
users are recorded through ``Service.record_items`` in batches of 1,000 (validation,
de-duplication, classification and rollup: the path of ``POST /sessions/track`` minus
HTTP), alternately with 0 and with 25 segments tracked: each round records ``--batches``
batches with tracking off for every segment, then as many with tracking on for all 25,
so both phases see the same database size and the same machine state. Prints the rate of
each phase (sessions per second, over all rounds) and their ratio.

The default store is a fresh SQLite file in a temporary directory; ``--database`` takes
an (empty) PostgreSQL database URL instead.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from common import machine

from sessiontally import admin, attributes
from sessiontally.attributes import Value
from sessiontally.ratelimit import RateDecision
from sessiontally.service import Service
from sessiontally.store import open_store

BATCH = 1_000
COUNTRIES = ["US", "CA", "GB", "DE", "FR", "ES", "BR", "IN", "JP", "AU"]
PLANS = ["free", "free", "free", "pro", "team", "enterprise"]
TAGS = ["gamer", "sports", "news", "music", "travel", "food", "tech", "kids"]
LANGUAGES = ["en", "en-GB", "de", "fr", "es", "pt", "pt-BR", "ja"]
CITIES = ["NYC", "London", "Berlin", "Paris", "Madrid", "Sao Paulo", "Mumbai", "Tokyo", "Sydney"]


def t(text: str) -> dict[str, str]:
    return {"$time": text}


def c(attribute: str, op: str, value: object = None) -> dict[str, object]:
    return {"attribute": attribute, "op": op} if value is None else {"attribute": attribute, "op": op,
                                                                     "value": value}


SEGMENT_FILTERS = [
    c("country", "eq", "US"),
    c("country", "in", ["US", "CA", "GB"]),
    c("plan", "eq", "pro"),
    c("plan", "in", ["pro", "team", "enterprise"]),
    c("age", "gte", 18),
    {"all": [c("age", "gte", 25), c("age", "lt", 35)]},
    c("vip", "eq", True),
    c("tags", "contains", "gamer"),
    c("signup", "gte", t("2025-01-01T00:00:00Z")),
    c("last_seen", "lt", t("2025-05-01")),
    {"all": [c("country", "eq", "US"), c("plan", "eq", "pro")]},
    {"any": [c("plan", "eq", "enterprise"), c("vip", "eq", True)]},
    {"not": c("country", "eq", "US")},
    c("language", "eq", "en"),
    c("language", "starts_with", "pt"),
    c("city", "exists"),
    c("score", "gt", 0.8),
    {"all": [c("age", "gte", 18), c("tags", "contains", "sports"), c("country", "in", ["US", "GB", "AU"])]},
    c("email", "not_exists"),
    {"all": [c("signup", "gte", t("2025-03-01")), c("plan", "eq", "free")]},
    {"any": [c("country", "eq", country) for country in ("DE", "FR", "ES")]},
    {"not": c("tags", "contains", "gamer")},
    {"all": [c("vip", "eq", False), c("score", "lt", 0.2)]},
    c("city", "in", ["NYC", "London", "Paris", "Tokyo"]),
    {"all": [{"any": [c("plan", "eq", "team"), c("age", "lt", 21)]},
             {"not": c("language", "starts_with", "en")}]},
]


class NoLimit:
    never_blocks = True

    def hit(self, workspace_id: int, limit: int, now: float) -> RateDecision:
        return RateDecision(limit, limit, 0, True)

    def close(self) -> None:
        pass


def user_attributes(rng: random.Random) -> str:
    """~10 attributes, as stored (attributes.encode_values)."""
    base = datetime(2024, 1, 1, tzinfo=UTC)

    def instant() -> int:
        return int((base + timedelta(seconds=rng.randrange(540 * 86_400))).timestamp() * 1e6)

    values = {
        "country": Value("s", rng.choice(COUNTRIES)),
        "plan": Value("s", rng.choice(PLANS)),
        "age": Value("n", rng.randint(13, 90)),
        "vip": Value("b", rng.random() < 0.05),
        "tags": Value("a", tuple(rng.sample(TAGS, rng.randint(0, 3)))),
        "signup": Value("d", instant()),
        "last_seen": Value("d", instant()),
        "language": Value("s", rng.choice(LANGUAGES)),
        "score": Value("n", round(rng.random(), 3)),
    }
    if rng.random() < 0.8:
        values["city"] = Value("s", rng.choice(CITIES))
    if rng.random() < 0.5:
        values["email"] = Value("s", f"user{rng.randrange(10**9)}@example.com")
    return orjson.dumps(attributes.encode_values(values)).decode()


def create_users(store, workspace_id: int, count: int, rng: random.Random, chunk: int = 5_000) -> float:
    began = time.perf_counter()
    now_us = int(time.time() * 1e6)
    for start in range(0, count, chunk):
        ids = [f"user-{i}" for i in range(start, min(count, start + chunk))]
        texts = {external_id: user_attributes(rng) for external_id in ids}
        store.update_users(workspace_id, ids, lambda current, texts=texts: texts, now_us)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batches", type=int, default=10, help="batches of 1,000 per phase per round")
    parser.add_argument("--database", default=None, help="an empty database URL (default: temp SQLite)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")

    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or str(Path(tmp) / "segments-cost.sqlite3")
        store = open_store(database)
        store.migrate()
        engine = "postgresql" if database.startswith("postgres") else "sqlite"
        rng = random.Random(args.seed)
        ws = admin.create_workspace(store, f"bench-{rng.getrandbits(32):08x}", "America/New_York", 10**9)
        app = admin.create_app(store, ws, "app")
        took = create_users(store, ws.workspace_id, args.users, rng)
        print(f"store: {engine}; {args.users:,} users with ~10 attributes created in {took:.1f} s")
        segments = [admin.create_segment(store, ws, f"segment {i}", orjson.dumps(f).decode())
                    for i, f in enumerate(SEGMENT_FILTERS)]
        assert len(segments) == 25
        service = Service(store, NoLimit())
        now = time.time()
        span = 30 * 86_400
        serial = 0

        def batch() -> list[dict[str, str]]:
            nonlocal serial
            items = []
            for _ in range(BATCH):
                serial += 1
                started = datetime.fromtimestamp(now - rng.random() * span, UTC)
                items.append({
                    "session_id": f"s{serial:012d}",
                    "external_id": f"user-{rng.randrange(args.users)}",
                    "app_id": app.app_id,
                    "started_at": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                })
            return items

        def set_all(on: bool) -> None:
            for segment in segments:
                admin.set_segment_analytics(store, ws, segment.segment_id, on)

        service.record_items(ws, batch())  # warm-up (connections, caches, compiled filters)
        elapsed = {0: 0.0, 25: 0.0}
        recorded = {0: 0, 25: 0}
        per_round: dict[int, list[float]] = {0: [], 25: []}
        for _ in range(args.rounds):
            for tracked in (0, 25):
                set_all(tracked == 25)
                batches = [batch() for _ in range(args.batches)]  # built outside the timing
                began = time.perf_counter()
                for items in batches:
                    result = service.record_items(ws, items)
                    recorded[tracked] += result.recorded
                took = time.perf_counter() - began
                elapsed[tracked] += took
                per_round[tracked].append(args.batches * BATCH / took)

        rates = {n: recorded[n] / elapsed[n] for n in (0, 25)}
        matched = sum(store.rollup_total(ws.workspace_id, 0, s.segment_key) for s in segments)
        print(f"recorded {recorded[0]:,} + {recorded[25]:,} sessions in batches of {BATCH:,} "
              f"({args.rounds} rounds x {args.batches} batches per phase, interleaved)")
        for n in (0, 25):
            rounds = per_round[n]
            print(f"  {n:>2} tracked segments: {rates[n]:>9,.0f} sessions/s (per-round median "
                  f"{statistics.median(rounds):,.0f}, min {min(rounds):,.0f}, max {max(rounds):,.0f})")
        print(f"  ratio (25 tracked / 0 tracked): {rates[25] / rates[0]:.2f} "
              f"({(1 - rates[25] / rates[0]) * 100:.0f}% slower); "
              f"{matched / recorded[25]:.1f} segment memberships counted per session")
        store.close()


if __name__ == "__main__":
    main()
