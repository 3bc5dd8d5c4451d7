"""What a new user tripped over (issue 20 item 5), over real processes: the README's
"Using it" block run as written reads back the session it wrote; a wrongly cased
``time_zone`` is answered with the zone meant, on every endpoint that takes one; two
deployments with their own Redis key prefix share one Redis without sharing counters."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from db_support import free_port
from e2e_support import bearer

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block() -> str:
    """The first shell block of the README's "Using it"."""
    section = README.read_text().split("## Using it", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_example_reads_back_its_session(tmp_path: Path) -> None:
    port = free_port()
    script = "set -e\n" + readme_block().replace("8000", str(port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONTALLY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # files, not pipes: the server left in the background keeps them open
    with open(tmp_path / "out", "w") as stdout, open(tmp_path / "err", "w") as stderr:
        proc = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdout=stdout,
                                stderr=stderr, start_new_session=True)
    try:
        proc.wait(timeout=120)
        out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server the block left in the background
    assert proc.returncode == 0, (out, err)
    assert '"sessions_processed":1' in out, out
    assert '{"time":"2025-06-01","sessions":1}' in out, out
    assert f"store: {tmp_path / 'sessiontally.sqlite3'} (new)" in err


@pytest.mark.parametrize("path", ["/sessions/data_series?length=2", "/events/data_series?length=2&event=x"])
def test_a_wrongly_cased_zone_is_answered_with_the_zone_meant(client, shared_db, path):
    _, _, key = shared_db.tenant()
    response = client.get(f"{path}&time_zone=europe/berlin", headers=bearer(key))
    assert response.status_code == 400, response.text
    assert response.json()["message"] == ("'time_zone' is not a known IANA time zone name; "
                                          "did you mean 'Europe/Berlin'?")
    nothing_like_it = client.get(f"{path}&time_zone=Mars/Olympus", headers=bearer(key))
    assert nothing_like_it.json()["message"] == "'time_zone' is not a known IANA time zone name"


def test_workspace_create_suggests_the_zone_meant(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sessiontally.cli import main

    result = CliRunner().invoke(main, ["--database", str(tmp_path / "x.sqlite3"), "workspace", "create",
                                       "w", "--time-zone", "america/new_york"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: unknown IANA time zone: 'america/new_york'; "
                                     "did you mean 'America/New_York'?")


@pytest.mark.redis
def test_two_deployments_share_one_redis_with_their_own_prefixes(server_factory, db, redis_url):
    import redis

    ws = db.workspace(rate_limit=2)
    key = db.key(ws)
    blue = server_factory(db, env={"SESSIONTALLY_REDIS_URL": redis_url,
                                   "SESSIONTALLY_REDIS_PREFIX": "blue:"})
    green = server_factory(db, env={"SESSIONTALLY_REDIS_URL": redis_url,
                                    "SESSIONTALLY_REDIS_PREFIX": "green:"})
    for server in (blue, green):  # each deployment counts its own requests
        with server.client() as c:
            statuses = [c.get("/sessions/data_series?length=1", headers=bearer(key)).status_code
                        for _ in range(3)]
        assert statuses == [200, 200, 429], statuses
        assert "(key prefix '" in server.stderr()
    with redis.Redis.from_url(redis_url) as r:
        names = sorted(name.decode() for name in r.keys("*"))
    assert len(names) == 2, names
    assert names[0].startswith(f"blue:rate:{ws.workspace_id}:"), names
    assert names[1].startswith(f"green:rate:{ws.workspace_id}:"), names
