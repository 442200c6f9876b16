//! Sellers v1 (`getMarketplaceParticipations`) and Catalog Items 2022-04-01
//! (`searchCatalogItems`, `getCatalogItem`) over the region's stores and detail pages.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use onestock_core::model::DetailPage;
use onestock_core::region::Store;
use onestock_core::types::{Asin, Sku, StoreCode};
use serde_json::{Value, json};

use super::{MARKETPLACE_PARAMS, RawQuery, SpError, SpResult, SpSeller, SpState, stores_of};

/// `searchCatalogItems` pages: the marketplace's default and largest `pageSize`.
const PAGE_SIZE_DEFAULT: usize = 10;
const PAGE_SIZE_MAX: usize = 20;
/// Identifiers one search takes (the marketplace's limit).
const IDENTIFIERS_MAX: usize = 20;
/// Detail pages a keyword search reads at most, across its pages: the JSON API's own
/// bound on a search.
const KEYWORD_RESULTS_MAX: usize = 50;
/// Longest keyword text, in characters (as the JSON API's search).
const KEYWORDS_CHARS_MAX: usize = 500;

/// `GET /sellers/v1/marketplaceParticipations`: every store of the region.
pub async fn participations(State(st): State<SpState>, _seller: SpSeller) -> Json<Value> {
    let payload: Vec<Value> = st
        .app
        .service
        .region()
        .stores
        .iter()
        .map(|s| {
            json!({
                "marketplace": {
                    "id": s.marketplace_id,
                    "name": s.name,
                    "countryCode": s.code.as_str(),
                    "defaultCurrencyCode": s.currency,
                    "defaultLanguageCode": s.languages.first().map(|l| format!("{l}_{}", s.code.as_str())).unwrap_or_default(),
                    "domainName": format!("{}.onestock", s.code.as_str().to_ascii_lowercase()),
                },
                "participation": {"isParticipating": true, "hasSuspendedListings": false},
                "storeName": s.name,
            })
        })
        .collect();
    Json(json!({ "payload": payload }))
}

fn included(q: &RawQuery) -> Vec<String> {
    let mut list: Vec<String> = q
        .list(&["includedData", "IncludedData", "included_data"])
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if list.is_empty() {
        list.push("summaries".into());
    }
    list
}

/// One catalog item: an ASIN with its pages in the requested stores.
fn item_json(asin: &str, pages: &[DetailPage], stores: &[Store], included: &[String]) -> Value {
    let mp = |code: &StoreCode| {
        stores
            .iter()
            .find(|s| &s.code == code)
            .map(|s| s.marketplace_id.clone())
            .unwrap_or_default()
    };
    let has = |n: &str| included.iter().any(|i| i == n);
    let mut item = serde_json::Map::new();
    item.insert("asin".into(), json!(asin));
    if has("summaries") {
        let s: Vec<Value> = pages
            .iter()
            .map(|p| {
                json!({
                    "marketplaceId": mp(&p.store),
                    "brand": p.brand,
                    "itemName": p.title,
                    "itemClassification": "BASE_PRODUCT",
                })
            })
            .collect();
        item.insert("summaries".into(), Value::Array(s));
    }
    if has("identifiers") {
        let s: Vec<Value> = pages
            .iter()
            .map(|p| {
                json!({
                    "marketplaceId": mp(&p.store),
                    "identifiers": p.identifiers.iter().map(|i| json!({
                        "identifierType": i.kind,
                        "identifier": i.value,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        item.insert("identifiers".into(), Value::Array(s));
    }
    if has("attributes") {
        let each =
            |f: &dyn Fn(&DetailPage) -> Value| -> Vec<Value> { pages.iter().map(f).collect() };
        item.insert(
            "attributes".into(),
            json!({
                "item_name": each(&|p| json!({"value": p.title, "language_tag": p.language, "marketplace_id": mp(&p.store)})),
                "brand": each(&|p| json!({"value": p.brand, "marketplace_id": mp(&p.store)})),
                "product_description": each(&|p| json!({"value": p.description, "language_tag": p.language, "marketplace_id": mp(&p.store)})),
                "externally_assigned_product_identifier": pages.iter().flat_map(|p| p.identifiers.iter().map(|i| json!({
                    "type": i.kind.to_ascii_lowercase(), "value": i.value, "marketplace_id": mp(&p.store),
                }))).collect::<Vec<_>>(),
            }),
        );
    }
    if has("producttypes") {
        let s: Vec<Value> = pages
            .iter()
            .map(|p| json!({"marketplaceId": mp(&p.store), "productType": p.product_type}))
            .collect();
        item.insert("productTypes".into(), Value::Array(s));
    }
    Value::Object(item)
}

/// Pages grouped by ASIN, in the order first seen.
fn group(pages: Vec<DetailPage>) -> Vec<(String, Vec<DetailPage>)> {
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Vec<DetailPage>> = BTreeMap::new();
    for p in pages {
        let a = p.asin.as_str().to_owned();
        if !by.contains_key(&a) {
            order.push(a.clone());
        }
        by.entry(a).or_default().push(p);
    }
    order
        .into_iter()
        .map(|a| {
            let v = by.remove(&a).unwrap_or_default();
            (a, v)
        })
        .collect()
}

/// `GET /catalog/2022-04-01/items`: by `identifiers` and `identifiersType` (`ASIN`,
/// `UPC`, `EAN`, `GTIN`, `ISBN`, `SKU` of the calling seller), or by `keywords`.
pub async fn search(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    q: RawQuery,
) -> SpResult<Json<Value>> {
    let region = st.app.service.region().clone();
    let stores = stores_of(&region, &q.list(MARKETPLACE_PARAMS))?;
    let included = included(&q);
    let identifiers = q.list(&["identifiers", "Identifiers"]);
    let keywords = q.list(&["keywords", "Keywords"]).join(" ");
    let page_size = match q.one(&["pageSize", "PageSize"]) {
        None => PAGE_SIZE_DEFAULT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_SIZE_MAX).contains(n))
            .ok_or_else(|| {
                SpError::invalid(format!(
                    "pageSize is a whole number from 1 to {PAGE_SIZE_MAX}; got {raw:?}."
                ))
            })?,
    };
    let offset = match q.one(&["pageToken", "PageToken"]) {
        None => 0,
        Some(t) => hex::decode(t.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| SpError::invalid("This pageToken is not one the server gave."))?,
    };
    let pages: Vec<DetailPage> = if !identifiers.is_empty() {
        if identifiers.len() > IDENTIFIERS_MAX {
            return Err(SpError::invalid(format!(
                "A search takes at most {IDENTIFIERS_MAX} identifiers."
            )));
        }
        let kind = q
            .one(&["identifiersType", "IdentifiersType"])
            .ok_or_else(|| {
                SpError::invalid(
                    "identifiers need identifiersType (ASIN, UPC, EAN, GTIN, ISBN or SKU).",
                )
            })?
            .to_ascii_uppercase();
        if !["ASIN", "UPC", "EAN", "GTIN", "ISBN", "SKU", "JAN"].contains(&kind.as_str()) {
            return Err(SpError::invalid(format!(
                "identifiersType {kind:?} is not supported; use ASIN, UPC, EAN, GTIN, ISBN or SKU."
            )));
        }
        let s = stores.clone();
        st.app
            .service
            .read(move |tx, _| {
                let mut out: Vec<DetailPage> = Vec::new();
                for id in &identifiers {
                    let found: Vec<DetailPage> = match kind.as_str() {
                        "ASIN" => match Asin::parse(id) {
                            Ok(a) => tx.pages_of_asin(&a)?,
                            Err(_) => Vec::new(),
                        },
                        "SKU" => match Sku::parse(id) {
                            Ok(sku) => {
                                let state = tx.load_sku(&seller, &sku)?;
                                let mut v = Vec::new();
                                if let Some(l) = state.listings.first() {
                                    v = tx.pages_of_asin(&l.asin)?;
                                }
                                v
                            }
                            Err(_) => Vec::new(),
                        },
                        _ => tx.pages_by_identifier(&id.trim().to_ascii_uppercase())?,
                    };
                    for p in found {
                        if s.contains(&p.store) && !out.contains(&p) {
                            out.push(p);
                        }
                    }
                }
                Ok(out)
            })
            .await?
    } else if !keywords.trim().is_empty() {
        let text = keywords.trim().to_owned();
        if text.chars().count() > KEYWORDS_CHARS_MAX {
            return Err(SpError::invalid(format!(
                "keywords have at most {KEYWORDS_CHARS_MAX} characters."
            )));
        }
        let s = stores.clone();
        st.app
            .service
            .read(move |tx, _| {
                let mut out = Vec::new();
                for store in &s {
                    out.extend(tx.search_pages(store, &text, KEYWORD_RESULTS_MAX)?);
                }
                Ok(out)
            })
            .await?
    } else {
        return Err(SpError::invalid(
            "Search with identifiers and identifiersType, or with keywords.",
        ));
    };
    let grouped = group(pages);
    let total = grouped.len();
    let items: Vec<Value> = grouped
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(asin, pages)| item_json(asin, pages, &region.stores, &included))
        .collect();
    let mut pagination = serde_json::Map::new();
    if offset + page_size < total {
        pagination.insert(
            "nextToken".into(),
            json!(hex::encode((offset + page_size).to_string())),
        );
    }
    if offset > 0 {
        pagination.insert(
            "previousToken".into(),
            json!(hex::encode(offset.saturating_sub(page_size).to_string())),
        );
    }
    let brands: Vec<String> = {
        let mut b: Vec<String> = grouped
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.brand.clone()))
            .collect();
        b.sort();
        b.dedup();
        b
    };
    Ok(Json(json!({
        "numberOfResults": total,
        "pagination": Value::Object(pagination),
        "refinements": {
            "brands": brands.iter().map(|b| json!({"numberOfResults": grouped.iter().filter(|(_, p)| p.iter().any(|x| &x.brand == b)).count(), "brandName": b})).collect::<Vec<_>>(),
            "classifications": [],
        },
        "items": items,
    })))
}

/// `GET /catalog/2022-04-01/items/{asin}`
pub async fn item(
    State(st): State<SpState>,
    _seller: SpSeller,
    path: Result<Path<String>, PathRejection>,
    q: RawQuery,
) -> SpResult<Json<Value>> {
    let raw = path
        .map(|Path(s)| s)
        .map_err(|e| SpError::invalid(format!("The path could not be read: {}", e.body_text())))?;
    let asin = Asin::parse(&raw).map_err(SpError::from)?;
    let region = st.app.service.region().clone();
    let stores = stores_of(&region, &q.list(MARKETPLACE_PARAMS))?;
    let a = asin.clone();
    let pages: Vec<DetailPage> = st
        .app
        .service
        .read(move |tx, _| tx.pages_of_asin(&a))
        .await?
        .into_iter()
        .filter(|p| stores.contains(&p.store))
        .collect();
    if pages.is_empty() {
        return Err(SpError::not_found(format!(
            "ASIN {asin} has no detail page in the requested marketplaces."
        )));
    }
    Ok(Json(item_json(
        asin.as_str(),
        &pages,
        &region.stores,
        &included(&q),
    )))
}
