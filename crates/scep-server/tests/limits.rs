//! Connection exhaustion and slow bodies, end to end against the real server: one
//! address cannot take every connection, a body that trickles in is cut off by its own
//! time-out, and a connection over the limit waits briefly for a slot.
//! Loopback addresses are counted like any other: the tests connect from 127.0.0.2
//! (Linux routes all of 127.0.0.0/8 to the loopback interface).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `server` from the source address `from`.
async fn connect_from(from: &str, server: &Server) -> TcpStream {
    let to: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// How a slow client's connection ended.
#[derive(Debug)]
enum End {
    /// The server answered (first line of the answer), then closed, after this long.
    Answered(String, Duration),
    /// The server closed without a word.
    Closed,
}

/// Send a PKIOperation's headers, then the body a byte every half second, until the
/// server answers or closes; the answer must be followed by the close.
async fn trickle(stream: TcpStream) -> End {
    let (mut r, mut w) = stream.into_split();
    let start = Instant::now();
    let head = "POST /certsrv/mscep/mscep.dll?operation=PKIOperation HTTP/1.1\r\nHost: x\r\n\
                Content-Type: application/x-pki-message\r\nContent-Length: 4096\r\n\r\n";
    let writer = tokio::spawn(async move {
        if w.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if w.write_all(b"0").await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    // read_to_end returns at the close; a reset after an answer still leaves the answer.
    let _ = tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut got)).await.expect("never closed");
    let elapsed = start.elapsed();
    writer.abort();
    let text = String::from_utf8_lossy(&got);
    match text.lines().next() {
        Some(line) if !line.is_empty() => End::Answered(line.to_owned(), elapsed),
        _ => End::Closed,
    }
}

/// Issue 6 of the security review: 150 connections from one address that send their
/// headers and then trickle a body held every slot, and each was kept for the whole
/// request time-out (30 s), so nobody else could enroll. Now the address gets
/// `max_connections_per_address` (64) of the 100 slots, the others are closed at once,
/// and the 64 are answered 408 and closed when `body_timeout_secs` (10) ends, while
/// another address enrolls meanwhile.
#[tokio::test]
async fn one_address_trickling_bodies_cannot_keep_others_from_enrolling() {
    // Only settings that existed before the fix are set, so the test runs on the old
    // code too (and fails there); the new ones keep their defaults.
    let server = Server::start(|cfg| *cfg = cfg.replace("max_connections = 1024", "max_connections = 100"));
    let mut slow = Vec::new();
    for _ in 0..150 {
        let s = connect_from("127.0.0.2", &server).await;
        slow.push(tokio::spawn(trickle(s)));
    }
    // Every slow client has connected and sent its headers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let challenge = server.challenge();
    let enrolled = common::enroll(&server, "meanwhile", &challenge).await;
    assert!(enrolled.is_ok(), "127.0.0.1 could not enroll while 127.0.0.2 trickled bodies: {enrolled:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "enrolling took {:?}", started.elapsed());
    let mut answered = Vec::new();
    let mut closed = 0;
    for t in slow {
        match t.await.unwrap() {
            End::Answered(line, after) => answered.push((line, after)),
            End::Closed => closed += 1,
        }
    }
    assert_eq!(answered.len(), 64, "the address's connections that were served: {answered:?}");
    assert_eq!(closed, 150 - 64);
    for (line, after) in &answered {
        assert!(line.starts_with("HTTP/1.1 408"), "{line}");
        // body_timeout_secs (10 s) from the headers, not request_timeout_secs (30 s).
        assert!(*after >= Duration::from_secs(9) && *after < Duration::from_secs(15), "408 after {after:?}");
    }
    assert!(server.logged(|l| l.contains("limits.max_connections_per_address")));
    // The address's connections are closed and counted no more: it may connect again.
    let mut again = connect_from("127.0.0.2", &server).await;
    again.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), again.read_to_end(&mut buf)).await.unwrap().unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf));
}

/// A body that is slow but arrives within `body_timeout_secs` is served.
#[tokio::test]
async fn a_slow_body_that_arrives_in_time_is_served() {
    let server = Server::start(|cfg| *cfg = cfg.replace("body_timeout_secs = 10", "body_timeout_secs = 3"));
    let mut s = connect_from("127.0.0.2", &server).await;
    let body = b"not a SCEP message";
    let head = format!(
        "POST /certsrv/mscep/mscep.dll?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(6) {
        tokio::time::sleep(Duration::from_millis(600)).await;
        s.write_all(chunk).await.unwrap();
    }
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.unwrap().unwrap();
    // Answered by the SCEP handler (an unreadable message), not by a time-out.
    assert!(buf.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&buf));
}

/// Handling time is not body time: an enrollment whose verifier takes longer than
/// `body_timeout_secs` to answer still succeeds.
#[tokio::test]
async fn handling_longer_than_the_body_time_out_is_not_cut_off() {
    use axum::{Router, routing::post};
    async fn slow_allow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(3)).await;
        r#"{"allow": true}"#
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/verify", post(slow_allow))).await.unwrap() });
    let server = Server::start(|cfg| {
        *cfg = cfg
            .replace("mode = \"one-time\"", "mode = \"webhook\"")
            .replace("body_timeout_secs = 10", "body_timeout_secs = 1");
        cfg.push_str(&format!("\n[webhook]\nverify_url = \"http://{addr}/verify\"\ntimeout_ms = 5000\n"));
    });
    let start = Instant::now();
    common::enroll(&server, "slow-verifier", "anything").await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(3));
}

/// When every slot is taken, a new connection waits up to `connection_wait_ms` for
/// one instead of being closed at once.
#[tokio::test]
async fn a_connection_over_the_limit_waits_briefly_for_a_slot() {
    let server = Server::start(|cfg| {
        *cfg = cfg
            .replace("max_connections = 1024", "max_connections = 2")
            .replace("connection_wait_ms = 1000", "connection_wait_ms = 3000")
    });
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from("127.0.0.2", &server).await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        holders.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = connect_from("127.0.0.3", &server).await;
    waiting.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A slot frees up: the waiting connection is served.
    drop(holders.pop());
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), waiting.read_to_end(&mut buf)).await.unwrap().unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf));
    // With no slot freed in time, the connection is closed without an answer.
    let mut third = connect_from("127.0.0.3", &server).await;
    let start = Instant::now();
    let _ = third.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // The remaining holder and this connection take both slots; one more must wait.
    let mut fourth = connect_from("127.0.0.4", &server).await;
    let _ = fourth.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), fourth.read_to_end(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf));
    assert!(start.elapsed() >= Duration::from_millis(2500), "closed after {:?}", start.elapsed());
    assert!(server.logged(|l| l.contains("no free slot within limits.connection_wait_ms")));
    drop(third);
}
