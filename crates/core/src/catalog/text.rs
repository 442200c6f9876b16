//! Text forms of titles and descriptions: near-identical titles (R3) and search terms.

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};

/// The accent-free form of one lower-case Latin letter, or None when it has none to
/// lose. Covers the letters of the Western and Central European languages.
fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ǎ' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ǒ' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ǔ' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// A combining diacritical mark (U+0300–U+036F), as found in decomposed text
/// (`e` followed by U+0301 for `é`).
fn is_combining_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// `s` (already lower case) with Latin accents folded away and combining marks dropped.
pub(super) fn fold_accents(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_combining_mark(c) {
            continue;
        }
        match fold_char(c) {
            Some(folded) => out.push_str(folded),
            None => out.push(c),
        }
    }
    out
}

/// Unit spellings and the one form each is compared in (R3), once lower-cased and
/// accent-folded.
const UNITS: &[(&str, &str)] = &[
    ("millilitre", "ml"),
    ("millilitres", "ml"),
    ("milliliter", "ml"),
    ("milliliters", "ml"),
    ("mls", "ml"),
    ("centilitre", "cl"),
    ("centilitres", "cl"),
    ("centiliter", "cl"),
    ("centiliters", "cl"),
    ("cls", "cl"),
    ("litre", "l"),
    ("litres", "l"),
    ("liter", "l"),
    ("liters", "l"),
    ("lt", "l"),
    ("ltr", "l"),
    ("ltrs", "l"),
    ("gram", "g"),
    ("grams", "g"),
    ("gramme", "g"),
    ("grammes", "g"),
    ("gr", "g"),
    ("grs", "g"),
    ("gramo", "g"),
    ("gramos", "g"),
    ("kilogram", "kg"),
    ("kilograms", "kg"),
    ("kilogramme", "kg"),
    ("kilogrammes", "kg"),
    ("kilogramo", "kg"),
    ("kilogramos", "kg"),
    ("kgs", "kg"),
    ("milligram", "mg"),
    ("milligrams", "mg"),
    ("milligramme", "mg"),
    ("milligrammes", "mg"),
    ("mgs", "mg"),
    ("ounce", "oz"),
    ("ounces", "oz"),
    ("ozs", "oz"),
    ("pound", "lb"),
    ("pounds", "lb"),
    ("lbs", "lb"),
    ("inch", "in"),
    ("inches", "in"),
    ("millimetre", "mm"),
    ("millimetres", "mm"),
    ("millimeter", "mm"),
    ("millimeters", "mm"),
    ("centimetre", "cm"),
    ("centimetres", "cm"),
    ("centimeter", "cm"),
    ("centimeters", "cm"),
    ("pack", "pk"),
    ("packs", "pk"),
    ("pk", "pk"),
    ("pks", "pk"),
];

fn unit_form(word: &str) -> Option<&'static str> {
    UNITS
        .iter()
        .find(|(spelling, _)| *spelling == word)
        .map(|(_, form)| *form)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    Letters,
    Digits,
}

fn run_of(c: char) -> Option<Run> {
    if c.is_alphabetic() {
        Some(Run::Letters)
    } else if c.is_numeric() {
        Some(Run::Digits)
    } else {
        None
    }
}

pub(super) fn normalize_title(title: &str) -> String {
    let folded = fold_accents(&title.to_lowercase());
    let mut out = String::with_capacity(folded.len());
    // Walk the maximal runs of letters and of digits; everything else is dropped.
    let mut previous: Option<Run> = None;
    let mut chars = folded.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let Some(kind) = run_of(c) else {
            continue;
        };
        let mut end = start + c.len_utf8();
        while let Some(&(i, next)) = chars.peek() {
            if run_of(next) != Some(kind) {
                break;
            }
            end = i + next.len_utf8();
            chars.next();
        }
        let run = &folded[start..end];
        match (kind, previous) {
            (Run::Letters, Some(Run::Digits)) => out.push_str(unit_form(run).unwrap_or(run)),
            _ => out.push_str(run),
        }
        previous = Some(kind);
    }
    out
}

static ENGLISH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));
static FRENCH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::French));
static SPANISH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::Spanish));

fn stemmer_for(language: &str) -> Option<&'static Stemmer> {
    match super::language_part(language)?.as_str() {
        "en" => Some(&ENGLISH),
        "fr" => Some(&FRENCH),
        "es" => Some(&SPANISH),
        _ => None,
    }
}

pub(super) fn stem_terms(text: &str, language: &str) -> Vec<String> {
    let stemmer = stemmer_for(language);
    let lower = text.to_lowercase();
    lower
        // Combining marks stay with their word (decomposed accents); folding drops them.
        .split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c)))
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .map(|word| {
            // Folded before stemming, so that a word with or without its accents
            // always gives the same term ("café", "cafe", "cafe\u{301}").
            let folded = fold_accents(word);
            match stemmer {
                Some(stemmer) => stemmer.stem(&folded).into_owned(),
                None => folded,
            }
        })
        .filter(|term| !term.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_latin_accents() {
        assert_eq!(fold_accents("éñüçàß"), "enucass");
        assert_eq!(fold_accents("cafe\u{301}"), "cafe");
        assert_eq!(fold_accents("œuvre æ"), "oeuvre ae");
        assert_eq!(fold_accents("日本 кофе"), "日本 кофе");
    }

    #[test]
    fn equal_titles_for_unit_spellings() {
        let forms = [
            "Mug 350 ml",
            "mug 350ML",
            "Mug, 350 millilitres",
            "MUG-350ml",
            "Mug 350 milliliters",
            "Mug 350 mls",
            "mug 350-ml.",
        ];
        for f in forms {
            assert_eq!(normalize_title(f), "mug350ml", "{f}");
        }
        assert_eq!(normalize_title("Water 1.5 Litres"), "water15l");
        assert_eq!(normalize_title("Water 1.5 l"), "water15l");
        assert_eq!(normalize_title("Water 1.5 liter"), "water15l");
        assert_eq!(
            normalize_title("Rice 500 grammes"),
            normalize_title("Rice 500g")
        );
        assert_eq!(
            normalize_title("Rice 500 Grams"),
            normalize_title("rice 500 g")
        );
        assert_eq!(
            normalize_title("Flour 2 kilograms"),
            normalize_title("FLOUR 2KG")
        );
        assert_eq!(
            normalize_title("Flour 2 kgs"),
            normalize_title("Flour 2 kg")
        );
        assert_eq!(
            normalize_title("Soda 12 oz."),
            normalize_title("Soda 12 Ounces")
        );
        assert_eq!(
            normalize_title("Screen 27 inches"),
            normalize_title("Screen 27in")
        );
        assert_eq!(
            normalize_title("Batteries 4 pack"),
            normalize_title("Batteries 4-pk")
        );
    }

    #[test]
    fn unit_words_change_only_after_a_number() {
        assert_eq!(normalize_title("Backpack"), "backpack");
        assert_eq!(normalize_title("Pack of 4"), "packof4");
        assert_eq!(normalize_title("Made in Spain"), "madeinspain");
        assert_eq!(normalize_title("Instagram 5 Frames"), "instagram5frames");
        assert_eq!(normalize_title("Moisture Meter"), "moisturemeter");
    }

    #[test]
    fn case_accents_and_punctuation_do_not_count() {
        assert_eq!(normalize_title("Café Crème"), normalize_title("CAFE creme"));
        assert_eq!(normalize_title("Niño – Pequeño!"), "ninopequeno");
        assert_eq!(normalize_title("Müsli Über"), "musliuber");
        assert_eq!(normalize_title("Garçon"), "garcon");
        assert_eq!(normalize_title("Cafe\u{301}"), "cafe");
        assert_eq!(normalize_title(""), "");
        assert_eq!(normalize_title("  --!!  "), "");
        assert_eq!(normalize_title("ÉCRAN 27\""), "ecran27");
        assert_eq!(normalize_title("Кофе 250 г"), "кофе250г");
        assert_eq!(normalize_title("İstanbul"), "istanbul");
        assert_eq!(normalize_title("🙂 emoji 🙂"), "emoji");
    }

    #[test]
    fn english_stems() {
        assert_eq!(stem_terms("Bottles", "en"), vec!["bottl"]);
        assert_eq!(stem_terms("bottle", "en"), vec!["bottl"]);
        assert_eq!(
            stem_terms("Water bottles, 2-pack", "en-GB"),
            stem_terms("water bottle 2 pack", "en")
        );
    }

    #[test]
    fn french_and_spanish_stems() {
        assert_eq!(
            stem_terms("bouteilles", "fr"),
            stem_terms("bouteille", "fr")
        );
        assert_eq!(stem_terms("botellas", "es"), stem_terms("botella", "es"));
        assert_eq!(stem_terms("Botellas", "es_MX"), stem_terms("botella", "ES"));
        // Folded, then stemmed: accented and unaccented spellings always meet.
        assert_eq!(stem_terms("café", "fr"), stem_terms("cafe", "fr"));
        assert_eq!(stem_terms("café", "es"), stem_terms("cafe", "es"));
        assert_eq!(stem_terms("cafe\u{301}", "fr"), stem_terms("café", "fr"));
        assert_eq!(stem_terms("cerámica", "es"), stem_terms("ceramica", "es"));
        assert_eq!(stem_terms("cafés", "es"), stem_terms("cafe", "es"));
        assert_eq!(stem_terms("Réservé", "fr"), stem_terms("reserve", "fr"));
        assert_eq!(stem_terms("niños", "es"), stem_terms("nino", "es"));
        for term in stem_terms("Tasse en céramique, très élégante", "fr") {
            assert!(term.is_ascii(), "{term}");
        }
    }

    #[test]
    fn other_languages_are_lower_cased_and_folded_only() {
        assert_eq!(stem_terms("Bottles Café", "de"), vec!["bottles", "cafe"]);
        assert_eq!(stem_terms("Bottles", ""), vec!["bottles"]);
        assert_eq!(stem_terms("Bottles", "english"), vec!["bottles"]);
    }

    #[test]
    fn splits_on_non_alphanumerics_and_drops_empty_tokens() {
        assert_eq!(stem_terms("", "en"), Vec::<String>::new());
        assert_eq!(stem_terms("  ,,, -- ", "fr"), Vec::<String>::new());
        assert_eq!(stem_terms("mug/350ml", "xx"), vec!["mug", "350ml"]);
        assert_eq!(stem_terms("\u{301}\u{301} a", "xx"), vec!["a"]);
    }

    #[test]
    fn no_panic_on_odd_input() {
        let inputs = [
            "\u{0}\u{FFFF}\u{10FFFF}",
            "🙂🙂 ẞ İı ﬁ Ǆ",
            "日本語のテキスト",
            "مرحبا بالعالم",
            "\u{301}",
            "a\u{200D}b",
            "ΣΊΣΥΦΟΣ",
        ];
        for s in inputs {
            let _ = normalize_title(s);
            for lang in ["en", "fr", "es", "de", "", "🙂"] {
                let _ = stem_terms(s, lang);
            }
        }
        let long = "Ééé bottles ".repeat(5_000);
        assert_eq!(stem_terms(&long, "fr").len(), 10_000);
    }
}
