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
