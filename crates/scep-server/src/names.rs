//! Human-readable renderings of names for storage and listings.

use scep::csr::Csr;
use x509_cert::ext::pkix::{SubjectAltName, name::GeneralName};

/// The requested SANs as `type:value` strings.
pub fn sans(csr: &Csr) -> Vec<String> {
    csr.subject_alt_name().map(|s| render(&s)).unwrap_or_default()
}

/// A certificate's SANs as `type:value` strings.
pub fn cert_sans(cert: &x509_cert::Certificate) -> Vec<String> {
    cert.tbs_certificate().get_extension::<SubjectAltName>().ok().flatten().map(|(_, s)| render(&s)).unwrap_or_default()
}

fn render(san: &SubjectAltName) -> Vec<String> {
    san.0
        .iter()
        .map(|g| match g {
            GeneralName::DnsName(d) => format!("DNS:{d}"),
            GeneralName::Rfc822Name(e) => format!("email:{e}"),
            GeneralName::UniformResourceIdentifier(u) => format!("URI:{u}"),
            GeneralName::IpAddress(ip) => format!("IP:{}", ip_text(ip.as_bytes())),
            GeneralName::OtherName(o) if o.type_id == scep::attr::oid::MS_UPN => {
                let upn = o
                    .value
                    .decode_as::<der::asn1::Utf8StringRef<'_>>()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
                format!("UPN:{upn}")
            }
            other => format!("other:{other:?}"),
        })
        .collect()
}

fn ip_text(b: &[u8]) -> String {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        std::net::Ipv4Addr::from(a).to_string()
    } else if let Ok(a) = <[u8; 16]>::try_from(b) {
        std::net::Ipv6Addr::from(a).to_string()
    } else {
        hex::encode(b)
    }
}
