//! The frame header of RFC 6455 §5.2, from a server's side: the frames it
//! reads come from a client (always masked), the frames it writes are not
//! masked. No extension is offered, so every reserved bit must be clear.

use super::Violation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continue,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn of(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continue,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continue => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A client frame's header, read in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: OpCode,
    pub mask: [u8; 4],
    /// The header's own length: the payload starts here.
    pub size: usize,
    pub payload: usize,
}

/// The most a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest header a server writes: 2 bytes and a 64-bit length.
pub const MAX_SERVER_HEADER: usize = 10;

/// Reads a client frame's header from the start of `bytes`: `None` while
/// it is not all there yet. A payload over `max_payload` is refused before
/// any of it is read.
pub fn read_header(bytes: &[u8], max_payload: usize) -> Result<Option<Header>, Violation> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    // What the first two bytes decide is judged as soon as they are here.
    if first & 0x70 != 0 {
        return Err(Violation::Protocol("a reserved bit is set"));
    }
    let fin = first & 0x80 != 0;
    let opcode = OpCode::of(first & 0x0F).ok_or(Violation::Protocol("a reserved opcode"))?;
    if second & 0x80 == 0 {
        return Err(Violation::Protocol("a client frame that is not masked"));
    }
    if opcode.is_control() && (!fin || usize::from(second & 0x7F) > MAX_CONTROL_PAYLOAD) {
        return Err(Violation::Protocol("a fragmented or oversized control frame"));
    }
    let Some(Extent { size, payload, .. }) = extent(bytes) else {
        return Ok(None);
    };
    if payload >> 63 != 0 {
        return Err(Violation::Protocol("a payload length with its top bit set"));
    }
    let payload = usize::try_from(payload).ok().filter(|n| *n <= max_payload).ok_or(Violation::TooBig)?;
    let mask = bytes[size - 4..size].try_into().expect("four bytes");
    Ok(Some(Header { fin, opcode, mask, size, payload }))
}

/// Where a frame ends, read without judging it.
pub struct Extent {
    /// `None`: a reserved opcode.
    pub opcode: Option<OpCode>,
    /// The header's length, mask included if there is one.
    pub size: usize,
    pub payload: u64,
}

/// A frame's extent, once its header is all there. `read_header` judges
/// the frame on top of it; after a frame that broke the rules, this alone
/// is how the rest are skipped.
pub fn extent(bytes: &[u8]) -> Option<Extent> {
    let [first, second, ..] = *bytes else {
        return None;
    };
    let length_size = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let size = 2 + length_size + if second & 0x80 != 0 { 4 } else { 0 };
    if bytes.len() < size {
        return None;
    }
    let payload = match second & 0x7F {
        n @ 0..=125 => u64::from(n),
        _ => bytes[2..2 + length_size].iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)),
    };
    Some(Extent { opcode: OpCode::of(first & 0x0F), size, payload })
}

/// Unmasks a payload in place (§5.3).
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// The header of a whole (unfragmented, unmasked) server frame, and how
/// many of its bytes are used.
pub fn server_header(opcode: OpCode, payload: usize) -> ([u8; MAX_SERVER_HEADER], usize) {
    let mut header = [0u8; MAX_SERVER_HEADER];
    header[0] = 0x80 | opcode.bits();
    let used = if payload < 126 {
        header[1] = payload as u8;
        2
    } else if let Ok(n) = u16::try_from(payload) {
        header[1] = 126;
        header[2..4].copy_from_slice(&n.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(payload as u64).to_be_bytes());
        10
    };
    (header, used)
}

/// Whether a peer may send this close code (§7.4): the defined codes that
/// mean something on the wire, and the ranges for libraries and applications.
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn masked(first: u8, payload_len: usize) -> Vec<u8> {
        let mut frame = vec![first];
        match payload_len {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend((n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend((n as u64).to_be_bytes());
            }
        }
        frame.extend([1, 2, 3, 4]);
        frame
    }

    #[test]
    fn reads_the_three_length_forms() {
        for len in [0, 125, 126, 65535, 65536, 1 << 20] {
            let bytes = masked(0x81, len);
            let header = read_header(&bytes, usize::MAX).unwrap().unwrap();
            assert_eq!(header.payload, len);
            assert_eq!(header.size, bytes.len());
            assert_eq!(header.mask, [1, 2, 3, 4]);
            assert!(header.fin);
            assert_eq!(header.opcode, OpCode::Text);
        }
    }

    #[test]
    fn waits_for_the_whole_header() {
        let bytes = masked(0x82, 70000);
        for cut in 0..bytes.len() {
            assert_eq!(read_header(&bytes[..cut], usize::MAX), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn refuses_what_breaks_the_rules() {
        let cases: [(Vec<u8>, Violation); 6] = [
            (masked(0xC1, 1), Violation::Protocol("a reserved bit is set")),
            (masked(0x83, 1), Violation::Protocol("a reserved opcode")),
            (vec![0x81, 0x01, b'x'], Violation::Protocol("a client frame that is not masked")),
            (masked(0x09, 1), Violation::Protocol("a fragmented or oversized control frame")),
            (masked(0x89, 126), Violation::Protocol("a fragmented or oversized control frame")),
            (masked(0x81, 2000), Violation::TooBig),
        ];
        for (bytes, violation) in cases {
            assert_eq!(read_header(&bytes, 1000), Err(violation));
        }
        let mut top_bit = masked(0x82, 1 << 20);
        top_bit[2] = 0x80;
        assert_eq!(
            read_header(&top_bit, usize::MAX),
            Err(Violation::Protocol("a payload length with its top bit set"))
        );
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        assert_eq!(server_header(OpCode::Text, 5).1, 2);
        assert_eq!(server_header(OpCode::Text, 126).1, 4);
        assert_eq!(server_header(OpCode::Text, 65536).1, 10);
        let (header, _) = server_header(OpCode::Close, 2);
        assert_eq!(&header[..2], &[0x88, 2]);
    }

    proptest! {
        #[test]
        fn any_bytes_give_an_answer_and_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = read_header(&bytes, 1 << 16);
        }

        #[test]
        fn a_server_header_reads_back(len in 0usize..200_000, text in any::<bool>()) {
            let opcode = if text { OpCode::Text } else { OpCode::Binary };
            let (header, used) = server_header(opcode, len);
            // Read back as a client frame: set the mask bit and add a key.
            let mut bytes = header[..used].to_vec();
            bytes[1] |= 0x80;
            bytes.extend([0, 0, 0, 0]);
            let read = read_header(&bytes, usize::MAX).unwrap().unwrap();
            prop_assert_eq!(read.payload, len);
            prop_assert_eq!(read.opcode, opcode);
            prop_assert!(read.fin);
        }
    }
}
