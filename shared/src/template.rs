//! Message templates (SPEC §3.2).
//!
//! Rules:
//! - A template is admin-defined text with parameters in angle brackets, e.g.
//!   `Hallo <customer_name>, hier ist <agent_name>.`
//! - Known parameters: [`PARAMETERS`]. A template naming any other parameter is
//!   refused with the parameter's name; so is an unclosed `<`, a stray `>`, or an
//!   empty `<>`.
//! - Rendering fills every parameter from the conversation's [`TemplateContext`];
//!   the result holds no `<` or `>` (values containing them have them removed),
//!   so it can go straight into the agent's compose box.

use serde::{Deserialize, Serialize};

/// The parameters a template may use.
pub const PARAMETERS: &[&str] = &["customer_name", "agent_name", "queue_name", "date", "time"];

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `<name>` where name is not known.
    #[error("the template uses the unknown parameter <{0}>")]
    UnknownParameter(String),
    /// `<` without a closing `>`.
    #[error("the template has an unclosed < at character {0}")]
    Unclosed(usize),
    /// `>` without an opening `<`.
    #[error("the template has a > without a matching < at character {0}")]
    StrayClose(usize),
    /// `<>`.
    #[error("the template has an empty parameter <> at character {0}")]
    EmptyParameter(usize),
}

impl TemplateError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TemplateError::UnknownParameter(_) => "template_unknown_parameter",
            TemplateError::Unclosed(_) => "template_unclosed_parameter",
            TemplateError::StrayClose(_) => "template_stray_close",
            TemplateError::EmptyParameter(_) => "template_empty_parameter",
        }
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A known parameter.
    Param(String),
}

/// A parsed, valid template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Values that fill a template's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TemplateContext {
    pub customer_name: String,
    pub agent_name: String,
    pub queue_name: String,
    /// Date as the agent reads it, e.g. `2026-11-26`.
    pub date: String,
    /// Time as the agent reads it, e.g. `14:05`.
    pub time: String,
}

impl Template {
    /// Parses `source`, refusing unknown parameters and unbalanced brackets.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '<' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, d) in chars.by_ref() {
                        if d == '>' {
                            closed = true;
                            break;
                        }
                        if d == '<' {
                            return Err(TemplateError::Unclosed(i + 1));
                        }
                        name.push(d);
                    }
                    if !closed {
                        return Err(TemplateError::Unclosed(i + 1));
                    }
                    let name = name.trim().to_owned();
                    if name.is_empty() {
                        return Err(TemplateError::EmptyParameter(i + 1));
                    }
                    if !PARAMETERS.contains(&name.as_str()) {
                        return Err(TemplateError::UnknownParameter(name));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Param(name));
                }
                '>' => return Err(TemplateError::StrayClose(i + 1)),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self { pieces })
    }

    /// The parameters used, in order of appearance.
    pub fn parameters(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Param(n) => Some(n.as_str()),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// Fills the parameters. The result contains no `<` or `>`.
    pub fn render(&self, ctx: &TemplateContext) -> String {
        self.render_reporting(ctx).0
    }

    /// [`Self::render`], also naming the parameters whose values lost a `<` or `>`
    /// (so the agent is told; text is never changed silently).
    pub fn render_reporting(&self, ctx: &TemplateContext) -> (String, Vec<String>) {
        let mut stripped: Vec<String> = vec![];
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Param(n) => {
                    let v = match n.as_str() {
                        "customer_name" => &ctx.customer_name,
                        "agent_name" => &ctx.agent_name,
                        "queue_name" => &ctx.queue_name,
                        "date" => &ctx.date,
                        _ => &ctx.time,
                    };
                    if v.contains(['<', '>']) && !stripped.contains(n) {
                        stripped.push(n.clone());
                    }
                    out.extend(v.chars().filter(|c| *c != '<' && *c != '>'));
                }
            }
        }
        (out, stripped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TemplateContext {
        TemplateContext {
            customer_name: "Eva".into(),
            agent_name: "Anna".into(),
            queue_name: "Support".into(),
            date: "2026-11-26".into(),
            time: "14:05".into(),
        }
    }

    #[test]
    fn renders_known_parameters() {
        let t =
            Template::parse("Hallo <customer_name>, hier ist <agent_name> (<queue_name>, <date>).")
                .unwrap();
        assert_eq!(
            t.render(&ctx()),
            "Hallo Eva, hier ist Anna (Support, 2026-11-26)."
        );
        assert_eq!(
            t.parameters(),
            vec!["customer_name", "agent_name", "queue_name", "date"]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            Template::parse("Hi <nickname>").unwrap_err(),
            TemplateError::UnknownParameter("nickname".into())
        );
        assert!(Template::parse("Hi <nickname>")
            .unwrap_err()
            .to_string()
            .contains("<nickname>"));
        assert_eq!(
            Template::parse("Hi <agent_name").unwrap_err(),
            TemplateError::Unclosed(4)
        );
        assert_eq!(
            Template::parse("a > b").unwrap_err(),
            TemplateError::StrayClose(3)
        );
        assert_eq!(
            Template::parse("a <> b").unwrap_err(),
            TemplateError::EmptyParameter(3)
        );
        assert_eq!(
            Template::parse("a <<date> b").unwrap_err(),
            TemplateError::Unclosed(3)
        );
    }

    #[test]
    fn rendered_text_has_no_reserved_chars() {
        let mut c = ctx();
        c.customer_name = "<b>Eve</b>".into();
        let (out, stripped) = Template::parse("Hi <customer_name>")
            .unwrap()
            .render_reporting(&c);
        assert_eq!(stripped, vec!["customer_name".to_string()]);
        assert_eq!(out, "Hi bEve/b");
        assert!(!crate::text::has_reserved(&out));
    }
}
