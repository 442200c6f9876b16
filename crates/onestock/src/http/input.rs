//! Shape checks of request values, turning JSON and header text into core types: prices,
//! quantities, times, enumerations, `If-Match` and listing cursors. No rule of SPEC
//! section 3 is decided here; the rules get the parsed values.

use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::region::Region;
use onestock_core::rules::PriceInput;
use onestock_core::types::{
    Condition, Fulfillment, QUANTITY_MAX, ShareMode, Sku, StoreCode, check_quantity,
    parse_price_amount,
};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::{ApiError, ApiResult};
use super::extract::{Obj, type_name};

/// Separates SKU and store inside a listing cursor; a SKU never holds a control character.
const CURSOR_SEPARATOR: char = '\u{1f}';

/// The `limit` of a paged list: `default` when absent, else a whole number from 1 to
/// `max`, or `INVALID_REQUEST` naming `limit`.
pub fn page_limit(raw: Option<&str>, default: usize, max: usize) -> ApiResult<usize> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(
                "limit",
                format!("limit is a whole number from 1 to {max}; got {raw:?}."),
            )
        })
}

/// A price object `{"amount": "19.99", "currency": "USD"}` (the amount a string).
pub fn price(value: Value, field: &str) -> ApiResult<PriceInput> {
    let invalid_price = |message: String| {
        ApiError::Domain(DomainError::new(ErrorCode::InvalidPrice, message).field(field))
    };
    if !value.is_object() {
        return Err(invalid_price(format!(
            "A price is an object like {{\"amount\": \"19.99\", \"currency\": \"USD\"}}; got {}.",
            type_name(&value)
        )));
    }
    let mut obj = Obj::new(value, field, &["amount", "currency"])?;
    let amount = match obj.take_some("amount") {
        None => {
            return Err(ApiError::invalid(
                &obj.path("amount"),
                "Missing field \"amount\" of the price (a string like \"19.99\").",
            ));
        }
        Some(Value::String(s)) => parse_price_amount(&s).map_err(|e| {
            ApiError::Domain(DomainError {
                field: Some(field.to_owned()),
                ..e
            })
        })?,
        Some(other) => {
            return Err(invalid_price(format!(
                "A price amount is carried as a string like \"19.99\", never as {}.",
                type_name(&other)
            )));
        }
    };
    let currency = obj.req_str("currency")?;
    Ok(PriceInput { amount, currency })
}

fn invalid_quantity(field: &str, message: String) -> ApiError {
    ApiError::Domain(DomainError::new(ErrorCode::InvalidQuantity, message).field(field))
}

/// A JSON integer that fits an `i64`, else `INVALID_QUANTITY` naming the field.
pub fn integer(value: &Value, field: &str) -> ApiResult<i64> {
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            invalid_quantity(
                field,
                format!(
                    "{field} is a whole number (a JSON integer of at most 19 digits); got {n}."
                ),
            )
        }),
        other => Err(invalid_quantity(
            field,
            format!(
                "{field} is a whole number (a JSON integer); got {}.",
                type_name(other)
            ),
        )),
    }
}

/// An absolute quantity: a JSON integer from 0 to 1,000,000,000.
pub fn quantity(value: &Value, field: &str) -> ApiResult<i64> {
    Ok(check_quantity(integer(value, field)?, field)?)
}

/// A quantity an order line asks for: 1 to 1,000,000,000.
pub fn order_quantity(value: &Value, field: &str) -> ApiResult<i64> {
    let q = integer(value, field)?;
    if (1..=QUANTITY_MAX).contains(&q) {
        Ok(q)
    } else {
        Err(invalid_quantity(
            field,
            format!("An order line asks for 1 to {QUANTITY_MAX}; got {q}."),
        ))
    }
}

/// `start_selling_at`: an RFC 3339 string sets it, `null` removes it.
pub fn start_selling_at(value: Value, field: &str) -> ApiResult<Option<OffsetDateTime>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => OffsetDateTime::parse(s.trim(), &Rfc3339)
            .map(Some)
            .map_err(|e| {
                ApiError::invalid(
                    field,
                    format!(
                        "{field} is an RFC 3339 time like \"2030-01-31T09:00:00Z\" or null; {s:?} is not ({e})."
                    ),
                )
            }),
        other => Err(ApiError::invalid(
            field,
            format!(
                "{field} is an RFC 3339 time string or null; got {}.",
                type_name(&other)
            ),
        )),
    }
}

fn string_of<'a>(value: &'a Value, field: &str, allowed: &str) -> ApiResult<&'a str> {
    value.as_str().ok_or_else(|| {
        ApiError::invalid(
            field,
            format!("{field} is one of {allowed}; got {}.", type_name(value)),
        )
    })
}

pub fn condition(value: &Value, field: &str) -> ApiResult<Condition> {
    let allowed = Condition::ALL.map(|c| c.as_str()).join(", ");
    let s = string_of(value, field, &allowed)?;
    Condition::parse(s)
        .ok_or_else(|| ApiError::invalid(field, format!("{field} is one of {allowed}; got {s:?}.")))
}

pub fn share(value: &Value, field: &str) -> ApiResult<ShareMode> {
    let allowed = "\"unique\", \"existing\"";
    let s = string_of(value, field, allowed)?;
    ShareMode::parse(s)
        .ok_or_else(|| ApiError::invalid(field, format!("{field} is one of {allowed}; got {s:?}.")))
}

pub fn fulfillment(value: &Value, field: &str) -> ApiResult<Fulfillment> {
    let allowed = "\"merchant\", \"marketplace\"";
    let s = string_of(value, field, allowed)?;
    Fulfillment::parse(s)
        .ok_or_else(|| ApiError::invalid(field, format!("{field} is one of {allowed}; got {s:?}.")))
}

/// The pool version of an `If-Match` header: `"3"`, `3` and `W/"3"` are 3; `*` asks
/// for no check.
pub fn if_match(raw: &str) -> ApiResult<Option<i64>> {
    let t = raw.trim();
    if t == "*" {
        return Ok(None);
    }
    let t = t.strip_prefix("W/").unwrap_or(t).trim();
    let t = t
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t)
        .trim();
    t.parse::<i64>().map(Some).map_err(|_| {
        ApiError::invalid(
            "If-Match",
            format!(
                "If-Match carries the pool version from the listing's ETag, like \"3\"; got {raw:?}."
            ),
        )
    })
}

/// The opaque cursor that resumes a listing page after (SKU, store).
pub fn encode_cursor(sku: &Sku, store: &StoreCode) -> String {
    let mut raw = String::with_capacity(sku.as_str().len() + 1 + store.as_str().len());
    raw.push_str(sku.as_str());
    raw.push(CURSOR_SEPARATOR);
    raw.push_str(store.as_str());
    hex::encode(raw.as_bytes())
}

pub fn decode_cursor(raw: &str, region: &Region) -> ApiResult<(Sku, StoreCode)> {
    let bad = || {
        ApiError::invalid(
            "cursor",
            "This cursor is not one the server gave; pass next_cursor from the previous page as it is.",
        )
    };
    let bytes = hex::decode(raw.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (sku, store) = text.split_once(CURSOR_SEPARATOR).ok_or_else(bad)?;
    let sku = Sku::parse(sku).map_err(|_| bad())?;
    let store = region.store(store).map_err(|_| bad())?.code.clone();
    Ok((sku, store))
}

/// A SKU from a path or body (`INVALID_REQUEST` naming the field otherwise).
pub fn sku(raw: &str, field: &str) -> ApiResult<Sku> {
    Sku::parse(raw).map_err(|e| {
        ApiError::Domain(DomainError {
            field: Some(field.to_owned()),
            ..e
        })
    })
}

/// A store code from a path or query: known to the region, answered in capitals.
pub fn store(region: &Region, raw: &str) -> ApiResult<StoreCode> {
    Ok(region.store(raw)?.code.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code<T: std::fmt::Debug>(r: ApiResult<T>) -> ErrorCode {
        r.expect_err("an error").code()
    }

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(None, 50, 1000).ok(), Some(50));
        assert_eq!(page_limit(Some(" 7 "), 50, 1000).ok(), Some(7));
        for bad in ["0", "1001", "-1", "ten", ""] {
            assert!(page_limit(Some(bad), 50, 1000).is_err(), "{bad}");
        }
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(if_match("\"3\"").ok(), Some(Some(3)));
        assert_eq!(if_match("3").ok(), Some(Some(3)));
        assert_eq!(if_match("W/\"3\"").ok(), Some(Some(3)));
        assert_eq!(if_match(" \"12\" ").ok(), Some(Some(12)));
        assert_eq!(if_match("*").ok(), Some(None));
        assert_eq!(code(if_match("abc")), ErrorCode::InvalidRequest);
        assert_eq!(code(if_match("\"1\", \"2\"")), ErrorCode::InvalidRequest);
        assert_eq!(code(if_match("")), ErrorCode::InvalidRequest);
    }

    #[test]
    fn prices() {
        let p = price(json!({"amount": "19.9", "currency": "USD"}), "price").unwrap();
        assert_eq!(p.currency, "USD");
        assert_eq!(onestock_core::types::format_price(&p.amount), "19.90");
        for bad in [
            json!({"amount": 19.99, "currency": "USD"}),
            json!({"amount": "abc", "currency": "USD"}),
            json!({"amount": "1.999", "currency": "USD"}),
            json!({"amount": "0", "currency": "USD"}),
            json!({"amount": "-1", "currency": "USD"}),
            json!("19.99"),
            json!(19.99),
        ] {
            let e = price(bad.clone(), "price").expect_err("refused");
            assert_eq!(e.code(), ErrorCode::InvalidPrice, "{bad}");
            match e {
                ApiError::Domain(d) => assert_eq!(d.field.as_deref(), Some("price")),
                _ => panic!("not a domain error"),
            }
        }
        assert_eq!(
            code(price(json!({"amount": "1.00"}), "price")),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(price(
                json!({"amount": "1.00", "currency": "USD", "x": 1}),
                "price"
            )),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity(&json!(0), "quantity").ok(), Some(0));
        assert_eq!(
            quantity(&json!(1_000_000_000), "quantity").ok(),
            Some(1_000_000_000)
        );
        for bad in [
            json!(-1),
            json!(1.5),
            json!(1_000_000_001),
            json!(u64::MAX),
            json!("5"),
            json!(true),
        ] {
            assert_eq!(
                code(quantity(&bad, "quantity")),
                ErrorCode::InvalidQuantity,
                "{bad}"
            );
        }
        assert_eq!(integer(&json!(-5), "quantity_delta").ok(), Some(-5));
        assert_eq!(
            code(integer(&json!(2.5), "quantity_delta")),
            ErrorCode::InvalidQuantity
        );
        assert_eq!(
            code(order_quantity(&json!(0), "q")),
            ErrorCode::InvalidQuantity
        );
        assert_eq!(order_quantity(&json!(2), "q").ok(), Some(2));
    }

    #[test]
    fn times() {
        assert_eq!(start_selling_at(json!(null), "s").ok(), Some(None));
        assert!(matches!(
            start_selling_at(json!("2030-01-01T00:00:00Z"), "s"),
            Ok(Some(_))
        ));
        assert!(start_selling_at(json!("2030-01-01"), "s").is_err());
        assert!(start_selling_at(json!(5), "s").is_err());
    }

    #[test]
    fn cursors() {
        let region = Region::north_america();
        let sku = Sku::parse("MUG-1 blue/é").unwrap();
        let store = StoreCode::parse("CA").unwrap();
        let c = encode_cursor(&sku, &store);
        let (s2, st2) = decode_cursor(&c, &region).unwrap();
        assert_eq!((s2, st2), (sku, store));
        assert!(decode_cursor("zz", &region).is_err());
        assert!(decode_cursor(&hex::encode("nosep"), &region).is_err());
        assert!(decode_cursor(&hex::encode("A\u{1f}ZZ"), &region).is_err());
    }

    #[test]
    fn enumerations() {
        assert!(condition(&json!("used_good"), "condition").is_ok());
        assert!(condition(&json!("mint"), "condition").is_err());
        assert!(share(&json!("unique"), "share").is_ok());
        assert!(share(&json!(1), "share").is_err());
        assert!(fulfillment(&json!("marketplace"), "fulfillment").is_ok());
        assert!(fulfillment(&json!("amazon"), "fulfillment").is_err());
    }
}
