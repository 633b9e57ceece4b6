#!/bin/bash
# Interop run of strongSwan's SCEP client (`pki --scepca`, `pki --scep`) against a running scepd.
#
# Debian packages: strongswan-pki, libstrongswan-extra-plugins (the curl fetcher plugin that
# `pki --scep` needs), libstrongswan-standard-plugins, openssl, coreutils.
#
# usage: interop/strongswan.sh URL DATA_DIR WORK_DIR
#   URL       scepd's SCEP URL, e.g. http://127.0.0.1:8080/certsrv/mscep/mscep.dll
#   DATA_DIR  scepd's data directory (for `scepd challenge new`, ca.pem, the audit trail)
#   WORK_DIR  scratch directory (created if missing)
# environment: SCEPD (scepd binary, default `scepd`), SCEPD_KEY_PASSPHRASE (for `challenge new`),
#   INTEROP_PRIVATE=0 to leave out the steps that run a private scepd in WORK_DIR (a refused
#   challenge, PENDING/CertPoll); STRONGSWAN_CIPHER=aes|des3 to override the cipher choice.
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
TIMEOUT=30

cleanup() {
    local id
    if [ -n "$PENDING_PID" ]; then
        kill "$PENDING_PID" 2>/dev/null
        wait "$PENDING_PID" 2>/dev/null
    fi
    # withdraw the one-time challenges this run created and did not use
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

# the client's diagnostics without plugin-loader chatter
clean_log() {
    grep -vE "^TPM 2.0 - could not load|plugin '[a-z0-9-]+': failed to load" "$1" 2>/dev/null
}

# last_words LOG: the client's last two meaningful lines, joined, for a FAIL reason
last_words() {
    clean_log "$1" | grep -vE '^\s*$|^  (using|reached)' | tail -n 2 | paste -sd ';' - | sed 's/;/; /g'
}

# server_view: one phrase for a FAIL line from the SV_ variables
server_view() {
    if [ -z "$SV_OUTCOME" ]; then
        echo "scepd recorded nothing for transaction $1"
    elif [ "$SV_OUTCOME" = issued ]; then
        echo "scepd: $SV_TYPE issued serial $SV_SERIAL"
    else
        echo "scepd: $SV_TYPE $SV_OUTCOME${SV_REASON:+: $SV_REASON}"
    fi
}

# private strongswan.conf files: load only the plugins pki needs (no loader noise), and a
# second one that makes pki renew with PKCSReq instead of RenewalReq
cat >"$WORK/strongswan.conf" <<'EOF'
pki {
    load = random drbg nonce aes rc2 sha1 sha2 md5 mgf1 hmac kdf pem pkcs1 pkcs7 pkcs8 pkcs12 x509 pubkey revocation gmp openssl curl
}
EOF
cat >"$WORK/strongswan-pkcsreq.conf" <<'EOF'
pki {
    load = random drbg nonce aes rc2 sha1 sha2 md5 mgf1 hmac kdf pem pkcs1 pkcs7 pkcs8 pkcs12 x509 pubkey revocation gmp openssl curl
    scep {
        renewal_via_pkcs_req = yes
    }
}
EOF
export STRONGSWAN_CONF="$WORK/strongswan.conf"

# ---------------------------------------------------------------------------------------------
VER=$(pki --help 2>&1 | sed -n 's/^strongSwan \([0-9.]*\) PKI tool.*/\1/p' | head -n 1)
DEB=$(dpkg-query -W -f '${Version}' strongswan-pki 2>/dev/null)
echo "VERSION strongswan-pki ${VER:-unknown}${DEB:+ (Debian $DEB)}"
if ! command -v pki >/dev/null; then
    fail prerequisites "pki not installed (apt-get install strongswan-pki libstrongswan-extra-plugins)"
    exit 1
fi
if ! pki --help 2>&1 | grep -q 'loaded plugins:.* curl'; then
    fail prerequisites "pki has no curl fetcher plugin (apt-get install libstrongswan-extra-plugins)"
    exit 1
fi

# strongSwan up to 5.9.8 tests its GetCACaps bit mask with the capability's index instead of its
# bit (strongswan/strongswan#1607): AES then counts as offered only when the server lists SHA-384.
# 3DES is tested against the AES bit, so --cipher des3 gets through the client's own check.
CIPHER=${STRONGSWAN_CIPHER:-}
if [ -z "$CIPHER" ]; then
    case "$VER" in
        5.9.[0-8] | 5.9.[0-8].*) CIPHER=des3 ;;
        *) CIPHER=aes ;;
    esac
fi

SUBJECT="CN=strongswan-interop-$$,O=scepd interop"
S=$WORK/scep
rm -rf "$S"
mkdir -p "$S"

# --- GetCACert -------------------------------------------------------------------------------
RA_ENC="" RA_SIG="" CA_DER=""
if timeout $TIMEOUT pki --scepca --url "$URL" --caout "$S/ca.der" --raout "$S/ra.der" --force \
    >"$S/scepca.out" 2>"$S/scepca.log"; then
    CA_DER=$S/ca.der
    for f in "$S"/ra*.der; do
        [ -f "$f" ] || continue
        ku=$(openssl x509 -inform DER -in "$f" -noout -ext keyUsage 2>/dev/null)
        case "$ku" in *"Key Encipherment"*) RA_ENC=${RA_ENC:-$f} ;; esac
        case "$ku" in *"Digital Signature"*) RA_SIG=${RA_SIG:-$f} ;; esac
    done
    [ -z "$RA_ENC" ] && [ -z "$RA_SIG" ] && RA_ENC=$CA_DER RA_SIG=$CA_DER
    got=$(openssl x509 -inform DER -in "$CA_DER" -noout -fingerprint -sha256 2>/dev/null)
    want=$(openssl x509 -in "$DATA_DIR/ca.pem" -noout -fingerprint -sha256 2>/dev/null)
    if [ -z "$got" ] || [ "$got" != "$want" ]; then
        fail getcacert "CA certificate from GetCACert differs from $DATA_DIR/ca.pem" "$S/scepca.log"
    elif [ -z "$RA_ENC" ] || [ -z "$RA_SIG" ]; then
        fail getcacert "no RA certificate with keyEncipherment / digitalSignature" "$S/scepca.log"
    else
        pass getcacert "CA + RA encryption $(basename "$RA_ENC") + RA signing $(basename "$RA_SIG")"
    fi
else
    fail getcacert "pki --scepca failed: $(last_words "$S/scepca.log")" "$S/scepca.log"
fi
if [ -z "$CA_DER" ] || [ -z "$RA_ENC" ] || [ -z "$RA_SIG" ]; then
    echo "(no CA/RA certificates: nothing else can run)"
    exit 1
fi

# scep_run NAME OUT_CERT EXTRA_ARGS...: one pki --scep run; sets TID
scep_run() {
    local name=$1 out=$2
    shift 2
    timeout $TIMEOUT pki --scep --url "$URL" --dn "$SUBJECT" \
        --cacert-enc "$RA_ENC" --cacert-sig "$RA_SIG" --cacert "$CA_DER" \
        --cipher "$CIPHER" --outform pem --interval 1 --maxpolltime 20 "$@" \
        >"$out" 2>"$S/$name.log"
    local rc=$?
    clean_log "$S/$name.log" >"$S/$name.txt"
    TID=$(sed -n 's/^transaction ID: *//p' "$S/$name.log" | head -n 1)
    return $rc
}

# --- enrollment with a one-time challenge ----------------------------------------------------
pki --gen --type rsa --size 2048 --outform pem >"$S/key1.pem" 2>"$S/gen.log" || {
    fail keygen "pki --gen failed" "$S/gen.log"
    exit 1
}
CUR_KEY=$S/key1.pem
CUR_CERT=""
SERVER_COPY=0
PW=$(new_challenge "$DATA_DIR")
if [ -z "$PW" ]; then
    fail enroll "scepd challenge new failed" "$WORK/challenge.err"
else
    TID=""
    if scep_run enroll "$S/cert1.pem" --in "$S/key1.pem" --password "$PW" --debug 2 &&
        [ -s "$S/cert1.pem" ]; then
        CAPS=$(sed -n '/^CA Capabilities:/,/^[^ ]/p' "$S/enroll.txt" | sed -n 's/^  \([A-Za-z0-9-]*\)$/\1/p' | paste -sd ' ' -)
        [ -n "$CAPS" ] && pass getcacaps "$CAPS"
        pass enroll "transaction $TID, serial $(serial_of "$S/cert1.pem")"
        CUR_CERT=$S/cert1.pem
    else
        CAPS=$(sed -n '/^CA Capabilities:/,/^[^ ]/p' "$S/enroll.txt" | sed -n 's/^  \([A-Za-z0-9-]*\)$/\1/p' | paste -sd ' ' -)
        if [ -n "$CAPS" ]; then pass getcacaps "$CAPS"; else fail getcacaps "pki did not get GetCACaps"; fi
        # keep the debug-2 ASN.1 chatter out of the report, it stays in $S/enroll.log
        grep -vE "^  '|^  X\.509|^-- [<>] --|^  (TRUE|FALSE|v[0-9])$|^builder |^L[0-9]+ - |file content is not binary|-----(BEGIN|END)" \
            "$S/enroll.txt" >"$S/enroll.short"
        reason="pki --scep: $(last_words "$S/enroll.txt")"
        if [ -n "$TID" ]; then
            server_lookup "$DATA_DIR" "$TID" null
            reason="$reason [$(server_view "$TID")]"
            serial=$SV_SERIAL
            if [ "$SV_OUTCOME" = issued ] && "$SCEPD" cert show --data-dir "$DATA_DIR" "$serial" >"$S/cert1.pem" 2>/dev/null &&
                [ -s "$S/cert1.pem" ]; then
                CUR_CERT=$S/cert1.pem
                SERVER_COPY=1
            fi
        fi
        fail enroll "$reason" "$S/enroll.short"
    fi
fi

# --- verify the issued certificate -----------------------------------------------------------
if [ -n "$CUR_CERT" ] && [ "$SERVER_COPY" = 0 ]; then
    if openssl verify -CAfile "$DATA_DIR/ca.pem" "$CUR_CERT" >"$S/verify.log" 2>&1; then
        pass verify "openssl verify -CAfile ca.pem"
    else
        fail verify "openssl verify refused the certificate" "$S/verify.log"
    fi
elif [ -n "$CUR_CERT" ]; then
    fail verify "the client stored no certificate"
    echo "    (scepd issued serial $(serial_of "$CUR_CERT"); the renewal steps below sign with scepd's copy of it, from \`scepd cert show\`)"
else
    fail verify "no certificate"
fi

# renew STEP NEW_KEY EXTRA_ARGS...: a renewal signed by CUR_CERT/CUR_KEY
renew() {
    local step=$1 newkey=$2 n
    shift 2
    n=$((${N:-1} + 1))
    if [ -z "$CUR_CERT" ]; then
        fail "$step" "no certificate to renew"
        return
    fi
    local old_serial
    old_serial=$(serial_of "$CUR_CERT")
    TID=""
    if scep_run "$step" "$S/cert$n.pem" --in "$newkey" --cert "$CUR_CERT" --key "$CUR_KEY" "$@" &&
        [ -s "$S/cert$n.pem" ]; then
        local new_serial detail
        new_serial=$(serial_of "$S/cert$n.pem")
        if ! openssl verify -CAfile "$DATA_DIR/ca.pem" "$S/cert$n.pem" >"$S/$step.verify" 2>&1; then
            fail "$step" "renewed certificate does not verify" "$S/$step.verify"
        elif [ "$new_serial" = "$old_serial" ]; then
            fail "$step" "scepd answered with the old certificate (serial $old_serial) instead of a new one"
        elif [ "$newkey" != "$CUR_KEY" ] && [ "$(pubkey_of "$S/cert$n.pem")" = "$(pubkey_of "$CUR_CERT")" ]; then
            fail "$step" "renewed certificate still carries the old key"
        else
            detail="serial $old_serial -> $new_serial, transaction $TID"
            pass "$step" "$detail"
            CUR_CERT=$S/cert$n.pem
            CUR_KEY=$newkey
            N=$n
        fi
    else
        local reason serial
        reason="pki --scep: $(last_words "$S/$step.txt")"
        if [ -n "$TID" ]; then
            server_lookup "$DATA_DIR" "$TID" "$old_serial"
            reason="$reason [$(server_view "$TID")]"
            serial=$SV_SERIAL
            if [ "$SV_OUTCOME" = issued ] && [ "$serial" != "$old_serial" ] &&
                "$SCEPD" cert show --data-dir "$DATA_DIR" "$serial" >"$S/cert$n.pem" 2>/dev/null && [ -s "$S/cert$n.pem" ]; then
                CUR_CERT=$S/cert$n.pem
                CUR_KEY=$newkey
                N=$n
            fi
        fi
        fail "$step" "$reason" "$S/$step.txt"
    fi
}
N=1

# --- renewal (RenewalReq) signed by the current certificate, same key, no challenge -----------
renew renew "$CUR_KEY"

# --- renewal that still carries the (used) enrollment challenge -------------------------------
if [ -n "${PW:-}" ]; then
    renew renew-used-challenge "$CUR_KEY" --password "$PW"
else
    fail renew-used-challenge "no challenge from the enrollment"
fi

# --- renewal with a new key, signed by the old certificate and old key -------------------------
pki --gen --type rsa --size 2048 --outform pem >"$S/key2.pem" 2>/dev/null
renew renew-new-key "$S/key2.pem"

# --- renewal as PKCSReq (pki's scep.renewal_via_pkcs_req) signed by the current certificate ----
STRONGSWAN_CONF="$WORK/strongswan-pkcsreq.conf" renew renew-pkcsreq "$CUR_KEY"

# --- a private scepd (own data dir in WORK_DIR, manual approval) for the steps that must not
# touch the caller's server: a refused challenge (scepd throttles wrong challenges per address)
# and PENDING/CertPoll
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
        P=$WORK/private
        rm -rf "$P"
        mkdir -p "$P"
        PENC="" PSIG=""
        if wait_port "$PP"; then
            timeout $TIMEOUT pki --scepca --url "$PURL" --caout "$P/ca.der" --raout "$P/ra.der" --force \
                >/dev/null 2>"$P/scepca.log"
            for f in "$P"/ra*.der; do
                [ -f "$f" ] || continue
                ku=$(openssl x509 -inform DER -in "$f" -noout -ext keyUsage 2>/dev/null)
                case "$ku" in *"Key Encipherment"*) PENC=${PENC:-$f} ;; esac
                case "$ku" in *"Digital Signature"*) PSIG=${PSIG:-$f} ;; esac
            done
        fi
        if [ -z "$PENC" ] || [ -z "$PSIG" ]; then
            fail refused-bad-challenge "private scepd did not start or gave no RA certificates" "$WORK/private-scepd.log" "$P/scepca.log"
            fail pending "private scepd did not start or gave no RA certificates"
        else
            pki --gen --type rsa --size 2048 --outform pem >"$P/key.pem" 2>/dev/null
            pscep() {
                timeout $TIMEOUT pki --scep --url "$PURL" --dn "$SUBJECT" --in "$P/key.pem" \
                    --cacert-enc "$PENC" --cacert-sig "$PSIG" --cacert "$P/ca.der" --cipher "$CIPHER" \
                    --outform pem --interval 1 --maxpolltime 20 "$@"
            }

            # --- a wrong challenge: scepd answers FAILURE, pki must report the failInfo
            pscep --password "not-a-challenge-$$" >"$P/bad.pem" 2>"$P/bad.log"
            rc=$?
            clean_log "$P/bad.log" >"$P/bad.txt"
            TID=$(sed -n 's/^transaction ID: *//p' "$P/bad.txt" | head -n 1)
            if [ $rc != 0 ] && grep -q "^failInfo:" "$P/bad.txt"; then
                pass refused-bad-challenge "$(sed -n 's/^failInfo: *//p' "$P/bad.txt" | head -n 1)"
            elif [ $rc = 0 ]; then
                fail refused-bad-challenge "scepd issued a certificate for a wrong challenge"
            else
                server_lookup "$PD" "$TID" null
                fail refused-bad-challenge "pki: $(last_words "$P/bad.txt") [$(server_view "$TID")]" "$P/bad.txt"
            fi

            # --- PENDING, CertPoll while waiting, the certificate after approval
            PPW=$(new_challenge "$PD")
            pscep --password "$PPW" >"$P/cert.pem" 2>"$P/scep.log" &
            CPID=$!
            RID=""
            for i in $(seq 1 50); do
                RID=$("$SCEPD" request list --data-dir "$PD" 2>/dev/null | awk '$2 == "pending" { print $1; exit }')
                [ -n "$RID" ] && break
                kill -0 $CPID 2>/dev/null || break
                sleep 0.2
            done
            if [ -z "$RID" ]; then
                wait $CPID
                clean_log "$P/scep.log" >"$P/scep.txt"
                fail pending "scepd holds no pending request; pki: $(last_words "$P/scep.txt")" "$P/scep.txt"
            else
                sleep 1.5 # let pki poll at least once while the request is PENDING
                if ! kill -0 $CPID 2>/dev/null; then
                    wait $CPID
                    clean_log "$P/scep.log" >"$P/scep.txt"
                    fail pending "pki gave up on the PENDING answer: $(last_words "$P/scep.txt")" "$P/scep.txt"
                else
                    "$SCEPD" request approve --data-dir "$PD" "$RID" >"$P/approve.log" 2>&1
                    wait $CPID
                    rc=$?
                    clean_log "$P/scep.log" >"$P/scep.txt"
                    polls=$(grep -c '^transaction ID:' "$P/scep.txt")
                    if [ $rc = 0 ] && [ -s "$P/cert.pem" ] &&
                        openssl verify -CAfile "$PD/ca.pem" "$P/cert.pem" >/dev/null 2>&1; then
                        pass pending "PENDING, $((polls - 1)) CertPoll(s), issued after approval"
                    else
                        fail pending "pki after approval: $(last_words "$P/scep.txt")" "$P/scep.txt"
                    fi
                fi
            fi
        fi
        kill "$PENDING_PID" 2>/dev/null
        wait "$PENDING_PID" 2>/dev/null
        PENDING_PID=""
    fi
fi

echo "(not offered by pki: GetCRL, GetCert, GetNextCACert)"
echo "RESULT strongswan-pki: $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
