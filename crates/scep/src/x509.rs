//! Certificate, CSR and CRL building on top of `x509_cert::builder`, signed through
//! the [`Signer`] seam, plus the small certificate helpers both sides need.

use std::time::{Duration, SystemTime};

use der::{Decode, Encode, asn1::OctetString};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::{
    Certificate,
    builder::{Builder, CertificateBuilder, CrlBuilder, profile::BuilderProfile},
    certificate::TbsCertificate,
    crl::{CertificateList, RevokedCert},
    ext::{
        Extension,
        pkix::{
            AuthorityKeyIdentifier, BasicConstraints, CrlNumber, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
            SubjectKeyIdentifier,
        },
    },
    name::Name,
    request::{CertReq, RequestBuilder},
    serial_number::SerialNumber,
    time::{Time, Validity},
};

use crate::crypto::{BuilderSigner, RawSignature, Signer};
use crate::error::{Error, Result};

/// A profile that hands the builder a subject, an issuer and a finished list of extensions.
struct FixedProfile {
    subject: Name,
    issuer: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// What goes into a certificate besides the keys.
#[derive(Clone, Debug)]
pub struct CertTemplate {
    /// Subject name.
    pub subject: Name,
    /// Serial number (positive, at most 20 bytes).
    pub serial: SerialNumber,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Extensions other than SKI and AKI, which are always added.
    pub extensions: Vec<Extension>,
}

/// Sign a certificate for `subject_key` with `template`. With `issuer = None` it is
/// self-signed by `signer` (which must then hold `subject_key`'s private half).
pub fn issue(
    template: &CertTemplate,
    subject_key: &SubjectPublicKeyInfoOwned,
    issuer: Option<&Certificate>,
    signer: &dyn Signer,
) -> Result<Certificate> {
    let ski = key_identifier(subject_key);
    let (issuer_name, aki) = match issuer {
        Some(ca) => {
            (ca.tbs_certificate().subject().clone(), key_identifier(ca.tbs_certificate().subject_public_key_info()))
        }
        None => (template.subject.clone(), ski.clone()),
    };
    let mut extensions = template.extensions.clone();
    extensions.push(extension(&SubjectKeyIdentifier(OctetString::new(ski)?), false)?);
    extensions.push(extension(
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(aki)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )?);
    let profile = FixedProfile { subject: template.subject.clone(), issuer: issuer_name, extensions };
    let validity = Validity::new(Time::try_from(template.not_before)?, Time::try_from(template.not_after)?);
    let builder = CertificateBuilder::new(profile, template.serial.clone(), validity, subject_key.clone())?;
    Ok(builder.build::<_, RawSignature>(&BuilderSigner(signer))?)
}

/// An extension with the DER of `value`.
pub fn extension<T: Encode + const_oid::AssociatedOid>(value: &T, critical: bool) -> Result<Extension> {
    Ok(Extension { extn_id: T::OID, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// KeyUsage extension (critical).
pub fn key_usage(usages: impl Into<flagset::FlagSet<KeyUsages>>) -> Result<Extension> {
    extension(&KeyUsage(usages.into()), true)
}

/// BasicConstraints extension (critical).
pub fn basic_constraints(ca: bool) -> Result<Extension> {
    extension(&BasicConstraints { ca, path_len_constraint: None }, true)
}

/// ExtendedKeyUsage extension.
pub fn extended_key_usage(oids: Vec<const_oid::ObjectIdentifier>) -> Result<Extension> {
    extension(&ExtendedKeyUsage(oids), false)
}

/// Key identifier: SHA-1 of the subjectPublicKey bits (RFC 5280 section 4.2.1.2, method 1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    crate::attr::DigestAlg::Sha1.digest(spki.subject_public_key.raw_bytes())
}

/// A random positive serial number of 16 bytes (126 random bits).
pub fn random_serial() -> Result<SerialNumber> {
    let mut b = crate::crypto::random_bytes(16)?;
    if let Some(first) = b.first_mut() {
        // Positive and without a leading zero byte, so the DER INTEGER is 16 bytes.
        *first = (*first & 0x7f) | 0x40;
    }
    Ok(SerialNumber::new(&b)?)
}

/// Build and sign a CSR for `signer`'s key.
pub fn csr(subject: &Name, signer: &dyn Signer, challenge: Option<&str>, extensions: &[Extension]) -> Result<Vec<u8>> {
    let mut b = RequestBuilder::new(subject.clone())?;
    for e in extensions {
        b.add_extension(e.clone()).map_err(Error::Asn1)?;
    }
    if let Some(pw) = challenge {
        let attr = x509_cert::request::attributes::ChallengePassword(
            x509_cert::ext::pkix::name::DirectoryString::PrintableString(
                der::asn1::PrintableString::new(pw)
                    .map_err(|_| Error::BadRequest("the challenge is not a PrintableString".into()))?,
            ),
        );
        b.add_attribute(&attr)?;
    }
    let req: CertReq = b.build::<_, RawSignature>(&BuilderSigner(signer))?;
    Ok(req.to_der()?)
}

/// A SubjectAltName extension.
pub fn subject_alt_name(names: SubjectAltName) -> Result<Extension> {
    extension(&names, false)
}

/// Build and sign a CRL.
pub fn crl(
    issuer: &Certificate,
    signer: &dyn Signer,
    number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
    revoked: Vec<RevokedCert>,
) -> Result<CertificateList> {
    let b = CrlBuilder::new_with_this_update(issuer, CrlNumber::try_from(number)?, Time::try_from(this_update)?)?
        .with_next_update(Some(Time::try_from(next_update)?))
        .with_certificates(revoked.into_iter());
    Ok(b.build::<_, RawSignature>(&BuilderSigner(signer))?)
}

/// Check that `cert` was signed by `issuer`'s key.
pub fn verify_issued_by(cert: &Certificate, issuer: &Certificate) -> Result<()> {
    crate::crypto::verify(
        issuer.tbs_certificate().subject_public_key_info(),
        &cert.signature_algorithm().oid,
        None,
        &cert.tbs_certificate().to_der()?,
        cert.signature().raw_bytes(),
    )
}

/// Whether `at` falls inside `cert`'s validity.
pub fn is_valid_at(cert: &Certificate, at: SystemTime) -> bool {
    let v = cert.tbs_certificate().validity();
    v.not_before.to_system_time() <= at && at <= v.not_after.to_system_time()
}

/// The key usage of a certificate, if it has the extension.
pub fn cert_key_usage(cert: &Certificate) -> Option<KeyUsage> {
    cert.tbs_certificate().get_extension::<KeyUsage>().ok().flatten().map(|(_, ku)| ku)
}

/// A certificate's DER.
pub fn to_der(cert: &Certificate) -> Result<Vec<u8>> {
    Ok(cert.to_der()?)
}

/// Parse one DER certificate.
pub fn from_der(der: &[u8]) -> Result<Certificate> {
    Ok(Certificate::from_der(der)?)
}

/// Duration helper: `days` days.
pub fn days(days: u64) -> Duration {
    Duration::from_secs(days * 86_400)
}

/// A self-signed signer certificate for a SCEP request ("SCEP Protocol Certificate"
/// in Windows' words): subject as the CSR, one-day validity.
pub fn scep_signer_certificate(subject: &Name, signer: &dyn Signer) -> Result<Certificate> {
    let now = SystemTime::now();
    let t = CertTemplate {
        subject: subject.clone(),
        serial: random_serial()?,
        not_before: now - Duration::from_secs(3600),
        not_after: now + days(1),
        extensions: vec![
            basic_constraints(false)?,
            key_usage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment)?,
        ],
    };
    issue(&t, &signer.public_key(), None, signer)
}
