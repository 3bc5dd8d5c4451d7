"""A throwaway Citus cluster for the tests: a coordinator and two workers, three ``initdb``
data directories on free ports (run as the ``postgres`` user when started as root).

    python tests/citus_cluster.py start DIR   # prints the coordinator's URL
    python tests/citus_cluster.py stop DIR    # stops the three nodes (DIR is left)

Each node's settings are written into its ``postgresql.conf`` (port, socket directory,
``shared_preload_libraries = citus``, a small ``citus.shard_count``), so that a plain
``pg_ctl -D DATA start`` brings a stopped node back as it was: the fault tests
(tests/e2e/test_e2e_citus_faults.py) stop a worker with ``pg_ctl -m immediate`` and start
it again with ``restart_node``. The ``postgres`` database of each node has the extension;
the coordinator knows itself (``citus_set_coordinator_host``) and the workers
(``citus_add_node``). Test databases are made on it by ``db_support.create_citus_database``.

Needs Citus installed into the machine's PostgreSQL (``../shared/citus/build.sh``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

NODES = ("coordinator", "worker1", "worker2")
SHARD_COUNT = 4  # shards per distributed table: two on each worker, so workspaces land on both


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    if which is None:
        raise SystemExit("no pg_ctl: PostgreSQL's server binaries are not installed")
    return Path(which).parent


def citus_installed() -> bool:
    pg_config = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_config"))
    if not pg_config:
        return False
    libdir = subprocess.run([pg_config[-1], "--pkglibdir"], capture_output=True, text=True).stdout.strip()
    return Path(libdir, "citus.so").exists()


def as_postgres(command: list[str]) -> list[str]:
    """``initdb`` and ``pg_ctl`` refuse to run as root: run them as ``postgres`` then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def run(command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(as_postgres(command), capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def url(port: int, database: str = "postgres") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def start_node(data: Path, log: Path) -> None:
    run([str(bindir() / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"])


def stop_node(data: Path, mode: str = "fast") -> None:
    run([str(bindir() / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "stop"], check=False)


def restart_node(data: Path) -> None:
    """Start a node that was stopped (its settings are in its postgresql.conf)."""
    start_node(data, data.parent / f"{data.name}.log")


def start(folder: Path) -> str:
    """Make (if need be) and start the cluster in ``folder``; the coordinator's URL."""
    import psycopg

    if not citus_installed():
        raise SystemExit("Citus is not installed: run ../shared/citus/build.sh first")
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    ports: dict[str, int] = {}
    for name in NODES:
        data = folder / name
        if not data.exists():
            run([str(bindir() / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "--no-sync", "-E", "UTF8", "--locale=C"])
            port = free_port()
            with open(data / "postgresql.conf", "a") as conf:
                conf.write(
                    f"\n# tests/citus_cluster.py\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{folder}'\nshared_preload_libraries = 'citus'\n"
                    f"citus.shard_count = {SHARD_COUNT}\nmax_connections = 300\n"
                    "citus.node_connection_timeout = 3000\n"
                    # throwaway data: no fsync (a node stopped with -m immediate keeps
                    # its writes in the OS; only a machine crash would lose them)
                    "fsync = off\nfull_page_writes = off\n"
                )
        ports[name] = int(next(
            line.split("=")[1] for line in (data / "postgresql.conf").read_text().splitlines()
            if line.startswith("port = ")
        ))
        if run([str(bindir() / "pg_ctl"), "-D", str(data), "status"], check=False).returncode:
            start_node(data, folder / f"{name}.log")
    for name in NODES:
        with psycopg.connect(url(ports[name]), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
    with psycopg.connect(url(ports["coordinator"]), autocommit=True) as conn:
        conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (ports["coordinator"],))
        for name in NODES[1:]:
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (ports[name],))
    return url(ports["coordinator"])


def stop(folder: Path) -> None:
    for name in NODES:
        if (folder / name).exists():
            stop_node(folder / name)


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        raise SystemExit(__doc__)
    folder = Path(sys.argv[2]).resolve()
    if sys.argv[1] == "start":
        began = time.monotonic()
        coordinator = start(folder)
        print(coordinator)
        print(f"citus cluster up in {time.monotonic() - began:.1f} s", file=sys.stderr)
    else:
        stop(folder)


if __name__ == "__main__":
    main()
