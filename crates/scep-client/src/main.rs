//! The `scep` command: talk to any SCEP or NDES server the way an admin would.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use der::{Encode, EncodePem, pem::LineEnding};
use scep::attr::MessageType;
use scep::crypto::{KeyType, PrivateKey};
use scep_client::bench::{BenchOptions, Limit};
use scep_client::check::ChallengeSource;
use scep_client::inspect::{Fingerprints, Role, validity_text};
use scep_client::{EnrollOptions, Enrolled, Fingerprint, Polled, ScepClient, ScepError, Transport, admin, p12, pem};
use x509_cert::Certificate;

/// scep: enroll with, inspect, test and measure SCEP/NDES servers.
#[derive(Parser, Debug)]
#[command(name = "scep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Print the server's GetCACaps keywords.
    Caps {
        /// SCEP URL, e.g. http://host/certsrv/mscep/mscep.dll
        url: String,
    },
    /// Print the CA and RA certificates (GetCACert): role, validity, fingerprints.
    Cacert {
        /// SCEP URL.
        url: String,
        /// Write the certificates as PEM to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Expected CA fingerprint (SHA-256, SHA-1 or MD5, hex): everything used must chain to that CA.
        #[arg(long)]
        ca_fingerprint: Option<String>,
    },
    /// Enroll: generate or load a key, send a PKCSReq, write key.pem, cert.pem, chain.pem.
    ///
    /// Exit status 2 when the request is still PENDING after --wait: key.pem is kept for `scep poll`.
    Enroll {
        /// SCEP URL.
        url: String,
        /// Challenge password (or SCEP_CHALLENGE).
        #[arg(long, env = "SCEP_CHALLENGE", hide_env_values = true)]
        challenge: Option<String>,
        #[command(flatten)]
        req: RequestArgs,
        /// Use this private key (PKCS#8 or PKCS#1 PEM) instead of generating one.
        #[arg(long, conflicts_with = "key_type")]
        key: Option<PathBuf>,
        /// Type of a generated key: rsa2048, rsa3072, rsa4096, p256, p384.
        #[arg(long)]
        key_type: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Renew: a RenewalReq (or PKCSReq) signed by the current certificate.
    Renew {
        /// SCEP URL.
        url: String,
        /// The current certificate (PEM or DER).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key.
        #[arg(long)]
        key: PathBuf,
        /// Ask for a certificate on a new key (same type unless --key-type).
        #[arg(long)]
        new_key: bool,
        /// Type of the new key: rsa2048, rsa3072, rsa4096, p256, p384.
        #[arg(long, requires = "new_key")]
        key_type: Option<String>,
        /// Send PKCSReq (19) signed by the current certificate instead of RenewalReq (17).
        #[arg(long)]
        pkcsreq: bool,
        /// Expected CA fingerprint (SHA-256, SHA-1 or MD5, hex).
        #[arg(long)]
        ca_fingerprint: Option<String>,
        /// Seconds to keep polling a pending request.
        #[arg(long, default_value_t = 300)]
        wait: u64,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Send one CertPoll for a pending request (exit status 2 while still PENDING).
    Poll {
        /// SCEP URL.
        url: String,
        /// The transactionID of the pending request (printed by enroll).
        #[arg(long)]
        transaction_id: String,
        /// The subject requested, e.g. "CN=device-1,O=Example".
        #[arg(long)]
        subject: String,
        /// The private key of the request.
        #[arg(long)]
        key: PathBuf,
        /// Directory for cert.pem and chain.pem once issued.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Expected CA fingerprint (SHA-256, SHA-1 or MD5, hex): everything used must chain to that CA.
        #[arg(long)]
        ca_fingerprint: Option<String>,
    },
    /// Fetch a certificate by serial number (GetCert).
    Getcert {
        /// SCEP URL.
        url: String,
        /// Serial number, hex.
        #[arg(long)]
        serial: String,
        /// Write the certificate here (PEM) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Expected CA fingerprint (SHA-256, SHA-1 or MD5, hex): everything used must chain to that CA.
        #[arg(long)]
        ca_fingerprint: Option<String>,
    },
    /// Fetch the CRL of the CA that issued a serial number (GetCRL).
    Getcrl {
        /// SCEP URL.
        url: String,
        /// Serial number, hex, of a certificate the CA issued.
        #[arg(long)]
        serial: String,
        /// Write the CRL here (PEM) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Expected CA fingerprint (SHA-256, SHA-1 or MD5, hex): everything used must chain to that CA.
        #[arg(long)]
        ca_fingerprint: Option<String>,
    },
    /// Get a challenge password from the NDES admin page (NTLM when offered, else Basic).
    Challenge {
        /// Admin page URL, e.g. http://host/certsrv/mscep_admin/
        admin_url: String,
        #[command(flatten)]
        login: Login,
    },
    /// Run the admin's test plan: every step PASS, WARN, FAIL or SKIP.
    Check {
        /// SCEP URL.
        url: String,
        #[command(flatten)]
        source: SourceArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Measure enrollments per second and latency with concurrent workers.
    Bench {
        /// SCEP URL.
        url: String,
        /// Concurrent workers.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Enrollments to run (default 100).
        #[arg(long, conflicts_with = "duration")]
        count: Option<usize>,
        /// Seconds to run instead of a count.
        #[arg(long)]
        duration: Option<f64>,
        #[command(flatten)]
        source: SourceArgs,
        /// RSA key size of the enrolled keys: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        key_size: u32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// What a certificate request asks for, and how it travels.
#[derive(Args, Debug)]
struct RequestArgs {
    /// Subject, e.g. "CN=device-1,O=Example".
    #[arg(long)]
    subject: String,
    /// DNS subject alternative names.
    #[arg(long)]
    dns: Vec<String>,
    /// IP subject alternative names.
    #[arg(long)]
    ip: Vec<std::net::IpAddr>,
    /// Email subject alternative names.
    #[arg(long)]
    email: Vec<String>,
    /// User principal names (Microsoft UPN otherName).
    #[arg(long)]
    upn: Vec<String>,
    /// Expected CA fingerprint (SHA-256, SHA-1 or MD5 as the admin page shows, hex).
    #[arg(long)]
    ca_fingerprint: Option<String>,
    /// Send PKIOperation by GET even if POST is advertised.
    #[arg(long, conflicts_with = "post")]
    get: bool,
    /// Send PKIOperation by POST even if not advertised.
    #[arg(long)]
    post: bool,
    /// Seconds to keep polling a pending request.
    #[arg(long, default_value_t = 300)]
    wait: u64,
}

/// Where the results go.
#[derive(Args, Debug)]
struct OutputArgs {
    /// Directory for key.pem, cert.pem and chain.pem.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Also write a PKCS#12 file (key, certificate, chain).
    #[arg(long)]
    p12: Option<PathBuf>,
    /// Read the PKCS#12 password from standard input (else SCEP_P12_PASSWORD).
    #[arg(long, requires = "p12")]
    p12_password_stdin: bool,
}

/// Admin page credentials; the password comes from SCEP_PASSWORD or standard input.
#[derive(Args, Debug)]
struct Login {
    /// User name (DOMAIN\user or user@domain for NTLM).
    #[arg(long)]
    user: String,
    #[command(flatten)]
    auth: AuthArgs,
}

/// How the admin page login goes.
#[derive(Args, Debug)]
struct AuthArgs {
    /// auto (NTLM when the server offers NTLM or Negotiate, else Basic), ntlm, or basic
    /// (for accounts without NTLM, such as scepd users added without --ntlm).
    #[arg(long, default_value = "auto", value_parser = parse_auth)]
    auth: admin::AuthScheme,
    /// Send Basic credentials over plain http:// too, where the network can read them.
    #[arg(long)]
    allow_basic_over_http: bool,
}

impl AuthArgs {
    fn login(&self, user: &str, password: &str) -> admin::Login {
        let mut login = admin::Login::new(user, password);
        login.scheme = self.auth;
        login.allow_basic_over_http = self.allow_basic_over_http;
        login
    }
}

fn parse_auth(s: &str) -> Result<admin::AuthScheme, String> {
    s.parse()
}

/// Where enrollments get their challenge.
#[derive(Args, Debug)]
struct SourceArgs {
    /// The NDES admin page, for a fresh challenge per enrollment.
    #[arg(long, requires = "user", conflicts_with = "challenge")]
    admin_url: Option<String>,
    /// Admin page user (password from SCEP_PASSWORD or standard input).
    #[arg(long, requires = "admin_url")]
    user: Option<String>,
    /// A fixed challenge (or SCEP_CHALLENGE).
    #[arg(long, env = "SCEP_CHALLENGE", hide_env_values = true)]
    challenge: Option<String>,
    #[command(flatten)]
    auth: AuthArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("scep: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Caps { url } => {
            let caps = ScepClient::new(&url).caps().await?;
            if caps.0.is_empty() {
                eprintln!("scep: the server offers no capabilities (clients then use DES and SHA-1)");
            }
            print!("{}", caps.to_body());
        }
        Command::Cacert { url, out, ca_fingerprint } => {
            cacert(&client(&url, ca_fingerprint.as_deref())?, out.as_deref()).await?
        }
        Command::Enroll { url, challenge, req, key, key_type, out } => {
            let key = match key {
                Some(p) => pem::load_key(&p)?,
                None => PrivateKey::generate(key_type_arg(key_type.as_deref())?)?,
            };
            let mut opts = request_options(&req)?;
            opts.challenge = challenge;
            check_outputs(&out)?;
            let p12_password = p12_password(&out)?;
            match client(&url, req.ca_fingerprint.as_deref())?.enroll(&key, &opts).await {
                Ok(res) => write_outputs(&out, &key, &res, p12_password.as_deref())?,
                Err(ScepError::StillPending { waited, transaction_id }) => {
                    // Keep the key: the certificate comes later, by `scep poll`.
                    std::fs::create_dir_all(&out.out)?;
                    let key_path = out.out.join("key.pem");
                    pem::write_private(&key_path, pem::key_pem(&key)?)?;
                    println!("PENDING after {waited:?}: the request waits for approval; wrote {}", key_path.display());
                    println!(
                        "poll later with: scep poll {url} --transaction-id {transaction_id} --subject {:?} --key {}",
                        req.subject,
                        key_path.display()
                    );
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Renew { url, cert, key, new_key, key_type, pkcsreq, ca_fingerprint, wait, out } => {
            let current = pem::load_certs(&cert)?
                .into_iter()
                .next()
                .with_context(|| format!("{} holds no certificate", cert.display()))?;
            let current_key = pem::load_key(&key)?;
            if *current.tbs_certificate().subject_public_key_info() != scep::crypto::Signer::public_key(&current_key) {
                bail!("{} is not the key of {}", key.display(), cert.display());
            }
            if !current_key.can_decrypt() {
                bail!("the current key is not RSA: the reply is encrypted to the signer, so renew by enrolling again");
            }
            let new = if new_key {
                let kind = match key_type {
                    Some(k) => key_type_arg(Some(&k))?,
                    None => current_key.key_type(),
                };
                Some(PrivateKey::generate(kind)?)
            } else {
                None
            };
            let client = client(&url, ca_fingerprint.as_deref())?;
            let mut opts = EnrollOptions::renewing(&current)?;
            opts.max_wait = Duration::from_secs(wait);
            let mtype = if pkcsreq { MessageType::PkcsReq } else { MessageType::RenewalReq };
            check_outputs(&out)?;
            let p12_password = p12_password(&out)?;
            let key_for = new.as_ref().unwrap_or(&current_key);
            let res = client.renew(key_for, &current, &current_key, &opts, mtype).await?;
            write_outputs(&out, key_for, &res, p12_password.as_deref())?;
        }
        Command::Poll { url, transaction_id, subject, key, out, ca_fingerprint } => {
            let key = pem::load_key(&key)?;
            match client(&url, ca_fingerprint.as_deref())?.poll(&key, &subject, &transaction_id).await? {
                Polled::Issued(res) => {
                    std::fs::create_dir_all(&out)?;
                    write_file(&out.join("cert.pem"), &pem::certs_pem(std::slice::from_ref(&res.certificate))?)?;
                    write_file(&out.join("chain.pem"), &pem::certs_pem(&res.chain)?)?;
                    print_issued(&res);
                    println!("wrote {}", paths(&out, &["cert.pem", "chain.pem"]));
                }
                Polled::Pending => {
                    println!("PENDING: the request {transaction_id} still waits for approval; poll again later");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        Command::Getcert { url, serial, out, ca_fingerprint } => {
            let cert = client(&url, ca_fingerprint.as_deref())?.get_cert(&serial_arg(&serial)?).await?;
            let text = cert.to_pem(LineEnding::LF)?;
            match out {
                Some(p) => {
                    write_file(&p, &text)?;
                    eprintln!("{}: wrote {}", cert.tbs_certificate().subject(), p.display());
                }
                None => print!("{text}"),
            }
        }
        Command::Getcrl { url, serial, out, ca_fingerprint } => {
            let crl = client(&url, ca_fingerprint.as_deref())?.get_crl(&serial_arg(&serial)?).await?;
            let tbs = &crl.tbs_cert_list;
            let revoked = tbs.revoked_certificates.as_ref().map_or(0, Vec::len);
            let next = tbs.next_update.map(|t| t.to_string()).unwrap_or_else(|| "none".into());
            let summary = format!(
                "CRL of {}: this update {}, next update {next}, {revoked} revoked",
                tbs.issuer, tbs.this_update
            );
            let text = der::pem::encode_string("X509 CRL", LineEnding::LF, &crl.to_der()?)?;
            match out {
                Some(p) => {
                    write_file(&p, &text)?;
                    println!("{summary}; wrote {}", p.display());
                }
                None => {
                    eprintln!("{summary}");
                    print!("{text}");
                }
            }
        }
        Command::Challenge { admin_url, login } => {
            let password = login_password()?;
            let login = login.auth.login(&login.user, &password);
            let page = admin::fetch(&admin_url, &login, Duration::from_secs(30)).await?;
            if page.reusable {
                eprintln!("scep: this is the single (reusable) password, not a one-time challenge");
            }
            println!("{}", page.password);
        }
        Command::Check { url, source, json, timeout } => {
            let source = challenge_source(&source)?;
            let report = scep_client::check::run(&url, &source, Duration::from_secs(timeout)).await;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            return Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Bench { url, concurrency, count, duration, source, key_size, json, timeout } => {
            let limit = match (count, duration) {
                (_, Some(d)) if !(d > 0.0 && d.is_finite()) => bail!("--duration must be a positive number of seconds"),
                (_, Some(d)) => Limit::Duration(Duration::from_secs_f64(d)),
                (Some(n), None) => Limit::Count(n),
                (None, None) => Limit::Count(100),
            };
            let key_type = match key_size {
                2048 => KeyType::Rsa2048,
                3072 => KeyType::Rsa3072,
                4096 => KeyType::Rsa4096,
                other => bail!("--key-size {other}: use 2048, 3072 or 4096"),
            };
            let opts = BenchOptions {
                concurrency,
                limit,
                challenge: challenge_source(&source)?,
                key_type,
                timeout: Duration::from_secs(timeout),
            };
            if !json {
                eprintln!("scep bench: preparing keys and requests, then sending...");
            }
            let report = scep_client::bench::run(&url, &opts).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            if report.count == 0 {
                eprintln!("scep: no enrollment succeeded");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A client for `url`, pinned to the CA when a fingerprint is given.
fn client(url: &str, ca_fingerprint: Option<&str>) -> anyhow::Result<ScepClient> {
    let client = ScepClient::new(url);
    Ok(match ca_fingerprint {
        Some(fp) => client.with_ca_fingerprint(fp.parse::<Fingerprint>()?),
        None => client,
    })
}

async fn cacert(client: &ScepClient, out: Option<&Path>) -> anyhow::Result<()> {
    let cas = client.ca_certs().await?;
    println!("Content-Type: {}", cas.content_type);
    for c in &cas.all {
        let tbs = c.tbs_certificate();
        let f = Fingerprints::of(c);
        println!("- {}: {}", Role::of(c).label(), tbs.subject());
        println!("  issuer:   {}", tbs.issuer());
        println!("  serial:   {}", hex::encode_upper(tbs.serial_number().as_bytes()));
        println!("  valid:    {}", validity_text(c));
        println!("  MD5:      {}  (NDES thumbprint {})", f.md5, f.md5_ndes());
        println!("  SHA-1:    {}", f.sha1);
        println!("  SHA-256:  {}", f.sha256);
    }
    if let Some(path) = out {
        write_file(path, &pem::certs_pem(&cas.all)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn request_options(req: &RequestArgs) -> anyhow::Result<EnrollOptions> {
    let mut opts = EnrollOptions::new(&req.subject);
    opts.dns = req.dns.clone();
    opts.ips = req.ip.clone();
    opts.emails = req.email.clone();
    opts.upns = req.upn.clone();
    opts.transport = if req.get {
        Transport::Get
    } else if req.post {
        Transport::Post
    } else {
        Transport::Auto
    };
    opts.max_wait = Duration::from_secs(req.wait);
    Ok(opts)
}

/// Refuse private outputs that could not be written before anything is enrolled.
fn check_outputs(out: &OutputArgs) -> anyhow::Result<()> {
    pem::check_private_destination(&out.out.join("key.pem"))?;
    if let Some(p) = &out.p12 {
        pem::check_private_destination(p)?;
    }
    Ok(())
}

fn write_outputs(out: &OutputArgs, key: &PrivateKey, res: &Enrolled, p12_password: Option<&str>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&out.out).with_context(|| format!("cannot create {}", out.out.display()))?;
    pem::write_private(&out.out.join("key.pem"), &pem::key_pem(key)?)?;
    write_file(&out.out.join("cert.pem"), &pem::certs_pem(std::slice::from_ref(&res.certificate))?)?;
    write_file(&out.out.join("chain.pem"), &pem::certs_pem(&res.chain)?)?;
    print_issued(res);
    println!("wrote {}", paths(&out.out, &["key.pem", "cert.pem", "chain.pem"]));
    if let (Some(path), Some(pw)) = (&out.p12, p12_password) {
        let name = friendly_name(&res.certificate);
        let der = p12::build(key.pkcs8_der(), &res.certificate, &res.chain, pw, &name)?;
        pem::write_private(path, &der)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn print_issued(res: &Enrolled) {
    let tbs = res.certificate.tbs_certificate();
    println!("issued: {}", tbs.subject());
    println!("serial: {}", hex::encode_upper(tbs.serial_number().as_bytes()));
    println!("valid: {}", validity_text(&res.certificate));
    println!(
        "transaction: {} ({}, {:?}{})",
        res.transaction_id,
        if res.used_post { "POST" } else { "GET" },
        res.cipher,
        if res.polls > 0 { format!(", {} CertPoll(s)", res.polls) } else { String::new() }
    );
}

fn paths(dir: &Path, names: &[&str]) -> String {
    names.iter().map(|n| dir.join(n).display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The CN, or the whole subject.
fn friendly_name(cert: &Certificate) -> String {
    let subject = cert.tbs_certificate().subject().to_string();
    subject.split(',').find_map(|rdn| rdn.trim().strip_prefix("CN=")).map(str::to_owned).unwrap_or(subject)
}

/// The PKCS#12 password, asked for before enrolling so that a missing one costs nothing.
fn p12_password(out: &OutputArgs) -> anyhow::Result<Option<String>> {
    if out.p12.is_none() {
        return Ok(None);
    }
    let pw = if out.p12_password_stdin {
        read_stdin_line("PKCS#12 password")?
    } else {
        std::env::var("SCEP_P12_PASSWORD").map_err(|_| {
            anyhow::anyhow!("--p12 needs a password: pass --p12-password-stdin or set SCEP_P12_PASSWORD")
        })?
    };
    if pw.is_empty() {
        bail!("the PKCS#12 password is empty");
    }
    Ok(Some(pw))
}

/// The admin page password: SCEP_PASSWORD, else the first line of standard input.
fn login_password() -> anyhow::Result<String> {
    match std::env::var("SCEP_PASSWORD") {
        Ok(pw) => Ok(pw),
        Err(_) => read_stdin_line("admin page password (or set SCEP_PASSWORD)"),
    }
}

fn read_stdin_line(what: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{what}: ");
    }
    let mut s = String::new();
    stdin.lock().read_line(&mut s).with_context(|| format!("cannot read the {what} from standard input"))?;
    let line = s.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(line)
}

fn challenge_source(a: &SourceArgs) -> anyhow::Result<ChallengeSource> {
    Ok(match (&a.admin_url, &a.user, &a.challenge) {
        (Some(url), Some(user), _) => {
            ChallengeSource::AdminPage { url: url.clone(), login: a.auth.login(user, &login_password()?) }
        }
        (Some(_), None, _) => bail!("--admin-url needs --user"),
        (None, _, Some(pw)) => ChallengeSource::Fixed(pw.clone()),
        (None, _, None) => ChallengeSource::None,
    })
}

fn key_type_arg(s: Option<&str>) -> anyhow::Result<KeyType> {
    s.unwrap_or("rsa2048").parse().map_err(anyhow::Error::msg)
}

fn serial_arg(s: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = s.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    let digits = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits.to_owned() };
    let bytes = hex::decode(&digits).map_err(|_| anyhow::anyhow!("--serial {s:?} is not hexadecimal"))?;
    if bytes.is_empty() {
        bail!("--serial is empty");
    }
    Ok(bytes)
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
