//! The NDES admin page, `/certsrv/mscep_admin/`: byte for byte NDES's pages as
//! captured, because products scrape them. UTF-16LE with a BOM; the thumbprint line before the password line.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use der::Encode;
use md5::Digest;

use super::AppState;
use super::auth::{self, Transport};
use crate::accounts::Permission;
use crate::authority::{AdminChallenge, Want};
use crate::store::Binding;

/// Whether `path` is the admin page (case-insensitive, with or without the slash, and
/// as `mscep.dll` under it, which some Java clients ask for).
pub fn is_admin_path(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    p.eq_ignore_ascii_case("/certsrv/mscep_admin") || p.eq_ignore_ascii_case("/certsrv/mscep_admin/mscep.dll")
}

/// The page around the content, as NDES (Windows Server 2022) writes it: one line, no
/// line breaks (compared with captured pages in docs/ndes-compatibility.md).
const HEAD: &str = "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-8\">\
<Title>Network Device Enrollment Service</Title></Head><Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\">\
<Table Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080><TR><TD><Font ID=locPageTitleFont Face=\"Arial\" Size=-1 Color=#FFFFFF><LocID ID=locMSCertSrv>Network Device Enrollment Service</LocID></Font></TD></TR></Table>\
<P ID=locPageTitle> Network Device Enrollment Service allows you to obtain certificates for routers or other network devices using the Simple Certificate Enrollment Protocol (SCEP). </P>";

const TAIL: &str = " <P ID=locPageDesc> For more information see  <A HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network Device Enrollment Service </A>. </P></Font></Body></HTML>";

/// The page for a one-time or the single password.
pub fn password_page(thumbprint: &str, password: &str, sentence: &str) -> String {
    format!(
        "{HEAD}<P> To complete certificate enrollment for your network device you will need the following information: <P> The thumbprint (hash value) for the CA certificate is: <B> {thumbprint} </B> <P> The enrollment challenge password is: <B> {password} </B> <P> {sentence}{TAIL}"
    )
}

/// A page carrying one paragraph in place of the password.
pub fn message_page(message: &str) -> String {
    format!("{HEAD}<P> {message} </P>{TAIL}")
}

/// NDES's page when PasswordMax unused passwords are outstanding, word for word (its
/// figures are NDES's defaults, in the text whatever the settings).
const CACHE_FULL: &str = "The password cache is full. <P> Network Device Enrollment Service stores unused password for later use. By default, passwords are stored for 60 minutes.<P>Use one of the existing passwords. If you cannot use an existing password: <UL> <LI> Wait until one or more existing passwords expire (by default passwords expire 60 minutes after they are created). </LI> <LI> Restart Internet Information Services (IIS). </LI> <LI> Configure the service to cache more than 5 passwords. </LI> </UL>";

/// NDES's page for a user who may not enroll.
const NO_PERMISSION: &str =
    "You do not have sufficient permission to enroll with SCEP.  Please contact your system administrator.";

/// The CA certificate's MD5 as NDES shows it: four groups of 8 uppercase hex digits.
pub fn thumbprint(ca_der: &[u8]) -> String {
    let hex = hex::encode_upper(md5::Md5::digest(ca_der));
    let groups: Vec<&str> = [0, 8, 16, 24].iter().filter_map(|i| hex.get(*i..*i + 8)).collect();
    groups.join(" ")
}

/// UTF-16LE with a byte-order mark (FF FE), as NDES sends it.
pub fn utf16le(page: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(page.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

fn html(page: &str) -> Response {
    let mut r = utf16le(page).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(super) async fn page(
    state: &AppState,
    headers: &HeaderMap,
    transport: Option<Transport>,
    peer: SocketAddr,
) -> Response {
    if let Err(r) = auth::require_secure(state, transport, peer) {
        return r;
    }
    let user = match auth::authenticate(state, headers, peer, transport).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !user.can(Permission::Enroll) {
        tracing::warn!(user = user.0.name, "admin page refused: no enroll permission");
        return html(&message_page(NO_PERMISSION));
    }
    let thumb = thumbprint(&state.authority.pki().ca.ca.cert.to_der().unwrap_or_default());
    match state.authority.admin_challenge(&user.0.name, Binding::default(), Want::WhatTheModeGives).await {
        Ok(AdminChallenge::OneTime(m, minutes)) => html(&password_page(
            &thumb,
            &m.password,
            &format!(
                "This password can be used only once and will expire within {} minutes. <P> Each enrollment requires a new challenge password. You can refresh this web page to obtain a new challenge password. </P>",
                minutes
            ),
        )),
        Ok(AdminChallenge::Single(p)) => {
            html(&password_page(&thumb, &p, "This password can be used multiple times and will not expire. </P>"))
        }
        Ok(AdminChallenge::CacheFull(_)) => html(&message_page(CACHE_FULL)),
        // The admin page asks for no binding, so neither binding refusal comes back here.
        Ok(AdminChallenge::BadBinding(_)) => html(&message_page(NO_PERMISSION)),
        Ok(AdminChallenge::NotIssued(mode) | AdminChallenge::Unbindable(mode)) => {
            html(&message_page(&format!("This server issues no challenge passwords (challenge mode {}).", mode.name())))
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin page: cannot issue a challenge");
            (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain")], "Service unavailable.\n")
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NDES's pages as captured from Windows Server 2022 (thumbprint and password of
    /// that capture), which products' parsers are tested against.
    const CAPTURED_HEAD: &str = "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-8\"><Title>Network Device Enrollment Service</Title></Head><Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\"><Table Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080><TR><TD><Font ID=locPageTitleFont Face=\"Arial\" Size=-1 Color=#FFFFFF><LocID ID=locMSCertSrv>Network Device Enrollment Service</LocID></Font></TD></TR></Table><P ID=locPageTitle> Network Device Enrollment Service allows you to obtain certificates for routers or other network devices using the Simple Certificate Enrollment Protocol (SCEP). </P>";
    const CAPTURED_TAIL: &str = " <P ID=locPageDesc> For more information see  <A HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network Device Enrollment Service </A>. </P></Font></Body></HTML>";

    #[test]
    fn pages_are_byte_for_byte_the_captured_ndes_pages() {
        let password = format!(
            "{CAPTURED_HEAD}<P> To complete certificate enrollment for your network device you will need the following information: <P> The thumbprint (hash value) for the CA certificate is: <B> A656FA66 AB12B433 A2DA5CF7 CC153D9A </B> <P> The enrollment challenge password is: <B> 8CE317021F690069 </B> <P> This password can be used only once and will expire within 60 minutes. <P> Each enrollment requires a new challenge password. You can refresh this web page to obtain a new challenge password. </P>{CAPTURED_TAIL}"
        );
        let sentence = "This password can be used only once and will expire within 60 minutes. <P> Each enrollment requires a new challenge password. You can refresh this web page to obtain a new challenge password. </P>";
        assert_eq!(password_page("A656FA66 AB12B433 A2DA5CF7 CC153D9A", "8CE317021F690069", sentence), password);
        assert_eq!(password.len(), 1251);
        let full = format!(
            "{CAPTURED_HEAD}<P> The password cache is full. <P> Network Device Enrollment Service stores unused password for later use. By default, passwords are stored for 60 minutes.<P>Use one of the existing passwords. If you cannot use an existing password: <UL> <LI> Wait until one or more existing passwords expire (by default passwords expire 60 minutes after they are created). </LI> <LI> Restart Internet Information Services (IIS). </LI> <LI> Configure the service to cache more than 5 passwords. </LI> </UL> </P>{CAPTURED_TAIL}"
        );
        assert_eq!(message_page(CACHE_FULL), full);
        assert_eq!(full.len(), 1270);
        let denied = format!(
            "{CAPTURED_HEAD}<P> You do not have sufficient permission to enroll with SCEP.  Please contact your system administrator. </P>{CAPTURED_TAIL}"
        );
        assert_eq!(message_page(NO_PERMISSION), denied);
        assert_eq!(denied.len(), 885);
    }

    #[test]
    fn the_password_line_matches_what_consumers_scrape() {
        let page = password_page("A656FA66 AB12B433 A2DA5CF7 CC153D9A", "1ED0DD50F7459D6E", "x");
        assert!(page.contains("The enrollment challenge password is: <B> 1ED0DD50F7459D6E </B>"));
        let t = page.find("thumbprint (hash value)").unwrap();
        let p = page.find("challenge password is").unwrap();
        assert!(t < p);
        let bytes = utf16le(&page);
        assert_eq!(&bytes[..4], &[0xFF, 0xFE, b'<', 0]);
        assert_eq!(thumbprint(b"abc"), "90015098 3CD24FB0 D6963F7D 28E17F72");
        for p in
            ["/certsrv/mscep_admin", "/CertSrv/mscep_admin/", "/certsrv/MSCEP_ADMIN", "/certsrv/mscep_admin/mscep.dll"]
        {
            assert!(is_admin_path(p), "{p}");
        }
        assert!(!is_admin_path("/certsrv/mscep_admin/x"));
    }
}
