//! NTLMv2 (MS-NLMP) messages for the NDES admin page, both sides, without I/O. IIS
//! protects that page with Windows authentication, and the products that fetch
//! challenges from it (MDM connectors, `curl --ntlm`, Python's requests_ntlm) speak
//! NTLM there: a NEGOTIATE (type 1), the server's CHALLENGE (type 2) and an
//! AUTHENTICATE (type 3) over one connection.
//!
//! Client side: [`negotiate_message`], [`Challenge::parse`], [`authenticate_message`], and
//! [`authenticate_message_bound`], which names the service the client means to reach and
//! the TLS channel it speaks on ([`Binding`]).
//! Server side ([`server`]): [`server::challenge_message`] and
//! [`server::Authenticate`], which checks an NTLMv2 response against the user's NT hash.
//!
//! Only authentication is done: no signing or sealing, so no key exchange is
//! negotiated. When the server's target information carries a timestamp, the
//! AUTHENTICATE message carries a MIC (MS-NLMP section 3.1.5.1.2).
//!
//! ```
//! use scep_ntlm::{Credentials, authenticate_message, negotiate_message, server};
//! let identity = server::Identity::new("CORP", "NDES01", "corp.example");
//! let negotiate = negotiate_message();
//! let challenge = server::challenge_message(&negotiate, [7; 8], &identity, 133_000_000_000_000_000).unwrap();
//! let auth = authenticate_message(&Credentials::new("CORP\\svc", "pa55word"), &negotiate, &challenge);
//! let auth = server::Authenticate::parse(&auth).unwrap();
//! assert_eq!(auth.user(), "svc");
//! auth.verify(&scep_ntlm::nt_hash("pa55word"), &negotiate, &challenge).unwrap();
//! ```
#![forbid(unsafe_code)]

pub mod server;
pub mod spnego;

use hmac::{Hmac, KeyInit, Mac};
use md4::{Digest, Md4};
use zeroize::Zeroizing;

/// `NTLMSSP\0`.
pub(crate) const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Negotiate flags (MS-NLMP section 2.2.2.5).
pub(crate) mod flag {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const OEM: u32 = 0x0000_0002;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const NTLM: u32 = 0x0000_0200;
    pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const SIGN: u32 = 0x0000_0010;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const EXTENDED_SESSION_SECURITY: u32 = 0x0008_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const N128: u32 = 0x2000_0000;
    pub const N56: u32 = 0x8000_0000;
}

/// What we offer in NEGOTIATE.
const OFFERED: u32 = flag::UNICODE
    | flag::OEM
    | flag::REQUEST_TARGET
    | flag::NTLM
    | flag::ALWAYS_SIGN
    | flag::EXTENDED_SESSION_SECURITY
    | flag::VERSION
    | flag::N128
    | flag::N56;

/// AV_PAIR ids (MS-NLMP section 2.2.2.1).
pub(crate) const AV_EOL: u16 = 0;
pub(crate) const AV_FLAGS: u16 = 6;
pub(crate) const AV_TIMESTAMP: u16 = 7;
pub(crate) const AV_TARGET_NAME: u16 = 9;
pub(crate) const AV_CHANNEL_BINDINGS: u16 = 10;
/// MsvAvFlags bit: the message carries a MIC.
pub(crate) const AV_FLAG_MIC: u32 = 0x2;

/// Version field: Windows 10 build 19041, NTLMSSP revision 15 (section 2.2.2.10).
pub(crate) const VERSION: [u8; 8] = [10, 0, 0x61, 0x4a, 0, 0, 0, 0x0f];

/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET: u64 = 11_644_473_600;

/// NTLM errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NtlmError {
    /// A message is not the NTLM message it should be.
    #[error("malformed NTLM message: {0}")]
    Malformed(&'static str),
    /// An LM or NTLMv1 response: only NTLMv2 is accepted.
    #[error("an LM or NTLMv1 response (only NTLMv2 is accepted)")]
    NotV2,
    /// The response or the MIC does not match the user's key.
    #[error("the NTLMv2 response does not match")]
    Mismatch,
    /// The client asked for something the server did not offer (key exchange).
    #[error("the AUTHENTICATE message asks for {0}, which the server did not offer")]
    NotOffered(&'static str),
}

/// Who authenticates. `user` may be `DOMAIN\user` or `user@domain`.
#[derive(Clone)]
pub struct Credentials {
    /// User name, without domain.
    pub user: String,
    /// Domain (empty for a local account).
    pub domain: String,
    /// Password.
    pub password: Zeroizing<String>,
    /// Workstation name sent to the server.
    pub workstation: String,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("domain", &self.domain).finish_non_exhaustive()
    }
}

impl Credentials {
    /// Split `DOMAIN\user` or `user@domain`.
    pub fn new(user: &str, password: &str) -> Self {
        let (user, domain) = if let Some((d, u)) = user.split_once('\\') {
            (u, d)
        } else if let Some((u, d)) = user.split_once('@') {
            (u, d)
        } else {
            (user, "")
        };
        Credentials {
            user: user.to_owned(),
            domain: domain.to_owned(),
            password: Zeroizing::new(password.to_owned()),
            workstation: "SCEP".to_owned(),
        }
    }
}

/// The NEGOTIATE message (section 2.2.1.1): flags and version, no domain or workstation.
pub fn negotiate_message() -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&OFFERED.to_le_bytes());
    m.extend_from_slice(&[0; 16]); // DomainNameFields, WorkstationFields: empty
    m.extend_from_slice(&VERSION);
    m
}

/// A parsed CHALLENGE message (section 2.2.1.2).
#[derive(Clone, Debug)]
pub struct Challenge {
    /// Flags the server chose.
    pub flags: u32,
    /// The 8-byte server challenge.
    pub server_challenge: [u8; 8],
    /// TargetInfo AV_PAIRs, raw.
    pub target_info: Vec<u8>,
    /// The whole message (for the MIC).
    pub raw: Vec<u8>,
}

impl Challenge {
    /// Parse a CHALLENGE message.
    pub fn parse(raw: &[u8]) -> Result<Self, NtlmError> {
        if raw.get(..8) != Some(SIGNATURE.as_slice()) {
            return Err(NtlmError::Malformed("no NTLMSSP signature"));
        }
        if u32_at(raw, 8) != Some(2) {
            return Err(NtlmError::Malformed("not a CHALLENGE message"));
        }
        let flags = u32_at(raw, 20).ok_or(NtlmError::Malformed("too short"))?;
        let server_challenge: [u8; 8] = raw
            .get(24..32)
            .and_then(|s| s.try_into().ok())
            .ok_or(NtlmError::Malformed("too short for the server challenge"))?;
        // TargetInfoFields are absent in very old servers' 32-byte messages.
        let target_info = if raw.len() >= 48 {
            field(raw, 40).ok_or(NtlmError::Malformed("TargetInfo points outside the message"))?.to_vec()
        } else {
            Vec::new()
        };
        Ok(Challenge { flags, server_challenge, target_info, raw: raw.to_vec() })
    }

    /// The server's MsvAvTimestamp, if it sent one.
    pub fn timestamp(&self) -> Option<u64> {
        av_pairs(&self.target_info)
            .into_iter()
            .find(|(id, _)| *id == AV_TIMESTAMP)
            .and_then(|(_, v)| v.try_into().ok().map(u64::from_le_bytes))
    }
}

/// NTOWFv2 (section 3.3.2): HMAC-MD5 keyed with MD4(UTF-16LE(password)) over
/// UTF-16LE(uppercase(user) + domain).
pub fn nt_owf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    nt_owf_v2_from_hash(&nt_hash(password), user, domain)
}

/// The NT hash (section 3.3.1, NTOWFv1): MD4 of the UTF-16LE password. It is the
/// secret a server keeps for NTLM, as good as the password for NTLM itself.
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16le(password)).into()
}

/// NTOWFv2 from the NT hash, as a server computes it.
pub fn nt_owf_v2_from_hash(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let mut who = utf16le(&user.to_uppercase());
    who.extend_from_slice(&utf16le(domain));
    hmac_md5(nt_hash, &[&who])
}

/// The client's NTLMv2 computations for one challenge (section 3.3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Response {
    /// LmChallengeResponse (LMv2: HMAC || client challenge).
    pub lm: Vec<u8>,
    /// NtChallengeResponse: NTProofStr || temp.
    pub nt: Vec<u8>,
    /// NTProofStr.
    pub nt_proof: [u8; 16],
    /// SessionBaseKey (= KeyExchangeKey = ExportedSessionKey without key exchange).
    pub session_base_key: [u8; 16],
}

/// NTLMv2 responses for `target_info` (as it goes into the response), `time`
/// (FILETIME) and an 8-byte client challenge.
pub fn v2_response(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    time: u64,
    target_info: &[u8],
) -> V2Response {
    let mut temp = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
    temp.extend_from_slice(&time.to_le_bytes());
    temp.extend_from_slice(client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(target_info);
    temp.extend_from_slice(&[0; 4]);
    let nt_proof = hmac_md5(response_key, &[server_challenge, &temp]);
    let mut nt = nt_proof.to_vec();
    nt.extend_from_slice(&temp);
    let mut lm = hmac_md5(response_key, &[server_challenge, client_challenge]).to_vec();
    lm.extend_from_slice(client_challenge);
    let session_base_key = hmac_md5(response_key, &[&nt_proof]);
    V2Response { lm, nt, nt_proof, session_base_key }
}

/// What a client adds to the server's target information in its AUTHENTICATE
/// (MS-NLMP section 3.1.5.1.2), under the NTLMv2 proof and the MIC: the service it means
/// to reach and the TLS channel it speaks on. A server that checks them refuses an
/// AUTHENTICATE relayed to another service or through another TLS connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// MsvAvTargetName: the service principal name of the server, `HTTP/host`.
    pub target_name: Option<String>,
    /// MsvAvChannelBindings: the MD5 of the channel bindings ([`tls_channel_bindings`]).
    pub channel_bindings: Option<[u8; 16]>,
}

/// The application data prefix of TLS channel bindings (RFC 5929 section 4).
pub const TLS_SERVER_END_POINT: &[u8] = b"tls-server-end-point:";

/// MsvAvChannelBindings for a TLS connection: the MD5 of a gss_channel_bindings_struct
/// (RFC 2744 section 3.11, addresses empty) whose application data is
/// `tls-server-end-point:` and `certificate_hash`, the hash of the server's certificate
/// that RFC 5929 section 4.1 defines (the caller picks the hash: it depends on the
/// certificate's signature algorithm).
pub fn tls_channel_bindings(certificate_hash: &[u8]) -> [u8; 16] {
    let mut data = TLS_SERVER_END_POINT.to_vec();
    data.extend_from_slice(certificate_hash);
    // initiator_addrtype, initiator_address (length 0), acceptor_addrtype,
    // acceptor_address (length 0), each a 32-bit little-endian word, then the
    // application data with its length.
    let mut s = vec![0u8; 16];
    s.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
    s.extend_from_slice(&data);
    md5::Md5::digest(&s).into()
}

/// The AUTHENTICATE message (section 2.2.1.3) answering `challenge`, with a fresh
/// client challenge and the current time (or the server's timestamp).
pub fn authenticate_message(creds: &Credentials, negotiate: &[u8], challenge: &Challenge) -> Vec<u8> {
    authenticate_message_bound(creds, negotiate, challenge, &Binding::default())
}

/// [`authenticate_message`] with the target name and channel bindings of `binding`
/// added to the target information the NTLMv2 response (and the MIC) covers.
pub fn authenticate_message_bound(
    creds: &Credentials,
    negotiate: &[u8],
    challenge: &Challenge,
    binding: &Binding,
) -> Vec<u8> {
    let mut client_challenge = [0u8; 8];
    // A failing system RNG leaves zeros: NTLM stays correct, only less unpredictable.
    let _ = aws_lc_rs::rand::fill(&mut client_challenge);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    authenticate_bound_with(
        creds,
        negotiate,
        challenge,
        binding,
        client_challenge,
        (now + FILETIME_UNIX_OFFSET) * 10_000_000,
    )
}

/// [`authenticate_message`] with a given client challenge and time (for tests).
pub fn authenticate_with(
    creds: &Credentials,
    negotiate: &[u8],
    challenge: &Challenge,
    client_challenge: [u8; 8],
    now: u64,
) -> Vec<u8> {
    authenticate_bound_with(creds, negotiate, challenge, &Binding::default(), client_challenge, now)
}

/// [`authenticate_message_bound`] with a given client challenge and time (for tests).
pub fn authenticate_bound_with(
    creds: &Credentials,
    negotiate: &[u8],
    challenge: &Challenge,
    binding: &Binding,
    client_challenge: [u8; 8],
    now: u64,
) -> Vec<u8> {
    let key = nt_owf_v2(&creds.password, &creds.user, &creds.domain);
    let server_time = challenge.timestamp();
    // Section 3.1.5.1.2: with a server timestamp, use it, send a MIC and flag it in
    // MsvAvFlags, and send Z(24) as the LM response.
    let time = server_time.unwrap_or(now);
    let target_info = client_target_info(&challenge.target_info, server_time.is_some(), binding);
    let r = v2_response(&key, &challenge.server_challenge, &client_challenge, time, &target_info);
    let lm = if server_time.is_some() { vec![0u8; 24] } else { r.lm.clone() };
    let flags = (challenge.flags & OFFERED) | flag::UNICODE | flag::NTLM;

    let domain = utf16le(&creds.domain);
    let user = utf16le(&creds.user);
    let workstation = utf16le(&creds.workstation);
    const HEADER: usize = 88; // fields, flags, version, MIC
    let mut payload = Vec::new();
    let mut fields = Vec::new();
    for data in [&lm[..], &r.nt[..], &domain[..], &user[..], &workstation[..], &[][..]] {
        let offset = HEADER + payload.len();
        fields.push(field_header(data.len(), offset));
        payload.extend_from_slice(data);
    }
    let mut m = Vec::with_capacity(HEADER + payload.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    for f in &fields {
        m.extend_from_slice(f);
    }
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&VERSION);
    m.extend_from_slice(&[0; 16]); // MIC, filled below
    m.extend_from_slice(&payload);
    // The MIC is computed last, over the finished message: it covers the NT response,
    // and with it the target information as modified above.
    if server_time.is_some() {
        let mic = hmac_md5(&r.session_base_key, &[negotiate, &challenge.raw, &m]);
        if let Some(slot) = m.get_mut(72..88) {
            slot.copy_from_slice(&mic);
        }
    }
    m
}

/// The target information a client returns (section 3.1.5.1.2): the server's AV_PAIRs,
/// MsvAvFlags with the MIC bit when a MIC is sent, MsvAvTargetName and
/// MsvAvChannelBindings from `binding`, then MsvAvEOL. Unchanged when there is nothing
/// to add.
pub(crate) fn client_target_info(server: &[u8], mic: bool, binding: &Binding) -> Vec<u8> {
    if !mic && binding == &Binding::default() {
        return server.to_vec();
    }
    let mut out = Vec::new();
    let mut flags = if mic { AV_FLAG_MIC } else { 0 };
    let mut had_flags = false;
    for (id, value) in av_pairs(server) {
        match id {
            AV_FLAGS => {
                had_flags = true;
                flags |= value.try_into().map_or(0, u32::from_le_bytes);
            }
            // Ours to set, whatever a server sent.
            AV_TARGET_NAME | AV_CHANNEL_BINDINGS => {}
            _ => push_av(&mut out, id, value),
        }
    }
    if mic || had_flags {
        push_av(&mut out, AV_FLAGS, &flags.to_le_bytes());
    }
    if let Some(cb) = &binding.channel_bindings {
        push_av(&mut out, AV_CHANNEL_BINDINGS, cb);
    }
    if let Some(name) = &binding.target_name {
        push_av(&mut out, AV_TARGET_NAME, &utf16le(name));
    }
    push_av(&mut out, AV_EOL, &[]);
    out
}

pub(crate) fn push_av(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(value);
}

/// AV_PAIRs up to MsvAvEOL (or the end).
pub(crate) fn av_pairs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(id), Some(len)) = (u16_at(b, 0), u16_at(b, 2)) {
        let Some(value) = b.get(4..4 + usize::from(len)) else { break };
        if id == AV_EOL {
            break;
        }
        out.push((id, value));
        b = b.get(4 + usize::from(len)..).unwrap_or_default();
    }
    out
}

pub(crate) fn field_header(len: usize, offset: usize) -> [u8; 8] {
    let len = u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes();
    let off = u32::try_from(offset).unwrap_or(u32::MAX).to_le_bytes();
    [len[0], len[1], len[0], len[1], off[0], off[1], off[2], off[3]]
}

/// The bytes a (len, maxlen, offset) field header at `at` points to.
pub(crate) fn field(raw: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(u16_at(raw, at)?);
    let offset = usize::try_from(u32_at(raw, at + 4)?).ok()?;
    raw.get(offset..offset.checked_add(len)?)
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)?.try_into().ok().map(u16::from_le_bytes)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?.try_into().ok().map(u32::from_le_bytes)
}

pub(crate) fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length: this cannot fail.
    let Ok(mut mac) = <Hmac<md5::Md5> as KeyInit>::new_from_slice(key) else { return [0; 16] };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // MS-NLMP section 4.2.1 (common values) and 4.2.4 (NTLMv2).
    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];

    /// The CHALLENGE message of section 4.2.4.3.
    fn challenge_4_2_4() -> Vec<u8> {
        hex::decode(concat!(
            "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef",
            "00000000000000002400240044000000060070170000000f53006500720076006500720002000c00",
            "44006f006d00610069006e0001000c0053006500720076006500720000000000",
        ))
        .unwrap()
    }

    #[test]
    fn ms_nlmp_4_2_4_ntowfv2() {
        assert_eq!(hex::encode(nt_owf_v2("Password", "User", "Domain")), "0c868a403bfd7a93a3001ef22ef02e3f");
    }

    #[test]
    fn ms_nlmp_4_2_4_responses_and_session_key() {
        let c = Challenge::parse(&challenge_4_2_4()).unwrap();
        assert_eq!(c.server_challenge, SERVER_CHALLENGE);
        assert_eq!(c.flags, 0xe28a8233);
        assert_eq!(c.timestamp(), None);
        let key = nt_owf_v2("Password", "User", "Domain");
        let r = v2_response(&key, &c.server_challenge, &CLIENT_CHALLENGE, 0, &c.target_info);
        assert_eq!(hex::encode(&r.lm), "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa");
        assert_eq!(hex::encode(r.nt_proof), "68cd0ab851e51c96aabc927bebef6a1c");
        assert_eq!(hex::encode(r.session_base_key), "8de40ccadbc14a82f15cb0ad0de95ca3");
        // The temp blob of section 4.2.4.2.2: header, time 0, client challenge, the
        // server's AV pairs (NbDomainName "Domain", NbComputerName "Server", EOL).
        assert_eq!(
            hex::encode(&r.nt[16..]),
            concat!(
                "0101000000000000",
                "0000000000000000",
                "aaaaaaaaaaaaaaaa",
                "00000000",
                "02000c0044006f006d00610069006e00",
                "01000c00530065007200760065007200",
                "00000000",
                "00000000",
            )
        );
    }

    #[test]
    fn authenticate_message_carries_the_4_2_4_responses_in_its_fields() {
        let c = Challenge::parse(&challenge_4_2_4()).unwrap();
        let creds = Credentials::new("Domain\\User", "Password");
        assert_eq!((creds.user.as_str(), creds.domain.as_str()), ("User", "Domain"));
        let m = authenticate_with(&creds, &negotiate_message(), &c, CLIENT_CHALLENGE, 0);
        assert_eq!(&m[..8], SIGNATURE);
        assert_eq!(u32_at(&m, 8), Some(3));
        assert_eq!(hex::encode(field(&m, 12).unwrap()), "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa");
        assert_eq!(hex::encode(&field(&m, 20).unwrap()[..16]), "68cd0ab851e51c96aabc927bebef6a1c");
        assert_eq!(field(&m, 28).unwrap(), utf16le("Domain"));
        assert_eq!(field(&m, 36).unwrap(), utf16le("User"));
        assert_eq!(field(&m, 44).unwrap(), utf16le("SCEP"));
        assert_eq!(&m[72..88], &[0; 16], "no MIC without a server timestamp");
    }

    #[test]
    fn a_server_timestamp_brings_a_mic_and_the_mic_flag() {
        let mut info = Vec::new();
        push_av(&mut info, 2, &utf16le("Domain"));
        push_av(&mut info, AV_TIMESTAMP, &1234u64.to_le_bytes());
        push_av(&mut info, AV_EOL, &[]);
        let mut raw = challenge_4_2_4()[..40].to_vec();
        raw.extend_from_slice(&field_header(info.len(), 48));
        raw.extend_from_slice(&info);
        let c = Challenge::parse(&raw).unwrap();
        assert_eq!(c.timestamp(), Some(1234));
        let neg = negotiate_message();
        let creds = Credentials::new("user@Domain", "Password");
        let m = authenticate_with(&creds, &neg, &c, CLIENT_CHALLENGE, 99);
        assert_eq!(field(&m, 12).unwrap(), &[0; 24]);
        let nt = field(&m, 20).unwrap();
        assert_eq!(&nt[24..32], &1234u64.to_le_bytes(), "the server's time is used");
        let ti = client_target_info(&c.target_info, true, &Binding::default());
        assert!(av_pairs(&ti).contains(&(AV_FLAGS, &AV_FLAG_MIC.to_le_bytes()[..])));
        // The MIC covers the three messages with the MIC field zeroed.
        let key = nt_owf_v2("Password", "user", "Domain");
        let r = v2_response(&key, &SERVER_CHALLENGE, &CLIENT_CHALLENGE, 1234, &ti);
        let mut zeroed = m.clone();
        zeroed[72..88].fill(0);
        assert_eq!(m[72..88], hmac_md5(&r.session_base_key, &[&neg, &raw, &zeroed]));
    }

    #[test]
    fn malformed_challenges_are_refused() {
        assert!(Challenge::parse(b"NTLMSSP\0").is_err());
        assert!(Challenge::parse(b"HTTP/1.1 200 OK\r\n\r\n...........................").is_err());
        let mut bad = challenge_4_2_4();
        bad[44] = 0xff; // TargetInfo offset past the end
        assert!(Challenge::parse(&bad).is_err());
    }

    #[test]
    fn tls_channel_bindings_hash_the_gss_struct_with_the_end_point_data() {
        // MD5(Z(16) || le32(53) || "tls-server-end-point:" || AA*32), computed apart.
        assert_eq!(hex::encode(tls_channel_bindings(&[0xaa; 32])), "887bbef10e2b16116a7405bb2d7483a8");
    }

    #[test]
    fn a_binding_goes_into_the_target_info_under_the_proof_and_the_mic() {
        let neg = negotiate_message();
        let c = server::challenge_message(&neg, [8; 8], &server::Identity::new("corp", "ndes01", "corp.example"), 77)
            .unwrap();
        let binding =
            Binding { target_name: Some("HTTP/ndes01.corp.example".into()), channel_bindings: Some([0x5a; 16]) };
        let raw = authenticate_bound_with(&Credentials::new("CORP\\svc", "pa55word"), &neg, &c, &binding, [2; 8], 1);
        let nt = field(&raw, 20).unwrap();
        let info = av_pairs(&nt[44..]);
        assert!(info.contains(&(AV_TARGET_NAME, &utf16le("HTTP/ndes01.corp.example")[..])), "{info:?}");
        assert!(info.contains(&(AV_CHANNEL_BINDINGS, &[0x5a; 16][..])), "{info:?}");
        assert!(info.contains(&(AV_FLAGS, &AV_FLAG_MIC.to_le_bytes()[..])), "{info:?}");
        // The server's own pairs are kept, once each.
        assert_eq!(info.iter().filter(|(id, _)| *id == AV_TIMESTAMP).count(), 1);
        // A server verifies the proof over the target info it receives, and the MIC.
        let a = server::Authenticate::parse(&raw).unwrap();
        a.verify(&nt_hash("pa55word"), &neg, &c).unwrap();
        // Changing the bindings breaks the proof: they cannot be swapped on the way.
        let at = raw.windows(16).position(|w| w == [0x5a; 16]).unwrap();
        let mut swapped = raw.clone();
        swapped[at] ^= 1;
        assert_eq!(
            server::Authenticate::parse(&swapped).unwrap().verify(&nt_hash("pa55word"), &neg, &c),
            Err(NtlmError::Mismatch)
        );
    }

    #[test]
    fn without_a_timestamp_or_binding_the_target_info_is_the_servers() {
        let info = challenge_4_2_4();
        let c = Challenge::parse(&info).unwrap();
        assert_eq!(client_target_info(&c.target_info, false, &Binding::default()), c.target_info);
        let named = client_target_info(
            &c.target_info,
            false,
            &Binding { target_name: Some("HTTP/h".into()), ..Default::default() },
        );
        assert_eq!(av_pairs(&named).last(), Some(&(AV_TARGET_NAME, &utf16le("HTTP/h")[..])));
        assert!(!av_pairs(&named).iter().any(|(id, _)| *id == AV_FLAGS), "no MIC, no MsvAvFlags");
    }
}
