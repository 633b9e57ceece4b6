//! The `scep` command: talk to any SCEP or NDES server the way an admin would.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use der::Encode;
use scep::crypto::{KeyType, PrivateKey};
use scep_client::{EnrollOptions, ScepClient, Transport, pem};

/// scep: enroll with, inspect and test SCEP/NDES servers.
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
    /// Print the CA and RA certificates (GetCACert) with their roles and fingerprints.
    Cacert {
        /// SCEP URL.
        url: String,
        /// Write the certificates as PEM to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Enroll: generate or load a key, send a PKCSReq, write key, certificate and chain.
    Enroll {
        /// SCEP URL.
        url: String,
        /// Challenge password (or SCEP_CHALLENGE).
        #[arg(long, env = "SCEP_CHALLENGE", hide_env_values = true)]
        challenge: Option<String>,
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
        /// Use this private key (PKCS#8 or PKCS#1 PEM) instead of generating one.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Type of a generated key: rsa2048, rsa3072, rsa4096, p256, p384.
        #[arg(long, default_value = "rsa2048")]
        key_type: String,
        /// Expected CA fingerprint (SHA-256 or SHA-1, hex).
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
        /// Directory for key.pem, cert.pem and chain.pem.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scep: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Caps { url } => {
            let caps = ScepClient::new(&url).caps().await?;
            print!("{}", caps.to_body());
        }
        Command::Cacert { url, out } => {
            let cas = ScepClient::new(&url).ca_certs().await?;
            println!("Content-Type: {}", cas.content_type);
            for c in &cas.all {
                let role = if *c == cas.ca {
                    "CA"
                } else if *c == cas.encryption && *c == cas.signing {
                    "RA (signing and encryption)"
                } else if *c == cas.encryption {
                    "RA encryption"
                } else if *c == cas.signing {
                    "RA signing"
                } else {
                    "other"
                };
                let tbs = c.tbs_certificate();
                let der = c.to_der()?;
                println!("- {role}: {}", tbs.subject());
                println!("  issuer:     {}", tbs.issuer());
                println!("  valid:      {} to {}", tbs.validity().not_before, tbs.validity().not_after);
                println!("  SHA-256:    {}", hex::encode_upper(scep::attr::DigestAlg::Sha256.digest(&der)));
                println!("  SHA-1:      {}", hex::encode_upper(scep::attr::DigestAlg::Sha1.digest(&der)));
            }
            if let Some(path) = out {
                std::fs::write(&path, pem::certs_pem(&cas.all)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Command::Enroll {
            url,
            challenge,
            subject,
            dns,
            ip,
            email,
            key,
            key_type,
            ca_fingerprint,
            get,
            post,
            wait,
            out,
        } => {
            let key = match key {
                Some(p) => pem::load_key(&p)?,
                None => {
                    let kt: KeyType = key_type.parse().map_err(anyhow::Error::msg)?;
                    PrivateKey::generate(kt)?
                }
            };
            let mut opts = EnrollOptions::new(&subject);
            opts.challenge = challenge;
            opts.dns = dns;
            opts.ips = ip;
            opts.emails = email;
            opts.ca_fingerprint = ca_fingerprint;
            opts.transport = if get {
                Transport::Get
            } else if post {
                Transport::Post
            } else {
                Transport::Auto
            };
            opts.max_wait = Duration::from_secs(wait);
            let res = ScepClient::new(&url).enroll(&key, &opts).await?;
            std::fs::create_dir_all(&out)?;
            pem::write_private(&out.join("key.pem"), &pem::key_pem(&key)?)?;
            std::fs::write(out.join("cert.pem"), pem::certs_pem(std::slice::from_ref(&res.certificate))?)?;
            std::fs::write(out.join("chain.pem"), pem::certs_pem(&res.chain)?)?;
            let tbs = res.certificate.tbs_certificate();
            println!("issued: {}", tbs.subject());
            println!("serial: {}", hex::encode_upper(tbs.serial_number().as_bytes()));
            println!("not after: {}", tbs.validity().not_after);
            println!(
                "transaction: {} ({}, {:?})",
                res.transaction_id,
                if res.used_post { "POST" } else { "GET" },
                res.cipher
            );
            println!("wrote {}/key.pem, cert.pem, chain.pem", out.display());
        }
    }
    Ok(())
}
