//! Form bodies and query strings of the pages, read so that a malformed one is an error
//! page (never the framework's plain-text rejection), and small helpers shared by pages:
//! turning a form's text into the same parsed values the API's parsers make.

use axum::extract::{Form, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::region::Region;
use onestock_core::rules::PriceInput;
use onestock_core::types::{Sku, StoreCode, check_quantity, parse_price_amount};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::PageError;

/// An `application/x-www-form-urlencoded` body.
pub struct PageForm<T>(pub T);

impl<S, T> FromRequest<S> for PageForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<PageForm<T>, PageError> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(t)) => Ok(PageForm(t)),
            Err(r) => Err(PageError::bad_request(format!(
                "The form could not be read: {}",
                r.body_text()
            ))),
        }
    }
}

/// A query string.
pub struct PageQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for PageQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PageQuery<T>, PageError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(t)) => Ok(PageQuery(t)),
            Err(r) => Err(PageError::bad_request(format!(
                "The address could not be read: {}",
                r.body_text()
            ))),
        }
    }
}

/// Percent-encodes a value for a query string.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A SKU typed in a form (the core's parser, as the API uses it).
pub fn sku(raw: &str) -> Result<Sku, DomainError> {
    Sku::parse(raw)
}

/// A store code of the region.
pub fn store(region: &Region, raw: &str) -> Result<StoreCode, DomainError> {
    Ok(region.store(raw)?.code.clone())
}

/// A price typed in a form, in the store's currency (shown beside the field): the
/// API's parser of amounts. Empty is "not given".
pub fn price(raw: &str, currency: &str) -> Result<Option<PriceInput>, DomainError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let amount = parse_price_amount(t)?;
    Ok(Some(PriceInput {
        amount,
        currency: currency.to_owned(),
    }))
}

/// A quantity typed in a form: a whole number, checked by the core as the API's is.
/// Empty is "not given".
pub fn quantity(raw: &str) -> Result<Option<i64>, DomainError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let n: i64 = t.parse().map_err(|_| {
        DomainError::new(
            ErrorCode::InvalidQuantity,
            format!("A quantity is a whole number such as 12; {t:?} is not one."),
        )
        .field("quantity")
    })?;
    Ok(Some(check_quantity(n, "quantity")?))
}

/// A start-selling date from a date field (`2030-01-31`, midnight UTC) or an RFC 3339
/// time, as the API and upload files take it. Empty is `None` (no date).
pub fn start_date(raw: &str) -> Result<Option<OffsetDateTime>, DomainError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let text = if t.len() == 10 {
        format!("{t}T00:00:00Z")
    } else {
        t.to_owned()
    };
    OffsetDateTime::parse(&text, &Rfc3339)
        .map(Some)
        .map_err(|_| {
            DomainError::invalid(
                "start_selling_at",
                format!("A start-selling date is a date like 2030-01-31; {t:?} is not one."),
            )
        })
}

/// Keeps a page's own address for "go back here" after a form: only paths of this
/// server (a `/` not followed by another `/` or `\`).
pub fn local_path(raw: &str) -> String {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.starts_with("/\\")
        && !raw.chars().any(|c| c.is_control());
    if ok { raw.to_owned() } else { "/".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values() {
        assert_eq!(enc("A b/é"), "A%20b%2F%C3%A9");
        assert!(price("", "USD").ok().flatten().is_none());
        assert!(price("0", "USD").is_err());
        assert!(price("12.5", "USD").ok().flatten().is_some());
        assert_eq!(quantity("9").ok().flatten(), Some(9));
        assert!(quantity("-1").is_err());
        assert!(quantity("1.5").is_err());
        assert!(start_date("2030-01-31").ok().flatten().is_some());
        assert!(start_date("31/01/2030").is_err());
        assert_eq!(local_path("//evil.example"), "/");
        assert_eq!(local_path("/sku?sku=A"), "/sku?sku=A");
        assert_eq!(local_path("https://x"), "/");
    }
}
