//! The built-in CA: the CA certificate and key, the two RA certificates laid out as
//! NDES does (signing: digitalSignature; encryption: keyEncipherment), earlier
//! generations kept for renewals, CRLs and clients with old certificates, a prepared
//! next generation for rollover, and issuance. No store, no HTTP.
//!
//! Data directory layout: `ca`, `ra-sign`, `ra-encrypt` (`.pem` + encrypted `.key`),
//! `secret.key`; `previous/ca-CAID.*` and `previous/ra-SERIAL.*`; `next/` with the
//! same three pairs and `activate-at` (unix seconds).

mod keyfile;
pub mod rollover;

use std::fs;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use der::{Decode, Encode};
use scep::crypto::{KeyType, PrivateKey, Signer};
use scep::csr::Csr;
use scep::x509::{self, CertTemplate};
use x509_cert::{
    Certificate,
    ext::pkix::{
        CrlDistributionPoints, KeyUsages,
        crl::dp::DistributionPoint,
        name::{DistributionPointName, GeneralName},
    },
    name::Name,
};
use zeroize::Zeroizing;

pub use keyfile::{Passphrase, check_private, write_private};

use crate::templates::Template;

/// File names inside the data directory.
pub mod files {
    /// CA certificate (PEM).
    pub const CA_CERT: &str = "ca.pem";
    /// CA key (encrypted PKCS#8 PEM).
    pub const CA_KEY: &str = "ca.key";
    /// Generated key passphrase (0600), when none was given.
    pub const PASSPHRASE: &str = "key-passphrase";
    /// Directory of earlier generations.
    pub const PREVIOUS: &str = "previous";
    /// Directory of the prepared next generation.
    pub const NEXT: &str = "next";
    /// In `next/`: when it takes over, unix seconds.
    pub const ACTIVATE_AT: &str = "activate-at";
}

/// A certificate with its private key.
pub struct KeyedCert {
    /// The certificate.
    pub cert: Certificate,
    /// Its key.
    pub key: PrivateKey,
}

impl KeyedCert {
    /// Short id of a CA certificate: the first 16 hex digits of its SHA-256.
    pub fn id(&self) -> String {
        ca_id(&self.cert)
    }

    /// End of validity.
    pub fn not_after(&self) -> SystemTime {
        self.cert.tbs_certificate().validity().not_after.to_system_time()
    }
}

/// Short id of a CA certificate: the first 16 hex digits of its SHA-256.
pub fn ca_id(cert: &Certificate) -> String {
    let h = hex::encode(scep::attr::DigestAlg::Sha256.digest(&cert.to_der().unwrap_or_default()));
    h.get(..16).unwrap_or(&h).to_owned()
}

/// A prepared next generation.
pub struct Next {
    /// The next CA.
    pub ca: KeyedCert,
    /// Its RA signing certificate.
    pub ra_sign: KeyedCert,
    /// Its RA encryption certificate.
    pub ra_encrypt: KeyedCert,
    /// When it takes over.
    pub activate_at: SystemTime,
}

/// Parameters of `scepd init`.
#[derive(Clone, Debug)]
pub struct InitParams {
    /// CA subject.
    pub subject: Name,
    /// Key type of the CA (RA keys are RSA-2048: clients encrypt to them).
    pub key_type: KeyType,
    /// CA validity.
    pub ca_validity: Duration,
    /// What the RA certificates get.
    pub ra: RaProfile,
}

/// What RA certificates get besides their keys.
#[derive(Clone, Copy, Debug)]
pub struct RaProfile {
    /// Validity.
    pub validity: Duration,
    /// The Certificate Request Agent EKU (1.3.6.1.4.1.311.20.2.1) that NDES's RA
    /// templates (CEP Encryption, Exchange Enrollment Agent (Offline request)) give.
    pub request_agent_eku: bool,
}

/// The CA and RA material in memory.
pub struct Ca {
    /// The CA.
    pub ca: KeyedCert,
    /// RA signing certificate (digitalSignature): signs CertReps.
    pub ra_sign: KeyedCert,
    /// RA encryption certificate (keyEncipherment): clients encrypt to it.
    pub ra_encrypt: KeyedCert,
    /// Earlier CAs, newest first: their certificates still renew and get CRLs.
    pub previous: Vec<KeyedCert>,
    /// Earlier RA encryption certificates: clients that cached them still encrypt to them.
    pub previous_ra: Vec<KeyedCert>,
    /// The prepared next generation.
    pub next: Option<Next>,
    secret: Zeroizing<Vec<u8>>,
}

impl Ca {
    /// Create the CA and the two RA certificates and write them to `dir`.
    pub fn create(dir: &Path, params: &InitParams, pass: &Passphrase) -> anyhow::Result<Self> {
        let now = SystemTime::now();
        let ca = new_ca(&params.subject, params.key_type, now, params.ca_validity)?;
        let (ra_sign, ra_encrypt) = new_ras(&ca, now, params.ra)?;
        for (kc, name) in [(&ca, "ca"), (&ra_sign, "ra-sign"), (&ra_encrypt, "ra-encrypt")] {
            keyfile::save(dir, name, kc, pass)?;
        }
        // The server secret: random key material, encrypted like the keys, never rotated,
        // so that challenge hashes and the single password survive CA rollover.
        let secret_key = PrivateKey::generate(KeyType::EcP256)?;
        keyfile::save_key(dir, "secret", &secret_key, pass)?;
        Ok(Ca {
            ca,
            ra_sign,
            ra_encrypt,
            previous: vec![],
            previous_ra: vec![],
            next: None,
            secret: Zeroizing::new(secret_key.pkcs8_der().to_vec()),
        })
    }

    /// Load from `dir`, decrypting the keys with `pass`.
    pub fn load(dir: &Path, pass: &Passphrase) -> anyhow::Result<Self> {
        let ca = keyfile::load(dir, "ca", pass)?;
        let ra_sign = keyfile::load(dir, "ra-sign", pass)?;
        let ra_encrypt = keyfile::load(dir, "ra-encrypt", pass)?;
        if !ra_encrypt.key.can_decrypt() {
            bail!("the RA encryption key must be RSA");
        }
        let secret = keyfile::load_key(dir, "secret", pass)?;
        let mut previous = Vec::new();
        let mut previous_ra = Vec::new();
        let prev_dir = dir.join(files::PREVIOUS);
        if prev_dir.is_dir() {
            let mut names: Vec<String> = fs::read_dir(&prev_dir)?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(".pem").map(str::to_owned))
                .collect();
            names.sort();
            for n in names {
                let kc = keyfile::load(&prev_dir, &n, pass)?;
                if n.starts_with("ca-") { previous.push(kc) } else { previous_ra.push(kc) }
            }
            previous.sort_by_key(|k| std::cmp::Reverse(k.not_after()));
        }
        let next_dir = dir.join(files::NEXT);
        let next = if next_dir.join(files::ACTIVATE_AT).exists() {
            let at: u64 = fs::read_to_string(next_dir.join(files::ACTIVATE_AT))?
                .trim()
                .parse()
                .with_context(|| format!("{} is not a unix time", next_dir.join(files::ACTIVATE_AT).display()))?;
            Some(Next {
                ca: keyfile::load(&next_dir, "ca", pass)?,
                ra_sign: keyfile::load(&next_dir, "ra-sign", pass)?,
                ra_encrypt: keyfile::load(&next_dir, "ra-encrypt", pass)?,
                activate_at: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            })
        } else {
            None
        };
        Ok(Ca {
            ca,
            ra_sign,
            ra_encrypt,
            previous,
            previous_ra,
            next,
            secret: Zeroizing::new(secret.pkcs8_der().to_vec()),
        })
    }

    /// A secret for keyed hashes (challenges), the single password's encryption and
    /// implicit rejection: every instance sharing the data files shares it.
    pub fn secret(&self, label: &str) -> [u8; 32] {
        scep::crypto::hmac_sha256(&self.secret[..], label.as_bytes())
    }

    /// The current CA and the earlier ones, newest first.
    pub fn cas(&self) -> impl Iterator<Item = &KeyedCert> {
        std::iter::once(&self.ca).chain(self.previous.iter())
    }

    /// The CA (current or earlier) whose key signed `cert`.
    pub fn issuer_of(&self, cert: &Certificate) -> Option<&KeyedCert> {
        self.cas().find(|ca| {
            cert.tbs_certificate().issuer() == ca.cert.tbs_certificate().subject()
                && x509::verify_issued_by(cert, &ca.cert).is_ok()
        })
    }

    /// A CA by id.
    pub fn by_id(&self, id: &str) -> Option<&KeyedCert> {
        self.cas().find(|c| c.id() == id)
    }

    /// Sign a certificate for `csr` under `template`; with `crl_base`, name
    /// `crl_base/crl/CAID.crl` as its CRL distribution point.
    pub fn issue(
        &self,
        csr: &Csr,
        template: &Template,
        now: SystemTime,
        crl_base: Option<&str>,
    ) -> scep::Result<Certificate> {
        let mut extensions = vec![x509::basic_constraints(false)?];
        extensions.push(x509::extension(&template.key_usage_for(csr), true)?);
        if !template.extended_key_usage.is_empty() {
            extensions.push(x509::extended_key_usage(template.extended_key_usage.clone())?);
        }
        // The SANs as policy saw them, re-encoded (the CSR's own bytes are never copied);
        // critical as requested, or when the subject is empty (RFC 5280 4.2.1.6).
        if let Some(san) = csr.subject_alt_name() {
            let requested_critical = csr
                .extensions()
                .iter()
                .any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME && e.critical);
            let critical = requested_critical || csr.subject().is_empty();
            extensions.push(x509::extension(&san, critical)?);
        }
        if let Some(base) = crl_base {
            let url = format!("{}/crl/{}.crl", base.trim_end_matches('/'), self.ca.id());
            let dp = DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(&url)?),
                ])),
                reasons: None,
                crl_issuer: None,
            };
            extensions.push(x509::extension(&CrlDistributionPoints(vec![dp]), false)?);
        }
        let not_after = (now + template.validity_for(csr)).min(self.ca.not_after());
        x509::issue(
            &CertTemplate {
                subject: csr.subject().clone(),
                serial: x509::random_serial()?,
                not_before: now - Duration::from_secs(60),
                not_after,
                extensions,
            },
            csr.public_key(),
            Some(&self.ca.cert),
            &self.ca.key,
        )
    }

    /// A TLS server certificate for `names` (DNS names or IP addresses), from this CA,
    /// with a fresh P-256 key: the chain (server, CA) and the key.
    pub fn issue_tls(&self, names: &[String], now: SystemTime) -> anyhow::Result<(Vec<Certificate>, PrivateKey)> {
        use x509_cert::ext::pkix::SubjectAltName;
        let key = PrivateKey::generate(KeyType::EcP256)?;
        let mut sans = Vec::new();
        for n in names {
            sans.push(match n.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(a)) => {
                    GeneralName::IpAddress(der::asn1::OctetString::new(a.octets().to_vec())?)
                }
                Ok(std::net::IpAddr::V6(a)) => {
                    GeneralName::IpAddress(der::asn1::OctetString::new(a.octets().to_vec())?)
                }
                Err(_) => {
                    GeneralName::DnsName(der::asn1::Ia5String::new(n).with_context(|| format!("tls name {n:?}"))?)
                }
            });
        }
        let first = names.first().context("[tls] names is empty")?;
        let subject = Name::from_str(&format!("CN={first}")).with_context(|| format!("tls name {first:?}"))?;
        let cert = x509::issue(
            &CertTemplate {
                subject,
                serial: x509::random_serial()?,
                not_before: now - Duration::from_secs(300),
                not_after: (now + x509::days(90)).min(self.ca.not_after()),
                extensions: vec![
                    x509::basic_constraints(false)?,
                    x509::key_usage(KeyUsages::DigitalSignature)?,
                    x509::extended_key_usage(vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH])?,
                    x509::subject_alt_name(SubjectAltName(sans))?,
                ],
            },
            &key.public_key(),
            Some(&self.ca.cert),
            &self.ca.key,
        )?;
        Ok((vec![cert, self.ca.cert.clone()], key))
    }
}

/// A CA for the policy tests, in memory: generated once per test process (key
/// generation is what costs), then copied key by key.
#[cfg(test)]
pub(crate) fn test_ca() -> Ca {
    static MATERIAL: std::sync::OnceLock<Vec<(Certificate, Vec<u8>)>> = std::sync::OnceLock::new();
    let m = MATERIAL.get_or_init(|| {
        let now = SystemTime::now();
        let subject = Name::from_str("CN=Policy Test CA,O=scepd").expect("subject");
        let ca = new_ca(&subject, KeyType::EcP256, now, x509::days(3650)).expect("CA");
        let ra = RaProfile { validity: x509::days(365), request_agent_eku: false };
        let (sign, encrypt) = new_ras(&ca, now, ra).expect("RAs");
        let secret = PrivateKey::generate(KeyType::EcP256).expect("secret");
        [&ca, &sign, &encrypt]
            .into_iter()
            .map(|k| (k.cert.clone(), k.key.pkcs8_der().to_vec()))
            .chain([(ca.cert.clone(), secret.pkcs8_der().to_vec())])
            .collect()
    });
    let kc = |i: usize| KeyedCert { cert: m[i].0.clone(), key: PrivateKey::from_pkcs8_der(&m[i].1).expect("key") };
    Ca {
        ca: kc(0),
        ra_sign: kc(1),
        ra_encrypt: kc(2),
        previous: vec![],
        previous_ra: vec![],
        next: None,
        secret: Zeroizing::new(m[3].1.clone()),
    }
}

/// A self-signed CA.
fn new_ca(subject: &Name, key_type: KeyType, now: SystemTime, validity: Duration) -> anyhow::Result<KeyedCert> {
    let key = PrivateKey::generate(key_type)?;
    let cert = x509::issue(
        &CertTemplate {
            subject: subject.clone(),
            serial: x509::random_serial()?,
            not_before: now - Duration::from_secs(300),
            not_after: now + validity,
            extensions: vec![
                x509::basic_constraints(true)?,
                x509::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature)?,
            ],
        },
        &key.public_key(),
        None,
        &key,
    )?;
    Ok(KeyedCert { cert, key })
}

/// The RA signing and encryption certificates of `ca`.
fn new_ras(ca: &KeyedCert, now: SystemTime, ra: RaProfile) -> anyhow::Result<(KeyedCert, KeyedCert)> {
    let org = ra_name_suffix(ca.cert.tbs_certificate().subject());
    let sign = issue_ra(ca, &format!("CN=SCEP RA Signing{org}"), KeyUsages::DigitalSignature.into(), now, ra)?;
    let encrypt = issue_ra(ca, &format!("CN=SCEP RA Encryption{org}"), KeyUsages::KeyEncipherment.into(), now, ra)?;
    Ok((sign, encrypt))
}

/// szOID_ENROLLMENT_AGENT, "Certificate Request Agent".
const CERTIFICATE_REQUEST_AGENT: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.1");

fn issue_ra(
    ca: &KeyedCert,
    subject: &str,
    ku: flagset::FlagSet<KeyUsages>,
    now: SystemTime,
    ra: RaProfile,
) -> anyhow::Result<KeyedCert> {
    let mut extensions = vec![x509::basic_constraints(false)?, x509::key_usage(ku)?];
    if ra.request_agent_eku {
        extensions.push(x509::extended_key_usage(vec![CERTIFICATE_REQUEST_AGENT])?);
    }
    // RA keys are RSA whatever the CA's type: clients encrypt content keys to them.
    let key = PrivateKey::generate(KeyType::Rsa2048)?;
    let cert = x509::issue(
        &CertTemplate {
            subject: Name::from_str(subject).context("RA subject")?,
            serial: x509::random_serial()?,
            not_before: now - Duration::from_secs(300),
            not_after: (now + ra.validity).min(ca.not_after()),
            extensions,
        },
        &key.public_key(),
        Some(&ca.cert),
        &ca.key,
    )?;
    Ok(KeyedCert { cert, key })
}

/// `,O=...` (and `,C=...`) of the CA subject, for the RA subjects.
fn ra_name_suffix(ca: &Name) -> String {
    let s = ca.to_string();
    s.split(',')
        .filter(|p| {
            let p = p.trim_start();
            p.starts_with("O=") || p.starts_with("C=")
        })
        .map(|p| format!(",{}", p.trim_start()))
        .collect()
}

/// The key type of an existing key, for a successor of the same kind.
fn key_type_of(key: &PrivateKey) -> KeyType {
    key.key_type()
}

/// The first certificate of a PEM file.
fn cert_from_pem_file(path: &Path) -> anyhow::Result<Certificate> {
    let pem = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Certificate::load_pem_chain(&pem)
        .ok()
        .and_then(|v| v.into_iter().next())
        .with_context(|| format!("{} holds no certificate", path.display()))
}

/// DER of a certificate (infallible for certificates we hold).
pub fn der_of(cert: &Certificate) -> Vec<u8> {
    cert.to_der().unwrap_or_default()
}

/// Parse a certificate from DER.
pub fn cert_from_der(der: &[u8]) -> Option<Certificate> {
    Certificate::from_der(der).ok()
}
