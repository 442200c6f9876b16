//! `JSON_LISTINGS_FEED`: each message becomes one row of a SPEC 5 text file, in order,
//! so the feed is an upload like any other (same worker, same rules) and record `n` of
//! its report is message `n`. The result document is the marketplace's JSON processing
//! report (`header`, `issues`, `summary`).
//!
//! A message this door cannot read (an unknown `operationType`, a bad price) becomes a
//! row the upload refuses (an `update_delete` it does not know), so counts and order
//! stay the upload's; its issue in the report carries this door's reason instead.

use std::collections::HashMap;

use onestock_core::model::{ReportKind, ReportLine, Upload};
use onestock_core::region::Store;
use onestock_core::types::{Fulfillment, format_price};
use serde_json::{Value, json};

use super::listings::{Exact, read_patches, read_put};
use super::numbers::exact_numbers;
use super::time;

/// Messages one JSON feed takes (the marketplace's own limit).
pub const MESSAGES_MAX: usize = 10_000;

/// What the feed's report needs beyond the upload: each record's `messageId`, and the
/// reasons of messages refused before the upload.
#[derive(Clone, Debug, Default)]
pub struct Messages {
    pub ids: Vec<i64>,
    pub refused: HashMap<i64, (String, String)>,
}

const COLUMNS: &str = "sku\tproduct-id\tproduct-id-type\tprice\tquantity\titem-condition\tfulfillment-channel\tstart-selling-date\tupdate_delete\n";
/// The `update_delete` of a message refused here: a value the upload refuses.
const REFUSED: &str = "refused-by-sp-api";

fn clean(cell: &str) -> String {
    cell.replace(['\t', '\n', '\r'], " ")
}

/// The feed's body as a SPEC 5 file, or why it cannot be one.
pub fn to_file(body: &[u8], store: &Store) -> Result<(Vec<u8>, Messages), String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("The feed document is not valid JSON: {e}."))?;
    let exact = Exact {
        numbers: exact_numbers(body),
    };
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("A JSON_LISTINGS_FEED document has messages: [...].")?;
    if messages.len() > MESSAGES_MAX {
        return Err(format!("A feed has at most {MESSAGES_MAX} messages."));
    }
    let mut out = String::from(COLUMNS);
    let mut meta = Messages::default();
    for (i, m) in messages.iter().enumerate() {
        let record = i as i64 + 1;
        meta.ids
            .push(m.get("messageId").and_then(Value::as_i64).unwrap_or(record));
        let sku = clean(m.get("sku").and_then(Value::as_str).unwrap_or(""));
        let op = m
            .get("operationType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_uppercase();
        let row = match op.as_str() {
            "DELETE" => Ok([
                sku.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                "Delete".into(),
            ]),
            "UPDATE" | "PARTIAL_UPDATE" => {
                let attrs = m.get("attributes").cloned().unwrap_or(json!({}));
                read_put(&attrs, store, &exact, &format!("/messages/{i}/attributes"))
                    .map(|a| {
                        let (id, kind) = match (&a.input.asin, a.identifiers.first()) {
                            (Some(asin), _) => (asin.as_str().to_owned(), "ASIN".to_owned()),
                            (None, Some((k, v))) => (v.clone(), k.clone()),
                            (None, None) => (String::new(), String::new()),
                        };
                        let action = if op == "UPDATE" {
                            "Update"
                        } else {
                            "PartialUpdate"
                        };
                        [
                            sku.clone(),
                            clean(&id),
                            clean(&kind),
                            a.input
                                .price
                                .map(|p| format_price(&p.amount))
                                .unwrap_or_default(),
                            a.input.quantity.map(|q| q.to_string()).unwrap_or_default(),
                            a.input
                                .condition
                                .map(|c| c.as_str().to_owned())
                                .unwrap_or_default(),
                            a.input.fulfillment.map(fulfillment).unwrap_or_default(),
                            a.input
                                .start_selling_at
                                .flatten()
                                .map(time)
                                .unwrap_or_default(),
                            action.into(),
                        ]
                    })
                    .map_err(|e| (e.code.as_str().to_owned(), e.message))
            }
            "PATCH" => {
                let patches = m
                    .get("patches")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                read_patches(&patches, store, &exact, &format!("/messages/{i}/patches"))
                    .map(|p| {
                        [
                            sku.clone(),
                            String::new(),
                            String::new(),
                            p.price.map(|p| format_price(&p.amount)).unwrap_or_default(),
                            p.quantity.map(|q| q.to_string()).unwrap_or_default(),
                            p.condition
                                .map(|c| c.as_str().to_owned())
                                .unwrap_or_default(),
                            String::new(),
                            p.start_selling_at.flatten().map(time).unwrap_or_default(),
                            "PartialUpdate".into(),
                        ]
                    })
                    .map_err(|e| (e.code.as_str().to_owned(), e.message))
            }
            other => Err((
                "INVALID_REQUEST".to_owned(),
                format!(
                    "operationType {other:?} is not one of UPDATE, PARTIAL_UPDATE, PATCH, DELETE."
                ),
            )),
        };
        let cells = match row {
            Ok(cells) => cells,
            Err(reason) => {
                meta.refused.insert(record, reason);
                let mut cells: [String; 9] = Default::default();
                cells[0] = sku.clone();
                cells[8] = REFUSED.into();
                cells
            }
        };
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    Ok((out.into_bytes(), meta))
}

fn fulfillment(f: Fulfillment) -> String {
    match f {
        Fulfillment::Merchant => "DEFAULT".into(),
        Fulfillment::Marketplace => "AMAZON_NA".into(),
    }
}

/// The marketplace's JSON processing report of a finished feed.
pub fn report(upload: &Upload, lines: &[ReportLine], meta: &Messages) -> Value {
    let message_id = |record: i64| -> Value {
        usize::try_from(record - 1)
            .ok()
            .and_then(|i| meta.ids.get(i))
            .map_or(json!(record), |id| json!(id))
    };
    let mut errors = 0;
    let mut warnings = 0;
    let issues: Vec<Value> = lines
        .iter()
        .map(|l| {
            let severity = match l.kind {
                ReportKind::Error => {
                    errors += 1;
                    "ERROR"
                }
                ReportKind::Warning => {
                    warnings += 1;
                    "WARNING"
                }
            };
            let (code, message) = meta
                .refused
                .get(&l.record)
                .cloned()
                .unwrap_or_else(|| (l.code.clone(), l.message.clone()));
            json!({
                "messageId": message_id(l.record),
                "code": code,
                "severity": severity,
                "message": message,
                "sku": l.sku,
            })
        })
        .collect();
    json!({
        "header": {
            "sellerId": upload.seller_id.as_str(),
            "version": "2.0",
            "feedId": upload.upload_id,
        },
        "issues": issues,
        "summary": {
            "errors": errors,
            "warnings": warnings,
            "messagesProcessed": upload.records_processed,
            "messagesAccepted": upload.records_successful,
            "messagesInvalid": upload.records_failed,
        },
    })
}
