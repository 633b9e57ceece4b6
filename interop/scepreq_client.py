"""Drive scepd with scepreq (PyPI "scepreq"): its CLI, then its Python modules.

usage: PYTHON interop/scepreq_client.py URL DATA_DIR WORK_DIR

Arguments and environment as for pyscep_client.py. scepreq is a fork of
pyscep 0.0.14 whose CLI (`scepreq -u URL -s SUBJECT -p CHALLENGE`) enrolls
once: it signs the PKCSReq with a throw-away self-signed certificate whose key
is not the CSR key, and adds SANs (--dns, --upn, --sid-url) and an AD SID
extension (--sid). The CLI has no renewal, poll, GetCert, GetCRL or
GetNextCACert; those steps use the modules the CLI is built on
(scepreq.client.Client, scepreq.signingrequest.SigningRequest) the way the CLI
uses them, with the issued certificate as signer where pyscep's README says so.

Steps: cli-enroll (the scepreq command), getcacaps, getcacert, enroll (as the
CLI does it, with SANs), verify, sans, renew, renew-old-challenge,
refused-used-challenge, certpoll, getcert, getcrl, pending-* (with a manual
template, else SKIP), getnextcacert.
"""
import hashlib
import os
import subprocess
import sys
import uuid
import warnings

warnings.simplefilter("ignore")

from drivercommon import (Run, StepFailed, challenge, describe, manual_template,  # noqa: E402
                          openssl_crl_verify, openssl_verify, pem_to_der, pending_request_id, scepd,
                          template_url, wait_for)

# what scepreq's CLI uses by default
KEY_USAGE = {"digital_signature", "key_encipherment"}
EKU = ["1.3.6.1.5.5.7.3.2"]
IDENTITY_CN = "5d635756-72a8-4945-8b32-37e85681c964"
SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
# SANs of the enrollment; a renewal must ask for the same ones
SANS = dict(alt_dns="scepreq.example.com", alt_upn="scepreq@example.com", alt_sid_url=SID, alt_sid=SID)


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    url, data_dir, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)

    from importlib.metadata import version
    run = Run("scepreq", version("scepreq"))
    try:
        from scepreq.client import Client
        from scepreq.enums import PKIStatus
        from scepreq.signingrequest import SigningRequest
    except Exception as exc:
        run.fail("import", describe(exc))
        run.finish()

    client = Client(url)
    tag = uuid.uuid4().hex[:8]
    st = {}

    def write(name, data):
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def expect_success(res, what):
        if res.status != PKIStatus.SUCCESS:
            extra = getattr(res, "fail_info", None) or getattr(res, "transaction_id", None)
            raise StepFailed("%s: pkiStatus %s (%s)" % (what, res.status.name, extra))
        return res

    def issued(res, public_key_der, subject_native):
        expect_success(res, "CertRep")
        if not res.certificates:
            raise StepFailed("SUCCESS without certificates")
        cert = res.certificates[0]
        if cert.public_key.to_der() != public_key_der:
            raise StepFailed("certificates[0] does not hold the requested key")
        if dict(cert.subject.native) != dict(subject_native):
            raise StepFailed("certificates[0] has subject %s" % cert.subject.human_friendly)
        return cert

    def csr_subject(csr):
        return csr.to_crypto_csr()["certification_request_info"]["subject"]

    # 0. The scepreq command itself
    def cli_enroll():
        exe = os.path.join(os.path.dirname(sys.executable), "scepreq")
        subject = "CN=scepreq-cli-%s,O=interop" % tag
        cmd = [exe, "-u", url, "-s", subject, "-p", challenge(data_dir),
               "--output-cert", os.path.join(work, "cli.crt"), "--output-key", os.path.join(work, "cli.key"),
               "--output-csr", os.path.join(work, "cli.csr"), "--dns", "scepreq-cli.example.com"]
        p = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=40)
        if p.returncode != 0:
            lines = [ln for ln in (p.stderr + p.stdout).strip().splitlines() if ln.strip()]
            raise StepFailed("scepreq exited %d: %s" % (p.returncode, lines[-1] if lines else "(no output)"))
        openssl_verify(data_dir, os.path.join(work, "cli.crt"))
        return "cli.crt verified"
    run.step("cli-enroll", cli_enroll,
             known_bug=("conflicting option string: --url", "scepreq 0.1.1 defines --url twice (the server "
                        "URL and a URI SAN), so its command line cannot start"))

    # 1. GetCACaps, 2. GetCACert
    def getcacaps():
        caps = client.get_ca_capabilities()
        names = sorted(c.value for c in caps.caps)
        if not caps.is_post_supported():
            raise StepFailed("POSTPKIOperation not advertised (scepreq's GET path is broken): %s" % names)
        return " ".join(names)
    run.step("getcacaps", getcacaps)

    def getcacert():
        cas = client.get_ca_certs()
        ca_der = pem_to_der(os.path.join(data_dir, "ca.pem"))
        if cas.issuer is None or cas.issuer.to_der() != ca_der:
            raise StepFailed("the CA scepreq picked is not DATA_DIR/ca.pem")
        return "%d certificates; encrypts to %r, verifies replies with %r" % (
            len(cas.certificates), cas.recipient.subject.native.get("common_name"),
            cas.signer.subject.native.get("common_name"))
    run.step("getcacert", getcacert)

    # 3. Enrollment as the CLI does it: throw-away signer, new CSR key, SANs
    def enroll():
        pw = challenge(data_dir)
        dn = "CN=scepreq-%s,O=interop" % tag
        ident, ident_key = SigningRequest.generate_self_signed(cn=IDENTITY_CN, key_usage=KEY_USAGE)
        key = SigningRequest.generate_pair(size=2048)
        csr, key = SigningRequest.generate_csr(dn, KEY_USAGE, EKU, pw, key, **SANS)
        write("csr.pem", csr.to_pem())
        res = client.enrol(csr=csr, identity=ident, identity_private_key=ident_key)
        cert = issued(res, key.public_key.to_der(), csr_subject(csr).native)
        st.update(pw=pw, dn=dn, ident=ident, ident_key=ident_key, key=key, csr=csr, cert=cert)
        st["cert_path"] = write("cert.pem", cert.to_pem())
        write("key.pem", key.to_pem())
        return "serial %X, signed by a throw-away key" % cert.serial_number
    run.step("enroll", enroll, needs=["getcacaps", "getcacert"])

    run.step("verify", lambda: openssl_verify(data_dir, st["cert_path"]), needs=["enroll"])

    def sans():
        cert = st["cert"].to_asn1_certificate()
        found = {}
        for gn in (cert.subject_alt_name_value or []):
            found.setdefault(gn.name, []).append(gn.native)
        want = {"dns_name": "scepreq.example.com",
                "uniform_resource_identifier": "tag:microsoft.com,2022-09-14:sid:" + SID}
        for kind, value in want.items():
            if value not in found.get(kind, []):
                raise StepFailed("issued SANs %s lack %s %s" % (found, kind, value))
        upns = [v for v in found.get("other_name", []) if v.get("type_id") == "1.3.6.1.4.1.311.20.2.3"]
        if not upns:
            raise StepFailed("issued SANs %s lack the UPN" % found)
        sid_ext = any(e["extn_id"].dotted == "1.3.6.1.4.1.311.25.2"
                      for e in cert["tbs_certificate"]["extensions"])
        return "DNS, UPN and SID URI present; requested SID extension %s" % (
            "copied" if sid_ext else "not copied")
    run.step("sans", sans, needs=["enroll"])

    # 4. Renewal signed by the newest certificate, without a challenge (scepd lets a
    # certificate renew once: renewal.allow_repeated)
    def renew(password, name):
        csr, _ = SigningRequest.generate_csr(st["dn"], KEY_USAGE, EKU, password, st["key"], **SANS)
        signer = st.get("current", st["cert"])
        res = client.enrol(csr=csr, identity=signer, identity_private_key=st["key"])
        cert = issued(res, st["key"].public_key.to_der(), csr_subject(csr).native)
        if cert.serial_number == signer.serial_number:
            raise StepFailed("the renewal returned the old certificate")
        openssl_verify(data_dir, write(name, cert.to_pem()))
        st["current"] = cert
        return "serial %X" % cert.serial_number
    run.step("renew", lambda: renew(None, "renewed.pem"), needs=["verify"])
    run.step("renew-old-challenge", lambda: renew(st["pw"], "renewed-old-challenge.pem"), needs=["renew"])

    def refused_used_challenge():
        ident, ident_key = SigningRequest.generate_self_signed(cn=IDENTITY_CN, key_usage=KEY_USAGE)
        key = SigningRequest.generate_pair(size=2048)
        csr, key = SigningRequest.generate_csr("CN=scepreq-%s-again,O=interop" % tag, KEY_USAGE, EKU,
                                               st["pw"], key)
        res = client.enrol(csr=csr, identity=ident, identity_private_key=ident_key)
        if res.status != PKIStatus.FAILURE:
            raise StepFailed("expected FAILURE, got %s" % res.status.name)
        return "FAILURE failInfo %s" % res.fail_info
    run.step("refused-used-challenge", refused_used_challenge, needs=["enroll"])

    def certpoll():
        tid = hashlib.sha1(st["csr"].public_key.to_der()).hexdigest()
        res = client.poll(identity=st["ident"], identity_private_key=st["ident_key"],
                          subject=st["cert"].subject, transaction_id=tid)
        cert = issued(res, st["key"].public_key.to_der(), st["cert"].subject.native)
        return "serial %X, reply encrypted to the throw-away signer" % cert.serial_number
    run.step("certpoll", certpoll, needs=["enroll"])

    def getcert():
        serial = st["cert"].serial_number
        res = client.get_cert(identity=st["cert"], identity_private_key=st["key"], serial_number=serial)
        expect_success(res, "GetCert")
        if not res.certificates or res.certificates[0].serial_number != serial:
            raise StepFailed("GetCert did not return serial %X" % serial)
        return "serial %X" % serial
    run.step("getcert", getcert, needs=["enroll"])

    def getcrl():
        res = client.get_crl(identity=st["cert"], identity_private_key=st["key"],
                             serial_number=st["cert"].serial_number)
        expect_success(res, "GetCRL")
        if res.crl is None:
            raise StepFailed("SUCCESS without a CRL")
        openssl_crl_verify(data_dir, write("crl.pem", res.crl.to_pem()))
        return "CRL of %r" % res.crl.issuer.native.get("common_name")
    run.step("getcrl", getcrl, needs=["enroll"])

    template = manual_template(data_dir)
    if template is None:
        for name in ("pending-enroll", "pending-poll", "pending-approved-poll"):
            run.skip(name, 'no template with approval = "manual" in DATA_DIR/scepd.toml')
    else:
        mclient = Client(template_url(url, template))

        def pending_enroll():
            ident, ident_key = SigningRequest.generate_self_signed(cn=IDENTITY_CN, key_usage=KEY_USAGE)
            key = SigningRequest.generate_pair(size=2048)
            csr, key = SigningRequest.generate_csr("CN=scepreq-%s-pending,O=interop" % tag, KEY_USAGE, EKU,
                                                   challenge(data_dir), key)
            st.update(p_ident=ident, p_ident_key=ident_key, p_key=key, p_csr=csr,
                      p_tid=hashlib.sha1(csr.public_key.to_der()).hexdigest())
            res = mclient.enrol(csr=csr, identity=ident, identity_private_key=ident_key)
            if res.status != PKIStatus.PENDING:
                raise StepFailed("expected PENDING, got %s" % res.status.name)
            return "PENDING, transactionID %s" % res.transaction_id
        run.step("pending-enroll", pending_enroll, needs=["getcacert"])

        def pending_poll():
            res = mclient.poll(identity=st["p_ident"], identity_private_key=st["p_ident_key"],
                               subject=csr_subject(st["p_csr"]), transaction_id=st["p_tid"])
            if res.status != PKIStatus.PENDING:
                raise StepFailed("expected PENDING, got %s" % res.status.name)
            return "PENDING"

        def pending_approved_poll():
            scepd(data_dir, "request", "approve", pending_request_id(data_dir, st["p_tid"]))
            res = mclient.poll(identity=st["p_ident"], identity_private_key=st["p_ident_key"],
                               subject=csr_subject(st["p_csr"]), transaction_id=st["p_tid"])
            cert = issued(res, st["p_key"].public_key.to_der(), csr_subject(st["p_csr"]).native)
            openssl_verify(data_dir, write("approved.pem", cert.to_pem()))
            return "serial %X" % cert.serial_number

        started = "p_tid" in st
        run.step("pending-poll", pending_poll, needs=[] if started else ["pending-enroll"])
        run.step("pending-approved-poll", pending_approved_poll, needs=[] if started else ["pending-enroll"])

    def getnextcacert():
        if not client.get_ca_capabilities().is_rollover_supported():
            scepd(data_dir, "ca", "rollover", "--in-days", "30")
            # a running scepd notices the prepared CA within seconds
            if not wait_for(lambda: client.get_ca_capabilities().is_rollover_supported(), 20):
                raise StepFailed("GetNextCACert not advertised 20 s after `scepd ca rollover`")
        certs = client.rollover_certificate()
        next_der = pem_to_der(os.path.join(data_dir, "next", "ca.pem"))
        if not any(c.to_der() == next_der for c in certs):
            raise StepFailed("the answer does not hold DATA_DIR/next/ca.pem")
        return "%d certificates" % len(certs)
    run.step("getnextcacert", getnextcacert, needs=["getcacert"],
             known_bug=("encoded_data must be a byte string", "scepreq hands a Certificate object to "
                        "Certificate.from_der, which wants DER (scepreq/client.py)"))

    run.finish()


if __name__ == "__main__":
    main()
