//! Catalog rules that need no storage: product identifiers and their check digits (R4),
//! the language of product text (R5), near-identical titles (R3) and the search terms
//! (stemmed words) that both storage backends index.

use crate::error::DomainError;
use crate::model::Identifier;

/// Checks a product identifier (R4): `kind` is `UPC` (12 digits), `EAN` (13), `GTIN`
/// (14), `ISBN` (10 or 13), without regard to case; the value must have the right
/// length and check digit. `INVALID_IDENTIFIER` otherwise, with a message such as
/// "The UPC 012345678906 has a wrong check digit.".
pub fn parse_identifier(kind: &str, value: &str) -> Result<Identifier, DomainError> {
    let _ = (kind, value);
    todo!("catalog helper")
}

/// The language part of a tag: `es-MX`, `es_MX`, `ES` give `es`. None when it is not
/// two ASCII letters.
pub fn language_part(tag: &str) -> Option<String> {
    let _ = tag;
    todo!("catalog helper")
}

/// R5: refuses (`LANGUAGE_MISMATCH`, field `title` or `description`) a text that is
/// clearly in another language than `declared` (a two-letter code). Short or ambiguous
/// text is accepted.
pub fn check_language(declared: &str, title: &str, description: &str) -> Result<(), DomainError> {
    let _ = (declared, title, description);
    todo!("catalog helper")
}

/// R3: the form in which two titles are "nearly the same" when equal.
pub fn normalize_title(title: &str) -> String {
    let _ = title;
    todo!("catalog helper")
}

/// The words of `text` as indexed and searched: lower case, split on non-alphanumerics,
/// stemmed for `language` (`en`, `fr`, `es`; other languages unstemmed).
pub fn stem_terms(text: &str, language: &str) -> Vec<String> {
    let _ = (text, language);
    todo!("catalog helper")
}
