//! JSON answers of the API (SPEC 4.1): core values turned into the answer types of
//! `schema.rs`. Times are RFC 3339 in UTC, prices two-decimal strings.

use onestock_core::model::{DetailPage, Event, EventBody, LedgerEntry, OrderRecord, Upload};
use onestock_core::rules::{ListingView, Offer};
use onestock_core::types::{StoreCode, format_price};
use rust_decimal::Decimal;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::schema;

/// A time as RFC 3339 in UTC.
pub fn time(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    // Only years outside 0..=9999 fail to format; no stored time is one.
    utc.format(&Rfc3339).unwrap_or_else(|_| utc.to_string())
}

pub fn stores(codes: &[StoreCode]) -> Vec<String> {
    codes.iter().map(|c| c.as_str().to_owned()).collect()
}

fn price(amount: &Decimal, currency: &str) -> schema::Price {
    schema::Price {
        amount: format_price(amount),
        currency: currency.to_owned(),
    }
}

pub fn listing_view(v: &ListingView) -> schema::ListingView {
    schema::ListingView {
        sku: v.sku.as_str().to_owned(),
        store: v.store.as_str().to_owned(),
        asin: v.asin.as_str().to_owned(),
        share: v.share.as_str().to_owned(),
        pool_id: v.pool_id,
        pool_stores: stores(&v.pool_stores),
        pool_version: v.pool_version,
        condition: v.condition.as_str().to_owned(),
        quantity: v.quantity,
        price: price(&v.price, &v.currency),
        fulfillment: v.fulfillment.as_str().to_owned(),
        start_selling_at: v.start_selling_at.map(time),
        closed: v.closed,
        status: if v.active { "active" } else { "inactive" },
        reasons: v.reasons.iter().map(|r| r.as_str()).collect(),
    }
}

pub fn page(p: &DetailPage) -> schema::DetailPage {
    schema::DetailPage {
        asin: p.asin.as_str().to_owned(),
        store: p.store.as_str().to_owned(),
        title: p.title.clone(),
        brand: p.brand.clone(),
        description: p.description.clone(),
        language: p.language.clone(),
        product_type: p.product_type.clone(),
        identifiers: p
            .identifiers
            .iter()
            .map(|i| schema::Identifier {
                kind: i.kind.clone(),
                value: i.value.clone(),
            })
            .collect(),
    }
}

pub fn ledger_entry(e: &LedgerEntry) -> schema::LedgerEntry {
    schema::LedgerEntry {
        seq: e.seq,
        at: time(e.at),
        pool_id: e.pool_id,
        delta: e.delta,
        quantity_after: e.quantity_after,
        reason: e.reason.as_str(),
        store: e.store.as_str().to_owned(),
        // Changes made through the API directly have no order or upload behind them.
        reference: (!e.reference.is_empty()).then(|| e.reference.clone()),
    }
}

pub fn event(e: &Event) -> schema::EventJson {
    let (seq, at) = (e.seq, time(e.at));
    match &e.body {
        EventBody::QuantityChanged {
            sku,
            pool_id,
            stores: s,
            quantity,
            delta,
            reason,
        } => schema::EventJson::QuantityChanged {
            seq,
            at,
            sku: sku.as_str().to_owned(),
            stores: stores(s),
            pool_id: *pool_id,
            quantity: *quantity,
            delta: *delta,
            reason: reason.as_str(),
        },
        EventBody::ListingChanged {
            sku,
            stores: s,
            status,
        } => schema::EventJson::ListingChanged {
            seq,
            at,
            sku: sku.as_str().to_owned(),
            stores: stores(s),
            status: status.clone(),
        },
        EventBody::ListingDeleted { sku, stores: s } => schema::EventJson::ListingDeleted {
            seq,
            at,
            sku: sku.as_str().to_owned(),
            stores: stores(s),
        },
    }
}

pub fn offer(o: &Offer) -> schema::Offer {
    schema::Offer {
        seller_id: o.seller_id.as_str().to_owned(),
        sku: o.sku.as_str().to_owned(),
        condition: o.condition.as_str().to_owned(),
        price: price(&o.price, &o.currency),
        quantity: o.quantity,
        fulfillment: o.fulfillment.as_str().to_owned(),
    }
}

pub fn order(record: &OrderRecord) -> schema::OrderAnswer {
    schema::OrderAnswer {
        order_id: record.order_id.clone(),
        status: "accepted",
        lines: record
            .results
            .iter()
            .map(|l| schema::OrderLineResult {
                seller_id: l.seller_id.as_str().to_owned(),
                sku: l.sku.as_str().to_owned(),
                quantity: l.quantity,
                pool_id: l.pool_id,
                quantity_after: l.quantity_after,
                stores: stores(&l.stores),
            })
            .collect(),
    }
}

pub fn upload(u: &Upload) -> schema::UploadJson {
    schema::UploadJson {
        upload_id: u.upload_id.clone(),
        store: u.store.as_str().to_owned(),
        status: u.status.as_str(),
        records_processed: u.records_processed,
        records_successful: u.records_successful,
        records_failed: u.records_failed,
        error: u.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_are_utc() {
        assert_eq!(
            time(datetime!(2030-01-02 03:04:05 +02:00)),
            "2030-01-02T01:04:05Z"
        );
    }
}
