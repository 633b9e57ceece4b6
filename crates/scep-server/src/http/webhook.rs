//! The webhook client: JSON over HTTP POST with a time-out, optionally signed with
//! HMAC-SHA256 (`X-Scepd-Signature: sha256=HEX`) under `SCEPD_WEBHOOK_SECRET`.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Serialize;

use crate::authority::webhook::{Decision, Event, VerifyRequest, Webhook};

/// A webhook client for the configured URLs.
pub struct HttpWebhook {
    client: Client<HttpConnector, Full<Bytes>>,
    verify_url: Option<String>,
    notify_url: Option<String>,
    timeout: Duration,
    secret: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl HttpWebhook {
    /// A client; the secret comes from `SCEPD_WEBHOOK_SECRET` when set.
    pub fn new(verify_url: Option<String>, notify_url: Option<String>, timeout: Duration) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(timeout));
        let secret = std::env::var("SCEPD_WEBHOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| zeroize::Zeroizing::new(s.into_bytes()));
        HttpWebhook {
            client: Client::builder(TokioExecutor::new()).build(conn),
            verify_url,
            notify_url,
            timeout,
            secret,
        }
    }

    async fn post<T: Serialize>(&self, url: &str, body: &T) -> Result<(u16, Vec<u8>), String> {
        let json = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let mut req = hyper::Request::post(url).header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let sig = hex::encode(scep::crypto::hmac_sha256(secret, &json));
            req = req.header("X-Scepd-Signature", format!("sha256={sig}"));
        }
        let req = req.body(Full::new(Bytes::from(json))).map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), 64 * 1024)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes()
                .to_vec();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}

#[async_trait]
impl Webhook for HttpWebhook {
    async fn verify(&self, request: &VerifyRequest) -> Decision {
        let Some(url) = &self.verify_url else {
            return Decision::Unavailable("no verify_url configured".into());
        };
        match self.post(url, request).await {
            Ok((200, body)) => {
                let allow = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("allow").and_then(serde_json::Value::as_bool));
                if allow == Some(true) {
                    Decision::Allow
                } else {
                    Decision::Deny("the verifier did not answer {\"allow\": true}".into())
                }
            }
            Ok((status, _)) => Decision::Unavailable(format!("the verifier answered HTTP {status}")),
            Err(e) => Decision::Unavailable(format!("the verifier failed: {e}")),
        }
    }

    async fn notify(&self, event: &Event) {
        let Some(url) = &self.notify_url else { return };
        match self.post(url, event).await {
            Ok((s, _)) if (200..300).contains(&s) => {}
            Ok((s, _)) => tracing::warn!(status = s, "webhook notification refused"),
            Err(e) => tracing::warn!(error = e, "webhook notification failed"),
        }
    }
}
