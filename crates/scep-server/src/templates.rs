//! Certificate templates: what an issued certificate gets and which requests qualify,
//! and NDES's choice of template by the request's key usage.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use const_oid::ObjectIdentifier;
use flagset::FlagSet;
use regex::Regex;
use scep::csr::Csr;
use serde::Deserialize;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

/// Issue without an administrator, or wait for one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Issue at once.
    #[default]
    Auto,
    /// Answer PENDING until `scepd request approve`.
    Manual,
}

/// `[templates.NAME]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateConfig {
    /// Validity of issued certificates, days.
    pub validity_days: u64,
    /// Longest validity a Windows client may ask for with ValidityPeriod/ValidityPeriodUnits,
    /// days; 0 ignores such requests.
    pub max_validity_days: u64,
    /// Key usage names (digitalSignature, keyEncipherment, ...); empty: what the request
    /// asks for within what suits its key type.
    pub key_usage: Vec<String>,
    /// Extended key usages: clientAuth, serverAuth, codeSigning, emailProtection,
    /// ipsecIKE, or dotted OIDs.
    pub extended_key_usage: Vec<String>,
    /// Smallest RSA key accepted.
    pub min_rsa_bits: usize,
    /// Key types accepted: rsa, ec.
    pub key_types: Vec<String>,
    /// Regular expression the whole subject (RFC 4514, as `scepd cert list` shows it) must match.
    pub subject_pattern: Option<String>,
    /// Attributes the subject must have (CN, O, OU, C, ...).
    pub required_subject: Vec<String>,
    /// Regular expressions of which every requested SAN (`DNS:name`, `IP:addr`,
    /// `email:addr`, `URI:uri`, `UPN:name`) must match one; empty allows any.
    pub san_patterns: Vec<String>,
    /// Put the CA certificate after the issued one in replies.
    pub include_ca_cert: bool,
    /// auto or manual.
    pub approval: Approval,
    /// GetCACaps keywords for this template's endpoint (`/scep/NAME/`); unset: `[scep]`'s.
    pub caps: Option<Vec<String>>,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            validity_days: 365,
            max_validity_days: 0,
            key_usage: vec![],
            extended_key_usage: vec!["clientAuth".into()],
            min_rsa_bits: 2048,
            key_types: vec!["rsa".into(), "ec".into()],
            subject_pattern: None,
            required_subject: vec![],
            san_patterns: vec![],
            include_ca_cert: false,
            approval: Approval::Auto,
            caps: None,
        }
    }
}

/// NDES's template choice by key usage (SignatureTemplate, EncryptionTemplate,
/// GeneralPurposeTemplate).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectionConfig {
    /// digitalSignature only.
    pub signature: String,
    /// keyEncipherment only.
    pub encryption: String,
    /// Both, or neither.
    pub general: String,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        SelectionConfig { signature: "default".into(), encryption: "default".into(), general: "default".into() }
    }
}

/// A validated template.
#[derive(Clone, Debug)]
pub struct Template {
    /// Name.
    pub name: String,
    /// Validity.
    pub validity: Duration,
    /// Longest requested validity honoured (zero: requests ignored).
    pub max_validity: Duration,
    /// Fixed key usage, if set.
    pub key_usage: Option<FlagSet<KeyUsages>>,
    /// Extended key usages.
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// Smallest RSA key.
    pub min_rsa_bits: usize,
    allow_rsa: bool,
    allow_ec: bool,
    subject_pattern: Option<Regex>,
    required_subject: Vec<(String, ObjectIdentifier)>,
    san_patterns: Vec<Regex>,
    /// Include the CA certificate in replies.
    pub include_ca_cert: bool,
    /// Approval.
    pub approval: Approval,
    /// GetCACaps keywords of the template's endpoint, when they differ from `[scep]`'s.
    pub caps: Option<Vec<scep::caps::Capability>>,
}

/// Every template, and the NDES selection.
#[derive(Clone, Debug)]
pub struct Templates {
    by_name: BTreeMap<String, Template>,
    selection: SelectionConfig,
}

impl Templates {
    /// Validate the configured templates; `default` exists even when not written.
    pub fn new(raw: BTreeMap<String, TemplateConfig>, selection: SelectionConfig) -> anyhow::Result<Self> {
        let mut by_name = BTreeMap::new();
        let mut raw = raw;
        raw.entry("default".into()).or_default();
        for (name, c) in raw {
            let t = Template::new(&name, c).with_context(|| format!("[templates.{name}]"))?;
            by_name.insert(name, t);
        }
        for (what, n) in [
            ("signature", &selection.signature),
            ("encryption", &selection.encryption),
            ("general", &selection.general),
        ] {
            if !by_name.contains_key(n) {
                bail!("template_selection.{what} names the template {n:?}, which is not defined");
            }
        }
        Ok(Templates { by_name, selection })
    }

    /// A template by name.
    pub fn get(&self, name: &str) -> Option<&Template> {
        self.by_name.get(name)
    }

    /// Every template.
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.by_name.values()
    }

    /// Whether `name` is a template.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// NDES's choice: digitalSignature only -> signature template, keyEncipherment only
    /// -> encryption template, both or none -> general purpose.
    pub fn select(&self, csr: &Csr) -> &Template {
        let ku = csr.key_usage().map(|k| k.0).unwrap_or_default();
        let sig = ku.contains(KeyUsages::DigitalSignature);
        let enc = ku.contains(KeyUsages::KeyEncipherment);
        let name = match (sig, enc) {
            (true, false) => &self.selection.signature,
            (false, true) => &self.selection.encryption,
            _ => &self.selection.general,
        };
        // Checked in `new`: the selected names exist.
        self.by_name.get(name).or_else(|| self.by_name.values().next()).unwrap_or_else(|| unreachable_template())
    }
}

fn unreachable_template() -> &'static Template {
    static T: std::sync::OnceLock<Template> = std::sync::OnceLock::new();
    T.get_or_init(|| Template::new("default", TemplateConfig::default()).unwrap_or_else(|_| std::process::abort()))
}

impl Template {
    fn new(name: &str, c: TemplateConfig) -> anyhow::Result<Self> {
        if c.validity_days == 0 {
            bail!("validity_days must be at least 1");
        }
        let key_usage = if c.key_usage.is_empty() {
            None
        } else {
            let mut f = FlagSet::<KeyUsages>::default();
            for k in &c.key_usage {
                f |= key_usage_name(k).with_context(|| format!("unknown key_usage {k:?}"))?;
            }
            Some(f)
        };
        let extended_key_usage = c
            .extended_key_usage
            .iter()
            .map(|e| eku_name(e).with_context(|| format!("unknown extended_key_usage {e:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut allow_rsa = false;
        let mut allow_ec = false;
        for k in &c.key_types {
            match k.as_str() {
                "rsa" => allow_rsa = true,
                "ec" => allow_ec = true,
                other => bail!("unknown key type {other:?}: use rsa, ec"),
            }
        }
        if c.min_rsa_bits < 2048 {
            // The reply is encrypted to the requester's key, and RSA encryption here takes
            // keys of 2048 bits and more: a smaller key could be issued a certificate it
            // could never receive.
            bail!(
                "min_rsa_bits = {} is not possible: RSA keys under 2048 bits cannot be sent a reply (the smallest is 2048)",
                c.min_rsa_bits
            );
        }
        let subject_pattern = c
            .subject_pattern
            .as_deref()
            .map(|p| Regex::new(&format!("^(?:{p})$")).with_context(|| format!("subject_pattern {p:?}")))
            .transpose()?;
        let required_subject = c
            .required_subject
            .iter()
            .map(|a| {
                attribute_oid(a).map(|o| (a.clone(), o)).with_context(|| format!("unknown subject attribute {a:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let san_patterns = c
            .san_patterns
            .iter()
            .map(|p| Regex::new(&format!("^(?:{p})$")).with_context(|| format!("san_patterns {p:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Template {
            name: name.to_owned(),
            validity: scep::x509::days(c.validity_days),
            max_validity: scep::x509::days(c.max_validity_days),
            key_usage,
            extended_key_usage,
            min_rsa_bits: c.min_rsa_bits,
            allow_rsa,
            allow_ec,
            subject_pattern,
            required_subject,
            san_patterns,
            include_ca_cert: c.include_ca_cert,
            approval: c.approval,
            caps: c.caps.as_deref().map(crate::config::parse_caps).transpose().context("caps")?,
        })
    }

    /// Check a request against the template's rules; the error names the rule broken.
    pub fn check(&self, csr: &Csr) -> Result<(), String> {
        let spki = csr.public_key();
        let rsa = spki.algorithm.oid == scep::crypto::alg::RSA_ENCRYPTION;
        let bits = scep::crypto::key_bits(spki).ok_or("the key type is not supported (use RSA, P-256 or P-384)")?;
        if rsa && !self.allow_rsa {
            return Err(format!("template {} does not accept RSA keys", self.name));
        }
        if !rsa && !self.allow_ec {
            return Err(format!("template {} does not accept EC keys", self.name));
        }
        if rsa && bits < self.min_rsa_bits {
            return Err(format!(
                "the RSA key has {bits} bits; template {} requires at least {}",
                self.name, self.min_rsa_bits
            ));
        }
        let subject = csr.subject().to_string();
        let sans = crate::names::sans(csr);
        if subject.is_empty() && sans.is_empty() {
            return Err("the request has neither a subject nor a subject alternative name".into());
        }
        for (name, oid) in &self.required_subject {
            if !csr.subject().iter().any(|atv| atv.oid == *oid) {
                return Err(format!("template {} requires a subject with {name}", self.name));
            }
        }
        if let Some(re) = &self.subject_pattern
            && !re.is_match(&subject)
        {
            return Err(format!("the subject {subject} does not match template {}'s subject_pattern", self.name));
        }
        if !self.san_patterns.is_empty()
            && let Some(bad) = sans.iter().find(|s| !self.san_patterns.iter().any(|re| re.is_match(s)))
        {
            return Err(format!("the subject alternative name {bad} is not allowed by template {}", self.name));
        }
        Ok(())
    }

    /// Key usage of the certificate: the template's, or what the request asks for
    /// within what suits the key type (default digitalSignature with keyEncipherment
    /// for RSA, keyAgreement for EC).
    pub fn key_usage_for(&self, csr: &Csr) -> KeyUsage {
        if let Some(k) = self.key_usage {
            return KeyUsage(k);
        }
        let rsa = csr.public_key().algorithm.oid == scep::crypto::alg::RSA_ENCRYPTION;
        let allowed = if rsa {
            KeyUsages::DigitalSignature
                | KeyUsages::KeyEncipherment
                | KeyUsages::NonRepudiation
                | KeyUsages::DataEncipherment
        } else {
            KeyUsages::DigitalSignature | KeyUsages::KeyAgreement | KeyUsages::NonRepudiation
        };
        let requested = csr.key_usage().map(|k| k.0 & allowed).filter(|k| !k.is_empty());
        KeyUsage(requested.unwrap_or_else(|| {
            if rsa {
                KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
            } else {
                KeyUsages::DigitalSignature | KeyUsages::KeyAgreement
            }
        }))
    }

    /// Validity: the template's, or what a Windows client asked for up to
    /// `max_validity_days` when that is set.
    pub fn validity_for(&self, csr: &Csr) -> Duration {
        match csr.requested_validity() {
            Some(v) if !self.max_validity.is_zero() => Duration::from_secs(v.seconds).min(self.max_validity),
            _ => self.validity,
        }
    }
}

fn key_usage_name(s: &str) -> Option<KeyUsages> {
    Some(match s {
        "digitalSignature" => KeyUsages::DigitalSignature,
        "nonRepudiation" | "contentCommitment" => KeyUsages::NonRepudiation,
        "keyEncipherment" => KeyUsages::KeyEncipherment,
        "dataEncipherment" => KeyUsages::DataEncipherment,
        "keyAgreement" => KeyUsages::KeyAgreement,
        _ => return None,
    })
}

fn eku_name(s: &str) -> Option<ObjectIdentifier> {
    use const_oid::db::rfc5280 as r;
    Some(match s {
        "clientAuth" => r::ID_KP_CLIENT_AUTH,
        "serverAuth" => r::ID_KP_SERVER_AUTH,
        "codeSigning" => r::ID_KP_CODE_SIGNING,
        "emailProtection" => r::ID_KP_EMAIL_PROTECTION,
        "ipsecIKE" => ObjectIdentifier::new("1.3.6.1.5.5.7.3.17").ok()?,
        other => ObjectIdentifier::new(other).ok()?,
    })
}

fn attribute_oid(s: &str) -> Option<ObjectIdentifier> {
    use const_oid::db::rfc4519 as r;
    Some(match s.to_ascii_uppercase().as_str() {
        "CN" => r::CN,
        "O" => r::O,
        "OU" => r::OU,
        "C" => r::C,
        "L" => r::L,
        "ST" => r::ST,
        "SERIALNUMBER" => r::SERIAL_NUMBER,
        "EMAILADDRESS" | "E" => ObjectIdentifier::new("1.2.840.113549.1.9.1").ok()?,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_chosen_by_key_usage_as_ndes_does() {
        let mut raw = BTreeMap::new();
        for n in ["sig", "enc", "both"] {
            raw.insert(n.to_owned(), TemplateConfig::default());
        }
        let sel = SelectionConfig { signature: "sig".into(), encryption: "enc".into(), general: "both".into() };
        let t = Templates::new(raw, sel).unwrap();
        let key = scep::crypto::PrivateKey::generate(scep::crypto::KeyType::Rsa2048).unwrap();
        let subject = "CN=router".parse().unwrap();
        let csr = |ku: Option<flagset::FlagSet<KeyUsages>>| {
            let ext: Vec<_> = ku.map(|k| scep::x509::key_usage(k).unwrap()).into_iter().collect();
            Csr::from_der(&scep::x509::csr(&subject, &key, None, &ext).unwrap()).unwrap()
        };
        assert_eq!(t.select(&csr(Some(KeyUsages::DigitalSignature.into()))).name, "sig");
        assert_eq!(t.select(&csr(Some(KeyUsages::KeyEncipherment.into()))).name, "enc");
        assert_eq!(t.select(&csr(Some(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment))).name, "both");
        assert_eq!(t.select(&csr(None)).name, "both");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let bad = |f: fn(&mut TemplateConfig)| {
            let mut c = TemplateConfig::default();
            f(&mut c);
            format!("{:#}", Template::new("t", c).unwrap_err())
        };
        assert!(bad(|c| c.key_usage = vec!["flying".into()]).contains("flying"));
        assert!(bad(|c| c.extended_key_usage = vec!["nope".into()]).contains("nope"));
        assert!(bad(|c| c.subject_pattern = Some("(".into())).contains("subject_pattern"));
        assert!(bad(|c| c.validity_days = 0).contains("validity_days"));
        assert!(bad(|c| c.min_rsa_bits = 1024).contains("RSA keys under 2048 bits cannot be sent a reply"));
        assert!(bad(|c| c.caps = Some(vec!["SHA-3".into()])).contains("SHA-3"));
        let sel = SelectionConfig { signature: "missing".into(), ..SelectionConfig::default() };
        assert!(Templates::new(BTreeMap::new(), sel).is_err());
        assert!(Templates::new(BTreeMap::new(), SelectionConfig::default()).unwrap().contains("default"));
    }
}
