//! Content keys seen, so that a captured one cannot be replayed with other content.
//!
//! A padding oracle on a victim's request needs the victim's encrypted content key,
//! lifted from a captured PKCSReq, sent again and again with changed IVs and
//! ciphertexts (under the attacker's own signature and any message type). Every encrypted
//! key an envelope carries is remembered with what it protected (cipher and IV,
//! ciphertext, signer certificate); the same key with anything else is refused before
//! decryption, so such a probe gets one answer, not thousands. A legitimate resend is
//! byte-identical and passes.
//!
//! The memory is per process and bounded: with several instances an attacker gets one
//! answer per instance, and flooding the table to push a key out takes
//! [`MAX_KEYS`] envelopes, whose decryption failures the per-address throttle stops long
//! before.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scep::cms::EnvelopeId;

/// Encrypted keys remembered.
pub const MAX_KEYS: usize = 200_000;

/// How long a key is remembered (a pending request is polled for days at most).
pub const REMEMBER: Duration = Duration::from_secs(14 * 86_400);

/// The keys seen, oldest first for eviction.
#[derive(Default)]
pub struct SeenKeys {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    content: HashMap<[u8; 32], ([u8; 32], Instant)>,
    order: VecDeque<[u8; 32]>,
}

impl SeenKeys {
    /// Whether `id` may be decrypted: none of its keys was seen with other content.
    /// Admitted keys are remembered.
    pub fn admit(&self, id: &EnvelopeId) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let clash = id.keys.iter().any(|k| {
            g.content.get(k).is_some_and(|(content, at)| *content != id.content && now.duration_since(*at) < REMEMBER)
        });
        if clash {
            return false;
        }
        for k in &id.keys {
            if g.content.insert(*k, (id.content, now)).is_none() {
                g.order.push_back(*k);
            }
        }
        while g.order.len() > MAX_KEYS {
            if let Some(old) = g.order.pop_front() {
                g.content.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(keys: &[u8], content: u8) -> EnvelopeId {
        EnvelopeId { keys: keys.iter().map(|k| [*k; 32]).collect(), content: [content; 32] }
    }

    #[test]
    fn a_key_comes_back_only_with_its_own_content() {
        let seen = SeenKeys::default();
        assert!(seen.admit(&id(&[1, 2], 9)));
        assert!(seen.admit(&id(&[1, 2], 9)), "a resend passes");
        assert!(!seen.admit(&id(&[1], 8)), "the same key with other content is refused");
        assert!(!seen.admit(&id(&[3, 2], 8)), "one known key among others is enough");
        assert!(seen.admit(&id(&[4], 8)));
    }
}
