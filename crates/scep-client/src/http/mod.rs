//! A small HTTP/1.1 client for SCEP: GET and POST with bounded bodies and time-outs,
//! over plain TCP or TLS. HTTPS trusts the PEM certificates in the file named by
//! `SSL_CERT_FILE`, else the system bundle `/etc/ssl/certs/ca-certificates.crt`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};

/// Largest response body read (CertReps and certificate chains are a few KiB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// HTTP errors, in words an admin can act on.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse.
    #[error("invalid URL {0:?}")]
    Url(String),
    /// Neither http:// nor https://.
    #[error("{0}: only http:// and https:// URLs are supported")]
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
    inner: Client<Connector, Full<Bytes>>,
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
        HttpClient { inner: Client::builder(TokioExecutor::new()).build(Connector::new(timeout)), timeout }
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
    let uri = parse_url(url)?;
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
    peer_certificate: Option<Vec<u8>>,
}

impl Connection {
    /// Connect to the host and port of `url`.
    pub async fn open(url: &str, timeout: Duration) -> Result<Self, HttpError> {
        let uri = parse_url(url)?;
        let io_err = |e: &dyn std::fmt::Display| HttpError::Io { url: url.to_owned(), reason: e.to_string() };
        let connect = async {
            let stream = Connector::new(timeout).connect(uri).await.map_err(|e| io_err(&e))?;
            let peer_certificate = stream.peer_certificate();
            let (sender, conn) = hyper::client::conn::http1::handshake(stream).await.map_err(|e| io_err(&e))?;
            Ok::<_, HttpError>((sender, conn, peer_certificate))
        };
        let (sender, conn, peer_certificate) =
            tokio::time::timeout(timeout, connect).await.map_err(|_| HttpError::Timeout(url.to_owned(), timeout))??;
        tokio::spawn(async move {
            // The connection ends when the server closes it or the sender is dropped.
            let _ = conn.await;
        });
        Ok(Connection { sender, timeout, peer_certificate })
    }

    /// The DER of the server's certificate (the leaf) on an HTTPS connection, for
    /// channel bindings; `None` over plain HTTP.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        self.peer_certificate.as_deref()
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

fn parse_url(url: &str) -> Result<Uri, HttpError> {
    let uri: Uri = url.parse().map_err(|_| HttpError::Url(url.to_owned()))?;
    match uri.scheme_str() {
        Some("http" | "https") => Ok(uri),
        _ => Err(HttpError::Scheme(url.to_owned())),
    }
}

/// The TLS client configuration, built on first use.
static TLS: LazyLock<Result<Arc<rustls::ClientConfig>, String>> = LazyLock::new(tls_config);

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let file = std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&file)
        .map_err(|e| format!("cannot read trusted certificates from {file}: {e}"))?;
    for c in certs.flatten() {
        // Bundles hold certificates rustls cannot use; the rest are enough.
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(format!("no trusted CA certificates in {file}: set SSL_CERT_FILE to a PEM file"));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects TCP, then TLS for https URLs.
#[derive(Clone)]
pub struct Connector {
    http: HttpConnector,
}

impl Connector {
    fn new(timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        // https URLs reach us too: TLS is layered on the TCP stream below.
        http.enforce_http(false);
        Connector { http }
    }

    async fn connect(mut self, uri: Uri) -> Result<Stream, BoxError> {
        use tower::Service as _;
        let tcp = self.http.call(uri.clone()).await?;
        if uri.scheme_str() != Some("https") {
            return Ok(Stream::Plain(tcp));
        }
        let config = TLS.as_ref().map_err(|e| e.clone())?.clone();
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        let name = rustls_pki_types::ServerName::try_from(host)?;
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp.into_inner()).await?;
        Ok(Stream::Tls(Box::new(TokioIo::new(tls))))
    }
}

impl tower::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// A plain or TLS connection.
pub enum Stream {
    /// http.
    Plain(TokioIo<tokio::net::TcpStream>),
    /// https.
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>),
}

impl Stream {
    /// The DER of the certificate the TLS server presented first (its own).
    fn peer_certificate(&self) -> Option<Vec<u8>> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.inner().get_ref().1.peer_certificates()?.first().map(|c| c.as_ref().to_vec()),
        }
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl hyper_util::client::legacy::connect::Connection for Stream {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        match self {
            Stream::Plain(s) => s.connected(),
            Stream::Tls(_) => hyper_util::client::legacy::connect::Connected::new(),
        }
    }
}
