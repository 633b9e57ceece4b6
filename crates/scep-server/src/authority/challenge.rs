//! One-time challenge passwords: generation, keyed hashing, issuance through the store.

use std::time::SystemTime;

use crate::store::{NewChallenge, Store, StoreResult};

use super::unix;

/// A freshly minted challenge: shown once, stored only as a keyed hash.
pub struct Minted {
    /// Public id.
    pub id: String,
    /// The password (uppercase hex), to show to the admin once.
    pub password: zeroize::Zeroizing<String>,
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

/// Mint a one-time challenge of `length` random bytes valid `validity_minutes`.
pub async fn mint(
    store: &dyn Store,
    secret: &[u8; 32],
    length: usize,
    validity_minutes: u64,
    max_outstanding: u32,
    created_by: &str,
    now: SystemTime,
) -> StoreResult<MintResult> {
    let password = zeroize::Zeroizing::new(hex::encode_upper(random(length)));
    let id = hex::encode(random(6));
    let now_s = unix(now);
    let expires_at = now_s.saturating_add(i64::try_from(validity_minutes.saturating_mul(60)).unwrap_or(i64::MAX));
    let created = store
        .create_challenge(
            NewChallenge {
                id: id.clone(),
                hash: hash(secret, &password),
                created_at: now_s,
                expires_at,
                created_by: created_by.to_owned(),
            },
            now_s,
            max_outstanding,
        )
        .await?;
    Ok(if created { MintResult::Minted(Minted { id, password, expires_at }) } else { MintResult::CacheFull })
}

fn random(n: usize) -> Vec<u8> {
    // The system RNG does not fail on supported platforms; an all-zero password
    // would be caught by nobody, so refuse to continue instead.
    scep::crypto::random_bytes(n).unwrap_or_else(|_| std::process::abort())
}
