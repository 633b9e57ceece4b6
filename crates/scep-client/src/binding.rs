//! What an NTLM AUTHENTICATE is bound to: the service principal name of the admin page
//! (`HTTP/host`) and, over HTTPS, the TLS channel (RFC 5929 `tls-server-end-point`), so
//! that a server checking them refuses an exchange relayed from another service or
//! through another TLS connection (MS-NLMP section 3.1.5.1.2, Extended Protection).

use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::ntlm::{Binding, tls_channel_bindings};

const MD5_WITH_RSA: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
const RSASSA_PSS: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const SHA384: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// The binding for an exchange with `host` over a connection whose server presented
/// `peer_certificate` (DER; `None` over plain HTTP, which has no channel to bind to).
pub(crate) fn for_connection(host: &str, peer_certificate: Option<&[u8]>) -> Binding {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Binding {
        target_name: (!host.is_empty()).then(|| format!("HTTP/{host}")),
        channel_bindings: peer_certificate.map(|der| tls_channel_bindings(&tls_server_end_point(der))),
    }
}

/// The certificate hash of RFC 5929 section 4.1: the certificate's DER hashed with the
/// hash of its signature algorithm, SHA-256 when that is MD5 or SHA-1. An algorithm
/// with no hash of its own (or a certificate that does not parse) gets SHA-256 too.
pub(crate) fn tls_server_end_point(der: &[u8]) -> Vec<u8> {
    use scep::attr::DigestAlg;
    use scep::crypto::alg;
    let hash = match Certificate::from_der(der).map(|c| c.signature_algorithm().clone()) {
        Ok(a) if a.oid == alg::SHA384_WITH_RSA || a.oid == alg::ECDSA_SHA384 => DigestAlg::Sha384,
        Ok(a) if a.oid == alg::SHA512_WITH_RSA || a.oid == alg::ECDSA_SHA512 => DigestAlg::Sha512,
        Ok(a) if a.oid == RSASSA_PSS => match pss_hash(&a) {
            Some(h) if h == SHA384 => DigestAlg::Sha384,
            Some(h) if h == SHA512 => DigestAlg::Sha512,
            _ => DigestAlg::Sha256,
        },
        // MD5 and SHA-1 are replaced by SHA-256 (section 4.1).
        Ok(a) if a.oid == MD5_WITH_RSA || a.oid == alg::SHA1_WITH_RSA || a.oid == alg::ECDSA_SHA1 => DigestAlg::Sha256,
        _ => DigestAlg::Sha256,
    };
    hash.digest(der)
}

/// RSASSA-PSS-params (RFC 4055 section 3.1); only the hash is read.
#[derive(der::Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<der::Any>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<der::Any>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<der::Any>,
}

/// The hash of RSASSA-PSS parameters (`None`: the default, SHA-1).
fn pss_hash(a: &AlgorithmIdentifierOwned) -> Option<const_oid::ObjectIdentifier> {
    let params = a.parameters.as_ref()?.to_der().ok()?;
    PssParams::from_der(&params).ok()?.hash.map(|h| h.oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_name_is_the_http_spn_of_the_host() {
        let b = for_connection("ndes01.corp.example", None);
        assert_eq!(b.target_name.as_deref(), Some("HTTP/ndes01.corp.example"));
        assert_eq!(b.channel_bindings, None, "no TLS, no channel bindings");
        assert_eq!(for_connection("[::1]", None).target_name.as_deref(), Some("HTTP/::1"));
    }

    #[test]
    fn a_certificate_is_hashed_with_its_signature_hash_or_sha256() {
        use scep::crypto::{KeyType, PrivateKey};
        for (kind, len) in [(KeyType::EcP256, 32), (KeyType::EcP384, 48), (KeyType::Rsa2048, 32)] {
            let key = PrivateKey::generate(kind).unwrap();
            let name: x509_cert::name::Name = "CN=server".parse().unwrap();
            let der = scep::x509::scep_signer_certificate(&name, &key).unwrap().to_der().unwrap();
            let h = tls_server_end_point(&der);
            assert_eq!(h.len(), len, "{kind:?}");
            let b = for_connection("h", Some(&der));
            assert_eq!(b.channel_bindings, Some(tls_channel_bindings(&h)));
        }
        assert_eq!(tls_server_end_point(b"not a certificate").len(), 32);
    }
}
