//! Users of the admin page and API: argon2id password hashes and permissions.

use crate::store::{NewUser, Store};
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

/// A permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// May get challenges (the NDES admin page, the challenge API).
    Enroll,
    /// May manage (users, certificates, everything else).
    Admin,
}

impl Permission {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Enroll => "enroll",
            Permission::Admin => "admin",
        }
    }

    /// Whether a user granted `granted` (permission names) has this permission:
    /// `admin` includes every other.
    pub fn allows(self, granted: &[String]) -> bool {
        granted.iter().any(|g| g == self.name() || g == Permission::Admin.name())
    }

    /// Parse a comma-separated list.
    pub fn parse_list(s: &str) -> anyhow::Result<Vec<Permission>> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p {
                "enroll" => Ok(Permission::Enroll),
                "admin" => Ok(Permission::Admin),
                other => anyhow::bail!("unknown permission {other:?}: use enroll, admin"),
            })
            .collect()
    }
}

/// Hash a password with argon2id (a fresh salt; PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Check a password against a PHC string (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Password checks (argon2id, 19 MiB and tens of milliseconds each) on their own
/// bounded pool: a burst of logins takes at most `workers` cores from enrollment's
/// RSA work, and more than `queue` waiting checks are refused instead of queued.
pub struct PasswordPool {
    workers: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    queue: usize,
}

/// The pool has no room: the login is answered "unavailable", not "wrong".
#[derive(Debug)]
pub struct PoolBusy;

impl PasswordPool {
    /// A pool of `workers` concurrent checks with at most `queue` waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        PasswordPool {
            workers: tokio::sync::Semaphore::new(workers.max(1)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            queue,
        }
    }

    /// Sized for this machine: half the cores (at least one) check passwords.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::new(cores / 2, 64)
    }

    /// Check `password` against `phc` on the pool.
    pub async fn verify(&self, password: zeroize::Zeroizing<String>, phc: String) -> Result<bool, PoolBusy> {
        use std::sync::atomic::Ordering;
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolBusy);
        }
        let permit = self.workers.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(|_| PoolBusy)?;
        tokio::task::spawn_blocking(move || verify_password(&password, &phc)).await.map_err(|_| PoolBusy)
    }
}

/// A hash to verify against when the user does not exist, so that unknown users
/// take as long as wrong passwords.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no such user").unwrap_or_default())
}

/// The label of the key (derived from the CA key) that seals users' NT hashes.
pub const NTLM_KEY: &str = "ntlm";

/// A user's NT hash sealed for the store: the secret NTLM checks responses with, as
/// good as the password for NTLM, so never kept in clear.
pub fn seal_nt_hash(key: &[u8; 32], name: &str, password: &str) -> anyhow::Result<Vec<u8>> {
    let hash = zeroize::Zeroizing::new(scep_ntlm::nt_hash(password));
    Ok(crate::authority::sealed::seal(key, format!("ntlm:{name}").as_bytes(), hash.as_slice())?)
}

/// The NT hash [`seal_nt_hash`] sealed for `name`.
pub fn open_nt_hash(key: &[u8; 32], name: &str, blob: &[u8]) -> Result<[u8; 16], crate::store::StoreError> {
    let plain = crate::authority::sealed::open(key, format!("ntlm:{name}").as_bytes(), blob)?;
    plain.as_slice().try_into().map_err(|_| crate::store::StoreError::Corrupt("NT hash"))
}

/// Add a user: an argon2id hash of the password and, with `ntlm_key`, its sealed NT
/// hash. `false` if the name exists.
pub async fn add_user(
    store: &dyn Store,
    name: &str,
    password: &str,
    permissions: &[String],
    ntlm_key: Option<&[u8; 32]>,
    now: i64,
) -> anyhow::Result<bool> {
    let hash = hash_password(password)?;
    let nt_secret = ntlm_key.map(|k| seal_nt_hash(k, name, password)).transpose()?;
    let user = NewUser { name, password_hash: &hash, nt_secret: nt_secret.as_deref(), permissions };
    Ok(store.add_user(&user, now).await?)
}

/// Change a user's password; with `ntlm_key` its NT hash too, without it the user
/// can no longer use NTLM (an NT hash of the old password must not stay valid).
pub async fn set_password(
    store: &dyn Store,
    name: &str,
    password: &str,
    ntlm_key: Option<&[u8; 32]>,
) -> anyhow::Result<bool> {
    let hash = hash_password(password)?;
    let nt_secret = ntlm_key.map(|k| seal_nt_hash(k, name, password)).transpose()?;
    Ok(store.set_user_password(name, &hash, nt_secret.as_deref()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_password_pool_refuses_past_its_queue() {
        let pool = std::sync::Arc::new(PasswordPool::new(1, 1));
        let phc = hash_password("pw").unwrap();
        let held = pool.workers.acquire().await.unwrap();
        let p2 = pool.clone();
        let (ph, pw) = (phc.clone(), zeroize::Zeroizing::new("pw".to_owned()));
        let waiting = tokio::spawn(async move { p2.verify(pw, ph).await });
        while pool.waiting.load(std::sync::atomic::Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(pool.verify(zeroize::Zeroizing::new("pw".to_owned()), phc.clone()).await.is_err());
        drop(held);
        assert!(waiting.await.unwrap().unwrap());
        assert!(!pool.verify(zeroize::Zeroizing::new("no".to_owned()), phc).await.unwrap());
    }

    #[test]
    fn admin_includes_enroll_and_nothing_includes_admin() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(Permission::Enroll.allows(&names(&["admin"])));
        assert!(Permission::Enroll.allows(&names(&["enroll"])));
        assert!(!Permission::Admin.allows(&names(&["enroll"])));
        assert!(!Permission::Enroll.allows(&names(&["", "Admin", "enroll "])));
    }

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("s3cret").unwrap();
        let b = hash_password("s3cret").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &a));
        assert!(!verify_password("s3creT", &a));
        assert!(!verify_password("s3cret", "not a hash"));
        assert!(Permission::parse_list("enroll, admin").unwrap().len() == 2);
        assert!(Permission::parse_list("root").is_err());
    }
}
