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
    /// A connection of our own (see [`Connection`]) failed.
    #[error("cannot reach {url}: {reason}")]
    Io {
        /// URL.
        url: String,
        /// Cause, in words.
        reason: String,
    },
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
        let req = build_request(method, url, body, headers)?;
        let fut = async {
            let resp =
                self.inner.request(req).await.map_err(|source| HttpError::Connect { url: url.to_owned(), source })?;
            read_response(resp, url).await
        };
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| HttpError::Timeout(url.to_owned(), self.timeout))?
    }
}

/// Build a request for `url` (http only) with extra headers and an optional body.
fn build_request(
    method: Method,
    url: &str,
    body: Option<(&str, Vec<u8>)>,
    headers: &[(&str, &str)],
) -> Result<Request<Full<Bytes>>, HttpError> {
    let uri: Uri = url.parse().map_err(|_| HttpError::Url(url.to_owned()))?;
    if uri.scheme_str() != Some("http") {
        return Err(HttpError::Scheme(url.to_owned()));
    }
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    match body {
        Some((ct, bytes)) => b.header(header::CONTENT_TYPE, ct).body(Full::new(Bytes::from(bytes))),
        None => b.body(Full::new(Bytes::new())),
    }
    .map_err(|_| HttpError::Url(url.to_owned()))
}

async fn read_response(resp: hyper::Response<hyper::body::Incoming>, url: &str) -> Result<Response, HttpError> {
    let status = resp.status().as_u16();
    let content_type = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
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
}

/// One HTTP/1.1 connection kept open for a sequence of requests: NTLM authenticates
/// a connection, not a request, so its three legs must share one.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    timeout: Duration,
}

impl Connection {
    /// Connect to the host and port of `url`.
    pub async fn open(url: &str, timeout: Duration) -> Result<Self, HttpError> {
        let uri: Uri = url.parse().map_err(|_| HttpError::Url(url.to_owned()))?;
        if uri.scheme_str() != Some("http") {
            return Err(HttpError::Scheme(url.to_owned()));
        }
        let host = uri.host().ok_or_else(|| HttpError::Url(url.to_owned()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let io_err = |e: &dyn std::fmt::Display| HttpError::Io { url: url.to_owned(), reason: e.to_string() };
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| io_err(&e))?;
            let _ = tcp.set_nodelay(true);
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.map_err(|e| io_err(&e))
        };
        let (sender, conn) =
            tokio::time::timeout(timeout, connect).await.map_err(|_| HttpError::Timeout(url.to_owned(), timeout))??;
        tokio::spawn(async move {
            // The connection ends when the server closes it or the sender is dropped.
            let _ = conn.await;
        });
        Ok(Connection { sender, timeout })
    }

    /// GET `url` (same host) on this connection.
    pub async fn get(&mut self, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        let mut req = build_request(Method::GET, url, None, headers)?;
        // On a bare connection the request line is origin-form and Host is ours to send.
        if let Some(authority) = req.uri().authority().map(|a| a.as_str().to_owned()) {
            let host = header::HeaderValue::from_str(&authority).map_err(|_| HttpError::Url(url.to_owned()))?;
            req.headers_mut().insert(header::HOST, host);
        }
        let path: Uri = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| HttpError::Url(url.to_owned()))?;
        *req.uri_mut() = path;
        let timeout = self.timeout;
        let fut = async {
            self.sender.ready().await.map_err(|e| HttpError::Io { url: url.to_owned(), reason: e.to_string() })?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| HttpError::Io { url: url.to_owned(), reason: e.to_string() })?;
            read_response(resp, url).await
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| HttpError::Timeout(url.to_owned(), timeout))?
    }
}
