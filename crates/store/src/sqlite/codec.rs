//! Conversions between the model's values and SQLite's columns, and the error mapping.
//! Stored values are parsed back with the model's own parsers; a value that does not
//! parse is a `StoreError::Other` naming the column, never a panic.

use std::str::FromStr;

use onestock_core::model::{OrderLine, OrderLineResult, ReportKind};
use onestock_core::storage::{StoreError, StoreResult};
use onestock_core::types::{Asin, Condition, Fulfillment, SellerId, Sku, StoreCode};
use rust_decimal::Decimal;
use time::OffsetDateTime;

/// SQLITE_BUSY and SQLITE_LOCKED are worth another try; everything else is not.
pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Retry(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn bad(column: &str, raw: &str) -> StoreError {
    StoreError::Other(format!("unreadable value {raw:?} in column {column}"))
}

/// Unix microseconds, UTC.
pub(crate) fn micros(at: OffsetDateTime) -> StoreResult<i64> {
    i64::try_from(at.unix_timestamp_nanos() / 1000)
        .map_err(|_| StoreError::Other(format!("time out of range: {at}")))
}

pub(crate) fn from_micros(us: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|_| StoreError::Other(format!("stored time out of range: {us}")))
}

pub(crate) fn sku(raw: &str) -> StoreResult<Sku> {
    Sku::parse(raw).map_err(|_| bad("sku", raw))
}

pub(crate) fn asin(raw: &str) -> StoreResult<Asin> {
    Asin::parse(raw).map_err(|_| bad("asin", raw))
}

pub(crate) fn store(raw: &str) -> StoreResult<StoreCode> {
    StoreCode::parse(raw).ok_or_else(|| bad("store", raw))
}

pub(crate) fn condition(raw: &str) -> StoreResult<Condition> {
    Condition::parse(raw).ok_or_else(|| bad("condition", raw))
}

pub(crate) fn fulfillment(raw: &str) -> StoreResult<Fulfillment> {
    Fulfillment::parse(raw).ok_or_else(|| bad("fulfillment", raw))
}

pub(crate) fn price(raw: &str) -> StoreResult<Decimal> {
    Decimal::from_str(raw).map_err(|_| bad("price", raw))
}

pub(crate) fn report_kind_str(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Error => "error",
        ReportKind::Warning => "warning",
    }
}

pub(crate) fn report_kind(raw: &str) -> StoreResult<ReportKind> {
    match raw {
        "error" => Ok(ReportKind::Error),
        "warning" => Ok(ReportKind::Warning),
        _ => Err(bad("kind", raw)),
    }
}

/// Store codes as `US,CA` (codes are capital letters only).
pub(crate) fn stores_text(stores: &[StoreCode]) -> String {
    let mut out = String::new();
    for (i, s) in stores.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(s.as_str());
    }
    out
}

pub(crate) fn stores(raw: &str) -> StoreResult<Vec<StoreCode>> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split(',').map(store).collect()
}

fn int(column: &str, raw: &str) -> StoreResult<i64> {
    raw.parse().map_err(|_| bad(column, raw))
}

/// Order lines, one per text line: `seller \t sku \t quantity`. Neither a seller id
/// nor a SKU holds control characters, so tab and newline are safe separators.
pub(crate) fn order_lines_text(lines: &[OrderLine]) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(l.seller_id.as_str());
        out.push('\t');
        out.push_str(l.sku.as_str());
        out.push('\t');
        out.push_str(&l.quantity.to_string());
        out.push('\n');
    }
    out
}

pub(crate) fn order_lines(raw: &str) -> StoreResult<Vec<OrderLine>> {
    raw.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                [seller, sku_raw, qty] => Ok(OrderLine {
                    seller_id: SellerId((*seller).to_owned()),
                    sku: sku(sku_raw)?,
                    quantity: int("lines", qty)?,
                }),
                _ => Err(bad("lines", line)),
            }
        })
        .collect()
}

/// Order results, one per text line:
/// `seller \t sku \t quantity \t pool_id \t quantity_after \t US,CA`.
pub(crate) fn order_results_text(results: &[OrderLineResult]) -> String {
    let mut out = String::new();
    for r in results {
        out.push_str(r.seller_id.as_str());
        out.push('\t');
        out.push_str(r.sku.as_str());
        out.push('\t');
        out.push_str(&r.quantity.to_string());
        out.push('\t');
        out.push_str(&r.pool_id.to_string());
        out.push('\t');
        out.push_str(&r.quantity_after.to_string());
        out.push('\t');
        out.push_str(&stores_text(&r.stores));
        out.push('\n');
    }
    out
}

pub(crate) fn order_results(raw: &str) -> StoreResult<Vec<OrderLineResult>> {
    raw.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                [seller, sku_raw, qty, pool, after, stores_raw] => Ok(OrderLineResult {
                    seller_id: SellerId((*seller).to_owned()),
                    sku: sku(sku_raw)?,
                    quantity: int("results", qty)?,
                    pool_id: int("results", pool)?,
                    quantity_after: int("results", after)?,
                    stores: stores(stores_raw)?,
                }),
                _ => Err(bad("results", line)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_text_round_trip() {
        let lines = vec![OrderLine {
            seller_id: SellerId("sel_1".into()),
            sku: Sku::parse("MUG 1/é").unwrap(),
            quantity: 3,
        }];
        assert_eq!(order_lines(&order_lines_text(&lines)).unwrap(), lines);
        let results = vec![OrderLineResult {
            seller_id: SellerId("sel_1".into()),
            sku: Sku::parse("MUG 1/é").unwrap(),
            quantity: 3,
            pool_id: 7,
            quantity_after: 0,
            stores: vec![],
        }];
        assert_eq!(
            order_results(&order_results_text(&results)).unwrap(),
            results
        );
        assert!(order_lines("x\ty").is_err());
    }
}
