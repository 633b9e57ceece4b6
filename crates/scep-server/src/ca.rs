//! The built-in CA: the CA certificate and key, the two RA certificates laid out as
//! NDES does (signing: digitalSignature; encryption: keyEncipherment), their files in
//! the data directory (keys encrypted at rest, PKCS#8 PBES2), and issuance.
//! No store, no HTTP.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use der::{Decode, Encode, EncodePem, pem::LineEnding};
use pkcs8::{EncryptedPrivateKeyInfoRef, SecretDocument};
use scep::crypto::{KeyType, PrivateKey, Signer};
use scep::csr::Csr;
use scep::x509::{self, CertTemplate};
use x509_cert::{
    Certificate,
    ext::{
        Extension,
        pkix::{KeyUsage, KeyUsages},
    },
    name::Name,
};
use zeroize::Zeroizing;

/// File names inside the data directory.
pub mod files {
    /// CA certificate (PEM).
    pub const CA_CERT: &str = "ca.pem";
    /// CA key (encrypted PKCS#8 PEM).
    pub const CA_KEY: &str = "ca.key";
    /// RA signing certificate.
    pub const RA_SIGN_CERT: &str = "ra-sign.pem";
    /// RA signing key.
    pub const RA_SIGN_KEY: &str = "ra-sign.key";
    /// RA encryption certificate.
    pub const RA_ENCRYPT_CERT: &str = "ra-encrypt.pem";
    /// RA encryption key.
    pub const RA_ENCRYPT_KEY: &str = "ra-encrypt.key";
    /// Generated key passphrase (0600), when none was given.
    pub const PASSPHRASE: &str = "key-passphrase";
}

/// The key passphrase: never from the command line.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl Passphrase {
    /// Wrap a passphrase.
    pub fn new(s: String) -> Self {
        Passphrase(Zeroizing::new(s))
    }

    /// Find the passphrase: `SCEPD_KEY_PASSPHRASE`, else the file given, else
    /// `DIR/key-passphrase`.
    pub fn locate(data_dir: &Path, file: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(p) = std::env::var("SCEPD_KEY_PASSPHRASE").ok().filter(|p| !p.is_empty()) {
            return Ok(Passphrase::new(p));
        }
        let path = file.map_or_else(|| data_dir.join(files::PASSPHRASE), Path::to_path_buf);
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "no key passphrase: set SCEPD_KEY_PASSPHRASE, or passphrase_file in scepd.toml, or keep {}",
                path.display()
            )
        })?;
        let p = text.trim_end_matches(['\r', '\n']).to_owned();
        if p.is_empty() {
            bail!("the passphrase file {} is empty", path.display());
        }
        Ok(Passphrase::new(p))
    }

    /// A fresh random passphrase written to `DIR/key-passphrase` with mode 0600.
    pub fn generate_into(data_dir: &Path) -> anyhow::Result<(Self, PathBuf)> {
        let p = hex::encode(scep::crypto::random_bytes(24)?);
        let path = data_dir.join(files::PASSPHRASE);
        write_private(&path, format!("{p}\n").as_bytes())?;
        Ok((Passphrase::new(p), path))
    }
}

/// Write a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
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
    /// RA certificates' validity.
    pub ra_validity: Duration,
}

/// A certificate with its private key.
pub struct KeyedCert {
    /// The certificate.
    pub cert: Certificate,
    /// Its key.
    pub key: PrivateKey,
}

/// The CA and RA material in memory.
pub struct Ca {
    /// The CA.
    pub ca: KeyedCert,
    /// RA signing certificate (digitalSignature): signs CertReps.
    pub ra_sign: KeyedCert,
    /// RA encryption certificate (keyEncipherment): clients encrypt to it.
    pub ra_encrypt: KeyedCert,
    secret: Zeroizing<[u8; 32]>,
}

impl Ca {
    /// Create the CA and the two RA certificates and write them to `dir`.
    pub fn create(dir: &Path, params: &InitParams, pass: &Passphrase) -> anyhow::Result<Self> {
        let now = SystemTime::now();
        let ca_key = PrivateKey::generate(params.key_type)?;
        let ca_cert = x509::issue(
            &CertTemplate {
                subject: params.subject.clone(),
                serial: x509::random_serial()?,
                not_before: now - Duration::from_secs(300),
                not_after: now + params.ca_validity,
                extensions: vec![
                    x509::basic_constraints(true)?,
                    x509::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature)?,
                ],
            },
            &ca_key.public_key(),
            None,
            &ca_key,
        )?;
        let ca = KeyedCert { cert: ca_cert, key: ca_key };
        let org = ra_name_suffix(&params.subject);
        let ra_sign = issue_ra(
            &ca,
            &format!("CN=SCEP RA Signing{org}"),
            KeyUsages::DigitalSignature.into(),
            now,
            params.ra_validity,
        )?;
        let ra_encrypt = issue_ra(
            &ca,
            &format!("CN=SCEP RA Encryption{org}"),
            KeyUsages::KeyEncipherment.into(),
            now,
            params.ra_validity,
        )?;
        for (kc, cert_file, key_file) in [
            (&ca, files::CA_CERT, files::CA_KEY),
            (&ra_sign, files::RA_SIGN_CERT, files::RA_SIGN_KEY),
            (&ra_encrypt, files::RA_ENCRYPT_CERT, files::RA_ENCRYPT_KEY),
        ] {
            fs::write(dir.join(cert_file), kc.cert.to_pem(LineEnding::LF)?)?;
            write_private(&dir.join(key_file), encrypt_key(&kc.key, pass)?.as_bytes())?;
        }
        let secret = derive_secret(&ca.key);
        Ok(Ca { ca, ra_sign, ra_encrypt, secret })
    }

    /// Load from `dir`, decrypting the keys with `pass`.
    pub fn load(dir: &Path, pass: &Passphrase) -> anyhow::Result<Self> {
        let load = |cert_file: &str, key_file: &str| -> anyhow::Result<KeyedCert> {
            let cert_path = dir.join(cert_file);
            let pem = fs::read(&cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?;
            let cert = Certificate::load_pem_chain(&pem)
                .ok()
                .and_then(|v| v.into_iter().next())
                .with_context(|| format!("{} holds no certificate", cert_path.display()))?;
            let key_path = dir.join(key_file);
            check_private(&key_path)?;
            let key = decrypt_key(
                &fs::read_to_string(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?,
                pass,
            )
            .with_context(|| format!("cannot decrypt {} (wrong passphrase?)", key_path.display()))?;
            if key.public_key() != *cert.tbs_certificate().subject_public_key_info() {
                bail!("{} does not belong to {}", key_path.display(), cert_path.display());
            }
            Ok(KeyedCert { cert, key })
        };
        let ca = load(files::CA_CERT, files::CA_KEY)?;
        let ra_sign = load(files::RA_SIGN_CERT, files::RA_SIGN_KEY)?;
        let ra_encrypt = load(files::RA_ENCRYPT_CERT, files::RA_ENCRYPT_KEY)?;
        if !ra_encrypt.key.can_decrypt() {
            bail!("the RA encryption key must be RSA");
        }
        let secret = derive_secret(&ca.key);
        Ok(Ca { ca, ra_sign, ra_encrypt, secret })
    }

    /// A secret for keyed hashes (challenges) and implicit rejection, derived from the
    /// CA key so that every instance sharing the keys shares it, and nothing more is
    /// stored.
    pub fn secret(&self, label: &str) -> [u8; 32] {
        scep::crypto::hmac_sha256(&self.secret[..], label.as_bytes())
    }

    /// Sign a certificate for `csr` under `profile`.
    pub fn issue(&self, csr: &Csr, profile: &Profile, now: SystemTime) -> scep::Result<Certificate> {
        let mut extensions = vec![x509::basic_constraints(false)?];
        let ku = profile.key_usage_for(csr);
        extensions.push(x509::extension(&ku, true)?);
        if !profile.extended_key_usage.is_empty() {
            extensions.push(x509::extended_key_usage(profile.extended_key_usage.clone())?);
        }
        if let Some(san) = csr.extensions().iter().find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        {
            extensions.push(Extension {
                extn_id: san.extn_id,
                critical: san.critical,
                extn_value: san.extn_value.clone(),
            });
        }
        let ca_not_after = self.ca.cert.tbs_certificate().validity().not_after.to_system_time();
        let not_after = (now + profile.validity).min(ca_not_after);
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
}

impl Ca {
    /// A TLS server certificate for `names` (DNS names or IP addresses), from this CA,
    /// with a fresh P-256 key: the chain (server, CA) and the key.
    pub fn issue_tls(&self, names: &[String], now: SystemTime) -> anyhow::Result<(Vec<Certificate>, PrivateKey)> {
        use x509_cert::ext::pkix::{SubjectAltName, name::GeneralName};
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
                not_after: (now + x509::days(90))
                    .min(self.ca.cert.tbs_certificate().validity().not_after.to_system_time()),
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

/// What an issued certificate gets (the default template; named templates build on it).
#[derive(Clone, Debug)]
pub struct Profile {
    /// Template name recorded with the certificate.
    pub name: String,
    /// Validity.
    pub validity: Duration,
    /// Extended key usages.
    pub extended_key_usage: Vec<const_oid::ObjectIdentifier>,
    /// Smallest RSA key accepted.
    pub min_rsa_bits: usize,
}

impl Profile {
    /// Key usage: what the CSR asks for within what suits the key type; without a
    /// request, digitalSignature plus keyEncipherment (RSA) or keyAgreement (EC).
    pub fn key_usage_for(&self, csr: &Csr) -> KeyUsage {
        let rsa = csr.public_key().algorithm.oid == scep::crypto::alg::RSA_ENCRYPTION;
        let allowed = if rsa {
            KeyUsages::DigitalSignature
                | KeyUsages::KeyEncipherment
                | KeyUsages::NonRepudiation
                | KeyUsages::DataEncipherment
        } else {
            KeyUsages::DigitalSignature | KeyUsages::KeyAgreement | KeyUsages::NonRepudiation
        };
        let requested = csr.key_usage().map(|k| k.0 & allowed).filter(|k| !k.is_empty());
        KeyUsage(requested.unwrap_or_else(|| {
            if rsa {
                KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
            } else {
                KeyUsages::DigitalSignature | KeyUsages::KeyAgreement
            }
        }))
    }
}

fn issue_ra(
    ca: &KeyedCert,
    subject: &str,
    ku: flagset::FlagSet<KeyUsages>,
    now: SystemTime,
    validity: Duration,
) -> anyhow::Result<KeyedCert> {
    // RA keys are RSA whatever the CA's type: clients encrypt content keys to them.
    let key = PrivateKey::generate(KeyType::Rsa2048)?;
    let cert = x509::issue(
        &CertTemplate {
            subject: Name::from_str(subject).context("RA subject")?,
            serial: x509::random_serial()?,
            not_before: now - Duration::from_secs(300),
            not_after: (now + validity).min(ca.cert.tbs_certificate().validity().not_after.to_system_time()),
            extensions: vec![x509::basic_constraints(false)?, x509::key_usage(ku)?],
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

fn derive_secret(ca_key: &PrivateKey) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(scep::crypto::hmac_sha256(ca_key.pkcs8_der(), b"scepd server secret v1"))
}

fn encrypt_key(key: &PrivateKey, pass: &Passphrase) -> anyhow::Result<String> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(key.pkcs8_der()).map_err(|e| anyhow::anyhow!("PKCS#8: {e}"))?;
    // PBES2 with scrypt and AES-256-CBC (pkcs8's default).
    let doc = info.encrypt(pass.0.as_bytes()).map_err(|e| anyhow::anyhow!("cannot encrypt a private key: {e}"))?;
    Ok(doc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF).map_err(|e| anyhow::anyhow!("PEM: {e}"))?.to_string())
}

fn decrypt_key(pem: &str, pass: &Passphrase) -> anyhow::Result<PrivateKey> {
    let (label, doc) = SecretDocument::from_pem(pem).map_err(|e| anyhow::anyhow!("not a PEM key: {e}"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        bail!("the key is not encrypted (label {label}); keys must be encrypted at rest");
    }
    let enc = EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let der = enc.decrypt(pass.0.as_bytes()).map_err(|_| anyhow::anyhow!("decryption failed"))?;
    Ok(PrivateKey::from_pkcs8_der(der.as_bytes())?)
}

/// Refuse key files that others can read.
fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o}): run chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

/// DER of a certificate (infallible for certificates we hold).
pub fn der_of(cert: &Certificate) -> Vec<u8> {
    cert.to_der().unwrap_or_default()
}

/// Parse a certificate from DER.
pub fn cert_from_der(der: &[u8]) -> Option<Certificate> {
    Certificate::from_der(der).ok()
}
