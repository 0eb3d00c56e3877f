//! Real image files made in the tests: photos in every format served
//! inline, one with the camera's location in its EXIF (JPEG, PNG, WebP), a
//! corrupt one, and one of 50 megapixels; and uploads of them.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::multipart::{Form, Part};

/// A `width` × `height` picture with something in it (a gradient), so
/// thumbnails and decodes can be compared.
pub fn picture(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width.max(1)) as u8, (y * 255 / height.max(1)) as u8, 128])
    }))
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(&picture(width, height), ImageFormat::Png)
}

/// A little-endian EXIF (TIFF) block: the camera's make, the orientation,
/// and a GPS directory with latitude and longitude (values stored beyond
/// their entries, as real cameras write them).
pub fn exif_with_gps() -> Vec<u8> {
    let mut t = b"II*\0\x08\0\0\0".to_vec();
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    };
    // IFD0 at 8: Make (at 50), Orientation 1, GPS pointer (at 58).
    t.extend_from_slice(&3u16.to_le_bytes());
    entry(&mut t, 0x010F, 2, 8, 50);
    entry(&mut t, 0x0112, 3, 1, 1);
    entry(&mut t, 0x8825, 4, 1, 58);
    t.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(t.len(), 50);
    t.extend_from_slice(b"Camera\0\0");
    // The GPS directory at 58: four fields, values from 112.
    t.extend_from_slice(&4u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, 112);
    entry(&mut t, 0x0003, 2, 2, u32::from_le_bytes(*b"E\0\0\0"));
    entry(&mut t, 0x0004, 5, 3, 136);
    t.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(t.len(), 112);
    for v in [48u32, 1, 51, 1, 2950, 100, 2, 1, 21, 1, 700, 100] {
        t.extend_from_slice(&v.to_le_bytes());
    }
    t
}

/// A JPEG photo with the EXIF block (APP1) right after its start.
pub fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    let plain = encode(&picture(width, height), ImageFormat::Jpeg);
    let exif = exif_with_gps();
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&((2 + 6 + exif.len()) as u16).to_be_bytes());
    segment.extend_from_slice(b"Exif\0\0");
    segment.extend_from_slice(&exif);
    [&plain[..2], &segment, &plain[2..]].concat()
}

/// A PNG with an `eXIf` chunk after its header.
pub fn png_with_gps(width: u32, height: u32) -> Vec<u8> {
    let plain = png(width, height);
    let exif = exif_with_gps();
    let mut chunk = (exif.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"eXIf");
    chunk.extend_from_slice(&exif);
    chunk.extend_from_slice(&crc32fast::hash(&chunk[4..]).to_be_bytes());
    // The signature (8) and the IHDR chunk (25) come first.
    [&plain[..33], &chunk, &plain[33..]].concat()
}

/// A lossless WebP in the extended format (VP8X) with an `EXIF` chunk.
pub fn webp_with_gps(width: u32, height: u32) -> Vec<u8> {
    let plain = encode(&picture(width, height), ImageFormat::WebP);
    assert_eq!(&plain[12..16], b"VP8L", "the encoder writes the simple format");
    let image_chunk = &plain[12..];
    let mut vp8x = b"VP8X\x0a\0\0\0".to_vec();
    vp8x.extend_from_slice(&[0x08, 0, 0, 0]); // flags: EXIF
    vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let exif = exif_with_gps();
    let mut exif_chunk = b"EXIF".to_vec();
    exif_chunk.extend_from_slice(&(exif.len() as u32).to_le_bytes());
    exif_chunk.extend_from_slice(&exif);
    if exif.len() % 2 == 1 {
        exif_chunk.push(0);
    }
    let body = [b"WEBP".as_slice(), &vp8x, image_chunk, &exif_chunk].concat();
    [b"RIFF".as_slice(), &(body.len() as u32).to_le_bytes(), &body].concat()
}

/// The GPS fields an image's EXIF still has (none, once cleaned), and whether
/// the rest (the camera's make) is still there.
pub fn exif_facts(bytes: &[u8]) -> (usize, bool) {
    let exif =
        exif::Reader::new().read_from_container(&mut Cursor::new(bytes)).expect("the EXIF is still readable");
    let gps = exif
        .fields()
        .filter(|f| f.ifd_num == exif::In::PRIMARY && f.tag.context() == exif::Context::Gps)
        .count();
    let make = exif.get_field(exif::Tag::Make, exif::In::PRIMARY).is_some();
    (gps, make)
}

/// A 50-megapixel PNG (10,000 × 5,000, grey): small on disk, written row by
/// row so the test never holds its pixels.
pub fn png_50_megapixels() -> Vec<u8> {
    use std::io::{Read, Seek};
    // The stream writer wants a writer of its own: a temporary file, read back.
    let file = tempfile::tempfile().unwrap();
    let mut back = file.try_clone().unwrap();
    let mut encoder = png::Encoder::new(file, 10_000, 5_000);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap().into_stream_writer().unwrap();
    let row = vec![0u8; 10_000];
    for _ in 0..5_000 {
        std::io::Write::write_all(&mut writer, &row).unwrap();
    }
    writer.finish().unwrap();
    let mut out = Vec::new();
    back.rewind().unwrap();
    back.read_to_end(&mut out).unwrap();
    out
}

/// A form with one file, named and typed as the browser would say.
pub fn form(name: &str, claimed_type: &str, bytes: Vec<u8>) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()).mime_str(claimed_type).unwrap())
}

/// Uploads a file to room `room`; returns the status and the JSON answer.
pub async fn upload(
    client: &reqwest::Client,
    base: &str,
    room: i64,
    form: Form,
) -> (reqwest::StatusCode, serde_json::Value) {
    let res = client.post(format!("{base}/api/rooms/{room}/files")).multipart(form).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Begins an upload to the lobby by hand, on a connection of its own: the
/// request's head, declaring a body of `length` bytes, and (with a name) the
/// file part's head. The test sends the rest, or not.
pub async fn begin_raw_upload(
    base: &str,
    cookie: &str,
    length: usize,
    file_name: Option<&str>,
) -> tokio::net::TcpStream {
    let host = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut head = format!(
        "POST /api/rooms/1/files HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {length}\r\n\r\n"
    );
    if let Some(name) = file_name {
        head.push_str(&format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
        ));
    }
    tokio::io::AsyncWriteExt::write_all(&mut tcp, head.as_bytes()).await.unwrap();
    tcp
}
