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

/// Write a file readable by its owner only (for keys and PKCS#12 files): mode 0600 even
/// when the file exists already with another mode, never through a symbolic link at
/// `path`, and never into a file with other hard links.
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    // Not truncated on opening: an existing file is emptied only once it is private.
    opts.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A link at the destination would put the key wherever it points.
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut f = opts.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return symlink_refused(path);
        }
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = f.metadata().with_context(|| format!("cannot write {}", path.display()))?;
        if !meta.is_file() {
            bail!("{} is not a regular file: refusing to write a private key there", path.display());
        }
        if meta.nlink() > 1 {
            bail!("{} has other hard links: refusing to write a private key there", path.display());
        }
        // The mode given to open applies only to a file it creates.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    f.set_len(0).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents.as_ref()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Refuse, before any work is done, a destination for [`write_private`] that is a
/// symbolic link, so that an enrollment is not spent on a key that cannot be written.
/// [`write_private`] refuses it again when it writes.
pub fn check_private_destination(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(symlink_refused(path)),
        _ => Ok(()),
    }
}

fn symlink_refused(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is a symbolic link: refusing to write a private key through it (remove it, or choose another path)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_private_file_ends_0600_and_a_link_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "an older, longer content").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&key, "new").unwrap();
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "new");

        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_private(&link, "secret").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(check_private_destination(&link).is_err());
        assert!(check_private_destination(&key).is_ok());
        // A dangling link is refused too: it would create the file it points to.
        let dangling = dir.path().join("dangling.pem");
        std::os::unix::fs::symlink(dir.path().join("missing"), &dangling).unwrap();
        assert!(write_private(&dangling, "secret").is_err());
        assert!(!dir.path().join("missing").exists());
        let hard = dir.path().join("hard.pem");
        std::fs::hard_link(&target, &hard).unwrap();
        assert!(write_private(&hard, "secret").unwrap_err().to_string().contains("hard links"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    }
}
