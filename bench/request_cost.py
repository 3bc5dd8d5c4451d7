"""What one cached series request costs in-process, in CPU instructions (by hand, not part
of run.py).

    python bench/request_cost.py                 # the service, the service without its
                                                 # access log, and the bare app
    python bench/request_cost.py --only service  # one of them

Each variant runs ``--requests`` in-process requests of the 100-day series (the ASGI app
called directly: no socket, no HTTP parser) under ``valgrind --tool=callgrind``, and once
more with none; the difference divided by ``--requests`` is the instructions one request
costs. Unlike a time, the count does not depend on what else the shared machine is
doing (the same count twice in a row, to a few hundred instructions), so it is the A/B
measure for a change to the request path. It misses what a real server adds around the
app (the HTTP parser, system calls' kernel time, cache misses): part 3 of run.py measures
that, over real HTTP.

Needs valgrind (``apt-get install valgrind``). The database is a 10^4-session one made
by common.series_database in ``--workdir``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PATH, QUERY = "/sessions/data_series", b"length=100&unit=day"
VARIANTS = ("service", "service, access log off", "bare app")


def _app(variant: str, database: str) -> Any:
    """The ASGI app of ``variant``, its access log (if on) written to /dev/null."""
    if variant == "bare app":
        sys.path.insert(0, str(BENCH))
        from bare_app import app

        return app
    os.environ["SESSIONTALLY_DATABASE"] = database
    os.environ["SESSIONTALLY_LOG_LEVEL"] = "WARNING" if variant.endswith("log off") else "INFO"
    from sessiontally.api import logging as access_logging
    from sessiontally.api.app import create_app

    app = create_app()
    for handler in access_logging.logger.handlers:
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    return app


def requests(variant: str, database: str, key: str, count: int) -> None:
    """``count`` requests (after 50 that warm the caches), each checked to answer 200."""
    app = _app(variant, database)
    headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk"),
               (b"authorization", f"Bearer {key}".encode())]

    async def one() -> None:
        statuses: list[int] = []
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "root_path": "",
                 "query_string": QUERY, "headers": headers, "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 8000), "state": {}}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
        if statuses != [200]:
            raise RuntimeError(f"{variant}: answered {statuses}")

    async def run() -> None:
        for _ in range(50 + count):
            await one()

    asyncio.run(run())


def instructions(variant: str, database: str, key: str, count: int) -> int:
    """Instructions of one request: callgrind's total with ``count`` requests, less the
    total with none, over ``count``."""
    from common import callgrind_instructions

    totals = [callgrind_instructions([sys.executable, __file__, "--child", variant, database, key, str(n)])
              for n in (0, count)]
    return (totals[1] - totals[0]) // count


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        variant, database, key, count = sys.argv[2:6]
        requests(variant, database, key, int(count))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=VARIANTS)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(BENCH))
    from common import remove_database, series_database

    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    database = str(Path(args.workdir) / "request-cost.sqlite3")
    key = series_database(database, 10_000)
    try:
        for variant in [args.only] if args.only else VARIANTS:
            print(f"{variant}: {instructions(variant, database, key, args.requests):,} instructions"
                  " per request", flush=True)
    finally:
        remove_database(database)


if __name__ == "__main__":
    main()
