//! Users of the admin page and API: argon2id password hashes and permissions.

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

/// A hash to verify against when the user does not exist, so that unknown users
/// take as long as wrong passwords.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no such user").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

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
