#!/usr/bin/env bash
# Good enrollments alone, then under a flood of bad requests (random bytes posted as
# PKIOperation by 4 threads), against one release scepd: how much the flood slows them.
#   bench/flood.sh        # SECONDS_EACH=20
SECONDS_EACH=${SECONDS_EACH:-20}
source "$(dirname "$0")/lib.sh"
export RUST_LOG=error
start_single d
run() { "$SCEP" bench "http://127.0.0.1:$port/scep" --duration "$SECONDS_EACH" --concurrency 2 --challenge "$PW" --json; }
report() { python3 -c "import json,sys; r=json.load(sys.stdin); print('%s: %.1f enrollments/s, p50 %.1f ms, p99 %.1f ms, failures %d' % (sys.argv[1], r['enrollments_per_sec'], r['p50_ms'], r['p99_ms'], r['failures']))" "$1"; }
run | report "alone"
python3 - "$port" "$SECONDS_EACH" > "$work/flood.txt" <<'PY' &
import http.client, os, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2]) + 2
sent = [0]
def worker():
    c = http.client.HTTPConnection("127.0.0.1", port)
    end = time.time() + secs
    while time.time() < end:
        try:
            c.request("POST", "/scep?operation=PKIOperation", os.urandom(2000), {"Content-Type": "application/x-pki-message"})
            c.getresponse().read()
            sent[0] += 1
        except Exception:
            c = http.client.HTTPConnection("127.0.0.1", port)
ts = [threading.Thread(target=worker) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sent[0])
PY
flood=$!
pids+=("$flood")
sleep 1
run | report "under flood"
wait $flood
echo "bad requests answered during the flood: $(cat "$work/flood.txt")"
