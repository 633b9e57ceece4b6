//! Challenge passwords: one-time ones (minted, hashed, bound, consumed through the
//! store) and the single master password (stored encrypted).

use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::store::{Binding, ChallengeRow, NewChallenge, Store, StoreError, StoreResult};

use super::unix;

/// The setting holding the encrypted single password.
const SINGLE_PASSWORD: &str = "single_password";

/// A freshly minted challenge: shown once, stored only as a keyed hash.
pub struct Minted {
    /// Public id.
    pub id: String,
    /// The password (uppercase hex), to show to the admin once.
    pub password: Zeroizing<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Outcome of asking for a new challenge.
pub enum MintResult {
    /// Created.
    Minted(Minted),
    /// PasswordMax unexpired passwords are outstanding ("The password cache is full.").
    CacheFull,
}

/// Keyed hash of a password: HMAC-SHA256 under the server's challenge secret, so a
/// copy of the database alone does not allow guessing passwords offline.
pub fn hash(secret: &[u8; 32], password: &str) -> Vec<u8> {
    scep::crypto::hmac_sha256(secret, password.trim().as_bytes()).to_vec()
}

/// A random password of `length` bytes as uppercase hex: PrintableString-safe, as
/// Windows clients need.
pub fn random_password(length: usize) -> Zeroizing<String> {
    Zeroizing::new(hex::encode_upper(random(length)))
}

/// Parameters of [`mint`].
pub struct MintParams<'a> {
    /// Bytes of randomness.
    pub length: usize,
    /// Minutes of validity.
    pub validity_minutes: u64,
    /// Most outstanding.
    pub max_outstanding: u32,
    /// Creator.
    pub created_by: &'a str,
    /// Binding.
    pub binding: Binding,
}

/// Mint a one-time challenge.
pub async fn mint(store: &dyn Store, secret: &[u8; 32], p: MintParams<'_>, now: SystemTime) -> StoreResult<MintResult> {
    let password = random_password(p.length);
    let id = hex::encode(random(6));
    let now_s = unix(now);
    let expires_at = now_s.saturating_add(i64::try_from(p.validity_minutes.saturating_mul(60)).unwrap_or(i64::MAX));
    let created = store
        .create_challenge(
            NewChallenge {
                id: id.clone(),
                hash: hash(secret, &password),
                created_at: now_s,
                expires_at,
                created_by: p.created_by.to_owned(),
                binding: p.binding,
            },
            now_s,
            p.max_outstanding,
        )
        .await?;
    Ok(if created { MintResult::Minted(Minted { id, password, expires_at }) } else { MintResult::CacheFull })
}

/// The single master password, if one was set.
pub async fn single_password(store: &dyn Store, key: &[u8; 32]) -> StoreResult<Option<Zeroizing<String>>> {
    let Some(blob) = store.setting(SINGLE_PASSWORD).await? else {
        return Ok(None);
    };
    let plain = super::sealed::open(key, SINGLE_PASSWORD.as_bytes(), &blob)?;
    let s = String::from_utf8(plain.to_vec()).map_err(|_| StoreError::Corrupt("single password"))?;
    Ok(Some(Zeroizing::new(s)))
}

/// Set a new single master password (AES-256-GCM under a key derived from the CA
/// key) and return it.
pub async fn rotate_single(
    store: &dyn Store,
    key: &[u8; 32],
    length: usize,
    now: SystemTime,
) -> StoreResult<Zeroizing<String>> {
    let password = random_password(length);
    let blob = super::sealed::seal(key, SINGLE_PASSWORD.as_bytes(), password.as_bytes())?;
    store.put_setting(SINGLE_PASSWORD, &blob, unix(now)).await?;
    Ok(password)
}

fn random(n: usize) -> Vec<u8> {
    // The system RNG does not fail on supported platforms; a predictable password
    // must never be issued, so stop rather than continue.
    scep::crypto::random_bytes(n).unwrap_or_else(|_| std::process::abort())
}

/// Who asks about challenges: administrators see every one, other users only those
/// they made (an enroll-only account of one MDM cannot see or revoke another's).
pub struct Viewer<'a> {
    /// The user's name (what `created_by` records).
    pub name: &'a str,
    /// Whether the user has the admin permission.
    pub admin: bool,
}

impl Viewer<'_> {
    fn sees(&self, row: &ChallengeRow) -> bool {
        self.admin || row.created_by == self.name
    }
}

impl super::Authority {
    /// The outstanding challenges `viewer` may see.
    pub async fn challenges_for(&self, viewer: &Viewer<'_>) -> StoreResult<Vec<ChallengeRow>> {
        let now = unix(self.now());
        Ok(self.store.list_challenges(now).await?.into_iter().filter(|r| viewer.sees(r)).collect())
    }

    /// One challenge, when `viewer` may see it.
    pub async fn challenge_for(&self, viewer: &Viewer<'_>, id: &str) -> StoreResult<Option<ChallengeRow>> {
        let now = unix(self.now());
        Ok(self.store.challenge(id, now).await?.filter(|r| viewer.sees(r)))
    }

    /// Revoke an outstanding challenge `viewer` may see; `false` when there is none.
    pub async fn revoke_challenge_for(&self, viewer: &Viewer<'_>, id: &str) -> StoreResult<bool> {
        if self.challenge_for(viewer, id).await?.is_none() {
            return Ok(false);
        }
        self.store.revoke_challenge(id, unix(self.now())).await
    }
}
