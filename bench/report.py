"""Renders the suite's results (bench/run.py) as bench/RESULTS.md."""

from __future__ import annotations

import statistics
from typing import Any

MIB_TO_MB = 2**20 / 1e6
CASE_ORDER = ["100 days", "100 days, app_id", "100 days, segment_id", "100 days, app_id, segment_id",
              "100 hours", "100 hours, app_id", "100 hours, segment_id", "100 hours, app_id, segment_id"]


def med(values: list[float]) -> float:
    return statistics.median(values)


def size_name(n: int) -> str:
    exp = len(str(n)) - 1
    return f"10^{exp}" if n == 10**exp else f"{n:,}"


def three(values: list[float], fmt: str = "{:.2f}") -> str:
    """min / **median** / max."""
    if not values:
        return "-"
    return f"{fmt.format(min(values))} / **{fmt.format(med(values))}** / {fmt.format(max(values))}"


def yes(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**yes**" if ok else "**NO**")


def _loaded(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in results.get("series", []) if "latency" in s]


def _sorted_bare(rates: dict[str, list[float]]) -> list[float] | None:
    """The bare insert sorted by id, as ``import`` writes (bench/ingest_rates.py
    SORTED_BARE); None in results from before it was measured."""
    return next((v for k, v in rates.items() if k.endswith("sorted by id")), None)


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    sizes = _loaded(results)
    if sizes:
        worst = max((med(s["latency"][c]["p50"]), c, s["size"]) for s in sizes for c in s["latency"])
        rows.append(("Series p50 <= 2 ms at every size (8 cases)",
                     f"worst median p50 {worst[0]:.2f} ms ({worst[1]}, {size_name(worst[2])})",
                     yes(worst[0] <= 2)))
        worst99 = max((med(s["latency"][c]["p99"]), c, s["size"]) for s in sizes for c in s["latency"])
        rows.append(("Series p99 <= 10 ms at every size",
                     f"worst median p99 {worst99[0]:.2f} ms ({worst99[1]}, {size_name(worst99[2])})",
                     yes(worst99[0] <= 10)))
        small = next((s for s in sizes if s["size"] == 10_000), None)
        big = max(sizes, key=lambda s: s["size"])
        if small and big is not small:
            ratios = [(med(big["latency"][c]["p50"]) / med(small["latency"][c]["p50"]), c)
                      for c in small["latency"]]
            day = med(big["latency"]["100 days"]["p50"]) / med(small["latency"]["100 days"]["p50"])
            worst_ratio = max(ratios)
            target = "p50 at 10^8 within 1.5x of p50 at 10^4"
            if big["size"] != 100_000_000:
                target += f" (largest loaded: {size_name(big['size'])})"
            rows.append((target, f"worst {worst_ratio[0]:.2f}x ({worst_ratio[1]}); "
                         f"100 days: {day:.2f}x",
                         yes(worst_ratio[0] <= 1.5)))
        if "duckdb_scan_s" in big:
            ratio = med(big["duckdb_scan_s"]) * 1000 / med(big["latency"]["100 days"]["p50"])
            label = "At 10^8 sessions, >= 20x faster than the DuckDB scan"
            if big["size"] != 100_000_000:
                label += f" (largest loaded: {size_name(big['size'])})"
            duck_ms = med(big["duckdb_scan_s"]) * 1000
            rows.append((label, f"{ratio:,.0f}x (DuckDB {duck_ms:,.0f} ms vs HTTP p50 "
                         f"{med(big['latency']['100 days']['p50']):.2f} ms, medians)", yes(ratio >= 20)))
    over = results.get("overhead")
    if over:
        for workers, r in over["by_workers"].items():
            plural = "s" if workers != "1" else ""
            rows.append((f"Series endpoint >= 50% of the bare endpoint's req/s ({workers} worker{plural}, "
                         "as shipped: a repeated query is answered from the read cache)",
                         f"{med(r['ratio']):.1%} ({med(r['series']):,.0f} vs {med(r['bare']):,.0f} req/s)",
                         yes(med(r["ratio"]) >= 0.5)))
            if r.get("ratio_uncached"):
                rows.append((f"Series endpoint >= 50% of the bare endpoint's req/s ({workers} worker"
                             f"{plural}, cache off: the rollup read on every request)",
                             f"{med(r['ratio_uncached']):.1%} ({med(r['series_uncached']):,.0f} vs "
                             f"{med(r['bare']):,.0f} req/s)", yes(med(r["ratio_uncached"]) >= 0.5)))
    ing = results.get("ingest")
    if ing:
        rates = ing["rates"]
        http = {k: v for k, v in rates.items() if k.startswith("HTTP")}
        best = max(http, key=lambda k: med(http[k]))
        rows.append(("Ingest over HTTP >= 100,000 sessions/s",
                     "; ".join(f"{k.removeprefix('HTTP, ')}: {med(v):,.0f}/s" for k, v in http.items()),
                     yes(med(http[best]) >= 100_000)))
        bare = rates["bare executemany, 1,000 per transaction"]
        ratios = {k: [a / b for a, b in zip(v, bare, strict=False)] for k, v in http.items()}
        rows.append(("Ingest over HTTP >= 50% of the bare-insert limit (1,000 rows per transaction)",
                     "; ".join(f"{k.removeprefix('HTTP, ')}: {med(v):.0%}" for k, v in ratios.items())
                     + f" (bare: {med(bare):,.0f}/s)", _per_count(ratios, 0.5)))
        imp = rates["sessiontally import"]
        limit = _sorted_bare(rates)
        of_limit = (f"; {med([a / b for a, b in zip(imp, limit, strict=False)]):.0%} of the bare insert"
                    f" as `import` writes, sorted 50,000-row transactions: {med(limit):,.0f}/s"
                    if limit else "")
        rows.append(("`import` >= 200,000 sessions/s",
                     f"{med(imp):,.0f}/s ({size_name(ing['sessions'])}-line file{of_limit})",
                     yes(med(imp) >= 200_000)))
    mem = results.get("memory")
    if mem:
        peak = max(max(r["peak_rss_sum_mib"], r["hwm_sum_mib"]) for r in mem["server"]) * MIB_TO_MB
        rows.append((f"Server RSS <= 300 MB while ingesting ({size_name(mem['sessions'])} sessions, "
                     f"{mem['clients']} clients)", f"peak {peak:,.0f} MB", yes(peak <= 300)))
        small = max(r["rss_mib"] for r in mem["import"]["small"]) * MIB_TO_MB
        large = max(r["rss_mib"] for r in mem["import"]["large"]) * MIB_TO_MB
        rows.append(("`import` memory flat in the file's size",
                     f"{large:,.0f} MB for {size_name(mem['sessions'])} lines vs {small:,.0f} MB for "
                     f"{size_name(mem['small'])} ({large / small:.2f}x)", yes(large <= small * 1.10)))
    return rows


END_MARKER = "<!-- end of bench/run.py's output; sections below it are kept when it rewrites this file -->"
LAST_SECTION = "## How the data is made"


def kept_sections(previous: str) -> str:
    """What others added to RESULTS.md below this suite's output (kept on a rewrite)."""
    if END_MARKER in previous:
        rest = previous.split(END_MARKER, 1)[1].strip("\n")
    elif LAST_SECTION in previous:
        tail = previous.split(LAST_SECTION, 1)[1]
        cut = tail.find("\n## ")
        rest = tail[cut + 1:].strip("\n") if cut >= 0 else ""
    else:
        rest = ""
    return "\n" + rest + "\n" if rest else ""


def render(results: dict[str, Any]) -> str:
    run = results.get("runs", [{}])[-1]
    out: list[str] = []
    add = out.append
    add("# Benchmark results\n")
    add(f"- Command: `{run.get('command', '?')}` (from the repository root; see bench/README.md)")
    add(f"- Date: {run.get('started', '?')} to {run.get('finished', '?')} "
        f"({run.get('minutes', 0):.0f} min)")
    add(f"- Machine: {run.get('machine', '?')}")
    part_runs = results.get("part_runs", {})
    if len(set(part_runs.values())) > 1:
        add("- Parts come from these runs (same mode, results kept in bench/results-<mode>.json):")
        for index in sorted(set(part_runs.values())):
            r = results["runs"][index]
            parts = ", ".join(p for p, i in part_runs.items() if i == index)
            add(f"  - {parts}: `{r.get('command')}`, {r.get('started')} to {r.get('finished', '?')}, "
                f"code `{r.get('code', '?')}` at commit `{r.get('commit', '?')}`, load average "
                f"{r.get('load_average', '?')} at the start")
    changes = run.get("src_changes", "")
    add(f"- Code: `{run.get('code', '?')}` at commit `{run.get('commit', '?')}`" + (
        f", with uncommitted changes in src/ at the start (others were editing it): "
        f"`{' '.join(line.strip() for line in changes.splitlines())}`" if changes else ", src/ clean"))
    add(f"- Load average (1/5/15 min) at the start: {run.get('load_average', '?')}, at the end: "
        f"{run.get('load_average_end', '?')}")
    add("")
    add("**The machine is shared and noisy**: other jobs (test suites, databases) ran on its 2 cores "
        "during the run, so absolute figures move by tens of percent between runs. Every figure is "
        "given as min / **median** / max over the repeats, and each ratio is computed from figures "
        "measured in the same run (for ingest and HTTP overhead, within the same repeat, alternating "
        "the methods).\n")
    add("## Targets\n")
    add("| target | measured (medians over repeats) | met? |")
    add("|---|---|---|")
    for target, measured, met in targets(results):
        add(f"| {target} | {measured} | {met} |")
    add("")
    _series(results, add)
    _scans(results, add)
    _overhead(results, add)
    _ingest(results, add)
    _memory(results, add)
    _profiles(results, add)
    _method(add)
    add("")
    add(END_MARKER)
    return "\n".join(out) + "\n"


def _per_count(ratios: dict[str, list[float]], target: float) -> str:
    """**yes** if every client count meets the target, else which do and which do not."""
    met = [k.removeprefix("HTTP, ") for k, v in ratios.items() if med(v) >= target]
    if len(met) == len(ratios):
        return "**yes**"
    if not met:
        return "**NO**"
    missed = [k.removeprefix("HTTP, ") for k, v in ratios.items() if med(v) < target]
    return f"**partly**: yes with {', '.join(met)}; NO with {', '.join(missed)}"


def _series(results: dict[str, Any], add: Any) -> None:
    sizes = results.get("series")
    if not sizes:
        return
    add("## 1. Series latency over HTTP\n")
    add("Sequential GET /sessions/data_series on one keep-alive connection (Python http.client) to "
        "`sessiontally serve` (1 worker, read cache off: `SESSIONTALLY_READ_CACHE=0`, so every "
        "request reads the rollup) on loopback; workspace zone America/New_York, 3 apps, one "
        "tracked segment (a quarter of the users); explicit `ending_at` (the data's last second). "
        "Each repeat: per case, a warm-up of a tenth of the requests, then the timed requests; p50 and "
        "p99 of that repeat. Figures in ms: min / **median** / max over the repeats. Every answer's "
        "counts were checked against the generated rows.\n")
    for s in sizes:
        if "skipped" in s:
            add(f"**{size_name(s['size'])} stored sessions: not run.** {s['skipped']}\n")
            continue
        load = s["load"]
        add(f"### {size_name(s['size'])} stored sessions\n")
        series_run = results.get("part_runs", {}).get("series")
        if s.get("run") is not None and s["run"] != series_run:
            r = results["runs"][s["run"]]
            add(f"Re-run alone: `{r.get('command')}`, {r.get('started')}, code at commit "
                f"`{r.get('commit', '?')}` (the other sizes come from the series run above).\n")
        add(f"Bulk load: {load['sqlite_rows_per_s']:,.0f} rows/s into SQLite "
            f"({load['sqlite_seconds']:.0f} s, "
            f"file {load['sqlite_bytes'] / 2**30:.2f} GiB, {load['rollup_rows']:,} rollup rows); DuckDB "
            f"{load['duckdb_seconds']:.0f} s ({load['duckdb_bytes'] / 2**30:.2f} GiB). "
            f"{s['requests']:,} timed "
            f"requests per case and repeat; load average {s['load_average_before']} before, "
            f"{s['load_average_after']} after.\n")
        add("| series | p50 (ms) | p99 (ms) |")
        add("|---|---|---|")
        for case in CASE_ORDER:
            if case in s["latency"]:
                lat = s["latency"][case]
                add(f"| {case} | {three(lat['p50'])} | {three(lat['p99'])} |")
        if "cached_100_days" in s:
            lat = s["cached_100_days"]
            add(f"| 100 days, as shipped: repeated, from the read cache | {three(lat['p50'])} | "
                f"{three(lat['p99'])} |")
        add("")


def _scans(results: dict[str, Any], add: Any) -> None:
    sizes = _loaded(results)
    if not sizes:
        return
    add("## 2. Against scanning\n")
    add("The 100-day series (America/New_York local days, all apps) by one GROUP BY over the raw "
        "sessions (bench/scans.py): in SQLite on the service's own file (no index on started_at: a "
        "full scan of the workspace's rows, then SQLite's sorter for the GROUP BY), and in DuckDB "
        f"({sizes[-1].get('duckdb_threads', '?')} threads, memory limit 4 GB) on a table of the same "
        "rows. Each scan's counts were checked equal to the HTTP answer. Times in ms, min / "
        "**median** / max of 3 runs (DuckDB after one warm-up run); "
        "ratio = median scan time / median HTTP p50 of the same series, same run.\n")
    add("| stored sessions | HTTP p50 | SQLite GROUP BY | ratio | DuckDB GROUP BY | ratio |")
    add("|---|---|---|---|---|---|")
    for s in sizes:
        p50 = med(s["latency"]["100 days"]["p50"])
        sq = [t * 1000 for t in s["sqlite_scan_s"]]
        dk = [t * 1000 for t in s.get("duckdb_scan_s", [])]
        add(f"| {size_name(s['size'])} | {p50:.2f} | {three(sq, '{:,.1f}')} | {med(sq) / p50:,.0f}x | "
            f"{three(dk, '{:,.1f}')} | {med(dk) / p50 if dk else 0:,.0f}x |")
    add("")


def _overhead(results: dict[str, Any], add: Any) -> None:
    over = results.get("overhead")
    if not over:
        return
    add("## 3. HTTP overhead\n")
    gen = ("`wrk -t1 -c{c} -d{d}s`".format(c=over["connections"], d=int(over["duration"]))
           if over["method"] == "wrk" else f"Python threads ({over['connections']} keep-alive connections)")
    add(f"Requests per second of the 100-day series (database of {size_name(over['size'])} sessions) "
        f"against bench/bare_app.py (a constant JSON of the same shape and size, same stack: uvicorn "
        f"with the same options and worker count, Starlette, orjson), both driven by {gen}, "
        f"alternately, 3 runs each. Load average {over['load_average_before']} before, "
        f"{over['load_average_after']} after.\n")
    add("The series server runs as shipped (a repeated query is answered from its read cache "
        "while the database is unchanged) and, alongside, with the cache off "
        "(`SESSIONTALLY_READ_CACHE=0`: the rollup is read on every request).\n")
    add("| workers | bare endpoint (req/s) | series (req/s) | series / bare | series, cache off (req/s) "
        "| cache off / bare |")
    add("|---|---|---|---|---|---|")
    for workers, r in over["by_workers"].items():
        cold = r.get("series_uncached") or []
        cold_ratio = [x * 100 for x in r.get("ratio_uncached") or []]
        add(f"| {workers} | {three(r['bare'], '{:,.0f}')} | {three(r['series'], '{:,.0f}')} | "
            f"{three([x * 100 for x in r['ratio']], '{:.1f}%')} | "
            f"{three(cold, '{:,.0f}') if cold else '-'} | "
            f"{three(cold_ratio, '{:.1f}%') if cold_ratio else '-'} |")
    add("")


def _ingest(results: dict[str, Any], add: Any) -> None:
    ing = results.get("ingest")
    if not ing:
        return
    add("## 4. Ingest\n")
    add(f"Every method starts from a copy of the same database holding {ing['preload']:,} sessions and "
        f"inserts the same {ing['sessions']:,} new sessions (so the table grows from "
        f"{ing['preload']:,} to {ing['preload'] + ing['sessions']:,} rows in each): random 24-hex "
        "session ids (inserts land all over the primary-key B-tree), `user<n>` external ids "
        "(100,000 users), 3 apps, `started_at` uniform over the 3 days before the run, no tracked "
        "segment. Methods alternate within each repeat; the ratio is to the bare executemany "
        "(1,000 rows per transaction) of the same repeat. The bare executemany runs on a connection "
        "opened by the store itself, so with its settings ("
        + ", ".join(f"{k}={v}" for k, v in ing.get("store_pragmas", {}).items())
        + "), `BEGIN IMMEDIATE` ... `COMMIT` around each `executemany`. HTTP: "
        "`sessiontally serve`, 1 worker unless the method names more, 1,000 sessions per POST. "
        "`import`: the command's wall time (start-up included). "
        + ("`import` commits every 50,000 sessions, each batch inserted in session-id order; the "
           "bare insert \"sorted by id\" does the same, so it is the engine's limit for the way "
           "`import` writes. " if _sorted_bare(ing["rates"]) else "")
        + ("Every figure includes copying what the WAL still holds back into the database at the "
           "end (`PRAGMA wal_checkpoint(TRUNCATE)` after the bare insert and after the last POST; "
           "`import` does it when it closes), so that no method is credited with work it "
           "postpones. " if ing.get("final_checkpoint") else "")
        + f"Load average {ing['load_average_before']} before, "
        f"{ing['load_average_after']} after.\n")
    post_ms = ing.get("post_ms", {})
    add("| method | sessions/s | ratio to bare (1,000/txn) | peak RSS (MiB) |"
        + (" POST latency p99; slowest (ms) |" if post_ms else ""))
    add("|---|---|---|---|" + ("---|" if post_ms else ""))
    bare = ing["rates"]["bare executemany, 1,000 per transaction"]
    for name, values in ing["rates"].items():
        ratios = [a / b * 100 for a, b in zip(values, bare, strict=False)]
        rss = ing["server_rss_mib"].get(name)
        conns = ing.get("server_connections", {}).get(name)
        if name == "sessiontally import":
            rss_text = f"{three(ing['import_rss_mib'], '{:.0f}')} (the command)"
        elif rss:
            suffix = f", {max(conns)} SQLite connections)" if conns else ")"
            rss_text = f"{three(rss, '{:.0f}')} (server{suffix}"
        else:
            rss_text = "-"
        latency = ""
        if post_ms:
            pairs = post_ms.get(name)
            latency = " - |"
            if pairs:
                p99, slowest = ([pair[i] for pair in pairs] for i in (0, 1))
                latency = f" {three(p99, '{:,.0f}')}; {three(slowest, '{:,.0f}')} |"
        add(f"| {name} | {three(values, '{:,.0f}')} | {three(ratios, '{:.0f}%')} | {rss_text} |{latency}")
    if ing.get("import_internal_rate"):
        add(f"\n`import`'s own count (excluding Python start-up and migrations): "
            f"{three(ing['import_internal_rate'], '{:,.0f}')} sessions/s.")
    add("")


def _memory(results: dict[str, Any], add: Any) -> None:
    mem = results.get("memory")
    if not mem:
        return
    add("## 5. Memory\n")
    add(f"Server: a fresh database, `sessiontally serve` (1 worker), {mem['clients']} clients posting "
        f"{mem['sessions']:,} new sessions (1,000 per request) streamed from an NDJSON file; the process "
        "tree sampled every 0.2 s from /proc (peak of the summed VmRSS; sum of each process's VmHWM). "
        "`import`: peak RSS (`ru_maxrss` from wait4) of the command on NDJSON files of "
        f"{mem['sessions']:,} and {mem['small']:,} lines (same data), each into a fresh database. "
        f"{len(mem['server'])} runs each; MiB.\n")
    add("| measurement | peak RSS (MiB) | sessions/s |")
    add("|---|---|---|")
    add(f"| server ingesting {size_name(mem['sessions'])} over HTTP: peak summed VmRSS | "
        f"{three([r['peak_rss_sum_mib'] for r in mem['server']], '{:.0f}')} | "
        f"{three([r['rate'] for r in mem['server']], '{:,.0f}')} |")
    add(f"| server ingesting {size_name(mem['sessions'])} over HTTP: summed VmHWM | "
        f"{three([r['hwm_sum_mib'] for r in mem['server']], '{:.0f}')} | |")
    for label, n in (("large", mem["sessions"]), ("small", mem["small"])):
        runs = mem["import"][label]
        add(f"| `import` of {size_name(n)} lines | {three([r['rss_mib'] for r in runs], '{:.0f}')} | "
            f"{three([r['rate'] for r in runs], '{:,.0f}')} |")
    add("")


def _frames_table(prof: dict[str, Any], add: Any, top: int = 12) -> None:
    unit = prof["unit"]
    states = prof["states"]
    order = ["run", "busy-sleep", "lock-wait", "gil-wait", "idle"]
    add(f"{prof['samples']:,} samples at {prof.get('rate_hz', 250)} Hz over {prof['work']:,.0f} {unit}s. "
        f"Thread time per {unit}: "
        + ", ".join(f"{k} {states[k]['us_per_unit']:,.1f} µs" for k in order if k in states)
        + " (run: on CPU or in a working system call; busy-sleep: SQLite's busy handler sleeping on "
        "another connection's lock; lock-wait: a request blocked on a Python lock; gil-wait: "
        "runnable, waiting for the GIL; idle: threads with nothing to do, not counted below).\n")
    add(f"| frame (inclusive) | share of run samples | run µs per {unit} |")
    add("|---|---|---|")
    for f in prof["frames"]:
        add(f"| `{f['frame']}` | {f['share']:.1%} | {f['us_per_unit']:,.1f} |")
    add("")
    add("<details><summary>top frames by self time (run samples)</summary>\n")
    add(f"| frame (self) | share | µs per {unit} |")
    add("|---|---|---|")
    for f in prof["top_self"][:top]:
        add(f"| `{f['frame']}` | {f['share']:.1%} | {f['us_per_unit']:,.1f} |")
    add("\n</details>\n")


def _decomposition(series: dict[str, Any], add: Any) -> None:
    d = series.get("decomposition", {})
    add(f"### Series request (100 days, {size_name(series.get('size', 0))} stored sessions): where the time "
        "goes, without a profiler\n")
    if "error" in d:
        add(f"In-process decomposition failed: {d['error']}\n")
        return
    http = series.get("unprofiled_sequential_p50_us")
    add("Medians over 2,000 calls each, in one process, with the read cache off (every call reads "
        "the rollup) unless said: the service's steps called directly, the whole Starlette app "
        "called through ASGI in-process (middleware, routing, the steps on the event loop, JSON; no "
        "socket, no HTTP parsing), the bare app the same way; and the sequential HTTP p50 on "
        "loopback (client included).\n")
    add("| step | µs |")
    add("|---|---|")
    rows = [("`Service.authenticate` (key hash, key and workspace lookups)", "authenticate_us"),
            ("`Service.count_request` (locked increment in the rate-limit counter file)", "count_request_us"),
            ("`Service.data_series` (parse, buckets, one SQL over the rollup; read cache off)",
             "data_series_us"),
            (f"of which `SqliteStore.count_by_quarters`, 100 days (reads {d.get('rollup_rows_day', '?'):,} "
             "rollup rows)" if isinstance(d.get("rollup_rows_day"), int) else
             "of which `SqliteStore.count_by_quarters`, 100 days", "count_by_quarters_day_us"),
            ("`SqliteStore.count_by_quarters`, 100 hours (for comparison)", "count_by_quarters_hour_us"),
            ("`SqliteStore.count_by_quarters`, 100 days, answered from the read cache (as shipped)",
             "count_by_quarters_cached_us"),
            ("`json_response` of the 100-point body", "json_response_us"),
            ("whole app through ASGI, in-process", "asgi_app_us"),
            ("bare app through ASGI, in-process", "bare_asgi_app_us"),
            ("bare app wrapped in `AccessLogMiddleware`, in-process", "bare_with_access_log_us"),
            ("one `run_in_threadpool` round trip (the thread hop)", "threadpool_hop_us")]
    for label, k in rows:
        if k in d:
            add(f"| {label} | {d[k]:,.0f} |")
    steps = sum(d.get(k, 0) for k in ("authenticate_us", "count_request_us", "data_series_us",
                                       "json_response_us"))
    if "asgi_app_us" in d:
        add(f"| app plumbing = whole app - the four steps above (middleware, access log, routing) "
            f"| {d['asgi_app_us'] - steps:,.0f} |")
    if http:
        add(f"| HTTP p50 over loopback, sequential keep-alive client | {http:,.0f} |")
        if "asgi_app_us" in d:
            add(f"| HTTP, sockets and client = HTTP p50 - whole app | {http - d['asgi_app_us']:,.0f} |")
    tail = series.get("tail")
    if tail and "client" in tail and "server" in tail:
        add(f"\nTail latency, {tail['requests']:,} sequential requests with the access log on: the client's "
            "time against the app's own `duration_ms` (from the ASGI app's entry to its last byte handed "
            "to uvicorn), in ms:\n")
        add("| measured by | p50 | p90 | p99 | p99.9 | max | requests over 10 ms |")
        add("|---|---|---|---|---|---|---|")
        for who in ("client", "server"):
            t = tail[who]
            add(f"| {who} | {t['p50']:.2f} | {t['p90']:.2f} | {t['p99']:.2f} | {t['p999']:.2f} | "
                f"{t['max']:.1f} | {t['over_10ms']} |")
    if "unprofiled_concurrent_rps" in series:
        add(f"\nUnprofiled under wrk (8 connections): {series['unprofiled_concurrent_rps']:,.0f} req/s.")
    add("")


def _profiles(results: dict[str, Any], add: Any) -> None:
    prof = results.get("profile")
    if not prof:
        return
    add("## Profiles of the misses\n")
    if "skipped" in prof:
        add(prof["skipped"] + "\n")
        return
    add("py-spy (`record --native`, Python and C frames, all threads; bench/profiles.py). "
        "µs per unit = samples / sampling rate / work done while sampling. Inclusive: a frame counts "
        "with everything it calls. py-spy pauses the process at each sample, which slows it (the "
        "unprofiled figures are given for comparison): read the shares, and the µs as upper bounds.\n")
    if "series" in prof:
        _decomposition(prof["series"], add)
        for mode, title in (("sequential", "one sequential keep-alive client"),
                            ("concurrent", "wrk, 8 connections")):
            s = prof["series"][mode]
            add(f"### Series endpoint (100 days), {title}: {s['requests_per_s']:,.0f} req/s while sampled\n")
            _frames_table(s, add)
    sw = prof.get("series_whatif")
    if sw:
        add(f"### Series req/s: what each part of a request weighs (wrk, 8 connections, "
            f"{size_name(sw['size'])} sessions)\n")
        add("The server as shipped (its JSON access log on); as shipped with the access log off "
            "(`SESSIONTALLY_LOG_LEVEL=WARNING`); as shipped with the rate-limit count replaced by an "
            "in-memory decision, and also with the read cache's validity check skipped (the WAL-index "
            "header read and `PRAGMA data_version`: the cache then never expires, valid only in this "
            "read-only benchmark); with the read cache off "
            "(`SESSIONTALLY_READ_CACHE=0`); and with the cache off and `count_by_quarters` replaced "
            "by zeros. The patches are `sitecustomize` modules on the server's PYTHONPATH (the code "
            "under test is not edited). req/s, min / **median** / max of the runs; the bare app "
            "alongside.\n")
        labels = list(next(iter(sw["by_workers"].values())))
        add("| workers | " + " | ".join(labels) + " |")
        add("|---" * (len(labels) + 1) + "|")
        for workers, rows in sw["by_workers"].items():
            add(f"| {workers} | " + " | ".join(three(rows[k], "{:,.0f}") for k in labels) + " |")
        add("")
    ing = prof.get("ingest")
    if ing:
        add(f"### Ingest over HTTP (4 clients, table from {ing['preload']:,} to "
            f"{ing['preload'] + ing['sessions']:,} rows, {ing['http']['rate']:,.0f} sessions/s while "
            "sampled)\n")
        _frames_table(ing["http"], add)
        add(f"### `sessiontally import` (same sessions, same table size; "
            f"{ing['import']['rate_under_profiler']:,.0f} sessions/s under the profiler)\n")
        _frames_table(ing["import"], add)
        add(f"Bytes written to storage per session (`write_bytes`, /proc/<pid>/io; page size "
            f"{ing['page_size']}): bare executemany (1,000/txn) "
            f"{ing['bare']['write_bytes_per_session']:,.0f} B at {ing['bare']['rate']:,.0f} sessions/s; "
            f"server over HTTP {ing['http']['write_bytes_per_session']:,.0f} B.\n")


def _method(add: Any) -> None:
    add("## How the data is made\n")
    add("- **Series databases** (bench/common.py `Dataset`, `bulk_load`): one workspace, 3 apps, one "
        "tracked segment; `size` sessions with `started_at` uniform over the 100 days before the run, "
        "24-hex session ids, 10^6 users, 3 apps. The **fast bulk path**: rows generated with numpy in "
        "chunks of 10^6, each chunk's ids drawn in its own slice of the id space and sorted, so the "
        "ids are uniformly random yet inserted in primary-key order (B-tree appends); one "
        "`executemany` transaction per chunk with `journal_mode=OFF`, `synchronous=OFF` and a 1 GiB "
        "page cache; the rollup (`session_counts`: per app, all apps (0), all users (0) and the "
        "segment's key, per UTC quarter-hour) is the GROUP BY of the same arrays done with numpy "
        "(`np.bincount`) and inserted at the end, then the file is switched to WAL. (SQLite's own "
        "GROUP BY over 10^7 raw rows took 32 s here, mostly its sorter; the numpy one is "
        "instantaneous, and every HTTP answer is checked against it and against both scans.) The "
        "segment's members are the users whose number is a multiple of 4; the `users` table is not "
        "filled, since reads never consult it.")
    add("- **DuckDB**: the same chunks, appended in the same pass with `INSERT ... SELECT` from the "
        "numpy arrays (DuckDB formats the ids), into a file-backed table of the same columns.")
    add("- **Ingest data** (bench/sessions_data.py): random 24-hex session ids, `user<n>` of 100,000 "
        "users, uniform apps, `started_at` uniform over the 3 days before the run, written with "
        "millisecond precision and `Z`.")
    add("- Generated files live under /tmp/sessiontally-bench and are deleted when each part ends.")
