//! Attachments: images and PDFs sent in a chat, stored in R2 by the conversation.
//!
//! Rules:
//! - At most [`MAX_BYTES`] (10 MB), at least one byte.
//! - The type is sniffed from the first bytes, never taken from the name or a header:
//!   PNG, JPEG, GIF, WebP and PDF ([`sniff`]); anything else (SVG and HTML included)
//!   is refused.
//! - A file name is 1 to [`MAX_NAME_CHARS`] characters without control characters,
//!   `/`, `\`, `<` or `>` ([`check_name`]); it is refused, not repaired.
//! - The message that carries an attachment has the file name as its text.

use serde::{Deserialize, Serialize};

/// Largest attachment.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// Longest file name.
pub const MAX_NAME_CHARS: usize = 200;

/// A stored attachment, as messages carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Unguessable id; the object's key ends with it.
    pub id: String,
    pub name: String,
    /// The sniffed type, e.g. `image/png`.
    pub content_type: String,
    pub size: u64,
}

impl Attachment {
    /// Whether UIs may show it as an image.
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

/// Why an attachment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error("the file is empty")]
    Empty,
    #[error("the file has {0} bytes; at most 10 MB (10,485,760 bytes) are allowed")]
    TooLarge(u64),
    #[error("only PNG, JPEG, GIF, WebP images and PDF documents can be sent (this file is none of them)")]
    Type,
    #[error("the file name must have 1 to 200 characters and no / \\ < > or control characters")]
    Name,
}

impl AttachmentError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AttachmentError::Empty => "attachment_empty",
            AttachmentError::TooLarge(_) => "attachment_too_large",
            AttachmentError::Type => "unsupported_type",
            AttachmentError::Name => "invalid_file_name",
        }
    }
    /// The HTTP status it maps to.
    pub fn status(&self) -> u16 {
        match self {
            AttachmentError::TooLarge(_) => 413,
            AttachmentError::Type => 415,
            _ => 400,
        }
    }
}

/// The type of a file from its first bytes.
pub fn sniff(bytes: &[u8]) -> Result<&'static str, AttachmentError> {
    let starts = |p: &[u8]| bytes.starts_with(p);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Ok("image/png")
    } else if starts(b"\xff\xd8\xff") {
        Ok("image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Ok("image/gif")
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Ok("image/webp")
    } else if starts(b"%PDF-") {
        Ok("application/pdf")
    } else {
        Err(AttachmentError::Type)
    }
}

/// Checks a file name (see module docs).
pub fn check_name(name: &str) -> Result<(), AttachmentError> {
    let n = name.chars().count();
    let bad = |c: char| c.is_control() || matches!(c, '/' | '\\' | '<' | '>');
    if n == 0 || n > MAX_NAME_CHARS || name.chars().any(bad) || name.trim().is_empty() {
        return Err(AttachmentError::Name);
    }
    Ok(())
}

/// Largest agent picture (shown in the widget's header), in bytes.
pub const MAX_PICTURE_BYTES: usize = 256 * 1024;

/// Why an agent picture was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PictureError {
    #[error("the picture is empty")]
    Empty,
    #[error("the picture has {0} bytes; at most 256 KiB (262,144 bytes) are allowed")]
    TooLarge(u64),
    #[error("a picture must be a PNG, JPEG, WebP or GIF image (this file is none of them)")]
    Type,
}

impl PictureError {
    /// The error code of the API.
    pub fn code(&self) -> &'static str {
        match self {
            PictureError::Empty => "picture_empty",
            PictureError::TooLarge(_) => "picture_too_large",
            PictureError::Type => "picture_type",
        }
    }
    /// The HTTP status it maps to.
    pub fn status(&self) -> u16 {
        match self {
            PictureError::Empty => 400,
            PictureError::TooLarge(_) => 413,
            PictureError::Type => 415,
        }
    }
}

/// Checks an agent picture: an image (PNG, JPEG, WebP or GIF by its bytes), not
/// empty, at most [`MAX_PICTURE_BYTES`]; gives the sniffed type.
pub fn check_picture(bytes: &[u8]) -> Result<&'static str, PictureError> {
    if bytes.is_empty() {
        return Err(PictureError::Empty);
    }
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(PictureError::TooLarge(bytes.len() as u64));
    }
    match sniff(bytes) {
        Ok("application/pdf") | Err(_) => Err(PictureError::Type),
        Ok(image) => Ok(image),
    }
}

/// Whether `id` is a picture id: 32 lowercase hex digits (the start of the picture's
/// SHA-256, so the same picture gets the same id).
pub fn is_picture_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where an agent picture is served (the widget's header, the admin screen).
pub fn picture_path(tenant: &str, id: &str) -> String {
    format!("/api/v1/avatars/{tenant}/{id}")
}

/// Checks size, type and name; gives the sniffed type.
pub fn check(name: &str, bytes: &[u8]) -> Result<&'static str, AttachmentError> {
    check_name(name)?;
    if bytes.is_empty() {
        return Err(AttachmentError::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(AttachmentError::TooLarge(bytes.len() as u64));
    }
    sniff(bytes)
}

/// `Content-Disposition` for a download: RFC 6266 with an ASCII fallback.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_small_images() {
        let png = b"\x89PNG\r\n\x1a\n rest";
        assert_eq!(check_picture(png), Ok("image/png"));
        assert_eq!(check_picture(b"%PDF-1.7"), Err(PictureError::Type));
        assert_eq!(check_picture(b"<svg/>"), Err(PictureError::Type));
        assert_eq!(check_picture(b""), Err(PictureError::Empty));
        let mut big = png.to_vec();
        big.resize(MAX_PICTURE_BYTES + 1, 0);
        assert!(matches!(
            check_picture(&big),
            Err(PictureError::TooLarge(_))
        ));
        assert!(is_picture_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "0123456789ABCDEF0123456789abcdef",
            "../../etc/passwd",
            "0123456789abcdef0123456789abcde",
        ] {
            assert!(!is_picture_id(bad), "{bad}");
        }
    }

    #[test]
    fn types_are_sniffed() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Ok("image/png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Ok("image/jpeg"));
        assert_eq!(sniff(b"GIF89a.."), Ok("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Ok("image/webp"));
        assert_eq!(sniff(b"%PDF-1.7"), Ok("application/pdf"));
        assert_eq!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Err(AttachmentError::Type)
        );
        assert_eq!(
            sniff(b"<!doctype html><script>"),
            Err(AttachmentError::Type)
        );
    }

    #[test]
    fn names_and_sizes() {
        assert!(check_name("Rechnung März.pdf").is_ok());
        for bad in [
            "",
            " ",
            "../etc/passwd",
            "a\\b",
            "a<b>.png",
            "a\nb",
            &"x".repeat(201),
        ] {
            assert_eq!(check_name(bad), Err(AttachmentError::Name), "{bad:?}");
        }
        assert_eq!(check("a.png", b""), Err(AttachmentError::Empty));
        let big = vec![0u8; MAX_BYTES + 1];
        assert_eq!(check("a.png", &big).unwrap_err().status(), 413);
        assert_eq!(check("a.png", b"<html>").unwrap_err().status(), 415);
    }

    #[test]
    fn disposition_is_safe() {
        assert_eq!(
            content_disposition("Rechnung März.pdf"),
            "attachment; filename=\"Rechnung M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
        );
        assert!(!content_disposition("a\";b").contains("\";b"));
    }
}
