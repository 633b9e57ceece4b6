//! `scepd cert revoke`, `request`, `crl`, `ca rollover`, `ra renew`, `status`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use der::{Decode, EncodePem, pem::LineEnding};

use super::{CaCommand, ProfileCommand, RaCommand, RequestCommand, authority, clock, fmt_time};
use crate::authority::{reason_from_name, unix};
use crate::ca::{Ca, Passphrase, RaProfile, rollover};
use crate::config::Config;
use crate::store::Binding;
use crate::vocab::{Serial, Via};

pub(super) async fn revoke(dir: &Path, serial: &str, reason: Option<&str>) -> anyhow::Result<()> {
    let reason = match reason {
        None => None,
        Some(r) => Some(
            reason_from_name(r)
                .with_context(|| format!("unknown reason {r:?}: use an RFC 5280 name such as keyCompromise"))?,
        ),
    };
    let serial: Serial = serial.trim().trim_start_matches("0x").parse().map_err(anyhow::Error::msg)?;
    let authority = authority(dir).await?;
    authority.revoke(&serial, reason).await?;
    eprintln!("revoked {serial}; a new CRL is published");
    Ok(())
}

pub(super) async fn request(cmd: RequestCommand) -> anyhow::Result<()> {
    match cmd {
        RequestCommand::List { dir, status, json } => {
            let rows = authority(&dir.data_dir).await?.pending_requests(status).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{:<18} {:<9} {:<22} {:<12} SUBJECT", "ID", "STATUS", "CREATED", "TEMPLATE");
                for r in rows {
                    println!(
                        "{:<18} {:<9} {:<22} {:<12} {}",
                        r.id,
                        r.status,
                        fmt_time(r.created_at),
                        r.template,
                        r.subject
                    );
                }
            }
        }
        RequestCommand::Approve { dir, id } => decide(&dir.data_dir, &id, true).await?,
        RequestCommand::Reject { dir, id } => decide(&dir.data_dir, &id, false).await?,
    }
    Ok(())
}

async fn decide(dir: &Path, id: &str, approve: bool) -> anyhow::Result<()> {
    use crate::authority::decide::{DecideError, Decision};
    let authority = authority(dir).await?;
    let who = std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into());
    let decision = if approve { Decision::Approve } else { Decision::Reject };
    match authority.decide_pending(id, decision, &who, Via::Cli).await {
        Ok(_) => {}
        Err(DecideError::NotPending) => bail!("no pending request with id {id} (scepd request list)"),
        Err(DecideError::Store(e)) => return Err(e.into()),
    }
    eprintln!(
        "request {id} {}",
        if approve { "approved: the client's next poll gets its certificate" } else { "rejected" }
    );
    Ok(())
}

pub(super) async fn crl(dir: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let authority = authority(dir).await?;
    let pki = authority.pki();
    let der = authority.regenerate_crl(&pki.ca.ca).await?;
    match out {
        Some(p) => std::fs::write(p, &der).with_context(|| format!("cannot write {}", p.display()))?,
        None => {
            let crl: x509_cert::crl::CertificateList = x509_cert::crl::CertificateList::from_der(&der)?;
            print!("{}", crl.to_pem(LineEnding::LF)?)
        }
    }
    Ok(())
}

pub(super) async fn ca(cmd: CaCommand) -> anyhow::Result<()> {
    let CaCommand::Rollover { dir, at, in_days, validity_days, ra_validity_days } = cmd;
    let dir = dir.data_dir;
    let config = Config::load(&dir)?;
    let pass = Passphrase::locate(&dir, config.passphrase_file.as_deref())?;
    let activate = match at {
        Some(t) => {
            let d = time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("--at {t:?} is not an RFC 3339 time like 2027-01-31T12:00:00Z"))?;
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(d.unix_timestamp()).context("--at is before 1970")?)
        }
        None => SystemTime::now() + Duration::from_secs(in_days * 86_400),
    };
    let ra =
        RaProfile { validity: scep::x509::days(ra_validity_days), request_agent_eku: config.scep.ra_request_agent_eku };
    rollover::prepare(&dir, &pass, activate, scep::x509::days(validity_days), ra)?;
    eprintln!(
        "prepared the next CA; GetNextCACert advertises it now and it takes over at {}",
        fmt_time(unix(activate))
    );
    Ok(())
}

pub(super) async fn ra(cmd: RaCommand) -> anyhow::Result<()> {
    let RaCommand::Renew { dir, validity_days } = cmd;
    let dir = dir.data_dir;
    let config = Config::load(&dir)?;
    let pass = Passphrase::locate(&dir, config.passphrase_file.as_deref())?;
    let ra =
        RaProfile { validity: scep::x509::days(validity_days), request_agent_eku: config.scep.ra_request_agent_eku };
    rollover::renew_ra(&dir, &pass, ra)?;
    eprintln!("RA certificates renewed; running servers pick them up within seconds");
    Ok(())
}

pub(super) async fn status(dir: &Path) -> anyhow::Result<()> {
    let config = Config::load(dir)?;
    let pass = Passphrase::locate(dir, config.passphrase_file.as_deref())?;
    let ca = Ca::load(dir, &pass)?;
    let now = clock().now();
    for line in expiry_report(&ca, now) {
        println!("{line}");
    }
    let counts = super::authority(dir).await?.counts().await?;
    println!("certificates: {}", counts.certificates);
    println!("pending requests: {}", counts.pending);
    for w in config.deployment_warnings() {
        println!("WARNING: {w}");
    }
    Ok(())
}

/// One line per certificate of the CA material, with days left and a warning under 30.
pub fn expiry_report(ca: &Ca, now: SystemTime) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = |role: &str, kc: &crate::ca::KeyedCert| {
        let left = kc.not_after().duration_since(now).map_or(0, |d| d.as_secs() / 86_400);
        let warn = if left < 30 { "  WARNING: expires soon" } else { "" };
        out.push(format!(
            "{role:<14} {}  expires {} ({left} days){warn}",
            kc.cert.tbs_certificate().subject(),
            fmt_time(unix(kc.not_after()))
        ));
    };
    line("CA", &ca.ca);
    line("RA signing", &ca.ra_sign);
    line("RA encryption", &ca.ra_encrypt);
    for p in &ca.previous {
        line("previous CA", p);
    }
    if let Some(n) = &ca.next {
        line("next CA", &n.ca);
        out.push(format!("next CA takes over at {}", fmt_time(unix(n.activate_at))));
    }
    out
}

pub(super) async fn profile(cmd: ProfileCommand) -> anyhow::Result<()> {
    match cmd {
        ProfileCommand::Apple { dir, url, challenge, subject, dns, key_size, name } => {
            let config = Config::load(&dir.data_dir)?;
            let authority = authority(&dir.data_dir).await?;
            let url = url.unwrap_or_else(|| default_url(&config));
            let challenge = match challenge {
                Some(c) => c,
                None => {
                    use crate::authority::{AdminChallenge, Want};
                    match authority.admin_challenge("profile", Binding::default(), Want::WhatTheModeGives).await? {
                        AdminChallenge::OneTime(m, _) => m.password.to_string(),
                        AdminChallenge::Single(p) => p.to_string(),
                        AdminChallenge::CacheFull(_) => bail!("The password cache is full: pass --challenge or wait"),
                        AdminChallenge::NotIssued(_)
                        | AdminChallenge::Unbindable(_)
                        | AdminChallenge::BadBinding(_) => String::new(),
                    }
                }
            };
            let subject: x509_cert::name::Name =
                subject.parse().map_err(|_| anyhow::anyhow!("--subject {subject:?} is not a distinguished name"))?;
            let p = crate::profile::AppleProfile {
                url,
                name,
                challenge,
                subject,
                dns,
                emails: vec![],
                upns: vec![],
                key_size,
                key_usage: 5,
                retries: 3,
                retry_delay: 10,
            };
            print!("{}", crate::profile::apple_mobileconfig(&p, &authority.pki().ca.ca.cert));
        }
        ProfileCommand::Windows { dir, url } => {
            let config = Config::load(&dir.data_dir)?;
            let pass = Passphrase::locate(&dir.data_dir, config.passphrase_file.as_deref())?;
            let ca = Ca::load(&dir.data_dir, &pass)?;
            print!("{}", crate::profile::windows_settings(&url.unwrap_or_else(|| default_url(&config)), &ca.ca.cert));
        }
    }
    Ok(())
}

/// The NDES URL on the configured listen address.
fn default_url(config: &Config) -> String {
    format!("http://{}/certsrv/mscep/mscep.dll", config.listen)
}
