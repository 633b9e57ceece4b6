//! SPNEGO (RFC 4178) as HTTP `Negotiate` (RFC 4559) carries NTLM: what GSS-API
//! clients send when they have no Kerberos ticket (curl `--negotiate` with
//! gss-ntlmssp, browsers outside a domain), and the answers an acceptor of NTLM gives.
//!
//! Only NTLM is accepted, and only when the client's first token already carries an
//! NTLM message (NTLM is its first mechanism): then no mechListMIC is needed, since
//! the NTLM context here negotiates no integrity (RFC 4178 section 5). A client that
//! prefers Kerberos is offered the schemes again and falls back to NTLM.
//!
//! The DER is read by hand: four context tags, an OID and an octet string, read
//! leniently (any field order within the sequence, unknown fields skipped).

/// The NTLM mechanism, 1.3.6.1.4.1.311.2.2.10, as DER content octets.
pub const NTLM_MECH: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
/// SPNEGO, 1.3.6.1.5.5.2.
const SPNEGO_MECH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];

/// Why a token is not SPNEGO as accepted here.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpnegoError {
    /// Not DER, or not the structure RFC 4178 gives.
    #[error("not a SPNEGO token: {0}")]
    Malformed(&'static str),
}

/// A client's SPNEGO token, with the NTLM message it carries, if any.
#[derive(Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// NegTokenInit (the first token): the mechanisms offered, most preferred first,
    /// and the optimistic token of the first one.
    Init {
        /// Mechanism OIDs as DER content octets.
        mechs: Vec<&'a [u8]>,
        /// The first mechanism's token.
        mech_token: Option<&'a [u8]>,
    },
    /// NegTokenResp (the following tokens).
    Resp {
        /// The mechanism's token.
        response_token: Option<&'a [u8]>,
    },
}

impl<'a> Token<'a> {
    /// The NTLM message in the token: the optimistic token of a NegTokenInit whose
    /// first mechanism is NTLM, or a NegTokenResp's response token.
    pub fn ntlm(&self) -> Option<&'a [u8]> {
        match self {
            Token::Init { mechs, mech_token } => mech_token.filter(|_| mechs.first() == Some(&NTLM_MECH)),
            Token::Resp { response_token } => *response_token,
        }
    }
}

/// Whether `token` looks like SPNEGO rather than a raw NTLM or Kerberos token.
pub fn is_spnego(token: &[u8]) -> bool {
    matches!(token.first(), Some(0x60) | Some(0xa1))
}

/// Read a client's SPNEGO token.
pub fn parse(token: &[u8]) -> Result<Token<'_>, SpnegoError> {
    let (tag, body, _) = tlv(token).ok_or(SpnegoError::Malformed("outer TLV"))?;
    match tag {
        // InitialContextToken ::= [APPLICATION 0] IMPLICIT SEQUENCE { thisMech, NegotiationToken }
        0x60 => {
            let (t, oid, rest) = tlv(body).ok_or(SpnegoError::Malformed("thisMech"))?;
            if t != 0x06 || oid != SPNEGO_MECH {
                return Err(SpnegoError::Malformed("thisMech is not SPNEGO"));
            }
            let (t, init, _) = tlv(rest).ok_or(SpnegoError::Malformed("negTokenInit"))?;
            if t != 0xa0 {
                return Err(SpnegoError::Malformed("not a negTokenInit"));
            }
            let mut mechs = Vec::new();
            let mut mech_token = None;
            for (t, field) in fields(init)? {
                match t {
                    0xa0 => {
                        let (t, list, _) = tlv(field).ok_or(SpnegoError::Malformed("mechTypes"))?;
                        if t != 0x30 {
                            return Err(SpnegoError::Malformed("mechTypes is not a SEQUENCE"));
                        }
                        let mut rest = list;
                        while !rest.is_empty() {
                            let (t, oid, r) = tlv(rest).ok_or(SpnegoError::Malformed("mechType"))?;
                            if t != 0x06 {
                                return Err(SpnegoError::Malformed("mechType is not an OID"));
                            }
                            mechs.push(oid);
                            rest = r;
                        }
                    }
                    0xa2 => mech_token = Some(octets(field)?),
                    _ => {}
                }
            }
            Ok(Token::Init { mechs, mech_token })
        }
        // NegotiationToken ::= CHOICE { ..., negTokenResp [1] NegTokenResp }
        0xa1 => {
            let mut response_token = None;
            for (t, field) in fields(body)? {
                if t == 0xa2 {
                    response_token = Some(octets(field)?);
                }
            }
            Ok(Token::Resp { response_token })
        }
        _ => Err(SpnegoError::Malformed("neither negTokenInit nor negTokenResp")),
    }
}

/// negState of a NegTokenResp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegState {
    /// The client is authenticated.
    AcceptCompleted = 0,
    /// Another token is expected.
    AcceptIncomplete = 1,
    /// Refused.
    Reject = 2,
}

/// A NegTokenResp: the state, NTLM as the selected mechanism (in the first answer),
/// and the NTLM message to carry.
pub fn response(state: NegState, select_ntlm: bool, token: Option<&[u8]>) -> Vec<u8> {
    let mut seq = Vec::new();
    seq.extend(wrap(0xa0, &wrap(0x0a, &[state as u8])));
    if select_ntlm {
        seq.extend(wrap(0xa1, &wrap(0x06, NTLM_MECH)));
    }
    if let Some(t) = token {
        seq.extend(wrap(0xa2, &wrap(0x04, t)));
    }
    wrap(0xa1, &wrap(0x30, &seq))
}

/// The fields of a SEQUENCE's encoding: (context tag, field body).
fn fields(seq: &[u8]) -> Result<Vec<(u8, &[u8])>, SpnegoError> {
    let (t, mut rest, _) = tlv(seq).ok_or(SpnegoError::Malformed("SEQUENCE"))?;
    if t != 0x30 {
        return Err(SpnegoError::Malformed("not a SEQUENCE"));
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (t, body, r) = tlv(rest).ok_or(SpnegoError::Malformed("field"))?;
        out.push((t, body));
        rest = r;
    }
    Ok(out)
}

/// The content of an explicitly tagged OCTET STRING.
fn octets(field: &[u8]) -> Result<&[u8], SpnegoError> {
    match tlv(field) {
        Some((0x04, body, _)) => Ok(body),
        _ => Err(SpnegoError::Malformed("not an OCTET STRING")),
    }
}

/// One DER TLV (single-byte tag, definite length): tag, content, what follows.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    if rest.len() < len {
        return None;
    }
    let (body, rest) = rest.split_at(len);
    Some((tag, body, rest))
}

/// `tag`, a DER length, `body`.
fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What curl 7.88 with gss-ntlmssp 1.2 sends first (`curl --negotiate -u :`).
    const CURL_INIT: &str = "604806062b0601050502a03e303ca00e300c060a2b06010401823702020aa22a04284e544c4d5353500001000000178208e200000000000000000000000000000000060200000000000f";

    #[test]
    fn curls_first_token_carries_an_ntlm_negotiate() {
        let raw = hex::decode(CURL_INIT).unwrap();
        assert!(is_spnego(&raw));
        let t = parse(&raw).unwrap();
        let ntlm = t.ntlm().unwrap();
        assert!(ntlm.starts_with(b"NTLMSSP\0\x01\0\0\0"));
        assert!(matches!(t, Token::Init { ref mechs, .. } if mechs == &[NTLM_MECH]));
    }

    #[test]
    fn a_kerberos_first_init_yields_no_ntlm_token() {
        let krb5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
        let mut mechs = wrap(0x06, krb5);
        mechs.extend(wrap(0x06, NTLM_MECH));
        let mut init = wrap(0xa0, &wrap(0x30, &mechs));
        init.extend(wrap(0xa2, &wrap(0x04, b"kerberos ap-req")));
        let mut token = wrap(0x06, SPNEGO_MECH);
        token.extend(wrap(0xa0, &wrap(0x30, &init)));
        let token = wrap(0x60, &token);
        assert_eq!(parse(&token).unwrap().ntlm(), None);
    }

    #[test]
    fn responses_read_back_and_long_tokens_use_long_lengths() {
        let big = vec![7u8; 300];
        let r = response(NegState::AcceptIncomplete, true, Some(&big));
        assert_eq!(parse(&r).unwrap(), Token::Resp { response_token: Some(&big) });
        let done = response(NegState::AcceptCompleted, false, None);
        assert_eq!(done, [0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00]);
    }

    #[test]
    fn junk_is_refused() {
        for junk in [&[][..], &[0x60], &[0x60, 0x05, 0x06], &[0xa1, 0x02, 0x31, 0x00], &[0x30, 0x00]] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
    }
}
