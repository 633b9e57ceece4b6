//! BER to DER-shaped re-encoding, for what the `der` crate does not read: clients send
//! constructed OCTET STRINGs with definite lengths (micromdm's and Go's pkcs7 do), and
//! indefinite lengths (OpenSSL `-stream`).
//!
//! The re-encoding gives every element a definite, minimal length; flattens constructed
//! OCTET STRINGs into primitive ones; and flattens a constructed `[0]` made of OCTET
//! STRING segments when it ends an `EncryptedContentInfo` (`SEQUENCE { OID, SEQUENCE,
//! [0] }`), the one implicitly tagged string CMS has. Everything else keeps its tags.

use crate::error::{Error, Result};

/// Deepest nesting accepted; real messages stay under 20.
const MAX_DEPTH: usize = 48;

/// Re-encode `input` (one BER element, possibly followed by nothing) as described above.
pub fn normalize(input: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let (el, rest) = read(input, 0)?;
    if !rest.is_empty() {
        return Err(Error::Malformed("trailing bytes after the message"));
    }
    el.write(&mut out);
    Ok(out)
}

/// A parsed element.
enum Element {
    Primitive { tag: Vec<u8>, value: Vec<u8> },
    Constructed { tag: Vec<u8>, children: Vec<Element> },
}

impl Element {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Element::Primitive { tag, value } => {
                out.extend_from_slice(tag);
                write_len(out, value.len());
                out.extend_from_slice(value);
            }
            Element::Constructed { tag, children } => {
                let mut body = Vec::new();
                for c in children {
                    c.write(&mut body);
                }
                out.extend_from_slice(tag);
                write_len(out, body.len());
                out.extend_from_slice(&body);
            }
        }
    }

    fn first_tag_byte(&self) -> u8 {
        match self {
            Element::Primitive { tag, .. } | Element::Constructed { tag, .. } => tag.first().copied().unwrap_or(0),
        }
    }

    /// The concatenated value of an element made only of OCTET STRING segments.
    fn octets(&self) -> Option<Vec<u8>> {
        match self {
            Element::Primitive { tag, value } if tag.as_slice() == [0x04] => Some(value.clone()),
            Element::Constructed { tag, children }
                if tag.as_slice() == [0x24] || tag.first().is_some_and(|t| t & 0xe0 == 0xa0) =>
            {
                let mut v = Vec::new();
                for c in children {
                    v.extend_from_slice(&c.octets()?);
                }
                Some(v)
            }
            _ => None,
        }
    }
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let sig = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | sig.len() as u8);
        out.extend_from_slice(sig);
    }
}

/// Read one element from `input`, returning it and the remaining bytes.
fn read(input: &[u8], depth: usize) -> Result<(Element, &[u8])> {
    if depth > MAX_DEPTH {
        return Err(Error::Malformed("nesting too deep"));
    }
    let bad = || Error::Malformed("truncated or invalid BER");
    let first = *input.first().ok_or_else(bad)?;
    let mut pos = 1;
    if first & 0x1f == 0x1f {
        // High tag number: base-128 continuation bytes.
        loop {
            let b = *input.get(pos).ok_or_else(bad)?;
            pos += 1;
            if pos > 6 {
                return Err(bad());
            }
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let tag = input.get(..pos).ok_or_else(bad)?.to_vec();
    let lb = *input.get(pos).ok_or_else(bad)?;
    pos += 1;
    let constructed = first & 0x20 != 0;
    let len: Option<usize> = if lb < 0x80 {
        Some(usize::from(lb))
    } else if lb == 0x80 {
        None
    } else {
        let n = usize::from(lb & 0x7f);
        if n > 4 {
            return Err(bad());
        }
        let mut l = 0usize;
        for _ in 0..n {
            l = (l << 8) | usize::from(*input.get(pos).ok_or_else(bad)?);
            pos += 1;
        }
        Some(l)
    };
    let rest = input.get(pos..).ok_or_else(bad)?;
    if !constructed {
        let l = len.ok_or_else(bad)?;
        let value = rest.get(..l).ok_or_else(bad)?.to_vec();
        return Ok((Element::Primitive { tag, value }, rest.get(l..).ok_or_else(bad)?));
    }
    let mut children = Vec::new();
    let after = match len {
        Some(l) => {
            let mut body = rest.get(..l).ok_or_else(bad)?;
            while !body.is_empty() {
                let (c, r) = read(body, depth + 1)?;
                children.push(c);
                body = r;
            }
            rest.get(l..).ok_or_else(bad)?
        }
        None => {
            let mut body = rest;
            loop {
                if body.starts_with(&[0, 0]) {
                    break body.get(2..).ok_or_else(bad)?;
                }
                let (c, r) = read(body, depth + 1)?;
                children.push(c);
                body = r;
            }
        }
    };
    // Constructed OCTET STRING -> primitive.
    if tag.as_slice() == [0x24] {
        let el = Element::Constructed { tag, children };
        let value = el.octets().ok_or_else(bad)?;
        return Ok((Element::Primitive { tag: vec![0x04], value }, after));
    }
    // EncryptedContentInfo: SEQUENCE { OID, SEQUENCE, [0] IMPLICIT OCTET STRING }.
    if tag.as_slice() == [0x30] && children.len() == 3 {
        let shape = children.first().map(Element::first_tag_byte) == Some(0x06)
            && children.get(1).map(Element::first_tag_byte) == Some(0x30)
            && children.get(2).map(Element::first_tag_byte) == Some(0xa0);
        let value = if shape { children.get(2).and_then(Element::octets) } else { None };
        if let (Some(value), Some(last)) = (value, children.last_mut()) {
            *last = Element::Primitive { tag: vec![0x80], value };
        }
    }
    Ok((Element::Constructed { tag, children }, after))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn constructed_definite_and_indefinite_octet_strings_flatten() {
        let definite = [0x24, 0x08, 0x04, 0x02, b'a', b'b', 0x04, 0x02, b'c', b'd'];
        assert_eq!(normalize(&definite).unwrap(), vec![0x04, 0x04, b'a', b'b', b'c', b'd']);
        let indefinite = [0x30, 0x80, 0x24, 0x80, 0x04, 0x01, b'x', 0x00, 0x00, 0x00, 0x00];
        assert_eq!(normalize(&indefinite).unwrap(), vec![0x30, 0x03, 0x04, 0x01, b'x']);
    }

    #[test]
    fn encrypted_content_info_segments_flatten_but_explicit_tags_stay() {
        // SEQUENCE { OID 1.2, SEQUENCE {}, [0] { OCTET STRING "ab" } }
        let eci = [0x30, 0x0b, 0x06, 0x01, 0x2a, 0x30, 0x00, 0xa0, 0x04, 0x04, 0x02, b'a', b'b'];
        assert_eq!(normalize(&eci).unwrap(), vec![0x30, 0x09, 0x06, 0x01, 0x2a, 0x30, 0x00, 0x80, 0x02, b'a', b'b']);
        // SEQUENCE { OID, [0] EXPLICIT OCTET STRING }: two children, kept as is.
        let eci2 = [0x30, 0x09, 0x06, 0x01, 0x2a, 0xa0, 0x04, 0x04, 0x02, b'a', b'b'];
        assert_eq!(normalize(&eci2).unwrap(), eci2.to_vec());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&[][..], &[0x30], &[0x30, 0x85, 1, 1, 1, 1, 1], &[0x30, 0x80, 0x04], &[0x04, 0x05, 1]] {
            assert!(normalize(bad).is_err());
        }
        let mut deep = vec![];
        for _ in 0..100 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        assert!(normalize(&deep).is_err());
    }
}
