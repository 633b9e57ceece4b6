//! The admin page behind Windows authentication: a stand-in for IIS that refuses
//! Basic, offers NTLM, and checks the NTLMv2 proof on the same keep-alive connection.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Duration;

use base64::Engine as _;
use scep_client::{admin, ntlm};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const USER: &str = "User";
const DOMAIN: &str = "Domain";
const PASSWORD: &str = "Password";
const PAGE: &str = "<P> The enrollment challenge password is: <B> 0123456789ABCDEF </B> <P>";

/// The CHALLENGE message of MS-NLMP section 4.2.4.3.
fn challenge_message() -> Vec<u8> {
    hex::decode(concat!(
        "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef",
        "00000000000000002400240044000000060070170000000f53006500720076006500720002000c00",
        "44006f006d00610069006e0001000c0053006500720076006500720000000000",
    ))
    .unwrap()
}

/// A field of an AUTHENTICATE message: (len, maxlen, offset) at `at`.
fn field(m: &[u8], at: usize) -> &[u8] {
    let len = u16::from_le_bytes([m[at], m[at + 1]]) as usize;
    let off = u32::from_le_bytes(m[at + 4..at + 8].try_into().unwrap()) as usize;
    &m[off..off + len]
}

/// Whether an AUTHENTICATE message proves the password for the 4.2.4 challenge.
fn proves_password(m: &[u8]) -> bool {
    let nt = field(m, 20);
    let user =
        String::from_utf16(&field(m, 36).chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<_>>())
            .unwrap();
    let domain =
        String::from_utf16(&field(m, 28).chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<_>>())
            .unwrap();
    // temp = 01 01 00*6, time, client challenge, 00*4, target info, 00*4
    let temp = &nt[16..];
    let time = u64::from_le_bytes(temp[8..16].try_into().unwrap());
    let cc: [u8; 8] = temp[16..24].try_into().unwrap();
    let target_info = &temp[28..temp.len() - 4];
    let key = ntlm::nt_owf_v2(PASSWORD, &user, &domain);
    let expected = ntlm::v2_response(&key, &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef], &cc, time, target_info);
    expected.nt == nt
}

/// Serve one connection like IIS with Windows authentication; returns how many
/// requests it answered.
async fn serve(stream: tokio::net::TcpStream) -> usize {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut answered = 0;
    let mut negotiated = false;
    loop {
        let mut auth = None;
        let mut length = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return answered;
        }
        loop {
            let mut h = String::new();
            r.read_line(&mut h).await.unwrap();
            let h = h.trim_end().to_owned();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_owned());
            }
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).await.unwrap();
        answered += 1;
        let reply = match auth.as_deref().and_then(|a| a.strip_prefix("NTLM ")) {
            Some(token) if !negotiated => {
                let m = b64.decode(token).unwrap();
                assert_eq!(m[8], 1, "NEGOTIATE first");
                negotiated = true;
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM {}\r\nContent-Length: 0\r\n\r\n",
                    b64.encode(challenge_message())
                )
                .into_bytes()
            }
            Some(token) => {
                let m = b64.decode(token).unwrap();
                assert_eq!(m[8], 3, "then AUTHENTICATE, on the same connection");
                if proves_password(&m) {
                    let mut page = vec![0xFF, 0xFE];
                    page.extend(PAGE.encode_utf16().flat_map(u16::to_le_bytes));
                    let mut out =
                        format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n", page.len())
                            .into_bytes();
                    out.extend(page);
                    out
                } else {
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n".to_vec()
                }
            }
            // Basic (or nothing): IIS offers Windows authentication only.
            None => b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        };
        w.write_all(&reply).await.unwrap();
    }
}

async fn stand_in() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s));
        }
    });
    format!("http://{addr}/certsrv/mscep_admin/")
}

#[tokio::test]
async fn ntlm_v2_gets_the_challenge_when_iis_refuses_basic() {
    let url = stand_in().await;
    let page =
        admin::fetch_challenge(&url, &format!("{DOMAIN}\\{USER}"), PASSWORD, Duration::from_secs(10)).await.unwrap();
    assert_eq!(page.password, "0123456789ABCDEF");
    assert_eq!(page.scheme, "NTLM");
    let page =
        admin::fetch_challenge(&url, &format!("{USER}@{DOMAIN}"), PASSWORD, Duration::from_secs(10)).await.unwrap();
    assert_eq!(page.password, "0123456789ABCDEF");

    let wrong = admin::fetch_challenge(&url, &format!("{DOMAIN}\\{USER}"), "wrong", Duration::from_secs(10)).await;
    let err = wrong.unwrap_err();
    assert!(matches!(err, admin::AdminError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("after NTLM"), "{err}");
}
