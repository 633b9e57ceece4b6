//! The crypto seams: [`Signer`] and [`Decrypter`], a software implementation of both
//! ([`PrivateKey`], on aws-lc-rs), signature verification, and the adapter that lets
//! the x509-cert builders sign with any [`Signer`].
//!
//! An HSM or PKCS#11 key plugs in by implementing the two traits.

use core::fmt;

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{
        KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey,
        PrivateDecryptingKey,
    },
    signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair},
};
use der::{Decode, Encode, asn1::BitString};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::attr::{DigestAlg, KeyTransport};
use crate::error::{Error, Result};

/// OIDs of key and signature algorithms.
pub mod alg {
    use spki::ObjectIdentifier;
    /// rsaEncryption.
    pub const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// id-RSAES-OAEP.
    pub const RSAES_OAEP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.7");
    /// sha1WithRSAEncryption.
    pub const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// sha384WithRSAEncryption.
    pub const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    /// sha512WithRSAEncryption.
    pub const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    /// id-ecPublicKey.
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// ecdsa-with-SHA1.
    pub const ECDSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
    /// ecdsa-with-SHA256.
    pub const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    /// ecdsa-with-SHA384.
    pub const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    /// ecdsa-with-SHA512.
    pub const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
    /// secp256r1.
    pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    /// secp384r1.
    pub const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    /// id-mgf1.
    pub const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
}

/// Key types for generated keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// RSA 2048-bit.
    Rsa2048,
    /// RSA 3072-bit.
    Rsa3072,
    /// RSA 4096-bit.
    Rsa4096,
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
}

impl core::str::FromStr for KeyType {
    type Err = String;
    fn from_str(s: &str) -> core::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "rsa2048" | "rsa" => KeyType::Rsa2048,
            "rsa3072" => KeyType::Rsa3072,
            "rsa4096" => KeyType::Rsa4096,
            "ecdsap256" | "p256" | "ecp256" => KeyType::EcP256,
            "ecdsap384" | "p384" | "ecp384" => KeyType::EcP384,
            _ => {
                return Err(format!("unknown key type {s:?}: use rsa2048, rsa3072, rsa4096, p256 or p384"));
            }
        })
    }
}

/// Produces signatures: the seam for CA and RA signing keys.
pub trait Signer: Send + Sync {
    /// The signature algorithm identifier this key produces, for certificates, CRLs
    /// and SignerInfos. RSA keys sign with SHA-256, P-256 with SHA-256, P-384 with SHA-384.
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// The digest used with [`Signer::sign`].
    fn digest_algorithm(&self) -> DigestAlg;
    /// Sign `message` (hashing it with [`Signer::digest_algorithm`]).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    /// The public key as SubjectPublicKeyInfo.
    fn public_key(&self) -> SubjectPublicKeyInfoOwned;
}

/// Unwraps content-encryption keys: the seam for the RA encryption key.
pub trait Decrypter: Send + Sync {
    /// Decrypt an encrypted content key. Any failure is returned as [`Error::Decrypt`],
    /// which callers must treat exactly like success with a wrong key.
    fn decrypt_key(&self, transport: KeyTransport, encrypted: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
}

enum Inner {
    Rsa { sign: RsaKeyPair, decrypt: PrivateDecryptingKey },
    Ec(EcdsaKeyPair, KeyType),
}

/// A private key held in memory (software implementation of [`Signer`] and [`Decrypter`]).
pub struct PrivateKey {
    inner: Inner,
    pkcs8: Zeroizing<Vec<u8>>,
    spki: SubjectPublicKeyInfoOwned,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("type", &self.key_type()).finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generate a new key.
    pub fn generate(kind: KeyType) -> Result<Self> {
        let pkcs8 = match kind {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let size = match kind {
                    KeyType::Rsa3072 => KeySize::Rsa3072,
                    KeyType::Rsa4096 => KeySize::Rsa4096,
                    _ => KeySize::Rsa2048,
                };
                let kp = RsaKeyPair::generate(size)?;
                kp.as_der()?.as_ref().to_vec()
            }
            KeyType::EcP256 | KeyType::EcP384 => {
                let alg = ec_alg(kind);
                let kp = EcdsaKeyPair::generate(alg)?;
                kp.to_pkcs8v1()?.as_ref().to_vec()
            }
        };
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Load an unencrypted PKCS#8 DER private key (RSA, P-256 or P-384).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        if let Ok(kp) = RsaKeyPair::from_pkcs8(der) {
            let decrypt = PrivateDecryptingKey::from_pkcs8(der).map_err(|_| Error::Crypto("RSA key rejected"))?;
            let spki_der = rsa_spki_der(kp.public_key().as_ref())?;
            return Ok(PrivateKey {
                inner: Inner::Rsa { sign: kp, decrypt },
                pkcs8: Zeroizing::new(der.to_vec()),
                spki: SubjectPublicKeyInfoOwned::from_der(&spki_der)?,
            });
        }
        for kind in [KeyType::EcP256, KeyType::EcP384] {
            if let Ok(kp) = EcdsaKeyPair::from_pkcs8(ec_alg(kind), der) {
                let curve = if kind == KeyType::EcP256 { alg::P256 } else { alg::P384 };
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifierOwned {
                        oid: alg::EC_PUBLIC_KEY,
                        parameters: Some(der::Any::encode_from(&curve)?),
                    },
                    subject_public_key: BitString::from_bytes(kp.public_key().as_ref())?,
                };
                return Ok(PrivateKey { inner: Inner::Ec(kp, kind), pkcs8: Zeroizing::new(der.to_vec()), spki });
            }
        }
        Err(Error::Crypto("not an RSA, P-256 or P-384 PKCS#8 private key"))
    }

    /// Load a PKCS#1 `RSAPrivateKey` DER (what `openssl genrsa -traditional` writes).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        let kp = RsaKeyPair::from_der(der).map_err(|_| Error::Crypto("RSA key rejected"))?;
        let pkcs8 = kp.as_der()?.as_ref().to_vec();
        Self::from_pkcs8_der(&pkcs8)
    }

    /// The unencrypted PKCS#8 DER (for encrypting at rest; handle with care).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        match &self.inner {
            Inner::Rsa { sign, .. } => match sign.public_modulus_len() * 8 {
                n if n >= 4096 => KeyType::Rsa4096,
                n if n >= 3072 => KeyType::Rsa3072,
                _ => KeyType::Rsa2048,
            },
            Inner::Ec(_, kind) => *kind,
        }
    }

    /// Whether this key can unwrap content keys (RSA only).
    pub fn can_decrypt(&self) -> bool {
        matches!(self.inner, Inner::Rsa { .. })
    }
}

impl Signer for PrivateKey {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match &self.inner {
            Inner::Rsa { .. } => {
                AlgorithmIdentifierOwned { oid: alg::SHA256_WITH_RSA, parameters: Some(der::Any::null()) }
            }
            Inner::Ec(_, KeyType::EcP384) => AlgorithmIdentifierOwned { oid: alg::ECDSA_SHA384, parameters: None },
            Inner::Ec(..) => AlgorithmIdentifierOwned { oid: alg::ECDSA_SHA256, parameters: None },
        }
    }

    fn digest_algorithm(&self) -> DigestAlg {
        match &self.inner {
            Inner::Ec(_, KeyType::EcP384) => DigestAlg::Sha384,
            _ => DigestAlg::Sha256,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.inner {
            Inner::Rsa { sign, .. } => {
                let mut out = vec![0u8; sign.public_modulus_len()];
                sign.sign(&sig::RSA_PKCS1_SHA256, &rng, message, &mut out)?;
                Ok(out)
            }
            Inner::Ec(kp, _) => Ok(kp.sign(&rng, message)?.as_ref().to_vec()),
        }
    }

    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        self.spki.clone()
    }
}

impl Decrypter for PrivateKey {
    fn decrypt_key(&self, transport: KeyTransport, encrypted: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let Inner::Rsa { decrypt, .. } = &self.inner else {
            return Err(Error::Decrypt);
        };
        let mut out = Zeroizing::new(vec![0u8; decrypt.key_size_bytes()]);
        let n = match transport {
            KeyTransport::RsaPkcs1 => {
                let k = Pkcs1PrivateDecryptingKey::new(decrypt.clone()).map_err(|_| Error::Decrypt)?;
                k.decrypt(encrypted, &mut out).map_err(|_| Error::Decrypt)?.len()
            }
            KeyTransport::RsaOaepSha1 | KeyTransport::RsaOaepSha256 => {
                let alg =
                    if transport == KeyTransport::RsaOaepSha1 { &OAEP_SHA1_MGF1SHA1 } else { &OAEP_SHA256_MGF1SHA256 };
                let k = OaepPrivateDecryptingKey::new(decrypt.clone()).map_err(|_| Error::Decrypt)?;
                k.decrypt(alg, encrypted, &mut out, None).map_err(|_| Error::Decrypt)?.len()
            }
        };
        out.truncate(n);
        Ok(out)
    }
}

fn ec_alg(kind: KeyType) -> &'static sig::EcdsaSigningAlgorithm {
    if kind == KeyType::EcP384 { &sig::ECDSA_P384_SHA384_ASN1_SIGNING } else { &sig::ECDSA_P256_SHA256_ASN1_SIGNING }
}

/// SubjectPublicKeyInfo DER around a PKCS#1 RSAPublicKey.
fn rsa_spki_der(pkcs1: &[u8]) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: alg::RSA_ENCRYPTION, parameters: Some(der::Any::null()) },
        subject_public_key: BitString::from_bytes(pkcs1)?,
    };
    Ok(spki.to_der()?)
}

/// Verify `signature` over `message` by the key in `spki`, with the digest `digest`
/// (from a SignerInfo's digestAlgorithm) or the one named by `signature_alg`.
pub fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    signature_alg: &ObjectIdentifier,
    digest: Option<DigestAlg>,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    let key = spki.subject_public_key.raw_bytes();
    let digest = match (*signature_alg, digest) {
        (alg::SHA1_WITH_RSA | alg::ECDSA_SHA1, _) => DigestAlg::Sha1,
        (alg::SHA256_WITH_RSA | alg::ECDSA_SHA256, _) => DigestAlg::Sha256,
        (alg::SHA384_WITH_RSA | alg::ECDSA_SHA384, _) => DigestAlg::Sha384,
        (alg::SHA512_WITH_RSA | alg::ECDSA_SHA512, _) => DigestAlg::Sha512,
        (alg::RSA_ENCRYPTION | alg::EC_PUBLIC_KEY, Some(d)) => d,
        (other, _) => {
            return Err(Error::UnsupportedAlgorithm(format!("signature algorithm {other}")));
        }
    };
    let verifier: &'static dyn sig::VerificationAlgorithm = if spki.algorithm.oid == alg::RSA_ENCRYPTION {
        // Legacy 1024-bit keys still sign requests (throw-away signer certificates of old
        // routers); the key size rule for issued certificates is applied separately.
        match digest {
            DigestAlg::Sha1 => &sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlg::Sha256 => &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            DigestAlg::Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            DigestAlg::Sha512 => &sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        }
    } else if spki.algorithm.oid == alg::EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        match (curve, digest) {
            (Some(alg::P256), DigestAlg::Sha1) => &sig::ECDSA_P256_SHA1_ASN1,
            (Some(alg::P256), DigestAlg::Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
            (Some(alg::P256), DigestAlg::Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
            (Some(alg::P256), DigestAlg::Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
            (Some(alg::P384), DigestAlg::Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
            (Some(alg::P384), DigestAlg::Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
            (Some(alg::P384), DigestAlg::Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
            _ => return Err(Error::UnsupportedAlgorithm("EC curve or digest".into())),
        }
    } else {
        return Err(Error::UnsupportedAlgorithm(format!("public key algorithm {}", spki.algorithm.oid)));
    };
    sig::UnparsedPublicKey::new(verifier, key)
        .verify(message, signature)
        .map_err(|_| Error::BadMessageCheck("signature does not verify"))
}

/// Size in bits of an RSA public key, or the curve size of an EC key.
pub fn key_bits(spki: &SubjectPublicKeyInfoOwned) -> Option<usize> {
    if spki.algorithm.oid == alg::RSA_ENCRYPTION {
        // Read the modulus itself (RFC 8017 A.1.1): the RSA primitives take only keys of
        // 2048 bits or more, and a smaller key must be reported by its size.
        #[derive(der::Sequence)]
        struct RsaPublicKey<'a> {
            modulus: der::asn1::UintRef<'a>,
            public_exponent: der::asn1::UintRef<'a>,
        }
        let k = RsaPublicKey::from_der(spki.subject_public_key.as_bytes()?).ok()?;
        let m = k.modulus.as_bytes();
        let top = usize::try_from(m.first()?.leading_zeros()).ok()?;
        Some(m.len() * 8 - top)
    } else if spki.algorithm.oid == alg::EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref()?.decode_as::<ObjectIdentifier>().ok()?;
        match curve {
            alg::P256 => Some(256),
            alg::P384 => Some(384),
            _ => None,
        }
    } else {
        None
    }
}

/// RSA PKCS#1 v1.5 encryption of a content key to the RSA key in `spki`.
pub fn encrypt_key(spki: &SubjectPublicKeyInfoOwned, key: &[u8]) -> Result<Vec<u8>> {
    encrypt_key_with(spki, key, KeyTransport::RsaPkcs1)
}

/// Encryption of a content key to the RSA key in `spki` with `transport`.
pub fn encrypt_key_with(spki: &SubjectPublicKeyInfoOwned, key: &[u8], transport: KeyTransport) -> Result<Vec<u8>> {
    if spki.algorithm.oid != alg::RSA_ENCRYPTION {
        return Err(Error::UnsupportedAlgorithm("the recipient key is not RSA".into()));
    }
    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki.to_der()?)
        .map_err(|_| Error::Crypto("recipient RSA key rejected"))?;
    let out = match transport {
        KeyTransport::RsaPkcs1 => {
            let enc = aws_lc_rs::rsa::Pkcs1PublicEncryptingKey::new(pk)?;
            let mut out = vec![0u8; enc.ciphertext_size()];
            let n = enc.encrypt(key, &mut out)?.len();
            out.truncate(n);
            out
        }
        KeyTransport::RsaOaepSha1 | KeyTransport::RsaOaepSha256 => {
            let alg =
                if transport == KeyTransport::RsaOaepSha1 { &OAEP_SHA1_MGF1SHA1 } else { &OAEP_SHA256_MGF1SHA256 };
            let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(pk)?;
            let mut out = vec![0u8; enc.ciphertext_size()];
            let n = enc.encrypt(alg, key, &mut out, None)?.len();
            out.truncate(n);
            out
        }
    };
    Ok(out)
}

/// Adapter that lets `x509_cert::builder` (certificates, CRLs, CSRs) sign with any [`Signer`].
pub struct BuilderSigner<'a>(pub &'a dyn Signer);

/// The public half handed to the x509-cert builders.
#[derive(Clone, Debug)]
pub struct PublicKeyInfo(pub SubjectPublicKeyInfoOwned);

impl spki::EncodePublicKey for PublicKeyInfo {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::encode_msg(&self.0)?)
    }
}

/// A signature as produced by a [`Signer`], bit-string encoded as X.509 wants it.
#[derive(Clone, Debug)]
pub struct RawSignature(pub Vec<u8>);

impl spki::SignatureBitStringEncoding for RawSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Keypair for BuilderSigner<'_> {
    type VerifyingKey = PublicKeyInfo;
    fn verifying_key(&self) -> PublicKeyInfo {
        PublicKeyInfo(self.0.public_key())
    }
}

impl spki::DynSignatureAlgorithmIdentifier for BuilderSigner<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.0.signature_algorithm())
    }
}

impl signature::Signer<RawSignature> for BuilderSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> core::result::Result<RawSignature, signature::Error> {
        self.0.sign(msg).map(RawSignature).map_err(|_| signature::Error::new())
    }
}

/// Where replies get their random bytes (content keys, IVs, nonces): the system's
/// generator in production ([`SystemRandom`]); a fixed source where a reply must be
/// reproduced byte for byte, as a golden fixture. RSA key transport pads inside
/// aws-lc with the system generator whatever this says, so only replies without an
/// envelope (PENDING, FAILURE) are fully reproducible.
pub trait SecureRandom: Send + Sync {
    /// Fill `out`.
    fn fill(&self, out: &mut [u8]) -> Result<()>;
}

/// The system CSPRNG (aws-lc's).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRandom;

impl SecureRandom for SystemRandom {
    fn fill(&self, out: &mut [u8]) -> Result<()> {
        Ok(aws_lc_rs::rand::fill(out)?)
    }
}

/// `n` bytes from `random`.
pub fn random_from(random: &dyn SecureRandom, n: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    random.fill(&mut v)?;
    Ok(v)
}

/// Random bytes from the system CSPRNG.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut v)?;
    Ok(v)
}

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Constant-time equality of two byte strings (length may leak).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bits_reads_rsa_keys_too_small_for_the_primitives() {
        use der::Encode;
        // SEQUENCE { INTEGER n (1024 bits), INTEGER 65537 }
        let mut n = vec![0x00, 0xc1];
        n.extend([0x55; 127]);
        let pk = [
            der::asn1::Any::new(der::Tag::Integer, n).unwrap().to_der().unwrap(),
            der::asn1::Any::new(der::Tag::Integer, vec![1, 0, 1]).unwrap().to_der().unwrap(),
        ]
        .concat();
        let pk = der::asn1::Any::new(der::Tag::Sequence, pk).unwrap().to_der().unwrap();
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned { oid: alg::RSA_ENCRYPTION, parameters: Some(der::Any::null()) },
            subject_public_key: BitString::from_bytes(&pk).unwrap(),
        };
        assert_eq!(key_bits(&spki), Some(1024));
        let k = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        assert_eq!(key_bits(&k.public_key()), Some(2048));
    }

    #[test]
    fn rsa_and_ec_keys_sign_and_verify() {
        for kind in [KeyType::Rsa2048, KeyType::EcP256, KeyType::EcP384] {
            let key = PrivateKey::generate(kind).unwrap();
            let again = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
            assert_eq!(again.key_type(), kind);
            let s = key.sign(b"hello").unwrap();
            let alg = key.signature_algorithm().oid;
            verify(&key.public_key(), &alg, None, b"hello", &s).unwrap();
            assert!(verify(&key.public_key(), &alg, None, b"hellO", &s).is_err());
        }
    }

    #[test]
    fn rsa_key_transport_round_trips_and_fails_closed() {
        let key = PrivateKey::generate(KeyType::Rsa2048).unwrap();
        let ct = encrypt_key(&key.public_key(), b"0123456789abcdef").unwrap();
        let pt = key.decrypt_key(KeyTransport::RsaPkcs1, &ct).unwrap();
        assert_eq!(&pt[..], b"0123456789abcdef");
        let mut bad = ct.clone();
        bad[10] ^= 1;
        assert!(matches!(key.decrypt_key(KeyTransport::RsaPkcs1, &bad), Err(Error::Decrypt) | Ok(_)));
    }
}
