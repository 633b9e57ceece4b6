//! `scep check`: the test plan an admin runs against an NDES or SCEP server, each
//! step PASS, WARN (passed, with something to fix), FAIL or SKIP, with the reason.

use std::time::{Duration, SystemTime};

use scep::attr::MessageType;
use scep::caps::{Capabilities, Capability};
use scep::crypto::{KeyType, PrivateKey};
use serde::Serialize;
use x509_cert::Certificate;

use crate::admin;
use crate::client::{CaCerts, EnrollOptions, Enrolled, ScepClient, ScepError, random_transaction_id};
use crate::http::HttpClient;
use crate::inspect::{Role, Validity, validity_text};

/// RA or CA certificates expiring sooner than this are flagged.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Passed.
    Pass,
    /// Passed, but something deserves attention.
    Warn,
    /// Failed.
    Fail,
    /// Not run, with the reason.
    Skip,
}

/// One step of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Short name.
    pub name: &'static str,
    /// Outcome.
    pub status: Status,
    /// Why.
    pub detail: String,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// No step failed.
    pub passed: bool,
}

/// Where challenges come from.
#[derive(Clone)]
pub enum ChallengeSource {
    /// None given: steps that need one are skipped.
    None,
    /// A fixed challenge.
    Fixed(String),
    /// The NDES admin page with these credentials.
    AdminPage {
        /// Admin page URL.
        url: String,
        /// User, password and scheme.
        login: admin::Login,
    },
}

impl core::fmt::Debug for ChallengeSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChallengeSource::None => f.write_str("None"),
            ChallengeSource::Fixed(_) => f.write_str("Fixed(..)"),
            ChallengeSource::AdminPage { url, login } => write!(f, "AdminPage({url}, {})", login.user),
        }
    }
}

/// Run the plan against the SCEP `url`.
pub async fn run(url: &str, source: &ChallengeSource, timeout: Duration) -> Report {
    let http = HttpClient::new(timeout);
    let client = ScepClient::new(url).with_http(http.clone());
    let mut steps = Vec::new();
    let mut step = |name, (status, detail): (Status, String)| steps.push(Step { name, status, detail });

    step("info page", info_page(&http, url).await);

    let challenge: Result<(String, bool), String> = match source {
        ChallengeSource::None => {
            step("admin page", (Status::Skip, "no --admin-url given".into()));
            Err("no challenge: give --admin-url and --user, or --challenge".into())
        }
        ChallengeSource::Fixed(pw) => {
            step("admin page", (Status::Skip, "--challenge given instead of --admin-url".into()));
            Ok((pw.clone(), false))
        }
        ChallengeSource::AdminPage { url, login } => match admin::fetch(url, login, timeout).await {
            Ok(p) => {
                let mode = if p.reusable { "reusable (single-password mode)" } else { "one-time" };
                let thumb = p.thumbprint.as_deref().map(|t| format!(", CA thumbprint {t}")).unwrap_or_default();
                step(
                    "admin page",
                    (
                        Status::Pass,
                        format!("{} gave a {mode} challenge of {} characters{thumb}", p.scheme, p.password.len()),
                    ),
                );
                Ok((p.password, p.reusable))
            }
            Err(e) => {
                step("admin page", (Status::Fail, e.to_string()));
                Err("the admin page gave no challenge".into())
            }
        },
    };

    let caps = client.caps().await;
    step("GetCACaps", caps_step(&caps));
    let cas = client.ca_certs().await;
    step("GetCACert", ca_step(&cas));

    // Enrollment, then the certificate, renewal and a reused challenge.
    let (Ok(caps), Ok(cas)) = (caps, cas) else {
        for name in ["enrollment", "certificate", "renewal", "reused challenge"] {
            step(name, (Status::Skip, "GetCACaps or GetCACert failed".into()));
        }
        return report(steps);
    };
    let (pw, reusable) = match challenge {
        Ok(c) => c,
        Err(why) => {
            for name in ["enrollment", "certificate", "renewal", "reused challenge"] {
                step(name, (Status::Skip, why.clone()));
            }
            return report(steps);
        }
    };
    let key = match PrivateKey::generate(KeyType::Rsa2048) {
        Ok(k) => k,
        Err(e) => {
            step("enrollment", (Status::Fail, format!("cannot generate a key: {e}")));
            return report(steps);
        }
    };
    let subject = format!("CN=scep-check-{}", short_id());
    let mut opts = EnrollOptions::new(&subject).challenge(&pw);
    opts.max_wait = Duration::from_secs(60);
    opts.poll_interval = Duration::from_secs(2);
    let enrolled = client.enroll(&key, &opts).await;
    step("enrollment", enroll_step(&enrolled, &subject));
    let Ok(enrolled) = enrolled else {
        step("certificate", (Status::Skip, "no certificate was issued".into()));
        step("renewal", (Status::Skip, "no certificate to renew".into()));
        step("reused challenge", (Status::Skip, "the first use of the challenge failed".into()));
        return report(steps);
    };
    step("certificate", certificate_step(&enrolled, &key, &cas));

    if caps.has(Capability::Renewal) {
        step("renewal", renewal_step(&client, &enrolled, &key).await);
    } else {
        step("renewal", (Status::Skip, "GetCACaps does not offer Renewal".into()));
    }

    if reusable {
        step(
            "reused challenge",
            (Status::Skip, "the admin page says the password is reusable (single-password mode)".into()),
        );
    } else {
        step("reused challenge", reuse_step(&client, &pw, source).await);
    }
    report(steps)
}

fn report(steps: Vec<Step>) -> Report {
    let passed = steps.iter().all(|s| s.status != Status::Fail);
    Report { steps, passed }
}

async fn info_page(http: &HttpClient, url: &str) -> (Status, String) {
    match http.get(url, &[]).await {
        Ok(r) if r.status == 200 => {
            let text = admin::decode_body(&r.body);
            if text.contains("Network Device Enrollment Service") {
                (Status::Pass, "HTTP 200, the NDES information page".into())
            } else {
                (Status::Pass, format!("HTTP 200 ({} bytes)", r.body.len()))
            }
        }
        Ok(r) => (
            Status::Warn,
            format!(
                "HTTP {}: no information page (NDES answers 200 with an HTML page people open in a browser; other SCEP servers need not)",
                r.status
            ),
        ),
        Err(e) => (Status::Fail, format!("{e}: is the URL right and the server running?")),
    }
}

fn caps_step(caps: &Result<Capabilities, ScepError>) -> (Status, String) {
    let caps = match caps {
        Ok(c) => c,
        Err(e) => return (Status::Fail, e.to_string()),
    };
    if caps.0.is_empty() {
        return (
            Status::Warn,
            "no capabilities: clients will use DES and SHA-1 (RFC 8894 section 3.5.2); advertise AES and SHA-256"
                .into(),
        );
    }
    let list: Vec<&str> = caps.0.iter().map(|c| c.keyword()).collect();
    let mut warnings = Vec::new();
    if !caps.has(Capability::Aes) {
        warnings.push(if caps.has(Capability::Des3) {
            "AES missing: DES3 is the best cipher offered"
        } else {
            "neither AES nor DES3: clients fall back to single DES"
        });
    }
    if !caps.has(Capability::Sha256) && !caps.has(Capability::Sha512) {
        warnings.push(if caps.has(Capability::Sha1) {
            "SHA-256 missing: SHA-1 is the best digest offered"
        } else {
            "no digest offered: clients fall back to MD5"
        });
    }
    if !caps.has(Capability::PostPkiOperation) {
        warnings.push("POSTPKIOperation missing: several clients need POST");
    }
    if warnings.is_empty() {
        (Status::Pass, list.join(" "))
    } else {
        (Status::Warn, format!("{}; {}", warnings.join("; "), list.join(" ")))
    }
}

fn ca_step(cas: &Result<CaCerts, ScepError>) -> (Status, String) {
    let cas = match cas {
        Ok(c) => c,
        Err(e) => return (Status::Fail, e.to_string()),
    };
    let now = SystemTime::now();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut roles = Vec::new();
    for c in &cas.all {
        let role = Role::of(c);
        let name = c.tbs_certificate().subject().to_string();
        roles.push(format!("{} ({name})", role.label()));
        if scep::x509::cert_key_usage(c).is_none() {
            warns.push(format!("{name} has no KeyUsage extension (a known client crashes without one)"));
        }
        match Validity::of(c, now) {
            Validity::Expired => fails.push(format!("{name} has expired ({})", validity_text(c))),
            Validity::NotYetValid => fails.push(format!("{name} is not valid yet ({})", validity_text(c))),
            Validity::Valid(left) if left < EXPIRY_WARNING => {
                warns.push(format!("{name} expires in {} days", left.as_secs() / 86_400));
            }
            Validity::Valid(_) => {}
        }
        if role != Role::Ca && c != &cas.ca && scep::x509::verify_issued_by(c, &cas.ca).is_err() {
            fails.push(format!("{name} is not signed by the CA certificate"));
        }
    }
    let ras: Vec<Role> = cas.all.iter().map(Role::of).filter(|r| *r != Role::Ca).collect();
    if ras.is_empty() {
        warns.push("no RA certificates: the CA signs replies and decrypts requests itself".into());
    } else {
        if !ras.iter().any(|r| matches!(r, Role::RaEncryption | Role::RaSigningEncryption)) {
            fails.push("no RA certificate with keyEncipherment to encrypt requests to".into());
        }
        if !ras.iter().any(|r| matches!(r, Role::RaSigning | Role::RaSigningEncryption)) {
            fails.push("no RA certificate with digitalSignature to verify replies with".into());
        }
    }
    if cas.encryption.tbs_certificate().subject_public_key_info().algorithm.oid != scep::crypto::alg::RSA_ENCRYPTION {
        fails.push("the encryption certificate's key is not RSA: requests cannot be encrypted to it".into());
    }
    let expect_ct = if cas.all.len() == 1 {
        scep::operation::CONTENT_TYPE_CA_CERT
    } else {
        scep::operation::CONTENT_TYPE_CA_RA_CERT
    };
    if !cas.content_type.eq_ignore_ascii_case(expect_ct) {
        warns.push(format!("Content-Type {:?}, expected {expect_ct}", cas.content_type));
    }
    let summary = format!("{} certificate(s): {}", cas.all.len(), roles.join(", "));
    if !fails.is_empty() {
        (Status::Fail, format!("{}; {summary}", fails.join("; ")))
    } else if !warns.is_empty() {
        (Status::Warn, format!("{}; {summary}", warns.join("; ")))
    } else {
        (Status::Pass, summary)
    }
}

fn enroll_step(r: &Result<Enrolled, ScepError>, subject: &str) -> (Status, String) {
    match r {
        Ok(e) => (
            Status::Pass,
            format!(
                "{subject}: serial {} by {}, {:?}{}",
                serial(&e.certificate),
                if e.used_post { "POST" } else { "GET" },
                e.cipher,
                if e.polls > 0 { format!(", after {} CertPoll(s)", e.polls) } else { String::new() }
            ),
        ),
        Err(e) => (Status::Fail, e.to_string()),
    }
}

fn certificate_step(e: &Enrolled, key: &PrivateKey, cas: &CaCerts) -> (Status, String) {
    let tbs = e.certificate.tbs_certificate();
    if *tbs.subject_public_key_info() != scep::crypto::Signer::public_key(key) {
        return (Status::Fail, "the certificate is not for the key we sent".into());
    }
    if let Err(err) = scep::x509::verify_issued_by(&e.certificate, &cas.ca) {
        return (Status::Fail, format!("the certificate's signature does not verify with the CA's key: {err}"));
    }
    if tbs.issuer() != cas.ca.tbs_certificate().subject() {
        return (Status::Fail, "the certificate's issuer is not the CA's subject".into());
    }
    if !scep::x509::is_valid_at(&e.certificate, SystemTime::now()) {
        return (Status::Fail, format!("the certificate is not valid now ({})", validity_text(&e.certificate)));
    }
    (Status::Pass, format!("matches our key, chains to the CA, valid {}", validity_text(&e.certificate)))
}

async fn renewal_step(client: &ScepClient, e: &Enrolled, key: &PrivateKey) -> (Status, String) {
    let opts = match EnrollOptions::renewing(&e.certificate) {
        Ok(o) => o,
        Err(err) => return (Status::Fail, err.to_string()),
    };
    match client.renew(key, &e.certificate, key, &opts, MessageType::RenewalReq).await {
        Ok(r) if r.certificate == e.certificate => {
            (Status::Fail, "the renewal returned the old certificate instead of a new one".into())
        }
        Ok(r) => (Status::Pass, format!("RenewalReq signed by the new certificate: serial {}", serial(&r.certificate))),
        Err(err) => (Status::Fail, format!("RenewalReq signed by the issued certificate: {err}")),
    }
}

async fn reuse_step(client: &ScepClient, pw: &str, source: &ChallengeSource) -> (Status, String) {
    let key = match PrivateKey::generate(KeyType::Rsa2048) {
        Ok(k) => k,
        Err(e) => return (Status::Fail, format!("cannot generate a key: {e}")),
    };
    let mut opts = EnrollOptions::new(&format!("CN=scep-check-reuse-{}", short_id())).challenge(pw);
    opts.max_wait = Duration::from_secs(10);
    opts.poll_interval = Duration::from_secs(2);
    match client.enroll(&key, &opts).await {
        Err(ScepError::Failure { info, text }) => {
            let text = if text.is_empty() { String::new() } else { format!(": {text}") };
            (Status::Pass, format!("refused with FAILURE {info}{text}"))
        }
        Ok(_) => {
            let hint = match source {
                ChallengeSource::Fixed(_) => {
                    " (a fixed or single-password challenge is reusable by design: NDES one-time passwords are not)"
                }
                _ => "",
            };
            (Status::Fail, format!("the same challenge enrolled a second time{hint}"))
        }
        Err(ScepError::StillPending { .. }) => {
            (Status::Fail, "the second use of the challenge was left PENDING instead of refused".into())
        }
        Err(e) => (Status::Fail, format!("expected a SCEP FAILURE, got: {e}")),
    }
}

fn serial(c: &Certificate) -> String {
    hex::encode_upper(c.tbs_certificate().serial_number().as_bytes())
}

fn short_id() -> String {
    random_transaction_id().map(|t| t.chars().take(8).collect()).unwrap_or_else(|_| "0".into())
}

impl Report {
    /// One line a step, then the verdict.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for st in &self.steps {
            let tag = match st.status {
                Status::Pass => "PASS",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skip => "SKIP",
            };
            s.push_str(&format!("{tag}  {:<17} {}\n", st.name, st.detail));
        }
        let fails = self.steps.iter().filter(|s| s.status == Status::Fail).count();
        s.push_str(&if self.passed { "passed\n".to_owned() } else { format!("FAILED: {fails} step(s) failed\n") });
        s
    }
}
