//! Command-line interface: raw arguments -> validated actions, once.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use scep::crypto::KeyType;
use x509_cert::name::Name;

use crate::authority::{Authority, Clock, SystemClock, challenge, unix};
use crate::ca::{Ca, InitParams, Passphrase, files};
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
    /// Issued certificates.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
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
    /// Challenge mode written to scepd.toml: one-time or none.
    #[arg(long, default_value = "one-time")]
    challenge_mode: String,
    /// File holding the key passphrase (else SCEPD_KEY_PASSPHRASE, else one is generated).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum ChallengeCommand {
    /// Mint a one-time challenge and print it on stdout, one line.
    New {
        #[command(flatten)]
        dir: DataDir,
    },
    /// List outstanding challenges (never the passwords).
    List {
        #[command(flatten)]
        dir: DataDir,
        /// JSON output.
        #[arg(long)]
        json: bool,
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
            ChallengeCommand::New { dir } => challenge_new(&dir.data_dir).await,
            ChallengeCommand::List { dir, json } => challenge_list(&dir.data_dir, json).await,
        },
        Command::Cert { command } => match command {
            CertCommand::List { dir, limit, json } => cert_list(&dir.data_dir, limit, json).await,
            CertCommand::Show { dir, serial } => cert_show(&dir.data_dir, &serial).await,
        },
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
    if !["one-time", "none"].contains(&a.challenge_mode.as_str()) {
        bail!("--challenge-mode must be one-time or none");
    }
    if a.ca_validity_days == 0 || a.ra_validity_days == 0 {
        bail!("validity must be at least one day");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // scepd.toml resolves relative paths against the data directory: write absolute ones.
    let passphrase_file = match &a.passphrase_file {
        Some(f) => Some(std::path::absolute(f).with_context(|| format!("cannot resolve {}", f.display()))?),
        None => None,
    };
    let pass = match (std::env::var("SCEPD_KEY_PASSPHRASE").ok().filter(|s| !s.is_empty()), &a.passphrase_file) {
        (Some(p), _) => Passphrase::new(p),
        (None, Some(f)) => Passphrase::locate(dir, Some(f))?,
        (None, None) => {
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
        ra_validity: scep::x509::days(a.ra_validity_days),
    };
    let ca = Ca::create(dir, &params, &pass)?;
    let cfg_path = dir.join(config::FILE);
    if !cfg_path.exists() {
        let mut text = config::template(&a.listen, &a.challenge_mode);
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
    ca: Arc<Ca>,
    store: Arc<dyn store::Store>,
}

async fn load(dir: &Path, migrate: bool) -> anyhow::Result<Loaded> {
    let config = Config::load(dir)?;
    let pass = Passphrase::locate(dir, config.passphrase_file.as_deref())?;
    let ca = Ca::load(dir, &pass)?;
    let store = store::open(&config.database_url, migrate && config.auto_migrate)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    Ok(Loaded { config: Arc::new(config), ca: Arc::new(ca), store })
}

fn clock() -> Arc<dyn Clock> {
    let offset = std::env::var("SCEPD_CLOCK_OFFSET_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    Arc::new(SystemClock::with_offset(offset))
}

async fn serve(dir: &Path, listen: Option<&str>) -> anyhow::Result<()> {
    let mut l = load(dir, true).await?;
    if let Some(addr) = listen {
        let mut c = (*l.config).clone();
        c.listen = addr.parse().with_context(|| format!("--listen {addr:?} is not an address like 127.0.0.1:8080"))?;
        l.config = Arc::new(c);
    }
    if l.config.challenge.mode == config::ChallengeMode::None {
        tracing::warn!("challenge.mode is \"none\": anyone who can reach this server can enroll");
    }
    let authority = Arc::new(Authority::new(l.ca, l.store, l.config.clone(), clock())?);
    let listener = tokio::net::TcpListener::bind(l.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", l.config.listen))?;
    http::serve(listener, AppState { authority }, shutdown_signal()).await
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

async fn challenge_new(dir: &Path) -> anyhow::Result<()> {
    let l = load(dir, true).await?;
    let c = &l.config.challenge;
    if c.mode == config::ChallengeMode::None {
        bail!("challenge.mode is \"none\" in {}: no challenge is needed or checked", dir.join(config::FILE).display());
    }
    let authority = Authority::new(l.ca, l.store.clone(), l.config.clone(), clock())?;
    let now = authority.now();
    match challenge::mint(
        l.store.as_ref(),
        authority.challenge_secret(),
        c.password_length,
        c.password_validity_minutes,
        c.password_max,
        "cli",
        now,
    )
    .await?
    {
        challenge::MintResult::Minted(m) => {
            println!("{}", m.password.as_str());
            Ok(())
        }
        challenge::MintResult::CacheFull => bail!(
            "The password cache is full: {} unused passwords are outstanding (challenge.password_max). Use one or wait for one to expire.",
            c.password_max
        ),
    }
}

/// Config and store of an initialised data directory, for commands that need no keys.
async fn open_store(dir: &Path) -> anyhow::Result<Arc<dyn store::Store>> {
    if !dir.join(config::FILE).exists() {
        bail!(
            "{} is not a scepd data directory (no {}): run scepd init --data-dir {}",
            dir.display(),
            config::FILE,
            dir.display()
        );
    }
    let config = Config::load(dir)?;
    let store = store::open(&config.database_url, config.auto_migrate)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    Ok(store)
}

async fn challenge_list(dir: &Path, json: bool) -> anyhow::Result<()> {
    let store = open_store(dir).await?;
    let now = unix(clock().now());
    let rows = store.list_challenges(now).await?;
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
    let store = open_store(dir).await?;
    let rows = store.list_certificates(limit).await?;
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
    let store = open_store(dir).await?;
    let serial = serial.trim().trim_start_matches("0x").replace(':', "").to_ascii_uppercase();
    let row = store.certificate(&serial).await?.with_context(|| format!("no certificate with serial {serial}"))?;
    let cert = crate::ca::cert_from_der(&row.der).context("the stored certificate does not decode")?;
    use der::EncodePem;
    print!("{}", cert.to_pem(der::pem::LineEnding::LF)?);
    Ok(())
}

fn fmt_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}
