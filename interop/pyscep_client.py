"""Drive scepd with pyscep (PyPI "PyScep"), through its public Python API.

usage: PYTHON interop/pyscep_client.py URL DATA_DIR WORK_DIR

URL is the SCEP URL (http://127.0.0.1:PORT/certsrv/mscep/mscep.dll), DATA_DIR
scepd's data directory (for one-time challenges, ca.pem, pending approvals
and a CA rollover), WORK_DIR a scratch directory. $SCEPD names the scepd
binary; SCEPD_KEY_PASSPHRASE must be set.

Steps, in order: GetCACaps, GetCACert, enrollment (PKCSReq signed by a
self-signed certificate over the CSR key, with a one-time challenge), openssl
verify, renewal signed by the issued certificate without a challenge, renewal
still carrying the used challenge, renewal with a new key, a second
enrollment with the used challenge (must be refused with FAILURE), CertPoll
of the issued request, GetCert, GetCRL, PENDING and polling (when
DATA_DIR/scepd.toml has a template with approval = "manual"; otherwise
SKIP), and GetNextCACert (running `scepd ca rollover` first when no next CA
is prepared).

pyscep sends PKCSReq for renewals too: its API has no RenewalReq.
"""
import hashlib
import os
import sys
import uuid
import warnings

warnings.simplefilter("ignore")  # pyscep imports TripleDES from its deprecated place

from drivercommon import (Run, StepFailed, challenge, describe, manual_template, openssl_crl_verify,  # noqa: E402
                          openssl_verify, pem_to_der, pending_request_id, scepd, template_url, wait_for)

KEY_USAGE = {"digital_signature", "key_encipherment"}


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    url, data_dir, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)

    from importlib.metadata import version
    run = Run("pyscep", version("PyScep"))
    try:
        from scep import Client
        from scep.Client import PKIStatus, SigningRequest
    except Exception as exc:
        run.fail("import", describe(exc))
        run.finish()

    client = Client.Client(url)
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

    def issued(res, public_key_der, cn):
        expect_success(res, "CertRep")
        if not res.certificates:
            raise StepFailed("SUCCESS without certificates")
        cert = res.certificates[0]
        if cert.public_key.to_der() != public_key_der:
            raise StepFailed("certificates[0] does not hold the requested key")
        got_cn = cert.subject.native.get("common_name")
        if got_cn != cn:
            raise StepFailed("certificates[0] has CN %r, asked for %r" % (got_cn, cn))
        return cert

    # 1. GetCACaps
    def getcacaps():
        caps = client.get_ca_capabilities()
        st["caps"] = caps
        names = sorted(c.value for c in caps.caps)
        if not caps.is_post_supported():
            raise StepFailed("POSTPKIOperation not advertised (pyscep's GET path is broken): %s" % names)
        return " ".join(names)
    run.step("getcacaps", getcacaps)

    # 2. GetCACert
    def getcacert():
        cas = client.get_ca_certs()  # also checks the RA certificates against the CA
        st["cas"] = cas
        ca_der = pem_to_der(os.path.join(data_dir, "ca.pem"))
        if cas.issuer is None or cas.issuer.to_der() != ca_der:
            raise StepFailed("the CA pyscep picked is not DATA_DIR/ca.pem")
        return "%d certificates; encrypts to %r, verifies replies with %r" % (
            len(cas.certificates), cas.recipient.subject.native.get("common_name"),
            cas.signer.subject.native.get("common_name"))
    run.step("getcacert", getcacert)

    # 3. Enrollment with a one-time challenge
    def enroll():
        pw = challenge(data_dir)
        cn = "pyscep-%s" % tag
        ident, key = SigningRequest.generate_self_signed(cn=cn, key_usage=KEY_USAGE)
        csr, key = SigningRequest.generate_csr(cn=cn, key_usage=KEY_USAGE, password=pw, private_key=key)
        res = client.enrol(csr=csr, identity=ident, identity_private_key=key)
        cert = issued(res, key.public_key.to_der(), cn)
        st.update(pw=pw, cn=cn, ident=ident, key=key, csr=csr, cert=cert)
        st["cert_path"] = write("cert.pem", cert.to_pem())
        write("key.pem", key.to_pem())
        return "serial %X" % cert.serial_number
    run.step("enroll", enroll, needs=["getcacaps", "getcacert"])

    # 4. openssl verify
    run.step("verify", lambda: openssl_verify(data_dir, st["cert_path"]), needs=["enroll"])

    # 5. Renewal signed by the issued certificate, no challenge, same key. Each renewal
    # is signed by the newest certificate: scepd lets a certificate renew once
    # (renewal.allow_repeated).
    def renew():
        csr, _ = SigningRequest.generate_csr(cn=st["cn"], key_usage=KEY_USAGE, private_key=st["key"])
        res = client.enrol(csr=csr, identity=st["cert"], identity_private_key=st["key"])
        cert = issued(res, st["key"].public_key.to_der(), st["cn"])
        if cert.serial_number == st["cert"].serial_number:
            raise StepFailed("the renewal returned the old certificate")
        openssl_verify(data_dir, write("renewed.pem", cert.to_pem()))
        st["renewed"] = cert
        st["current"] = (cert, st["key"])
        return "serial %X" % cert.serial_number
    run.step("renew", renew, needs=["verify"])

    # 6. Renewal whose CSR still carries the used challenge
    def renew_old_challenge():
        csr, _ = SigningRequest.generate_csr(cn=st["cn"], key_usage=KEY_USAGE, password=st["pw"],
                                             private_key=st["key"])
        signer, signer_key = st["current"]
        res = client.enrol(csr=csr, identity=signer, identity_private_key=signer_key)
        cert = issued(res, st["key"].public_key.to_der(), st["cn"])
        openssl_verify(data_dir, write("renewed-old-challenge.pem", cert.to_pem()))
        st["current"] = (cert, st["key"])
        return "serial %X" % cert.serial_number
    run.step("renew-old-challenge", renew_old_challenge, needs=["renew"])

    # 7. Renewal with a new key, signed by the current certificate and its key
    def renew_new_key():
        new_key = SigningRequest.generate_pair()
        csr, _ = SigningRequest.generate_csr(cn=st["cn"], key_usage=KEY_USAGE, private_key=new_key)
        signer, signer_key = st["current"]
        res = client.enrol(csr=csr, identity=signer, identity_private_key=signer_key)
        cert = issued(res, new_key.public_key.to_der(), st["cn"])
        openssl_verify(data_dir, write("renewed-new-key.pem", cert.to_pem()))
        st["current"] = (cert, new_key)
        return "serial %X" % cert.serial_number
    run.step("renew-new-key", renew_new_key, needs=["renew-old-challenge"])

    # 8. A new enrollment with the used challenge must be refused
    def refused_used_challenge():
        cn = "pyscep-%s-again" % tag
        ident, key = SigningRequest.generate_self_signed(cn=cn, key_usage=KEY_USAGE)
        csr, key = SigningRequest.generate_csr(cn=cn, key_usage=KEY_USAGE, password=st["pw"], private_key=key)
        res = client.enrol(csr=csr, identity=ident, identity_private_key=key)
        if res.status != PKIStatus.FAILURE:
            raise StepFailed("expected FAILURE, got %s" % res.status.name)
        return "FAILURE failInfo %s" % res.fail_info
    run.step("refused-used-challenge", refused_used_challenge, needs=["enroll"])

    # 9. CertPoll (GetCertInitial) of the request already issued
    def certpoll():
        # pyscep's transactionID: hex SHA-1 of the CSR's SubjectPublicKeyInfo
        tid = hashlib.sha1(st["csr"].public_key.to_der()).hexdigest()
        res = client.poll(identity=st["ident"], identity_private_key=st["key"],
                          subject=st["cert"].subject, transaction_id=tid)
        cert = issued(res, st["key"].public_key.to_der(), st["cn"])
        return "serial %X" % cert.serial_number
    run.step("certpoll", certpoll, needs=["enroll"])

    # 10. GetCert
    def getcert():
        serial = st["cert"].serial_number
        res = client.get_cert(identity=st["cert"], identity_private_key=st["key"], serial_number=serial)
        expect_success(res, "GetCert")
        if not res.certificates or res.certificates[0].serial_number != serial:
            raise StepFailed("GetCert did not return serial %X" % serial)
        return "serial %X" % serial
    run.step("getcert", getcert, needs=["enroll"])

    # 11. GetCRL
    def getcrl():
        res = client.get_crl(identity=st["cert"], identity_private_key=st["key"],
                             serial_number=st["cert"].serial_number)
        expect_success(res, "GetCRL")
        if res.crl is None:
            raise StepFailed("SUCCESS without a CRL")
        path = write("crl.pem", res.crl.to_pem())
        openssl_crl_verify(data_dir, path)
        return "CRL of %r, %d revoked" % (res.crl.issuer.native.get("common_name"),
                                          len(res.crl.revoked_certificates))
    run.step("getcrl", getcrl, needs=["enroll"])

    # 12. PENDING, polling while pending, approval, polling again
    template = manual_template(data_dir)
    if template is None:
        for name in ("pending-enroll", "pending-poll", "pending-approved-poll"):
            run.skip(name, 'no template with approval = "manual" in DATA_DIR/scepd.toml')
    else:
        mclient = Client.Client(template_url(url, template))

        def pending_enroll():
            cn = "pyscep-%s-pending" % tag
            ident, key = SigningRequest.generate_self_signed(cn=cn, key_usage=KEY_USAGE)
            csr, key = SigningRequest.generate_csr(cn=cn, key_usage=KEY_USAGE, password=challenge(data_dir),
                                                   private_key=key)
            st.update(p_cn=cn, p_ident=ident, p_key=key, p_csr=csr,
                      p_tid=hashlib.sha1(csr.public_key.to_der()).hexdigest())
            res = mclient.enrol(csr=csr, identity=ident, identity_private_key=key)
            if res.status != PKIStatus.PENDING:
                raise StepFailed("expected PENDING, got %s" % res.status.name)
            return "PENDING, transactionID %s" % res.transaction_id
        run.step("pending-enroll", pending_enroll, needs=["getcacert"])

        def subject():
            return st["p_csr"].to_crypto_csr()["certification_request_info"]["subject"]

        def pending_poll():
            res = mclient.poll(identity=st["p_ident"], identity_private_key=st["p_key"],
                               subject=subject(), transaction_id=st["p_tid"])
            if res.status != PKIStatus.PENDING:
                raise StepFailed("expected PENDING, got %s" % res.status.name)
            return "PENDING"

        def pending_approved_poll():
            scepd(data_dir, "request", "approve", pending_request_id(data_dir, st["p_tid"]))
            res = mclient.poll(identity=st["p_ident"], identity_private_key=st["p_key"],
                               subject=subject(), transaction_id=st["p_tid"])
            cert = issued(res, st["p_key"].public_key.to_der(), st["p_cn"])
            openssl_verify(data_dir, write("approved.pem", cert.to_pem()))
            return "serial %X" % cert.serial_number

        # the request reaches scepd even when pyscep cannot read the answer
        started = "p_tid" in st
        run.step("pending-poll", pending_poll, needs=[] if started else ["pending-enroll"])
        run.step("pending-approved-poll", pending_approved_poll, needs=[] if started else ["pending-enroll"])

    # 13. GetNextCACert (a rollover is prepared first when none is)
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
             known_bug=("InvalidSignature", "pyscep verifies GetNextCACert with the RA signing certificate, "
                        "not the current CA that signs it (RFC 8894 section 3.5.2)"))

    run.finish()


if __name__ == "__main__":
    main()
