//! Catalog rules that need no storage: product identifiers and their check digits (R4),
//! the language of product text (R5), near-identical titles (R3) and the search terms
//! (stemmed words) that both storage backends index.

mod identifier;
mod language;
mod text;

use crate::error::DomainError;
use crate::model::Identifier;

/// Checks a product identifier (R4): `kind` is `UPC` (12 digits), `EAN` (13), `GTIN`
/// (14), `ISBN` (10 or 13), without regard to case; the value must have the right
/// length and check digit. `INVALID_IDENTIFIER` otherwise, with a message such as
/// "The UPC 012345678906 has a wrong check digit.".
///
/// Kind and value are trimmed; the kind is returned upper case. The value must be ASCII
/// digits only (no spaces or hyphens), leading zeros kept. UPC, EAN, GTIN and 13-digit
/// ISBNs carry the GS1 mod-10 check digit; a 13-digit ISBN starts with 978 or 979. A
/// 10-digit ISBN carries the mod-11 check character, which may be `X` (given as `X` or
/// `x`, returned as `X`). An unknown kind is `INVALID_IDENTIFIER` too. The error's
/// field is `identifiers`.
pub fn parse_identifier(kind: &str, value: &str) -> Result<Identifier, DomainError> {
    identifier::parse_identifier(kind, value)
}

/// The kind a bare code would be by its length: 12 digits `UPC`, 13 `EAN`, 14 `GTIN`,
/// 10 `ISBN` (the last may be `X`). None for anything else. Only the length and
/// characters are looked at, not the check digit: pass the result to
/// [`parse_identifier`].
pub fn identifier_kind_for_digits(value: &str) -> Option<&'static str> {
    identifier::identifier_kind_for_digits(value)
}

/// `digits` (a GTIN, UPC or EAN without its last digit) with its GS1 check digit
/// appended, as [`parse_identifier`] checks it. None unless `digits` is all ASCII digits.
pub fn with_gs1_check_digit(digits: &str) -> Option<String> {
    let body: Vec<u32> = digits
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    Some(format!("{digits}{}", identifier::gs1_check_digit(&body)))
}

/// The language part of a tag: `es-MX`, `es_MX`, `ES` give `es`. None when it is not
/// two ASCII letters.
///
/// Surrounding spaces are ignored. After a `-` or `_` may come further subtags of ASCII
/// letters and digits (`es-419`, `zh-Hant-TW`); an empty or other subtag gives None.
pub fn language_part(tag: &str) -> Option<String> {
    language::language_part(tag)
}

/// R5: refuses (`LANGUAGE_MISMATCH`, field `title` or `description`) a text that is
/// clearly in another language than `declared` (a two-letter code). Short or ambiguous
/// text is accepted.
///
/// Only `en`, `fr` and `es` (the language part of `declared`) are judged; any other
/// declared language is accepted as is. The title, then the description when it is not
/// blank, are judged each on its own: only the words made of letters count (words with
/// digits such as `S24` or `256GB`, and single letters, are left out), and a text with
/// fewer than 4 such words or fewer than 15 letters in them is accepted. Otherwise the
/// first 200 such words are given to lingua (English, French and Spanish models), and
/// the text is refused only when lingua's most likely language is not the declared
/// one, has a confidence of at least 0.8, and the declared language's confidence is
/// below 0.1. Text in a script none of the three uses is accepted.
pub fn check_language(declared: &str, title: &str, description: &str) -> Result<(), DomainError> {
    language::check_language(declared, title, description)
}

/// R3: the form in which two titles are "nearly the same" when equal.
///
/// The title is lower-cased (Unicode), Latin accents are folded (`é`→`e`, `ñ`→`n`,
/// `ü`→`u`, `ç`→`c`, `ß`→`ss`, `æ`→`ae`, `œ`→`oe`, combining marks dropped). It is
/// then read as runs of letters and runs of digits, everything else being dropped; a
/// run of letters that directly follows a run of digits (with or without spaces or
/// punctuation between them) and is a unit spelling takes its short form:
/// millilitre(s)/milliliter(s)/mls → `ml`; centilitre(s)/centiliter(s)/cls → `cl`;
/// litre(s)/liter(s)/lt/ltr(s) → `l`; gram(s)/gramme(s)/gramo(s)/gr(s) → `g`;
/// kilogram(s)/kilogramme(s)/kilogramo(s)/kgs → `kg`; milligram(s)/milligramme(s)/mgs
/// → `mg`; ounce(s)/ozs → `oz`; pound(s)/lbs → `lb`; inch(es) → `in`;
/// millimetre(s)/millimeter(s) → `mm`; centimetre(s)/centimeter(s) → `cm`;
/// pack(s)/pk(s) → `pk`. The runs are joined with nothing between them. So
/// "Mug 350 ml", "mug 350ML", "Mug, 350 millilitres" and "MUG-350ml" all give
/// `mug350ml`, while "Backpack" and "Pack of 4" keep their words.
pub fn normalize_title(title: &str) -> String {
    text::normalize_title(title)
}

/// R3: the form in which two brands are the same when equal: lower case (Unicode),
/// Latin accents folded as in [`normalize_title`], and only letters and digits kept, so
/// `ACME inc.`, `Acme Inc` and `acme-inc` all give `acmeinc`, and `Nestlé` is `nestle`.
pub fn normalize_brand(brand: &str) -> String {
    text::fold_accents(&brand.to_lowercase())
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The words of `text` as indexed and searched: lower case, split on non-alphanumerics,
/// stemmed for `language` (`en`, `fr`, `es`; other languages unstemmed).
///
/// The language part of `language` picks the Snowball stemmer. Each lower-case word
/// (letters and digits; combining accents stay with their word) has its Latin accents
/// folded as in [`normalize_title`] and is then stemmed, so that a word with or without
/// its accents always gives the same term (`café`, `cafe`, `cafés` → `caf` in `es`).
/// Empty words are dropped; order and repeats are kept.
pub fn stem_terms(text: &str, language: &str) -> Vec<String> {
    text::stem_terms(text, language)
}

#[cfg(test)]
mod tests {
    use super::normalize_brand;

    #[test]
    fn a_check_digit_appended_is_one_parse_identifier_accepts() {
        assert_eq!(
            super::with_gs1_check_digit("03600029145").as_deref(),
            Some("036000291452")
        );
        for n in [0_u64, 7, 123_456_789, 99_999_999_999] {
            let upc = super::with_gs1_check_digit(&format!("{n:011}")).expect("digits");
            assert!(super::parse_identifier("UPC", &upc).is_ok(), "{upc}");
        }
        assert_eq!(super::with_gs1_check_digit("12a"), None);
    }

    #[test]
    fn brands_compare_without_case_accents_spaces_or_punctuation() {
        for b in [
            "ACME inc.",
            "Acme Inc",
            "acme-inc",
            "Ácme  Inc",
            "a.c.m.e. INC",
        ] {
            assert_eq!(normalize_brand(b), "acmeinc", "{b}");
        }
        assert_eq!(normalize_brand("Nestlé"), normalize_brand("NESTLE"));
        assert_ne!(normalize_brand("Acme"), normalize_brand("Acme Inc"));
        assert_eq!(normalize_brand("  "), "");
    }
}
