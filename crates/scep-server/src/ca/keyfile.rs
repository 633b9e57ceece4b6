//! Key and certificate files: the passphrase, PKCS#8 PBES2 encryption at rest,
//! owner-only permissions.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use der::{EncodePem, pem::LineEnding};
use pkcs8::{EncryptedPrivateKeyInfoRef, SecretDocument};
use scep::crypto::{PrivateKey, Signer};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::KeyedCert;

/// The key passphrase: never from the command line.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl Passphrase {
    /// Wrap a passphrase.
    pub fn new(s: String) -> Self {
        Passphrase(Zeroizing::new(s))
    }

    /// Find the passphrase: `SCEPD_KEY_PASSPHRASE`, else the file given, else the file
    /// `SCEPD_KEY_PASSPHRASE_FILE` names (systemd credentials, container secrets), else
    /// `DIR/key-passphrase`.
    pub fn locate(data_dir: &Path, file: Option<&Path>) -> anyhow::Result<Self> {
        match Self::given(file)? {
            Some(p) => Ok(p),
            None => Self::read(&data_dir.join(super::files::PASSPHRASE)),
        }
    }

    /// The passphrase the operator gave, if any: `SCEPD_KEY_PASSPHRASE`, else the file
    /// given, else the file `SCEPD_KEY_PASSPHRASE_FILE` names.
    pub fn given(file: Option<&Path>) -> anyhow::Result<Option<Self>> {
        if let Some(p) = std::env::var("SCEPD_KEY_PASSPHRASE").ok().filter(|p| !p.is_empty()) {
            return Ok(Some(Passphrase::new(p)));
        }
        let env_file = std::env::var_os("SCEPD_KEY_PASSPHRASE_FILE").filter(|s| !s.is_empty()).map(PathBuf::from);
        file.map(Path::to_path_buf).or(env_file).map(|f| Self::read(&f)).transpose()
    }

    fn read(path: &Path) -> anyhow::Result<Self> {
        check_private(path)?;
        let text = fs::read_to_string(path).with_context(|| {
            format!(
                "no key passphrase: set SCEPD_KEY_PASSPHRASE, or passphrase_file in scepd.toml, or keep {}",
                path.display()
            )
        })?;
        let p = text.trim_end_matches(['\r', '\n']).to_owned();
        if p.is_empty() {
            bail!("the passphrase file {} is empty", path.display());
        }
        Ok(Passphrase::new(p))
    }

    /// A fresh random passphrase written to `DIR/key-passphrase` with mode 0600.
    pub fn generate_into(data_dir: &Path) -> anyhow::Result<(Self, PathBuf)> {
        let p = hex::encode(scep::crypto::random_bytes(24)?);
        let path = data_dir.join(super::files::PASSPHRASE);
        write_private(&path, format!("{p}\n").as_bytes())?;
        Ok((Passphrase::new(p), path))
    }
}

/// Write a new file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Refuse secret files that others can read.
pub fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = fs::metadata(path) else { return Ok(()) };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o}): run chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

/// Write `kc` as `NAME.pem` and `NAME.key` (encrypted) in `dir`.
pub fn save(dir: &Path, name: &str, kc: &KeyedCert, pass: &Passphrase) -> anyhow::Result<()> {
    fs::write(dir.join(format!("{name}.pem")), kc.cert.to_pem(LineEnding::LF)?)?;
    write_private(&dir.join(format!("{name}.key")), encrypt_key(&kc.key, pass)?.as_bytes())
}

/// Read `NAME.pem` and `NAME.key` from `dir`, checking that they belong together.
pub fn load(dir: &Path, name: &str, pass: &Passphrase) -> anyhow::Result<KeyedCert> {
    let cert_path = dir.join(format!("{name}.pem"));
    let pem = fs::read(&cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?;
    let cert = Certificate::load_pem_chain(&pem)
        .ok()
        .and_then(|v| v.into_iter().next())
        .with_context(|| format!("{} holds no certificate", cert_path.display()))?;
    let key = load_key(dir, name, pass)?;
    if key.public_key() != *cert.tbs_certificate().subject_public_key_info() {
        bail!("{}.key does not belong to {}", dir.join(name).display(), cert_path.display());
    }
    Ok(KeyedCert { cert, key })
}

/// Read the encrypted key `NAME.key` from `dir`.
pub fn load_key(dir: &Path, name: &str, pass: &Passphrase) -> anyhow::Result<PrivateKey> {
    let key_path = dir.join(format!("{name}.key"));
    check_private(&key_path)?;
    let pem = fs::read_to_string(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?;
    decrypt_key(&pem, pass).with_context(|| format!("cannot decrypt {} (wrong passphrase?)", key_path.display()))
}

/// Write a bare encrypted key `NAME.key` in `dir`.
pub fn save_key(dir: &Path, name: &str, key: &PrivateKey, pass: &Passphrase) -> anyhow::Result<()> {
    write_private(&dir.join(format!("{name}.key")), encrypt_key(key, pass)?.as_bytes())
}

fn encrypt_key(key: &PrivateKey, pass: &Passphrase) -> anyhow::Result<String> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(key.pkcs8_der()).map_err(|e| anyhow::anyhow!("PKCS#8: {e}"))?;
    // PBES2 with scrypt and AES-256-CBC (pkcs8's default).
    let doc = info.encrypt(pass.0.as_bytes()).map_err(|e| anyhow::anyhow!("cannot encrypt a private key: {e}"))?;
    Ok(doc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF).map_err(|e| anyhow::anyhow!("PEM: {e}"))?.to_string())
}

fn decrypt_key(pem: &str, pass: &Passphrase) -> anyhow::Result<PrivateKey> {
    let (label, doc) = SecretDocument::from_pem(pem).map_err(|e| anyhow::anyhow!("not a PEM key: {e}"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        bail!("the key is not encrypted (label {label}); keys must be encrypted at rest");
    }
    let enc = EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let der = enc.decrypt(pass.0.as_bytes()).map_err(|_| anyhow::anyhow!("decryption failed"))?;
    Ok(PrivateKey::from_pkcs8_der(der.as_bytes())?)
}
