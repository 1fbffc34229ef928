//! Base64 decoding exactly as the inference container does it.
//!
//! Weaviate passes a `nearImage`/`blob` string verbatim to the container (spec §4), which calls
//! Python's `base64.b64decode(s)` — CPython's `binascii.a2b_base64` in its NON-strict mode:
//! characters outside the standard alphabet are skipped, a `=` pad ends decoding once a quad is
//! complete, and a dangling partial quad is an error ("Incorrect padding"). Decoding with a strict
//! decoder would reject inputs the container accepts (line breaks, a stray space) and decoding
//! with a lenient one would accept inputs it rejects; both would change what clients observe.

use crate::EmbedError;

/// Value of each ASCII byte in the standard alphabet, or 0xFF for "not in the alphabet".
const TABLE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Decodes `s` as `base64.b64decode(s)` (validate=False) does, with the same error texts.
///
/// Python first encodes a `str` argument as ASCII, so any non-ASCII character is an error there
/// ("string argument should contain only ASCII characters"), even though non-alphabet ASCII
/// characters are silently skipped.
pub fn decode_python(s: &str) -> Result<Vec<u8>, EmbedError> {
    if !s.is_ascii() {
        return Err(EmbedError::InvalidBase64(
            "string argument should contain only ASCII characters".to_string(),
        ));
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut quad_pos = 0u8;
    let mut left: u8 = 0;
    let mut pads = 0u8;
    for &ch in s.as_bytes() {
        if ch == b'=' {
            // CPython: `if (quad_pos >= 2 && quad_pos + ++pads >= 4) goto done;`
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    return Ok(out);
                }
            }
            continue;
        }
        let v = TABLE[ch as usize];
        if v == 0xFF {
            continue;
        }
        pads = 0;
        match quad_pos {
            0 => {
                quad_pos = 1;
                left = v;
            }
            1 => {
                quad_pos = 2;
                out.push((left << 2) | (v >> 4));
                left = v & 0x0F;
            }
            2 => {
                quad_pos = 3;
                out.push((left << 4) | (v >> 2));
                left = v & 0x03;
            }
            _ => {
                quad_pos = 0;
                out.push((left << 6) | v);
                left = 0;
            }
        }
    }
    match quad_pos {
        0 => Ok(out),
        1 => Err(EmbedError::InvalidBase64(format!(
            "Invalid base64-encoded string: number of data characters ({}) cannot be 1 more than a multiple of 4",
            out.len() / 3 * 4 + 1
        ))),
        _ => Err(EmbedError::InvalidBase64("Incorrect padding".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::decode_python;
    use crate::EmbedError;

    fn ok(s: &str) -> Vec<u8> {
        match decode_python(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match decode_python(s) {
            Err(EmbedError::InvalidBase64(m)) => m,
            other => panic!("{s:?}: expected an error, got {other:?}"),
        }
    }

    // Expected values produced with CPython 3 `base64.b64decode`.
    #[test]
    fn matches_cpython_non_strict_mode() {
        assert_eq!(ok(""), b"");
        assert_eq!(ok("aGVsbG8="), b"hello");
        assert_eq!(ok("aGVs\nbG8="), b"hello");
        assert_eq!(ok(" aGVs bG8= "), b"hello");
        assert_eq!(ok("aGVsbG8=trailing"), b"hello");
        assert_eq!(ok("aGVsbA=="), b"hell");
        assert_eq!(ok("aGVsbA==x"), b"hell");
        assert_eq!(ok("aGVsbA=x="), b"hell\x0c");
        assert_eq!(ok("aG=Vs"), b"hel");
        assert_eq!(ok("===="), b"");
        assert_eq!(ok("a-b_c.d!"), &[0x69, 0xb7, 0x1d]);
        assert_eq!(err("aGVsbA"), "Incorrect padding");
        assert_eq!(err("aGVsbA="), "Incorrect padding");
        assert_eq!(err("data:image/png;base64,aGVsbG8="), "Incorrect padding");
        assert_eq!(
            err("aGVsb"),
            "Invalid base64-encoded string: number of data characters (5) cannot be 1 more than a multiple of 4"
        );
        assert_eq!(
            err("a"),
            "Invalid base64-encoded string: number of data characters (1) cannot be 1 more than a multiple of 4"
        );
        assert_eq!(
            err("aGVsbG8é"),
            "string argument should contain only ASCII characters"
        );
    }
}
