//! A small HTTP/1.1 client for SCEP: GET and POST with bounded bodies and time-outs.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// Largest response body read (CertReps and certificate chains are a few KiB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// HTTP errors, in words an admin can act on.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse.
    #[error("invalid URL {0:?}")]
    Url(String),
    /// HTTPS is not supported by this build of the client.
    #[error("{0}: only http:// URLs are supported by this client")]
    Scheme(String),
    /// Connection or protocol failure.
    #[error("cannot reach {url}: {source}")]
    Connect {
        /// URL.
        url: String,
        /// Cause.
        source: hyper_util::client::legacy::Error,
    },
    /// Reading the body failed or it was too large.
    #[error("reading the answer from {0} failed")]
    Body(String),
    /// The server did not answer in time.
    #[error("{0} did not answer within {1:?}")]
    Timeout(String, Duration),
}

/// An answer.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content-Type, as sent.
    pub content_type: Option<String>,
    /// WWW-Authenticate, as sent.
    pub www_authenticate: Vec<String>,
    /// Body.
    pub body: Vec<u8>,
}

/// A keep-alive HTTP client.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl HttpClient {
    /// A client with a per-request time-out.
    pub fn new(timeout: Duration) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(timeout));
        conn.set_nodelay(true);
        HttpClient { inner: Client::builder(TokioExecutor::new()).build(conn), timeout }
    }

    /// GET `url`.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        self.send(Method::GET, url, None, headers).await
    }

    /// POST `body` to `url` with `content_type`.
    pub async fn post(&self, url: &str, content_type: &str, body: Vec<u8>) -> Result<Response, HttpError> {
        self.send(Method::POST, url, Some((content_type, body)), &[]).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        let uri: Uri = url.parse().map_err(|_| HttpError::Url(url.to_owned()))?;
        if uri.scheme_str() != Some("http") {
            return Err(HttpError::Scheme(url.to_owned()));
        }
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some((ct, bytes)) => b.header(header::CONTENT_TYPE, ct).body(Full::new(Bytes::from(bytes))),
            None => b.body(Full::new(Bytes::new())),
        }
        .map_err(|_| HttpError::Url(url.to_owned()))?;
        let fut = async {
            let resp =
                self.inner.request(req).await.map_err(|source| HttpError::Connect { url: url.to_owned(), source })?;
            let status = resp.status().as_u16();
            let content_type =
                resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let www_authenticate = resp
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| HttpError::Body(url.to_owned()))?
                .to_bytes()
                .to_vec();
            Ok(Response { status, content_type, www_authenticate, body })
        };
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| HttpError::Timeout(url.to_owned(), self.timeout))?
    }
}
