"""The benchmark suite: one command runs every part and writes bench/RESULTS.md.

    python bench/run.py            # full sizes (about 2 hours on a 2-core machine)
    python bench/run.py --quick    # small sizes (a few minutes)

Options: ``--parts series overhead ingest memory profile`` runs some parts only (the
others' results are taken from the last run of the same mode, kept in
``bench/results-<mode>.json`` beside RESULTS.md and committed with it, so that a later
session can re-run one part and still render a whole report); ``--report-only`` rewrites
RESULTS.md from that file; ``--workdir`` (default /tmp/sessiontally-bench) holds the
generated data, deleted as each part ends.

The code measured is the ``sessiontally`` package Python imports. To measure a fixed
commit while others edit the working tree: ``git worktree add /tmp/st HEAD``, then from
/tmp/st run ``PYTHONPATH=/tmp/st/src python bench/run.py``.

Requirements: ``pip install -e '.[test]'`` and ``pip install -r bench/requirements.txt``;
``wrk`` (``apt-get install wrk``) for part 3 (else a weaker Python load generator is
used, and RESULTS.md says so).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import http_overhead
import ingest_rates
import memory
import profiles
import report
import series_latency
from common import load_average, log, machine

import sessiontally

PARTS = ("series", "overhead", "ingest", "profile", "memory")

CONFIGS: dict[str, dict[str, Any]] = {
    "quick": {
        "series": {"sizes": [10_000, 1_000_000], "requests": 300, "repeats": 3},
        "overhead": {"size": 10_000, "duration": 4, "connections": 8, "repeats": 3, "workers": (1,)},
        "ingest": {"preload": 100_000, "sessions": 100_000, "repeats": 3, "clients": [1, 4, 16],
                   "more_workers": [(4, 2)]},
        "memory": {"sessions": 500_000, "small": 100_000, "clients": 16, "repeats": 3},
        "profile": {"size": 10_000, "seconds": 5, "ingest_sessions": 100_000},
    },
    "full": {
        "series": {"sizes": [10_000, 1_000_000, 10_000_000, 100_000_000], "requests": 2000, "repeats": 3},
        "overhead": {"size": 1_000_000, "duration": 10, "connections": 8, "repeats": 3, "workers": (1, 2)},
        "ingest": {"preload": 1_000_000, "sessions": 1_000_000, "repeats": 3, "clients": [1, 4, 16],
                   "more_workers": [(4, 2)]},
        "memory": {"sessions": 10_000_000, "small": 1_000_000, "clients": 16, "repeats": 3},
        "profile": {"size": 1_000_000, "seconds": 15, "ingest_sessions": 1_000_000},
    },
}


# The code measured: the sessiontally package this process imports (and its servers and
# commands, which inherit PYTHONPATH), and the git state of its tree.
CODE_ROOT = Path(sessiontally.__file__).resolve().parents[2]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=CODE_ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--workdir", default="/tmp/sessiontally-bench")
    parser.add_argument("--series-sizes", type=int, nargs="+", metavar="N",
                        help="with --parts series: re-run only these sizes, keeping the others"
                             " (each size's section says which run it comes from)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    config = CONFIGS[mode]
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    saved = Path(args.output).resolve().parent / f"results-{mode}.json"
    results: dict[str, Any] = json.loads(saved.read_text()) if saved.exists() else {}

    def save() -> None:
        saved.write_text(json.dumps(results, indent=1, default=str))

    if not args.report_only:
        command = "python bench/run.py" + (" --quick" if args.quick else "")
        if set(args.parts) != set(PARTS):
            command += " --parts " + " ".join(args.parts)
        if args.series_sizes:
            command += " --series-sizes " + " ".join(map(str, args.series_sizes))
        results.setdefault("runs", []).append({
            "command": command, "argv": shlex.join(sys.argv), "machine": machine(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_average": load_average(),
            "code": str(CODE_ROOT),
            "commit": _git("rev-parse", "--short", "HEAD"),
            "src_changes": _git("status", "--porcelain", "--", "src"),
        })
        results["mode"] = mode
        run_index = len(results["runs"]) - 1

        def done(part: str) -> None:
            results.setdefault("part_runs", {})[part] = run_index
            save()

        log(f"measuring the code in {CODE_ROOT} (commit {results['runs'][-1]['commit']})")
        if results["runs"][-1]["src_changes"]:
            log("warning: src/ has uncommitted changes")
        began = time.time()
        if "series" in args.parts:
            c = config["series"]
            kept = {} if not args.series_sizes else {s["size"]: s for s in results.get("series", [])}
            results["series"] = []
            for size in c["sizes"]:
                if args.series_sizes and size not in args.series_sizes and size in kept:
                    results["series"].append(kept[size])
                    continue
                try:
                    entry = series_latency.run_size(size, workdir, c["requests"], c["repeats"])
                except series_latency.LoadTooSlow as exc:
                    entry = {"size": size, "skipped": str(exc)}
                    log(f"size {size:,} skipped: {exc}")
                entry["run"] = run_index
                results["series"].append(entry)
                save()
            if not args.series_sizes:
                done("series")
            else:
                save()
        if "overhead" in args.parts:
            c = config["overhead"]
            log("part 3: HTTP overhead")
            results["overhead"] = http_overhead.run(workdir, c["size"], c["duration"], c["connections"],
                                                    c["repeats"], c["workers"])
            done("overhead")
        if "ingest" in args.parts:
            c = config["ingest"]
            log("part 4: ingest rates")
            results["ingest"] = ingest_rates.run(workdir, c["preload"], c["sessions"], c["repeats"],
                                                 c["clients"], more_workers=tuple(c["more_workers"]))
            done("ingest")
        if "profile" in args.parts:
            c = config["profile"]
            log("profiles of the misses")
            results["profile"] = profiles.run(workdir, c["size"], c["seconds"], c["ingest_sessions"])
            done("profile")
        if "memory" in args.parts:
            c = config["memory"]
            log("part 5: memory")
            results["memory"] = memory.run(workdir, c["sessions"], c["small"], c["clients"], c["repeats"])
            done("memory")
        results["runs"][-1]["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        results["runs"][-1]["minutes"] = (time.time() - began) / 60
        results["runs"][-1]["load_average_end"] = load_average()
        save()
    output = Path(args.output)
    kept = report.kept_sections(output.read_text() if output.exists() else "")
    output.write_text(report.render(results) + kept)
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
