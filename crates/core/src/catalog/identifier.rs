//! Product identifiers and their check digits (R4).

use crate::error::{DomainError, ErrorCode};
use crate::model::Identifier;

/// The kinds of identifier, as listed in messages.
const KINDS: &str = "UPC, EAN, GTIN or ISBN";

/// At most this many characters of a given value are quoted back in a message.
const QUOTE_MAX: usize = 40;

fn invalid(message: String) -> DomainError {
    DomainError::new(ErrorCode::InvalidIdentifier, message).field("identifiers")
}

/// `value` between double quotes, cut short (with `…`) when it is long.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = value.chars();
    out.extend(chars.by_ref().take(QUOTE_MAX));
    if chars.next().is_some() {
        out.push('…');
    }
    out.push('"');
    out
}

/// The digit values of an all-ASCII-digit string.
fn digits(value: &str) -> Vec<u32> {
    value.bytes().map(|b| u32::from(b - b'0')).collect()
}

/// The GS1 mod-10 check digit for the digits before it (`body`): weights 3, 1, 3, …
/// from the right.
pub(super) fn gs1_check_digit(body: &[u32]) -> u32 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    (10 - sum % 10) % 10
}

/// The ISBN-10 mod-11 check character for its first nine digits: `0`–`9` or `X`.
fn isbn10_check_char(body: &[u32]) -> char {
    let sum: u32 = body
        .iter()
        .enumerate()
        .map(|(i, d)| (10 - i as u32) * d)
        .sum();
    match (11 - sum % 11) % 11 {
        10 => 'X',
        n => char::from_digit(n, 10).unwrap_or('0'),
    }
}

/// Checks a GS1 code (UPC, EAN, GTIN, ISBN-13): `value` is all ASCII digits.
fn check_gs1(kind: &str, value: &str) -> Result<(), DomainError> {
    let d = digits(value);
    let Some((last, body)) = d.split_last() else {
        return Ok(());
    };
    let expected = gs1_check_digit(body);
    if *last != expected {
        return Err(invalid(format!(
            "The {kind} {value} has a wrong check digit (expected {expected}); check the code \
             on the product."
        )));
    }
    Ok(())
}

fn article(kind: &str) -> &'static str {
    match kind {
        "EAN" | "ISBN" => "An",
        _ => "A",
    }
}

fn length_error(kind: &str, wanted: &str, value: &str) -> DomainError {
    let article = article(kind);
    invalid(format!(
        "{article} {kind} has {wanted} digits; {} has {}.",
        quote(value),
        value.chars().count()
    ))
}

fn not_digits_error(kind: &str, value: &str) -> DomainError {
    let article = article(kind);
    let allowed = if kind == "ISBN" {
        "digits only (an ISBN-10 may end in X)"
    } else {
        "digits only"
    };
    invalid(format!(
        "{article} {kind} is {allowed}; {} has other characters. Remove spaces, hyphens and \
         letters.",
        quote(value)
    ))
}

pub(super) fn parse_identifier(kind: &str, value: &str) -> Result<Identifier, DomainError> {
    let kind_upper = kind.trim().to_ascii_uppercase();
    let value = value.trim();
    let kind: &'static str = match kind_upper.as_str() {
        "UPC" => "UPC",
        "EAN" => "EAN",
        "GTIN" => "GTIN",
        "ISBN" => "ISBN",
        _ => {
            return Err(invalid(format!(
                "The identifier kind {} is not known; use {KINDS}.",
                quote(kind.trim())
            )));
        }
    };
    if value.is_empty() {
        return Err(invalid(format!(
            "The {kind} is empty; give its {}.",
            match kind {
                "UPC" => "12 digits",
                "EAN" => "13 digits",
                "GTIN" => "14 digits",
                _ => "10 or 13 digits",
            }
        )));
    }

    // ISBN-10 may end in X (either case), kept as upper-case X.
    let isbn10_x = kind == "ISBN"
        && value.len() == 10
        && value.as_bytes()[..9].iter().all(|b| b.is_ascii_digit())
        && matches!(value.as_bytes()[9], b'X' | b'x');
    if !isbn10_x && !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_digits_error(kind, value));
    }
    // From here on the value is ASCII, so byte length is the digit count.
    let len = value.len();
    match kind {
        "UPC" | "EAN" | "GTIN" => {
            let (wanted, word) = match kind {
                "UPC" => (12, "12"),
                "EAN" => (13, "13"),
                _ => (14, "14"),
            };
            if len != wanted {
                return Err(length_error(kind, word, value));
            }
            check_gs1(kind, value)?;
            Ok(Identifier {
                kind: kind.to_string(),
                value: value.to_string(),
            })
        }
        _ => match len {
            10 => {
                let body = digits(&value[..9]);
                let expected = isbn10_check_char(&body);
                let given = value.as_bytes()[9].to_ascii_uppercase() as char;
                if given != expected {
                    return Err(invalid(format!(
                        "The ISBN {value} has a wrong check digit (expected {expected}); check \
                         the code on the book."
                    )));
                }
                let mut normalized = value[..9].to_string();
                normalized.push(expected);
                Ok(Identifier {
                    kind: "ISBN".to_string(),
                    value: normalized,
                })
            }
            13 => {
                if !(value.starts_with("978") || value.starts_with("979")) {
                    return Err(invalid(format!(
                        "An ISBN of 13 digits starts with 978 or 979; {} does not. Give it as \
                         an EAN if it is not a book.",
                        quote(value)
                    )));
                }
                check_gs1("ISBN", value)?;
                Ok(Identifier {
                    kind: "ISBN".to_string(),
                    value: value.to_string(),
                })
            }
            _ => Err(length_error("ISBN", "10 or 13", value)),
        },
    }
}

pub(super) fn identifier_kind_for_digits(value: &str) -> Option<&'static str> {
    let value = value.trim();
    let all_digits = value.bytes().all(|b| b.is_ascii_digit());
    let isbn10_x = value.len() == 10
        && value.as_bytes()[..9].iter().all(|b| b.is_ascii_digit())
        && matches!(value.as_bytes()[9], b'X' | b'x');
    if value.is_empty() || !(all_digits || isbn10_x) {
        return None;
    }
    match value.len() {
        10 => Some("ISBN"),
        12 => Some("UPC"),
        13 => Some("EAN"),
        14 => Some("GTIN"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: &str, value: &str) -> Identifier {
        match parse_identifier(kind, value) {
            Ok(id) => id,
            Err(e) => panic!("{kind} {value}: {e}"),
        }
    }

    fn err(kind: &str, value: &str) -> DomainError {
        let e = parse_identifier(kind, value).expect_err(&format!("{kind} {value} accepted"));
        assert_eq!(e.code, ErrorCode::InvalidIdentifier);
        assert_eq!(e.field.as_deref(), Some("identifiers"));
        e
    }

    #[test]
    fn real_codes_are_accepted() {
        assert_eq!(
            ok("UPC", "036000291452"),
            Identifier {
                kind: "UPC".into(),
                value: "036000291452".into()
            }
        );
        assert_eq!(ok("upc", "073400123457").value, "073400123457");
        assert_eq!(ok("UPC", "012345678905").value, "012345678905");
        assert_eq!(ok("EAN", "4006381333931").kind, "EAN");
        assert_eq!(ok("ean", "9780306406157").kind, "EAN");
        assert_eq!(ok("GTIN", "00036000291452").value, "00036000291452");
        assert_eq!(ok("Isbn", "0306406152").kind, "ISBN");
        assert_eq!(ok("ISBN", "9780306406157").value, "9780306406157");
        assert_eq!(ok("ISBN", "9791090636071").value, "9791090636071");
    }

    #[test]
    fn kind_and_value_are_trimmed_and_kind_upper_cased() {
        let id = ok(" gtin ", "  00036000291452\t");
        assert_eq!(id.kind, "GTIN");
        assert_eq!(id.value, "00036000291452");
    }

    #[test]
    fn isbn10_may_end_in_x_either_case() {
        assert_eq!(ok("ISBN", "080442957X").value, "080442957X");
        assert_eq!(ok("ISBN", "080442957x").value, "080442957X");
        // X only as the check character, and only where it is the right one.
        err("ISBN", "0804429579");
        err("ISBN", "X804429570");
        err("UPC", "03600029145X");
    }

    #[test]
    fn wrong_check_digits_say_the_expected_one() {
        let e = err("UPC", "012345678906");
        assert!(
            e.message
                .starts_with("The UPC 012345678906 has a wrong check digit (expected 5)"),
            "{}",
            e.message
        );
        assert!(err("EAN", "4006381333932").message.contains("expected 1"));
        assert!(err("GTIN", "00036000291453").message.contains("expected 2"));
        assert!(err("ISBN", "0306406153").message.contains("expected 2"));
        assert!(err("ISBN", "9780306406158").message.contains("expected 7"));
        assert!(err("ISBN", "0804429571").message.contains("expected X"));
    }

    #[test]
    fn wrong_lengths_say_how_many_digits() {
        assert_eq!(
            err("UPC", "123").message,
            "A UPC has 12 digits; \"123\" has 3."
        );
        assert!(
            err("EAN", "036000291452")
                .message
                .starts_with("An EAN has 13 digits;")
        );
        assert!(err("GTIN", "4006381333931").message.contains("14 digits"));
        assert!(err("ISBN", "03064061").message.contains("10 or 13 digits"));
        // An EAN-13 that is not a book is not an ISBN-13.
        assert!(err("ISBN", "4006381333931").message.contains("978 or 979"));
        assert!(err("UPC", "").message.contains("empty"));
        assert!(err("ISBN", "   ").message.contains("empty"));
    }

    #[test]
    fn non_digits_are_refused() {
        assert!(err("UPC", "0360-0029145").message.contains("digits only"));
        err("EAN", "978-0306406157");
        err("UPC", "０３６０００２９１４５２"); // full-width digits
        err("UPC", "٠٣٦٠٠٠٢٩١٤٥٢"); // Arabic-Indic digits
        err("UPC", "+36000291452");
        err("ISBN", "0-306-40615-2");
    }

    #[test]
    fn unknown_kinds_list_the_known_ones() {
        let e = err("ASIN", "B000000000");
        assert!(
            e.message.contains("UPC, EAN, GTIN or ISBN"),
            "{}",
            e.message
        );
        err("", "036000291452");
        err("ÜPC", "036000291452");
    }

    #[test]
    fn long_values_are_quoted_short() {
        let long = "1".repeat(10_000);
        let e = err("UPC", &long);
        assert!(e.message.len() < 200, "{}", e.message);
        assert!(e.message.contains("has 10000"));
        let weird = "é".repeat(100);
        assert!(err("EAN", &weird).message.len() < 300);
    }

    #[test]
    fn no_panic_on_odd_input() {
        for v in [
            "",
            " ",
            "X",
            "x",
            "é",
            "🙂🙂🙂🙂🙂🙂🙂🙂🙂X",
            "é12345678X",
            "123456789é",
            "12345678é",
            "1234567é8",
            "\u{0}",
            "0306406152\u{301}",
        ] {
            for k in ["UPC", "EAN", "GTIN", "ISBN", "isbn", "🙂"] {
                let _ = parse_identifier(k, v);
            }
            let _ = identifier_kind_for_digits(v);
        }
    }

    #[test]
    fn kind_for_bare_digits() {
        assert_eq!(identifier_kind_for_digits("036000291452"), Some("UPC"));
        assert_eq!(identifier_kind_for_digits("4006381333931"), Some("EAN"));
        assert_eq!(identifier_kind_for_digits("00036000291452"), Some("GTIN"));
        assert_eq!(identifier_kind_for_digits("0306406152"), Some("ISBN"));
        assert_eq!(identifier_kind_for_digits(" 080442957X "), Some("ISBN"));
        assert_eq!(identifier_kind_for_digits("12345"), None);
        assert_eq!(identifier_kind_for_digits(""), None);
        assert_eq!(identifier_kind_for_digits("03600029145a"), None);
        assert_eq!(identifier_kind_for_digits("é12345678X"), None);
    }
}
