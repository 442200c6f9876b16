//! JSON answers of the API (SPEC 4.1): listing views, detail pages, ledger entries,
//! events, offers, uploads. Times are RFC 3339 in UTC, prices two-decimal strings.

use onestock_core::model::{DetailPage, Event, EventBody, LedgerEntry, OrderRecord, Upload};
use onestock_core::rules::{ListingView, Offer};
use onestock_core::types::{StoreCode, format_price};
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A time as RFC 3339 in UTC.
pub fn time(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    // Only years outside 0..=9999 fail to format; no stored time is one.
    utc.format(&Rfc3339).unwrap_or_else(|_| utc.to_string())
}

pub fn stores(codes: &[StoreCode]) -> Vec<&str> {
    codes.iter().map(|c| c.as_str()).collect()
}

pub fn listing_view(v: &ListingView) -> Value {
    json!({
        "sku": v.sku.as_str(),
        "store": v.store.as_str(),
        "asin": v.asin.as_str(),
        "share": v.share.as_str(),
        "pool_id": v.pool_id,
        "pool_stores": stores(&v.pool_stores),
        "pool_version": v.pool_version,
        "condition": v.condition.as_str(),
        "quantity": v.quantity,
        "price": {"amount": format_price(&v.price), "currency": v.currency},
        "fulfillment": v.fulfillment.as_str(),
        "start_selling_at": v.start_selling_at.map(time),
        "closed": v.closed,
        "status": if v.active { "active" } else { "inactive" },
        "reasons": v.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    })
}

pub fn page(p: &DetailPage) -> Value {
    json!({
        "asin": p.asin.as_str(),
        "store": p.store.as_str(),
        "title": p.title,
        "brand": p.brand,
        "description": p.description,
        "language": p.language,
        "product_type": p.product_type,
        "identifiers": p
            .identifiers
            .iter()
            .map(|i| json!({"type": i.kind, "value": i.value}))
            .collect::<Vec<_>>(),
    })
}

pub fn ledger_entry(e: &LedgerEntry) -> Value {
    json!({
        "seq": e.seq,
        "at": time(e.at),
        "pool_id": e.pool_id,
        "delta": e.delta,
        "quantity_after": e.quantity_after,
        "reason": e.reason.as_str(),
        "store": e.store.as_str(),
        // Changes made through the API directly have no order or upload behind them.
        "reference": if e.reference.is_empty() { Value::Null } else { json!(e.reference) },
    })
}

pub fn event(e: &Event) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), json!(e.seq));
    m.insert("at".into(), json!(time(e.at)));
    m.insert("type".into(), json!(e.body.kind()));
    match &e.body {
        EventBody::QuantityChanged {
            sku,
            pool_id,
            stores: s,
            quantity,
            delta,
            reason,
        } => {
            m.insert("sku".into(), json!(sku.as_str()));
            m.insert("stores".into(), json!(stores(s)));
            m.insert("pool_id".into(), json!(pool_id));
            m.insert("quantity".into(), json!(quantity));
            m.insert("delta".into(), json!(delta));
            m.insert("reason".into(), json!(reason.as_str()));
        }
        EventBody::ListingChanged {
            sku,
            stores: s,
            status,
        } => {
            m.insert("sku".into(), json!(sku.as_str()));
            m.insert("stores".into(), json!(stores(s)));
            m.insert("status".into(), json!(status));
        }
        EventBody::ListingDeleted { sku, stores: s } => {
            m.insert("sku".into(), json!(sku.as_str()));
            m.insert("stores".into(), json!(stores(s)));
        }
    }
    Value::Object(m)
}

pub fn offer(o: &Offer) -> Value {
    json!({
        "seller_id": o.seller_id.as_str(),
        "sku": o.sku.as_str(),
        "condition": o.condition.as_str(),
        "price": {"amount": format_price(&o.price), "currency": o.currency},
        "quantity": o.quantity,
        "fulfillment": o.fulfillment.as_str(),
    })
}

pub fn order(record: &OrderRecord) -> Value {
    json!({
        "order_id": record.order_id,
        "status": "accepted",
        "lines": record
            .results
            .iter()
            .map(|l| json!({
                "seller_id": l.seller_id.as_str(),
                "sku": l.sku.as_str(),
                "quantity": l.quantity,
                "pool_id": l.pool_id,
                "quantity_after": l.quantity_after,
                "stores": stores(&l.stores),
            }))
            .collect::<Vec<_>>(),
    })
}

pub fn upload(u: &Upload) -> Value {
    let mut v = json!({
        "upload_id": u.upload_id,
        "store": u.store.as_str(),
        "status": u.status.as_str(),
        "records_processed": u.records_processed,
        "records_successful": u.records_successful,
        "records_failed": u.records_failed,
    });
    if let (Some(error), Some(m)) = (&u.error, v.as_object_mut()) {
        m.insert("error".into(), json!(error));
    }
    v
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
