//! What an admin wants to know about the certificates GetCACert returns: each one's
//! role, validity and fingerprints.

use std::time::{Duration, SystemTime};

use der::Encode;
use md5::Digest as _;
use scep::attr::DigestAlg;
use x509_cert::{
    Certificate,
    ext::pkix::{BasicConstraints, KeyUsages},
};

/// The role of a certificate in a GetCACert answer, by basicConstraints and key usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// basicConstraints CA.
    Ca,
    /// RA certificate with digitalSignature only: it signs CertReps.
    RaSigning,
    /// RA certificate with keyEncipherment only: requests are encrypted to it.
    RaEncryption,
    /// RA certificate with both.
    RaSigningEncryption,
    /// Not a CA and neither usage (or no KeyUsage at all): a client cannot use it.
    Other,
}

impl Role {
    /// The role of `cert`.
    pub fn of(cert: &Certificate) -> Role {
        let ca = cert.tbs_certificate().get_extension::<BasicConstraints>().ok().flatten().is_some_and(|(_, bc)| bc.ca);
        if ca {
            return Role::Ca;
        }
        let ku = scep::x509::cert_key_usage(cert).map(|k| k.0);
        let sign = ku.is_some_and(|k| k.contains(KeyUsages::DigitalSignature));
        let enc = ku.is_some_and(|k| k.contains(KeyUsages::KeyEncipherment));
        match (sign, enc) {
            (true, true) => Role::RaSigningEncryption,
            (true, false) => Role::RaSigning,
            (false, true) => Role::RaEncryption,
            (false, false) => Role::Other,
        }
    }

    /// As shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Ca => "CA",
            Role::RaSigning => "RA signing",
            Role::RaEncryption => "RA encryption",
            Role::RaSigningEncryption => "RA signing+encryption",
            Role::Other => "other (neither CA nor RA key usage)",
        }
    }
}

/// MD5, SHA-1 and SHA-256 of a certificate's DER, uppercase hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprints {
    /// MD5 (what the NDES admin page shows, in four groups).
    pub md5: String,
    /// SHA-1 (Windows' thumbprint, `CAThumbprint`).
    pub sha1: String,
    /// SHA-256.
    pub sha256: String,
}

impl Fingerprints {
    /// Fingerprints of `cert`.
    pub fn of(cert: &Certificate) -> Fingerprints {
        let der = cert.to_der().unwrap_or_default();
        Fingerprints {
            md5: hex::encode_upper(md5::Md5::digest(&der)),
            sha1: hex::encode_upper(DigestAlg::Sha1.digest(&der)),
            sha256: hex::encode_upper(DigestAlg::Sha256.digest(&der)),
        }
    }

    /// The MD5 as the NDES admin page prints it: four groups of eight digits.
    pub fn md5_ndes(&self) -> String {
        let groups: Vec<&str> =
            (0..self.md5.len()).step_by(8).filter_map(|i| self.md5.get(i..(i + 8).min(self.md5.len()))).collect();
        groups.join(" ")
    }
}

/// Validity of a certificate relative to now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Not valid yet.
    NotYetValid,
    /// Expired.
    Expired,
    /// Valid, with this much time left.
    Valid(Duration),
}

impl Validity {
    /// The validity of `cert` at `now`.
    pub fn of(cert: &Certificate, now: SystemTime) -> Validity {
        let v = cert.tbs_certificate().validity();
        if now < v.not_before.to_system_time() {
            Validity::NotYetValid
        } else {
            match v.not_after.to_system_time().duration_since(now) {
                Ok(left) => Validity::Valid(left),
                Err(_) => Validity::Expired,
            }
        }
    }
}

/// `notBefore to notAfter` in RFC 3339.
pub fn validity_text(cert: &Certificate) -> String {
    let v = cert.tbs_certificate().validity();
    let fmt = |t: SystemTime| {
        time::OffsetDateTime::from(t)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "?".into())
    };
    format!("{} to {}", fmt(v.not_before.to_system_time()), fmt(v.not_after.to_system_time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_groups_like_the_admin_page() {
        let f =
            Fingerprints { md5: "A656FA66AB12B433A2DA5CF7CC153D9A".into(), sha1: String::new(), sha256: String::new() };
        assert_eq!(f.md5_ndes(), "A656FA66 AB12B433 A2DA5CF7 CC153D9A");
    }
}
