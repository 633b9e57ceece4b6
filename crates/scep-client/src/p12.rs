//! PKCS#12 (RFC 7292) files of a key, its certificate and chain, as OpenSSL 3 writes
//! them by default: the key in a pkcs8ShroudedKeyBag under PBES2 (PBKDF2 with
//! HMAC-SHA-256, AES-256-CBC), the certificates in plain certBags, and an
//! HMAC-SHA-256 MAC keyed by the PKCS#12 KDF.
//!
//! Built from the der/pkcs8 types of the workspace: the pkcs12 crates on crates.io
//! pin another cms release candidate than ours.

use der::{
    Any, Decode, Encode, Sequence,
    asn1::{BmpString, ObjectIdentifier, OctetString, SetOfVec},
};
use pkcs8::{PrivateKeyInfoRef, pkcs5::pbes2};
use spki::AlgorithmIdentifierOwned;
use x509_cert::{Certificate, attr::Attribute};

/// Iterations of PBKDF2 and of the MAC key derivation.
const ITERATIONS: u32 = 100_000;

mod oid {
    use der::asn1::ObjectIdentifier as O;
    pub const DATA: O = O::new_unwrap("1.2.840.113549.1.7.1");
    pub const SHROUDED_KEY_BAG: O = O::new_unwrap("1.2.840.113549.1.12.10.1.2");
    pub const CERT_BAG: O = O::new_unwrap("1.2.840.113549.1.12.10.1.3");
    pub const X509_CERTIFICATE: O = O::new_unwrap("1.2.840.113549.1.9.22.1");
    pub const FRIENDLY_NAME: O = O::new_unwrap("1.2.840.113549.1.9.20");
    pub const LOCAL_KEY_ID: O = O::new_unwrap("1.2.840.113549.1.9.21");
    pub const SHA256: O = O::new_unwrap("2.16.840.1.101.3.4.2.1");
}

/// PKCS#12 errors.
#[derive(Debug, thiserror::Error)]
pub enum P12Error {
    /// An empty password: OpenSSL and Windows treat it inconsistently.
    #[error("the PKCS#12 password is empty; give a non-empty one")]
    EmptyPassword,
    /// Encoding failed.
    #[error("PKCS#12 encoding failed: {0}")]
    Der(#[from] der::Error),
    /// Key encryption failed.
    #[error("PKCS#12 key encryption failed: {0}")]
    Pkcs8(#[from] pkcs8::Error),
    /// The system RNG failed.
    #[error("no randomness for the PKCS#12 salt")]
    Rng,
}

/// PFX (RFC 7292 section 4).
#[derive(Sequence)]
struct Pfx {
    version: u8,
    auth_safe: ContentInfo,
    mac_data: MacData,
}

/// ContentInfo of type data.
#[derive(Sequence)]
struct ContentInfo {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: OctetString,
}

#[derive(Sequence)]
struct MacData {
    mac: DigestInfo,
    mac_salt: OctetString,
    iterations: u32,
}

#[derive(Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// SafeBag (section 4.2).
#[derive(Sequence)]
struct SafeBag {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    bag_value: Any,
    bag_attributes: SetOfVec<Attribute>,
}

/// CertBag (section 4.2.3).
#[derive(Sequence)]
struct CertBag {
    cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    cert_value: OctetString,
}

/// A PKCS#12 file (DER) holding `key_pkcs8` (unencrypted PKCS#8 DER), `cert` and
/// `chain`, protected by `password`.
pub fn build(
    key_pkcs8: &[u8],
    cert: &Certificate,
    chain: &[Certificate],
    password: &str,
    friendly_name: &str,
) -> Result<Vec<u8>, P12Error> {
    if password.is_empty() {
        return Err(P12Error::EmptyPassword);
    }
    let random = |n| scep::crypto::random_bytes(n).map_err(|_| P12Error::Rng);
    // localKeyId ties the key to its certificate: the certificate's SHA-1, as OpenSSL does.
    let key_id = scep::attr::DigestAlg::Sha1.digest(&cert.to_der()?);
    let ours = vec![
        attribute(oid::LOCAL_KEY_ID, Any::encode_from(&OctetString::new(key_id)?)?)?,
        attribute(oid::FRIENDLY_NAME, Any::encode_from(&BmpString::from_utf8(friendly_name)?)?)?,
    ];

    let salt = random(16)?;
    let iv: [u8; 16] = random(16)?.try_into().map_err(|_| P12Error::Rng)?;
    let params = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(ITERATIONS, &salt, iv)
        .map_err(|e| P12Error::Pkcs8(pkcs8::Error::EncryptedPrivateKey(e)))?;
    // PBES2 takes the password as UTF-8 bytes (OpenSSL 3 does the same).
    let encrypted = PrivateKeyInfoRef::from_der(key_pkcs8)?.encrypt_with_params(params, password)?;
    let key_bag = SafeBag {
        bag_id: oid::SHROUDED_KEY_BAG,
        bag_value: Any::from_der(encrypted.as_bytes())?,
        bag_attributes: SetOfVec::try_from(ours.clone())?,
    };

    let mut cert_bags = Vec::new();
    for (i, c) in std::iter::once(cert).chain(chain).enumerate() {
        let bag = CertBag { cert_id: oid::X509_CERTIFICATE, cert_value: OctetString::new(c.to_der()?)? };
        let attrs = if i == 0 { ours.clone() } else { vec![] };
        cert_bags.push(SafeBag {
            bag_id: oid::CERT_BAG,
            bag_value: Any::encode_from(&bag)?,
            bag_attributes: SetOfVec::try_from(attrs)?,
        });
    }

    let safe = |bags: Vec<SafeBag>| -> Result<ContentInfo, P12Error> {
        Ok(ContentInfo { content_type: oid::DATA, content: OctetString::new(bags.to_der()?)? })
    };
    let auth_safe_content = vec![safe(cert_bags)?, safe(vec![key_bag])?].to_der()?;

    let mac_salt = random(16)?;
    let mac_key = kdf_sha256(password, &mac_salt, 3, ITERATIONS, 32);
    let mac = scep::crypto::hmac_sha256(&mac_key, &auth_safe_content);
    let pfx = Pfx {
        version: 3,
        auth_safe: ContentInfo { content_type: oid::DATA, content: OctetString::new(auth_safe_content)? },
        mac_data: MacData {
            mac: DigestInfo {
                algorithm: AlgorithmIdentifierOwned { oid: oid::SHA256, parameters: Some(Any::null()) },
                digest: OctetString::new(mac.to_vec())?,
            },
            mac_salt: OctetString::new(mac_salt)?,
            iterations: ITERATIONS,
        },
    };
    Ok(pfx.to_der()?)
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, P12Error> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value])? })
}

/// The PKCS#12 key derivation (RFC 7292 appendix B.2) with SHA-256 (u = 32, v = 64);
/// `id` 3 derives MAC keys. The password is a BMPString with two trailing zero bytes.
fn kdf_sha256(password: &str, salt: &[u8], id: u8, iterations: u32, n: usize) -> Vec<u8> {
    const V: usize = 64;
    let sha = |d: &[u8]| scep::attr::DigestAlg::Sha256.digest(d);
    let mut pw: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    pw.extend_from_slice(&[0, 0]);
    let fill = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return vec![];
        }
        let len = V * src.len().div_ceil(V);
        src.iter().copied().cycle().take(len).collect()
    };
    let d = [id; V];
    let mut i: Vec<u8> = fill(salt);
    i.extend(fill(&pw));
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut a = sha(&[&d[..], &i[..]].concat());
        for _ in 1..iterations {
            a = sha(&a);
        }
        out.extend_from_slice(&a);
        if out.len() >= n {
            break;
        }
        // I_j = (I_j + B + 1) mod 2^(8v), B = A repeated to v bytes.
        let b: Vec<u8> = a.iter().copied().cycle().take(V).collect();
        for block in i.chunks_mut(V) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum.to_le_bytes()[0];
                carry = sum >> 8;
            }
        }
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdf_matches_openssl_pkcs12kdf_with_sha256() {
        // `openssl kdf -keylen N -kdfopt digest:SHA256 -kdfopt hexpass:HEX
        //  -kdfopt hexsalt:0102030405060708 -kdfopt iter:I -kdfopt id:ID PKCS12KDF`, HEX being
        // "password" as a BMPString with its two zero bytes (what PKCS12_key_gen_utf8 passes).
        let salt = [1, 2, 3, 4, 5, 6, 7, 8];
        let hex = |v: Vec<u8>| hex::encode_upper(v);
        assert_eq!(
            hex(kdf_sha256("password", &salt, 3, 1, 32)),
            "D96C84DDB0A7079CA23A9B201D427EDCED23D4790A273A2D5AB36B98224AB4EE"
        );
        assert_eq!(
            hex(kdf_sha256("password", &salt, 3, 1000, 32)),
            "B3FAD7CF164BD8922EE6BE4677FF6714FE10E05AE66D895515380E7F7DE4A92B"
        );
        // Longer than one hash: the second block comes from the updated I.
        assert_eq!(
            hex(kdf_sha256("password", &salt, 1, 1, 48)),
            "3A4CAD73D7A6FD0D741C9C8C93C8657A66C54DAE02CD1C8CCC37801DA0FF0D0FFD962F4AB5108D90CF890586A614F8BB"
        );
    }
}
