//! The one module that assembles and takes apart CMS structures (RFC 5652):
//! SignedData with SCEP attributes, EnvelopedData with key transport, and the
//! degenerate certs-only SignedData.

use cms::{
    cert::IssuerAndSerialNumber,
    content_info::{CmsVersion, ContentInfo},
    enveloped_data::{
        EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo, RecipientInfos,
    },
    signed_data::{EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos},
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

/// Decode a ContentInfo holding SignedData, accepting BER (indefinite lengths).
pub(crate) fn parse_signed_data(bytes: &[u8]) -> Result<SignedData> {
    let ci =
        ContentInfo::from_der(&crate::ber::normalize(bytes)?).map_err(|_| Error::Malformed("not a CMS ContentInfo"))?;
    if ci.content_type != oid::SIGNED_DATA {
        return Err(Error::Malformed("ContentInfo is not SignedData"));
    }
    ci.content
        .decode_as_encoding::<SignedData>(EncodingRules::Ber)
        .map_err(|_| Error::Malformed("SignedData does not decode"))
}

/// The encapsulated content of a SignedData (the octets of its eContent), if any.
pub(crate) fn econtent(sd: &SignedData) -> Result<Option<Vec<u8>>> {
    match &sd.encap_content_info.econtent {
        None => Ok(None),
        Some(any) => {
            let os = any
                .decode_as_encoding::<OctetString>(EncodingRules::Ber)
                .map_err(|_| Error::Malformed("eContent is not an OCTET STRING"))?;
            Ok(Some(os.into_bytes().into_vec()))
        }
    }
}

/// The certificate that signed `si`, among the SignedData's certificates.
pub(crate) fn signer_certificate<'a>(sd: &'a SignedData, si: &SignerInfo) -> Option<&'a Certificate> {
    let certs = sd.certificates.as_ref()?;
    certs.0.iter().find_map(|c| match c {
        cms::cert::CertificateChoices::Certificate(cert) => {
            let tbs = cert.tbs_certificate();
            let hit = match &si.sid {
                SignerIdentifier::IssuerAndSerialNumber(isn) => {
                    isn.issuer == *tbs.issuer() && isn.serial_number == *tbs.serial_number()
                }
                SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
                    .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
                    .ok()
                    .flatten()
                    .is_some_and(|(_, s)| s == *ski),
            };
            hit.then_some(cert)
        }
        _ => None,
    })
}

/// Check a SignerInfo: the signature over the DER of its signed attributes by
/// `signer`, and that messageDigest equals the digest of `content`.
pub(crate) fn verify_signer_info(si: &SignerInfo, signer: &Certificate, content: &[u8]) -> Result<DigestAlg> {
    let digest = DigestAlg::from_oid(&si.digest_alg.oid)
        .ok_or_else(|| Error::UnsupportedAlgorithm(format!("digest {}", si.digest_alg.oid)))?;
    let attrs = si.signed_attrs.as_ref().ok_or(Error::BadMessageCheck("no signed attributes"))?;
    let md = attribute(attrs.as_slice(), &oid::MESSAGE_DIGEST)
        .ok_or(Error::BadMessageCheck("no messageDigest attribute"))?
        .decode_as::<OctetString>()
        .map_err(|_| Error::BadMessageCheck("messageDigest is not an OCTET STRING"))?;
    // RFC 5652 section 5.4: the signature covers the DER of the SET OF attributes.
    let signed = attrs.to_der()?;
    crypto::verify(
        signer.tbs_certificate().subject_public_key_info(),
        &si.signature_algorithm.oid,
        Some(digest),
        &signed,
        si.signature.as_bytes(),
    )?;
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
    pub recipients: &'a [(&'a Certificate, &'a dyn Decrypter)],
    /// Secret for the deterministic substitute key of implicit rejection.
    pub rejection_secret: &'a [u8],
}

/// Decrypt an EnvelopedData (DER or BER). Every failure after the structure was
/// read is the same [`Error::Decrypt`]; a failed key unwrap continues with a
/// substitute key derived from the encrypted key, so bad padding and a wrong key are
/// indistinguishable from a bad content (RFC 3218 section 2.3).
pub(crate) fn open_envelope(bytes: &[u8], keys: &EnvelopeKeys<'_>) -> Result<(Zeroizing<Vec<u8>>, ContentCipher)> {
    let ci = ContentInfo::from_der(&crate::ber::normalize(bytes)?);
    let ed = match ci {
        Ok(ci) if ci.content_type == oid::ENVELOPED_DATA => ci
            .content
            .decode_as_encoding::<EnvelopedData>(EncodingRules::Ber)
            .map_err(|_| Error::Malformed("EnvelopedData does not decode"))?,
        Ok(_) => return Err(Error::Malformed("content is not EnvelopedData")),
        Err(_) => return Err(Error::Malformed("envelope is not a CMS ContentInfo")),
    };
    let ktris: Vec<&KeyTransRecipientInfo> = ed
        .recip_infos
        .0
        .iter()
        .filter_map(|ri| match ri {
            RecipientInfo::Ktri(k) => Some(k),
            _ => None,
        })
        .collect();
    // Clients may encrypt to every certificate GetCACert returned: take the
    // recipient info addressed to one of ours. When none is, try the first with our
    // preferred key: it fails like any other bad key, and looks the same.
    let (ktri, decrypter) = keys
        .recipients
        .iter()
        .find_map(|(cert, dec)| ktris.iter().find(|k| addressed_to(k, cert)).map(|k| (*k, *dec)))
        .or_else(|| Some((*ktris.first()?, keys.recipients.first()?.1)))
        .ok_or(Error::UnsupportedAlgorithm("no key transport recipient".into()))?;
    let transport = key_transport(&ktri.key_enc_alg)?;
    let eci = &ed.encrypted_content;
    let cipher = ContentCipher::from_oid(&eci.content_enc_alg.oid)
        .ok_or_else(|| Error::UnsupportedAlgorithm(format!("content cipher {}", eci.content_enc_alg.oid)))?;
    let iv = eci
        .content_enc_alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<OctetString>().ok())
        .filter(|iv| iv.as_bytes().len() == cipher.block_len())
        .ok_or(Error::Malformed("content cipher has no valid IV"))?;
    let ciphertext = eci.encrypted_content.as_ref().ok_or(Error::Malformed("no encryptedContent"))?;

    let enc_key = ktri.enc_key.as_bytes();
    let substitute = substitute_key(keys.rejection_secret, enc_key, cipher.key_len());
    let key = match decrypter.decrypt_key(transport, enc_key) {
        Ok(k) if k.len() == cipher.key_len() => k,
        _ => substitute,
    };
    let plain = cbc_decrypt(cipher, &key, iv.as_bytes(), ciphertext.as_bytes()).map_err(|_| Error::Decrypt)?;
    Ok((plain, cipher))
}

fn addressed_to(k: &KeyTransRecipientInfo, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match &k.rid {
        RecipientIdentifier::IssuerAndSerialNumber(isn) => {
            isn.issuer == *tbs.issuer() && isn.serial_number == *tbs.serial_number()
        }
        RecipientIdentifier::SubjectKeyIdentifier(ski) => {
            ski.0.as_bytes() == crate::x509::key_identifier(tbs.subject_public_key_info()).as_slice()
        }
    }
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
pub(crate) fn envelope(content: &[u8], recipient: &Certificate, cipher: ContentCipher) -> Result<Vec<u8>> {
    if cipher == ContentCipher::Des {
        return Err(Error::UnsupportedAlgorithm("single DES is never sent".into()));
    }
    let key = Zeroizing::new(crypto::random_bytes(cipher.key_len())?);
    envelope_with(
        content,
        recipient,
        &EnvelopeSpec { cipher, key: &key, transport: KeyTransport::RsaPkcs1, encrypted_key: None, pad: true },
    )
}

/// Chosen parts of an envelope, for [`envelope_with`].
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

/// Build an EnvelopedData from chosen parts. Clients use it for RSA-OAEP; tests use
/// it for envelopes a correct client never makes.
pub fn envelope_with(content: &[u8], recipient: &Certificate, spec: &EnvelopeSpec<'_>) -> Result<Vec<u8>> {
    let (cipher, key, pad) = (spec.cipher, spec.key, spec.pad);
    use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
    let iv = crypto::random_bytes(cipher.block_len())?;
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
    let tbs = recipient.tbs_certificate();
    let enc_key = match &spec.encrypted_key {
        Some(k) => k.clone(),
        None => crypto::encrypt_key_with(tbs.subject_public_key_info(), key, spec.transport)?,
    };

    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        key_enc_alg: key_transport_alg(spec.transport)?,
        enc_key: OctetString::new(enc_key)?,
    };
    let ed = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos(SetOfVec::try_from(vec![RecipientInfo::Ktri(ktri)])?),
        encrypted_content: EncryptedContentInfo {
            content_type: oid::DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(Any::encode_from(&OctetString::new(iv)?)?),
            },
            encrypted_content: Some(OctetString::new(buf)?),
        },
        unprotected_attrs: None,
    };
    Ok(ContentInfo { content_type: oid::ENVELOPED_DATA, content: Any::encode_from(&ed)? }.to_der()?)
}

/// Build a SignedData ContentInfo (DER) over `content` (or no content), signed by
/// `signer` whose certificate is `signer_cert`, with `attrs` added to contentType
/// and messageDigest. The signer certificate is included.
pub(crate) fn sign(
    content: Option<&[u8]>,
    attrs: Vec<Attribute>,
    signer: &dyn Signer,
    signer_cert: &Certificate,
) -> Result<Vec<u8>> {
    let digest = signer.digest_algorithm();
    let mut all = attrs;
    all.push(attr_value(oid::CONTENT_TYPE, &oid::DATA)?);
    // RFC 5652 5.3: messageDigest is required even without eContent (digest of nothing).
    all.push(attr_value(oid::MESSAGE_DIGEST, &OctetString::new(digest.digest(content.unwrap_or(&[])))?)?);
    let signed_attrs: SetOfVec<Attribute> = SetOfVec::try_from(all)?;
    let signature = signer.sign(&signed_attrs.to_der()?)?;
    let tbs = signer_cert.tbs_certificate();
    let digest_alg = AlgorithmIdentifierOwned { oid: digest.oid(), parameters: None };
    let si = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: digest_alg.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signer.signature_algorithm(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let econtent = match content {
        Some(c) => Some(Any::encode_from(&OctetString::new(c)?)?),
        None => None,
    };
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest_alg])?,
        encap_content_info: EncapsulatedContentInfo { econtent_type: oid::DATA, econtent },
        certificates: Some(cms::signed_data::CertificateSet(SetOfVec::try_from(vec![
            cms::cert::CertificateChoices::Certificate(signer_cert.clone()),
        ])?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![si])?),
    };
    Ok(ContentInfo { content_type: oid::SIGNED_DATA, content: Any::encode_from(&sd)? }.to_der()?)
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
    let sd = parse_signed_data(bytes)?;
    let si = sd.signer_infos.0.iter().next().ok_or(Error::Malformed("no SignerInfo"))?;
    let content = econtent(&sd)?;
    let signer = trusted
        .iter()
        .find(|c| {
            let tbs = c.tbs_certificate();
            match &si.sid {
                SignerIdentifier::IssuerAndSerialNumber(isn) => {
                    isn.issuer == *tbs.issuer() && isn.serial_number == *tbs.serial_number()
                }
                SignerIdentifier::SubjectKeyIdentifier(_) => false,
            }
        })
        .ok_or(Error::BadMessageCheck("reply not signed by a certificate from GetCACert"))?;
    verify_signer_info(si, signer, content.as_deref().unwrap_or(&[]))?;
    let attrs = si.signed_attrs.as_ref().map(|a| a.as_slice().to_vec()).unwrap_or_default();
    Ok((content, attrs))
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
