//! SCEP over HTTP (RFC 8894 section 4) on every path NDES and other servers use.

use std::net::SocketAddr;

use axum::{
    body::Bytes,
    http::{HeaderValue, Method, StatusCode, Uri, header},
    response::{Html, IntoResponse, Response},
};
use scep::operation::{self, Operation, Query};

use super::{AppState, plain};
use crate::authority::PkiReply;
use crate::vocab::Via;

/// The NDES information page, shown for a plain GET of the SCEP URL.
const INFO_PAGE: &str = "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-8\">\r\n\
<Title>Network Device Enrollment Service</Title></Head>\r\n\
<Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\">\r\n\
<P ID=locPageTitle>Network Device Enrollment Service allows you to obtain certificates for routers or other network devices using the Simple Certificate Enrollment Protocol (SCEP).</P>\r\n\
<P>This URL is used by network devices to submit certificate requests.</P>\r\n\
<P>To obtain an enrollment challenge password, go to the admin URL. By default, the admin URL is http://&lt;server&gt;/CertSrv/mscep_admin</P>\r\n\
<P ID=locPageDesc>For more information see <A HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network Device Enrollment Service</A>.</P>\r\n\
</Font></Body></HTML>\r\n";

/// Whether `path` is one of the SCEP endpoints: `/certsrv/mscep/mscep.dll` with any
/// suffix, `/certsrv/mscep/`, `/scep` with any suffix, `/cgi-bin/pkiclient.exe`.
pub fn is_scep_path(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    let p = p.trim_end_matches('/');
    p == "/certsrv/mscep"
        || p.starts_with("/certsrv/mscep/")
        || p == "/scep"
        || p.starts_with("/scep/")
        || p == "/cgi-bin/pkiclient.exe"
        || p.starts_with("/cgi-bin/pkiclient.exe/")
}

pub(super) async fn handle(state: &AppState, peer: SocketAddr, method: Method, uri: Uri, body: Bytes) -> Response {
    let limits = &state.settings.limits;
    if uri.to_string().len() > limits.max_uri_bytes {
        return plain(StatusCode::URI_TOO_LONG, "The request URI is too long.\n");
    }
    let query = Query::parse(uri.query().unwrap_or(""));
    let Some(op_name) = query.operation.as_deref() else {
        return match method {
            Method::GET | Method::HEAD => Html(INFO_PAGE).into_response(),
            _ => plain(StatusCode::BAD_REQUEST, "Missing operation parameter.\n"),
        };
    };
    let Some(op) = Operation::from_name(op_name) else {
        return plain(StatusCode::BAD_REQUEST, "Unknown SCEP operation.\n");
    };
    let authority = &state.authority;
    if op != Operation::PkiOperation {
        authority.metrics().request(op.name(), "ok");
    }
    match (op, &method) {
        (Operation::GetCaCaps, &Method::GET) => {
            let template = endpoint_template(state, uri.path());
            with_type("text/plain", authority.caps(template.as_deref()).into_bytes())
        }
        (Operation::GetCaCert, &Method::GET) => {
            let (ct, body) = authority.ca_certs();
            with_type(ct, body)
        }
        (Operation::GetNextCaCert, &Method::GET) => match authority.next_ca_cert() {
            Some(body) => with_type(operation::CONTENT_TYPE_NEXT_CA_CERT, body),
            None => plain(StatusCode::NOT_FOUND, "No next CA certificate is available.\n"),
        },
        (Operation::PkiOperation, &Method::POST) => {
            if body.is_empty() {
                return plain(StatusCode::BAD_REQUEST, "The request body is empty.\n");
            }
            pki(state, body.to_vec(), peer, Via::Post, endpoint_template(state, uri.path())).await
        }
        (Operation::PkiOperation, &Method::GET) => {
            let Some(msg) = query.message.as_deref().filter(|m| !m.is_empty()) else {
                return plain(StatusCode::BAD_REQUEST, "Missing message parameter.\n");
            };
            match operation::decode_message(msg) {
                Ok(bytes) => pki(state, bytes, peer, Via::Get, endpoint_template(state, uri.path())).await,
                Err(_) => plain(StatusCode::BAD_REQUEST, "The message parameter is not base64.\n"),
            }
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed for this operation.\n"),
    }
}

/// `/scep/NAME/...` names template NAME when one is configured.
fn endpoint_template(state: &AppState, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/scep/")?;
    let name = rest.split('/').next()?;
    state.authority.has_template(name).then(|| name.to_owned())
}

async fn pki(state: &AppState, bytes: Vec<u8>, peer: SocketAddr, via: Via, template: Option<String>) -> Response {
    match state.authority.pki_operation(bytes, peer.ip().to_string(), via, template).await {
        PkiReply::CertRep(der) => with_type(operation::CONTENT_TYPE_PKI_MESSAGE, der),
        PkiReply::Unreadable => plain(StatusCode::BAD_REQUEST, "The request is not a valid SCEP message.\n"),
        PkiReply::Fault => plain(StatusCode::INTERNAL_SERVER_ERROR, "The server could not answer the request.\n"),
    }
}

/// A 200 with exactly this Content-Type (no parameters: one client rejects `; charset`).
fn with_type(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::is_scep_path;

    #[test]
    fn every_ndes_and_generic_path_routes() {
        for p in [
            "/certsrv/mscep/mscep.dll",
            "/certsrv/mscep/mscep.dll/pkiclient.exe",
            "/CertSrv/mscep/",
            "/certsrv/mscep",
            "/scep",
            "/scep/pkiclient.exe",
            "/cgi-bin/pkiclient.exe",
        ] {
            assert!(is_scep_path(p), "{p}");
        }
        for p in ["/", "/certsrv/mscep_admin/", "/scepx", "/health"] {
            assert!(!is_scep_path(p), "{p}");
        }
    }
}
