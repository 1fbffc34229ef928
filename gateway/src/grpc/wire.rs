//! Protocol Buffers wire format, just enough to rewrite a message without decoding it: split a
//! message into its top-level fields as byte ranges, and write fields back. The gateway changes
//! only the fields it must (a `near_text` becomes a `near_vector`, an object gains a vector) and
//! copies every other field's bytes unchanged, so fields it does not model, including ones newer
//! clients add, reach Weaviate byte-identical (issue 6: lossless rewrite).

use std::ops::Range;

/// A malformed message: truncated, an overlong varint, or a wire type protobuf does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed protobuf message: {0}")]
pub struct WireError(pub &'static str);

/// Protobuf wire types.
pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// One top-level field occurrence: its number, wire type, the range of the whole field (key
/// included) and the range of its payload (for `LEN` fields: without the length prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub number: u32,
    pub wire_type: u8,
    pub whole: Range<usize>,
    pub payload: Range<usize>,
}

/// Reads a varint at `*pos`, advancing it.
pub fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos).ok_or(WireError("truncated varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError("varint longer than 10 bytes"))
}

/// The top-level fields of `message`, in wire order. Groups (wire types 3/4, deprecated since
/// proto2 and never sent by Weaviate clients) are refused.
pub fn fields(message: &[u8]) -> Result<Vec<Field>, WireError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let start = pos;
        let key = read_varint(message, &mut pos)?;
        let number = u32::try_from(key >> 3).map_err(|_| WireError("field number too large"))?;
        if number == 0 {
            return Err(WireError("field number 0"));
        }
        let wire_type = (key & 7) as u8;
        let payload = match wire_type {
            VARINT => {
                let begin = pos;
                read_varint(message, &mut pos)?;
                begin..pos
            }
            FIXED64 => take(message, &mut pos, 8)?,
            FIXED32 => take(message, &mut pos, 4)?,
            LEN => {
                let len = read_varint(message, &mut pos)?;
                let len = usize::try_from(len).map_err(|_| WireError("length too large"))?;
                take(message, &mut pos, len)?
            }
            _ => return Err(WireError("unsupported wire type")),
        };
        out.push(Field {
            number,
            wire_type,
            whole: start..pos,
            payload,
        });
    }
    Ok(out)
}

fn take(message: &[u8], pos: &mut usize, len: usize) -> Result<Range<usize>, WireError> {
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= message.len())
        .ok_or(WireError("truncated field"))?;
    let range = *pos..end;
    *pos = end;
    Ok(range)
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a length-delimited field (a sub-message, string or bytes).
pub fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | u64::from(LEN));
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// `message` with every occurrence of the fields in `drop` removed and `append` (already encoded
/// fields) added at the end; all other bytes are copied unchanged, in order.
pub fn splice(message: &[u8], fields: &[Field], drop: &[u32], append: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + append.len());
    for field in fields {
        if !drop.contains(&field.number) {
            out.extend_from_slice(&message[field.whole.clone()]);
        }
    }
    out.extend_from_slice(append);
    out
}

/// Re-encodes the fields of `message` listed in `renumber` (`from → to`) under their new numbers,
/// payload bytes unchanged; other fields are left out. Used to carry `certainty`, `distance`,
/// `targets`, … from a `NearTextSearch` into a `NearVector`, whose numbers differ.
pub fn renumbered(message: &[u8], fields: &[Field], renumber: &[(u32, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        if let Some((_, to)) = renumber.iter().find(|(from, _)| *from == field.number) {
            put_varint(&mut out, (u64::from(*to) << 3) | u64::from(field.wire_type));
            if field.wire_type == LEN {
                put_varint(&mut out, field.payload.len() as u64);
            }
            out.extend_from_slice(&message[field.payload.clone()]);
        }
    }
    out
}

/// The payload of the last occurrence of `number` (protobuf's "last one wins" for a singular
/// field; sub-messages would merge, but clients send each once).
pub fn last<'a>(message: &'a [u8], fields: &[Field], number: u32) -> Option<&'a [u8]> {
    fields
        .iter()
        .rev()
        .find(|f| f.number == number)
        .map(|f| &message[f.payload.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_splices_and_renumbers() {
        // field 1 varint 150, field 2 "ab", field 5 fixed32, field 1000 bytes
        let mut msg = vec![0x08, 0x96, 0x01, 0x12, 0x02, b'a', b'b', 0x2d, 1, 2, 3, 4];
        put_len_field(&mut msg, 1000, b"xyz");
        let f = fields(&msg).unwrap();
        assert_eq!(
            f.iter().map(|f| f.number).collect::<Vec<_>>(),
            vec![1, 2, 5, 1000]
        );
        assert_eq!(last(&msg, &f, 2), Some(&b"ab"[..]));
        let mut extra = Vec::new();
        put_len_field(&mut extra, 3, b"new");
        let out = splice(&msg, &f, &[2], &extra);
        let g = fields(&out).unwrap();
        assert_eq!(
            g.iter().map(|f| f.number).collect::<Vec<_>>(),
            vec![1, 5, 1000, 3]
        );
        assert_eq!(last(&out, &g, 1000), Some(&b"xyz"[..]));
        let r = renumbered(&msg, &f, &[(2, 7), (1, 9)]);
        let h = fields(&r).unwrap();
        assert_eq!(h[0].number, 9);
        assert_eq!(last(&r, &h, 9).map(<[u8]>::to_vec), Some(vec![0x96, 0x01]));
        assert_eq!(last(&r, &h, 7), Some(&b"ab"[..]));
    }

    #[test]
    fn refuses_malformed_input() {
        assert!(fields(&[0x12, 0x05, b'a']).is_err());
        assert!(fields(&[0x08]).is_err());
        assert!(fields(&[0x0b]).is_err()); // group start
        assert!(fields(&[0x00, 0x00]).is_err());
        assert!(fields(&[0xff; 12]).is_err());
    }
}
