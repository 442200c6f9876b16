//! Conversions between model values and PostgreSQL column values: times as unix
//! microseconds, prices as text, store lists as `US,CA`, and the tab-separated line
//! format of an order's lines and results. Every value read back is parsed again into
//! its checked type, so a bad row is an error, never a panic.

use std::str::FromStr;

use onestock_core::model::{
    DetailPage, LedgerReason, OrderLine, OrderLineResult, Pool, ReportKind, SkuState, StoreListing,
    UploadStatus,
};
use onestock_core::storage::{StoreError, StoreResult};
use onestock_core::types::{Asin, Condition, Fulfillment, SellerId, Sku, StoreCode};
use postgres::Row;
use postgres::types::FromSql;
use rust_decimal::Decimal;
use time::OffsetDateTime;

pub(super) fn bad(what: impl Into<String>) -> StoreError {
    StoreError::Other(format!("bad stored value: {}", what.into()))
}

/// Column `i` of `row`, without panicking on a type mismatch.
pub(super) fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> StoreResult<T> {
    row.try_get(i)
        .map_err(|e| StoreError::Other(format!("column {i}: {e}")))
}

pub(super) fn micros(t: OffsetDateTime) -> i64 {
    // Every OffsetDateTime (years -9999..=9999) fits in i64 microseconds.
    (t.unix_timestamp_nanos() / 1_000) as i64
}

pub(super) fn time_of(us: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|e| bad(format!("time {us}: {e}")))
}

/// The time as it reads back from the database (microseconds, UTC), so values served
/// from a transaction's buffers equal those read from the tables.
pub(super) fn truncated(t: OffsetDateTime) -> OffsetDateTime {
    time_of(micros(t)).unwrap_or(t)
}

pub(super) fn sku(raw: &str) -> StoreResult<Sku> {
    Sku::parse(raw).map_err(|_| bad(format!("sku {raw:?}")))
}

pub(super) fn asin(raw: &str) -> StoreResult<Asin> {
    Asin::parse(raw).map_err(|_| bad(format!("asin {raw:?}")))
}

pub(super) fn store(raw: &str) -> StoreResult<StoreCode> {
    StoreCode::parse(raw).ok_or_else(|| bad(format!("store {raw:?}")))
}

pub(super) fn condition(raw: &str) -> StoreResult<Condition> {
    Condition::parse(raw).ok_or_else(|| bad(format!("condition {raw:?}")))
}

pub(super) fn fulfillment(raw: &str) -> StoreResult<Fulfillment> {
    Fulfillment::parse(raw).ok_or_else(|| bad(format!("fulfillment {raw:?}")))
}

pub(super) fn price(raw: &str) -> StoreResult<Decimal> {
    Decimal::from_str(raw).map_err(|_| bad(format!("price {raw:?}")))
}

pub(super) fn reason(raw: &str) -> StoreResult<LedgerReason> {
    LedgerReason::parse(raw).ok_or_else(|| bad(format!("reason {raw:?}")))
}

pub(super) fn upload_status(raw: &str) -> StoreResult<UploadStatus> {
    UploadStatus::parse(raw).ok_or_else(|| bad(format!("upload status {raw:?}")))
}

pub(super) fn report_kind_text(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Error => "Error",
        ReportKind::Warning => "Warning",
    }
}

pub(super) fn report_kind(raw: &str) -> StoreResult<ReportKind> {
    match raw {
        "Error" => Ok(ReportKind::Error),
        "Warning" => Ok(ReportKind::Warning),
        _ => Err(bad(format!("report kind {raw:?}"))),
    }
}

/// `US,CA`: store codes are capital letters, so a comma never appears inside one.
pub(super) fn stores_text(stores: &[StoreCode]) -> String {
    stores
        .iter()
        .map(StoreCode::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn stores_of(raw: &str) -> StoreResult<Vec<StoreCode>> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    raw.split(',').map(store).collect()
}

fn number(raw: &str) -> StoreResult<i64> {
    raw.parse().map_err(|_| bad(format!("number {raw:?}")))
}

/// One line per order line: `seller \t sku \t quantity`. A SKU holds no control
/// characters (checked by `Sku::parse`), so tabs and newlines separate safely.
pub(super) fn lines_text(lines: &[OrderLine]) -> String {
    lines
        .iter()
        .map(|l| format!("{}\t{}\t{}", l.seller_id, l.sku, l.quantity))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn lines_of(raw: &str) -> StoreResult<Vec<OrderLine>> {
    raw.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [seller, s, q] => Ok(OrderLine {
                    seller_id: SellerId((*seller).to_owned()),
                    sku: sku(s)?,
                    quantity: number(q)?,
                }),
                _ => Err(bad(format!("order line {l:?}"))),
            }
        })
        .collect()
}

/// One line per result: `seller \t sku \t quantity \t pool \t quantity_after \t US,CA`.
pub(super) fn results_text(results: &[OrderLineResult]) -> String {
    results
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                r.seller_id,
                r.sku,
                r.quantity,
                r.pool_id,
                r.quantity_after,
                stores_text(&r.stores)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn results_of(raw: &str) -> StoreResult<Vec<OrderLineResult>> {
    raw.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [seller, s, q, pool, after, stores] => Ok(OrderLineResult {
                    seller_id: SellerId((*seller).to_owned()),
                    sku: sku(s)?,
                    quantity: number(q)?,
                    pool_id: number(pool)?,
                    quantity_after: number(after)?,
                    stores: stores_of(stores)?,
                }),
                _ => Err(bad(format!("order result {l:?}"))),
            }
        })
        .collect()
}

/// The stored shape of a SKU: listings by store code, pools by id, times in
/// microseconds. Both a fresh read and a transaction's cache hold states in this shape.
pub(super) fn normalized(mut state: SkuState) -> SkuState {
    state.listings.sort_by(|a, b| a.store.cmp(&b.store));
    state.pools.sort_by_key(|p| p.pool_id);
    for l in &mut state.listings {
        l.start_selling_at = l.start_selling_at.map(truncated);
    }
    state
}

/// Pool columns from `i`: pool_id, shared, quantity, condition, version.
pub(super) fn pool_at(row: &Row, i: usize) -> StoreResult<Pool> {
    Ok(Pool {
        pool_id: col(row, i)?,
        shared: col(row, i + 1)?,
        quantity: col(row, i + 2)?,
        condition: condition(col(row, i + 3)?)?,
        version: col(row, i + 4)?,
    })
}

/// Listing columns from `i`: store, asin, pool_id, price, fulfillment,
/// start_selling_at, closed.
pub(super) fn listing_at(row: &Row, i: usize) -> StoreResult<StoreListing> {
    let start: Option<i64> = col(row, i + 5)?;
    Ok(StoreListing {
        store: store(col(row, i)?)?,
        asin: asin(col(row, i + 1)?)?,
        pool_id: col(row, i + 2)?,
        price: price(col(row, i + 3)?)?,
        fulfillment: fulfillment(col(row, i + 4)?)?,
        start_selling_at: start.map(time_of).transpose()?,
        closed: col(row, i + 6)?,
    })
}

/// A page from the columns of `page_select!`.
pub(super) fn page_of(row: &Row) -> StoreResult<DetailPage> {
    let kinds: Vec<String> = col(row, 7)?;
    let values: Vec<String> = col(row, 8)?;
    if kinds.len() != values.len() {
        return Err(bad("catalog identifiers"));
    }
    Ok(DetailPage {
        asin: asin(col(row, 0)?)?,
        store: store(col(row, 1)?)?,
        title: col(row, 2)?,
        brand: col(row, 3)?,
        description: col(row, 4)?,
        language: col(row, 5)?,
        product_type: col(row, 6)?,
        identifiers: kinds
            .into_iter()
            .zip(values)
            .map(|(kind, value)| onestock_core::model::Identifier { kind, value })
            .collect(),
    })
}

/// The full-text configuration for a page language.
pub(super) fn text_search_config(language: &str) -> &'static str {
    let lang = language.get(..2).unwrap_or("").to_ascii_lowercase();
    match lang.as_str() {
        "en" => "english",
        "fr" => "french",
        "es" => "spanish",
        _ => "simple",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_lines_round_trip() {
        let lines = vec![OrderLine {
            seller_id: SellerId("sel_1".into()),
            sku: Sku::parse("MUG é-1").unwrap_or_else(|_| unreachable!()),
            quantity: 3,
        }];
        assert_eq!(lines_of(&lines_text(&lines)).ok(), Some(lines));
        let results = vec![OrderLineResult {
            seller_id: SellerId("sel_1".into()),
            sku: Sku::parse("A").unwrap_or_else(|_| unreachable!()),
            quantity: 1,
            pool_id: 7,
            quantity_after: 0,
            stores: vec![],
        }];
        assert_eq!(results_of(&results_text(&results)).ok(), Some(results));
        assert_eq!(lines_of("").ok(), Some(vec![]));
    }
}
