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
    /// One-time passwords (NDES default): random, expiring, unusable once a certificate is issued with them.
    #[default]
    OneTime,
    /// One master password, reusable, never expiring (NDES UseSinglePassword=1).
    Single,
    /// No challenge at all (NDES EnforcePassword=0). Dangerous; must be explicit.
    None,
    /// An external service decides (`[webhook] verify_url`), as Intune's connector does.
    Webhook,
}

impl ChallengeMode {
    /// The name used in scepd.toml.
    pub fn name(self) -> &'static str {
        match self {
            ChallengeMode::OneTime => "one-time",
            ChallengeMode::Single => "single",
            ChallengeMode::None => "none",
            ChallengeMode::Webhook => "webhook",
        }
    }
}

impl std::str::FromStr for ChallengeMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "one-time" => ChallengeMode::OneTime,
            "single" => ChallengeMode::Single,
            "none" => ChallengeMode::None,
            "webhook" => ChallengeMode::Webhook,
            _ => bail!("challenge mode {s:?} is not one of one-time, single, none, webhook"),
        })
    }
}

/// `[admin]`: the NDES admin page and the API.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the admin page and API over plain HTTP to non-loopback clients.
    pub allow_plain_http: bool,
    /// Realm of the Basic authentication challenge.
    pub realm: String,
    /// Offer and accept Basic authentication (NTLM and Negotiate are always offered).
    pub allow_basic: bool,
    /// The NetBIOS domain NTLM announces as its target (`CORP`); clients may send any.
    pub ntlm_domain: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { allow_plain_http: false, realm: "scepd".into(), allow_basic: true, ntlm_domain: "SCEPD".into() }
    }
}

/// `[tls]`: HTTPS listener.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the HTTPS listener; none means no HTTPS.
    pub listen: Option<String>,
    /// PEM certificate chain to serve.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, unencrypted, mode 0600) of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Without `cert_file`: names (DNS or IP) the built-in CA certifies for the server.
    pub names: Vec<String>,
}

/// `[throttle]`: failures counted per client address.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Failed logins or wrong challenges allowed per address within the window.
    pub max_failures: u32,
    /// Window, seconds; an address over the limit waits until its window ends.
    pub window_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { max_failures: 10, window_secs: 600 }
    }
}

/// `[webhook]`: dynamic validation and notifications.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// URL asked before issuing (challenge.mode = "webhook").
    pub verify_url: Option<String>,
    /// URL told of every issuance and failure.
    pub notify_url: Option<String>,
    /// Time allowed for an answer, milliseconds; a time-out means deny.
    pub timeout_ms: u64,
    /// PEM file of the CA certificates trusted for `https://` webhook URLs, instead of
    /// the system bundle (relative to the data directory).
    pub ca_file: Option<PathBuf>,
    /// Allow `http://` URLs to hosts other than loopback ones.
    pub allow_http: bool,
    /// The key of the signatures both ways, from `SCEPD_WEBHOOK_SECRET`; never read
    /// from the file.
    #[serde(skip)]
    pub secret: Option<WebhookSecret>,
}

/// The webhook's HMAC key. `Debug` does not show it.
#[derive(Clone)]
pub struct WebhookSecret(zeroize::Zeroizing<Vec<u8>>);

impl WebhookSecret {
    /// A key of these bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        WebhookSecret(zeroize::Zeroizing::new(bytes))
    }

    /// The key's bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Whether `url` names a loopback host: `localhost`, 127.0.0.0/8 or `::1` (also
/// IPv4-mapped). A name is not resolved: only these literal forms count.
fn loopback_url(url: &hyper::Uri) -> bool {
    let host = url.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// A webhook URL must be `https://`, or `http://` to a loopback host, or `http://`
/// anywhere with `webhook.allow_http`.
fn check_webhook_url(url: &str, allow_http: bool) -> anyhow::Result<()> {
    let parsed: hyper::Uri = url.parse().with_context(|| format!("webhook URL {url:?} is not a URL"))?;
    if parsed.host().is_none_or(str::is_empty) {
        bail!("webhook URL {url:?} has no host");
    }
    match parsed.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_http || loopback_url(&parsed) => Ok(()),
        Some("http") => bail!(
            "webhook URL {url:?} is plain HTTP to a host that is not loopback: challenges, CSRs and the verifier's answers would cross the network in clear; use https://, or set webhook.allow_http = true"
        ),
        _ => bail!("webhook URL {url:?} must start with https:// (or http:// to a loopback host)"),
    }
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

/// `[renewal]`: re-enrollment signed by an issued certificate (NDES KB 959193).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenewalConfig {
    /// Days after expiry during which a certificate may still sign its renewal.
    pub grace_days: u64,
    /// Allow a renewal to change subject or SANs (NDES DisableRenewalSubjectNameMatch=1).
    pub allow_subject_change: bool,
    /// Revoke the renewed certificate (reason superseded) when its successor is issued.
    pub revoke_superseded: bool,
    /// Let a certificate sign more than one renewal. Off: once renewed, a certificate
    /// cannot renew again (a copied key cannot grow a second line of certificates).
    pub allow_repeated: bool,
}

impl Default for RenewalConfig {
    fn default() -> Self {
        RenewalConfig { grace_days: 30, allow_subject_change: false, revoke_superseded: false, allow_repeated: false }
    }
}

/// `[audit]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days audit entries are kept.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { retention_days: 90 }
    }
}

/// `[crl]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrlConfig {
    /// Public base URL of this server (e.g. `http://scep.example.com`): issued
    /// certificates then name `BASE/crl/CAID.crl` as their CRL distribution point.
    pub base_url: Option<String>,
    /// Hours between thisUpdate and nextUpdate; a CRL is re-signed when half is gone.
    pub validity_hours: u64,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig { base_url: None, validity_hours: 168 }
    }
}

/// `[scep]`: protocol choices that differ between clients.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScepConfig {
    /// Advertise POSTPKIOperation and SCEPStandard in GetCACaps. Off makes clients use GET.
    pub advertise_post: bool,
    /// GetCACert answers the CA certificate alone instead of RA + CA certificates.
    pub ca_only_getcacert: bool,
    /// GetCACaps keywords, replacing the default list (GetNextCACert still appears only
    /// while a next CA exists). `[templates.NAME] caps` does the same for `/scep/NAME/`.
    pub caps: Option<Vec<String>>,
    /// RA certificates made by `scepd ra renew` and `scepd ca rollover` carry the
    /// Certificate Request Agent EKU, as NDES's do (`init` always gives it).
    pub ra_request_agent_eku: bool,
    /// Accept a PKCSReq signed by a throw-away key other than its CSR's RSA key (some
    /// NDES tools do it). Off, such a request is refused (RFC 8894 section 2.3); a CSR
    /// key that is not RSA may always use an RSA signer, which receives the reply.
    pub allow_foreign_signers: bool,
}

impl Default for ScepConfig {
    fn default() -> Self {
        ScepConfig {
            advertise_post: true,
            ca_only_getcacert: false,
            caps: None,
            ra_request_agent_eku: true,
            allow_foreign_signers: false,
        }
    }
}

impl ScepConfig {
    /// The GetCACaps keywords of the default endpoint, before GetNextCACert is added or
    /// removed by the CA's state.
    pub fn default_caps(&self) -> anyhow::Result<Vec<scep::caps::Capability>> {
        use scep::caps::Capability as C;
        if let Some(list) = &self.caps {
            return parse_caps(list).context("[scep] caps");
        }
        let mut caps = vec![C::Aes, C::Des3];
        if self.advertise_post {
            caps.push(C::PostPkiOperation);
        }
        caps.extend([C::Renewal, C::Sha256, C::Sha512]);
        if self.advertise_post {
            caps.push(C::ScepStandard);
        }
        Ok(caps)
    }
}

/// GetCACaps keywords as written in the configuration.
pub fn parse_caps(list: &[String]) -> anyhow::Result<Vec<scep::caps::Capability>> {
    let mut out = Vec::new();
    for k in list {
        let c = scep::caps::Capability::from_keyword(k).with_context(|| {
            let known: Vec<&str> = scep::caps::Capability::ALL.iter().map(|c| c.keyword()).collect();
            format!("unknown GetCACaps keyword {k:?} (known: {})", known.join(", "))
        })?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
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
    /// Connections open at once per listener; more wait up to `connection_wait_ms`,
    /// then are closed.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (also the idle time of a
    /// kept-alive connection).
    pub header_timeout_secs: u64,
    /// Connections open at once per client address (IPv6 counted per /64), per
    /// listener; never more than `max_connections`. More are closed at once.
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's body once its headers are read; past
    /// it the answer is 408 and the connection is closed. Not part of
    /// `request_timeout_secs`, which starts once the body is read.
    pub body_timeout_secs: u64,
    /// Milliseconds a new connection may wait for one of the `max_connections` slots
    /// before it is closed; 0 closes it at once.
    pub connection_wait_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 64 * 1024,
            request_timeout_secs: 30,
            max_concurrent_requests: 512,
            max_connections: 1024,
            header_timeout_secs: 15,
            max_connections_per_address: 64,
            body_timeout_secs: 10,
            connection_wait_ms: 1000,
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
    templates: std::collections::BTreeMap<String, crate::templates::TemplateConfig>,
    template_selection: crate::templates::SelectionConfig,
    renewal: RenewalConfig,
    crl: CrlConfig,
    audit: AuditConfig,
    scep: ScepConfig,
    limits: LimitsConfig,
    admin: AdminConfig,
    tls: TlsConfig,
    throttle: ThrottleConfig,
    webhook: WebhookConfig,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://scepd.db".into(),
            passphrase_file: None,
            auto_migrate: true,
            challenge: ChallengeConfig::default(),
            templates: Default::default(),
            template_selection: Default::default(),
            renewal: RenewalConfig::default(),
            crl: CrlConfig::default(),
            audit: AuditConfig::default(),
            scep: ScepConfig::default(),
            limits: LimitsConfig::default(),
            admin: AdminConfig::default(),
            tls: TlsConfig::default(),
            throttle: ThrottleConfig::default(),
            webhook: WebhookConfig::default(),
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
    /// Templates.
    pub templates: crate::templates::Templates,
    /// Renewal.
    pub renewal: RenewalConfig,
    /// CRLs.
    pub crl: CrlConfig,
    /// Audit trail.
    pub audit: AuditConfig,
    /// Protocol choices.
    pub scep: ScepConfig,
    /// Limits.
    pub limits: LimitsConfig,
    /// Admin page and API.
    pub admin: AdminConfig,
    /// HTTPS listener (validated).
    pub tls: Option<Tls>,
    /// Throttling.
    pub throttle: ThrottleConfig,
    /// Webhook.
    pub webhook: WebhookConfig,
}

/// Where the HTTPS certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// Files given by the admin.
    Files {
        /// PEM chain.
        cert: PathBuf,
        /// PEM PKCS#8 key.
        key: PathBuf,
    },
    /// Issued by the built-in CA for these names.
    BuiltIn(Vec<String>),
}

/// Validated `[tls]`.
#[derive(Clone, Debug)]
pub struct Tls {
    /// Listen address.
    pub listen: SocketAddr,
    /// Certificate source.
    pub source: TlsSource,
}

impl Config {
    /// What about this deployment an admin should hear of: `serve` logs these at start
    /// and `scepd status` prints them.
    pub fn deployment_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.challenge.mode == ChallengeMode::None {
            out.push("challenge.mode is \"none\": anyone who can reach this server can enroll".to_owned());
        }
        let minutes = self.challenge.password_validity_minutes;
        if self.challenge.mode == ChallengeMode::OneTime && minutes < 60 {
            out.push(format!(
                "challenge.password_validity_minutes is {minutes}: integrations that fetch a challenge and hand it to a device later assume NDES's 60"
            ));
        }
        if self.admin.allow_plain_http && self.admin.allow_basic && !self.listen.ip().is_loopback() {
            out.push(format!(
                "admin.allow_plain_http with Basic on {}: passwords and challenges cross the network in clear; serve the admin page over [tls], or set admin.allow_basic = false",
                self.listen
            ));
        }
        let hook = &self.webhook;
        let urls: Vec<&String> = hook.verify_url.iter().chain(hook.notify_url.iter()).collect();
        if !urls.is_empty() && hook.secret.is_none() {
            out.push(
                "webhook without SCEPD_WEBHOOK_SECRET: the verifier's answers are not authenticated (whoever answers for webhook.verify_url decides who enrolls) and notifications are unsigned"
                    .to_owned(),
            );
        }
        for url in urls {
            if let Ok(u) = url.parse::<hyper::Uri>()
                && u.scheme_str() == Some("http")
                && !loopback_url(&u)
            {
                out.push(format!(
                    "webhook URL {url} is plain HTTP to a host that is not loopback (webhook.allow_http): challenges and CSRs cross the network in clear"
                ));
            }
        }
        if !self.listen.ip().is_loopback() && self.tls.is_none() && !self.admin.allow_plain_http {
            out.push(format!(
                "{} is plain HTTP without [tls]: the admin page and the API answer only loopback clients",
                self.listen
            ));
        }
        out
    }

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

    /// The configuration `text` (scepd.toml's contents) gives, validated like a file's.
    pub fn from_toml(data_dir: &Path, text: &str) -> anyhow::Result<Self> {
        Self::validate(data_dir, toml::from_str(text).context("not valid scepd.toml")?)
    }

    fn validate(data_dir: &Path, raw: RawConfig) -> anyhow::Result<Self> {
        let listen: SocketAddr = raw
            .listen
            .parse()
            .with_context(|| format!("listen = {:?} is not an address like 127.0.0.1:8080", raw.listen))?;
        let url = std::env::var("SCEPD_DATABASE_URL").ok().filter(|s| !s.is_empty()).unwrap_or(raw.database_url);
        let database_url = resolve_sqlite(data_dir, &url);
        raw.scep.default_caps()?;
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
        let templates = crate::templates::Templates::new(raw.templates, raw.template_selection)?;
        if let Some(u) = &raw.crl.base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("crl.base_url {u:?} must be an http:// or https:// URL");
        }
        if raw.crl.validity_hours == 0 {
            bail!("crl.validity_hours must be at least 1");
        }
        if raw.limits.request_timeout_secs == 0
            || raw.limits.max_concurrent_requests == 0
            || raw.limits.max_connections == 0
            || raw.limits.header_timeout_secs == 0
        {
            bail!(
                "limits.request_timeout_secs, max_concurrent_requests, max_connections and header_timeout_secs must be at least 1"
            );
        }
        if raw.limits.max_body_bytes < 4096 || raw.limits.max_uri_bytes < 16 * 1024 {
            bail!("limits.max_body_bytes must be at least 4096 and limits.max_uri_bytes at least 16384");
        }
        if raw.limits.max_connections_per_address == 0 || raw.limits.body_timeout_secs == 0 {
            bail!("limits.max_connections_per_address and limits.body_timeout_secs must be at least 1");
        }
        if raw.limits.connection_wait_ms > 10_000 {
            bail!("limits.connection_wait_ms must be at most 10000: a client waiting longer has given up");
        }
        let mut limits = raw.limits;
        // One address may hold at most every slot, never more than exist.
        limits.max_connections_per_address = limits.max_connections_per_address.min(limits.max_connections);
        let abs = |p: PathBuf| if p.is_relative() { data_dir.join(p) } else { p };
        let tls = match raw.tls.listen {
            None => None,
            Some(l) => {
                let listen =
                    l.parse().with_context(|| format!("tls.listen = {l:?} is not an address like 0.0.0.0:443"))?;
                let source = match (raw.tls.cert_file, raw.tls.key_file) {
                    (Some(cert), Some(key)) => TlsSource::Files { cert: abs(cert), key: abs(key) },
                    (None, None) if !raw.tls.names.is_empty() => TlsSource::BuiltIn(raw.tls.names),
                    (None, None) => {
                        bail!("[tls] needs cert_file and key_file, or names for a certificate from the built-in CA")
                    }
                    _ => bail!("[tls] needs both cert_file and key_file"),
                };
                Some(Tls { listen, source })
            }
        };
        if raw.challenge.mode == ChallengeMode::Webhook && raw.webhook.verify_url.is_none() {
            bail!("challenge.mode = \"webhook\" needs webhook.verify_url");
        }
        for url in raw.webhook.verify_url.iter().chain(raw.webhook.notify_url.iter()) {
            check_webhook_url(url, raw.webhook.allow_http)?;
        }
        let mut webhook = raw.webhook;
        if webhook.timeout_ms == 0 {
            webhook.timeout_ms = 5000;
        }
        webhook.ca_file = webhook.ca_file.map(abs);
        webhook.secret = std::env::var("SCEPD_WEBHOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| WebhookSecret::new(s.into_bytes()));
        if raw.throttle.max_failures == 0 || raw.throttle.window_secs == 0 {
            bail!("throttle.max_failures and throttle.window_secs must be at least 1");
        }
        Ok(Config {
            data_dir: data_dir.to_path_buf(),
            listen,
            database_url,
            passphrase_file: raw.passphrase_file.map(|p| if p.is_relative() { data_dir.join(p) } else { p }),
            auto_migrate: raw.auto_migrate,
            challenge: raw.challenge,
            templates,
            renewal: raw.renewal,
            crl: raw.crl,
            audit: raw.audit,
            scep: raw.scep,
            limits,
            admin: raw.admin,
            tls,
            throttle: raw.throttle,
            webhook,
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
# "one-time" (NDES default): random passwords, single use, expiring, shown by the
#   admin page /certsrv/mscep_admin/ and `scepd challenge new`.
# "single" (NDES UseSinglePassword=1): one master password for every device, reusable,
#   never expiring, stored encrypted; `scepd challenge rotate` replaces it.
# "none" (NDES EnforcePassword=0): no challenge at all. Anyone can enroll.
# "webhook": [webhook] verify_url decides each request (Intune-style validation).
mode = "{mode}"
# NDES PasswordLength: bytes of randomness; the password has twice as many hex digits.
password_length = 8
# NDES PasswordValidity: minutes before an unused password expires.
password_validity_minutes = 60
# NDES PasswordMax: most unused passwords outstanding at once.
password_max = 5

# Certificate templates. "default" exists even when not written here. Settings:
# validity_days, max_validity_days (Windows ValidityPeriod requests honoured up to this;
# 0 ignores them), key_usage (empty: as requested within the key type), extended_key_usage
# (clientAuth, serverAuth, codeSigning, emailProtection, ipsecIKE or OIDs), min_rsa_bits,
# key_types (rsa, ec), subject_pattern (regex on the whole subject), required_subject
# (CN, O, ...), san_patterns (regexes on "DNS:name", "IP:addr", ...), include_ca_cert
# (put the CA certificate after the issued one: some Cisco IOS versions want it, Juniper
# refuses it), approval ("auto" or "manual": PENDING until `scepd request approve`).
[templates.default]
validity_days = 365
extended_key_usage = ["clientAuth"]
min_rsa_bits = 2048
key_types = ["rsa", "ec"]
include_ca_cert = false
approval = "auto"

# NDES SignatureTemplate / EncryptionTemplate / GeneralPurposeTemplate: the template
# chosen by the request's key usage (digitalSignature only / keyEncipherment only /
# both or none). A challenge or the URL /scep/TEMPLATE may name one instead.
[template_selection]
signature = "default"
encryption = "default"
general = "default"

[renewal]
# A certificate this CA issued may sign its own renewal (no challenge needed) while
# valid and up to grace_days after it expired.
grace_days = 30
# NDES DisableRenewalSubjectNameMatch: allow the renewal to change subject or SANs.
allow_subject_change = false
# Revoke the old certificate (reason superseded) when its renewal is issued.
revoke_superseded = false

[audit]
# Every PKIOperation is recorded (time, address, transactionID, type, subject, template,
# outcome with failInfo and reason, serial, challenge id); `scepd audit` searches it.
retention_days = 90

[crl]
# Public base URL of this server; issued certificates then carry the CRL distribution
# point BASE/crl/CAID.crl. CRLs are also served at /crl/ca.crl and by GetCRL.
# base_url = "http://scep.example.com"
validity_hours = 168

[scep]
# Advertise POSTPKIOperation (and SCEPStandard) in GetCACaps. Some clients crash
# without it; turning it off makes clients send PKIOperation by GET.
advertise_post = true
# Answer GetCACert with the CA certificate only (no RA certificates).
ca_only_getcacert = false
# GetCACaps keywords, replacing the list above settings give (AES, DES3,
# POSTPKIOperation, Renewal, SHA-256, SHA-512, SCEPStandard); [templates.NAME] caps
# sets them for /scep/NAME/. GetNextCACert is listed only while a next CA exists.
# caps = ["AES", "DES3", "POSTPKIOperation", "Renewal", "SHA-1", "SHA-256", "SHA-512"]
# RA certificates carry the Certificate Request Agent EKU (1.3.6.1.4.1.311.20.2.1), as
# NDES's do; `scepd ra renew` applies a change.
ra_request_agent_eku = true
# A PKCSReq signed by a key other than its CSR's RSA key is refused (RFC 8894 2.3);
# true accepts such throw-away signers (scepreq and some NDES tools use them).
allow_foreign_signers = false

[admin]
# The admin page (/certsrv/mscep_admin/) and the API (/api/v1/) send passwords; over
# plain HTTP they answer only loopback clients unless this is true.
allow_plain_http = false
realm = "scepd"
# Basic authentication besides NTLM and Negotiate (offered in that order, as IIS does).
# Users log in with NTLM only when added with `scepd user add --ntlm`.
allow_basic = true
ntlm_domain = "SCEPD"

[throttle]
# Failed logins, and requests with a wrong challenge, allowed per client address
# within the window; past it the address is refused until the window ends.
max_failures = 10
window_secs = 600

# [tls]
# listen = "0.0.0.0:443"
# Either a certificate and key of your own (PEM; the key PKCS#8, unencrypted, mode 0600):
# cert_file = "/etc/scepd/tls.pem"
# key_file = "/etc/scepd/tls.key"
# or names the built-in CA certifies for this server:
# names = ["scep.example.com"]

# [webhook]
# verify_url = "http://127.0.0.1:9000/verify"   # asked before issuing (mode "webhook")
# notify_url = "http://127.0.0.1:9000/notify"   # told of every issuance and failure
# timeout_ms = 5000                              # no answer in time means deny
# https:// URLs are checked against the system's CA bundle, or ca_file:
# ca_file = "/etc/scepd/webhook-ca.pem"
# http:// is allowed for loopback hosts only, unless:
# allow_http = false
# Set SCEPD_WEBHOOK_SECRET: calls are signed and the verifier must sign its answers.

[limits]
max_body_bytes = 65536
max_uri_bytes = 65536
request_timeout_secs = 30
max_concurrent_requests = 512
# Connections open at once per listener; a TLS handshake must finish within 10 s.
max_connections = 1024
# Seconds a client has to send a request's headers; also how long a kept-alive
# connection may stay idle.
header_timeout_secs = 15
# Connections open at once from one client address (IPv6: one /64); devices behind
# one NAT share an address.
max_connections_per_address = 64
# Seconds a client has to send a request's body; past it: 408 and the connection closed.
body_timeout_secs = 10
# Milliseconds a connection waits for a free slot when max_connections are open.
connection_wait_ms = 1000
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

    fn with(extra: &str) -> anyhow::Result<Config> {
        let text = format!("{}{extra}", template("127.0.0.1:8080", "one-time"));
        Config::validate(Path::new("/data"), toml::from_str(&text)?)
    }

    #[test]
    fn webhook_urls_are_https_or_loopback_http_unless_allowed() {
        for ok in [
            "https://verifier.example/v",
            "http://127.0.0.1:9/v",
            "http://127.9.9.9/v",
            "http://[::1]:9/v",
            "http://LOCALHOST/v",
        ] {
            assert!(with(&format!("\n[webhook]\nverify_url = \"{ok}\"\n")).is_ok(), "{ok}");
        }
        for bad in [
            "http://192.0.2.1/v",
            "http://localhost.example/v",
            "http://[::ffff:192.0.2.1]/v",
            "ftp://127.0.0.1/v",
            "https:///v",
        ] {
            assert!(with(&format!("\n[webhook]\nnotify_url = \"{bad}\"\n")).is_err(), "{bad}");
        }
        let c = with("\n[webhook]\nnotify_url = \"http://192.0.2.1/n\"\nallow_http = true\nca_file = \"ca.pem\"\n")
            .unwrap();
        assert_eq!(c.webhook.ca_file.as_deref(), Some(Path::new("/data/ca.pem")));
        let warnings = c.deployment_warnings().join("\n");
        assert!(warnings.contains("plain HTTP") && warnings.contains("SCEPD_WEBHOOK_SECRET"), "{warnings}");
    }

    #[test]
    fn the_per_address_cap_is_never_above_the_connection_limit() {
        let raw = template("127.0.0.1:8080", "one-time").replace("max_connections = 1024", "max_connections = 8");
        let c = Config::validate(Path::new("/data"), toml::from_str(&raw).unwrap()).unwrap();
        assert_eq!(c.limits.max_connections_per_address, 8);
        assert_eq!(c.limits.body_timeout_secs, 10);
        assert!(with("").is_ok_and(|c| c.limits.max_connections_per_address == 64));
        let zero = template("127.0.0.1:8080", "one-time").replace("body_timeout_secs = 10", "body_timeout_secs = 0");
        assert!(Config::validate(Path::new("/data"), toml::from_str(&zero).unwrap()).is_err());
    }

    #[test]
    fn the_webhook_secret_never_prints() {
        let s = WebhookSecret::new(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_settings_are_refused() {
        assert!(toml::from_str::<RawConfig>("listen = \"1.2.3.4:80\"\nfoo = 1\n").is_err());
    }
}
