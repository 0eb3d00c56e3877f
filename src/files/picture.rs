//! What an uploaded image is: its size as shown, and a thumbnail of at most
//! [`THUMBNAIL`] × [`THUMBNAIL`] pixels. Blocking work: run it off the async
//! workers. The `image` crate decodes under limits: an image whose header
//! claims more than [`MAX_PIXELS`] is not decoded at all, and no decode may
//! allocate more than [`MAX_DECODE_BYTES`]; an image that breaks either, or
//! does not decode (a decompression bomb, a corrupt file), gets no
//! thumbnail and stays a file.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, metadata::Orientation};

use crate::domain::FileKind;

/// A thumbnail fits in this many pixels each way.
pub const THUMBNAIL: u32 = 400;
/// Images with more pixels than this get no thumbnail (the contract's 40 megapixels).
pub const MAX_PIXELS: u64 = 40_000_000;
/// The most one decode may allocate: a 40-megapixel image in RGBA, and room for its thumbnail.
pub const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 4 + (64 << 20);

/// An image as examined.
#[derive(Debug, Default)]
pub struct Picture {
    /// As shown (after the EXIF orientation), when the header could be read.
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub thumbnail: Option<Thumbnail>,
}

#[derive(Debug)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub kind: FileKind,
}

/// Examines an image's bytes (see the module's comment).
pub fn examine(bytes: &[u8], kind: FileKind) -> Picture {
    let format = match kind {
        FileKind::Png => ImageFormat::Png,
        FileKind::Jpeg => ImageFormat::Jpeg,
        FileKind::Gif => ImageFormat::Gif,
        FileKind::Webp => ImageFormat::WebP,
        FileKind::Other => return Picture::default(),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let Ok(mut decoder) = reader.into_decoder() else { return Picture::default() };
    let (width, height) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (shown_width, shown_height) = if turned { (height, width) } else { (width, height) };
    let mut picture = Picture {
        width: Some(i64::from(shown_width)),
        height: Some(i64::from(shown_height)),
        thumbnail: None,
    };
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        tracing::info!(width, height, "an image too large for a thumbnail");
        return picture;
    }
    let mut image = match DynamicImage::from_decoder(decoder) {
        Ok(image) => image,
        Err(e) => {
            tracing::info!(error = %e, "an image that does not decode gets no thumbnail");
            return picture;
        }
    };
    image.apply_orientation(orientation);
    picture.thumbnail = thumbnail_of(image);
    picture
}

/// The image made to fit [`THUMBNAIL`] (a small one as it is), as PNG when
/// it has transparency, else as JPEG.
fn thumbnail_of(image: DynamicImage) -> Option<Thumbnail> {
    let small = if image.width() > THUMBNAIL || image.height() > THUMBNAIL {
        image.thumbnail(THUMBNAIL, THUMBNAIL)
    } else {
        image
    };
    let mut bytes = Cursor::new(Vec::new());
    let kind = if small.color().has_alpha() {
        small.write_to(&mut bytes, ImageFormat::Png).ok()?;
        FileKind::Png
    } else {
        let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80);
        rgb.write_with_encoder(encoder).ok()?;
        FileKind::Jpeg
    };
    Some(Thumbnail { bytes: bytes.into_inner(), kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn a_photo_gets_a_jpeg_thumbnail_within_the_bounds() {
        let photo =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(1200, 600, image::Rgb([200, 40, 40])));
        let picture = examine(&encoded(photo, ImageFormat::Png), FileKind::Png);
        assert_eq!((picture.width, picture.height), (Some(1200), Some(600)));
        let thumbnail = picture.thumbnail.unwrap();
        assert_eq!(thumbnail.kind, FileKind::Jpeg);
        let small = image::load_from_memory(&thumbnail.bytes).unwrap();
        assert_eq!((small.width(), small.height()), (400, 200));
    }

    #[test]
    fn transparency_stays_png_and_small_images_keep_their_size() {
        let icon = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(32, 16, image::Rgba([0, 0, 0, 0])));
        let picture = examine(&encoded(icon, ImageFormat::Png), FileKind::Png);
        let thumbnail = picture.thumbnail.unwrap();
        assert_eq!(thumbnail.kind, FileKind::Png);
        let small = image::load_from_memory(&thumbnail.bytes).unwrap();
        assert_eq!((small.width(), small.height()), (32, 16));
    }

    #[test]
    fn what_does_not_decode_gets_no_thumbnail() {
        let mut png = encoded(DynamicImage::new_rgb8(64, 64), ImageFormat::Png);
        let half = png.len() / 2;
        png.truncate(half);
        let picture = examine(&png, FileKind::Png);
        assert_eq!((picture.width, picture.height), (Some(64), Some(64)), "the header was read");
        assert!(picture.thumbnail.is_none());
        assert!(examine(b"\x89PNG\r\n\x1a\nnonsense", FileKind::Png).width.is_none());
    }
}
