//! Stand-ins on the path between the `scep` client and scepd: a relay that records what
//! the client sends (over TLS it terminates TLS with a certificate of its own, as an
//! on-path attacker would), and an HTTP proxy that answers chosen requests itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use der::Encode;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, pem::PemObject};
use scep::crypto::{KeyType, PrivateKey, Signer};
use scep::x509::{self, CertTemplate};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use x509_cert::ext::pkix::{KeyUsages, SubjectAltName, name::GeneralName};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// What the client sent on one connection.
type Recorded = Arc<Mutex<Vec<u8>>>;

/// A byte relay to one upstream address that keeps what the client sent on each
/// connection.
pub struct Relay {
    addr: SocketAddr,
    tls: Option<TlsFront>,
    connections: Arc<Mutex<Vec<Recorded>>>,
    _rt: tokio::runtime::Runtime,
}

/// The relay's own TLS identity: a CA of its own and a certificate for 127.0.0.1.
struct TlsFront {
    ca_file: tempfile::NamedTempFile,
    leaf: Vec<u8>,
}

impl Relay {
    /// Plain HTTP in front of plain HTTP.
    pub fn plain(upstream: SocketAddr) -> Relay {
        Relay::start(upstream, None, None)
    }

    /// HTTPS in front of HTTPS: TLS from the client ends here, with the relay's own
    /// certificate; a new TLS connection, trusting `upstream_ca`, goes on to `upstream`.
    pub fn tls(upstream: SocketAddr, upstream_ca: &Path) -> Relay {
        Relay::start(upstream, Some(tls_front()), Some(upstream_ca.to_owned()))
    }

    fn start(upstream: SocketAddr, front: Option<(TlsFront, rustls::ServerConfig)>, back: Option<PathBuf>) -> Relay {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let (tls, acceptor) = match front {
            Some((f, cfg)) => (Some(f), Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))),
            None => (None, None),
        };
        let connector = back.map(|ca| {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(&ca).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let cfg = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            tokio_rustls::TlsConnector::from(Arc::new(cfg))
        });
        let conns = connections.clone();
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let record = Arc::new(Mutex::new(Vec::new()));
                conns.lock().unwrap().push(record.clone());
                let (acceptor, connector) = (acceptor.clone(), connector.clone());
                tokio::spawn(async move {
                    let client: Box<dyn Io> = match acceptor {
                        Some(a) => match a.accept(tcp).await {
                            Ok(s) => Box::new(s),
                            Err(_) => return,
                        },
                        None => Box::new(tcp),
                    };
                    let Ok(up) = TcpStream::connect(upstream).await else { return };
                    let up: Box<dyn Io> = match connector {
                        Some(c) => match c.connect(ServerName::try_from("127.0.0.1").unwrap(), up).await {
                            Ok(s) => Box::new(s),
                            Err(_) => return,
                        },
                        None => Box::new(up),
                    };
                    let (mut cr, mut cw) = tokio::io::split(client);
                    let (mut ur, mut uw) = tokio::io::split(up);
                    let to_server = async move {
                        let mut buf = vec![0u8; 16384];
                        while let Ok(n @ 1..) = cr.read(&mut buf).await {
                            record.lock().unwrap().extend_from_slice(&buf[..n]);
                            if uw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = uw.shutdown().await;
                    };
                    let to_client = async move {
                        let _ = tokio::io::copy(&mut ur, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(to_server, to_client);
                });
            }
        });
        Relay { addr, tls, connections, _rt: rt }
    }

    /// `http://` or `https://` and the relay's address.
    pub fn base(&self) -> String {
        if self.tls.is_some() { format!("https://{}", self.addr) } else { format!("http://{}", self.addr) }
    }

    /// The PEM file that makes a client trust the relay (for SSL_CERT_FILE).
    pub fn ca_file(&self) -> &Path {
        self.tls.as_ref().unwrap().ca_file.path()
    }

    /// The certificate the relay presents (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.tls.as_ref().unwrap().leaf
    }

    /// The request heads the client sent, per connection in the order they opened
    /// (the admin page is read with bodiless GETs).
    pub fn requests(&self) -> Vec<Vec<String>> {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .map(|c| {
                let text = String::from_utf8_lossy(&c.lock().unwrap()).into_owned();
                text.split("\r\n\r\n").filter(|r| !r.is_empty()).map(str::to_owned).collect()
            })
            .collect()
    }
}

/// A header's value in a request head (first match, name case-insensitive).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn tls_front() -> (TlsFront, rustls::ServerConfig) {
    let now = SystemTime::now();
    let ca_key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let ca = x509::issue(
        &CertTemplate {
            subject: "CN=on-path relay CA".parse().unwrap(),
            serial: x509::random_serial().unwrap(),
            not_before: now - Duration::from_secs(3600),
            not_after: now + x509::days(1),
            extensions: vec![
                x509::basic_constraints(true).unwrap(),
                x509::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).unwrap(),
            ],
        },
        &ca_key.public_key(),
        None,
        &ca_key,
    )
    .unwrap();
    let key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let san = SubjectAltName(vec![
        GeneralName::IpAddress(der::asn1::OctetString::new(vec![127, 0, 0, 1]).unwrap()),
        GeneralName::DnsName(der::asn1::Ia5String::new("localhost").unwrap()),
    ]);
    let leaf = x509::issue(
        &CertTemplate {
            subject: "CN=127.0.0.1".parse().unwrap(),
            serial: x509::random_serial().unwrap(),
            not_before: now - Duration::from_secs(3600),
            not_after: now + x509::days(1),
            extensions: vec![
                x509::basic_constraints(false).unwrap(),
                x509::key_usage(KeyUsages::DigitalSignature).unwrap(),
                x509::extended_key_usage(vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH]).unwrap(),
                x509::subject_alt_name(san).unwrap(),
            ],
        },
        &key.public_key(),
        Some(&ca),
        &ca_key,
    )
    .unwrap();
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), scep_client::pem::certs_pem(std::slice::from_ref(&ca)).unwrap()).unwrap();
    let leaf = leaf.to_der().unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.clone()), CertificateDer::from(ca.to_der().unwrap())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec())),
        )
        .unwrap();
    (TlsFront { ca_file, leaf }, cfg)
}

/// What the proxy does with a request.
pub enum Route {
    /// Send it on to this base URL (`http://host:port`) and relay the answer.
    Forward(String),
    /// Answer 200 with this Content-Type and body.
    Answer(String, Vec<u8>),
}

/// An HTTP proxy that routes each request (by its target, `/path?query`).
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(route: impl Fn(&str) -> Route + Send + Sync + 'static) -> Proxy {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let route = Arc::new(route);
        rt.spawn(async move {
            let http = scep_client::http::HttpClient::default();
            while let Ok((tcp, _)) = listener.accept().await {
                let (route, http) = (route.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = answer(tcp, &*route, &http).await;
                });
            }
        });
        Proxy { base, _rt: rt }
    }
}

/// One request, one answer, then the connection closes.
async fn answer(
    mut tcp: TcpStream,
    route: &(dyn Fn(&str) -> Route + Send + Sync),
    http: &scep_client::http::HttpClient,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut line = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (line.next().unwrap_or_default().to_owned(), line.next().unwrap_or("/").to_owned());
    let length: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.get(head_end..).unwrap_or_default().to_vec();
    let (status, content_type, body) = match route(&target) {
        Route::Answer(ct, body) => (200, Some(ct), body),
        Route::Forward(base) => {
            let url = format!("{base}{target}");
            let r = if method == "POST" {
                let ct = header(&head, "content-type").unwrap_or("application/octet-stream").to_owned();
                http.post(&url, &ct, body).await
            } else {
                http.get(&url, &[]).await
            };
            match r {
                Ok(r) => (r.status, r.content_type, r.body),
                Err(e) => (502, Some("text/plain".into()), e.to_string().into_bytes()),
            }
        }
    };
    let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if let Some(ct) = content_type {
        out.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend(body);
    tcp.write_all(&out).await?;
    tcp.shutdown().await
}
