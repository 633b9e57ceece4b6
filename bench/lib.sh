# Shared set-up of the bench scripts (sourced): release binaries, a work directory, the
# processes to stop on exit, free ports.
#   SCEPD, SCEP   the release binaries
#   work          a temporary directory, removed on exit
#   pids          processes to kill on exit (append with pids+=($!))
#   on_exit       more to run on exit (set before the script ends)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --locked --bin scepd --bin scep >&2
SCEPD=$PWD/target/release/scepd
SCEP=$PWD/target/release/scep
export SCEPD_KEY_PASSPHRASE=bench-only-passphrase

work=$(mktemp -d)
pids=()
on_exit=:
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    eval "$on_exit"
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A fresh scepd in single-password mode in $work/NAME, started on a free port: sets
# port, pid and PW.
start_single() {
    "$SCEPD" init --data-dir "$work/$1" --challenge-mode single >/dev/null 2>&1
    PW=$("$SCEPD" challenge new --data-dir "$work/$1")
    port=$(free_port)
    "$SCEPD" serve --data-dir "$work/$1" --listen "127.0.0.1:$port" >/dev/null 2>"$work/$1.log" &
    pid=$!
    pids+=("$pid")
    sleep 1
}
