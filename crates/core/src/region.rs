//! The region: its stores, their currencies and languages, and what each may not list.
//! Built in (North America) or read from a TOML file at start.

use serde::Deserialize;

use crate::error::{DomainError, ErrorCode};
use crate::types::StoreCode;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub code: StoreCode,
    pub name: String,
    pub currency: String,
    pub languages: Vec<String>,
    pub marketplace_id: String,
    /// Product types that get no detail page and no listing here (R17), upper case.
    pub restricted_product_types: Vec<String>,
}

impl Store {
    pub fn restricts(&self, product_type: &str) -> bool {
        self.restricted_product_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(product_type))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    /// In the region file's order, which is also "store order" for listing views.
    pub stores: Vec<Store>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionFile {
    name: String,
    stores: Vec<StoreFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    code: String,
    name: String,
    currency: String,
    languages: Vec<String>,
    marketplace_id: String,
    #[serde(default)]
    restricted_product_types: Vec<String>,
}

/// ISO 4217 codes accepted in region files: the active codes are three capital letters;
/// the list keeps typos such as `USS` out.
const CURRENCIES: &[&str] = &[
    "AED", "ARS", "AUD", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EGP", "EUR",
    "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "JPY", "KRW", "MXN", "MYR", "NOK", "NZD", "PEN",
    "PHP", "PLN", "RON", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "VND", "ZAR",
];

/// ISO 639-1 codes, so a typo like `eng` or `xx` is refused at start.
const LANGUAGES: &[&str] = &[
    "aa", "ab", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh", "bi",
    "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de",
    "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy",
    "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia",
    "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj", "kk",
    "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln", "lo",
    "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd",
    "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl",
    "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl",
    "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk",
    "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo", "wa",
    "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

impl Region {
    /// The built-in North America region of SPEC.md section 2.
    pub fn north_america() -> Region {
        let store = |code: &str, name: &str, currency: &str, langs: &[&str], id: &str| Store {
            code: StoreCode::parse(code).expect("built-in store code"),
            name: name.into(),
            currency: currency.into(),
            languages: langs.iter().map(|l| l.to_string()).collect(),
            marketplace_id: id.into(),
            restricted_product_types: Vec::new(),
        };
        Region {
            name: "North America".into(),
            stores: vec![
                store("US", "United States", "USD", &["en"], "ATVPDKIKX0DER"),
                store("CA", "Canada", "CAD", &["en", "fr"], "A2EUQ1WTGCTBG2"),
                store("MX", "Mexico", "MXN", &["es"], "A1AM78C64UM0Y8"),
            ],
        }
    }

    /// Reads a region file. Errors name the line at fault, for the operator at start.
    pub fn from_toml(text: &str) -> Result<Region, String> {
        let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let toml_error = |e: toml::de::Error| match e.span() {
            Some(s) => format!("line {}: {}", line_at(s.start), e.message()),
            None => e.message().to_string(),
        };
        // Where each store's table starts, to name its line in errors.
        let store_lines: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == "[[stores]]")
            .map(|(i, _)| i + 1)
            .collect();
        let line_of = |i: usize| store_lines.get(i).copied().unwrap_or(1);
        // The line of `key = ...` inside store i's table, else the table's own line: a bad
        // currency on line 6 is reported on line 6, not where `[[stores]]` stands.
        let field_line = |i: usize, key: &str| -> usize {
            let start = line_of(i);
            text.lines()
                .enumerate()
                .skip(start)
                .take_while(|(_, l)| !l.trim_start().starts_with('['))
                .find(|(_, l)| {
                    let t = l.trim_start();
                    t.strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .map(|(n, _)| n + 1)
                .unwrap_or(start)
        };
        // Each store is read on its own, so a field missing from one names its table.
        let table: toml::Table = toml::from_str(text).map_err(toml_error)?;
        let mut stores_raw: Vec<StoreFile> = Vec::new();
        if let Some(list) = table.get("stores").and_then(|v| v.as_array()) {
            for (i, v) in list.iter().enumerate() {
                let store: StoreFile = v.clone().try_into().map_err(|e: toml::de::Error| {
                    format!("line {}: store {}: {}", line_of(i), i + 1, e.message())
                })?;
                stores_raw.push(store);
            }
        }
        let mut file: RegionFile = toml::from_str(text).map_err(toml_error)?;
        file.stores = stores_raw;
        if file.stores.is_empty() {
            return Err("the region has no store: add at least one [[stores]] table".into());
        }
        let mut stores: Vec<Store> = Vec::new();
        for (i, s) in file.stores.into_iter().enumerate() {
            let at = field_line(i, "code");
            let code = StoreCode::parse(&s.code)
                .filter(|_| s.code.bytes().all(|b| b.is_ascii_uppercase()))
                .ok_or_else(|| {
                    format!(
                        "line {at}: store code {:?} is not 2 to 8 capital letters",
                        s.code
                    )
                })?;
            if stores.iter().any(|o| o.code == code) {
                return Err(format!("line {at}: store {code} is named twice"));
            }
            if !CURRENCIES.contains(&s.currency.as_str()) {
                let at = field_line(i, "currency");
                return Err(format!(
                    "line {at}: store {code}: {:?} is not an ISO 4217 currency code",
                    s.currency
                ));
            }
            let at = field_line(i, "languages");
            if s.languages.is_empty() {
                return Err(format!("line {at}: store {code} has no language"));
            }
            for l in &s.languages {
                if !LANGUAGES.contains(&l.as_str()) {
                    return Err(format!(
                        "line {at}: store {code}: {l:?} is not a two-letter ISO 639-1 language code"
                    ));
                }
            }
            stores.push(Store {
                code,
                name: s.name,
                currency: s.currency,
                languages: s.languages,
                marketplace_id: s.marketplace_id,
                restricted_product_types: s
                    .restricted_product_types
                    .into_iter()
                    .map(|t| t.to_ascii_uppercase())
                    .collect(),
            });
        }
        Ok(Region {
            name: file.name,
            stores,
        })
    }

    /// The store with this code, matched without regard to case (`UNKNOWN_STORE` otherwise).
    pub fn store(&self, raw: &str) -> Result<&Store, DomainError> {
        StoreCode::parse(raw)
            .and_then(|code| self.stores.iter().find(|s| s.code == code))
            .ok_or_else(|| {
                let known: Vec<&str> = self.stores.iter().map(|s| s.code.as_str()).collect();
                DomainError::new(
                    ErrorCode::UnknownStore,
                    format!(
                        "There is no store {raw:?} in this region; the stores are {}.",
                        known.join(", ")
                    ),
                )
                .field("store")
            })
    }

    /// Position of a store in the region, for "store order".
    pub fn store_index(&self, code: &StoreCode) -> usize {
        self.stores
            .iter()
            .position(|s| &s.code == code)
            .unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_parses() {
        let text = r#"
name = "North America"

[[stores]]
code = "US"
name = "United States"
currency = "USD"
languages = ["en"]
marketplace_id = "ATVPDKIKX0DER"

[[stores]]
code = "CA"
name = "Canada"
currency = "CAD"
languages = ["en", "fr"]
marketplace_id = "A2EUQ1WTGCTBG2"
restricted_product_types = ["FIREWORKS"]
"#;
        let r = Region::from_toml(text).unwrap();
        assert_eq!(r.stores.len(), 2);
        assert!(r.stores[1].restricts("fireworks"));
        assert_eq!(r.store("ca").unwrap().currency, "CAD");
    }

    #[test]
    fn bad_files_name_the_line() {
        let dup = "name = \"x\"\n[[stores]]\ncode = \"US\"\nname = \"a\"\ncurrency = \"USD\"\nlanguages = [\"en\"]\nmarketplace_id = \"a\"\n[[stores]]\ncode = \"US\"\nname = \"b\"\ncurrency = \"USD\"\nlanguages = [\"en\"]\nmarketplace_id = \"b\"\n";
        let e = Region::from_toml(dup).unwrap_err();
        // The second store's `code` line.
        assert!(e.contains("line 9") && e.contains("twice"), "{e}");
        assert!(Region::from_toml("name = \"x\"\nstores = []\n").is_err());
        let missing = dup.replacen("name = \"b\"\n", "", 1);
        let e = Region::from_toml(&missing).unwrap_err();
        assert!(e.contains("line 8") && e.contains("name"), "{e}");
        let bad_lang = dup.replacen("[\"en\"]", "[\"eng\"]", 1);
        let e = Region::from_toml(&bad_lang).unwrap_err();
        assert!(e.contains("line 6") && e.contains("eng"), "{e}");
        // A bad currency names its own line, in the second store too (issue 12).
        let bad_currency = dup.replacen("code = \"US\"", "code = \"CA\"", 1).replacen(
            "currency = \"USD\"\nlanguages = [\"en\"]\nmarketplace_id = \"b\"",
            "currency = \"XYZ\"\nlanguages = [\"en\"]\nmarketplace_id = \"b\"",
            1,
        );
        let e = Region::from_toml(&bad_currency).unwrap_err();
        assert!(e.contains("line 11") && e.contains("XYZ"), "{e}");
        let bad_code = dup.replacen("code = \"US\"", "code = \"us\"", 1);
        let e = Region::from_toml(&bad_code).unwrap_err();
        assert!(e.contains("line 3"), "{e}");
    }
}
