//! Removing the location from images as their bytes stream past: the GPS
//! part of the EXIF block of a JPEG (APP1), a PNG (`eXIf`) or a WebP
//! (`EXIF`) is blanked in place (every GPS field and the values it points
//! to zeroed, the GPS directory left empty), so the pixels are untouched,
//! the rest of the EXIF (the orientation) stays, and the file keeps its
//! length (WebP's RIFF size stays true). Only the EXIF block is ever held
//! in memory (at most [`HELD`]); a larger one is dropped (PNG) or zeroed
//! whole (WebP), and one that cannot be read is zeroed whole: the location
//! never stays for want of understanding where it is.

use crate::domain::FileKind;

/// The largest EXIF block held to be cleaned (a JPEG's is at most 64 KiB).
const HELD: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// At the file's signature.
    Start,
    /// At a segment's or chunk's header.
    Header,
    /// Hold this many bytes (an EXIF segment), clean them, pass them on.
    Hold(usize),
    /// Pass this many bytes on as they are.
    Skip(u64),
    /// Pass on this many zeros in place of the bytes.
    Zero(u64),
    /// Leave out this many bytes.
    Drop(u64),
    /// Pass on everything else (past the metadata, or not a format we know).
    Pass,
}

/// A filter over an image's bytes (see the module's comment).
pub struct Scrubber {
    kind: FileKind,
    step: Step,
    /// Bytes read but not yet passed on: a header, or a held segment.
    buf: Vec<u8>,
}

impl Scrubber {
    pub fn new(kind: FileKind) -> Scrubber {
        let step = match kind {
            FileKind::Jpeg | FileKind::Png | FileKind::Webp => Step::Start,
            _ => Step::Pass,
        };
        Scrubber { kind, step, buf: Vec::new() }
    }

    /// Takes the next bytes of the file; appends to `out` what may go on.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.step == Step::Pass && self.buf.is_empty() {
            out.extend_from_slice(input);
            return;
        }
        self.buf.extend_from_slice(input);
        loop {
            match self.step {
                Step::Pass => {
                    out.append(&mut self.buf);
                    return;
                }
                Step::Skip(n) | Step::Zero(n) | Step::Drop(n) => {
                    let k = (n as usize).min(self.buf.len());
                    match self.step {
                        Step::Skip(_) => out.extend_from_slice(&self.buf[..k]),
                        Step::Zero(_) => out.resize(out.len() + k, 0),
                        _ => {}
                    }
                    self.buf.drain(..k);
                    let left = n - k as u64;
                    self.step = match self.step {
                        _ if left == 0 => Step::Header,
                        Step::Skip(_) => Step::Skip(left),
                        Step::Zero(_) => Step::Zero(left),
                        _ => Step::Drop(left),
                    };
                    if left > 0 {
                        return;
                    }
                }
                Step::Hold(n) => {
                    if self.buf.len() < n {
                        return;
                    }
                    let mut held: Vec<u8> = self.buf.drain(..n).collect();
                    self.clean(&mut held);
                    out.extend_from_slice(&held);
                    self.step = Step::Header;
                }
                Step::Start | Step::Header => match self.next(out) {
                    Some(step) => self.step = step,
                    None => return,
                },
            }
        }
    }

    /// The file has ended: whatever is held goes on as it is (a file cut
    /// short inside its EXIF block is zeroed from the block on).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Step::Hold(_) = self.step {
            self.buf.fill(0);
        }
        out.append(&mut self.buf);
        self.step = Step::Pass;
    }

    /// Reads a signature or header from `buf`; `None`: more bytes needed.
    fn next(&mut self, out: &mut Vec<u8>) -> Option<Step> {
        let b = &self.buf;
        let start = self.step == Step::Start;
        Some(match self.kind {
            FileKind::Jpeg if start => {
                if b.len() < 2 {
                    return None;
                }
                if b[..2] == [0xFF, 0xD8] { Step::Skip(2) } else { Step::Pass }
            }
            FileKind::Jpeg => {
                if b.len() < 2 {
                    return None;
                }
                match (b[0], b[1]) {
                    (0xFF, 0xFF) => Step::Skip(1), // a fill byte
                    (0xFF, 0x01 | 0xD0..=0xD8) => Step::Skip(2),
                    (0xFF, 0xDA | 0xD9) => Step::Pass, // the image data begins, or ends
                    (0xFF, marker) => {
                        if b.len() < 4 {
                            return None;
                        }
                        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
                        if len < 2 {
                            Step::Pass
                        } else if marker == 0xE1 {
                            Step::Hold(2 + len)
                        } else {
                            Step::Skip(2 + len as u64)
                        }
                    }
                    _ => Step::Pass,
                }
            }
            FileKind::Png if start => {
                if b.len() < 8 {
                    return None;
                }
                if b[..8] == *b"\x89PNG\r\n\x1a\n" { Step::Skip(8) } else { Step::Pass }
            }
            FileKind::Png => {
                if b.len() < 8 {
                    return None;
                }
                let len = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                match &b[4..8] {
                    b"eXIf" if len as usize <= HELD => Step::Hold(12 + len as usize),
                    b"eXIf" => Step::Drop(12 + len),
                    b"IEND" => Step::Pass,
                    _ => Step::Skip(12 + len),
                }
            }
            FileKind::Webp if start => {
                if b.len() < 12 {
                    return None;
                }
                if &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" { Step::Skip(12) } else { Step::Pass }
            }
            FileKind::Webp => {
                if b.len() < 8 {
                    return None;
                }
                let size = u64::from(u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
                let padded = size + (size & 1);
                if &b[..4] != b"EXIF" {
                    Step::Skip(8 + padded)
                } else if padded as usize <= HELD {
                    Step::Hold(8 + padded as usize)
                } else {
                    // Too large to hold: its header goes on, its bytes become zeros.
                    out.extend(self.buf.drain(..8));
                    Step::Zero(padded)
                }
            }
            _ => Step::Pass,
        })
    }

    /// Cleans a held EXIF segment or chunk, in place.
    fn clean(&self, held: &mut [u8]) {
        match self.kind {
            // FF E1, the length, then "Exif\0\0" and the TIFF block.
            FileKind::Jpeg if held.len() > 10 && &held[4..10] == b"Exif\0\0" => {
                blank_or_zero(&mut held[10..])
            }
            // The length, "eXIf", the TIFF block, and a CRC of the type and data.
            FileKind::Png => {
                let end = held.len() - 4;
                blank_or_zero(&mut held[8..end]);
                let crc = crc32fast::hash(&held[4..end]);
                held[end..].copy_from_slice(&crc.to_be_bytes());
            }
            // "EXIF", the size, the TIFF block (some writers put "Exif\0\0" first).
            FileKind::Webp => {
                let data = &mut held[8..];
                let data = if data.starts_with(b"Exif\0\0") { &mut data[6..] } else { data };
                blank_or_zero(data);
            }
            _ => {}
        }
    }
}

fn blank_or_zero(tiff: &mut [u8]) {
    if blank_gps(tiff).is_none() {
        tiff.fill(0);
    }
}

/// Blanks the GPS directory of a TIFF (EXIF) block: each of its fields and
/// the values they point to become zeros, and its count 0. `None`: the block
/// could not be read.
fn blank_gps(tiff: &mut [u8]) -> Option<()> {
    let big = match tiff.get(..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |t: &[u8], at: usize| -> Option<usize> {
        let b: [u8; 2] = t.get(at..at + 2)?.try_into().ok()?;
        Some(usize::from(if big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }))
    };
    let u32_at = |t: &[u8], at: usize| -> Option<usize> {
        let b: [u8; 4] = t.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }).ok()
    };
    if u16_at(tiff, 2)? != 42 {
        return None;
    }
    let ifd0 = u32_at(tiff, 4)?;
    let fields = u16_at(tiff, ifd0)?;
    let mut gps = None;
    for i in 0..fields {
        let entry = ifd0 + 2 + 12 * i;
        if u16_at(tiff, entry)? == 0x8825 {
            gps = Some(u32_at(tiff, entry + 8)?);
        }
    }
    let Some(gps) = gps else { return Some(()) };
    let count = u16_at(tiff, gps)?;
    for i in 0..count {
        let entry = gps + 2 + 12 * i;
        let kind = u16_at(tiff, entry + 2)?;
        let n = u32_at(tiff, entry + 4)?;
        let size = match kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 => 8,
            _ => return None,
        };
        let bytes = n.checked_mul(size)?;
        if bytes > 4 {
            let at = u32_at(tiff, entry + 8)?;
            tiff.get_mut(at..at.checked_add(bytes)?)?.fill(0);
        }
        tiff.get_mut(entry..entry + 12)?.fill(0);
    }
    tiff.get_mut(gps..gps + 2)?.fill(0);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF block: IFD0 with an orientation and a GPS
    /// pointer; the GPS directory with a latitude (three rationals, stored
    /// beyond the entry) and its reference letter.
    fn tiff_with_gps() -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        // IFD0 at 8: two fields, then next-IFD 0.
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]); // Orientation = 6
        t.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]); // GPS IFD at 38
        t.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(t.len(), 38);
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]); // GPSLatitudeRef "N"
        t.extend_from_slice(&[0x02, 0x00, 5, 0, 3, 0, 0, 0, 68, 0, 0, 0]); // GPSLatitude at 68
        t.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(t.len(), 68);
        for v in [48u32, 1, 51, 1, 30, 1] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        t
    }

    #[test]
    fn the_gps_directory_is_blanked_and_the_rest_kept() {
        let mut t = tiff_with_gps();
        let before = t.clone();
        blank_gps(&mut t).unwrap();
        assert_eq!(t.len(), before.len());
        assert_eq!(t[..38], before[..38], "IFD0 (the orientation) untouched");
        assert!(t[38..].iter().all(|b| *b == 0), "every GPS byte is zero");
    }

    #[test]
    fn an_unreadable_block_is_zeroed_whole() {
        let mut t = tiff_with_gps();
        t[38] = 0xFF; // the GPS directory claims 255 fields
        blank_or_zero(&mut t);
        assert!(t.iter().all(|b| *b == 0));
    }

    fn jpeg_with(tiff: &[u8]) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2];
        let len = (2 + 6 + tiff.len()) as u16;
        j.extend_from_slice(&[0xFF, 0xE1]);
        j.extend_from_slice(&len.to_be_bytes());
        j.extend_from_slice(b"Exif\0\0");
        j.extend_from_slice(tiff);
        j.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xE1, 9, 9, 9, 0xFF, 0xD9]);
        j
    }

    /// Feeds `bytes` in pieces of `piece` bytes.
    fn scrub(kind: FileKind, bytes: &[u8], piece: usize) -> Vec<u8> {
        let mut scrubber = Scrubber::new(kind);
        let mut out = Vec::new();
        for chunk in bytes.chunks(piece) {
            scrubber.feed(chunk, &mut out);
        }
        scrubber.finish(&mut out);
        out
    }

    #[test]
    fn a_jpeg_loses_its_location_whatever_the_pieces() {
        let jpeg = jpeg_with(&tiff_with_gps());
        for piece in [1, 3, 7, 64, 4096] {
            let out = scrub(FileKind::Jpeg, &jpeg, piece);
            assert_eq!(out.len(), jpeg.len());
            let tiff_at = 8 + 10;
            assert_eq!(out[..tiff_at + 38], jpeg[..tiff_at + 38], "piece {piece}");
            assert!(out[tiff_at + 38..tiff_at + 92].iter().all(|b| *b == 0));
            assert_eq!(out[tiff_at + 92..], jpeg[tiff_at + 92..], "the image data as it was");
        }
    }

    #[test]
    fn a_png_exif_chunk_is_cleaned_and_its_crc_made_true() {
        let tiff = tiff_with_gps();
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&(tiff.len() as u32).to_be_bytes());
        png.extend_from_slice(b"eXIf");
        png.extend_from_slice(&tiff);
        png.extend_from_slice(&crc32fast::hash(&[b"eXIf".as_slice(), &tiff].concat()).to_be_bytes());
        png.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
        for piece in [1, 5, 4096] {
            let out = scrub(FileKind::Png, &png, piece);
            assert_eq!(out.len(), png.len());
            let data = &out[16..16 + tiff.len()];
            assert!(data[38..].iter().all(|b| *b == 0));
            let crc = crc32fast::hash(&out[12..16 + tiff.len()]).to_be_bytes();
            assert_eq!(out[16 + tiff.len()..20 + tiff.len()], crc);
        }
    }

    #[test]
    fn a_webp_exif_chunk_is_cleaned_in_place() {
        let tiff = tiff_with_gps();
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x08\0\0\0\0\0\0\0\0\0".to_vec();
        webp.extend_from_slice(b"EXIF");
        webp.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
        webp.extend_from_slice(&tiff);
        let size = (webp.len() - 8) as u32;
        webp[4..8].copy_from_slice(&size.to_le_bytes());
        for piece in [1, 9, 4096] {
            let out = scrub(FileKind::Webp, &webp, piece);
            assert_eq!(out.len(), webp.len());
            assert!(out[38 + 38..].iter().all(|b| *b == 0));
            assert_eq!(out[..38 + 38], webp[..38 + 38]);
        }
    }

    #[test]
    fn other_files_pass_as_they_are() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(scrub(FileKind::Other, &bytes, 100), bytes);
        assert_eq!(scrub(FileKind::Gif, &bytes, 100), bytes);
        let broken = [0xFF, 0xD8, 0x00, 0x01, 0x02];
        assert_eq!(scrub(FileKind::Jpeg, &broken, 1), broken);
    }
}
