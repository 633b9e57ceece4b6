# Helpers of the shell drivers (strongswan.sh, certmonger.sh), sourced by them. They use
# the drivers' variables: SCEPD, WORK, PASSES, FAILS, CHALLENGE_IDS.

pass() { PASSES=$((PASSES + 1)); echo "PASS $1${2:+ ($2)}"; }

# fail STEP REASON [LOGFILE...]: print the FAIL line and the client's output
fail() {
    local step=$1 reason=$2 f
    shift 2
    FAILS=$((FAILS + 1))
    echo "FAIL $step: $reason"
    for f in "$@"; do
        [ -s "$f" ] && sed 's/^/    | /' "$f"
    done
}

# ids of outstanding one-time challenges in data dir $1
challenge_ids() {
    "$SCEPD" challenge list --data-dir "$1" 2>/dev/null | awk 'NR > 1 { print $1 }' | sort
}

# new_challenge DATA_DIR: print a fresh one-time challenge; its id goes to a file (this runs in
# a command substitution) so that the exit trap can withdraw it if it was never used
new_challenge() {
    local dir=$1 before after pw id
    before=$(challenge_ids "$dir")
    pw=$("$SCEPD" challenge new --data-dir "$dir" 2>"$WORK/challenge.err") || return 1
    after=$(challenge_ids "$dir")
    id=$(comm -13 <(echo "$before") <(echo "$after"))
    # exactly one new id is ours; with several (a concurrent run) withdraw none
    [ -n "$id" ] && [ "$(echo "$id" | wc -l)" = 1 ] && echo "$dir:$id" >>"$WORK/challenges.created"
    [ -n "$pw" ] && echo "$pw"
}

# server_lookup DATA_DIR TRANSACTION_ID RENEWS: what scepd's audit trail holds for that
# transaction (newest first); RENEWS is the serial the request renews, or "null" for a first
# enrollment, since clients that derive the transactionID from the key repeat it on renewal.
# Sets SV_TYPE SV_OUTCOME SV_SERIAL SV_REASON.
server_lookup() {
    local try
    for try in 1 2 3 4 5 6; do
        _server_lookup "$@"
        [ -n "$SV_OUTCOME" ] && return 0
        sleep 0.3 # the audit record can land just after the answer
    done
}

_server_lookup() {
    SV_TYPE="" SV_OUTCOME="" SV_SERIAL="" SV_REASON=""
    IFS=$'\t' read -r SV_TYPE SV_OUTCOME SV_SERIAL SV_REASON < <(
        "$SCEPD" audit --data-dir "$1" --transaction "$2" --limit 50 --json 2>/dev/null | awk -v want="$3" '
            function val(line) { sub(/^[^:]*: */, "", line); sub(/,$/, "", line); gsub(/^"|"$/, "", line); return line }
            /"message_type":/ { m = val($0) }
            /"outcome":/ { o = val($0) }
            /"reason":/ { r = val($0); if (r == "null") r = "" }
            /"serial":/ { s = val($0) }
            /"renews_serial":/ { rs = val($0) }
            /^  },?$/ { if (!done && rs == want) { printf "%s\t%s\t%s\t%s\n", m, o, s, r; done = 1 } m = o = r = s = rs = "" }')
}

free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

serial_of() { openssl x509 -in "$1" -noout -serial 2>/dev/null | cut -d= -f2; }

pubkey_of() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum | cut -c1-64; }
