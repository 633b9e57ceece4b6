#!/usr/bin/env bash
# Issuance speed with a large store against an empty one: two scepd servers from fresh
# data directories, the second with ROWS certificate rows inserted first (realistic
# sizes, random serials and transaction IDs), then `scep bench` against each in turn,
# ROUNDS times, alternating. Prints each round, the medians, and the median of the
# per-round ratios (each ratio compares two runs made seconds apart).
#
#   bench/large-store.sh                         # ROWS=1000000 ROUNDS=5 COUNT=3000
#   ROWS=100000 ROUNDS=2 bench/large-store.sh
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-5}
COUNT=${COUNT:-3000}
CONCURRENCY=${CONCURRENCY:-2}
source "$(dirname "$0")/lib.sh"

declare -A url pw
for s in empty large; do
    "$SCEPD" init --data-dir "$work/$s" --challenge-mode single >/dev/null 2>&1
    pw[$s]=$("$SCEPD" challenge new --data-dir "$work/$s")
done

db=$(find "$work/large" -name '*.db' | head -1)
echo "inserting $ROWS certificate rows into $db ..." >&2
python3 - "$db" "$ROWS" <<'EOF'
import os, sqlite3, sys, time
db, rows = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
now = int(time.time())
def gen():
    for i in range(rows):
        yield (os.urandom(16).hex().upper(), "0" * 16, f"CN=bulk-{i}", '["DNS:bulk-%d.example"]' % i,
               now - 60, now + 365 * 86400, now - 60, os.urandom(16).hex(), "PKCSReq",
               os.urandom(32), os.urandom(32), "192.0.2.1", "default", os.urandom(900))
con.executemany(
    "INSERT INTO certificates (serial, ca_id, subject, sans, not_before, not_after, issued_at, transaction_id, "
    "message_type, signer_sha256, csr_sha256, requester, template, der) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", gen())
con.commit()
con.close()
EOF
echo "store: $(du -sh "$work/large" | cut -f1) in $work/large" >&2

for s in empty large; do
    port=$(free_port)
    RUST_LOG=warn "$SCEPD" serve --data-dir "$work/$s" --listen "127.0.0.1:$port" >/dev/null 2>"$work/$s.log" &
    pids+=($!)
    url[$s]="http://127.0.0.1:$port/scep"
done
sleep 1

printf '%-6s %5s %9s %7s %7s %8s\n' store round enroll/s p50_ms p99_ms failures
for r in $(seq 1 "$ROUNDS"); do
    for s in empty large; do
        "$SCEP" bench "${url[$s]}" --count "$COUNT" --concurrency "$CONCURRENCY" --challenge "${pw[$s]}" --json \
            > "$work/$s-$r.json" 2>/dev/null
        python3 -c "
import json; r=json.load(open('$work/$s-$r.json'))
print('%-6s %5s %9.1f %7.1f %7.1f %8d' % ('$s', $r, r['enrollments_per_sec'], r['p50_ms'], r['p99_ms'], r['failures']))"
    done
done
python3 - "$work" "$ROUNDS" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rate = {s: [json.load(open(f"{work}/{s}-{r}.json"))["enrollments_per_sec"] for r in range(1, rounds + 1)]
        for s in ("empty", "large")}
med = {s: statistics.median(v) for s, v in rate.items()}
ratio = statistics.median(l / e for e, l in zip(rate["empty"], rate["large"]))
print(f"median: empty {med['empty']:.1f}/s, large {med['large']:.1f}/s; median of per-round large/empty {ratio:.3f}")
EOF
