//! Reading and writing keys and certificates as PEM files.

use std::path::Path;

use anyhow::{Context, bail};
use der::{Decode, EncodePem, pem::LineEnding};
use scep::crypto::PrivateKey;
use x509_cert::Certificate;

/// Load a private key: PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`), PEM or DER.
pub fn load_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(text) = std::str::from_utf8(&bytes)
        && text.contains("-----BEGIN")
    {
        let (label, der) = der::pem::decode_vec(text.trim().as_bytes())
            .with_context(|| format!("{} is not valid PEM", path.display()))?;
        return match label {
            "PRIVATE KEY" => Ok(PrivateKey::from_pkcs8_der(&der)?),
            "RSA PRIVATE KEY" => Ok(PrivateKey::from_pkcs1_der(&der)?),
            "ENCRYPTED PRIVATE KEY" => {
                bail!("{} is encrypted; decrypt it first (openssl pkey -in ... -out ...)", path.display())
            }
            other => bail!("{}: unsupported PEM label {other}", path.display()),
        };
    }
    PrivateKey::from_pkcs8_der(&bytes)
        .or_else(|_| PrivateKey::from_pkcs1_der(&bytes))
        .with_context(|| format!("{} is not a PKCS#8 or PKCS#1 private key", path.display()))
}

/// PKCS#8 PEM of a key.
pub fn key_pem(key: &PrivateKey) -> anyhow::Result<String> {
    Ok(der::pem::encode_string("PRIVATE KEY", LineEnding::LF, key.pkcs8_der())?)
}

/// PEM of certificates, concatenated.
pub fn certs_pem(certs: &[Certificate]) -> anyhow::Result<String> {
    let mut s = String::new();
    for c in certs {
        s.push_str(&c.to_pem(LineEnding::LF)?);
    }
    Ok(s)
}

/// Load certificates from PEM (one or more) or a single DER certificate.
pub fn load_certs(path: &Path) -> anyhow::Result<Vec<Certificate>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(b"-----BEGIN") || bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Certificate::load_pem_chain(&bytes)
            .with_context(|| format!("{} holds no valid certificate", path.display()));
    }
    Ok(vec![Certificate::from_der(&bytes).with_context(|| format!("{} is not a DER certificate", path.display()))?])
}

/// Write a file readable by its owner only (for keys and PKCS#12 files).
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents.as_ref()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
