//! Configuration: `scepd.toml` in the data directory, then environment overrides,
//! validated once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The config file's name inside the data directory.
pub const FILE: &str = "scepd.toml";

/// How enrollment requests are authorised (NDES: EnforcePassword / UseSinglePassword).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChallengeMode {
    /// One-time passwords (NDES default): random, expiring, removed on use.
    #[default]
    OneTime,
    /// No challenge at all (NDES EnforcePassword=0). Dangerous; must be explicit.
    None,
}

/// `[challenge]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChallengeConfig {
    /// Mode.
    pub mode: ChallengeMode,
    /// NDES PasswordLength: bytes of randomness (hex doubles it).
    pub password_length: usize,
    /// NDES PasswordValidity, minutes.
    pub password_validity_minutes: u64,
    /// NDES PasswordMax: most outstanding passwords.
    pub password_max: u32,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        ChallengeConfig {
            mode: ChallengeMode::OneTime,
            password_length: 8,
            password_validity_minutes: 60,
            password_max: 5,
        }
    }
}

/// `[issuance]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuanceConfig {
    /// Validity of issued certificates, days.
    pub validity_days: u64,
    /// Smallest RSA key accepted in a CSR.
    pub min_rsa_bits: usize,
}

impl Default for IssuanceConfig {
    fn default() -> Self {
        IssuanceConfig { validity_days: 365, min_rsa_bits: 2048 }
    }
}

/// `[scep]`: protocol choices that differ between clients.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScepConfig {
    /// Advertise POSTPKIOperation and SCEPStandard in GetCACaps. Off makes clients use GET.
    pub advertise_post: bool,
    /// Include the CA certificate after the issued one in replies (some Cisco clients
    /// want it; Juniper refuses it).
    pub include_ca_in_reply: bool,
    /// GetCACert answers the CA certificate alone instead of RA + CA certificates.
    pub ca_only_getcacert: bool,
}

impl Default for ScepConfig {
    fn default() -> Self {
        ScepConfig { advertise_post: true, include_ca_in_reply: false, ca_only_getcacert: false }
    }
}

/// `[limits]`: every listener has them.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body (POST PKIOperation), bytes.
    pub max_body_bytes: usize,
    /// Longest request URI (GET PKIOperation carries the message in it), bytes.
    pub max_uri_bytes: usize,
    /// Time a request may take, seconds.
    pub request_timeout_secs: u64,
    /// Requests handled at once; more wait.
    pub max_concurrent_requests: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 64 * 1024,
            request_timeout_secs: 30,
            max_concurrent_requests: 512,
        }
    }
}

/// The raw file.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    listen: String,
    database_url: String,
    passphrase_file: Option<PathBuf>,
    auto_migrate: bool,
    challenge: ChallengeConfig,
    issuance: IssuanceConfig,
    scep: ScepConfig,
    limits: LimitsConfig,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://scepd.db".into(),
            passphrase_file: None,
            auto_migrate: true,
            challenge: ChallengeConfig::default(),
            issuance: IssuanceConfig::default(),
            scep: ScepConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Database URL (relative SQLite paths resolved against the data directory).
    pub database_url: String,
    /// Passphrase file, if not the default.
    pub passphrase_file: Option<PathBuf>,
    /// Run migrations at start-up.
    pub auto_migrate: bool,
    /// Challenges.
    pub challenge: ChallengeConfig,
    /// Issuance.
    pub issuance: IssuanceConfig,
    /// Protocol choices.
    pub scep: ScepConfig,
    /// Limits.
    pub limits: LimitsConfig,
}

impl Config {
    /// Read `DIR/scepd.toml` (defaults when absent), then `SCEPD_DATABASE_URL`.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(FILE);
        let raw: RawConfig = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RawConfig::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::validate(data_dir, raw)
    }

    fn validate(data_dir: &Path, raw: RawConfig) -> anyhow::Result<Self> {
        let listen: SocketAddr = raw
            .listen
            .parse()
            .with_context(|| format!("listen = {:?} is not an address like 127.0.0.1:8080", raw.listen))?;
        let url = std::env::var("SCEPD_DATABASE_URL").ok().filter(|s| !s.is_empty()).unwrap_or(raw.database_url);
        let database_url = resolve_sqlite(data_dir, &url);
        let c = &raw.challenge;
        if !(4..=64).contains(&c.password_length) {
            bail!("challenge.password_length must be between 4 and 64 bytes");
        }
        if c.password_validity_minutes == 0 {
            bail!("challenge.password_validity_minutes must be at least 1");
        }
        if c.password_max == 0 {
            bail!("challenge.password_max must be at least 1");
        }
        if raw.issuance.validity_days == 0 {
            bail!("issuance.validity_days must be at least 1");
        }
        if raw.limits.request_timeout_secs == 0 || raw.limits.max_concurrent_requests == 0 {
            bail!("limits.request_timeout_secs and limits.max_concurrent_requests must be at least 1");
        }
        if raw.limits.max_body_bytes < 4096 || raw.limits.max_uri_bytes < 16 * 1024 {
            bail!("limits.max_body_bytes must be at least 4096 and limits.max_uri_bytes at least 16384");
        }
        Ok(Config {
            data_dir: data_dir.to_path_buf(),
            listen,
            database_url,
            passphrase_file: raw.passphrase_file.map(|p| if p.is_relative() { data_dir.join(p) } else { p }),
            auto_migrate: raw.auto_migrate,
            challenge: raw.challenge,
            issuance: raw.issuance,
            scep: raw.scep,
            limits: raw.limits,
        })
    }
}

/// `sqlite://relative.db` is relative to the data directory.
fn resolve_sqlite(data_dir: &Path, url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) if !rest.starts_with('/') && !rest.starts_with(':') => {
            format!("sqlite://{}", data_dir.join(rest).display())
        }
        _ => url.to_owned(),
    }
}

/// The commented `scepd.toml` that `scepd init` writes.
pub fn template(listen: &str, mode: &str) -> String {
    format!(
        r#"# scepd configuration. Every setting is optional; the values shown are the defaults
# unless `scepd init` chose otherwise. NDES registry names are given where one exists.

# Address to listen on. For production behind no proxy use "0.0.0.0:80" (HTTP; SCEP
# itself is protected by CMS) and serve the admin page over HTTPS.
listen = "{listen}"

# Database. "sqlite://scepd.db" is relative to this directory. The environment variable
# SCEPD_DATABASE_URL overrides it.
database_url = "sqlite://scepd.db"

# Run database migrations at start-up.
auto_migrate = true

# Passphrase for the private keys, if not in SCEPD_KEY_PASSPHRASE or ./key-passphrase.
# passphrase_file = "/run/secrets/scepd-passphrase"

[challenge]
# "one-time" (NDES default): random passwords, single use, expiring.
# "none" (NDES EnforcePassword=0): no challenge at all. Anyone can enroll.
mode = "{mode}"
# NDES PasswordLength: bytes of randomness; the password has twice as many hex digits.
password_length = 8
# NDES PasswordValidity: minutes before an unused password expires.
password_validity_minutes = 60
# NDES PasswordMax: most unused passwords outstanding at once.
password_max = 5

[issuance]
# Validity of issued certificates, in days (never beyond the CA's own).
validity_days = 365
# Smallest RSA key accepted in a request.
min_rsa_bits = 2048

[scep]
# Advertise POSTPKIOperation (and SCEPStandard) in GetCACaps. Some clients crash
# without it; turning it off makes clients send PKIOperation by GET.
advertise_post = true
# Put the CA certificate after the issued one in replies (some Cisco IOS versions
# want it; Juniper refuses it).
include_ca_in_reply = false
# Answer GetCACert with the CA certificate only (no RA certificates).
ca_only_getcacert = false

[limits]
max_body_bytes = 65536
max_uri_bytes = 65536
request_timeout_secs = 30
max_concurrent_requests = 512
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_to_the_defaults() {
        let raw: RawConfig = toml::from_str(&template("127.0.0.1:8080", "one-time")).unwrap();
        let c = Config::validate(Path::new("/data"), raw).unwrap();
        assert_eq!(c.challenge.password_max, 5);
        assert_eq!(c.challenge.mode, ChallengeMode::OneTime);
        assert_eq!(c.database_url, "sqlite:///data/scepd.db");
    }

    #[test]
    fn unknown_settings_are_refused() {
        assert!(toml::from_str::<RawConfig>("listen = \"1.2.3.4:80\"\nfoo = 1\n").is_err());
    }
}
