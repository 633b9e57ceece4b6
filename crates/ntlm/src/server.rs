//! The server's half of NTLMv2 (MS-NLMP section 3.2): a CHALLENGE for a client's
//! NEGOTIATE, and the check of its AUTHENTICATE against the user's NT hash.
//!
//! What is accepted: NTLMv2 responses only (an LM or NTLMv1 response is refused, as
//! Windows does with LmCompatibilityLevel 5); the MIC is checked whenever the client
//! says it sent one (MsvAvFlags); no key exchange, signing or sealing is offered, so a
//! client that asks for key exchange anyway is refused. What is *not* checked here: that
//! the server challenge is used once and is fresh. The caller keeps it per connection
//! and forgets it after one AUTHENTICATE, which is what makes a replay fail.

use crate::{
    AV_EOL, AV_FLAG_MIC, AV_FLAGS, AV_TIMESTAMP, Challenge, NtlmError, SIGNATURE, VERSION, av_pairs, field,
    field_header, flag, hmac_md5, nt_owf_v2_from_hash, push_av, u32_at, utf16le,
};

/// MsvAvNbComputerName, MsvAvNbDomainName, MsvAvDnsComputerName, MsvAvDnsDomainName.
const AV_NB_COMPUTER: u16 = 1;
const AV_NB_DOMAIN: u16 = 2;
const AV_DNS_COMPUTER: u16 = 3;
const AV_DNS_DOMAIN: u16 = 4;

/// Longest AUTHENTICATE accepted (a real one is under 1 KB; a large blob of target
/// information with channel bindings stays well under this).
pub const MAX_MESSAGE: usize = 4096;

/// The names a server announces in its CHALLENGE (target name and target information).
#[derive(Clone, Debug)]
pub struct Identity {
    /// NetBIOS domain name, also the target name (`CORP`).
    pub netbios_domain: String,
    /// NetBIOS computer name (`NDES01`).
    pub netbios_computer: String,
    /// DNS domain name (`corp.example`).
    pub dns_domain: String,
    /// DNS computer name (`ndes01.corp.example`).
    pub dns_computer: String,
}

impl Identity {
    /// An identity from a NetBIOS domain, a computer name and a DNS domain.
    pub fn new(domain: &str, computer: &str, dns_domain: &str) -> Self {
        Identity {
            netbios_domain: domain.to_uppercase(),
            netbios_computer: computer.to_uppercase(),
            dns_domain: dns_domain.to_owned(),
            dns_computer: if dns_domain.is_empty() {
                computer.to_lowercase()
            } else {
                format!("{}.{dns_domain}", computer.to_lowercase())
            },
        }
    }
}

/// The NEGOTIATE flags a client sent (section 2.2.1.1).
fn negotiate_flags(negotiate: &[u8]) -> Result<u32, NtlmError> {
    if negotiate.get(..8) != Some(SIGNATURE.as_slice()) {
        return Err(NtlmError::Malformed("no NTLMSSP signature"));
    }
    if u32_at(negotiate, 8) != Some(1) {
        return Err(NtlmError::Malformed("not a NEGOTIATE message"));
    }
    if negotiate.len() > MAX_MESSAGE {
        return Err(NtlmError::Malformed("NEGOTIATE too long"));
    }
    u32_at(negotiate, 12).ok_or(NtlmError::Malformed("NEGOTIATE too short"))
}

/// Whether `msg` is an NTLM message of type `kind` (1, 2 or 3).
pub fn is_message(msg: &[u8], kind: u32) -> bool {
    msg.get(..8) == Some(SIGNATURE.as_slice()) && u32_at(msg, 8) == Some(kind)
}

/// The CHALLENGE (section 2.2.1.2) answering `negotiate`, with `server_challenge` (8
/// random bytes, used once) and `now` (FILETIME: 100 ns since 1601) as MsvAvTimestamp,
/// which makes clients send a MIC.
pub fn challenge_message(
    negotiate: &[u8],
    server_challenge: [u8; 8],
    id: &Identity,
    now: u64,
) -> Result<Challenge, NtlmError> {
    let offered = negotiate_flags(negotiate)?;
    // Section 3.2.5.1.1: Unicode when the client offers it, else OEM (curl offers only
    // OEM and follows whatever the server picks). Signing is granted when asked for:
    // GSS-API's NTLM (gss-ntlmssp under SPNEGO) refuses a context without it, and no
    // message is signed after authentication anyway. Never key exchange or sealing:
    // this is authentication only.
    let charset = if offered & flag::UNICODE != 0 { flag::UNICODE } else { flag::OEM };
    let mut flags = charset | flag::NTLM | flag::TARGET_INFO | flag::TARGET_TYPE_DOMAIN | flag::VERSION;
    for f in
        [flag::REQUEST_TARGET, flag::SIGN, flag::ALWAYS_SIGN, flag::EXTENDED_SESSION_SECURITY, flag::N128, flag::N56]
    {
        flags |= offered & f;
    }
    let target_name =
        if charset == flag::UNICODE { utf16le(&id.netbios_domain) } else { id.netbios_domain.as_bytes().to_vec() };
    let mut info = Vec::new();
    push_av(&mut info, AV_NB_DOMAIN, &target_name);
    push_av(&mut info, AV_NB_COMPUTER, &utf16le(&id.netbios_computer));
    push_av(&mut info, AV_DNS_DOMAIN, &utf16le(&id.dns_domain));
    push_av(&mut info, AV_DNS_COMPUTER, &utf16le(&id.dns_computer));
    push_av(&mut info, AV_TIMESTAMP, &now.to_le_bytes());
    push_av(&mut info, AV_EOL, &[]);
    const HEADER: usize = 56;
    let mut m = Vec::with_capacity(HEADER + target_name.len() + info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&field_header(target_name.len(), HEADER));
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]); // Reserved
    m.extend_from_slice(&field_header(info.len(), HEADER + target_name.len()));
    m.extend_from_slice(&VERSION);
    m.extend_from_slice(&target_name);
    m.extend_from_slice(&info);
    Challenge::parse(&m)
}

/// A parsed AUTHENTICATE message (section 2.2.1.3).
#[derive(Clone)]
pub struct Authenticate {
    flags: u32,
    nt: Vec<u8>,
    user: String,
    domain: String,
    workstation: String,
    raw: Vec<u8>,
}

impl core::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authenticate")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("workstation", &self.workstation)
            .finish_non_exhaustive()
    }
}

impl Authenticate {
    /// Read an AUTHENTICATE message (Unicode or OEM strings).
    pub fn parse(raw: &[u8]) -> Result<Self, NtlmError> {
        if !is_message(raw, 3) {
            return Err(NtlmError::Malformed("not an AUTHENTICATE message"));
        }
        if raw.len() > MAX_MESSAGE {
            return Err(NtlmError::Malformed("AUTHENTICATE too long"));
        }
        let get = |at| field(raw, at).ok_or(NtlmError::Malformed("a field points outside the message"));
        let flags = u32_at(raw, 60).ok_or(NtlmError::Malformed("AUTHENTICATE too short"))?;
        let unicode = flags & flag::UNICODE != 0;
        let text = |b: &[u8]| -> Result<String, NtlmError> {
            if !unicode {
                // OEM strings: the client's code page; names in it are ASCII in practice.
                return Ok(b.iter().map(|c| char::from(*c)).collect());
            }
            if !b.len().is_multiple_of(2) {
                return Err(NtlmError::Malformed("a name is not UTF-16"));
            }
            let units: Vec<u16> = b.chunks_exact(2).filter_map(|c| c.try_into().ok().map(u16::from_le_bytes)).collect();
            String::from_utf16(&units).map_err(|_| NtlmError::Malformed("a name is not UTF-16"))
        };
        Ok(Authenticate {
            flags,
            nt: get(20)?.to_vec(),
            domain: text(get(28)?)?,
            user: text(get(36)?)?,
            workstation: text(get(44)?)?,
            raw: raw.to_vec(),
        })
    }

    /// The user name, as the client sent it (without domain).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The domain, as the client sent it (may be empty).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The client's workstation name.
    pub fn workstation(&self) -> &str {
        &self.workstation
    }

    /// Check the NTLMv2 response (and the MIC, when the client says it sent one)
    /// against the user's NT hash, for the `negotiate` and `challenge` of this
    /// exchange. Comparisons are constant-time.
    pub fn verify(&self, nt_hash: &[u8; 16], negotiate: &[u8], challenge: &Challenge) -> Result<(), NtlmError> {
        // NTLMv1 and LM responses are 24 bytes; NTLMv2's is NTProofStr plus a blob.
        if self.nt.len() <= 24 {
            return Err(NtlmError::NotV2);
        }
        if self.flags & flag::KEY_EXCH != 0 && challenge.flags & flag::KEY_EXCH == 0 {
            return Err(NtlmError::NotOffered("key exchange"));
        }
        let (proof, temp) = self.nt.split_at(16);
        if temp.get(..2) != Some(&[1, 1][..]) {
            return Err(NtlmError::NotV2);
        }
        let key = nt_owf_v2_from_hash(nt_hash, &self.user, &self.domain);
        let expected = hmac_md5(&key, &[&challenge.server_challenge, temp]);
        let proof_ok = aws_lc_rs::constant_time::verify_slices_are_equal(proof, &expected).is_ok();
        // The MIC (section 3.2.5.1.2) is there when the client's MsvAvFlags say so.
        let client_info = temp.get(28..).unwrap_or_default();
        let has_mic = av_pairs(client_info)
            .iter()
            .any(|(id, v)| *id == AV_FLAGS && (*v).try_into().map_or(0, u32::from_le_bytes) & AV_FLAG_MIC != 0);
        let mic_ok = if has_mic {
            let session_base_key = hmac_md5(&key, &[proof]);
            let mut zeroed = self.raw.clone();
            let mic = self.raw.get(72..88).ok_or(NtlmError::Malformed("no room for the MIC"))?;
            zeroed.get_mut(72..88).ok_or(NtlmError::Malformed("no room for the MIC"))?.fill(0);
            let expected = hmac_md5(&session_base_key, &[negotiate, &challenge.raw, &zeroed]);
            aws_lc_rs::constant_time::verify_slices_are_equal(mic, &expected).is_ok()
        } else {
            true
        };
        if proof_ok && mic_ok { Ok(()) } else { Err(NtlmError::Mismatch) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credentials, authenticate_message, authenticate_with, negotiate_message, nt_hash};

    fn identity() -> Identity {
        Identity::new("corp", "ndes01", "corp.example")
    }

    #[test]
    fn the_challenge_carries_the_names_a_timestamp_and_only_authentication_flags() {
        let c = challenge_message(&negotiate_message(), [9; 8], &identity(), 42).unwrap();
        assert_eq!(c.server_challenge, [9; 8]);
        assert_eq!(c.timestamp(), Some(42));
        assert_eq!(field(&c.raw, 12).unwrap(), utf16le("CORP"));
        let names: Vec<u16> = av_pairs(&c.target_info).iter().map(|(id, _)| *id).collect();
        assert_eq!(names, [AV_NB_DOMAIN, AV_NB_COMPUTER, AV_DNS_DOMAIN, AV_DNS_COMPUTER, AV_TIMESTAMP]);
        // No key exchange, no signing (0x10) or sealing (0x20) unless asked; when
        // asked, signing only.
        assert_eq!(c.flags & (flag::KEY_EXCH | 0x10 | 0x20), 0);
        let mut asks = negotiate_message();
        let offered = u32_at(&asks, 12).unwrap() | flag::KEY_EXCH | flag::SIGN | 0x20;
        asks.get_mut(12..16).unwrap().copy_from_slice(&offered.to_le_bytes());
        let c = challenge_message(&asks, [9; 8], &identity(), 42).unwrap();
        assert_eq!(c.flags & (flag::KEY_EXCH | 0x10 | 0x20), flag::SIGN);
        assert_ne!(c.flags & flag::TARGET_INFO, 0);
        assert_eq!(identity().dns_computer, "ndes01.corp.example");
    }

    #[test]
    fn a_v2_response_with_mic_verifies_and_every_tampering_fails() {
        let neg = negotiate_message();
        let c = challenge_message(&neg, [3; 8], &identity(), 133_000_000_000_000_000).unwrap();
        let raw = authenticate_message(&Credentials::new("CORP\\svc", "pa55word"), &neg, &c);
        let a = Authenticate::parse(&raw).unwrap();
        assert_eq!((a.user(), a.domain(), a.workstation()), ("svc", "CORP", "SCEP"));
        a.verify(&nt_hash("pa55word"), &neg, &c).unwrap();
        assert_eq!(a.verify(&nt_hash("pa55worD"), &neg, &c), Err(NtlmError::Mismatch));
        // Another server challenge (a replay on another connection) does not verify.
        let other = challenge_message(&neg, [4; 8], &identity(), 133_000_000_000_000_000).unwrap();
        assert_eq!(a.verify(&nt_hash("pa55word"), &neg, &other), Err(NtlmError::Mismatch));
        // A changed MIC, or a changed NEGOTIATE under it, fails.
        let mut bad = raw.clone();
        bad[80] ^= 1;
        assert_eq!(Authenticate::parse(&bad).unwrap().verify(&nt_hash("pa55word"), &neg, &c), Err(NtlmError::Mismatch));
        let mut neg2 = neg.clone();
        neg2[12] ^= 0x04;
        assert_eq!(a.verify(&nt_hash("pa55word"), &neg2, &c), Err(NtlmError::Mismatch));
    }

    #[test]
    fn a_user_name_differing_in_case_is_the_same_user() {
        // NTOWFv2 uppercases the user name (section 3.3.2): Windows names are case-blind.
        let neg = negotiate_message();
        let c = challenge_message(&neg, [5; 8], &identity(), 1).unwrap();
        let raw = authenticate_message(&Credentials::new("SVC@corp.example", "pa55word"), &neg, &c);
        let a = Authenticate::parse(&raw).unwrap();
        assert_eq!((a.user(), a.domain()), ("SVC", "corp.example"));
        a.verify(&nt_hash("pa55word"), &neg, &c).unwrap();
    }

    #[test]
    fn ntlm_v1_and_key_exchange_are_refused() {
        let neg = negotiate_message();
        let c = challenge_message(&neg, [6; 8], &identity(), 1).unwrap();
        let mut raw = authenticate_with(&Credentials::new("u", "pa55word"), &neg, &c, [1; 8], 1);
        // Point the NT response at 24 bytes: an NTLMv1-sized response.
        raw[20] = 24;
        raw[22] = 24;
        assert_eq!(Authenticate::parse(&raw).unwrap().verify(&nt_hash("pa55word"), &neg, &c), Err(NtlmError::NotV2));
        let mut raw = authenticate_with(&Credentials::new("u", "pa55word"), &neg, &c, [1; 8], 1);
        let f = u32_at(&raw, 60).unwrap() | flag::KEY_EXCH;
        raw[60..64].copy_from_slice(&f.to_le_bytes());
        assert!(matches!(
            Authenticate::parse(&raw).unwrap().verify(&nt_hash("pa55word"), &neg, &c),
            Err(NtlmError::NotOffered(_))
        ));
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert!(challenge_message(b"NTLMSSP\0\x03\0\0\0", [0; 8], &identity(), 0).is_err());
        assert!(Authenticate::parse(b"NTLMSSP\0\x03\0\0\0").is_err());
        let neg = negotiate_message();
        let c = challenge_message(&neg, [6; 8], &identity(), 1).unwrap();
        let mut raw = authenticate_message(&Credentials::new("u", "pa55word"), &neg, &c);
        raw[24] = 0xff; // NT response offset past the end
        raw[25] = 0xff;
        assert!(Authenticate::parse(&raw).is_err());
    }
}
