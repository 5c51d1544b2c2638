#!/usr/bin/env bash
# Side-by-side benchmark of Homefront's dispatch engine (see BENCHMARKS.md).
#
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
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${HOMEFRONT_SHARED:-$ROOT/../shared}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${BENCH_VENV:-$ROOT/target/bench-venv}"
WORK="${BENCH_WORK:-$ROOT/target/bench-instances}"
RUNS="${BENCH_RUNS:-3}"

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

echo "== Building (release)"
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
