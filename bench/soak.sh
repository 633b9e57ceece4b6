#!/usr/bin/env bash
# A long run against one release scepd at concurrency 2, sampling
# the server's resident memory every 10 s: memory must stay flat.
#   bench/soak.sh         # DURATION=200 seconds of timed load: about ten minutes of wall
#                         # time, since preparing each batch (untimed) costs as much again
DURATION=${DURATION:-200}
source "$(dirname "$0")/lib.sh"
export RUST_LOG=error
start_single d
( while kill -0 $pid 2>/dev/null; do awk -v t="$(date +%s)" '/VmRSS/ {print t, $2}' /proc/$pid/status; sleep 10; done ) > "$work/rss.txt" &
"$SCEP" bench "http://127.0.0.1:$port/scep" --duration "$DURATION" --concurrency 2 --challenge "$PW" --json > "$work/bench.json"
python3 - "$work/rss.txt" "$work/bench.json" <<'PY'
import json, sys
rss = [int(l.split()[1]) for l in open(sys.argv[1]) if l.strip()]
r = json.load(open(sys.argv[2]))
n = len(rss)
q = max(1, n // 4)
print("enrollments: %d, %.1f/s, p50 %.1f ms, p99 %.1f ms, failures %d, duplicate serials %s" % (r["count"], r["enrollments_per_sec"], r["p50_ms"], r["p99_ms"], r["failures"], r["duplicate_serials"]))
print("RSS samples: %d; first minute %.1f MB, last quarter mean %.1f MB, peak %.1f MB" % (n, max(rss[:6]) / 1024, sum(rss[-q:]) / q / 1024, max(rss) / 1024))
PY
