//! Secrets at rest in the store (the single master password, users' NT hashes):
//! AES-256-GCM under a key derived from the CA key, with what the secret is (its
//! setting or user name) as associated data, so a sealed value cannot be moved to
//! another row. The blob is nonce (12 bytes) then ciphertext and tag.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::store::StoreError;

/// Seal `plain` for `what`.
pub fn seal(key: &[u8; 32], what: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| StoreError::Corrupt("no randomness for a nonce"))?;
    let mut buf = plain.to_vec();
    aead(key)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(what), &mut buf)
        .map_err(|_| StoreError::Corrupt("encryption failed"))?;
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&buf);
    Ok(blob)
}

/// Open what [`seal`] sealed for `what`; an error for a blob sealed under other keys
/// or for something else.
pub fn open(key: &[u8; 32], what: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let (nonce, sealed) = blob.split_at_checked(NONCE_LEN).ok_or(StoreError::Corrupt("sealed value too short"))?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| StoreError::Corrupt("sealed value"))?;
    let mut buf = Zeroizing::new(sealed.to_vec());
    let n = aead(key)
        .open_in_place(nonce, Aad::from(what), &mut buf)
        .map_err(|_| StoreError::Corrupt("a sealed value does not open (other keys?)"))?
        .len();
    buf.truncate(n);
    Ok(buf)
}

fn aead(key: &[u8; 32]) -> LessSafeKey {
    // AES-256 accepts any 32-byte key.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| std::process::abort()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_name() {
        let blob = seal(&[1; 32], b"user:svc", b"secret").unwrap();
        assert_eq!(open(&[1; 32], b"user:svc", &blob).unwrap().as_slice(), b"secret");
        assert!(open(&[2; 32], b"user:svc", &blob).is_err());
        assert!(open(&[1; 32], b"user:other", &blob).is_err());
        assert!(open(&[1; 32], b"user:svc", &blob[..10]).is_err());
        assert_ne!(seal(&[1; 32], b"user:svc", b"secret").unwrap(), blob, "fresh nonce");
    }
}
