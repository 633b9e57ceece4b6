//! Command-line interface: raw arguments -> validated actions, once.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use scep::crypto::KeyType;
use x509_cert::name::Name;

use crate::authority::challenge::Viewer;
use crate::authority::{AdminChallenge, Authority, Clock, SystemClock, Want};
use crate::store::Binding;
use crate::vocab::{AuditOutcome, PendingStatus, Serial};

mod lifecycle;
mod maintenance;
mod users;
use crate::ca::{Ca, InitParams, Passphrase, RaProfile, files};
use crate::config::{self, Config};
use crate::http::{self, AppState};
use crate::store;

/// scepd: an NDES-compatible SCEP server with its own CA.
#[derive(Parser, Debug)]
#[command(name = "scepd", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct DataDir {
    /// Data directory (keys, certificates, database, scepd.toml).
    #[arg(long, env = "SCEPD_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the CA, the RA certificates, scepd.toml and the database.
    Init(InitArgs),
    /// Run the server.
    Serve {
        #[command(flatten)]
        dir: DataDir,
        /// Listen address (overrides scepd.toml), e.g. 0.0.0.0:80.
        #[arg(long)]
        listen: Option<String>,
        /// Initialise the data directory with defaults first if it holds no CA.
        #[arg(long)]
        init: bool,
    },
    /// One-time challenge passwords.
    Challenge {
        #[command(subcommand)]
        command: ChallengeCommand,
    },
    /// Users of the admin page and API.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Issued certificates.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Requests waiting for approval (templates with approval = "manual").
    Request {
        #[command(subcommand)]
        command: RequestCommand,
    },
    /// Publish a fresh CRL of the current CA and print it (PEM).
    Crl {
        #[command(flatten)]
        dir: DataDir,
        /// Write DER to this file instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// CA rollover.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// RA certificates.
    Ra {
        #[command(subcommand)]
        command: RaCommand,
    },
    /// Print a deployment profile for this server.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Search the audit trail of PKIOperations, newest first.
    Audit {
        #[command(flatten)]
        dir: DataDir,
        /// transactionID.
        #[arg(long)]
        transaction: Option<String>,
        /// Subject containing this text.
        #[arg(long)]
        subject: Option<String>,
        /// Serial number (hex).
        #[arg(long)]
        serial: Option<Serial>,
        /// issued, success, pending, failure, unreadable, suppressed, approved or rejected.
        #[arg(long)]
        outcome: Option<AuditOutcome>,
        /// From this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Until this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run the database migrations (also done at start-up unless auto_migrate = false).
    Migrate {
        #[command(flatten)]
        dir: DataDir,
    },
    /// CA and RA certificates, their expiry, a prepared rollover, pending requests.
    Status {
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Args, Debug)]
struct InitArgs {
    #[command(flatten)]
    dir: DataDir,
    /// CA subject.
    #[arg(long, default_value = "CN=scepd CA,O=scepd")]
    subject: String,
    /// CA key type: rsa2048, rsa3072, rsa4096, p256 or p384.
    #[arg(long, default_value = "rsa2048")]
    key_type: String,
    /// CA validity in days.
    #[arg(long, default_value_t = 3650)]
    ca_validity_days: u64,
    /// RA certificates' validity in days.
    #[arg(long, default_value_t = 730)]
    ra_validity_days: u64,
    /// Listen address written to scepd.toml.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Challenge mode written to scepd.toml: one-time, single, none or webhook.
    #[arg(long, default_value = "one-time")]
    challenge_mode: String,
    /// File holding the key passphrase (else SCEPD_KEY_PASSPHRASE, else one is generated).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum ChallengeCommand {
    /// Print a challenge, one line: a new one-time password, or the single password.
    New {
        #[command(flatten)]
        dir: DataDir,
        /// Bind it: the request must carry exactly this subject.
        #[arg(long)]
        subject: Option<String>,
        /// Bind it: the request must carry exactly these SANs (DNS:x, IP:x, email:x, URI:x, UPN:x).
        #[arg(long)]
        san: Vec<String>,
    },
    /// List outstanding one-time challenges (never the passwords).
    List {
        #[command(flatten)]
        dir: DataDir,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show one challenge's state by id.
    Show {
        #[command(flatten)]
        dir: DataDir,
        /// Challenge id.
        id: String,
    },
    /// Withdraw an outstanding one-time challenge.
    Revoke {
        #[command(flatten)]
        dir: DataDir,
        /// Challenge id.
        id: String,
    },
    /// Replace the single master password (challenge.mode = "single") and print it.
    Rotate {
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand, Debug)]
enum RequestCommand {
    /// List requests (pending by default).
    List {
        #[command(flatten)]
        dir: DataDir,
        /// pending, approved, rejected, issued or all.
        #[arg(long, default_value = "pending", value_parser = status_filter)]
        status: StatusFilter,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending request: the client's next poll gets its certificate.
    Approve {
        #[command(flatten)]
        dir: DataDir,
        /// Request id.
        id: String,
    },
    /// Reject a pending request: the client's next poll gets FAILURE.
    Reject {
        #[command(flatten)]
        dir: DataDir,
        /// Request id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum CaCommand {
    /// Prepare the next CA (new key, same subject): advertised by GetNextCACert at once,
    /// taking over at the time given.
    Rollover {
        #[command(flatten)]
        dir: DataDir,
        /// When the new CA takes over, RFC 3339 (default: now + --in-days).
        #[arg(long)]
        at: Option<String>,
        /// Days from now until it takes over (when --at is not given).
        #[arg(long, default_value_t = 7)]
        in_days: u64,
        /// Validity of the new CA, days.
        #[arg(long, default_value_t = 3650)]
        validity_days: u64,
        /// Validity of its RA certificates, days.
        #[arg(long, default_value_t = 730)]
        ra_validity_days: u64,
    },
}

#[derive(Subcommand, Debug)]
enum RaCommand {
    /// Replace the RA certificates (new keys) from the current CA; running servers pick
    /// them up within seconds, and keep decrypting for clients that cached the old ones.
    Renew {
        #[command(flatten)]
        dir: DataDir,
        /// Validity, days.
        #[arg(long, default_value_t = 730)]
        validity_days: u64,
    },
}

#[derive(Subcommand, Debug)]
enum ProfileCommand {
    /// An Apple .mobileconfig with a SCEP payload (a fresh one-time challenge unless --challenge).
    Apple {
        #[command(flatten)]
        dir: DataDir,
        /// The SCEP URL devices reach (default: from the listen address).
        #[arg(long)]
        url: Option<String>,
        /// Challenge to embed instead of a fresh one.
        #[arg(long, env = "SCEPD_PROFILE_CHALLENGE", hide_env_values = true)]
        challenge: Option<String>,
        /// Subject of the requested certificate.
        #[arg(long, default_value = "CN=%ComputerName%")]
        subject: String,
        /// DNS subject alternative names.
        #[arg(long)]
        dns: Vec<String>,
        /// Key size.
        #[arg(long, default_value_t = 2048)]
        key_size: u32,
        /// Name shown on the device.
        #[arg(long, default_value = "scepd")]
        name: String,
    },
    /// The settings of a Windows / Intune SCEP profile for this server.
    Windows {
        #[command(flatten)]
        dir: DataDir,
        /// The SCEP URL devices reach (default: from the listen address).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user of the admin page and API.
    Add {
        #[command(flatten)]
        dir: DataDir,
        /// User name.
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Permissions, comma-separated: enroll (may get challenges), admin (may manage).
        #[arg(long, default_value = "enroll")]
        permissions: String,
        /// Also allow NTLM and Negotiate logins (keeps the NT hash, sealed; needs the key passphrase).
        #[arg(long)]
        ntlm: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Remove a user.
    Remove {
        #[command(flatten)]
        dir: DataDir,
        /// User name.
        name: String,
    },
    /// Change a user's password.
    Passwd {
        #[command(flatten)]
        dir: DataDir,
        /// User name.
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Allow NTLM from now on (a user already allowed keeps it without this flag).
        #[arg(long, conflicts_with = "no_ntlm")]
        ntlm: bool,
        /// No more NTLM for this user.
        #[arg(long)]
        no_ntlm: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CertCommand {
    /// List issued certificates, newest first.
    List {
        #[command(flatten)]
        dir: DataDir,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Print one certificate (PEM) by serial number (hex).
    Show {
        #[command(flatten)]
        dir: DataDir,
        /// Serial number in hex.
        serial: String,
    },
    /// Revoke a certificate and publish a new CRL.
    Revoke {
        #[command(flatten)]
        dir: DataDir,
        /// Serial number in hex.
        serial: String,
        /// RFC 5280 reason: unspecified, keyCompromise, caCompromise, affiliationChanged,
        /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Run the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => init(&args).await,
        Command::Serve { dir, listen, init: auto } => {
            if auto && !dir.data_dir.join(files::CA_CERT).exists() {
                let args = InitArgs {
                    dir: dir.clone(),
                    subject: "CN=scepd CA,O=scepd".into(),
                    key_type: "rsa2048".into(),
                    ca_validity_days: 3650,
                    ra_validity_days: 730,
                    listen: listen.clone().unwrap_or_else(|| "127.0.0.1:8080".into()),
                    challenge_mode: "one-time".into(),
                    passphrase_file: None,
                };
                init(&args).await?;
            }
            serve(&dir.data_dir, listen.as_deref()).await
        }
        Command::Challenge { command } => match command {
            ChallengeCommand::New { dir, subject, san } => {
                let binding = Binding { subject, sans: (!san.is_empty()).then_some(san), template: None };
                challenge_new(&dir.data_dir, binding).await
            }
            ChallengeCommand::List { dir, json } => challenge_list(&dir.data_dir, json).await,
            ChallengeCommand::Show { dir, id } => challenge_show(&dir.data_dir, &id).await,
            ChallengeCommand::Revoke { dir, id } => challenge_revoke(&dir.data_dir, &id).await,
            ChallengeCommand::Rotate { dir } => challenge_rotate(&dir.data_dir).await,
        },
        Command::User { command } => users::run(command).await,
        Command::Cert { command } => match command {
            CertCommand::List { dir, limit, json } => cert_list(&dir.data_dir, limit, json).await,
            CertCommand::Show { dir, serial } => cert_show(&dir.data_dir, &serial).await,
            CertCommand::Revoke { dir, serial, reason } => {
                lifecycle::revoke(&dir.data_dir, &serial, reason.as_deref()).await
            }
        },
        Command::Request { command } => lifecycle::request(command).await,
        Command::Crl { dir, out } => lifecycle::crl(&dir.data_dir, out.as_deref()).await,
        Command::Ca { command } => lifecycle::ca(command).await,
        Command::Ra { command } => lifecycle::ra(command).await,
        Command::Status { dir } => lifecycle::status(&dir.data_dir).await,
        Command::Profile { command } => lifecycle::profile(command).await,
        Command::Audit { dir, transaction, subject, serial, outcome, since, until, limit, json } => {
            let filter = crate::store::AuditFilter {
                transaction_id: transaction,
                subject,
                serial: serial.map(|s| s.as_str().to_owned()),
                outcome,
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                limit,
            };
            let rows = authority(&dir.data_dir).await?.audit(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                // Subjects, transactionIDs and reasons come from clients: shown escaped.
                let esc = crate::text::escape_controls;
                for r in rows {
                    println!(
                        "{} {} {} {} {} {}{}{}",
                        fmt_time(r.at),
                        esc(&r.requester),
                        r.message_type.as_deref().unwrap_or("-"),
                        esc(r.transaction_id.as_deref().unwrap_or("-")),
                        r.outcome,
                        esc(r.subject.as_deref().unwrap_or("")),
                        r.serial.map(|s| format!(" serial={}", esc(&s))).unwrap_or_default(),
                        r.reason.map(|s| format!(" reason=\"{}\"", esc(&s))).unwrap_or_default(),
                    );
                }
            }
            Ok(())
        }
        Command::Migrate { dir } => {
            let config = Config::load(&dir.data_dir)?;
            store::open(&config.database_url, true)
                .await
                .with_context(|| format!("cannot migrate the database {}", redact_url(&config.database_url)))?;
            eprintln!("the database {} is up to date", redact_url(&config.database_url));
            Ok(())
        }
    }
}

async fn init(a: &InitArgs) -> anyhow::Result<()> {
    let dir = &a.dir.data_dir;
    if dir.join(files::CA_CERT).exists() || dir.join(files::CA_KEY).exists() {
        bail!("{} already holds a CA; choose another --data-dir or remove it first", dir.display());
    }
    let subject = Name::from_str(&a.subject).with_context(|| {
        format!("--subject {:?} is not a distinguished name like \"CN=My CA,O=Example\"", a.subject)
    })?;
    let key_type = KeyType::from_str(&a.key_type).map_err(anyhow::Error::msg)?;
    a.challenge_mode.parse::<config::ChallengeMode>().context("--challenge-mode")?;
    if a.ca_validity_days == 0 || a.ra_validity_days == 0 {
        bail!("validity must be at least one day");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // scepd.toml resolves relative paths against the data directory: write absolute ones.
    let passphrase_file = match &a.passphrase_file {
        Some(f) => Some(std::path::absolute(f).with_context(|| format!("cannot resolve {}", f.display()))?),
        None => None,
    };
    let pass = match Passphrase::given(a.passphrase_file.as_deref())? {
        Some(p) => p,
        None => {
            let (p, path) = Passphrase::generate_into(dir)?;
            eprintln!(
                "Generated a key passphrase into {} (mode 0600). Keep it safe; scepd needs it to start.",
                path.display()
            );
            p
        }
    };
    let params = InitParams {
        subject,
        key_type,
        ca_validity: scep::x509::days(a.ca_validity_days),
        // A new data directory gets the default configuration, which gives the EKU.
        ra: RaProfile { validity: scep::x509::days(a.ra_validity_days), request_agent_eku: true },
    };
    let ca = Ca::create(dir, &params, &pass)?;
    let cfg_path = dir.join(config::FILE);
    if !cfg_path.exists() {
        let mut text = config::template(&a.listen, &a.challenge_mode);
        if a.challenge_mode == "webhook" {
            // Webhook mode needs a verifier: a placeholder the admin edits.
            text = text.replace("# [webhook]\n# verify_url", "[webhook]\nverify_url");
        }
        if let Some(f) = &passphrase_file {
            text = text.replace(
                "# passphrase_file = \"/run/secrets/scepd-passphrase\"",
                &format!("passphrase_file = {:?}", f.display().to_string()),
            );
        }
        std::fs::write(&cfg_path, text)?;
    }
    let cfg = Config::load(dir)?;
    store::open(&cfg.database_url, true).await?;
    let fp = hex::encode_upper(scep::attr::DigestAlg::Sha256.digest(&crate::ca::der_of(&ca.ca.cert)));
    eprintln!(
        "Initialised {}: CA {} (SHA-256 {fp}), RA signing and encryption certificates, {} and the database.",
        dir.display(),
        ca.ca.cert.tbs_certificate().subject(),
        config::FILE
    );
    Ok(())
}

struct Loaded {
    config: Arc<Config>,
    pass: Passphrase,
    ca: Ca,
    store: Arc<dyn store::Store>,
}

async fn load(dir: &Path, migrate: bool) -> anyhow::Result<Loaded> {
    let config = Config::load(dir)?;
    let pass = Passphrase::locate(dir, config.passphrase_file.as_deref())?;
    crate::ca::rollover::promote_if_due(dir, clock().now())?;
    let ca = Ca::load(dir, &pass)?;
    let store = store::open(&config.database_url, migrate && config.auto_migrate)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&config.database_url)))?;
    Ok(Loaded { config: Arc::new(config), pass, ca, store })
}

/// The system clock. Debug builds (the test suite's) may shift it with
/// `SCEPD_CLOCK_OFFSET_SECS` to test expiry; release builds ignore the variable, so
/// that no environment can move a production CA's clock.
pub(crate) fn clock() -> Arc<dyn Clock> {
    let offset = if cfg!(debug_assertions) {
        std::env::var("SCEPD_CLOCK_OFFSET_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(0)
    } else {
        0
    };
    Arc::new(SystemClock::with_offset(offset))
}

async fn serve(dir: &Path, listen: Option<&str>) -> anyhow::Result<()> {
    let mut l = load(dir, true).await?;
    if let Some(addr) = listen {
        let mut c = (*l.config).clone();
        c.listen = addr.parse().with_context(|| format!("--listen {addr:?} is not an address like 127.0.0.1:8080"))?;
        l.config = Arc::new(c);
    }
    for w in l.config.deployment_warnings() {
        tracing::warn!("{w}");
    }
    let mut authority = Authority::new(l.ca, l.store, l.config.clone(), clock())?.with_audit();
    let hook = &l.config.webhook;
    if hook.verify_url.is_some() || hook.notify_url.is_some() {
        let client = http::webhook::HttpWebhook::new(hook).context("cannot set up the webhook client")?;
        authority = authority.with_webhook(Arc::new(client));
    }
    for line in lifecycle::expiry_report(&authority.pki().ca, SystemTime::now()) {
        if line.contains("WARNING") { tracing::warn!("{line}") } else { tracing::info!("{line}") }
    }
    let authority = Arc::new(authority);
    tokio::spawn(maintenance::run(dir.to_path_buf(), l.pass.clone(), authority.clone()));
    let state = AppState::new(authority, &l.config);
    let listener = tokio::net::TcpListener::bind(l.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", l.config.listen))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tls_task = match &l.config.tls {
        Some(tls) => {
            let server_config = http::tls::server_config(tls, &state.authority.pki().ca)?;
            let tls_listener = tokio::net::TcpListener::bind(tls.listen)
                .await
                .with_context(|| format!("cannot listen on {} (tls.listen)", tls.listen))?;
            let state = state.clone();
            let stop = stopped(stop_rx.clone());
            Some(tokio::spawn(async move { http::serve_tls(tls_listener, server_config, state, stop).await }))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    http::serve(listener, state, stopped(stop_rx)).await?;
    if let Some(t) = tls_task {
        t.await??;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

pub(crate) async fn authority(dir: &Path) -> anyhow::Result<Authority> {
    let l = load(dir, true).await?;
    Authority::new(l.ca, l.store, l.config, clock())
}

async fn challenge_new(dir: &Path, binding: Binding) -> anyhow::Result<()> {
    let authority = authority(dir).await?;
    match authority.admin_challenge("cli", binding, Want::WhatTheModeGives).await? {
        AdminChallenge::OneTime(m, _) => println!("{}", m.password.as_str()),
        AdminChallenge::Single(p) => println!("{}", p.as_str()),
        AdminChallenge::BadBinding(why) => bail!("{why}"),
        AdminChallenge::CacheFull(max) => bail!(
            "The password cache is full: {max} unused passwords are outstanding (challenge.password_max). Use one, revoke one, or wait for one to expire."
        ),
        AdminChallenge::NotIssued(mode) => {
            bail!(
                "challenge.mode is {:?} in {}: scepd issues no challenges in this mode",
                mode.name(),
                dir.join(config::FILE).display()
            )
        }
        AdminChallenge::Unbindable(mode) => {
            bail!("--subject and --san bind one-time challenges; challenge.mode is {:?}", mode.name())
        }
    }
    Ok(())
}

/// The CLI is run by the server's administrator: it sees every challenge.
const CLI_VIEWER: Viewer<'static> = Viewer { name: "cli", admin: true };

async fn challenge_show(dir: &Path, id: &str) -> anyhow::Result<()> {
    let authority = authority(dir).await?;
    let row = authority.challenge_for(&CLI_VIEWER, id).await?.with_context(|| format!("no challenge with id {id}"))?;
    println!("{}", serde_json::to_string_pretty(&row)?);
    Ok(())
}

async fn challenge_revoke(dir: &Path, id: &str) -> anyhow::Result<()> {
    if !authority(dir).await?.revoke_challenge_for(&CLI_VIEWER, id).await? {
        bail!("no outstanding challenge with id {id}");
    }
    eprintln!("challenge {id} revoked");
    Ok(())
}

async fn challenge_rotate(dir: &Path) -> anyhow::Result<()> {
    let p = authority(dir).await?.rotate_single_password().await?;
    println!("{}", p.as_str());
    Ok(())
}

async fn challenge_list(dir: &Path, json: bool) -> anyhow::Result<()> {
    let rows = authority(dir).await?.challenges_for(&CLI_VIEWER).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{:<14} {:<22} {:<22} CREATED BY", "ID", "CREATED", "EXPIRES");
        for r in rows {
            println!("{:<14} {:<22} {:<22} {}", r.id, fmt_time(r.created_at), fmt_time(r.expires_at), r.created_by);
        }
    }
    Ok(())
}

async fn cert_list(dir: &Path, limit: u32, json: bool) -> anyhow::Result<()> {
    let rows = authority(dir).await?.certificates("", limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{:<34} {:<8} {:<22} SUBJECT", "SERIAL", "STATUS", "NOT AFTER");
        for r in rows {
            println!("{:<34} {:<8} {:<22} {}", r.serial, r.status, fmt_time(r.not_after), r.subject);
        }
    }
    Ok(())
}

async fn cert_show(dir: &Path, serial: &str) -> anyhow::Result<()> {
    let serial: Serial = serial.trim().trim_start_matches("0x").parse().map_err(anyhow::Error::msg)?;
    let row = authority(dir)
        .await?
        .certificate(&serial)
        .await?
        .with_context(|| format!("no certificate with serial {serial}"))?;
    let cert = crate::ca::cert_from_der(&row.der).context("the stored certificate does not decode")?;
    use der::EncodePem;
    print!("{}", cert.to_pem(der::pem::LineEnding::LF)?);
    Ok(())
}

/// `scepd request list --status`: one status, or all.
type StatusFilter = Option<PendingStatus>;

fn status_filter(s: &str) -> Result<StatusFilter, crate::vocab::UnknownWord> {
    if s == "all" { Ok(None) } else { s.parse().map(Some) }
}

/// An RFC 3339 time as unix seconds.
fn parse_time(t: &str) -> anyhow::Result<i64> {
    Ok(time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{t:?} is not an RFC 3339 time like 2026-11-21T12:00:00Z"))?
        .unix_timestamp())
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.rsplit_once('@') {
        Some((creds, host)) => {
            let user = creds.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

pub(crate) fn fmt_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}
