//! Revocation and CRLs: a CRL per CA, numbered in the store, re-signed on every
//! revocation and when half its validity is gone; safe when instances race (a CRL
//! number is taken once).

use std::time::{Duration, SystemTime};

use der::Encode;
use x509_cert::{crl::RevokedCert, ext::pkix::CrlReason, serial_number::SerialNumber, time::Time};

use super::{Authority, unix};
use crate::ca::KeyedCert;
use crate::store::{CrlRow, RevokeOutcome};
use crate::vocab::Serial;

/// Why a revocation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// No certificate with that serial.
    #[error("no certificate with serial {0}")]
    NotFound(String),
    /// Already revoked.
    #[error("certificate {0} is already revoked")]
    AlreadyRevoked(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Authority {
    /// Revoke a certificate and publish a new CRL of its CA.
    pub async fn revoke(&self, serial: &Serial, reason: Option<CrlReason>) -> Result<(), RevokeError> {
        let serial = serial.as_str().to_owned();
        let now = unix(self.clock.now());
        let code = reason.map(|r| i64::from(r as u32));
        match self.store.revoke(&serial, code, now).await.map_err(anyhow::Error::from)? {
            RevokeOutcome::Revoked => {}
            RevokeOutcome::AlreadyRevoked => return Err(RevokeError::AlreadyRevoked(serial)),
            RevokeOutcome::NotFound => return Err(RevokeError::NotFound(serial)),
        }
        tracing::info!(serial, reason = ?reason, "certificate revoked");
        let row = self.store.certificate(&serial).await.map_err(anyhow::Error::from)?;
        let pki = self.pki();
        if let Some(ca) = row.and_then(|r| pki.ca.by_id(&r.ca_id)) {
            self.regenerate_crl(ca).await?;
        }
        Ok(())
    }

    /// The CRL of `ca` (DER), re-signed first when half its validity is gone.
    pub async fn crl_for(&self, ca: &KeyedCert) -> anyhow::Result<Vec<u8>> {
        let now = unix(self.clock.now());
        if let Some(c) = self.store.latest_crl(&ca.id()).await? {
            let half = (c.next_update - c.this_update) / 2;
            if now < c.this_update + half {
                return Ok(c.der);
            }
        }
        self.regenerate_crl(ca).await
    }

    /// The CRL of the CA with this id (`ca` for the current one).
    pub async fn crl_by_id(&self, id: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let pki = self.pki();
        let ca = if id == "ca" { Some(&pki.ca.ca) } else { pki.ca.by_id(id) };
        match ca {
            Some(ca) => Ok(Some(self.crl_for(ca).await?)),
            None => Ok(None),
        }
    }

    /// Sign and store a new CRL of `ca` with every revoked certificate it issued.
    pub async fn regenerate_crl(&self, ca: &KeyedCert) -> anyhow::Result<Vec<u8>> {
        let id = ca.id();
        for _ in 0..5 {
            let now = self.clock.now();
            let latest = self.store.latest_crl(&id).await?;
            let number = latest.as_ref().map_or(1, |c| c.number + 1);
            let mut revoked = Vec::new();
            for e in self.store.revoked(&id).await? {
                let serial = SerialNumber::new(&hex::decode(&e.serial)?)?;
                let when = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(e.revoked_at).unwrap_or(0));
                let reason = e.reason.and_then(reason_from_code);
                let extensions = match reason {
                    Some(r) => Some(vec![scep::x509::extension(&r, false)?]),
                    None => None,
                };
                revoked.push(RevokedCert {
                    serial_number: serial,
                    revocation_date: Time::try_from(when)?,
                    crl_entry_extensions: extensions,
                });
            }
            let next = now + Duration::from_secs(self.config.crl.validity_hours.saturating_mul(3600));
            let crl = scep::x509::crl(&ca.cert, &ca.key, u64::try_from(number)?, now, next, revoked)?;
            let row = CrlRow { number, this_update: unix(now), next_update: unix(next), der: crl.to_der()? };
            if self.store.record_crl(&id, &row).await? {
                tracing::info!(ca = id, number, "CRL published");
                return Ok(row.der);
            }
            // Another instance took this number: read again and build on it.
        }
        anyhow::bail!("could not publish a CRL: CRL numbers kept being taken")
    }
}

/// An RFC 5280 reason from its code.
pub fn reason_from_code(code: i64) -> Option<CrlReason> {
    Some(match code {
        0 => CrlReason::Unspecified,
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => return None,
    })
}

/// An RFC 5280 reason from its name (keyCompromise, superseded, ...).
pub fn reason_from_name(name: &str) -> Option<CrlReason> {
    Some(match name.to_ascii_lowercase().as_str() {
        "unspecified" => CrlReason::Unspecified,
        "keycompromise" => CrlReason::KeyCompromise,
        "cacompromise" => CrlReason::CaCompromise,
        "affiliationchanged" => CrlReason::AffiliationChanged,
        "superseded" => CrlReason::Superseded,
        "cessationofoperation" => CrlReason::CessationOfOperation,
        "certificatehold" => CrlReason::CertificateHold,
        "privilegewithdrawn" => CrlReason::PrivilegeWithdrawn,
        _ => return None,
    })
}
