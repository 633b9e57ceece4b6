//! The words scepd stores and shows, as types: a certificate's status, a pending
//! request's status, the outcome an audit row records, the way a request came in, a
//! serial number. Each has one spelling, written and read here only; a stored value
//! that is none of them is a corrupt row, not a silent default.

use std::fmt;
use std::str::FromStr;

/// A value that is not one of a vocabulary's words; the text lists the ones allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not one of: {allowed}")]
pub struct UnknownWord {
    /// What was given.
    pub value: String,
    /// The words allowed, comma-separated.
    pub allowed: &'static str,
}

/// An enum whose variants are words with one spelling each.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// Every word, in order.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The word as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(UnknownWord { value: s.to_owned(), allowed: concat!($($s, " "),+) }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

words! {
    /// Whether a certificate is revoked.
    CertStatus {
        /// Not revoked (it may have expired).
        Valid = "valid",
        /// Revoked.
        Revoked = "revoked",
    }
}

words! {
    /// Where a request that waits for approval is.
    PendingStatus {
        /// Waiting for an administrator.
        Pending = "pending",
        /// Approved: issued at the client's next poll.
        Approved = "approved",
        /// Rejected: the next poll gets FAILURE.
        Rejected = "rejected",
        /// Issued.
        Issued = "issued",
    }
}

words! {
    /// What an audit row records.
    AuditOutcome {
        /// A certificate was issued.
        Issued = "issued",
        /// GetCert, GetCRL, a resent request or a poll answered with what exists.
        Success = "success",
        /// The request waits for approval.
        Pending = "pending",
        /// Refused with a CertRep FAILURE.
        Failure = "failure",
        /// Not a readable pkiMessage.
        Unreadable = "unreadable",
        /// Failure rows over the per-address budget, summarised.
        Suppressed = "suppressed",
        /// An administrator approved a pending request.
        Approved = "approved",
        /// An administrator rejected a pending request.
        Rejected = "rejected",
    }
}

words! {
    /// How a request or decision reached scepd.
    Via {
        /// SCEP over HTTP GET.
        Get = "GET",
        /// SCEP over HTTP POST.
        Post = "POST",
        /// The JSON API.
        Api = "api",
        /// The web console.
        Console = "console",
        /// A `scepd` command.
        Cli = "cli",
        /// Not one request (a summary row).
        None = "-",
    }
}

impl AuditOutcome {
    /// Whether the row records a failure (rate-limited per address) rather than an
    /// outcome that must be kept.
    pub fn is_failure(self) -> bool {
        matches!(self, AuditOutcome::Failure | AuditOutcome::Unreadable)
    }
}

/// A certificate serial number: uppercase hex of its DER integer's content bytes, as
/// the store, the API, CRL listings and `scepd cert` show it. Read from people
/// case-insensitively, with or without colons or spaces between bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(String);

impl Serial {
    /// The serial of `cert`.
    pub fn of(cert: &x509_cert::Certificate) -> Self {
        Serial::from_bytes(cert.tbs_certificate().serial_number().as_bytes())
    }

    /// From the integer's content bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Serial(hex::encode_upper(bytes))
    }

    /// As stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Serial {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hexits: String = s.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        if hexits.is_empty() || !hexits.len().is_multiple_of(2) || !hexits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{s:?} is not a serial number in hex (like 5A3F09...)"));
        }
        Ok(Serial(hexits.to_ascii_uppercase()))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Serial {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_itself() {
        for w in CertStatus::ALL {
            assert_eq!(w.as_str().parse::<CertStatus>(), Ok(*w));
        }
        for w in PendingStatus::ALL {
            assert_eq!(w.as_str().parse::<PendingStatus>(), Ok(*w));
        }
        for w in AuditOutcome::ALL {
            assert_eq!(w.as_str().parse::<AuditOutcome>(), Ok(*w));
        }
        for w in Via::ALL {
            assert_eq!(w.as_str().parse::<Via>(), Ok(*w));
        }
    }

    #[test]
    fn an_unknown_word_names_the_allowed_ones() {
        let e = "Revoked".parse::<CertStatus>().unwrap_err();
        assert_eq!(e.to_string(), "\"Revoked\" is not one of: valid revoked ");
    }

    #[test]
    fn serials_have_one_spelling() {
        let a: Serial = "5a:3f:09".parse().unwrap();
        let b: Serial = "5A3F09".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "5A3F09");
        assert_eq!(Serial::from_bytes(&[0x5a, 0x3f, 0x09]), a);
        assert!("5A3".parse::<Serial>().is_err());
        assert!("xyz1".parse::<Serial>().is_err());
        assert!("".parse::<Serial>().is_err());
    }
}
