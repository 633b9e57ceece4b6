//! GetCACaps keywords (RFC 8894 section 3.5.2).

use core::fmt;

/// A capability keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// AES content encryption.
    Aes,
    /// Triple DES content encryption.
    Des3,
    /// GetNextCACert (only while a next CA exists).
    GetNextCaCert,
    /// PKIOperation by POST.
    PostPkiOperation,
    /// RenewalReq.
    Renewal,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
    /// RFC 8894 conformance (implies AES, POSTPKIOperation, SHA-256).
    ScepStandard,
}

impl Capability {
    /// Every keyword, in the order servers usually list them.
    pub const ALL: [Capability; 9] = [
        Capability::Aes,
        Capability::Des3,
        Capability::GetNextCaCert,
        Capability::PostPkiOperation,
        Capability::Renewal,
        Capability::Sha1,
        Capability::Sha256,
        Capability::Sha512,
        Capability::ScepStandard,
    ];

    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Capability::Aes => "AES",
            Capability::Des3 => "DES3",
            Capability::GetNextCaCert => "GetNextCACert",
            Capability::PostPkiOperation => "POSTPKIOperation",
            Capability::Renewal => "Renewal",
            Capability::Sha1 => "SHA-1",
            Capability::Sha256 => "SHA-256",
            Capability::Sha512 => "SHA-512",
            Capability::ScepStandard => "SCEPStandard",
        }
    }
}

impl Capability {
    /// The capability a keyword names, case-insensitively.
    pub fn from_keyword(keyword: &str) -> Option<Capability> {
        Capability::ALL.iter().copied().find(|c| c.keyword().eq_ignore_ascii_case(keyword.trim()))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// A GetCACaps answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities(pub Vec<Capability>);

impl Capabilities {
    /// Parse a body: one keyword a line, case-insensitive; unknown keywords ignored.
    pub fn parse(body: &str) -> Self {
        let mut out = Vec::new();
        for line in body.lines() {
            let line = line.trim();
            if let Some(c) = Capability::from_keyword(line).filter(|c| !out.contains(c)) {
                out.push(c);
            }
        }
        Capabilities(out)
    }

    /// Whether `c` is offered (SCEPStandard implies AES, POSTPKIOperation and SHA-256).
    pub fn has(&self, c: Capability) -> bool {
        self.0.contains(&c)
            || (self.0.contains(&Capability::ScepStandard)
                && matches!(c, Capability::Aes | Capability::PostPkiOperation | Capability::Sha256))
    }

    /// The body: one keyword per line.
    pub fn to_body(&self) -> String {
        self.0.iter().map(|c| format!("{c}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_and_implies_from_scep_standard() {
        let c = Capabilities::parse("aes\r\nSCEPStandard\nfoo\n");
        assert!(c.has(Capability::Aes));
        assert!(c.has(Capability::PostPkiOperation));
        assert!(!c.has(Capability::Des3));
        assert_eq!(Capabilities(vec![Capability::Aes, Capability::Renewal]).to_body(), "AES\nRenewal\n");
    }
}
