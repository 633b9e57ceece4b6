"""Helpers shared by the interop drivers (pyscep_client.py, scepreq_client.py).

A driver prints "VERSION <client> <version>", then one line per step:
"PASS name[: detail]", "FAIL name: reason" or "XFAIL name: client bug: ..."
(a documented bug of the client, shown by the error it raises), and exits 0
only when no step failed. The scepd binary is $SCEPD (default "scepd"); the caller sets
SCEPD_KEY_PASSPHRASE for the commands that read the keys.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import traceback
import urllib.parse

TIME_LIMIT_SECS = 55
HTTP_TIMEOUT_SECS = 15


class StepFailed(Exception):
    """A check of the driver's own failed (the client itself did not raise)."""


def _on_alarm(signum, frame):
    print("FAIL time-limit: the driver ran longer than %d s" % TIME_LIMIT_SECS, flush=True)
    os._exit(1)


def where(exc):
    """The three innermost frames of the traceback that lie outside this driver."""
    here = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(here)]
    if not frames:
        return ""
    parts = []
    for f in frames[-3:]:
        m = re.search(r"site-packages/(.*)$", f.filename)
        parts.append("%s:%d %s" % (m.group(1) if m else f.filename, f.lineno, f.name))
    return " [at %s]" % " > ".join(parts)


def describe(exc):
    text = str(exc).strip().replace("\n", " ")
    if isinstance(exc, StepFailed):
        return text
    if len(text) > 300:
        text = text[:300] + "..."
    name = type(exc).__name__
    return "%s: %s%s" % (name, text or "(no message)", where(exc))


class Run:
    def __init__(self, client, version):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(TIME_LIMIT_SECS)
        # The clients call requests without a timeout; bound every socket.
        socket.setdefaulttimeout(HTTP_TIMEOUT_SECS)
        self.passed = {}
        self.failures = 0
        print("VERSION %s %s" % (client, version), flush=True)

    def step(self, name, fn, needs=(), known_bug=None):
        """Run fn(); it returns a detail string (or None), or raises.

        known_bug=(pattern, text): a failure whose description matches the regular
        expression is the client's documented bug, printed as "XFAIL name: client bug:
        text (the error)" and not counted; any other failure still fails.
        """
        missing = [n for n in needs if not self.passed.get(n)]
        if missing:
            self.fail(name, "not run: needs %s" % ", ".join(missing))
            return False
        try:
            detail = fn()
        except Exception as exc:  # every failure becomes one FAIL line
            if known_bug and re.search(known_bug[0], describe(exc)):
                print("XFAIL %s: client bug: %s (%s)" % (name, known_bug[1], describe(exc)), flush=True)
                return False
            self.fail(name, describe(exc))
            if os.environ.get("INTEROP_DEBUG"):
                traceback.print_exc()
            return False
        self.passed[name] = True
        print("PASS %s%s" % (name, ": %s" % detail if detail else ""), flush=True)
        return True

    def skip(self, name, reason):
        print("SKIP %s: %s" % (name, reason), flush=True)

    def fail(self, name, reason):
        self.passed[name] = False
        self.failures += 1
        print("FAIL %s: %s" % (name, reason), flush=True)

    def finish(self):
        signal.alarm(0)
        sys.exit(1 if self.failures else 0)


def scepd(data_dir, *args, check=True):
    """Run a scepd CLI command against data_dir; returns stdout."""
    binary = os.environ.get("SCEPD", "scepd")
    cmd = [binary] + list(args) + ["--data-dir", data_dir]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise StepFailed("%s exited %d: %s" % (" ".join(cmd), p.returncode,
                                               (p.stderr or p.stdout).strip()[:300]))
    return p.stdout


def challenge(data_dir):
    pw = scepd(data_dir, "challenge", "new").strip()
    if not pw:
        raise StepFailed("scepd challenge new printed nothing")
    return pw


def openssl_verify(data_dir, cert_path):
    ca = os.path.join(data_dir, "ca.pem")
    p = subprocess.run(["openssl", "verify", "-CAfile", ca, cert_path], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20)
    out = (p.stdout + p.stderr).strip().replace("\n", " ")
    if p.returncode != 0 or not p.stdout.strip().endswith("OK"):
        raise StepFailed("openssl verify -CAfile %s: %s" % (ca, out))
    return out


def openssl_crl_verify(data_dir, crl_pem_path):
    ca = os.path.join(data_dir, "ca.pem")
    p = subprocess.run(["openssl", "crl", "-in", crl_pem_path, "-CAfile", ca, "-noout"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    out = (p.stdout + p.stderr).strip().replace("\n", " ")
    if p.returncode != 0 or "verify OK" not in out:
        raise StepFailed("openssl crl -CAfile %s: %s" % (ca, out))
    return out


def pem_to_der(path):
    import base64
    text = open(path).read()
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    if not m:
        raise StepFailed("no certificate in %s" % path)
    return base64.b64decode("".join(m.group(1).split()))


def manual_template(data_dir):
    """Name of a template with approval = "manual" in DATA_DIR/scepd.toml, or None."""
    path = os.path.join(data_dir, "scepd.toml")
    try:
        import tomllib
        with open(path, "rb") as f:
            conf = tomllib.load(f)
        for name, t in (conf.get("templates") or {}).items():
            if isinstance(t, dict) and t.get("approval") == "manual":
                return name
        return None
    except ImportError:
        current = None
        for line in open(path):
            line = line.split("#", 1)[0].strip()
            m = re.match(r"\[templates\.([A-Za-z0-9_-]+)\]$", line)
            if m:
                current = m.group(1)
            elif line.startswith("["):
                current = None
            elif current and re.match(r'approval\s*=\s*"manual"$', line):
                return current
        return None


def template_url(url, name):
    """The /scep/NAME URL on the same server as url."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/scep/%s" % name, "", ""))


def wait_for(predicate, seconds, interval=0.5):
    """Call predicate() until it is true or seconds have passed."""
    import time
    deadline = time.monotonic() + seconds
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pending_request_id(data_dir, transaction_id):
    import json
    rows = json.loads(scepd(data_dir, "request", "list", "--status", "pending", "--json"))
    for r in rows:
        if r.get("transaction_id") == transaction_id:
            return r["id"]
    raise StepFailed("no pending request with transactionID %s in `scepd request list`" % transaction_id)
