//! LZW as memberlist's `compressMsg` uses it: Go `compress/lzw` with LSB bit
//! order and 8-bit literals (GIF style), done by the `weezl` crate.

use weezl::{BitOrder, LzwStatus, decode::Decoder, encode::Encoder};

use crate::Error;

/// Compresses bytes the way memberlist's compress path does (algorithm 0).
pub fn lzw_compress(data: &[u8]) -> Vec<u8> {
    // Encoding 8-bit literals with an 8-bit code size cannot fail.
    Encoder::new(BitOrder::Lsb, 8).encode(data).unwrap_or_default()
}

/// Decompresses LZW bytes, refusing to produce more than `limit` bytes so
/// that a small packet cannot expand into an unbounded allocation.
pub fn lzw_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let mut dec = Decoder::new(BitOrder::Lsb, 8);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut input = data;
    loop {
        let res = dec.decode_bytes(input, &mut chunk);
        input = input.get(res.consumed_in..).unwrap_or_default();
        let written = chunk.get(..res.consumed_out).unwrap_or_default();
        if out.len() + written.len() > limit {
            return Err(Error::DecompressedTooLarge { limit });
        }
        out.extend_from_slice(written);
        match res.status {
            Ok(LzwStatus::Done) => return Ok(out),
            // Go's reader treats running out of input without an end code
            // as an unexpected EOF.
            Ok(LzwStatus::NoProgress) => {
                return Err(Error::Lzw { reason: "missing end code".into() });
            }
            Ok(LzwStatus::Ok) => {
                if input.is_empty() && res.consumed_out == 0 && res.consumed_in == 0 {
                    return Err(Error::Lzw { reason: "missing end code".into() });
                }
            }
            Err(e) => return Err(Error::Lzw { reason: e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limit() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
        let c = lzw_compress(&data);
        assert!(c.len() < data.len());
        assert_eq!(lzw_decompress(&c, 1 << 20).unwrap(), data);
        assert_eq!(
            lzw_decompress(&c, 100).unwrap_err(),
            Error::DecompressedTooLarge { limit: 100 }
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(lzw_decompress(&[0xff, 0xff, 0xff, 0xff], 1 << 20).is_err());
        assert!(lzw_decompress(&[], 1 << 20).is_err());
    }
}
