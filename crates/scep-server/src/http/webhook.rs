//! The webhook client: JSON over HTTP POST (`https://`, or `http://` where the
//! configuration allows it) with a time-out. With `SCEPD_WEBHOOK_SECRET`, every call
//! is signed (`X-Scepd-Signature: sha256=HEX(HMAC-SHA256(secret, body))`) and the
//! verifier's answer must be signed over the call's fresh nonce and the answer's body
//! (`X-Scepd-Signature: sha256=HEX(HMAC-SHA256(secret, nonce || body))`), so that
//! nobody else on the path can allow an enrollment, nor replay an earlier answer.
//! Notifications go through a bounded queue drained by one task.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::authority::webhook::{Decision, Event, VerifyRequest, Webhook};
use crate::config::{WebhookConfig, WebhookSecret};

/// Notifications waiting to be sent; past this, new ones are dropped.
pub const QUEUE: usize = 1000;
/// The header that carries a call's nonce (also in the verify body as `nonce`).
pub const NONCE_HEADER: &str = "X-Scepd-Nonce";
/// The header of the signatures, both ways.
pub const SIGNATURE_HEADER: &str = "X-Scepd-Signature";
/// Largest answer read from a webhook.
const MAX_ANSWER: usize = 64 * 1024;
/// Where distributions keep the system's CA bundle, tried in order.
const SYSTEM_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem"];

/// A webhook client for the configured URLs.
pub struct HttpWebhook {
    poster: Arc<Poster>,
    verify_url: Option<String>,
    queue: Option<mpsc::Sender<Event>>,
    dropped: AtomicU64,
}

impl HttpWebhook {
    /// A client for `config` (validated: its URLs are allowed), trusting `ca_file` or
    /// the system bundle for `https://` URLs. With a `notify_url`, starts the task that
    /// drains the notification queue, so it must be called within the tokio runtime.
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let https = config
            .verify_url
            .iter()
            .chain(config.notify_url.iter())
            .any(|u| u.parse::<hyper::Uri>().is_ok_and(|u| u.scheme_str() == Some("https")));
        // Without an https:// URL no certificate is ever checked: no bundle is needed.
        let roots = if https { roots(config.ca_file.as_deref())? } else { rustls::RootCertStore::empty() };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(timeout));
        conn.set_nodelay(true);
        // https URLs go through it too: the TLS layer wraps the TCP stream.
        conn.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(conn);
        let poster = Arc::new(Poster {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            secret: config.secret.clone(),
        });
        let queue = config.notify_url.clone().map(|url| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(drain(poster.clone(), url, rx));
            tx
        });
        Ok(HttpWebhook { poster, verify_url: config.verify_url.clone(), queue, dropped: AtomicU64::new(0) })
    }

    /// Notifications dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Webhook for HttpWebhook {
    async fn verify(&self, request: &VerifyRequest) -> Decision {
        let Some(url) = &self.verify_url else {
            return Decision::Unavailable("no verify_url configured".into());
        };
        let nonce = match scep::crypto::random_bytes(32) {
            Ok(b) => hex::encode(b),
            Err(e) => return Decision::Unavailable(format!("no nonce: {e}")),
        };
        let body = Verify { request, nonce: &nonce };
        match self.poster.post(url, &body, Some(&nonce)).await {
            Ok(answer) if answer.status == 200 => {
                if let Some(secret) = &self.poster.secret
                    && !answer_signed(secret, &nonce, &answer.body, answer.signature.as_deref())
                {
                    return Decision::Unavailable(format!(
                        "the verifier's answer has no valid {SIGNATURE_HEADER} over the nonce and body"
                    ));
                }
                let allow = serde_json::from_slice::<serde_json::Value>(&answer.body)
                    .ok()
                    .and_then(|v| v.get("allow").and_then(serde_json::Value::as_bool));
                if allow == Some(true) {
                    Decision::Allow
                } else {
                    Decision::Deny("the verifier did not answer {\"allow\": true}".into())
                }
            }
            Ok(answer) => Decision::Unavailable(format!("the verifier answered HTTP {}", answer.status)),
            Err(e) => Decision::Unavailable(format!("the verifier failed: {e}")),
        }
    }

    fn enqueue(&self, event: Event) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Once, then every thousandth: a notifier that is down must not flood the log.
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(dropped_total = n, "webhook notification dropped: {QUEUE} are waiting to be sent");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!("webhook notification dropped: the sending task has stopped");
            }
        }
    }
}

/// The verify body: the request and the nonce the answer must be signed over.
#[derive(Serialize)]
struct Verify<'a> {
    #[serde(flatten)]
    request: &'a VerifyRequest,
    nonce: &'a str,
}

/// What came back from a call.
struct Answer {
    status: u16,
    signature: Option<String>,
    body: Bytes,
}

/// The HTTP side, shared by `verify` and the notification task.
struct Poster {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    secret: Option<WebhookSecret>,
}

impl Poster {
    async fn post<T: Serialize>(&self, url: &str, body: &T, nonce: Option<&str>) -> Result<Answer, String> {
        let json = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let mut req = hyper::Request::post(url).header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let sig = hex::encode(scep::crypto::hmac_sha256(secret.expose(), &json));
            req = req.header(SIGNATURE_HEADER, format!("sha256={sig}"));
        }
        if let Some(nonce) = nonce {
            req = req.header(NONCE_HEADER, nonce);
        }
        let req = req.body(Full::new(Bytes::from(json))).map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| error_chain(&e))?;
            let status = resp.status().as_u16();
            let signature = resp.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body =
                Limited::new(resp.into_body(), MAX_ANSWER).collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(Answer { status, signature, body })
        };
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}

/// Send queued notifications one after the other until every sender is gone.
async fn drain(poster: Arc<Poster>, url: String, mut rx: mpsc::Receiver<Event>) {
    while let Some(event) = rx.recv().await {
        match poster.post(&url, &event, None).await {
            Ok(a) if (200..300).contains(&a.status) => {}
            Ok(a) => tracing::warn!(status = a.status, "webhook notification refused"),
            Err(e) => tracing::warn!(error = e, "webhook notification failed"),
        }
    }
}

/// Whether `header` is `sha256=` and the hex of HMAC-SHA256 under `secret` of the
/// nonce's ASCII hex followed by the answer's body bytes. Hex of either case.
fn answer_signed(secret: &WebhookSecret, nonce: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")).and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    let mut signed = Vec::with_capacity(nonce.len() + body.len());
    signed.extend_from_slice(nonce.as_bytes());
    signed.extend_from_slice(body);
    scep::crypto::constant_time_eq(&scep::crypto::hmac_sha256(secret.expose(), &signed), &sig)
}

/// The certificates trusted for https:// webhooks: `ca_file`, or the system bundle.
fn roots(ca_file: Option<&Path>) -> anyhow::Result<rustls::RootCertStore> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let file =
        match ca_file {
            Some(f) => f.to_path_buf(),
            None => SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists()).map(Path::to_path_buf).context(
                "no system CA bundle found for the https:// webhook URLs: set webhook.ca_file to a PEM file",
            )?,
        };
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&file)
        .with_context(|| format!("cannot read the webhook's trusted certificates from {}", file.display()))?
    {
        let c = c.with_context(|| format!("{} is not a PEM certificate file", file.display()))?;
        // A system bundle may hold certificates rustls cannot use; the others suffice.
        let added = roots.add(c);
        if ca_file.is_some() {
            added.with_context(|| format!("{} holds a certificate that cannot be a trust anchor", file.display()))?;
        }
    }
    if roots.is_empty() {
        anyhow::bail!("no CA certificates in {} for the https:// webhook URLs", file.display());
    }
    Ok(roots)
}

/// An error with its sources: hyper's own text ("client error (Connect)") hides why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_signed_over_the_nonce_then_the_body() {
        let k = WebhookSecret::new(b"key".to_vec());
        let nonce = "00ff";
        let body = br#"{"allow": true}"#;
        let mut m = nonce.as_bytes().to_vec();
        m.extend_from_slice(body);
        let good = format!("sha256={}", hex::encode(scep::crypto::hmac_sha256(b"key", &m)));
        assert!(answer_signed(&k, nonce, body, Some(&good)));
        assert!(answer_signed(&k, nonce, body, Some(&good.to_uppercase().replace("SHA256=", "sha256="))));
        // Another nonce (a replayed answer), another body, no header, the body alone.
        assert!(!answer_signed(&k, "00fe", body, Some(&good)));
        assert!(!answer_signed(&k, nonce, br#"{"allow":true}"#, Some(&good)));
        assert!(!answer_signed(&k, nonce, body, None));
        let body_only = format!("sha256={}", hex::encode(scep::crypto::hmac_sha256(b"key", body)));
        assert!(!answer_signed(&k, nonce, body, Some(&body_only)));
        assert!(!answer_signed(&k, nonce, body, Some("sha256=zz")));
    }

    #[tokio::test]
    async fn a_notifier_that_never_answers_fills_the_queue_and_then_events_are_dropped() {
        // Accepts connections and never answers: the task sits on its first event.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let config = WebhookConfig {
            notify_url: Some(format!("http://{addr}/notify")),
            timeout_ms: 60_000,
            ..WebhookConfig::default()
        };
        let hook = HttpWebhook::new(&config).unwrap_or_else(|e| panic!("{e}"));
        let event = Event::Failed {
            transaction_id: "T".into(),
            fail_info: "badRequest".into(),
            reason: "test".into(),
            message_type: "PKCSReq".into(),
            csr: None,
        };
        let start = std::time::Instant::now();
        for _ in 0..QUEUE + 10 {
            hook.enqueue(event.clone());
        }
        assert!(start.elapsed() < Duration::from_secs(1), "enqueue waited: {:?}", start.elapsed());
        // The task may already hold the first event, leaving one more place.
        assert!((9..=10).contains(&hook.dropped()), "{}", hook.dropped());
    }
}
