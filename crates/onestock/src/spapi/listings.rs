//! Listings Items 2021-08-01: get, put, patch, delete and search a seller's listings,
//! with the attributes of SPEC 8 read into the core's `ListingInput` / `ListingPatch`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::model::{DetailPage, UploadStatus};
use onestock_core::region::Store;
use onestock_core::rules::{
    self, Command, ListingInput, ListingPatch, ListingView, NewProduct, Outcome, PriceInput, Source,
};
use onestock_core::types::{
    Asin, Condition, Fulfillment, SellerId, Sku, StoreCode, check_quantity, format_price,
    parse_price_amount,
};
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::numbers::exact_numbers;
use super::{
    MARKETPLACE_PARAMS, RawQuery, SpError, SpResult, SpSeller, SpState, body_bytes, check_seller,
    json_body, stores_of, time,
};

/// `searchListingsItems` pages: the marketplace's default and largest `pageSize`.
const PAGE_SIZE_DEFAULT: usize = 10;
const PAGE_SIZE_MAX: usize = 20;
/// How long a delete in some of a SKU's stores (a one-row upload underneath) is waited
/// for before answering; the upload worker takes it at once unless a big file is ahead.
const DELETE_WAIT_MAX: Duration = Duration::from_secs(30);
/// How often that upload's status is read while waiting.
const DELETE_POLL: Duration = Duration::from_millis(20);
/// Separates SKU and store inside a `pageToken`; a SKU never holds a control character.
const TOKEN_SEPARATOR: char = '\u{1f}';

type SkuPath = Result<Path<(String, String)>, PathRejection>;

fn path_of(p: SkuPath) -> SpResult<(String, String)> {
    p.map(|Path(v)| v)
        .map_err(|e| SpError::invalid(format!("The path could not be read: {}", e.body_text())))
}

fn sku_of(raw: &str) -> SpResult<Sku> {
    Sku::parse(raw).map_err(SpError::from)
}

/// Which parts of an item an answer carries (`includedData`).
struct Included(Vec<String>);

impl Included {
    fn of(q: &RawQuery, default: &str) -> Included {
        let mut list: Vec<String> = q
            .list(&["includedData", "IncludedData", "included_data"])
            .into_iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if list.is_empty() {
            list.push(default.to_ascii_lowercase());
        }
        Included(list)
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == &name.to_ascii_lowercase())
    }
}

/// The marketplace's condition names (`new_new`) for the core's.
fn sp_condition(c: Condition) -> String {
    match c {
        Condition::New => "new_new".to_owned(),
        Condition::Refurbished => "refurbished_refurbished".to_owned(),
        other => other.as_str().to_owned(),
    }
}

fn condition_of(raw: &str) -> Option<Condition> {
    let lower = raw.trim().to_ascii_lowercase();
    match lower.as_str() {
        "new_new" | "new" => Some(Condition::New),
        "refurbished_refurbished" | "refurbished" => Some(Condition::Refurbished),
        other => Condition::parse(other),
    }
}

fn channel(f: Fulfillment) -> &'static str {
    match f {
        Fulfillment::Merchant => "DEFAULT",
        Fulfillment::Marketplace => "AMAZON_NA",
    }
}

fn summary_status(v: &ListingView) -> Vec<&'static str> {
    use onestock_core::model::InactiveReason;
    if v.active {
        vec!["BUYABLE", "DISCOVERABLE"]
    } else if v.reasons.iter().all(|r| *r == InactiveReason::OutOfStock) {
        vec!["DISCOVERABLE"]
    } else {
        Vec::new()
    }
}

/// The JSON number of a price, for `value_with_tax` in answers. Prices have at most two
/// decimals and fit far inside an `f64`'s 15 exact digits, whose shortest text is the
/// same decimal; `offers[].price.amount` carries it as an exact string besides.
fn price_number(d: &rust_decimal::Decimal) -> Value {
    d.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or_else(|| json!(format_price(d)))
}

/// One item of Listings Items: the listings given (each of a requested store).
fn item_json(
    sku: &Sku,
    views: &[ListingView],
    pages: &HashMap<StoreCode, DetailPage>,
    stores: &[Store],
    included: &Included,
    now: OffsetDateTime,
) -> Value {
    let mp = |code: &StoreCode| {
        stores
            .iter()
            .find(|s| &s.code == code)
            .map(|s| s.marketplace_id.clone())
            .unwrap_or_default()
    };
    let mut item = serde_json::Map::new();
    item.insert("sku".into(), json!(sku.as_str()));
    if included.has("summaries") {
        let summaries: Vec<Value> = views
            .iter()
            .map(|v| {
                let page = pages.get(&v.store);
                json!({
                    "marketplaceId": mp(&v.store),
                    "asin": v.asin.as_str(),
                    "productType": page.map(|p| p.product_type.as_str()).unwrap_or("PRODUCT"),
                    "conditionType": sp_condition(v.condition),
                    "status": summary_status(v),
                    "itemName": page.map(|p| p.title.as_str()).unwrap_or(""),
                    "createdDate": time(now),
                    "lastUpdatedDate": time(now),
                })
            })
            .collect();
        item.insert("summaries".into(), Value::Array(summaries));
    }
    if included.has("attributes") {
        let mut condition = Vec::new();
        let mut asin = Vec::new();
        let mut offer = Vec::new();
        let mut availability = Vec::new();
        let mut name = Vec::new();
        for v in views {
            let m = mp(&v.store);
            condition.push(json!({"value": sp_condition(v.condition), "marketplace_id": m}));
            asin.push(json!({"value": v.asin.as_str(), "marketplace_id": m}));
            let mut o = json!({
                "marketplace_id": m,
                "currency": v.currency,
                "our_price": [{"schedule": [{"value_with_tax": price_number(&v.price)}]}],
            });
            if let (Some(at), Some(obj)) = (v.start_selling_at, o.as_object_mut()) {
                obj.insert("start_at".into(), json!({"value": time(at)}));
            }
            offer.push(o);
            availability.push(json!({
                "fulfillment_channel_code": channel(v.fulfillment),
                "quantity": v.quantity,
                "marketplace_id": m,
            }));
            if let Some(p) = pages.get(&v.store) {
                name.push(
                    json!({"value": p.title, "language_tag": p.language, "marketplace_id": m}),
                );
            }
        }
        item.insert(
            "attributes".into(),
            json!({
                "condition_type": condition,
                "merchant_suggested_asin": asin,
                "purchasable_offer": offer,
                "fulfillment_availability": availability,
                "item_name": name,
            }),
        );
    }
    if included.has("issues") {
        item.insert("issues".into(), json!([]));
    }
    if included.has("offers") {
        let offers: Vec<Value> = views
            .iter()
            .map(|v| {
                json!({
                    "marketplaceId": mp(&v.store),
                    "offerType": "B2C",
                    "price": {"currencyCode": v.currency, "currency": v.currency, "amount": format_price(&v.price)},
                })
            })
            .collect();
        item.insert("offers".into(), Value::Array(offers));
    }
    if included.has("fulfillmentAvailability") {
        let mut seen: Vec<i64> = Vec::new();
        let mut out = Vec::new();
        for v in views {
            if !seen.contains(&v.pool_id) {
                seen.push(v.pool_id);
                out.push(json!({
                    "fulfillmentChannelCode": channel(v.fulfillment),
                    "quantity": v.quantity,
                }));
            }
        }
        item.insert("fulfillmentAvailability".into(), Value::Array(out));
    }
    Value::Object(item)
}

/// The SKU's listings in `stores` and their detail pages.
async fn load_views(
    st: &SpState,
    seller: &SellerId,
    sku: &Sku,
    stores: &[StoreCode],
) -> SpResult<(Vec<ListingView>, HashMap<StoreCode, DetailPage>)> {
    let (seller, sku, stores) = (seller.clone(), sku.clone(), stores.to_vec());
    Ok(st
        .app
        .service
        .read(move |tx, ctx| {
            let state = tx.load_sku(&seller, &sku)?;
            let views: Vec<ListingView> = rules::sku_views(ctx.region, &state, ctx.now)
                .into_iter()
                .filter(|v| stores.contains(&v.store))
                .collect();
            let mut pages = HashMap::new();
            for v in &views {
                if let Some(p) = tx.page(&v.asin, &v.store)? {
                    pages.insert(v.store.clone(), p);
                }
            }
            Ok((views, pages))
        })
        .await?)
}

fn region_stores(st: &SpState) -> Vec<Store> {
    st.app.service.region().stores.clone()
}

/// `GET /listings/2021-08-01/items/{sellerId}/{sku}`
pub async fn get(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    path: SkuPath,
    q: RawQuery,
) -> SpResult<Json<Value>> {
    let (seller_id, raw_sku) = path_of(path)?;
    check_seller(&seller_id, &seller)?;
    let sku = sku_of(&raw_sku)?;
    let stores = stores_of(st.app.service.region(), &q.list(MARKETPLACE_PARAMS))?;
    let (views, pages) = load_views(&st, &seller, &sku, &stores).await?;
    if views.is_empty() {
        return Err(SpError::not_found(format!(
            "SKU {sku} is not listed in the requested marketplaces."
        )));
    }
    let included = Included::of(&q, "summaries");
    Ok(Json(item_json(
        &sku,
        &views,
        &pages,
        &region_stores(&st),
        &included,
        st.app.service.now(),
    )))
}

/// `GET /listings/2021-08-01/items/{sellerId}` (`searchListingsItems`): the seller's
/// listings in the first marketplace named, in SKU order, `pageSize` at a time.
pub async fn search(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    path: Result<Path<String>, PathRejection>,
    q: RawQuery,
) -> SpResult<Json<Value>> {
    let seller_id = path
        .map(|Path(s)| s)
        .map_err(|e| SpError::invalid(format!("The path could not be read: {}", e.body_text())))?;
    check_seller(&seller_id, &seller)?;
    let region = st.app.service.region();
    let stores = stores_of(region, &q.list(MARKETPLACE_PARAMS))?;
    let store = stores[0].clone();
    let limit = match q.one(&["pageSize", "PageSize", "page_size"]) {
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
    let after = q
        .one(&["pageToken", "PageToken", "page_token"])
        .map(|t| decode_token(&t, &store))
        .transpose()?;
    let only: Option<Vec<String>> = {
        let ids = q.list(&["identifiers"]);
        let kind = q.one(&["identifiersType"]).unwrap_or_default();
        (!ids.is_empty() && kind.eq_ignore_ascii_case("SKU")).then_some(ids)
    };
    let s = store.clone();
    let (views, next, pages) = st
        .app
        .service
        .read(move |tx, ctx| {
            let (views, next) = rules::listing_page(
                tx,
                ctx.region,
                &seller,
                Some(&s),
                None,
                after,
                limit,
                ctx.now,
            )?;
            let views: Vec<ListingView> = views
                .into_iter()
                .filter(|v| {
                    only.as_ref()
                        .is_none_or(|ids| ids.iter().any(|i| i == v.sku.as_str()))
                })
                .collect();
            let mut pages = HashMap::new();
            for v in &views {
                if let Some(p) = tx.page(&v.asin, &v.store)? {
                    pages.insert(v.asin.as_str().to_owned(), p);
                }
            }
            Ok((views, next, pages))
        })
        .await?;
    let included = Included::of(&q, "summaries");
    let all = region_stores(&st);
    let now = st.app.service.now();
    let items: Vec<Value> = views
        .iter()
        .map(|v| {
            let mut p = HashMap::new();
            if let Some(page) = pages.get(v.asin.as_str()) {
                p.insert(v.store.clone(), page.clone());
            }
            item_json(&v.sku, std::slice::from_ref(v), &p, &all, &included, now)
        })
        .collect();
    let mut pagination = serde_json::Map::new();
    if let Some((sku, _)) = next {
        pagination.insert("nextToken".into(), json!(encode_token(&sku)));
    }
    Ok(Json(json!({
        "numberOfResults": items.len(),
        "pagination": Value::Object(pagination),
        "items": items,
    })))
}

fn encode_token(sku: &Sku) -> String {
    hex::encode(format!("{}{TOKEN_SEPARATOR}", sku.as_str()))
}

fn decode_token(raw: &str, store: &StoreCode) -> SpResult<(Sku, StoreCode)> {
    let bad =
        || SpError::invalid("This pageToken is not one the server gave; pass nextToken as it is.");
    let bytes = hex::decode(raw.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let sku = text.strip_suffix(TOKEN_SEPARATOR).ok_or_else(bad)?;
    Ok((Sku::parse(sku).map_err(|_| bad())?, store.clone()))
}

// ---------------------------------------------------------------------------
// Reading the marketplace's attributes.

/// The body's numbers as they were written, and where the attributes lie.
pub(super) struct Exact {
    pub(super) numbers: HashMap<String, String>,
}

/// The entry of an attribute for `store`: the one naming its marketplace, else the first
/// naming none. Returns its index too, for the pointer of exact numbers.
fn entry_for<'a>(list: &'a Value, store: &Store) -> Option<(usize, &'a Value)> {
    let items = list.as_array()?;
    let named = items.iter().enumerate().find(|(_, v)| {
        v.get("marketplace_id").and_then(Value::as_str) == Some(store.marketplace_id.as_str())
    });
    named.or_else(|| {
        items
            .iter()
            .enumerate()
            .find(|(_, v)| v.get("marketplace_id").is_none_or(Value::is_null))
    })
}

fn str_value(v: &Value) -> Option<&str> {
    v.get("value")
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
}

fn issue_error(code: ErrorCode, field: &str, message: String) -> DomainError {
    DomainError::new(code, message).field(field)
}

/// `purchasable_offer` for the store: the price and the start-selling time. `pointer` is
/// where the entry lies in the body, for the exact text of `value_with_tax`.
fn read_offer(
    entry: &Value,
    pointer: &str,
    store: &Store,
    exact: &Exact,
) -> Result<(Option<PriceInput>, Option<Option<OffsetDateTime>>), DomainError> {
    let currency = entry
        .get("currency")
        .and_then(Value::as_str)
        .unwrap_or(store.currency.as_str())
        .to_owned();
    let mut price = None;
    if let Some(schedule) = entry
        .get("our_price")
        .and_then(|p| p.get(0))
        .and_then(|p| p.get("schedule"))
        .and_then(|s| s.get(0))
    {
        let at = format!("{pointer}/our_price/0/schedule/0/value_with_tax");
        let text = match schedule.get("value_with_tax") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(_)) => exact.numbers.get(&at).cloned(),
            Some(_) => {
                return Err(issue_error(
                    ErrorCode::InvalidPrice,
                    "price",
                    "value_with_tax is a number like 19.99.".into(),
                ));
            }
        };
        if let Some(text) = text {
            let amount = parse_price_amount(&text).map_err(|e| e.field("price"))?;
            price = Some(PriceInput { amount, currency });
        }
    }
    let start = match entry.get("start_at") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => {
            let raw = str_value(v).unwrap_or("");
            let t = OffsetDateTime::parse(raw.trim(), &Rfc3339).map_err(|_| {
                issue_error(
                    ErrorCode::InvalidRequest,
                    "start_selling_at",
                    format!("start_at.value is an RFC 3339 time; got {raw:?}."),
                )
            })?;
            Some(Some(t))
        }
    };
    Ok((price, start))
}

fn read_availability(entry: &Value) -> Result<(Option<Fulfillment>, Option<i64>), DomainError> {
    let fulfillment = match entry
        .get("fulfillment_channel_code")
        .and_then(Value::as_str)
    {
        None => None,
        Some(c) if c.eq_ignore_ascii_case("DEFAULT") => Some(Fulfillment::Merchant),
        Some(c) if c.to_ascii_uppercase().starts_with("AMAZON") => Some(Fulfillment::Marketplace),
        Some(c) => {
            return Err(issue_error(
                ErrorCode::InvalidRequest,
                "fulfillment",
                format!("fulfillment_channel_code is DEFAULT or AMAZON_NA; got {c:?}."),
            ));
        }
    };
    let quantity = match entry.get("quantity") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let q = v.as_i64().ok_or_else(|| {
                issue_error(
                    ErrorCode::InvalidQuantity,
                    "quantity",
                    format!("quantity is a whole number; got {v}."),
                )
            })?;
            Some(check_quantity(q, "quantity")?)
        }
    };
    Ok((fulfillment, quantity))
}

fn read_condition(entry: &Value) -> Result<Condition, DomainError> {
    let raw = str_value(entry).unwrap_or("");
    condition_of(raw).ok_or_else(|| {
        issue_error(
            ErrorCode::InvalidRequest,
            "condition",
            format!("condition_type {raw:?} is not one this marketplace knows (new_new, used_like_new, ...)."),
        )
    })
}

/// What a put's attributes say for one store.
#[derive(Default)]
pub(super) struct PutAttrs {
    pub(super) input: ListingInput,
    /// (type, value) of `externally_assigned_product_identifier`.
    pub(super) identifiers: Vec<(String, String)>,
    title: Option<String>,
    language: Option<String>,
    brand: Option<String>,
    description: Option<String>,
}

/// `base`: where `attrs` lies in the body, for the exact text of its numbers.
pub(super) fn read_put(
    attrs: &Value,
    store: &Store,
    exact: &Exact,
    base: &str,
) -> Result<PutAttrs, DomainError> {
    let mut out = PutAttrs::default();
    let get = |name: &str| attrs.get(name).and_then(|l| entry_for(l, store));
    if let Some((_, e)) = get("merchant_suggested_asin") {
        let raw = str_value(e).unwrap_or("");
        out.input.asin = Some(Asin::parse(raw).map_err(|e| e.field("asin"))?);
    }
    if let Some(list) = attrs
        .get("externally_assigned_product_identifier")
        .and_then(Value::as_array)
    {
        for e in list {
            let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
            let value = str_value(e).unwrap_or("");
            out.identifiers
                .push((kind.to_ascii_uppercase(), value.to_owned()));
        }
    }
    if let Some((_, e)) = get("condition_type") {
        out.input.condition = Some(read_condition(e)?);
    }
    if let Some((i, e)) = get("purchasable_offer") {
        let (price, start) = read_offer(e, &format!("{base}/purchasable_offer/{i}"), store, exact)?;
        out.input.price = price;
        out.input.start_selling_at = start;
    }
    if let Some((_, e)) = get("fulfillment_availability") {
        let (f, q) = read_availability(e)?;
        out.input.fulfillment = f;
        out.input.quantity = q;
    }
    if let Some((_, e)) = get("item_name") {
        out.title = str_value(e).map(str::to_owned);
        out.language = e
            .get("language_tag")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    out.brand = get("brand").and_then(|(_, e)| str_value(e).map(str::to_owned));
    out.description = get("product_description").and_then(|(_, e)| str_value(e).map(str::to_owned));
    Ok(out)
}

/// The marketplace attribute a core field belongs to, for `attributeNames`.
fn attribute_names(field: Option<&str>) -> Vec<&'static str> {
    let Some(field) = field else {
        return Vec::new();
    };
    let f = field.to_ascii_lowercase();
    let name = if f.contains("price") || f.contains("currency") || f.contains("start_selling") {
        "purchasable_offer"
    } else if f.contains("quantity") || f.contains("fulfillment") {
        "fulfillment_availability"
    } else if f.contains("condition") {
        "condition_type"
    } else if f.contains("asin") || f.contains("product-id") {
        "merchant_suggested_asin"
    } else if f.contains("identifier") {
        "externally_assigned_product_identifier"
    } else if f.contains("title") || f.contains("language") {
        "item_name"
    } else if f.contains("brand") {
        "brand"
    } else if f.contains("description") {
        "product_description"
    } else if f.contains("product_type") {
        "productType"
    } else {
        return Vec::new();
    };
    vec![name]
}

fn issue(e: &DomainError, store: &Store) -> Value {
    issue_raw(e.code.as_str(), &e.message, e.field.as_deref(), store)
}

fn issue_raw(code: &str, message: &str, field: Option<&str>, store: &Store) -> Value {
    json!({
        "code": code,
        "message": format!("{message} (marketplace {})", store.marketplace_id),
        "severity": "ERROR",
        "attributeNames": attribute_names(field),
        "categories": [],
    })
}

/// Runs a command, or with `preview` judges it without changing anything.
async fn run(st: &SpState, cmd: Command, preview: bool) -> SpResult<Result<Outcome, DomainError>> {
    if preview {
        let decision = st
            .app
            .service
            .read(move |tx, ctx| onestock_core::dry_run::preview(tx, ctx, &cmd))
            .await?;
        return Ok(decision);
    }
    match st.app.service.execute(cmd).await {
        Ok(o) => Ok(Ok(o)),
        Err(crate::service::AppError::Domain(d)) => Ok(Err(d)),
        Err(e) => Err(e.into()),
    }
}

/// The answer of put, patch and delete.
fn submission(sku: &Sku, issues: Vec<Value>, preview: bool, asins: Vec<Value>) -> Json<Value> {
    let status = if !issues.is_empty() {
        "INVALID"
    } else if preview {
        "VALID"
    } else {
        "ACCEPTED"
    };
    let id: [u8; 16] = rand::random();
    let mut body = json!({
        "sku": sku.as_str(),
        "status": status,
        "submissionId": hex::encode(id),
        "issues": issues,
    });
    if !asins.is_empty()
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert("identifiers".into(), Value::Array(asins));
    }
    Json(body)
}

fn preview_of(q: &RawQuery) -> bool {
    q.one(&["mode"])
        .is_some_and(|m| m.eq_ignore_ascii_case("VALIDATION_PREVIEW"))
}

/// Marketplace ids from the query, else from the body (a client that puts them there).
fn body_marketplaces(q: &RawQuery, body: &Value) -> Vec<String> {
    let mut ids = q.list(MARKETPLACE_PARAMS);
    if ids.is_empty() {
        for name in MARKETPLACE_PARAMS {
            match body.get(*name) {
                Some(Value::Array(items)) => {
                    ids.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
                }
                Some(Value::String(s)) => ids.extend(s.split(',').map(|x| x.trim().to_owned())),
                _ => {}
            }
        }
    }
    ids
}

/// What a put and a patch both read first: the SKU (the path's seller must be the
/// token's), the body with its numbers' exact text, the marketplaces and the mode.
struct Written {
    sku: Sku,
    value: Value,
    exact: Exact,
    region: onestock_core::region::Region,
    stores: Vec<StoreCode>,
    preview: bool,
}

async fn written(
    st: &SpState,
    seller: &SellerId,
    path: SkuPath,
    q: &RawQuery,
    body: Body,
) -> SpResult<Written> {
    let (seller_id, raw_sku) = path_of(path)?;
    check_seller(&seller_id, seller)?;
    let sku = sku_of(&raw_sku)?;
    let bytes = body_bytes(body).await?;
    let value = json_body(&bytes)?;
    let exact = Exact {
        numbers: exact_numbers(&bytes),
    };
    let region = st.app.service.region().clone();
    let stores = stores_of(&region, &body_marketplaces(q, &value))?;
    Ok(Written {
        sku,
        value,
        exact,
        region,
        stores,
        preview: preview_of(q),
    })
}

/// `PUT /listings/2021-08-01/items/{sellerId}/{sku}`
pub async fn put(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    path: SkuPath,
    q: RawQuery,
    body: Body,
) -> SpResult<Json<Value>> {
    let Written {
        sku,
        value,
        exact,
        region,
        stores,
        preview,
    } = written(&st, &seller, path, &q, body).await?;
    let attrs = value.get("attributes").cloned().unwrap_or(json!({}));
    if !attrs.is_object() {
        return Err(SpError::invalid("attributes must be a JSON object."));
    }
    let product_type = value
        .get("productType")
        .and_then(Value::as_str)
        .unwrap_or("PRODUCT")
        .to_owned();
    let listing = value
        .get("requirements")
        .and_then(Value::as_str)
        .is_some_and(|r| r.eq_ignore_ascii_case("LISTING"));
    let mut issues = Vec::new();
    let mut asins = Vec::new();
    for code in &stores {
        let Ok(store) = region.store(code.as_str()) else {
            continue;
        };
        match put_one(
            &st,
            &seller,
            &sku,
            store,
            &attrs,
            &exact,
            &product_type,
            listing,
            preview,
        )
        .await?
        {
            Ok(Some(asin)) => {
                asins.push(json!({"marketplaceId": store.marketplace_id, "asin": asin.as_str()}))
            }
            Ok(None) => {}
            Err(e) => issues.push(issue(&e, store)),
        }
    }
    Ok(submission(&sku, issues, preview, asins))
}

/// A put in one store; `Ok(Err)` is a refusal, reported as an issue.
#[allow(clippy::too_many_arguments)]
async fn put_one(
    st: &SpState,
    seller: &SellerId,
    sku: &Sku,
    store: &Store,
    attrs: &Value,
    exact: &Exact,
    product_type: &str,
    listing: bool,
    preview: bool,
) -> SpResult<Result<Option<Asin>, DomainError>> {
    let mut a = match read_put(attrs, store, exact, "/attributes") {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let (listed, _) = load_views(st, seller, sku, std::slice::from_ref(&store.code)).await?;
    if a.input.asin.is_none() && listed.is_empty() {
        if listing && a.title.is_some() {
            // requirements LISTING: the product data makes the detail page (R3).
            let product = NewProduct {
                store: store.code.as_str().to_owned(),
                product_type: product_type.to_owned(),
                title: a.title.clone().unwrap_or_default(),
                brand: a.brand.clone().unwrap_or_default(),
                description: a.description.clone().unwrap_or_default(),
                language: a
                    .language
                    .clone()
                    .unwrap_or_else(|| store.languages.first().cloned().unwrap_or_default()),
                identifiers: a.identifiers.clone(),
                force_new: false,
            };
            match run(st, Command::CreateProduct(product), preview).await? {
                Ok(Outcome::Product { asin, .. }) => {
                    if preview {
                        return Ok(Ok(None));
                    }
                    a.input.asin = Some(asin);
                }
                Ok(_) => {}
                Err(e) => return Ok(Err(e)),
            }
        } else if let Some((kind, value)) = a.identifiers.first().cloned() {
            // An identifier names the product: its page in this store gives the ASIN.
            let v = value.trim().to_ascii_uppercase();
            let code = store.code.clone();
            let found = st
                .app
                .service
                .read(move |tx, _| {
                    Ok(tx
                        .pages_by_identifier(&v)?
                        .into_iter()
                        .find(|p| p.store == code)
                        .map(|p| p.asin))
                })
                .await?;
            match found {
                Some(asin) => a.input.asin = Some(asin),
                None => {
                    return Ok(Err(issue_error(
                        ErrorCode::AsinNotInStore,
                        "product-id",
                        format!(
                            "No detail page in store {} has {kind} {value}; send requirements LISTING with the product data to create it.",
                            store.code
                        ),
                    )));
                }
            }
        }
    }
    if a.input.asin.is_none() {
        // A listing that exists keeps its ASIN: the core's PUT needs it named.
        match listed.first() {
            Some(v) => a.input.asin = Some(v.asin.clone()),
            None => {
                return Ok(Err(issue_error(
                    ErrorCode::InvalidRequest,
                    "asin",
                    "A new listing needs merchant_suggested_asin (or an identifier of a page in this marketplace).".into(),
                )));
            }
        }
    }
    let asin = a.input.asin.clone();
    let cmd = |input: ListingInput| Command::PutListing {
        seller: seller.clone(),
        sku: sku.clone(),
        store: store.code.clone(),
        input,
        source: Source::Api,
        if_match: None,
    };
    match run(st, cmd(a.input.clone()), preview).await? {
        Ok(_) => Ok(Ok(asin)),
        Err(e)
            if e.code == ErrorCode::SharedFieldNotEditable
                && (a.input.quantity.is_some() || a.input.condition.is_some()) =>
        {
            // The listing joins the SKU's shared pool (R6/R7): the marketplace's habit is
            // that the quantity and condition given set the pool, as an upload row does
            // (SPEC 8). Join first, then set the pool through this listing (R11).
            let mut join = a.input.clone();
            let (quantity, condition) = (join.quantity.take(), join.condition.take());
            match run(st, cmd(join), preview).await? {
                Ok(_) if preview => Ok(Ok(asin)),
                Ok(_) => {
                    let patch = ListingPatch {
                        quantity,
                        condition,
                        ..ListingPatch::default()
                    };
                    let c = Command::PatchListing {
                        seller: seller.clone(),
                        sku: sku.clone(),
                        store: store.code.clone(),
                        patch,
                        if_match: None,
                    };
                    Ok(run(st, c, false).await?.map(|_| asin))
                }
                Err(e) => Ok(Err(e)),
            }
        }
        Err(e) => Ok(Err(e)),
    }
}

/// `PATCH /listings/2021-08-01/items/{sellerId}/{sku}`: `patches` of
/// `/attributes/purchasable_offer`, `/attributes/fulfillment_availability` and
/// `/attributes/condition_type`, for every marketplace named (prices per store in one
/// call).
pub async fn patch(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    path: SkuPath,
    q: RawQuery,
    body: Body,
) -> SpResult<Json<Value>> {
    let Written {
        sku,
        value,
        exact,
        region,
        stores,
        preview,
    } = written(&st, &seller, path, &q, body).await?;
    let Some(patches) = value.get("patches").and_then(Value::as_array) else {
        return Err(SpError::invalid(
            "The body needs patches: [{op, path, value}].",
        ));
    };
    let mut issues = Vec::new();
    for code in &stores {
        let Ok(store) = region.store(code.as_str()) else {
            continue;
        };
        let patch = match read_patches(patches, store, &exact, "/patches") {
            Ok(p) => p,
            Err(e) => {
                issues.push(issue(&e, store));
                continue;
            }
        };
        if patch == ListingPatch::default() {
            continue;
        }
        let cmd = Command::PatchListing {
            seller: seller.clone(),
            sku: sku.clone(),
            store: store.code.clone(),
            patch,
            if_match: None,
        };
        if let Err(e) = run(&st, cmd, preview).await? {
            issues.push(issue(&e, store));
        }
    }
    Ok(submission(&sku, issues, preview, Vec::new()))
}

/// `base`: where `patches` lies in the body, for the exact text of its numbers.
pub(super) fn read_patches(
    patches: &[Value],
    store: &Store,
    exact: &Exact,
    base: &str,
) -> Result<ListingPatch, DomainError> {
    let mut out = ListingPatch::default();
    for (i, p) in patches.iter().enumerate() {
        let op = p.get("op").and_then(Value::as_str).unwrap_or("replace");
        let path = p.get("path").and_then(Value::as_str).unwrap_or("");
        let name = path.trim_start_matches("/attributes/");
        let value = p.get("value").cloned().unwrap_or(Value::Null);
        let Some((j, entry)) = entry_for(&value, store) else {
            continue;
        };
        if op.eq_ignore_ascii_case("delete")
            && matches!(
                name,
                "purchasable_offer" | "fulfillment_availability" | "condition_type"
            )
        {
            return Err(issue_error(
                ErrorCode::InvalidRequest,
                name,
                format!(
                    "{name} cannot be deleted: a listing always has a price, a quantity and a condition. Delete the listing instead."
                ),
            ));
        }
        match name {
            "purchasable_offer" => {
                let (price, start) =
                    read_offer(entry, &format!("{base}/{i}/value/{j}"), store, exact)?;
                if price.is_some() {
                    out.price = price;
                }
                if start.is_some() {
                    out.start_selling_at = start;
                }
            }
            "fulfillment_availability" => {
                let (_, q) = read_availability(entry)?;
                if q.is_some() {
                    out.quantity = q;
                }
            }
            "condition_type" => out.condition = Some(read_condition(entry)?),
            // Other attributes (item_name, ...) describe the product, not the offer:
            // onestock keeps them on the detail page, which a patch does not change.
            _ => {}
        }
    }
    Ok(out)
}

/// `DELETE /listings/2021-08-01/items/{sellerId}/{sku}`: the SKU's listings in the
/// marketplaces named. All of them: the SKU is deleted (R16). Some: each is deleted in
/// its store only, by a one-row upload (`add-delete` `d`, SPEC 5) applied by the same
/// worker and rules as every upload.
pub async fn delete(
    State(st): State<SpState>,
    SpSeller(seller): SpSeller,
    path: SkuPath,
    q: RawQuery,
) -> SpResult<Json<Value>> {
    let (seller_id, raw_sku) = path_of(path)?;
    check_seller(&seller_id, &seller)?;
    let sku = sku_of(&raw_sku)?;
    let region = st.app.service.region().clone();
    let stores = stores_of(&region, &q.list(MARKETPLACE_PARAMS))?;
    let all: Vec<StoreCode> = region.stores.iter().map(|s| s.code.clone()).collect();
    let (listed, _) = load_views(&st, &seller, &sku, &all).await?;
    let listed: Vec<StoreCode> = listed.into_iter().map(|v| v.store).collect();
    let targets: Vec<StoreCode> = stores
        .iter()
        .filter(|s| listed.contains(s))
        .cloned()
        .collect();
    if targets.is_empty() {
        return Err(SpError::not_found(format!(
            "SKU {sku} is not listed in the requested marketplaces."
        )));
    }
    let mut issues = Vec::new();
    if listed.iter().all(|s| targets.contains(s)) {
        let cmd = Command::DeleteSku {
            seller: seller.clone(),
            sku: sku.clone(),
            source: Source::Api,
        };
        if let Err(e) = run(&st, cmd, false).await?
            && let Some(store) = region.stores.first()
        {
            issues.push(issue(&e, store));
        }
    } else {
        for code in &targets {
            if let Some((c, message)) = delete_in_store(&st, &seller, &sku, code).await?
                && let Ok(store) = region.store(code.as_str())
            {
                issues.push(issue_raw(&c, &message, None, store));
            }
        }
    }
    Ok(submission(&sku, issues, false, Vec::new()))
}

/// Deletes the SKU's listing in one store through a one-row upload, and waits for it.
async fn delete_in_store(
    st: &SpState,
    seller: &SellerId,
    sku: &Sku,
    store: &StoreCode,
) -> SpResult<Option<(String, String)>> {
    // A SKU holds no tab or line break (printable characters only), and the reader of
    // tab-separated files takes a cell as written, quotes included.
    let file = format!("sku\tadd-delete\n{}\td\n", sku.as_str());
    let upload = st
        .app
        .uploads
        .receive(seller.clone(), store.clone(), Body::from(file))
        .await?;
    let deadline = tokio::time::Instant::now() + DELETE_WAIT_MAX;
    loop {
        let u = st.app.uploads.get(seller, &upload.upload_id).await?;
        match u.status {
            UploadStatus::Done if u.records_failed == 0 => return Ok(None),
            UploadStatus::Done | UploadStatus::Fatal => {
                let id = u.upload_id.clone();
                let lines = st.app.service.read(move |tx, _| tx.report(&id)).await?;
                let line = lines
                    .into_iter()
                    .find(|l| l.kind == onestock_core::model::ReportKind::Error);
                let e = match line {
                    Some(l) => (l.code, l.message),
                    None => (
                        ErrorCode::InvalidRequest.as_str().to_owned(),
                        u.error
                            .unwrap_or_else(|| "The delete was not applied.".into()),
                    ),
                };
                return Ok(Some(e));
            }
            UploadStatus::InQueue | UploadStatus::InProgress => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Some((
                ErrorCode::InvalidRequest.as_str().to_owned(),
                format!(
                    "The delete is queued as upload {} behind other uploads and not applied yet; read it with GET /v1/uploads/{}.",
                    upload.upload_id, upload.upload_id
                ),
            )));
        }
        tokio::time::sleep(DELETE_POLL).await;
    }
}
