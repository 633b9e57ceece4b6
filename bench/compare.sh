#!/usr/bin/env bash
# scepd against micromdm's scepserver (Debian package `scep`) under the same `scep bench`
# load, in one run on this machine, then `openssl speed rsa2048` for the RSA ceiling.
# Prints one table; results and the machine go in docs/performance.md.
#
#   bench/compare.sh                      # COUNT=2000 CONCURRENCY="1 2 4 8"
#   COUNT=500 CONCURRENCY="2" bench/compare.sh
COUNT=${COUNT:-2000}
CONCURRENCY=${CONCURRENCY:-"1 2 4 8"}
command -v scepserver >/dev/null || { echo "scepserver is missing: apt-get install -y scep" >&2; exit 1; }
source "$(dirname "$0")/lib.sh"

# scepd: built-in CA (RSA-2048), SQLite, single-password mode: a challenge is checked
# on every request, like scepserver's fixed -challenge.
"$SCEPD" init --data-dir "$work/scepd" --challenge-mode single >/dev/null 2>&1
PW=$("$SCEPD" challenge new --data-dir "$work/scepd")
p1=$(free_port)
RUST_LOG=warn "$SCEPD" serve --data-dir "$work/scepd" --listen "127.0.0.1:$p1" >/dev/null 2>"$work/scepd.log" &
pids+=($!); scepd_pid=$!

# micromdm scepserver with a 2048-bit CA (its default is 4096), loopback load only.
mkdir -p "$work/micromdm"
(cd "$work/micromdm" && scepserver ca -init -depot depot -keySize 2048 >/dev/null 2>&1)
p2=$(free_port)
(cd "$work/micromdm" && exec scepserver -depot depot -port "$p2" -challenge "$PW" -allowrenew 0 >/dev/null 2>&1) &
pids+=($!); mdm_pid=$!
sleep 1

rss() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$1/status" 2>/dev/null || echo "?"; }
rsa=$(openssl speed -seconds 5 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}')
ceiling=$(python3 -c "print(round($rsa/3))")

printf '%-9s %3s %9s %7s %7s %8s %9s %7s %10s %11s\n' server conc enroll/s p50_ms p99_ms failures dup_serial rss_mb x_micromdm x_ceiling
for c in $CONCURRENCY; do
    declare -A rate
    for s in micromdm scepd; do
        if [ "$s" = scepd ]; then url="http://127.0.0.1:$p1/scep"; pid=$scepd_pid; else url="http://127.0.0.1:$p2/scep"; pid=$mdm_pid; fi
        "$SCEP" bench "$url" --count "$COUNT" --concurrency "$c" --challenge "$PW" --json > "$work/$s-$c.json" || true
        read -r eps p50 p99 fail dup < <(python3 -c "
import json,sys; r=json.load(open('$work/$s-$c.json'))
print(round(r['enrollments_per_sec'],1), round(r['p50_ms'],1), round(r['p99_ms'],1), r['failures'], r['duplicate_serials'])")
        rate[$s]=$eps
        ratio=$(python3 -c "print(round($eps/${rate[micromdm]},2))")
        of_ceiling=$(python3 -c "print(round($eps/$ceiling,2))")
        printf '%-9s %3s %9s %7s %7s %8s %9s %7s %10s %11s\n' "$s" "$c" "$eps" "$p50" "$p99" "$fail" "$dup" "$(rss $pid)" "$ratio" "$of_ceiling"
    done
done
echo
echo "openssl speed rsa2048: $rsa signs/s; ceiling = $ceiling enrollments/s (3 private-key operations each)"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); count $COUNT per run"
