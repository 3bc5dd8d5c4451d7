"""The tracking API's ingest: messages per second over HTTP, against a bare insert of the
same rows, and what late events cost.

    python bench/tracking_ingest.py [--messages 200000] [--persons 5000] [--repeats 3]

Messages are `page` and `track` events of ``--persons`` anonymous persons over two days,
in sessions (gaps of 10 s to 10 min within one, 1 to 6 hours between), posted to
``/v1/batch`` in batches of 100 as the Segment libraries send them (Basic auth with the
write key, ``Content-Type: text/plain``). Methods, alternating within each repeat, each on
a fresh database and charged for the final WAL copy-back:

- ``bare insert``: the same event rows into the ``events`` table by ``executemany``, one
  transaction per 100 rows (the request's size), on a connection opened by the store
  (so with its durability settings); no validation, no sessions. The engine's limit.
- ``HTTP, in order``: the batches in time order, with 1 and with 4 client connections
  (and 4 against 2 server worker processes).
- ``HTTP, 10% a day late``: a random tenth of the first day's messages held back and
  sent after all the others (4 clients): each extends, moves or merges stored sessions.

After each HTTP run the derived sessions are checked against ``sessionize`` of the
messages by definition (the figures count only correct runs).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import random
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from common import final_checkpoint, machine, server, setup_workspace

from sessiontally.sessionize import sessionize
from sessiontally.store import open_store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BATCH = 100
DAY_S = 86_400
BARE_INSERT = (
    "INSERT INTO events (workspace_id, app_key, message_id, type, event, person, user_id,"
    " occurred_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def make_messages(count: int, persons: int, start_s: int, seed: int) -> list[dict[str, Any]]:
    """``count`` messages of ``persons`` persons over two days from ``start_s``."""
    rng = random.Random(seed)
    per_person = max(1, count // persons)
    messages = []
    for p in range(persons):
        at = start_s + rng.uniform(0, 2 * DAY_S - per_person * 600)
        for i in range(per_person):
            at += rng.uniform(10, 600) if rng.random() < 0.9 else rng.uniform(3600, 6 * 3600)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
            kind = "page" if i % 3 == 0 else "track"
            message = {"type": kind, "anonymousId": f"anon-{p:06d}", "timestamp": stamp,
                       "messageId": f"{seed:x}-{p:x}-{i:x}-{rng.getrandbits(48):012x}",
                       "context": {"library": {"name": "bench", "version": "1"}}}
            if kind == "track":
                message["event"] = "Clicked"
                message["properties"] = {"button": "buy"}
            messages.append(message)
    return messages


def batches(messages: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps({"batch": messages[i:i + BATCH], "sentAt": messages[i]["timestamp"]})
            for i in range(0, len(messages), BATCH)]


def post_all(base: str, write_key: str, bodies: list[bytes], clients: int) -> float:
    """Seconds to post every body (200 each) over ``clients`` keep-alive connections."""
    host, port = base.removeprefix("http://").split(":")
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    source = iter(bodies)
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=300)
        try:
            while not failures:
                with lock:
                    body = next(source, None)
                if body is None:
                    return
                conn.request("POST", "/v1/batch", body=body,
                             headers={"Authorization": auth, "Content-Type": "text/plain"})
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200 or b"rejected" in answer:
                    failures.append(f"{response.status} {answer[:300]!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"POST /v1/batch failed: {failures[0]}")
    return time.perf_counter() - began


def expected_sessions(messages: list[dict[str, Any]], timeout_s: int) -> int:
    times: dict[str, list[int]] = {}
    for m in messages:
        at = datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
        times.setdefault(m["anonymousId"], []).append((at - EPOCH) // timedelta(microseconds=1))
    return sum(len(sessionize(t, timeout_s * 10**6)) for t in times.values())


def bare_insert(database: str, rows: list[tuple[Any, ...]]) -> float:
    store = open_store(database)
    try:
        began = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            with store.connections.write() as conn:  # type: ignore[attr-defined]
                conn.executemany(BARE_INSERT, rows[i:i + BATCH])
        return time.perf_counter() - began + final_checkpoint(database)
    finally:
        store.close()


def http_run(database: str, write_key: str, bodies: list[bytes], clients: int, workers: int) -> float:
    with server(database, workers=workers) as srv:
        seconds = post_all(srv.base, write_key, bodies, clients)
    return seconds + final_checkpoint(database)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--persons", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    start_s = int(time.time()) - 3 * DAY_S
    messages = make_messages(args.messages, args.persons, start_s, seed=17)
    messages.sort(key=lambda m: m["timestamp"])
    rng = random.Random(1)
    first_day = start_s + DAY_S
    late = [m for m in messages if m["timestamp"] < time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(first_day))
            and rng.random() < 0.2]  # a fifth of the first day: about a tenth of all
    late_ids = {m["messageId"] for m in late}
    late_order = [m for m in messages if m["messageId"] not in late_ids] + late
    plans = {  # (bodies, clients, server worker processes)
        "HTTP, in order, 1 client": (batches(messages), 1, 1),
        "HTTP, in order, 4 clients": (batches(messages), 4, 1),
        "HTTP, in order, 4 clients, 2 workers": (batches(messages), 4, 2),
        f"HTTP, {len(late) / len(messages):.0%} a day late, 4 clients": (batches(late_order), 4, 1),
    }
    rates: dict[str, list[float]] = {"bare insert, 100 rows per transaction": []}
    rates.update({name: [] for name in plans})
    print(f"machine: {machine()}")
    print(f"{len(messages):,} messages, {args.persons:,} persons, batches of {BATCH}")
    for repeat in range(args.repeats):
        for method in rates:
            with tempfile.TemporaryDirectory() as tmp:
                database = str(Path(tmp) / "bench.sqlite3")
                store, ws, apps, _ = setup_workspace(database, apps=1)
                app = store.find_app(ws.workspace_id, apps[0].app_id)
                store.close()
                assert app is not None
                if method.startswith("bare"):
                    rows = [(ws.workspace_id, app.app_key, m["messageId"], m["type"], m.get("event"),
                             m["anonymousId"], None, 0, 0) for m in messages]
                    seconds = bare_insert(database, rows)
                else:
                    bodies, clients, workers = plans[method]
                    seconds = http_run(database, app.write_key, bodies, clients, workers)
                    store = open_store(database)
                    got = len(store.derived_sessions(ws.workspace_id, app.app_key))
                    store.close()
                    want = expected_sessions(messages, app.session_timeout_s)
                    assert got == want, (method, got, want)
                rates[method].append(len(messages) / seconds)
                print(f"repeat {repeat + 1}: {method}: {len(messages) / seconds:,.0f} messages/s", flush=True)
    bare = statistics.median(rates["bare insert, 100 rows per transaction"])
    print("\n| method | messages/s (min / median / max) | median ratio to bare |\n|---|---|---|")
    for method, values in rates.items():
        low, mid, high = min(values), statistics.median(values), max(values)
        print(f"| {method} | {low:,.0f} / **{mid:,.0f}** / {high:,.0f} | {mid / bare:.0%} |")


if __name__ == "__main__":
    main()
