#!/usr/bin/env bash
# Enrollments/s of one scepd on SQLite, one on PostgreSQL, and two on one PostgreSQL
# (two `scep bench` runs at once, one per instance, rates added), in one run.
#   bench/scale-out.sh            # COUNT=2000 CONCURRENCY=2 per bench process
COUNT=${COUNT:-2000}
CONCURRENCY=${CONCURRENCY:-2}
source "$(dirname "$0")/lib.sh"
chmod 755 "$work"   # the postgres user must reach its cluster directory
on_exit='scripts/postgres-test-cluster --stop "$work/pg"'
export RUST_LOG=warn

pg=$(scripts/postgres-test-cluster "$work/pg" "$(free_port)")
start() { # DIR URL -> port
    local port; port=$(free_port)
    SCEPD_DATABASE_URL=$2 "$SCEPD" serve --data-dir "$1" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do "$SCEP" caps "http://127.0.0.1:$port/scep" >/dev/null 2>&1 && break; sleep 0.1; done
    echo "$port"
}
rate() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['enrollments_per_sec'],1))" "$1"; }

"$SCEPD" init --data-dir "$work/a" --challenge-mode none >/dev/null 2>&1
sqlite_port=$(start "$work/a" "sqlite://$work/a/scepd.db")
"$SCEP" bench "http://127.0.0.1:$sqlite_port/scep" --count "$COUNT" --concurrency "$CONCURRENCY" --json > "$work/sqlite.json"
echo "one instance, SQLite:            $(rate "$work/sqlite.json") enrollments/s"

SCEPD_DATABASE_URL=$pg "$SCEPD" migrate --data-dir "$work/a" >/dev/null 2>&1
p1=$(start "$work/a" "$pg")
"$SCEP" bench "http://127.0.0.1:$p1/scep" --count "$COUNT" --concurrency "$CONCURRENCY" --json > "$work/pg1.json"
echo "one instance, PostgreSQL:        $(rate "$work/pg1.json") enrollments/s"

cp -r "$work/a" "$work/b"
p2=$(start "$work/b" "$pg")
"$SCEP" bench "http://127.0.0.1:$p1/scep" --count "$COUNT" --concurrency "$CONCURRENCY" --json > "$work/pg2a.json" &
"$SCEP" bench "http://127.0.0.1:$p2/scep" --count "$COUNT" --concurrency "$CONCURRENCY" --json > "$work/pg2b.json"
wait %1 2>/dev/null || true
total=$(python3 -c "print(round($(rate "$work/pg2a.json") + $(rate "$work/pg2b.json"),1))")
echo "two instances, one PostgreSQL:   $total enrollments/s ($(rate "$work/pg2a.json") + $(rate "$work/pg2b.json"))"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); $COUNT enrollments per bench, concurrency $CONCURRENCY each"
