//! Value types parsed once at the edge: a value of these types is always valid, so
//! the rules and the storage never re-check it.

use std::fmt;

use rust_decimal::Decimal;

use crate::error::{DomainError, ErrorCode};

/// Largest quantity a pool may hold (R21).
pub const QUANTITY_MAX: i64 = 1_000_000_000;
/// Longest SKU, in characters (SPEC section 1).
pub const SKU_CHARS_MAX: usize = 40;

/// Refuses text with control characters (U+0000 to U+001F and U+007F to U+009F), except
/// tab and line ends, which a description may hold. Why: no field of SPEC means one, a NUL
/// cannot be stored in PostgreSQL text at all, and SQLite would keep it where the other
/// database refuses it; one rule for both databases and every door.
pub fn check_text(field: &str, value: &str) -> Result<(), DomainError> {
    match value
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        None => Ok(()),
        Some((at, c)) => Err(DomainError::invalid(
            field,
            format!(
                "{field} holds the control character U+{:04X} at character {}; remove it and send the text again.",
                c as u32,
                at + 1
            ),
        )),
    }
}

/// The seller's own code for an item: 1 to 40 printable characters, no spaces at the ends.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Sku, DomainError> {
        let chars = raw.chars().count();
        if chars == 0 || chars > SKU_CHARS_MAX {
            return Err(DomainError::new(
                ErrorCode::InvalidRequest,
                format!("A SKU has 1 to {SKU_CHARS_MAX} characters; this one has {chars}."),
            )
            .field("sku"));
        }
        if raw.chars().any(|c| c.is_control()) {
            return Err(DomainError::new(
                ErrorCode::InvalidRequest,
                "A SKU holds printable characters only.",
            )
            .field("sku"));
        }
        if raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace) {
            return Err(DomainError::new(
                ErrorCode::InvalidRequest,
                "A SKU may not start or end with a space.",
            )
            .field("sku"));
        }
        Ok(Sku(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The catalog's 10-character product identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asin(String);

impl Asin {
    pub fn parse(raw: &str) -> Result<Asin, DomainError> {
        let up = raw.trim().to_ascii_uppercase();
        if up.len() != 10 || !up.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DomainError::new(
                ErrorCode::InvalidRequest,
                format!("An ASIN has 10 letters or digits, like B0ABCD1234; got {raw:?}."),
            )
            .field("asin"));
        }
        Ok(Asin(up))
    }
    /// A new ASIN: `B0` and 8 of `0-9A-Z`.
    pub fn generate() -> Asin {
        use rand::Rng;
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut rng = rand::rng();
        let mut s = String::from("B0");
        for _ in 0..8 {
            s.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
        }
        Asin(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Asin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A store code, 2 to 8 capital letters. Parsed without regard to case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreCode(String);

impl StoreCode {
    /// Checks the shape only; whether the region has the store is `Region::store`'s job.
    pub fn parse(raw: &str) -> Option<StoreCode> {
        let up = raw.trim().to_ascii_uppercase();
        if (2..=8).contains(&up.len()) && up.bytes().all(|b| b.is_ascii_uppercase()) {
            Some(StoreCode(up))
        } else {
            None
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoreCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A seller account id (`sel_` + hex).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SellerId(pub String);

impl SellerId {
    pub fn generate() -> SellerId {
        use rand::Rng;
        let n: u64 = rand::rng().random();
        SellerId(format!("sel_{n:016x}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SellerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Pools are numbered by the database, unique across the region.
pub type PoolId = i64;

/// A quantity from 0 to [`QUANTITY_MAX`] (R21).
pub fn check_quantity(q: i64, field: &str) -> Result<i64, DomainError> {
    if (0..=QUANTITY_MAX).contains(&q) {
        Ok(q)
    } else {
        Err(DomainError::new(
            ErrorCode::InvalidQuantity,
            format!("A quantity is a whole number from 0 to {QUANTITY_MAX}; got {q}."),
        )
        .field(field))
    }
}

/// A price amount: greater than zero, at most two digits after the point (R10).
pub fn parse_price_amount(raw: &str) -> Result<Decimal, DomainError> {
    let bad = || {
        DomainError::new(
            ErrorCode::InvalidPrice,
            format!(
                "A price is a decimal greater than zero with at most two digits after the point, as a string like \"19.99\"; got {raw:?}."
            ),
        )
        .field("price")
    };
    let t = raw.trim();
    if t.is_empty() || t.starts_with('+') || t.contains(['e', 'E']) {
        return Err(bad());
    }
    let d: Decimal = t.parse().map_err(|_| bad())?;
    let d = d.normalize();
    if d <= Decimal::ZERO || d.scale() > 2 || d > Decimal::from(1_000_000_000_000i64) {
        return Err(bad());
    }
    Ok(d)
}

/// Formats a price with two digits after the point ("19.90").
pub fn format_price(d: &Decimal) -> String {
    let mut d = d.round_dp(2);
    d.rescale(2);
    d.to_string()
}

/// The item condition of a pool (SPEC section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    New,
    Refurbished,
    UsedLikeNew,
    UsedVeryGood,
    UsedGood,
    UsedAcceptable,
    CollectibleLikeNew,
    CollectibleVeryGood,
    CollectibleGood,
    CollectibleAcceptable,
}

impl Condition {
    pub const ALL: [Condition; 10] = [
        Condition::New,
        Condition::Refurbished,
        Condition::UsedLikeNew,
        Condition::UsedVeryGood,
        Condition::UsedGood,
        Condition::UsedAcceptable,
        Condition::CollectibleLikeNew,
        Condition::CollectibleVeryGood,
        Condition::CollectibleGood,
        Condition::CollectibleAcceptable,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::New => "new",
            Condition::Refurbished => "refurbished",
            Condition::UsedLikeNew => "used_like_new",
            Condition::UsedVeryGood => "used_very_good",
            Condition::UsedGood => "used_good",
            Condition::UsedAcceptable => "used_acceptable",
            Condition::CollectibleLikeNew => "collectible_like_new",
            Condition::CollectibleVeryGood => "collectible_very_good",
            Condition::CollectibleGood => "collectible_good",
            Condition::CollectibleAcceptable => "collectible_acceptable",
        }
    }
    pub fn parse(raw: &str) -> Option<Condition> {
        Condition::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

/// Who ships the item (R9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fulfillment {
    Merchant,
    Marketplace,
}

impl Fulfillment {
    pub fn as_str(self) -> &'static str {
        match self {
            Fulfillment::Merchant => "merchant",
            Fulfillment::Marketplace => "marketplace",
        }
    }
    pub fn parse(raw: &str) -> Option<Fulfillment> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "merchant" => Some(Fulfillment::Merchant),
            "marketplace" => Some(Fulfillment::Marketplace),
            _ => None,
        }
    }
}

/// How a store listing holds its quantity (R6, R7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareMode {
    /// On the SKU's shared pool.
    Existing,
    /// A pool of its own.
    Unique,
}

impl ShareMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareMode::Existing => "existing",
            ShareMode::Unique => "unique",
        }
    }
    pub fn parse(raw: &str) -> Option<ShareMode> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "existing" => Some(ShareMode::Existing),
            "unique" => Some(ShareMode::Unique),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        assert_eq!(format_price(&parse_price_amount("19.9").unwrap()), "19.90");
        assert_eq!(
            format_price(&parse_price_amount("19.990").unwrap()),
            "19.99"
        );
        assert!(parse_price_amount("1.999").is_err());
        assert!(parse_price_amount("0").is_err());
        assert!(parse_price_amount("-1").is_err());
        assert!(parse_price_amount("abc").is_err());
        assert!(parse_price_amount("1e3").is_err());
    }

    #[test]
    fn skus() {
        assert!(Sku::parse("MUG-1").is_ok());
        assert!(Sku::parse(" MUG").is_err());
        assert!(Sku::parse(&"x".repeat(41)).is_err());
        assert!(Sku::parse(&"é".repeat(40)).is_ok());
        assert!(Sku::parse("").is_err());
    }
}
