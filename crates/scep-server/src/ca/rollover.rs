//! CA rollover and RA renewal, as file operations on the data directory that every
//! instance sharing it sees: prepare the next generation, promote it when due, renew
//! the RA certificates. Earlier generations move to `previous/`, where they keep
//! decrypting, renewing and signing CRLs.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use super::{Ca, Passphrase, RaProfile, files, key_type_of, keyfile, new_ca, new_ras};

/// Prepare the next CA (same subject and key type, new key) with its RA certificates,
/// taking over at `activate_at`.
pub fn prepare(
    dir: &Path,
    pass: &Passphrase,
    activate_at: SystemTime,
    ca_validity: Duration,
    ra: RaProfile,
) -> anyhow::Result<()> {
    let current = Ca::load(dir, pass)?;
    let next_dir = dir.join(files::NEXT);
    if next_dir.exists() {
        bail!("{} exists: a rollover is already prepared", next_dir.display());
    }
    let now = SystemTime::now();
    let subject = current.ca.cert.tbs_certificate().subject().clone();
    let ca = new_ca(&subject, key_type_of(&current.ca.key), now, ca_validity)?;
    let (ra_sign, ra_encrypt) = new_ras(&ca, now, ra)?;
    let tmp = dir.join(".next.tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp)?;
    for (kc, name) in [(&ca, "ca"), (&ra_sign, "ra-sign"), (&ra_encrypt, "ra-encrypt")] {
        keyfile::save(&tmp, name, kc, pass)?;
    }
    let at = activate_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    fs::write(tmp.join(files::ACTIVATE_AT), format!("{at}\n"))?;
    // Appears all at once.
    fs::rename(&tmp, &next_dir)?;
    Ok(())
}

/// When the prepared generation is due, make it current: the current CA and RA
/// encryption certificate move to `previous/`. Returns whether anything changed.
/// Several instances may race here: a lock file lets one of them do it.
pub fn promote_if_due(dir: &Path, now: SystemTime) -> anyhow::Result<bool> {
    let next_dir = dir.join(files::NEXT);
    let at_file = next_dir.join(files::ACTIVATE_AT);
    let Ok(text) = fs::read_to_string(&at_file) else { return Ok(false) };
    let at: u64 = text.trim().parse().with_context(|| format!("{} is not a unix time", at_file.display()))?;
    if now < UNIX_EPOCH + Duration::from_secs(at) {
        return Ok(false);
    }
    let lock = dir.join(".promote.lock");
    let Ok(_guard) = fs::OpenOptions::new().write(true).create_new(true).open(&lock) else {
        return Ok(false);
    };
    let result = (|| -> anyhow::Result<()> {
        let prev = dir.join(files::PREVIOUS);
        fs::create_dir_all(&prev)?;
        let old_ca = super::cert_from_pem_file(&dir.join("ca.pem"))?;
        let old_ra = super::cert_from_pem_file(&dir.join("ra-encrypt.pem"))?;
        let ca_name = format!("ca-{}", super::ca_id(&old_ca));
        let ra_name = format!("ra-{}", hex::encode_upper(old_ra.tbs_certificate().serial_number().as_bytes()));
        for ext in ["pem", "key"] {
            fs::rename(dir.join(format!("ca.{ext}")), prev.join(format!("{ca_name}.{ext}")))?;
            fs::rename(dir.join(format!("ra-encrypt.{ext}")), prev.join(format!("{ra_name}.{ext}")))?;
            for name in ["ca", "ra-sign", "ra-encrypt"] {
                fs::rename(next_dir.join(format!("{name}.{ext}")), dir.join(format!("{name}.{ext}")))?;
            }
        }
        fs::remove_file(&at_file)?;
        fs::remove_dir(&next_dir)?;
        Ok(())
    })();
    let _ = fs::remove_file(&lock);
    result.map(|()| true)
}

/// Replace the RA certificates with new ones from the current CA; the old encryption
/// certificate moves to `previous/` and keeps decrypting for clients that cached it.
pub fn renew_ra(dir: &Path, pass: &Passphrase, ra: RaProfile) -> anyhow::Result<()> {
    let current = Ca::load(dir, pass)?;
    let (ra_sign, ra_encrypt) = new_ras(&current.ca, SystemTime::now(), ra)?;
    let prev = dir.join(files::PREVIOUS);
    fs::create_dir_all(&prev)?;
    let tmp = dir.join(".ra.tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp)?;
    keyfile::save(&tmp, "ra-sign", &ra_sign, pass)?;
    keyfile::save(&tmp, "ra-encrypt", &ra_encrypt, pass)?;
    let ra_name =
        format!("ra-{}", hex::encode_upper(current.ra_encrypt.cert.tbs_certificate().serial_number().as_bytes()));
    for ext in ["pem", "key"] {
        fs::rename(dir.join(format!("ra-encrypt.{ext}")), prev.join(format!("{ra_name}.{ext}")))?;
    }
    // Keys first, certificates last: a reader that sees the new certificate finds its key.
    for name in ["ra-sign", "ra-encrypt"] {
        fs::rename(tmp.join(format!("{name}.key")), dir.join(format!("{name}.key")))?;
        fs::rename(tmp.join(format!("{name}.pem")), dir.join(format!("{name}.pem")))?;
    }
    fs::remove_dir(&tmp)?;
    Ok(())
}
