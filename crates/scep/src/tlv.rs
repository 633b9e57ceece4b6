//! Walking DER elements without decoding them into RFC-conforming types, for the
//! parts of a request that clients encode unusually (see [`crate::signer`]). Input is
//! the output of [`crate::ber::normalize`], so every length is definite.

use der::{Decode, Reader, SliceReader, Tag, Tagged, asn1::AnyRef};

use crate::error::{Error, Result};

/// One element: its tag, its value octets and its whole encoding (tag and length too).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
    pub whole: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The single element that `bytes` holds.
    pub fn parse(bytes: &'a [u8], what: &'static str) -> Result<Self> {
        let mut items = children_of(bytes, what)?.into_iter();
        match (items.next(), items.next()) {
            (Some(t), None) => Ok(t),
            _ => Err(Error::Malformed(what)),
        }
    }

    /// The elements inside a constructed element.
    pub fn children(&self, what: &'static str) -> Result<Vec<Tlv<'a>>> {
        if !self.tag.is_constructed() {
            return Err(Error::Malformed(what));
        }
        children_of(self.value, what)
    }

    /// The elements inside a SEQUENCE.
    pub fn sequence(&self, what: &'static str) -> Result<Vec<Tlv<'a>>> {
        if self.tag != Tag::Sequence {
            return Err(Error::Malformed(what));
        }
        children_of(self.value, what)
    }

    /// Decode this element as a typed value.
    pub fn decode<T: Decode<'a>>(&self, what: &'static str) -> Result<T> {
        T::from_der(self.whole).map_err(|_| Error::Malformed(what))
    }

    /// Whether this is the context-specific tag `[n]`.
    pub fn is_context(&self, n: u32) -> bool {
        matches!(self.tag, Tag::ContextSpecific { number, .. } if number.value() == n)
    }
}

/// The elements that follow each other in `bytes`.
fn children_of<'a>(bytes: &'a [u8], what: &'static str) -> Result<Vec<Tlv<'a>>> {
    let mut r = SliceReader::new(bytes).map_err(|_| Error::Malformed(what))?;
    let mut out = Vec::new();
    while !r.is_finished() {
        let start = usize::try_from(r.position()).map_err(|_| Error::Malformed(what))?;
        let any = AnyRef::decode(&mut r).map_err(|_| Error::Malformed(what))?;
        let end = usize::try_from(r.position()).map_err(|_| Error::Malformed(what))?;
        let whole = bytes.get(start..end).ok_or(Error::Malformed(what))?;
        out.push(Tlv { tag: any.tag(), value: any.value(), whole });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_sequence_and_keeps_exact_encodings() {
        // SEQUENCE { INTEGER 0x00ff (33-byte style leading zero kept), [0] { NULL } }
        let der = [0x30, 0x08, 0x02, 0x02, 0x00, 0xff, 0xa0, 0x02, 0x05, 0x00];
        let t = Tlv::parse(&der, "x").unwrap();
        let kids = t.sequence("x").unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].tag, Tag::Integer);
        assert_eq!(kids[0].whole, &der[2..6]);
        assert!(kids[1].is_context(0));
        assert_eq!(kids[1].children("x").unwrap()[0].tag, Tag::Null);
        assert!(Tlv::parse(&der[..9], "x").is_err());
    }
}
