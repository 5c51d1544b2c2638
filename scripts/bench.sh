#!/usr/bin/env bash
# Homefront's benchmarks, each figure beside a reference measured in the
# same run (see BENCHMARKS.md):
#
#   scripts/bench.sh                  intake, then the dispatch engine
#   scripts/bench.sh --intake-only    order intake only (about 5 minutes)
#   scripts/bench.sh --dispatch-only  the dispatch engine only
#
# Intake (writes its table into BENCHMARKS.md with machine, date and command):
#   references: raw fsyncs/s, a raw SQLite insert loop at the server's
#   durability (1 and 100 rows per commit), pgbench single-row inserts at
#   32 clients on the same PostgreSQL, an axum hello-world (HTTP floor);
#   then `homefront bench load` against `homefront serve --demo` on SQLite
#   (saturation, 1,000/s, and 500/s with a SIGKILL and restart mid-run)
#   and on PostgreSQL (saturation, 1,000/s).
#
# Dispatch engine:
# 1. Batch solve: instances from shared/bench/make_instance.py (1,000 and
#    5,000 requests x 100,000 volunteers, k = 16, uniform and clustered),
#    each solved by SciPy (shared/bench/assign_reference.py) and by Homefront
#    in the same run; prints both times, both totals and the speed ratio.
# 2. Candidate search latency (p50/p99 per decision).
# 3. auto vs optimum total distance at several supply ratios.
#
# Environment:
#   HOMEFRONT_SHARED     shared dir (default: ../shared next to the repo)
#   HOMEFRONT_SOLVE_CMD  Homefront solver command taking --instance FILE
#                        (default: target/release/homefront dispatch solve,
#                        built here; the example `solve` of homefront-dispatch
#                        prints the same JSON line)
#   BENCH_VENV, BENCH_WORK  venv and instance dirs (target/bench-venv, target/bench-instances)
#   BENCH_RUNS           runs per solver and instance, median reported (3)
#   CARGO_TARGET_DIR     honoured for the Rust builds
#   BENCH_PG_URL         PostgreSQL for the intake figures
#                        (default postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_SECONDS        seconds of each intake run (15)
#   BENCH_CONNECTIONS    HTTP connections of the load tool (32)
set -euo pipefail

RUN_INTAKE=1
RUN_DISPATCH=1
for arg in "$@"; do
    case "$arg" in
        --intake-only) RUN_DISPATCH=0 ;;
        --dispatch-only) RUN_INTAKE=0 ;;
        *) echo "bench.sh: unknown option $arg (use --intake-only or --dispatch-only)" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${HOMEFRONT_SHARED:-$ROOT/../shared}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${BENCH_VENV:-$ROOT/target/bench-venv}"
WORK="${BENCH_WORK:-$ROOT/target/bench-instances}"
RUNS="${BENCH_RUNS:-3}"

echo "== Building (release)"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p homefront

# ---------------------------------------------------------------------------
# Intake: Homefront's order intake on SQLite and PostgreSQL, each figure
# beside the limit it is measured against in the same run.
# ---------------------------------------------------------------------------
intake_bench() {
    local bin="$TARGET/release/homefront"
    local work="$WORK/intake"
    local pg="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    local secs="${BENCH_SECONDS:-15}"
    local conns="${BENCH_CONNECTIONS:-32}"
    local port=18480
    rm -rf "$work" && mkdir -p "$work"
    local res="$work/results.txt"
    : >"$res"
    SERVER_PID=""
    HELLO_PID=""
    trap 'stop_server; [[ -n "$HELLO_PID" ]] && kill "$HELLO_PID" 2>/dev/null; true' EXIT

    echo "== Intake references (same run)"
    # Raw fsyncs/s: append 4 KiB and fsync, as a WAL commit does.
    python3 - "$work" >>"$res" <<'PYEOF'
import os, sys, time, sqlite3
d = sys.argv[1]
path = os.path.join(d, "fsync.bin")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = b"\0" * 4096
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < 3.0:
    os.write(fd, buf); os.fsync(fd); n += 1
os.close(fd)
print(f"fsync_per_s {n / (time.perf_counter() - t0):.1f}")
# Raw SQLite insert loop at the server's durability: WAL, synchronous=FULL.
for per_commit in (1, 100):
    p = os.path.join(d, f"raw{per_commit}.db")
    for suffix in ("", "-wal", "-shm"):
        try: os.remove(p + suffix)
        except FileNotFoundError: pass
    c = sqlite3.connect(p, isolation_level=None)
    c.execute("pragma journal_mode=wal"); c.execute("pragma synchronous=full")
    c.execute("create table t (id integer primary key, v text not null, at integer not null)")
    rows, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 3.0:
        c.execute("begin immediate")
        for _ in range(per_commit):
            c.execute("insert into t (v, at) values (?, ?)", ("x" * 200, rows)); rows += 1
        c.execute("commit")
    print(f"sqlite_rows_per_s_{per_commit} {rows / (time.perf_counter() - t0):.1f}")
    c.close()
PYEOF

    # pgbench: single-row inserts, 32 clients, on the server Homefront uses.
    local pg_ok=0
    if command -v pgbench >/dev/null && psql "$pg" -qAtc 'select 1' >/dev/null 2>&1; then
        pg_ok=1
        local base="${pg%/*}"
        psql "$pg" -qc "drop database if exists hf_bench_pgbench" -c "create database hf_bench_pgbench" >/dev/null
        psql "$base/hf_bench_pgbench" -qc "create table t (id bigserial primary key, v text not null, at bigint not null)" >/dev/null
        printf 'insert into t (v, at) values (repeat($$x$$, 200), 1);\n' >"$work/insert.sql"
        local tps
        tps=$(pgbench -n -c 32 -j 2 -T 10 -f "$work/insert.sql" "$base/hf_bench_pgbench" 2>/dev/null \
            | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -1)
        echo "pgbench_tps ${tps:-0}" >>"$res"
        psql "$pg" -qc "drop database if exists hf_bench_pgbench" >/dev/null
    else
        echo "   (no PostgreSQL at $pg: skipping the PostgreSQL figures)"
    fi

    # The HTTP floor: an axum hello-world driven by the same load tool.
    "$bin" bench hello --bind "127.0.0.1:$((port + 1))" 2>/dev/null &
    HELLO_PID=$!
    wait_http "http://127.0.0.1:$((port + 1))/"
    echo "floor $("$bin" bench floor --target "http://127.0.0.1:$((port + 1))" --rate max \
        --duration 8 --connections "$conns" --json)" >>"$res"
    kill "$HELLO_PID" 2>/dev/null; wait "$HELLO_PID" 2>/dev/null || true
    HELLO_PID=""

    # Each run on a fresh database with the demo scenario: a backlog left by
    # an earlier run would keep the dispatcher busy during the next.
    echo "== Homefront on SQLite (synchronous = FULL)"
    start_server "sqlite://$work/max.db" --demo
    echo "sqlite_max $(load submit max "$secs")" >>"$res"
    stop_server
    start_server "sqlite://$work/rate.db" --demo
    echo "sqlite_1000 $(load submit 1000 "$secs")" >>"$res"
    stop_server
    # SIGKILL mid-run, then a restart on the same file; the load tool keeps
    # retrying unanswered submits with their keys.
    start_server "sqlite://$work/kill.db" --demo
    load submit 500 "$secs" >"$work/kill.json" &
    local loader=$!
    # Kill once the measured orders are arriving (after the tool signed in).
    python3 - "$work/kill.db" <<'PYEOF'
import sqlite3, sys, time
deadline = time.time() + 120
while time.time() < deadline:
    try:
        c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
        n = c.execute("select count(*) from service_order where public_note like 'load test %'").fetchone()[0]
        c.close()
        if n >= 1000:
            break
    except sqlite3.Error:
        pass
    time.sleep(0.2)
PYEOF
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    sleep 1
    start_server "sqlite://$work/kill.db"
    wait "$loader" || true
    echo "sqlite_kill $(cat "$work/kill.json")" >>"$res"
    stop_server

    if [[ $pg_ok == 1 ]]; then
        echo "== Homefront on PostgreSQL"
        local base="${pg%/*}"
        for run in max 1000; do
            psql "$pg" -qc "drop database if exists hf_bench_intake" -c "create database hf_bench_intake" >/dev/null
            start_server "$base/hf_bench_intake" --demo
            echo "pg_$run $(load submit "$run" "$secs")" >>"$res"
            stop_server
        done
        psql "$pg" -qc "drop database if exists hf_bench_intake" >/dev/null
    fi
    trap - EXIT
    intake_table "$res" | tee "$work/table.md"
}

wait_http() {
    for _ in $(seq 1 240); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.5
    done
    echo "bench.sh: $1 did not answer" >&2
    return 1
}

start_server() {
    local url="$1"
    shift
    HOMEFRONT_LOG=warn "$TARGET/release/homefront" serve --database-url "$url" \
        --bind "127.0.0.1:$port" "$@" >"$work/serve.log" 2>&1 &
    SERVER_PID=$!
    wait_http "http://127.0.0.1:$port/healthz"
}

stop_server() {
    if [[ -n "${SERVER_PID:-}" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

load() {
    "$TARGET/release/homefront" bench load --target "http://127.0.0.1:$port" \
        --scenario "$1" --rate "$2" --duration "$3" --connections "$conns" --json || true
}

intake_table() {
    python3 - "$1" <<'PYEOF'
import json, sys
v, runs = {}, {}
for line in open(sys.argv[1]):
    k, _, rest = line.strip().partition(" ")
    try:
        parsed = json.loads(rest)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        runs[k] = parsed
    else:
        v[k] = float(parsed or 0)
fs = v.get("fsync_per_s", 0)
s1, s100 = v.get("sqlite_rows_per_s_1", 0), v.get("sqlite_rows_per_s_100", 0)
pgb = v.get("pgbench_tps", 0)
floor = runs.get("floor", {}).get("achieved_per_s", 0)
def ratio(x, ref):
    return f"{x / ref:.2f}×" if ref else "n/a"
def row(name, r, limits, check):
    if not r:
        return
    errs = ", ".join(f"{k}: {n}" for k, n in r["errors"].items()) or "none"
    print(f"| {name} | {r['achieved_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['acknowledged']} | {errs} | {str(r['verified_exactly_once']).lower()} | {limits} | {check} |")
print("References measured in this run:")
print()
print(f"- raw fsyncs/s (4 KiB append + fsync): {fs:.0f}")
print(f"- raw SQLite insert loop, WAL, synchronous = FULL: {s1:.0f} rows/s at 1 row per commit, {s100:.0f} rows/s at 100 rows per commit")
print(f"- pgbench single-row inserts, 32 clients: {pgb:.0f} tps" if pgb else "- pgbench: not run (no PostgreSQL)")
print(f"- HTTP floor, axum hello-world through the same load tool: {floor:.0f} requests/s (p50 {runs.get('floor', {}).get('p50_ms', 0):.1f} ms, p99 {runs.get('floor', {}).get('p99_ms', 0):.1f} ms)")
print()
print("| run | orders/s | p50 ms | p99 ms | max ms | acknowledged | errors | exactly once | against the same run's limits | target |")
print("|---|---|---|---|---|---|---|---|---|---|")
r = runs.get("sqlite_max")
if r:
    x = r["achieved_per_s"]
    row("SQLite, saturation (`--rate max`)", r,
        f"{ratio(x, fs)} raw fsync; {ratio(x, s1)} SQLite loop 1/commit; {ratio(x, s100)} SQLite loop 100/commit; {ratio(x, floor)} HTTP floor",
        f"≥ 15× fsync: {'met' if fs and x >= 15 * fs else 'missed (' + ratio(x, 15 * fs) + ' of it)'}")
r = runs.get("sqlite_1000")
if r:
    row("SQLite, 1,000/s", r, f"{ratio(r['achieved_per_s'], 1000)} of the offered rate",
        f"p99 ≤ 25 ms: {'met' if r['p99_ms'] <= 25 else 'missed'}; max ≤ 100 ms: {'met' if r['max_ms'] <= 100 else 'missed'}")
r = runs.get("sqlite_kill")
if r:
    row("SQLite, 500/s, SIGKILL and restart mid-run", r, "retries with the same keys", f"exactly once: {'met' if r['verified_exactly_once'] else 'MISSED'}")
r = runs.get("pg_max")
if r:
    x = r["achieved_per_s"]
    row("PostgreSQL, saturation (`--rate max`)", r, f"{ratio(x, pgb)} pgbench; {ratio(x, floor)} HTTP floor",
        f"≥ 0.5× pgbench: {'met' if pgb and x >= 0.5 * pgb else 'missed'}")
r = runs.get("pg_1000")
if r:
    row("PostgreSQL, 1,000/s", r, f"{ratio(r['achieved_per_s'], 1000)} of the offered rate",
        f"p99 ≤ 25 ms: {'met' if r['p99_ms'] <= 25 else 'missed'}")
PYEOF
}

if [[ $RUN_INTAKE == 1 ]]; then
    started=$(date +%s)
    intake_bench
    table="$WORK/intake/table.md"
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    {
        echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) vCPU ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB,"
        echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg), release build, by"
        echo "\`scripts/bench.sh --intake-only\` ($(( $(date +%s) - started )) s; load tool and server on the same machine)."
        echo
        cat "$table"
    } >"$WORK/intake/section.md"
    python3 - "$ROOT/BENCHMARKS.md" "$WORK/intake/section.md" <<'PYEOF'
import sys
path, section = sys.argv[1], open(sys.argv[2]).read()
text = open(path).read()
begin, end = "<!-- intake-figures:begin -->", "<!-- intake-figures:end -->"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = head + begin + "\n" + section + end + tail
open(path, "w").write(text)
PYEOF
    echo "== wrote the intake figures into BENCHMARKS.md"
fi
[[ $RUN_DISPATCH == 1 ]] || exit 0

[[ -f "$SHARED/bench/make_instance.py" ]] || {
    echo "bench.sh: $SHARED/bench not found; set HOMEFRONT_SHARED" >&2
    exit 1
}

echo "== Python reference environment ($VENV)"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
if ! cmp -s "$SHARED/bench/requirements.txt" "$VENV/.requirements.txt"; then
    "$VENV/bin/pip" install --quiet -r "$SHARED/bench/requirements.txt"
    cp "$SHARED/bench/requirements.txt" "$VENV/.requirements.txt"
fi
PY="$VENV/bin/python"

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" \
    -p homefront-dispatch --examples
if [[ -n "${HOMEFRONT_SOLVE_CMD:-}" ]]; then
    read -r -a SOLVE <<<"$HOMEFRONT_SOLVE_CMD"
else
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p homefront
    SOLVE=("$TARGET/release/homefront" dispatch solve)
fi

echo "== Instances ($WORK)"
mkdir -p "$WORK"
INSTANCES=()
for requests in 1000 5000; do
    for layout in uniform clustered; do
        file="$WORK/$layout-$requests.csv"
        if [[ ! -s "$file" ]]; then
            flag=()
            [[ $layout == clustered ]] && flag=(--clustered)
            "$PY" "$SHARED/bench/make_instance.py" "$file" --requests "$requests" \
                --volunteers 100000 --k 16 "${flag[@]}"
        fi
        INSTANCES+=("$file")
    done
done

echo "== Batch solve: SciPy vs Homefront, $RUNS runs each, median solve_ms"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
for file in "${INSTANCES[@]}"; do
    for ((run = 1; run <= RUNS; run++)); do
        scipy_line="$("$PY" "$SHARED/bench/assign_reference.py" "$file")"
        homefront_line="$("${SOLVE[@]}" --instance "$file")"
        printf '{"instance": "%s", "scipy": %s, "homefront": %s}\n' \
            "$(basename "$file" .csv)" "$scipy_line" "$homefront_line" >>"$RESULTS"
    done
done
"$PY" - "$RESULTS" <<'PYEOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["instance"], []).append(r)
print("| instance | matched | SciPy total | Homefront total | SciPy ms | Homefront ms | ratio (SciPy/Homefront) | totals |")
print("|---|---|---|---|---|---|---|---|")
bad = False
for name, runs in rows.items():
    s_ms = statistics.median(r["scipy"]["solve_ms"] for r in runs)
    h_ms = statistics.median(r["homefront"]["solve_ms"] for r in runs)
    s, h = runs[0]["scipy"], runs[0]["homefront"]
    rel = abs(s["total_cost"] - h["total_cost"]) / max(abs(s["total_cost"]), 1e-12)
    same = rel <= 1e-6 and s["matched"] == h["matched"]
    bad |= not same
    matched = f'{h["matched"]}' if s["matched"] == h["matched"] else f'{s["matched"]} vs {h["matched"]}'
    print(f'| {name} | {matched} | {s["total_cost"]:.6f} | {h["total_cost"]:.6f} | {s_ms:.2f} | {h_ms:.2f} | {s_ms / h_ms:.1f}x | {"equal" if same else f"DIFFER (rel {rel:.2e})"} |')
if bad:
    print("WARNING: some totals differ by more than 1e-6 relative (or matched counts differ)")
PYEOF

echo
echo "== Candidate search latency"
"$TARGET/release/examples/bench_search"

echo
echo "== auto vs optimum"
"$TARGET/release/examples/auto_vs_optimum" 1000 8 1 1.5 2 5 10
