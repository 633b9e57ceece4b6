//! `scep challenge` logs in to the admin page of the real scepd, through a relay that
//! records what it sends: no credentials before the 401, NTLM when offered, Basic over
//! plain HTTP only when allowed, and an NTLM AUTHENTICATE bound to the service and, over
//! HTTPS, to the TLS channel (finding 13).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use base64::Engine as _;
use common::proxy::{Relay, header};
use common::{PASSWORD, Scepd, USER, scep};

const NTLM_USER: &str = "svc";
const NTLM_PASSWORD: &str = "correct horse 7";

fn admin_url(base: &str) -> String {
    format!("{base}/certsrv/mscep_admin/")
}

/// The NTLM messages of `Authorization` headers, decoded.
fn ntlm_messages(heads: &[String]) -> Vec<Vec<u8>> {
    heads
        .iter()
        .filter_map(|h| header(h, "authorization"))
        .filter_map(|v| v.strip_prefix("NTLM "))
        .map(|t| base64::engine::general_purpose::STANDARD.decode(t).unwrap())
        .collect()
}

/// A (len, maxlen, offset) field of an NTLM message.
fn field(m: &[u8], at: usize) -> &[u8] {
    let len = u16::from_le_bytes([m[at], m[at + 1]]) as usize;
    let off = u32::from_le_bytes(m[at + 4..at + 8].try_into().unwrap()) as usize;
    &m[off..off + len]
}

/// The AV_PAIRs of the target information an AUTHENTICATE's NTLMv2 response carries
/// (MS-NLMP 2.2.2.7: NTProofStr, then 28 bytes of header, time and client challenge).
fn target_info(authenticate: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let nt = field(authenticate, 20);
    let mut b = &nt[16 + 28..];
    let mut out = Vec::new();
    while b.len() >= 4 {
        let id = u16::from_le_bytes([b[0], b[1]]);
        let len = u16::from_le_bytes([b[2], b[3]]) as usize;
        if id == 0 {
            break;
        }
        out.push((id, b[4..4 + len].to_vec()));
        b = &b[4 + len..];
    }
    out
}

fn av(info: &[(u16, Vec<u8>)], id: u16) -> Option<&[u8]> {
    info.iter().find(|(i, _)| *i == id).map(|(_, v)| v.as_slice())
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn challenge(url: &str, user: &str, password: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut args = vec!["challenge", url, "--user", user];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("SCEP_PASSWORD", password));
    scep(&args, &env, None)
}

#[test]
fn the_first_request_of_scep_challenge_carries_no_credentials() {
    let server = Scepd::start(|_| {});
    server.add_ntlm_user(NTLM_USER, NTLM_PASSWORD);
    let relay = Relay::plain(server.addr());
    let (code, out, err) = challenge(&admin_url(&relay.base()), NTLM_USER, NTLM_PASSWORD, &[], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let conns = relay.requests();
    let first = &conns[0][0];
    assert!(first.starts_with("GET /certsrv/mscep_admin/"), "{first}");
    assert_eq!(header(first, "authorization"), None, "credentials before the 401: {first}");
}

#[test]
fn ntlm_is_used_when_the_server_offers_it_and_basic_is_not_sent() {
    let server = Scepd::start(|_| {});
    server.add_ntlm_user(NTLM_USER, NTLM_PASSWORD);
    let relay = Relay::plain(server.addr());
    let (code, out, err) = challenge(&admin_url(&relay.base()), NTLM_USER, NTLM_PASSWORD, &[], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim().len(), 16, "{out}");
    let heads: Vec<String> = relay.requests().concat();
    assert!(!heads.iter().any(|h| header(h, "authorization").is_some_and(|v| v.starts_with("Basic"))), "{heads:?}");
    let msgs = ntlm_messages(&heads);
    assert_eq!(msgs.iter().map(|m| m[8]).collect::<Vec<_>>(), [1, 3], "NEGOTIATE then AUTHENTICATE");
    // Over plain HTTP: the target name, and no channel to bind to.
    let info = target_info(&msgs[1]);
    assert_eq!(av(&info, 9), Some(&utf16le("HTTP/127.0.0.1")[..]), "MsvAvTargetName");
    assert_eq!(av(&info, 10), None, "no MsvAvChannelBindings without TLS");

    // A user without an NT hash fails NTLM, and the error says what to do.
    let (code, _, err) = challenge(&admin_url(&relay.base()), USER, PASSWORD, &[], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("after NTLM") && err.contains("--auth basic"), "{err}");
}

#[test]
fn basic_over_plain_http_is_refused_unless_allowed() {
    let server = Scepd::start(|_| {});
    let relay = Relay::plain(server.addr());
    let url = admin_url(&relay.base());
    let (code, out, err) = challenge(&url, USER, PASSWORD, &["--auth", "basic"], &[]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("--allow-basic-over-http") && err.contains("https://"), "{err}");
    let heads: Vec<String> = relay.requests().concat();
    assert!(heads.iter().all(|h| header(h, "authorization").is_none()), "nothing sent in clear: {heads:?}");

    let (code, out, err) = challenge(&url, USER, PASSWORD, &["--auth", "basic", "--allow-basic-over-http"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().len(), 16, "{out}");
    let heads: Vec<String> = relay.requests().concat();
    assert!(heads.iter().any(|h| header(h, "authorization").is_some_and(|v| v.starts_with("Basic "))));
    assert!(header(&relay.requests().last().unwrap()[0], "authorization").is_some(), "after the 401");
}

#[test]
fn ntlm_over_https_carries_the_target_name_and_channel_bindings_and_still_authenticates() {
    let server =
        Scepd::start(|cfg| cfg.push_str("\n[tls]\nlisten = \"127.0.0.1:0\"\nnames = [\"localhost\", \"127.0.0.1\"]\n"));
    server.add_ntlm_user(NTLM_USER, NTLM_PASSWORD);
    let upstream = server.tls_base.as_deref().unwrap().trim_start_matches("https://").parse().unwrap();
    let relay = Relay::tls(upstream, &server.ca_pem());
    let ca = relay.ca_file().to_str().unwrap().to_owned();
    let (code, out, err) =
        challenge(&admin_url(&relay.base()), NTLM_USER, NTLM_PASSWORD, &[], &[("SSL_CERT_FILE", &ca)]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim().len(), 16, "the real server accepted the AUTHENTICATE: {out}");

    let heads: Vec<String> = relay.requests().concat();
    let auth = ntlm_messages(&heads).into_iter().find(|m| m[8] == 3).expect("an AUTHENTICATE");
    assert_eq!(scep_ntlm::server::Authenticate::parse(&auth).unwrap().user(), NTLM_USER);
    let info = target_info(&auth);
    assert_eq!(av(&info, 9), Some(&utf16le("HTTP/127.0.0.1")[..]), "MsvAvTargetName");
    // RFC 5929 tls-server-end-point over the certificate the client saw (the relay's,
    // signed with SHA-256), in a gss_channel_bindings_struct, hashed with MD5.
    let mut data = b"tls-server-end-point:".to_vec();
    data.extend(scep::attr::DigestAlg::Sha256.digest(relay.certificate()));
    let mut gss = vec![0u8; 16];
    gss.extend((data.len() as u32).to_le_bytes());
    gss.extend(data);
    let expected = <md5::Md5 as md5::Digest>::digest(&gss);
    assert_eq!(av(&info, 10), Some(&expected[..]), "MsvAvChannelBindings");
    // The MIC covers it: MsvAvFlags says one was sent.
    let flags = u32::from_le_bytes(av(&info, 6).unwrap().try_into().unwrap());
    assert_ne!(flags & 2, 0, "MIC flag");
}
