#!/bin/bash
# Interop run of certmonger's SCEP support (the certmonger daemon with its scep-submit helper,
# driven by getcert) against a running scepd.
#
# Debian packages: certmonger, dbus-daemon (dbus), openssl, coreutils.
#
# usage: interop/certmonger.sh URL DATA_DIR WORK_DIR
#   URL       scepd's SCEP URL, e.g. http://127.0.0.1:8080/certsrv/mscep/mscep.dll
#   DATA_DIR  scepd's data directory (for `scepd challenge new`, ca.pem, the audit trail)
#   WORK_DIR  scratch directory (created if missing); certmonger's state lives in it
# environment: SCEPD (scepd binary, default `scepd`), SCEPD_KEY_PASSPHRASE (for `challenge new`),
#   INTEROP_PRIVATE=0 to leave out the steps that run a private scepd in WORK_DIR (a refused
#   challenge, PENDING).
#
# certmonger runs privately: its own dbus-daemon (a session bus with no service activation),
# `certmonger -s -n` on it, every state directory under WORK_DIR; a system certmonger is never
# contacted. Both daemons are stopped on exit.
#
# Prints `VERSION ...`, then one `PASS step` or `FAIL step: reason` line per step (the client's
# output follows a FAIL, indented). Exit status 0 only if every step passed.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 URL DATA_DIR WORK_DIR" >&2
    exit 2
fi
URL=$1
DATA_DIR=$(cd "$2" 2>/dev/null && pwd) || { echo "no data dir: $2" >&2; exit 2; }
mkdir -p "$3" || exit 2
WORK=$(cd "$3" && pwd)
SCEPD=${SCEPD:-scepd}
exec </dev/null

FAILS=0
PASSES=0
PENDING_PID=""
CM_PID=""
BUS_PID=""
TIMEOUT=25

cleanup() {
    local id
    [ -n "$CM_PID" ] && kill "$CM_PID" 2>/dev/null && wait "$CM_PID" 2>/dev/null
    [ -n "$BUS_PID" ] && kill "$BUS_PID" 2>/dev/null
    if [ -n "$PENDING_PID" ]; then
        kill "$PENDING_PID" 2>/dev/null
        wait "$PENDING_PID" 2>/dev/null
    fi
    if [ -f "$WORK/challenges.created" ]; then
        while IFS= read -r id; do
            "$SCEPD" challenge revoke --data-dir "${id%:*}" "${id##*:}" >/dev/null 2>&1
        done <"$WORK/challenges.created"
        rm -f "$WORK/challenges.created"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pass, fail, challenges, the audit lookups, ports: shared with the other shell driver
. "$(dirname "$0")/lib.sh"

# server_view DATA_DIR TRANSACTION_ID RENEWS SINCE: scepd's side of a failed step
server_view() {
    server_lookup "$1" "$2" "$3"
    if [ "$SV_OUTCOME" = issued ]; then
        echo "scepd: $SV_TYPE issued serial $SV_SERIAL"
    elif [ -n "$SV_OUTCOME" ]; then
        echo "scepd: $SV_TYPE $SV_OUTCOME${SV_REASON:+: $SV_REASON}"
    else
        local r
        r=$("$SCEPD" audit --data-dir "$1" --outcome unreadable --since "$4" --limit 1 --json 2>/dev/null |
            sed -n 's/^ *"reason": *"\(.*\)",\{0,1\}$/\1/p' | head -n 1)
        if [ -n "$r" ]; then
            echo "scepd refused the message as unreadable: $r"
        else
            echo "scepd recorded nothing for transaction ${2:-?}"
        fi
    fi
}

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
sha1_groups() { openssl x509 -in "$1" -noout -fingerprint -sha1 2>/dev/null | cut -d= -f2 | tr -d : | sed 's/\(........\)/\1 /g; s/ $//'; }

# ---------------------------------------------------------------------------------------------
VER=$(certmonger -v 2>/dev/null | awk '{ print $2; exit }')
DEB=$(dpkg-query -W -f '${Version}' certmonger 2>/dev/null)
echo "VERSION certmonger ${VER:-unknown}${DEB:+ (Debian $DEB)}"
SUBMIT=""
for f in /usr/lib/certmonger/scep-submit /usr/libexec/certmonger/scep-submit; do
    [ -x "$f" ] && SUBMIT=$f && break
done
if ! command -v certmonger >/dev/null || ! command -v getcert >/dev/null || [ -z "$SUBMIT" ]; then
    fail prerequisites "certmonger, getcert or scep-submit missing (apt-get install certmonger)"
    exit 1
fi
if ! command -v dbus-daemon >/dev/null; then
    fail prerequisites "dbus-daemon missing (apt-get install dbus-daemon)"
    exit 1
fi

C=$WORK/certmonger
rm -rf "$C"
mkdir -p "$C/home" "$C/state/requests" "$C/state/cas" "$C/state/local" "$C/state/tmp" "$C/state/config" "$C/out"
export HOME=$C/home
export CERTMONGER_CONFIG_DIR=$C/state/config
export CERTMONGER_REQUESTS_DIR=$C/state/requests
export CERTMONGER_CAS_DIR=$C/state/cas
export CERTMONGER_LOCAL_CA_DIR=$C/state/local
export CERTMONGER_TMPDIR=$C/state/tmp
export CERTMONGER_SYSTEM_LOCK_FILE=$C/state/lock
unset DBUS_SYSTEM_BUS_ADDRESS CERTMONGER_PVT_ADDRESS

cat >"$C/bus.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
if ! dbus-daemon --config-file="$C/bus.conf" --fork --nopidfile --print-address=3 --print-pid=4 \
    3>"$C/bus.addr" 4>"$C/bus.pid" 2>"$C/bus.log"; then
    fail prerequisites "private dbus-daemon did not start" "$C/bus.log"
    exit 1
fi
BUS_PID=$(head -n 1 "$C/bus.pid")
DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$C/bus.addr")
export DBUS_SESSION_BUS_ADDRESS

certmonger -s -n -d 3 -p "$C/certmonger.pid" >"$C/certmonger.log" 2>&1 &
CM_PID=$!
ready=0
for i in $(seq 1 100); do
    if getcert list-cas -s >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$CM_PID" 2>/dev/null || break
    sleep 0.1
done
if [ $ready = 0 ]; then
    fail prerequisites "private certmonger did not come up on its session bus" "$C/certmonger.log"
    exit 1
fi

# list_status ID: the tracking entry's status line
list_status() { getcert list -s -i "$1" 2>/dev/null | sed -n 's/^\tstatus: //p' | head -n 1; }
list_error() { getcert list -s -i "$1" 2>/dev/null | sed -n 's/^\tca-error: //p' | head -n 1; }
request_field() { sed -n "s/^$2=//p" "$(grep -l "^id=$1\$" "$C"/state/requests/* 2>/dev/null | head -n 1)" 2>/dev/null | head -n 1; }

# --- GetCACaps (scep-submit -c, the helper certmonger runs) -----------------------------------
if timeout $TIMEOUT "$SUBMIT" -u "$URL" -c >"$C/caps.out" 2>"$C/caps.err"; then
    pass getcacaps "$(grep -v '^$' "$C/caps.out" | paste -sd ' ' -)"
else
    fail getcacaps "scep-submit -c exited $?" "$C/caps.out" "$C/caps.err"
fi

# --- GetCACert (scep-submit -C prints the RA certificate, the CA certificate, the others) -----
if timeout $TIMEOUT "$SUBMIT" -u "$URL" -C >"$C/cacert.out" 2>"$C/cacert.err"; then
    awk -v d="$C" '/-----BEGIN CERTIFICATE-----/ { n++ } n { print > (d "/cacert-" n ".pem") } /-----END CERTIFICATE-----/ { close(d "/cacert-" n ".pem") }' "$C/cacert.out"
    want=$(openssl x509 -in "$DATA_DIR/ca.pem" -noout -fingerprint -sha256 2>/dev/null)
    found=0 first=""
    for f in "$C"/cacert-*.pem; do
        [ -f "$f" ] || continue
        [ -z "$first" ] && first=$(openssl x509 -in "$f" -noout -subject -nameopt RFC2253 2>/dev/null | sed 's/^subject=//')
        [ "$(openssl x509 -in "$f" -noout -fingerprint -sha256 2>/dev/null)" = "$want" ] && found=1
    done
    if [ $found = 1 ]; then
        pass getcacert "$(ls "$C"/cacert-*.pem | wc -l) certificates, RA taken: $first"
    else
        fail getcacert "the CA certificate of $DATA_DIR/ca.pem is not among scep-submit's" "$C/cacert.out" "$C/cacert.err"
    fi
else
    fail getcacert "scep-submit -C exited $?" "$C/cacert.out" "$C/cacert.err"
fi

# --- the daemon's own CA set-up: getcert add-scep-ca fetches caps and certificates itself ------
CA=scepd-interop
getcert add-scep-ca -s -c "$CA" -u "$URL" >"$C/add-ca.log" 2>&1
want=$(sha1_groups "$DATA_DIR/ca.pem")
got=""
for i in $(seq 1 100); do
    got=$(getcert list-cas -s -c "$CA" 2>/dev/null | sed -n 's/^\tSCEP CA certificate thumbprint (SHA1): //p')
    [ -n "$got" ] && break
    sleep 0.1
done
if [ -n "$got" ] && [ "$got" = "$want" ]; then
    pass add-scep-ca "daemon fetched GetCACaps/GetCACert, CA SHA1 $got"
else
    getcert list-cas -s -c "$CA" >>"$C/add-ca.log" 2>&1
    fail add-scep-ca "certmonger has no (or another) CA certificate for $CA" "$C/add-ca.log"
fi

# --- enrollment with a one-time challenge ------------------------------------------------------
ID=interop
SUBJECT="CN=certmonger-interop-$$,O=scepd interop"
KEY=$C/out/key.pem
CERT=$C/out/cert.pem
HAVE_CERT=0
PW=$(new_challenge "$DATA_DIR")
if [ -z "$PW" ]; then
    fail enroll "scepd challenge new failed" "$WORK/challenge.err"
else
    t0=$(now)
    timeout $TIMEOUT getcert request -s -c "$CA" -k "$KEY" -f "$CERT" -N "$SUBJECT" -L "$PW" -I "$ID" -w \
        >"$C/enroll.log" 2>&1
    st=$(list_status "$ID")
    TID=$(request_field "$ID" scep_tx)
    if [ "$st" = MONITORING ] && [ -s "$CERT" ]; then
        pass enroll "serial $(serial_of "$CERT"), transaction $TID"
        HAVE_CERT=1
    else
        getcert list -s -i "$ID" >>"$C/enroll.log" 2>&1
        fail enroll "status ${st:-none}: $(list_error "$ID") [$(server_view "$DATA_DIR" "$TID" null "$t0")]" "$C/enroll.log"
    fi
fi

# --- verify the issued certificate ------------------------------------------------------------
if [ $HAVE_CERT = 1 ]; then
    if openssl verify -CAfile "$DATA_DIR/ca.pem" "$CERT" >"$C/verify.log" 2>&1; then
        pass verify "openssl verify -CAfile ca.pem"
    else
        fail verify "openssl verify refused the certificate" "$C/verify.log"
    fi
else
    fail verify "no certificate"
fi

# resubmit STEP GETCERT_COMMAND ARGS...: renewal of the tracked certificate; certmonger signs
# with the current certificate and key
resubmit() {
    local step=$1 old_serial old_key t0 st new_serial
    shift
    if [ $HAVE_CERT = 0 ]; then
        fail "$step" "no certificate to renew"
        return
    fi
    old_serial=$(serial_of "$CERT")
    old_key=$(pubkey_of "$CERT")
    t0=$(now)
    timeout $TIMEOUT getcert "$@" -s -i "$ID" -w >"$C/$step.log" 2>&1
    st=$(list_status "$ID")
    new_serial=$(serial_of "$CERT")
    TID=$(request_field "$ID" scep_tx)
    if [ "$st" = MONITORING ] && [ -n "$new_serial" ] && [ "$new_serial" != "$old_serial" ]; then
        if ! openssl verify -CAfile "$DATA_DIR/ca.pem" "$CERT" >"$C/$step.verify" 2>&1; then
            fail "$step" "renewed certificate does not verify" "$C/$step.verify"
        elif [ "$1" = rekey ] && [ "$(pubkey_of "$CERT")" = "$old_key" ]; then
            fail "$step" "rekeyed certificate still carries the old key"
        else
            pass "$step" "serial $old_serial -> $new_serial, transaction $TID"
        fi
    elif [ "$st" = MONITORING ]; then
        fail "$step" "certificate unchanged (serial $old_serial) [$(server_view "$DATA_DIR" "$TID" "$old_serial" "$t0")]" "$C/$step.log"
    else
        getcert list -s -i "$ID" >>"$C/$step.log" 2>&1
        fail "$step" "status ${st:-none}: $(list_error "$ID") [$(server_view "$DATA_DIR" "$TID" "$old_serial" "$t0")]" "$C/$step.log"
        # let the next step start from a settled entry
        getcert resubmit -s -i "$ID" -L "" >/dev/null 2>&1
    fi
}

# --- renewal signed by the current certificate, same key, no challenge --------------------------
resubmit renew resubmit -L ""

# --- renewal that still carries the (used) enrollment challenge ---------------------------------
if [ -n "${PW:-}" ]; then
    resubmit renew-used-challenge resubmit -L "$PW"
else
    fail renew-used-challenge "no challenge from the enrollment"
fi

# --- rekey: PKCSReq with a new key, signed by the old certificate and key -----------------------
resubmit rekey rekey -L ""

# --- a private scepd (own data dir in WORK_DIR, manual approval) for the steps that must not
# touch the caller's server: a refused challenge (scepd throttles wrong challenges per address)
# and PENDING
if [ "${INTEROP_PRIVATE:-${INTEROP_PENDING:-1}}" != 0 ]; then
    PD=$WORK/private-data
    rm -rf "$PD"
    PP=$(free_port)
    if [ -z "$PP" ] ||
        ! "$SCEPD" init --data-dir "$PD" --listen "127.0.0.1:$PP" >"$WORK/private-init.log" 2>&1; then
        fail refused-bad-challenge "could not set up a private scepd" "$WORK/private-init.log"
        fail pending "could not set up a private scepd" "$WORK/private-init.log"
    else
        sed -i 's/^approval = "auto"/approval = "manual"/' "$PD/scepd.toml"
        grep -q '^approval = "manual"' "$PD/scepd.toml" ||
            echo "(could not switch the private scepd to manual approval: pending will fail)"
        UPATH=$(echo "$URL" | sed -E 's#^[A-Za-z]+://[^/]*##')
        PURL="http://127.0.0.1:$PP${UPATH:-/scep}"
        "$SCEPD" serve --data-dir "$PD" --listen "127.0.0.1:$PP" >"$WORK/private-scepd.log" 2>&1 &
        PENDING_PID=$!
        PCA=scepd-interop-private
        if ! wait_port "$PP"; then
            fail refused-bad-challenge "private scepd did not start" "$WORK/private-scepd.log"
            fail pending "private scepd did not start" "$WORK/private-scepd.log"
        else
            getcert add-scep-ca -s -c "$PCA" -u "$PURL" >"$C/private-ca.log" 2>&1
            for i in $(seq 1 100); do
                getcert list-cas -s -c "$PCA" 2>/dev/null | grep -q 'thumbprint (SHA1)' && break
                sleep 0.1
            done

            # --- a wrong challenge: scepd answers FAILURE, certmonger must report a rejection
            BID=bad-challenge
            t0=$(now)
            timeout $TIMEOUT getcert request -s -c "$PCA" -k "$C/out/bad-key.pem" -f "$C/out/bad-cert.pem" \
                -N "$SUBJECT" -L "not-a-challenge-$$" -I "$BID" -w >"$C/bad-challenge.log" 2>&1
            st=$(list_status "$BID")
            err=$(list_error "$BID")
            TID=$(request_field "$BID" scep_tx)
            getcert list -s -i "$BID" >>"$C/bad-challenge.log" 2>&1
            getcert stop-tracking -s -i "$BID" >/dev/null 2>&1
            if [ "$st" = CA_REJECTED ]; then
                pass refused-bad-challenge "CA_REJECTED: $err"
            else
                fail refused-bad-challenge "status ${st:-none} instead of CA_REJECTED: $err [$(server_view "$PD" "$TID" null "$t0")]" "$C/bad-challenge.log"
            fi

            # --- PENDING, then the answer after approval (certmonger polls by resending)
            PID_=pending
            PPW=$(new_challenge "$PD")
            t0=$(now)
            getcert request -s -c "$PCA" -k "$C/out/pending-key.pem" -f "$C/out/pending-cert.pem" \
                -N "$SUBJECT" -L "$PPW" -I "$PID_" >"$C/pending.log" 2>&1
            RID=""
            for i in $(seq 1 100); do
                RID=$("$SCEPD" request list --data-dir "$PD" 2>/dev/null | awk '$2 == "pending" { print $1; exit }')
                [ -n "$RID" ] && break
                case "$(list_status "$PID_")" in CA_UNREACHABLE | CA_REJECTED | NEED_* | MONITORING) break ;; esac
                sleep 0.2
            done
            TID=$(request_field "$PID_" scep_tx)
            if [ -z "$RID" ]; then
                getcert list -s -i "$PID_" >>"$C/pending.log" 2>&1
                fail pending "scepd holds no pending request; status $(list_status "$PID_"): $(list_error "$PID_") [$(server_view "$PD" "$TID" null "$t0")]" "$C/pending.log"
            else
                for i in $(seq 1 50); do
                    case "$(list_status "$PID_")" in CA_WORKING | CA_UNREACHABLE | CA_REJECTED) break ;; esac
                    sleep 0.1
                done
                st1=$(list_status "$PID_")
                err1=$(list_error "$PID_")
                if [ "$st1" != CA_WORKING ]; then
                    getcert list -s -i "$PID_" >>"$C/pending.log" 2>&1
                    fail pending "certmonger did not take the PENDING answer: status ${st1:-none}: $err1 [$(server_view "$PD" "$TID" null "$t0")]" "$C/pending.log"
                else
                    "$SCEPD" request approve --data-dir "$PD" "$RID" >>"$C/pending.log" 2>&1
                    # ask certmonger to poll now rather than at its own pace
                    getcert refresh -s -i "$PID_" >>"$C/pending.log" 2>&1
                    for i in $(seq 1 100); do
                        st=$(list_status "$PID_")
                        case "$st" in MONITORING | CA_REJECTED | CA_UNREACHABLE | NEED_*) break ;; esac
                        sleep 0.1
                    done
                    if [ "$st" = MONITORING ] && [ -s "$C/out/pending-cert.pem" ] &&
                        openssl verify -CAfile "$PD/ca.pem" "$C/out/pending-cert.pem" >/dev/null 2>&1; then
                        pass pending "CA_WORKING while PENDING, issued after approval, serial $(serial_of "$C/out/pending-cert.pem")"
                    else
                        getcert list -s -i "$PID_" >>"$C/pending.log" 2>&1
                        fail pending "status ${st:-none} after approval: $(list_error "$PID_") [$(server_view "$PD" "$TID" null "$t0")]" "$C/pending.log"
                    fi
                fi
            fi
            getcert stop-tracking -s -i "$PID_" >/dev/null 2>&1
        fi
        kill "$PENDING_PID" 2>/dev/null
        wait "$PENDING_PID" 2>/dev/null
        PENDING_PID=""
    fi
fi

echo "(not offered by certmonger: GetCRL, GetCert, GetNextCACert)"
echo "RESULT certmonger: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
