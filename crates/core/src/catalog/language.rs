//! The language of product text (R5).

use std::sync::LazyLock;

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};

use crate::error::{DomainError, ErrorCode};

/// A text needs at least this many words made only of letters to be judged at all.
pub(super) const MIN_WORDS: usize = 4;
/// ... and at least this many letters in those words.
pub(super) const MIN_LETTERS: usize = 15;
/// The detected language must have at least this confidence ...
pub(super) const MIN_CONFIDENCE: f64 = 0.8;
/// ... and the declared language less than this one, for a text to be refused.
pub(super) const MAX_DECLARED_CONFIDENCE: f64 = 0.1;
/// Only the first words of a long text are looked at.
const MAX_WORDS: usize = 200;

/// English, French and Spanish; built on first use only.
static DETECTOR: LazyLock<LanguageDetector> = LazyLock::new(|| {
    LanguageDetectorBuilder::from_languages(&[
        Language::English,
        Language::French,
        Language::Spanish,
    ])
    .build()
});

pub(super) fn language_part(tag: &str) -> Option<String> {
    let tag = tag.trim();
    let (primary, rest) = match tag.find(['-', '_']) {
        Some(i) => (&tag[..i], Some(&tag[i + 1..])),
        None => (tag, None),
    };
    if primary.len() != 2 || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    if let Some(rest) = rest {
        // A region or script after the separator: ASCII letters and digits, maybe
        // more subtags.
        let subtags_ok = rest
            .split(['-', '_'])
            .all(|sub| !sub.is_empty() && sub.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !subtags_ok {
            return None;
        }
    }
    Some(primary.to_ascii_lowercase())
}

/// The languages judged: code, name, lingua's language. (A table rather than a match,
/// so that more lingua features enabled elsewhere in the build change nothing here.)
const JUDGED: [(&str, &str, Language); 3] = [
    ("en", "English", Language::English),
    ("fr", "French", Language::French),
    ("es", "Spanish", Language::Spanish),
];

fn lingua_language(code: &str) -> Option<Language> {
    JUDGED
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, _, language)| *language)
}

/// The name and code of a judged language.
fn describe(language: Language) -> (&'static str, &'static str) {
    JUDGED
        .iter()
        .find(|(_, _, l)| *l == language)
        .map_or(("another language", "?"), |(code, name, _)| (*name, *code))
}

/// The words of `text` made only of letters (apostrophes inside allowed: "l'eau"),
/// at most `MAX_WORDS` of them, and their number of letters. Left out, as they say
/// nothing of a language: words with digits ("S24", "256GB"), single letters, and
/// brand or model names written with a capital after the first letter ("iPhone",
/// "MacBook", "LEGO", "USB") — unless the whole text is upper case.
fn letter_words(text: &str) -> (Vec<&str>, usize) {
    let all_caps = !text.chars().any(char::is_lowercase);
    let mut words = Vec::new();
    let mut letters = 0;
    let separators = "-/,;:.!?()[]{}\"«»“”|+*&";
    for raw in text.split(|c: char| c.is_whitespace() || separators.contains(c)) {
        if words.len() >= MAX_WORDS {
            break;
        }
        let word = raw.trim_matches(|c: char| !c.is_alphabetic());
        let count = word.chars().filter(|c| c.is_alphabetic()).count();
        let only_letters = word
            .chars()
            .all(|c| c.is_alphabetic() || c == '\'' || c == '’');
        let name_like = !all_caps && word.chars().skip(1).any(char::is_uppercase);
        if count >= 2 && only_letters && !name_like {
            words.push(word);
            letters += count;
        }
    }
    (words, letters)
}

/// The language `text` is clearly written in, when it is one of `detector`'s and not
/// `declared`: None for short, ambiguous or matching text.
fn clearly_other(declared: Language, text: &str) -> Option<Language> {
    let (words, letters) = letter_words(text);
    if words.len() < MIN_WORDS || letters < MIN_LETTERS {
        return None;
    }
    let values = DETECTOR.compute_language_confidence_values(words.join(" "));
    let &(top, top_confidence) = values.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let declared_confidence = values
        .iter()
        .find(|(language, _)| *language == declared)
        .map_or(0.0, |(_, confidence)| *confidence);
    let clear = top != declared
        && top_confidence >= MIN_CONFIDENCE
        && declared_confidence < MAX_DECLARED_CONFIDENCE;
    clear.then_some(top)
}

pub(super) fn check_language(
    declared: &str,
    title: &str,
    description: &str,
) -> Result<(), DomainError> {
    let Some(code) = language_part(declared) else {
        return Ok(());
    };
    let Some(declared_language) = lingua_language(&code) else {
        return Ok(());
    };
    for (field, text) in [("title", title), ("description", description)] {
        if text.trim().is_empty() {
            continue;
        }
        if let Some(found) = clearly_other(declared_language, text) {
            let (found_name, found_code) = describe(found);
            return Err(DomainError::new(
                ErrorCode::LanguageMismatch,
                format!(
                    "The {field} reads as {found_name}, not {code} as declared; write it in \
                     {code} or declare its language ({found_code})."
                ),
            )
            .field(field));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatch(declared: &str, title: &str, description: &str) -> DomainError {
        let e = check_language(declared, title, description)
            .expect_err(&format!("{declared}: {title:?} / {description:?} accepted"));
        assert_eq!(e.code, ErrorCode::LanguageMismatch);
        e
    }

    fn accepted(declared: &str, title: &str, description: &str) {
        if let Err(e) = check_language(declared, title, description) {
            panic!("{declared}: {title:?} / {description:?} refused: {e}");
        }
    }

    #[test]
    fn language_part_of_tags() {
        assert_eq!(language_part("es-MX").as_deref(), Some("es"));
        assert_eq!(language_part("es_MX").as_deref(), Some("es"));
        assert_eq!(language_part("ES").as_deref(), Some("es"));
        assert_eq!(language_part(" fr ").as_deref(), Some("fr"));
        assert_eq!(language_part("zh-Hant-TW").as_deref(), Some("zh"));
        assert_eq!(language_part("es-419").as_deref(), Some("es"));
        for bad in [
            "e", "eng", "1x", "", " ", "es-", "es--MX", "es MX", "é", "éé", "es-🙂", "-es",
        ] {
            assert_eq!(language_part(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn clear_mismatches_are_refused() {
        let e = mismatch("en", "Taza de cerámica para café con asa grande", "");
        assert_eq!(e.field.as_deref(), Some("title"));
        assert!(
            e.message
                .starts_with("The title reads as Spanish, not en as declared"),
            "{}",
            e.message
        );
        let e = mismatch("es", "Tasse en céramique pour le café avec grande anse", "");
        assert!(e.message.contains("French"), "{}", e.message);
        mismatch("fr", "Ceramic coffee mug with a large handle", "");
        mismatch("en-US", "Taza de cerámica para café con asa grande", "");
        mismatch("en", "TAZA DE CERÁMICA PARA CAFÉ CON ASA GRANDE", "");
    }

    #[test]
    fn matching_text_is_accepted() {
        accepted("es", "Taza de cerámica para café con asa grande", "");
        accepted("es-MX", "Taza de cerámica para café con asa grande", "");
        accepted("en", "Ceramic coffee mug with a large handle", "");
        accepted("fr", "Tasse en céramique pour le café avec grande anse", "");
        accepted(
            "en",
            "Ceramic coffee mug with a large handle",
            "Dishwasher and microwave safe. Holds 350 ml of your favourite drink.",
        );
    }

    #[test]
    fn description_is_checked_separately() {
        let e = mismatch(
            "en",
            "Ceramic coffee mug with a large handle",
            "Esta taza de cerámica es ideal para tomar café todas las mañanas en casa.",
        );
        assert_eq!(e.field.as_deref(), Some("description"));
        accepted("en", "Ceramic coffee mug with a large handle", "");
        accepted("en", "Ceramic coffee mug with a large handle", "   ");
    }

    #[test]
    fn short_and_brand_titles_are_accepted_in_any_language() {
        for title in [
            "iPhone 15 Pro 256GB",
            "Samsung Galaxy S24 Ultra 256GB",
            "Nike Air Max 90",
            "Sony WH-1000XM5",
            "LEGO Star Wars 75257",
            "Apple iPhone 15 Pro Max 256GB",
            "Logitech MX Master 3S",
            "SAMSUNG GALAXY S24 ULTRA 256GB",
            "Café",
            "Mug",
            "",
            "🙂🙂🙂",
        ] {
            for declared in ["en", "fr", "es"] {
                accepted(declared, title, "");
            }
        }
    }

    #[test]
    fn other_declared_languages_are_not_judged() {
        accepted("de", "Taza de cerámica para café con asa grande", "");
        accepted("pt-BR", "Ceramic coffee mug with a large handle", "");
        accepted("", "Ceramic coffee mug with a large handle", "");
        accepted("english", "Taza de cerámica para café con asa grande", "");
    }

    #[test]
    fn text_lingua_does_not_know_is_accepted() {
        accepted("en", "Керамическая кружка для кофе с большой ручкой", "");
        accepted(
            "fr",
            "大きな取っ手の付いたコーヒー用の陶器のマグカップです",
            "",
        );
        accepted("es", "\u{0}\u{FFFF} \u{301}\u{301} x y z w", "");
    }

    #[test]
    fn long_text_is_fine() {
        let long = "Taza de cerámica para café con asa grande. ".repeat(2_000);
        accepted("es", &long, &long);
        mismatch("en", "Ceramic coffee mug", &long);
    }
}
