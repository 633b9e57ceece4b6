//! The accept loop of both listeners: a connection limit per listener and per client
//! address, a short wait for a free slot, time limits on the TLS handshake, on reading
//! request headers and on reading the body (slow clients cannot hold the server), and
//! the peer address and transport handed to the handlers.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::auth::Transport;
use super::ntlm::Sessions;
use crate::config::LimitsConfig;

/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept connections until `shutdown` resolves; with `tls`, over TLS.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    sessions: Arc<Sessions>,
    limits: &LimitsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Connections waiting for a slot hold a socket each: a quarter of the slots may wait.
    let waiting = Arc::new(Semaphore::new((limits.max_connections / 4).max(1)));
    let per_address = Arc::new(PerAddress::new(limits.max_connections_per_address));
    let wait = Duration::from_millis(limits.connection_wait_ms);
    let conn = ConnLimits {
        header_timeout: Duration::from_secs(limits.header_timeout_secs),
        body_timeout: Duration::from_secs(limits.body_timeout_secs),
        max_body_bytes: limits.max_body_bytes,
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        // The address first: one client that fills its share must not also queue for,
        // and so delay, everybody else's slots.
        let Some(address) = per_address.admit(peer.ip()) else {
            tracing::warn!(%peer, "connection refused: limits.max_connections_per_address connections are open from this address");
            continue;
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(p) => Slot::Now(p),
            Err(_) if wait.is_zero() => {
                tracing::warn!(%peer, "connection refused: limits.max_connections connections are open");
                continue;
            }
            Err(_) => match waiting.clone().try_acquire_owned() {
                Ok(w) => Slot::Wait(w),
                Err(_) => {
                    tracing::warn!(%peer, "connection refused: limits.max_connections connections are open and as many as may wait are waiting");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let sessions = sessions.clone();
        let slots = slots.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            let _address = address;
            let _permit = match slot {
                Slot::Now(p) => p,
                Slot::Wait(w) => match tokio::time::timeout(wait, slots.acquire_owned()).await {
                    Ok(Ok(p)) => {
                        drop(w);
                        p
                    }
                    _ => {
                        tracing::warn!(%peer, "connection closed: no free slot within limits.connection_wait_ms (limits.max_connections connections are open)");
                        return;
                    }
                },
            };
            let id = sessions.connection();
            match tls {
                None => connection(stream, peer, Transport { tls: false, connection: id }, router, conn).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => connection(s, peer, Transport { tls: true, connection: id }, router, conn).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
            // NTLM authenticates a connection: its state ends with it.
            sessions.forget(id);
        });
    }
}

/// A slot of `max_connections`, or the right to wait for one.
enum Slot {
    Now(OwnedSemaphorePermit),
    Wait(OwnedSemaphorePermit),
}

/// What each connection enforces on its requests.
#[derive(Clone)]
struct ConnLimits {
    header_timeout: Duration,
    body_timeout: Duration,
    max_body_bytes: usize,
}

async fn connection<S>(stream: S, peer: SocketAddr, transport: Transport, router: Router, limits: ConnLimits)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = limits.header_timeout;
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let router = router.clone();
        let limits = limits.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            // The body is read here, under its own time-out, before the router's layers:
            // a client that trickles it holds neither a request slot nor the handling
            // time-out, and handling starts with the whole body.
            let body = match read_body(&parts.headers, body, &limits).await {
                Ok(b) => b,
                Err(refusal) => {
                    tracing::debug!(%peer, status = %refusal.status(), "request body refused");
                    return Ok::<_, std::convert::Infallible>(refusal);
                }
            };
            parts.extensions.insert(ConnectInfo(peer));
            parts.extensions.insert(transport);
            router.oneshot(hyper::Request::from_parts(parts, Body::from(body))).await
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(128 * 1024);
    if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// The whole body within `body_timeout` and `max_body_bytes`, or the answer that ends
/// the connection: 408 for a body too slow, 413 for one too large, 400 for one broken.
async fn read_body(headers: &HeaderMap, body: hyper::body::Incoming, limits: &ConnLimits) -> Result<Bytes, Response> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(closing(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.\n"));
    }
    match tokio::time::timeout(limits.body_timeout, Limited::new(body, limits.max_body_bytes).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(closing(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.\n"))
        }
        Ok(Err(_)) => Err(closing(StatusCode::BAD_REQUEST, "The request body could not be read.\n")),
        Err(_) => Err(closing(StatusCode::REQUEST_TIMEOUT, "The request body did not arrive in time.\n")),
    }
}

/// An answer after which hyper closes the connection: the rest of the body is unread.
fn closing(status: StatusCode, text: &'static str) -> Response {
    let mut r = super::plain(status, text);
    r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    r
}

/// Where connections are counted: an IPv4 address (IPv4-mapped IPv6 included), or the
/// /64 prefix of an IPv6 address, since one host is usually given a whole /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Bucket {
    V4(Ipv4Addr),
    V6(u64),
}

impl From<IpAddr> for Bucket {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Bucket::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Bucket::V4(v4),
                // The upper 64 bits: the shift leaves nothing for the cast to cut.
                None => Bucket::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Connections open per [`Bucket`], each at most `cap`.
struct PerAddress {
    cap: usize,
    open: Mutex<HashMap<Bucket, usize>>,
}

impl PerAddress {
    fn new(cap: usize) -> Self {
        PerAddress { cap, open: Mutex::new(HashMap::new()) }
    }

    /// Count a connection from `ip`, or `None` when its bucket is full.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let bucket = Bucket::from(ip);
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(bucket).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot { table: self.clone(), bucket })
    }
}

/// One counted connection; dropping it uncounts it. The table holds only buckets
/// with open connections, so it is bounded by the connections.
struct AddressSlot {
    table: Arc<PerAddress>,
    bucket: Bucket,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Entry::Occupied(mut e) = open.entry(self.bucket) {
            *e.get_mut() = e.get().saturating_sub(1);
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(Bucket::from(ip("2001:db8:1:2::1")), Bucket::from(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(Bucket::from(ip("2001:db8:1:2::1")), Bucket::from(ip("2001:db8:1:3::1")));
        assert_eq!(Bucket::from(ip("::ffff:192.0.2.7")), Bucket::from(ip("192.0.2.7")));
        assert_ne!(Bucket::from(ip("192.0.2.7")), Bucket::from(ip("192.0.2.8")));
    }

    #[test]
    fn an_address_gets_its_cap_and_a_closed_connection_frees_its_place() {
        let t = Arc::new(PerAddress::new(2));
        let a = t.admit(ip("127.0.0.2"));
        let b = t.admit(ip("::ffff:127.0.0.2"));
        assert!(a.is_some() && b.is_some());
        assert!(t.admit(ip("127.0.0.2")).is_none(), "loopback is not exempt");
        assert!(t.admit(ip("127.0.0.1")).is_some(), "another address has its own count");
        drop(a);
        let c = t.admit(ip("127.0.0.2"));
        assert!(c.is_some());
        drop((b, c));
        assert!(t.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty());
    }
}
