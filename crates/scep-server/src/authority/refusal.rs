//! Why a PKIOperation is refused: one [`Refusal`] variant per row of the failure table
//! in docs/architecture.md (generated from this file, and checked by a test), and the
//! one mapping to the wire: failInfo and failInfoText. The texts a client sees are
//! fixed sentences chosen here, never library text; the log reason travels beside
//! them in [`Refused`].

use std::borrow::Cow;

use scep::attr::FailInfo;

/// The NDES event-log sentence for a bad or used challenge, which admins search for.
pub const BAD_CHALLENGE_TEXT: &str = "The password in the certificate request cannot be verified. It may have been used already. Obtain a new password to submit with this request.";

/// failInfoText of every failure before the content is authenticated, and of a
/// message unreadable past its transactionID: one sentence, so that none of them
/// tells a prober more than "no".
pub(crate) const UNREADABLE_TEXT: &str = "The message could not be verified or decrypted.";

/// Longest subject accepted, as RFC 4514 text (X.509's upper bounds make real ones
/// far shorter).
pub(crate) const MAX_SUBJECT: usize = 1024;
/// Most subject alternative names accepted in one request.
pub(crate) const MAX_SANS: usize = 100;
/// Longest transactionID accepted (clients send 32 to 64 hex or base64 characters).
pub(crate) const MAX_TRANSACTION_ID: usize = 256;

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The signature, a digest or the decryption failed, or anything else before the
    /// content is authenticated.
    Unverifiable,
    /// An algorithm the server does not implement.
    UnsupportedAlgorithm,
    /// The signer certificate has no RSA key: the reply could not be encrypted to it.
    SignerNotRsa,
    /// The authenticated content breaks a rule of the protocol (the reason is shown).
    Unacceptable(String),
    /// The authenticated content does not read as its message type says.
    Unreadable,
    /// A PKCSReq signed by a key other than its CSR's (RFC 8894 section 2.3).
    ForeignSigner,
    /// The challenge does not authorise the request.
    WrongChallenge,
    /// The verification webhook did not answer.
    VerifierUnavailable,
    /// The request breaks its challenge's binding (what the binding requires).
    BindingBroken(String),
    /// The address is past its limit of wrong challenges.
    Throttled,
    /// A template rule (the rule).
    TemplateRule(String),
    /// A RenewalReq not signed by a certificate of this CA.
    RenewalNotOurs,
    /// A renewal signed by a certificate of this CA that the store has no record of.
    RenewalSignerUnknown,
    /// A renewal signed by a revoked certificate.
    RenewalSignerRevoked,
    /// A renewal signed outside the certificate's validity and grace (in days).
    RenewalSignerNotValid(u64),
    /// A renewal that changes the subject or the SANs.
    RenewalChangesNames,
    /// A renewal sent to another template's endpoint (the renewed certificate's template).
    RenewalOtherTemplate(String),
    /// A renewal whose certificate's template is no longer configured.
    RenewalTemplateGone,
    /// A renewal signed by a certificate that was renewed already.
    RenewalRepeated,
    /// A subject over [`MAX_SUBJECT`] characters.
    SubjectTooLong,
    /// More than [`MAX_SANS`] SANs.
    TooManySans,
    /// A poll for a request an administrator rejected.
    RejectedByAdmin,
    /// A CertPoll, GetCert or GetCRL that matches nothing it may see.
    Unmatched,
    /// The server failed (database, signing, a stored value that does not read).
    Fault,
    /// An approved request was issued meanwhile by another instance: read it again.
    /// Handled where it arises; on the wire it would be a [`Refusal::Fault`].
    CompletedElsewhere,
}

impl Refusal {
    /// The failInfo on the wire.
    pub fn fail_info(&self) -> FailInfo {
        use Refusal::*;
        match self {
            Unverifiable | Unmatched => FailInfo::BadMessageCheck,
            UnsupportedAlgorithm | SignerNotRsa => FailInfo::BadAlg,
            RenewalSignerUnknown => FailInfo::BadCertId,
            Unacceptable(_)
            | Unreadable
            | ForeignSigner
            | WrongChallenge
            | VerifierUnavailable
            | BindingBroken(_)
            | Throttled
            | TemplateRule(_)
            | RenewalNotOurs
            | RenewalSignerRevoked
            | RenewalSignerNotValid(_)
            | RenewalChangesNames
            | RenewalOtherTemplate(_)
            | RenewalTemplateGone
            | RenewalRepeated
            | SubjectTooLong
            | TooManySans
            | RejectedByAdmin
            | Fault
            | CompletedElsewhere => FailInfo::BadRequest,
        }
    }

    /// The failInfoText on the wire.
    pub fn text(&self) -> Cow<'static, str> {
        use Refusal::*;
        match self {
            Unverifiable | Unmatched => UNREADABLE_TEXT.into(),
            UnsupportedAlgorithm => "An algorithm in the request is not supported.".into(),
            SignerNotRsa => {
                "The request must be signed with an RSA key: the reply is encrypted to the signer certificate.".into()
            }
            Unacceptable(why) => format!("The request is not acceptable: {why}.").into(),
            Unreadable => "The request could not be read.".into(),
            ForeignSigner => "The request must be signed with the key of its certificate request.".into(),
            WrongChallenge => BAD_CHALLENGE_TEXT.into(),
            VerifierUnavailable => "The request could not be verified now; try again later.".into(),
            BindingBroken(why) => format!("The request does not match its challenge: {why}.").into(),
            Throttled => "Too many failed attempts from this address; try again later.".into(),
            TemplateRule(rule) => format!("The request breaks a template rule: {rule}.").into(),
            RenewalNotOurs => "A RenewalReq must be signed by a certificate this CA issued.".into(),
            RenewalSignerUnknown => "The certificate signing the request is not known to this server.".into(),
            RenewalSignerRevoked => "The certificate signing the renewal is revoked.".into(),
            RenewalSignerNotValid(grace) => {
                format!("The certificate signing the renewal is not valid now (expired more than {grace} days ago?).")
                    .into()
            }
            RenewalChangesNames => {
                "A renewal must keep the subject and subject alternative names of the certificate that signs it.".into()
            }
            RenewalOtherTemplate(t) => {
                format!("A renewal keeps its template: send it to the endpoint of template {t}.").into()
            }
            RenewalTemplateGone => {
                "The template of the certificate being renewed no longer exists; enroll with a challenge.".into()
            }
            RenewalRepeated => {
                "The certificate signing the renewal was renewed already; renew with its successor or enroll again."
                    .into()
            }
            SubjectTooLong => format!("The subject is longer than {MAX_SUBJECT} characters.").into(),
            TooManySans => format!("The request has more than {MAX_SANS} subject alternative names.").into(),
            RejectedByAdmin => "The request was rejected by an administrator.".into(),
            Fault | CompletedElsewhere => "The server could not complete the request.".into(),
        }
    }

    /// Whether the refusal counts against the address's limit of wrong challenges.
    pub fn counts_as_wrong_challenge(&self) -> bool {
        matches!(self, Refusal::WrongChallenge)
    }

    /// The refusal for a protocol error of the request: fixed sentences by failInfo,
    /// the protocol crate's reason shown only for its `BadRequest` (which names a rule
    /// of the request, never a secret or library text).
    pub fn of_protocol(e: &scep::Error) -> Self {
        match (e.fail_info(), e) {
            (FailInfo::BadMessageCheck, _) => Refusal::Unverifiable,
            (FailInfo::BadAlg, _) => Refusal::UnsupportedAlgorithm,
            (_, scep::Error::BadRequest(why)) => Refusal::Unacceptable(why.clone()),
            _ => Refusal::Unreadable,
        }
    }

    /// With the reason the log and the audit trail give.
    pub(crate) fn because(self, reason: impl Into<String>) -> Refused {
        Refused { refusal: self, reason: reason.into() }
    }
}

/// A refusal with its reason for the log (never shown to the client).
#[derive(Debug)]
pub(crate) struct Refused {
    /// What the client is told.
    pub refusal: Refusal,
    /// What the log says.
    pub reason: String,
}

/// A server fault: the client is told only that the server failed.
pub(crate) fn internal(e: impl std::fmt::Display) -> Refused {
    Refusal::Fault.because(format!("internal error: {e}"))
}

/// The failure table of docs/architecture.md: each refusal, where it arises, and
/// what the client sees. Generated into the docs by `SCEPD_BLESS=1 cargo test -p
/// scep-server refusal_table`; the same test fails when the docs differ.
pub fn table() -> String {
    use Refusal::*;
    let rows: Vec<(&str, Refusal)> = vec![
        (
            "signature, digest or decryption failure; a CSR whose self-signature does not verify; an encrypted content key seen before with other content or another signer; an address past `throttle.max_failures` undecryptable messages (nothing before the content is authenticated answers differently)",
            Unverifiable,
        ),
        ("unsupported algorithm (MD5, single DES, an unknown key transport)", UnsupportedAlgorithm),
        ("signer certificate without an RSA key", SignerNotRsa),
        (
            "CSR whose challengePassword or extensionRequest is unreadable, or whose subjectAltName or keyUsage is not DER that re-encodes to the bytes sent; a transactionID over 256 characters (answered before decryption)",
            Unacceptable("(the reason)".into()),
        ),
        ("an authenticated content that does not read as its message type", Unreadable),
        (
            "a PKCSReq signed by a key other than its CSR's RSA key, not by a certificate of this CA, with `scep.allow_foreign_signers` off",
            ForeignSigner,
        ),
        (
            "missing, unknown, used, expired or revoked one-time challenge; a race for a challenge lost; a wrong or unset single password; a webhook refusal (NDES's own sentence)",
            WrongChallenge,
        ),
        ("the webhook did not answer, or answered an error", VerifierUnavailable),
        (
            "a request that breaks its challenge's binding",
            BindingBroken("the subject must be (subject) / the subject alternative names must be (list)".into()),
        ),
        ("an address past `throttle.max_failures` wrong challenges", Throttled),
        (
            "a template rule: key type, RSA size, no subject nor SAN, a required attribute, `subject_pattern`, `san_patterns`",
            TemplateRule("(the rule)".into()),
        ),
        ("a RenewalReq not signed by a certificate of this CA", RenewalNotOurs),
        ("a renewal signed by a certificate of this CA that scepd has no record of", RenewalSignerUnknown),
        ("a renewal signed by a revoked certificate", RenewalSignerRevoked),
        (
            "a renewal signed outside the certificate's validity and `renewal.grace_days` (30 here)",
            RenewalSignerNotValid(30),
        ),
        ("a renewal that changes subject or SANs", RenewalChangesNames),
        ("a renewal sent to another template's endpoint", RenewalOtherTemplate("(name)".into())),
        ("a renewal whose certificate's template is no longer configured", RenewalTemplateGone),
        ("a renewal signed by a certificate renewed already (`renewal.allow_repeated` off)", RenewalRepeated),
        ("a subject over 1,024 characters", SubjectTooLong),
        ("more than 100 SANs", TooManySans),
        ("a poll for a rejected request", RejectedByAdmin),
        (
            "CertPoll or GetCert for something unknown; a CertPoll signed by a key other than the request's; GetCert or GetCRL for another issuer",
            Unmatched,
        ),
        (
            "database or other internal error (a single password that no longer decrypts included); an approved request issued meanwhile by another instance, if reading it again fails",
            Fault,
        ),
    ];
    let mut out = String::from("| situation | failInfo | failInfoText |\n| --- | --- | --- |\n");
    for (situation, r) in rows {
        out.push_str(&format!("| {situation} | {} | {} |\n", r.fail_info().name(), r.text()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- refusals: generated from authority/refusal.rs -->\n";
    const END: &str = "<!-- /refusals -->";

    #[test]
    fn refusal_table_in_the_docs_is_the_enum() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/architecture.md");
        let docs = std::fs::read_to_string(path).expect("docs/architecture.md");
        let start = docs.find(BEGIN).expect("the refusals marker in docs/architecture.md") + BEGIN.len();
        let end = start + docs[start..].find(END).expect("the end marker");
        let want = table();
        if docs[start..end] != want {
            if std::env::var_os("SCEPD_BLESS").is_some() {
                std::fs::write(path, format!("{}{want}{}", &docs[..start], &docs[end..])).expect("write the docs");
            } else {
                panic!(
                    "docs/architecture.md's failure table differs from authority::refusal::table(); rerun with SCEPD_BLESS=1"
                );
            }
        }
    }

    #[test]
    fn before_authentication_every_refusal_reads_the_same() {
        let e = [scep::Error::Decrypt, scep::Error::BadMessageCheck("signature")];
        for e in e {
            let r = Refusal::of_protocol(&e);
            assert_eq!((r.fail_info(), r.text()), (FailInfo::BadMessageCheck, UNREADABLE_TEXT.into()));
        }
        assert_eq!(Refusal::Unmatched.text(), Refusal::Unverifiable.text());
        assert_eq!(Refusal::Unmatched.fail_info(), Refusal::Unverifiable.fail_info());
    }

    #[test]
    fn only_a_wrong_challenge_counts_against_the_address() {
        assert!(Refusal::WrongChallenge.counts_as_wrong_challenge());
        for r in [Refusal::Throttled, Refusal::BindingBroken("x".into()), Refusal::VerifierUnavailable, Refusal::Fault]
        {
            assert!(!r.counts_as_wrong_challenge(), "{r:?}");
        }
    }

    #[test]
    fn library_text_never_reaches_the_client() {
        let r = Refusal::of_protocol(&scep::Error::Malformed("der: unexpected tag at byte 17"));
        assert_eq!(r, Refusal::Unreadable);
        assert!(!r.text().contains("byte 17"));
    }
}
