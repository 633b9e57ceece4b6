//! Cross-site request refusal for the API and the admin page.
//!
//! Browsers resend cached Basic (and NTLM) credentials to any page that links to the
//! server: without this, a cross-site form could revoke a certificate through the
//! API, and an `<img>` pointing at the admin page would make a password on every view
//! until the cache is full. Requests a browser marks as coming from another site
//! (`Sec-Fetch-Site`), or whose `Origin` is not this server, are refused; API bodies
//! must be JSON (a cross-site HTML form cannot send that content type). Products and
//! scripts send neither header, so they are not affected. The console has its own
//! per-session CSRF token and SameSite=Strict cookie.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::plain;

/// Refuse cross-site requests to `/api/` and `/certsrv/mscep_admin/`, and API bodies
/// that are not JSON.
pub async fn guard(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path.starts_with("/api/");
    let admin = path.to_ascii_lowercase().starts_with("/certsrv/mscep_admin");
    if !(api || admin) {
        return next.run(req).await;
    }
    if let Some(why) = cross_site(req.headers()) {
        tracing::warn!(path, why, "cross-site request refused");
        return plain(
            StatusCode::FORBIDDEN,
            "Cross-site requests are refused: this page changes state (passwords, revocations) and browsers send \
             their cached credentials with requests from other sites. Open it directly, not from another site's page.\n",
        );
    }
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if api && writes && !json_or_empty(&req) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The API takes JSON: send the body with Content-Type: application/json (curl: -H 'Content-Type: \
             application/json').\n",
        );
    }
    next.run(req).await
}

/// Why the request comes from another site, when a browser says so.
fn cross_site(h: &HeaderMap) -> Option<&'static str> {
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    // "none": typed in or bookmarked; "same-origin": this server's own pages.
    if let Some(site) = text("sec-fetch-site")
        && !site.eq_ignore_ascii_case("same-origin")
        && !site.eq_ignore_ascii_case("none")
    {
        return Some("Sec-Fetch-Site is not same-origin");
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let host = text(header::HOST.as_str()).unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest.trim_end_matches('/'));
        if origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return Some("Origin is another site");
        }
    }
    None
}

/// Whether a write to the API carries JSON, or no body and no content type.
fn json_or_empty(req: &Request) -> bool {
    let h = req.headers();
    match h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")),
        None => {
            h.get(header::CONTENT_LENGTH).is_none_or(|l| l.as_bytes() == b"0")
                && h.get(header::TRANSFER_ENCODING).is_none()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn browsers_marks_decide_and_scripts_pass() {
        assert!(cross_site(&headers(&[])).is_none());
        assert!(cross_site(&headers(&[("sec-fetch-site", "none")])).is_none());
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-origin")])).is_none());
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])).is_some());
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])).is_some());
        let same = headers(&[("origin", "https://scep.example.com"), ("host", "scep.example.com")]);
        assert!(cross_site(&same).is_none());
        let other = headers(&[("origin", "https://evil.example"), ("host", "scep.example.com")]);
        assert!(cross_site(&other).is_some());
        assert!(cross_site(&headers(&[("origin", "null"), ("host", "scep.example.com")])).is_some());
    }
}
