//! The browser's language and `<html lang>`.
//!
//! Rules: [`Lang`] is what both apps ship (English, German; anything else shows
//! English). The apps pick it from an explicit choice first, then from
//! [`browser_language`]; whichever they show, [`set_document_lang`] writes it to
//! `<html lang>` so screen readers and spell checkers follow. Each app keeps its own
//! texts (an extension trait on [`Lang`]).

/// The browser's preferred language tag (`navigator.language`), or `""`.
pub fn browser_language() -> String {
    web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_default()
}

/// Sets `<html lang>` to `code` (a BCP 47 tag such as `en` or `de`).
pub fn set_document_lang(code: &str) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("lang", code);
    }
}

/// A language both apps ship: English and German.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    /// Picks the language from a tag such as `de-DE` (German for any `de`, else
    /// English).
    pub fn from_tag(tag: &str) -> Self {
        if tag.to_ascii_lowercase().starts_with("de") {
            Lang::De
        } else {
            Lang::En
        }
    }

    /// The BCP 47 code, for `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The other language (the switch in the console).
    pub fn other(self) -> Self {
        match self {
            Lang::En => Lang::De,
            Lang::De => Lang::En,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn tags_pick_german_or_english() {
        assert_eq!(Lang::from_tag("de-AT"), Lang::De);
        assert_eq!(Lang::from_tag("DE"), Lang::De);
        assert_eq!(Lang::from_tag("en-GB"), Lang::En);
        assert_eq!(Lang::from_tag(""), Lang::En);
        assert_eq!(Lang::De.code(), "de");
        assert_eq!(Lang::En.other(), Lang::De);
    }
}
