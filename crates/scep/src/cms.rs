//! The one module that assembles and takes apart CMS structures (RFC 5652):
//! SignedData with SCEP attributes, EnvelopedData with key transport, and the
//! degenerate certs-only SignedData.

use cms::{
    content_info::{CmsVersion, ContentInfo},
    enveloped_data::EncryptedContentInfo,
    signed_data::{EncapsulatedContentInfo, SignerInfo},
};
use der::{
    Any, Decode, Encode, EncodingRules, Sequence,
    asn1::{ObjectIdentifier, OctetString, SetOfVec},
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::{Certificate, attr::Attribute, crl::CertificateList};
use zeroize::Zeroizing;

use crate::attr::{ContentCipher, DigestAlg, KeyTransport, oid};
use crate::crypto::{self, Decrypter, Signer, alg};
use crate::error::{Error, Result};
use crate::signer::SignerCert;
use crate::tlv::Tlv;
use spki::SubjectPublicKeyInfoOwned;

/// A SignedData as read from a peer: its content, the certificates it carries and its
/// one SignerInfo, decoded as far as SCEP needs and no further, so that certificates
/// and identifiers RFC 5280 would refuse (long serials, odd times) still read. Every
/// field keeps the bytes the peer sent where a signature or an address depends on them.
pub(crate) struct SignedMessage {
    /// The encapsulated content's octets, if any.
    pub content: Option<Vec<u8>>,
    /// Each certificate of the `certificates` field, as encoded.
    pub certificates: Vec<Vec<u8>>,
    /// The first SignerInfo.
    pub signer_info: SignerInfoView,
    /// Whether there was more than one SignerInfo.
    pub more_signers: bool,
}

/// The parts of a SignerInfo (RFC 5652 section 5.3) that are checked.
#[derive(Clone, Debug)]
pub(crate) struct SignerInfoView {
    /// The SignerIdentifier element, as encoded.
    pub sid: Vec<u8>,
    pub digest_alg: ObjectIdentifier,
    /// The signed attributes as the signature covers them: the `[0]` element with the
    /// SET OF tag (RFC 5652 section 5.4).
    pub signed_attrs_der: Vec<u8>,
    pub signed_attrs: Vec<Attribute>,
    pub signature_alg: ObjectIdentifier,
    pub signature: Vec<u8>,
}

impl SignedMessage {
    /// Read a ContentInfo holding SignedData (DER, or BER with indefinite lengths and
    /// constructed strings).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let norm = crate::ber::normalize(bytes)?;
        let ci = Tlv::parse(&norm, "not a CMS ContentInfo")?.sequence("not a CMS ContentInfo")?;
        let (ct, content) = match ci.as_slice() {
            [ct, content] if content.is_context(0) => (ct, content),
            _ => return Err(Error::Malformed("not a CMS ContentInfo")),
        };
        if ct.decode::<ObjectIdentifier>("not a CMS ContentInfo")? != oid::SIGNED_DATA {
            return Err(Error::Malformed("ContentInfo is not SignedData"));
        }
        const SD: &str = "SignedData does not decode";
        let sd = match content.children(SD)?.as_slice() {
            [sd] => sd.sequence(SD)?,
            _ => return Err(Error::Malformed(SD)),
        };
        // version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls, signerInfos
        let (encap, rest) = match sd.as_slice() {
            [_version, _digests, encap, rest @ ..] => (encap, rest),
            _ => return Err(Error::Malformed(SD)),
        };
        let (signer_infos, optional) = rest.split_last().ok_or(Error::Malformed(SD))?;
        let mut certificates = Vec::new();
        for field in optional {
            if field.is_context(0) {
                // CertificateChoices: only plain certificates (a SEQUENCE) are of use.
                certificates.extend(
                    field.children(SD)?.iter().filter(|c| c.tag == der::Tag::Sequence).map(|c| c.whole.to_vec()),
                );
            } else if !field.is_context(1) {
                return Err(Error::Malformed(SD));
            }
        }
        if signer_infos.tag != der::Tag::Set {
            return Err(Error::Malformed(SD));
        }
        let sis = signer_infos.children(SD)?;
        let signer_info = SignerInfoView::parse(sis.first().ok_or(Error::Malformed("no SignerInfo"))?)?;
        Ok(SignedMessage { content: encapsulated(encap)?, certificates, signer_info, more_signers: sis.len() > 1 })
    }
}

/// eContent of an EncapsulatedContentInfo `SEQUENCE { OID, [0] EXPLICIT OCTET STRING }`.
fn encapsulated(encap: &Tlv<'_>) -> Result<Option<Vec<u8>>> {
    const WHAT: &str = "eContent is not an OCTET STRING";
    match encap.sequence("EncapsulatedContentInfo does not decode")?.as_slice() {
        [_type] => Ok(None),
        [_type, econtent] if econtent.is_context(0) => match econtent.children(WHAT)?.as_slice() {
            [os] if os.tag == der::Tag::OctetString => Ok(Some(os.value.to_vec())),
            _ => Err(Error::Malformed(WHAT)),
        },
        _ => Err(Error::Malformed("EncapsulatedContentInfo does not decode")),
    }
}

impl SignerInfoView {
    fn parse(si: &Tlv<'_>) -> Result<Self> {
        const WHAT: &str = "SignerInfo does not decode";
        let f = si.sequence(WHAT)?;
        // version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature, [1] unsigned
        let (sid, digest, attrs, sig_alg, sig) = match f.as_slice() {
            [_v, sid, digest, attrs, sig_alg, sig, ..] if attrs.is_context(0) => (sid, digest, attrs, sig_alg, sig),
            [_v, _sid, _digest, sig_alg, ..] if !sig_alg.is_context(0) => {
                return Err(Error::Malformed("no signed attributes"));
            }
            _ => return Err(Error::Malformed(WHAT)),
        };
        let alg = |t: &Tlv<'_>| t.decode::<AlgorithmIdentifierOwned>(WHAT).map(|a| a.oid);
        if sig.tag != der::Tag::OctetString {
            return Err(Error::Malformed(WHAT));
        }
        let signed_attrs = attrs
            .children(WHAT)?
            .iter()
            .map(|a| a.decode::<Attribute>("a signed attribute does not decode"))
            .collect::<Result<_>>()?;
        let mut signed_attrs_der = attrs.whole.to_vec();
        if let Some(tag) = signed_attrs_der.first_mut() {
            *tag = 0x31; // [0] IMPLICIT -> SET OF
        }
        Ok(SignerInfoView {
            sid: sid.whole.to_vec(),
            digest_alg: alg(digest)?,
            signed_attrs_der,
            signed_attrs,
            signature_alg: alg(sig_alg)?,
            signature: sig.value.to_vec(),
        })
    }

    /// The SignerIdentifier as an element.
    pub fn sid(&self) -> Result<Tlv<'_>> {
        Tlv::parse(&self.sid, "SignerIdentifier does not decode")
    }
}

/// The certificate among `certificates` that the SignerInfo names.
pub(crate) fn signer_certificate(msg: &SignedMessage) -> Result<SignerCert> {
    let sid = msg.signer_info.sid()?;
    msg.certificates
        .iter()
        .filter_map(|der| SignerCert::from_der(der).ok())
        .find(|c| c.is_named_by(&sid))
        .ok_or(Error::Malformed("the signer certificate is not in the message"))
}

/// Check a SignerInfo: the signature over its signed attributes by the key `signer`,
/// and that messageDigest equals the digest of `content`.
pub(crate) fn verify_signer_info(
    si: &SignerInfoView,
    signer: &SubjectPublicKeyInfoOwned,
    content: &[u8],
) -> Result<DigestAlg> {
    let digest = DigestAlg::from_oid(&si.digest_alg)
        .ok_or_else(|| Error::UnsupportedAlgorithm(format!("digest {}", si.digest_alg)))?;
    let md = attribute(&si.signed_attrs, &oid::MESSAGE_DIGEST)
        .ok_or(Error::BadMessageCheck("no messageDigest attribute"))?
        .decode_as::<OctetString>()
        .map_err(|_| Error::BadMessageCheck("messageDigest is not an OCTET STRING"))?;
    let over = |bytes: &[u8]| crypto::verify(signer, &si.signature_alg, Some(digest), bytes, &si.signature);
    // The attributes as sent; a signer that sent them unsorted may have signed their
    // DER (sorted) form instead.
    over(&si.signed_attrs_der).or_else(|e| {
        let sorted = SetOfVec::try_from(si.signed_attrs.clone()).and_then(|s| s.to_der()).map_err(|_| e)?;
        if sorted == si.signed_attrs_der {
            Err(Error::BadMessageCheck("signature does not verify"))
        } else {
            over(&sorted)
        }
    })?;
    if !crypto::constant_time_eq(md.as_bytes(), &digest.digest(content)) {
        return Err(Error::BadMessageCheck("messageDigest does not match the content"));
    }
    Ok(digest)
}

/// The first value of attribute `oid` in a list of attributes.
pub(crate) fn attribute<'a>(attrs: &'a [Attribute], oid: &ObjectIdentifier) -> Option<&'a Any> {
    attrs.iter().find(|a| a.oid == *oid).and_then(|a| a.values.iter().next())
}

/// What [`open_envelope`] needs besides the envelope itself.
pub(crate) struct EnvelopeKeys<'a> {
    /// Our recipient certificates and their keys, preferred first.
    pub recipients: Vec<(SignerCert, &'a dyn Decrypter)>,
    /// Secret for the deterministic substitute key of implicit rejection.
    pub rejection_secret: &'a [u8],
}

/// Decrypt an EnvelopedData (DER or BER). Every failure after the structure was
/// read is the same [`Error::Decrypt`]; a failed key unwrap continues with a
/// substitute key derived from the encrypted key, so bad padding and a wrong key are
/// indistinguishable from a bad content (RFC 3218 section 2.3).
pub(crate) fn open_envelope(bytes: &[u8], keys: &EnvelopeKeys<'_>) -> Result<(Zeroizing<Vec<u8>>, ContentCipher)> {
    Envelope::parse(bytes)?.open(keys)
}

/// An EnvelopedData whose structure has been read, not yet decrypted.
#[derive(Debug)]
pub(crate) struct Envelope {
    norm: Vec<u8>,
}

/// What a content key protects, for refusing a key that comes back with other content:
/// a padding oracle needs one content key with many ciphertexts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeId {
    /// SHA-256 of each recipient's encrypted key.
    pub keys: Vec<[u8; 32]>,
    /// SHA-256 over everything else the keys are used with: the content cipher and IV,
    /// the ciphertext, and the signer certificate.
    pub content: [u8; 32],
}

impl Envelope {
    /// Read the structure (DER or BER).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        let norm = crate::ber::normalize(bytes)?;
        enveloped_data(&norm)?;
        Ok(Envelope { norm })
    }

    /// The envelope's identity, with the certificate that signed the message.
    pub(crate) fn id(&self, signer_der: &[u8]) -> Result<EnvelopeId> {
        let ed = enveloped_data(&self.norm)?;
        let sha256 = |parts: &[&[u8]]| -> [u8; 32] {
            let mut c = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
            for p in parts {
                c.update(&(p.len() as u64).to_be_bytes());
                c.update(p);
            }
            let mut out = [0u8; 32];
            out.copy_from_slice(c.finish().as_ref());
            out
        };
        let alg = ed.content_enc_alg.to_der()?;
        Ok(EnvelopeId {
            keys: ed.ktris.iter().map(|k| sha256(&[k.enc_key])).collect(),
            content: sha256(&[&alg, ed.encrypted_content.unwrap_or_default(), signer_der]),
        })
    }

    /// Decrypt, as [`open_envelope`] says.
    pub(crate) fn open(&self, keys: &EnvelopeKeys<'_>) -> Result<(Zeroizing<Vec<u8>>, ContentCipher)> {
        let ed = enveloped_data(&self.norm)?;
        // Clients may encrypt to every certificate GetCACert returned: take the
        // recipient info addressed to one of ours. When none is, try the first with our
        // preferred key: it fails like any other bad key, and looks the same.
        let (ktri, decrypter) = keys
            .recipients
            .iter()
            .find_map(|(cert, dec)| ed.ktris.iter().find(|k| cert.is_named_by(&k.rid)).map(|k| (k, *dec)))
            .or_else(|| Some((ed.ktris.first()?, keys.recipients.first()?.1)))
            .ok_or(Error::UnsupportedAlgorithm("no key transport recipient".into()))?;
        let transport = key_transport(&ktri.key_enc_alg)?;
        let cipher = ContentCipher::from_oid(&ed.content_enc_alg.oid)
            .ok_or_else(|| Error::UnsupportedAlgorithm(format!("content cipher {}", ed.content_enc_alg.oid)))?;
        let iv = ed
            .content_enc_alg
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<OctetString>().ok())
            .filter(|iv| iv.as_bytes().len() == cipher.block_len())
            .ok_or(Error::Malformed("content cipher has no valid IV"))?;
        let ciphertext = ed.encrypted_content.ok_or(Error::Malformed("no encryptedContent"))?;

        let enc_key = ktri.enc_key;
        let substitute = substitute_key(keys.rejection_secret, enc_key, cipher.key_len());
        let key = match decrypter.decrypt_key(transport, enc_key) {
            Ok(k) if k.len() == cipher.key_len() => k,
            _ => substitute,
        };
        let plain = cbc_decrypt(cipher, &key, iv.as_bytes(), ciphertext).map_err(|_| Error::Decrypt)?;
        Ok((plain, cipher))
    }
}

/// The parts of an EnvelopedData (RFC 5652 section 6.1) that key transport needs.
struct EnvelopeView<'a> {
    ktris: Vec<KtriView<'a>>,
    content_enc_alg: AlgorithmIdentifierOwned,
    encrypted_content: Option<&'a [u8]>,
}

/// A KeyTransRecipientInfo, its recipient identifier left as encoded.
struct KtriView<'a> {
    rid: Tlv<'a>,
    key_enc_alg: AlgorithmIdentifierOwned,
    enc_key: &'a [u8],
}

/// Read a ContentInfo holding EnvelopedData, whatever the recipients' serial numbers.
fn enveloped_data(norm: &[u8]) -> Result<EnvelopeView<'_>> {
    const ED: &str = "EnvelopedData does not decode";
    let ci = Tlv::parse(norm, "envelope is not a CMS ContentInfo")?.sequence("envelope is not a CMS ContentInfo")?;
    let content = match ci.as_slice() {
        [ct, content] if content.is_context(0) => {
            if ct.decode::<ObjectIdentifier>(ED)? != oid::ENVELOPED_DATA {
                return Err(Error::Malformed("content is not EnvelopedData"));
            }
            content
        }
        _ => return Err(Error::Malformed("envelope is not a CMS ContentInfo")),
    };
    let fields = match content.children(ED)?.as_slice() {
        [ed] => ed.sequence(ED)?,
        _ => return Err(Error::Malformed(ED)),
    };
    // version, [0] originatorInfo, recipientInfos, encryptedContentInfo, [1] unprotectedAttrs
    let mut rest = fields.iter().skip(1).skip_while(|f| f.is_context(0));
    let (ris, eci) = match (rest.next(), rest.next()) {
        (Some(ris), Some(eci)) if ris.tag == der::Tag::Set => (ris, eci),
        _ => return Err(Error::Malformed(ED)),
    };
    let mut ktris = Vec::new();
    // Other RecipientInfo choices are tagged [1]..[4]: key transport is the SEQUENCE.
    for ri in ris.children(ED)?.iter().filter(|r| r.tag == der::Tag::Sequence) {
        if let [_v, rid, alg, key] = ri.sequence(ED)?.as_slice() {
            if key.tag != der::Tag::OctetString {
                return Err(Error::Malformed(ED));
            }
            ktris.push(KtriView { rid: *rid, key_enc_alg: alg.decode(ED)?, enc_key: key.value });
        }
    }
    let (content_enc_alg, encrypted_content) = match eci.sequence(ED)?.as_slice() {
        [_type, alg] => (alg.decode(ED)?, None),
        // [0] IMPLICIT OCTET STRING, made primitive by the BER normalisation.
        [_type, alg, ec] if ec.is_context(0) => (alg.decode(ED)?, Some(ec.value)),
        _ => return Err(Error::Malformed(ED)),
    };
    Ok(EnvelopeView { ktris, content_enc_alg, encrypted_content })
}

/// The deterministic stand-in for a content key that did not unwrap: HMAC of a
/// server secret and the encrypted key, so the same query always meets the same key.
fn substitute_key(secret: &[u8], enc_key: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let mut counter = 0u8;
    while out.len() < len {
        let mut input = vec![counter];
        input.extend_from_slice(enc_key);
        out.extend_from_slice(&crypto::hmac_sha256(secret, &input));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// The AlgorithmIdentifier of a key transport.
fn key_transport_alg(t: KeyTransport) -> Result<AlgorithmIdentifierOwned> {
    Ok(match t {
        KeyTransport::RsaPkcs1 => AlgorithmIdentifierOwned { oid: alg::RSA_ENCRYPTION, parameters: Some(Any::null()) },
        KeyTransport::RsaOaepSha1 => AlgorithmIdentifierOwned {
            oid: alg::RSAES_OAEP,
            parameters: Some(Any::encode_from(&RsaesOaepParams { hash: None, mask_gen: None, p_source: None })?),
        },
        KeyTransport::RsaOaepSha256 => {
            let sha256 = AlgorithmIdentifierOwned { oid: DigestAlg::Sha256.oid(), parameters: None };
            AlgorithmIdentifierOwned {
                oid: alg::RSAES_OAEP,
                parameters: Some(Any::encode_from(&RsaesOaepParams {
                    hash: Some(sha256.clone()),
                    mask_gen: Some(AlgorithmIdentifierOwned {
                        oid: alg::MGF1,
                        parameters: Some(Any::encode_from(&sha256)?),
                    }),
                    p_source: None,
                })?),
            }
        }
    })
}

#[derive(Sequence)]
struct RsaesOaepParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    p_source: Option<AlgorithmIdentifierOwned>,
}

fn key_transport(a: &AlgorithmIdentifierOwned) -> Result<KeyTransport> {
    if a.oid == alg::RSA_ENCRYPTION {
        return Ok(KeyTransport::RsaPkcs1);
    }
    if a.oid == alg::RSAES_OAEP {
        // RFC 8017 A.2.1: absent parameters mean SHA-1 with MGF1-SHA-1.
        let hash = match &a.parameters {
            None => None,
            Some(p) => p
                .decode_as::<RsaesOaepParams>()
                .map_err(|_| Error::UnsupportedAlgorithm("RSAES-OAEP parameters".into()))?
                .hash
                .map(|h| h.oid),
        };
        return match hash.map(|h| DigestAlg::from_oid(&h)) {
            None | Some(Some(DigestAlg::Sha1)) => Ok(KeyTransport::RsaOaepSha1),
            Some(Some(DigestAlg::Sha256)) => Ok(KeyTransport::RsaOaepSha256),
            _ => Err(Error::UnsupportedAlgorithm("RSAES-OAEP hash".into())),
        };
    }
    Err(Error::UnsupportedAlgorithm(format!("key transport {}", a.oid)))
}

#[allow(deprecated)] // DES and 3DES are decrypted for old clients only.
fn aws_cipher(cipher: ContentCipher) -> &'static aws_lc_rs::cipher::Algorithm {
    use aws_lc_rs::cipher as c;
    match cipher {
        ContentCipher::Des => &c::DES_FOR_LEGACY_USE_ONLY,
        ContentCipher::Des3 => &c::DES_EDE3_FOR_LEGACY_USE_ONLY,
        ContentCipher::Aes128 => &c::AES_128,
        ContentCipher::Aes192 => &c::AES_192,
        ContentCipher::Aes256 => &c::AES_256,
    }
}

/// CBC decryption with a constant-time PKCS#7 unpadding check.
fn cbc_decrypt(cipher: ContentCipher, key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey};
    let block = cipher.block_len();
    if ct.is_empty() || !ct.len().is_multiple_of(block) {
        return Err(Error::Decrypt);
    }
    let k = UnboundCipherKey::new(aws_cipher(cipher), key).map_err(|_| Error::Decrypt)?;
    let dk = DecryptingKey::cbc(k).map_err(|_| Error::Decrypt)?;
    let ctx = if block == 16 {
        DecryptionContext::Iv128(<[u8; 16]>::try_from(iv).map_err(|_| Error::Decrypt)?.into())
    } else {
        DecryptionContext::Iv64(<[u8; 8]>::try_from(iv).map_err(|_| Error::Decrypt)?.into())
    };
    let mut buf = Zeroizing::new(ct.to_vec());
    dk.decrypt(&mut buf, ctx).map_err(|_| Error::Decrypt)?;
    let n = buf.len();
    let pad = usize::from(*buf.last().ok_or(Error::Decrypt)?);
    // Look at every byte of the last block whatever the pad byte says.
    let mut bad = u8::from(pad == 0) | u8::from(pad > block);
    for (i, b) in buf.iter().rev().take(block).enumerate() {
        let in_pad = u8::from(i < pad);
        bad |= in_pad & u8::from(usize::from(*b) != pad);
    }
    if bad != 0 {
        return Err(Error::Decrypt);
    }
    buf.truncate(n - pad);
    Ok(buf)
}

/// Build an EnvelopedData ContentInfo (DER) holding `content` for `recipient`,
/// key transport RSA PKCS#1 v1.5, content encrypted with `cipher` in CBC mode.
pub(crate) fn envelope(
    content: &[u8],
    recipient: &SignerCert,
    cipher: ContentCipher,
    random: &dyn crypto::SecureRandom,
) -> Result<Vec<u8>> {
    if cipher == ContentCipher::Des {
        return Err(Error::UnsupportedAlgorithm("single DES is never sent".into()));
    }
    let key = Zeroizing::new(crypto::random_from(random, cipher.key_len())?);
    seal(
        content,
        recipient,
        &EnvelopeSpec { cipher, key: &key, transport: KeyTransport::RsaPkcs1, encrypted_key: None, pad: true },
        random,
    )
}

/// Chosen parts of an envelope, for `envelope_with` (feature `testing`).
#[derive(Clone, Debug)]
pub struct EnvelopeSpec<'a> {
    /// Content cipher.
    pub cipher: ContentCipher,
    /// Content-encryption key.
    pub key: &'a [u8],
    /// Key transport algorithm.
    pub transport: KeyTransport,
    /// Bytes to put in place of the encrypted key (None: encrypt `key` properly).
    pub encrypted_key: Option<Vec<u8>>,
    /// PKCS#7-pad the content (else it must be a whole number of blocks).
    pub pad: bool,
}

/// Build an EnvelopedData from chosen parts: RSA-OAEP key transport, and envelopes
/// a correct client never makes (a chosen encrypted key, no padding), for tests of
/// what a server does with them. Not part of the protocol API: feature `testing`.
#[cfg(feature = "testing")]
pub fn envelope_with(content: &[u8], recipient: &Certificate, spec: &EnvelopeSpec<'_>) -> Result<Vec<u8>> {
    seal(content, &SignerCert::from_certificate(recipient)?, spec, &crypto::SystemRandom)
}

/// An envelope of `spec` for a recipient read leniently.
fn seal(
    content: &[u8],
    recipient: &SignerCert,
    spec: &EnvelopeSpec<'_>,
    random: &dyn crypto::SecureRandom,
) -> Result<Vec<u8>> {
    let (cipher, key, pad) = (spec.cipher, spec.key, spec.pad);
    use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
    let iv = crypto::random_from(random, cipher.block_len())?;
    let ctx = || -> Result<EncryptionContext> {
        Ok(if cipher.block_len() == 16 {
            EncryptionContext::Iv128(<[u8; 16]>::try_from(iv.as_slice()).map_err(|_| Error::Crypto("iv"))?.into())
        } else {
            EncryptionContext::Iv64(<[u8; 8]>::try_from(iv.as_slice()).map_err(|_| Error::Crypto("iv"))?.into())
        })
    };
    let mut buf = content.to_vec();
    if pad {
        let ek = PaddedBlockEncryptingKey::cbc_pkcs7(UnboundCipherKey::new(aws_cipher(cipher), key)?)?;
        ek.less_safe_encrypt(&mut buf, ctx()?)?;
    } else {
        let ek = EncryptingKey::cbc(UnboundCipherKey::new(aws_cipher(cipher), key)?)?;
        ek.less_safe_encrypt(&mut buf, ctx()?)?;
    }
    let enc_key = match &spec.encrypted_key {
        Some(k) => k.clone(),
        None => crypto::encrypt_key_with(recipient.public_key(), key, spec.transport)?,
    };
    // The recipient is named by its issuer and serial number exactly as its certificate
    // encodes them, however long or odd the serial (RFC 8894 section 3.3.2).
    let ktri = KeyTransRecipient {
        version: CmsVersion::V0,
        rid: Any::from_der(recipient.issuer_and_serial())?,
        key_enc_alg: key_transport_alg(spec.transport)?,
        enc_key: OctetString::new(enc_key)?,
    };
    let ed = EnvelopedDataOut {
        version: CmsVersion::V0,
        recip_infos: SetOfVec::try_from(vec![Any::encode_from(&ktri)?])?,
        encrypted_content: EncryptedContentInfo {
            content_type: oid::DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(Any::encode_from(&OctetString::new(iv)?)?),
            },
            encrypted_content: Some(OctetString::new(buf)?),
        },
    };
    Ok(ContentInfo { content_type: oid::ENVELOPED_DATA, content: Any::encode_from(&ed)? }.to_der()?)
}

/// KeyTransRecipientInfo with the recipient identifier as encoded elsewhere.
#[derive(Sequence)]
struct KeyTransRecipient {
    version: CmsVersion,
    rid: Any,
    key_enc_alg: AlgorithmIdentifierOwned,
    enc_key: OctetString,
}

/// EnvelopedData as scepd writes it: no originatorInfo, no unprotected attributes.
#[derive(Sequence)]
struct EnvelopedDataOut {
    version: CmsVersion,
    recip_infos: SetOfVec<Any>,
    encrypted_content: EncryptedContentInfo,
}

/// Build a SignedData ContentInfo (DER) over `content` (or no content), signed by
/// `signer` whose certificate is `signer_cert`, with `attrs` added to contentType
/// and messageDigest. The signer certificate is included.
pub(crate) fn sign(
    content: Option<&[u8]>,
    attrs: Vec<Attribute>,
    signer: &dyn Signer,
    signer_cert: &SignerCert,
) -> Result<Vec<u8>> {
    let digest = signer.digest_algorithm();
    let mut all = attrs;
    all.push(attr_value(oid::CONTENT_TYPE, &oid::DATA)?);
    // RFC 5652 5.3: messageDigest is required even without eContent (digest of nothing).
    all.push(attr_value(oid::MESSAGE_DIGEST, &OctetString::new(digest.digest(content.unwrap_or(&[])))?)?);
    let signed_attrs: SetOfVec<Attribute> = SetOfVec::try_from(all)?;
    let signature = signer.sign(&signed_attrs.to_der()?)?;
    let digest_alg = AlgorithmIdentifierOwned { oid: digest.oid(), parameters: None };
    let si = SignerInfoOut {
        version: CmsVersion::V1,
        sid: Any::from_der(signer_cert.issuer_and_serial())?,
        digest_alg: digest_alg.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signer_info_algorithm(signer.signature_algorithm()),
        signature: OctetString::new(signature)?,
    };
    let econtent = match content {
        Some(c) => Some(Any::encode_from(&OctetString::new(c)?)?),
        None => None,
    };
    let sd = SignedDataOut {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest_alg])?,
        encap_content_info: EncapsulatedContentInfo { econtent_type: oid::DATA, econtent },
        certificates: Some(vec![Any::from_der(signer_cert.der())?]),
        signer_infos: SetOfVec::try_from(vec![Any::encode_from(&si)?])?,
    };
    Ok(ContentInfo { content_type: oid::SIGNED_DATA, content: Any::encode_from(&sd)? }.to_der()?)
}

/// SignedData as scepd writes it, the certificate and the signer identifier as
/// encoded elsewhere (a requester's certificate need not be RFC 5280).
#[derive(Sequence)]
struct SignedDataOut {
    version: CmsVersion,
    digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<Vec<Any>>,
    signer_infos: SetOfVec<Any>,
}

/// SignerInfo (RFC 5652 section 5.3) without unsigned attributes.
#[derive(Sequence)]
struct SignerInfoOut {
    version: CmsVersion,
    sid: Any,
    digest_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    signed_attrs: Option<SetOfVec<Attribute>>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: OctetString,
}

/// The signatureAlgorithm a SignerInfo carries for a key that signs with `alg`. For
/// RSA it is rsaEncryption, as OpenSSL's CMS writes it: the digest is named by
/// digestAlgorithm, and strongSwan's PKCS#7 reader accepts nothing else (RFC 5754
/// section 3.2 allows both).
fn signer_info_algorithm(alg: AlgorithmIdentifierOwned) -> AlgorithmIdentifierOwned {
    match alg.oid {
        alg::SHA1_WITH_RSA | alg::SHA256_WITH_RSA | alg::SHA384_WITH_RSA | alg::SHA512_WITH_RSA => {
            AlgorithmIdentifierOwned { oid: alg::RSA_ENCRYPTION, parameters: Some(Any::null()) }
        }
        _ => alg,
    }
}

/// An attribute with one value.
pub(crate) fn attr_value<T: Encode>(oid: ObjectIdentifier, value: &T) -> Result<Attribute> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![Any::from_der(&value.to_der()?)?])? })
}

/// A degenerate ("certs-only") SignedData. Certificates are kept in the order given:
/// clients take the first one as theirs, so it must not be re-sorted as a DER SET OF.
#[derive(Sequence)]
struct DegenerateSignedData {
    version: CmsVersion,
    digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<Vec<Certificate>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<Vec<CertificateList>>,
    signer_infos: SetOfVec<SignerInfo>,
}

/// Encode a certs-only SignedData ContentInfo with `certs` in this order and `crls`.
pub fn certs_only(certs: &[Certificate], crls: &[CertificateList]) -> Result<Vec<u8>> {
    let sd = DegenerateSignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: oid::DATA, econtent: None },
        certificates: (!certs.is_empty()).then(|| certs.to_vec()),
        crls: (!crls.is_empty()).then(|| crls.to_vec()),
        signer_infos: SetOfVec::new(),
    };
    Ok(ContentInfo { content_type: oid::SIGNED_DATA, content: Any::encode_from(&sd)? }.to_der()?)
}

/// Certificates and CRLs of a certs-only SignedData (DER or BER), in wire order.
pub fn parse_certs_only(bytes: &[u8]) -> Result<(Vec<Certificate>, Vec<CertificateList>)> {
    let ci =
        ContentInfo::from_der(&crate::ber::normalize(bytes)?).map_err(|_| Error::Malformed("not a CMS ContentInfo"))?;
    if ci.content_type != oid::SIGNED_DATA {
        return Err(Error::Malformed("ContentInfo is not SignedData"));
    }
    let sd = ci
        .content
        .decode_as_encoding::<DegenerateSignedData>(EncodingRules::Ber)
        .map_err(|_| Error::Malformed("certs-only SignedData does not decode"))?;
    Ok((sd.certificates.unwrap_or_default(), sd.crls.unwrap_or_default()))
}

/// Parse a SignedData reply and check its signature against one of `trusted`;
/// returns the econtent (if any) and the signed attributes. For clients.
pub(crate) fn verify_reply(bytes: &[u8], trusted: &[Certificate]) -> Result<(Option<Vec<u8>>, Vec<Attribute>)> {
    let msg = SignedMessage::parse(bytes)?;
    let sid = msg.signer_info.sid()?;
    let signer = trusted
        .iter()
        .filter_map(|c| SignerCert::from_certificate(c).ok())
        .find(|c| c.is_named_by(&sid))
        .ok_or(Error::BadMessageCheck("reply not signed by a certificate from GetCACert"))?;
    verify_signer_info(&msg.signer_info, signer.public_key(), msg.content.as_deref().unwrap_or(&[]))?;
    Ok((msg.content, msg.signer_info.signed_attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbc_unpadding_rejects_every_bad_pad() {
        let key = [7u8; 16];
        let iv = [1u8; 16];
        // Encrypt without padding so that we choose the last block ourselves.
        let enc = |pt: &[u8]| {
            use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey};
            let ek = EncryptingKey::cbc(UnboundCipherKey::new(&aws_lc_rs::cipher::AES_128, &key).unwrap()).unwrap();
            let mut b = pt.to_vec();
            ek.less_safe_encrypt(&mut b, EncryptionContext::Iv128(iv.into())).unwrap();
            b
        };
        let mut good = vec![0x41u8; 13];
        good.extend_from_slice(&[3, 3, 3]);
        let out = cbc_decrypt(ContentCipher::Aes128, &key, &iv, &enc(&good)).unwrap();
        assert_eq!(&out[..], &[0x41u8; 13][..]);
        for last in [
            vec![0u8; 16],
            {
                let mut v = vec![0u8; 15];
                v.push(17);
                v
            },
            {
                let mut v = good.clone();
                v[13] = 2;
                v
            },
        ] {
            assert!(matches!(cbc_decrypt(ContentCipher::Aes128, &key, &iv, &enc(&last)), Err(Error::Decrypt)));
        }
    }

    #[test]
    fn substitute_key_is_deterministic_and_sized() {
        let a = substitute_key(b"secret", b"enc", 24);
        let b = substitute_key(b"secret", b"enc", 24);
        assert_eq!(a, b);
        assert_eq!(a.len(), 24);
        assert_ne!(substitute_key(b"secret", b"enc2", 24), a);
    }
}
