//! Deployment profiles: an Apple `.mobileconfig` with a `com.apple.security.scep`
//! payload, and the settings a Windows or Intune SCEP profile asks for.

use std::fmt::Write as _;

use der::Encode;
use x509_cert::{Certificate, name::Name};

/// What goes into an Apple SCEP payload.
#[derive(Clone, Debug)]
pub struct AppleProfile {
    /// The SCEP URL devices use.
    pub url: String,
    /// Payload name (the CA's name as iOS shows it; also sent as GetCACert's message).
    pub name: String,
    /// The challenge password.
    pub challenge: String,
    /// Subject of the certificate to request.
    pub subject: Name,
    /// DNS names, RFC 822 names and UPNs for the SubjectAltName dictionary.
    pub dns: Vec<String>,
    /// RFC 822 names.
    pub emails: Vec<String>,
    /// NT principal names (UPN).
    pub upns: Vec<String>,
    /// RSA key size.
    pub key_size: u32,
    /// Key usage bit mask: 1 signing, 4 encryption, 5 both (Apple's default).
    pub key_usage: u32,
    /// Retries while PENDING, and the delay between them in seconds.
    pub retries: u32,
    /// Seconds.
    pub retry_delay: u32,
}

/// The `.mobileconfig` (XML property list) for `p`, pinning `ca` by its SHA-1.
pub fn apple_mobileconfig(p: &AppleProfile, ca: &Certificate) -> String {
    let fingerprint = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        scep::attr::DigestAlg::Sha1.digest(&ca.to_der().unwrap_or_default()),
    );
    let (outer, inner) = (uuid(), uuid());
    let mut subject = String::new();
    for rdn in p.subject.iter_rdn() {
        subject.push_str("\n\t\t\t\t<array>");
        for atv in rdn.iter() {
            let text = atv.to_string();
            let (k, v) = text.split_once('=').unwrap_or(("CN", &text));
            let _ =
                write!(subject, "\n\t\t\t\t\t<array><string>{}</string><string>{}</string></array>", xml(k), xml(v));
        }
        subject.push_str("\n\t\t\t\t</array>");
    }
    let mut san = String::new();
    for (key, values) in [("dNSName", &p.dns), ("rfc822Name", &p.emails), ("ntPrincipalName", &p.upns)] {
        match values.len() {
            0 => {}
            1 => {
                let v = values.first().map(String::as_str).unwrap_or_default();
                let _ = write!(san, "\n\t\t\t\t<key>{key}</key>\n\t\t\t\t<string>{}</string>", xml(v));
            }
            _ => {
                let _ = write!(san, "\n\t\t\t\t<key>{key}</key>\n\t\t\t\t<array>");
                for v in values {
                    let _ = write!(san, "<string>{}</string>", xml(v));
                }
                san.push_str("</array>");
            }
        }
    }
    let san = if san.is_empty() {
        String::new()
    } else {
        format!("\n\t\t\t<key>SubjectAltName</key>\n\t\t\t<dict>{san}\n\t\t\t</dict>")
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>PayloadContent</key>
			<dict>
			<key>URL</key>
			<string>{url}</string>
			<key>Name</key>
			<string>{name}</string>
			<key>Challenge</key>
			<string>{challenge}</string>
			<key>Key Type</key>
			<string>RSA</string>
			<key>Keysize</key>
			<integer>{key_size}</integer>
			<key>Key Usage</key>
			<integer>{key_usage}</integer>
			<key>Retries</key>
			<integer>{retries}</integer>
			<key>RetryDelay</key>
			<integer>{retry_delay}</integer>
			<key>CAFingerprint</key>
			<data>{fingerprint}</data>
			<key>Subject</key>
			<array>{subject}
			</array>{san}
			</dict>
			<key>PayloadDescription</key>
			<string>Requests a certificate from {name} over SCEP.</string>
			<key>PayloadDisplayName</key>
			<string>SCEP ({name})</string>
			<key>PayloadIdentifier</key>
			<string>org.scepd.scep.{inner}</string>
			<key>PayloadType</key>
			<string>com.apple.security.scep</string>
			<key>PayloadUUID</key>
			<string>{inner}</string>
			<key>PayloadVersion</key>
			<integer>1</integer>
		</dict>
	</array>
	<key>PayloadDisplayName</key>
	<string>{name} certificate enrollment</string>
	<key>PayloadIdentifier</key>
	<string>org.scepd.profile.{outer}</string>
	<key>PayloadType</key>
	<string>Configuration</string>
	<key>PayloadUUID</key>
	<string>{outer}</string>
	<key>PayloadVersion</key>
	<integer>1</integer>
</dict>
</plist>
"#,
        url = xml(&p.url),
        name = xml(&p.name),
        challenge = xml(&p.challenge),
        key_size = p.key_size,
        key_usage = p.key_usage,
        retries = p.retries,
        retry_delay = p.retry_delay,
    )
}

/// The settings of a Windows / Intune SCEP certificate profile for this server.
pub fn windows_settings(url: &str, ca: &Certificate) -> String {
    let der = ca.to_der().unwrap_or_default();
    let sha1 = hex::encode_upper(scep::attr::DigestAlg::Sha1.digest(&der));
    format!(
        "SCEP server URL               {url}\n\
         Root certificate (thumbprint) {sha1}   (SHA-1 of {subject})\n\
         Certificate type              User or Device\n\
         Subject name format           CN={{{{AAD_Device_ID}}}} (or CN={{{{UserPrincipalName}}}})\n\
         Key storage provider          TPM if present, else software\n\
         Key usage                     Digital signature, Key encipherment\n\
         Key size (bits)               2048\n\
         Hash algorithm                SHA-2 (SHA-256)\n\
         Extended key usage            Client Authentication (1.3.6.1.5.5.7.3.2)\n\
         Renewal threshold (%)         20\n\
         Certificate validity          as the template's validity_days (scepd.toml)\n",
        subject = ca.tbs_certificate().subject(),
    )
}

/// XML character escaping.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// A random version 4 UUID, uppercase as Apple writes them.
fn uuid() -> String {
    let mut b = scep::crypto::random_bytes(16).unwrap_or_else(|_| vec![0; 16]);
    if let Some(x) = b.get_mut(6) {
        *x = (*x & 0x0f) | 0x40;
    }
    if let Some(x) = b.get_mut(8) {
        *x = (*x & 0x3f) | 0x80;
    }
    let h = hex::encode_upper(&b);
    let part = |a: usize, z: usize| h.get(a..z).unwrap_or_default();
    format!("{}-{}-{}-{}-{}", part(0, 8), part(8, 12), part(12, 16), part(16, 20), part(20, 32))
}
