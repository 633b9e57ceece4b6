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

/// A promotion lock older than this was left by a process that died while
/// promoting (a promotion takes milliseconds): it is reported and taken over.
const STALE_LOCK: Duration = Duration::from_secs(30);
/// The journal of a promotion under way: the names the current generation moves to.
const JOURNAL: &str = "PROMOTING";

/// When the prepared generation is due, make it current: the current CA and RA
/// encryption certificate move to `previous/`. Returns whether anything changed.
/// Several instances may race here: a lock file lets one of them do it.
///
/// Crash-safe: the names the current files move to are written to a journal in
/// `next/` first, and every step is done only if it has not been (a file moves only
/// while its source exists and its target does not), so a promotion interrupted at
/// any point is completed by the next call, which takes over a stale lock. A data
/// directory is never left half-promoted for longer than the next start-up.
pub fn promote_if_due(dir: &Path, now: SystemTime) -> anyhow::Result<bool> {
    promote(dir, now, usize::MAX)
}

/// [`promote_if_due`], stopping after `steps` file operations (tests simulate a crash).
fn promote(dir: &Path, now: SystemTime, steps: usize) -> anyhow::Result<bool> {
    let next_dir = dir.join(files::NEXT);
    let at_file = next_dir.join(files::ACTIVATE_AT);
    let Ok(text) = fs::read_to_string(&at_file) else { return Ok(false) };
    let at: u64 = text.trim().parse().with_context(|| format!("{} is not a unix time", at_file.display()))?;
    if now < UNIX_EPOCH + Duration::from_secs(at) {
        return Ok(false);
    }
    let lock = dir.join(".promote.lock");
    if fs::OpenOptions::new().write(true).create_new(true).open(&lock).is_err() {
        let age =
            fs::metadata(&lock).and_then(|m| m.modified()).ok().and_then(|m| SystemTime::now().duration_since(m).ok());
        match age {
            Some(age) if age >= STALE_LOCK => {
                tracing::warn!(
                    lock = %lock.display(),
                    age_secs = age.as_secs(),
                    "a stale CA promotion lock was left by an interrupted promotion: taking it over to complete it"
                );
                let _ = fs::remove_file(&lock);
                if fs::OpenOptions::new().write(true).create_new(true).open(&lock).is_err() {
                    return Ok(false);
                }
            }
            // Another instance is promoting now.
            _ if next_dir.join(JOURNAL).exists() && !dir.join("ca.pem").exists() => bail!(
                "a CA promotion is under way or was interrupted ({} is {} s old); it is completed once the lock is {} s old",
                lock.display(),
                age.map_or(0, |a| a.as_secs()),
                STALE_LOCK.as_secs()
            ),
            _ => return Ok(false),
        }
    }
    let result = promote_locked(dir, &next_dir, steps);
    let _ = fs::remove_file(&lock);
    result
}

fn promote_locked(dir: &Path, next_dir: &Path, mut steps: usize) -> anyhow::Result<bool> {
    let prev = dir.join(files::PREVIOUS);
    fs::create_dir_all(&prev)?;
    let journal = next_dir.join(JOURNAL);
    let names = match fs::read_to_string(&journal) {
        Ok(text) => text,
        Err(_) => {
            let old_ca = super::cert_from_pem_file(&dir.join("ca.pem"))?;
            let old_ra = super::cert_from_pem_file(&dir.join("ra-encrypt.pem"))?;
            let text = format!(
                "ca-{}\nra-{}\n",
                super::ca_id(&old_ca),
                hex::encode_upper(old_ra.tbs_certificate().serial_number().as_bytes())
            );
            let tmp = next_dir.join(".journal.tmp");
            fs::write(&tmp, &text)?;
            fs::rename(&tmp, &journal)?;
            text
        }
    };
    let mut lines = names.lines();
    let (Some(ca_name), Some(ra_name)) = (lines.next(), lines.next()) else {
        bail!("{} is damaged: it should name the CA and RA files moving to previous/", journal.display());
    };
    // Each move happens once: only while its source exists and its target does not
    // (the new generation's files replace whatever is in place).
    let mut step = |from: std::path::PathBuf, to: std::path::PathBuf, replace: bool| -> anyhow::Result<bool> {
        if steps == 0 {
            return Ok(false);
        }
        if from.exists() && (replace || !to.exists()) {
            fs::rename(&from, &to).with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
            steps -= 1;
        }
        Ok(true)
    };
    let mut moves = Vec::new();
    for ext in ["pem", "key"] {
        moves.push((dir.join(format!("ca.{ext}")), prev.join(format!("{ca_name}.{ext}")), false));
        moves.push((dir.join(format!("ra-encrypt.{ext}")), prev.join(format!("{ra_name}.{ext}")), false));
    }
    // Keys before certificates: a reader that sees a new certificate finds its key.
    for ext in ["key", "pem"] {
        for name in ["ca", "ra-sign", "ra-encrypt"] {
            moves.push((next_dir.join(format!("{name}.{ext}")), dir.join(format!("{name}.{ext}")), true));
        }
    }
    for (from, to, replace) in moves {
        if !step(from, to, replace)? {
            return Ok(false);
        }
    }
    if steps == 0 {
        return Ok(false);
    }
    fs::remove_file(next_dir.join(files::ACTIVATE_AT))?;
    fs::remove_file(&journal)?;
    fs::remove_dir(next_dir)?;
    Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pass() -> Passphrase {
        Passphrase::new("rollover test passphrase".into())
    }

    fn params() -> super::super::InitParams {
        super::super::InitParams {
            subject: "CN=rollover test CA".parse().unwrap(),
            key_type: scep::crypto::KeyType::EcP256,
            ca_validity: Duration::from_secs(86_400 * 365),
            ra: RaProfile { validity: Duration::from_secs(86_400 * 30), request_agent_eku: true },
        }
    }

    #[test]
    fn a_promotion_interrupted_at_any_step_is_completed_by_the_next_one() {
        let mut at_step = 0;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let old = Ca::create(dir.path(), &params(), &pass()).unwrap();
            prepare(dir.path(), &pass(), UNIX_EPOCH, Duration::from_secs(86_400 * 365), params().ra).unwrap();
            let new_ca = super::super::cert_from_pem_file(&dir.path().join("next/ca.pem")).unwrap();
            let later = SystemTime::now();
            // The "crash": the process stops after `at_step` moves, lock left behind.
            let finished = promote(dir.path(), later, at_step).unwrap();
            if !finished {
                fs::write(dir.path().join(".promote.lock"), b"").unwrap();
                let stale = fs::File::options().write(true).open(dir.path().join(".promote.lock")).unwrap();
                stale.set_modified(SystemTime::now() - STALE_LOCK - Duration::from_secs(1)).unwrap();
                assert!(promote_if_due(dir.path(), later).unwrap(), "step {at_step}: not completed");
            }
            let loaded = Ca::load(dir.path(), &pass()).unwrap();
            assert_eq!(loaded.ca.cert, new_ca, "step {at_step}");
            assert!(loaded.previous.iter().any(|p| p.cert == old.ca.cert), "step {at_step}");
            assert!(loaded.previous_ra.iter().any(|p| p.cert == old.ra_encrypt.cert), "step {at_step}");
            assert!(!dir.path().join(files::NEXT).exists() && !dir.path().join(".promote.lock").exists());
            if finished {
                break;
            }
            at_step += 1;
        }
        assert!(at_step >= 10, "every move was interrupted once ({at_step} steps)");
    }

    #[test]
    fn a_fresh_lock_of_a_half_promoted_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        Ca::create(dir.path(), &params(), &pass()).unwrap();
        prepare(dir.path(), &pass(), UNIX_EPOCH, Duration::from_secs(86_400 * 365), params().ra).unwrap();
        assert!(!promote(dir.path(), SystemTime::now(), 1).unwrap());
        fs::write(dir.path().join(".promote.lock"), b"").unwrap();
        let e = promote_if_due(dir.path(), SystemTime::now()).unwrap_err().to_string();
        assert!(e.contains("under way or was interrupted"), "{e}");
    }
}
