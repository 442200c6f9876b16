//! Store listings (seller): put, patch, close, relist, delete, read, pages and ledger.

use axum::Json;
use axum::extract::State;
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use onestock_core::rules::{
    self, Command, ListingInput, ListingPatch, ListingView, Outcome, PriceInput, Source,
};
use onestock_core::types::{Asin, Condition, StoreCode};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Obj, PathParams, QueryParams, Seller};
use super::input;
use super::render;
use crate::server::AppState;

/// Listing pages hold 50 items unless asked otherwise, at most 1,000 (SPEC 4.1).
const PAGE_LIMIT_DEFAULT: usize = 50;
const PAGE_LIMIT_MAX: usize = 1000;

const LISTING_FIELDS: &[&str] = &[
    "asin",
    "price",
    "share",
    "condition",
    "quantity",
    "fulfillment",
    "start_selling_at",
];
const PATCH_FIELDS: &[&str] = &[
    "quantity",
    "quantity_delta",
    "condition",
    "price",
    "start_selling_at",
];

/// A listing view with its pool version as `ETag`.
fn view_response(status: StatusCode, view: &ListingView, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", view.pool_version)) {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}

/// The view of the listing a command changed, whether it was created, and the stores
/// it affected.
fn changed_listing(
    state: &AppState,
    outcome: Outcome,
) -> ApiResult<(ListingView, bool, Vec<StoreCode>)> {
    match outcome {
        Outcome::Listing {
            state: sku_state,
            store,
            created,
            affected_stores,
        } => {
            let service = &state.service;
            let view = rules::listing_view(service.region(), &sku_state, &store, service.now())
                .ok_or_else(|| {
                    ApiError::Internal(format!(
                        "listing {} in {store} missing from its own outcome",
                        sku_state.sku
                    ))
                })?;
            Ok((view, created, affected_stores))
        }
        other => Err(ApiError::Internal(format!(
            "unexpected outcome for a listing command: {other:?}"
        ))),
    }
}

/// The fields PUT and PATCH both take, parsed alike.
struct CommonFields {
    price: Option<PriceInput>,
    condition: Option<Condition>,
    quantity: Option<i64>,
    start_selling_at: Option<Option<OffsetDateTime>>,
}

fn take_pool_and_listing_fields(obj: &mut Obj) -> ApiResult<CommonFields> {
    Ok(CommonFields {
        price: obj
            .take_some("price")
            .map(|v| input::price(v, "price"))
            .transpose()?,
        condition: obj
            .take_some("condition")
            .map(|v| input::condition(&v, "condition"))
            .transpose()?,
        quantity: obj
            .take_some("quantity")
            .map(|v| input::quantity(&v, "quantity"))
            .transpose()?,
        start_selling_at: obj
            .take("start_selling_at")
            .map(|v| input::start_selling_at(v, "start_selling_at"))
            .transpose()?,
    })
}

/// The pool version of the `If-Match` header, when one is given (R21).
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    match headers.get(IF_MATCH) {
        None => Ok(None),
        Some(v) => {
            let raw = v.to_str().map_err(|_| {
                ApiError::invalid("If-Match", "If-Match must be a pool version like \"3\".")
            })?;
            input::if_match(raw)
        }
    }
}

/// `PUT /v1/listings/{sku}/stores/{store}`
pub async fn put(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams((sku, store)): PathParams<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let sku = input::sku(&sku, "sku")?;
    let store = input::store(state.service.region(), &store)?;
    let if_match = if_match(&headers)?;
    let mut obj = Obj::new(body, "", LISTING_FIELDS)?;
    let asin = Asin::parse(&obj.req_str("asin")?)?;
    let shared = take_pool_and_listing_fields(&mut obj)?;
    let listing = ListingInput {
        asin: Some(asin),
        // Absent: the rules answer PRICE_REQUIRED for a new listing.
        price: shared.price,
        share: obj
            .take_some("share")
            .map(|v| input::share(&v, "share"))
            .transpose()?,
        condition: shared.condition,
        quantity: shared.quantity,
        fulfillment: obj
            .take_some("fulfillment")
            .map(|v| input::fulfillment(&v, "fulfillment"))
            .transpose()?,
        start_selling_at: shared.start_selling_at,
    };
    let outcome = state
        .service
        .execute(Command::PutListing {
            seller,
            sku,
            store,
            input: listing,
            source: Source::Api,
            if_match,
        })
        .await?;
    let (view, created, _) = changed_listing(&state, outcome)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(view_response(status, &view, render::listing_view(&view)))
}

/// `PATCH /v1/listings/{sku}/stores/{store}`
pub async fn patch(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams((sku, store)): PathParams<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let sku = input::sku(&sku, "sku")?;
    let store = input::store(state.service.region(), &store)?;
    let if_match = if_match(&headers)?;
    let mut obj = Obj::new(body, "", PATCH_FIELDS)?;
    let shared = take_pool_and_listing_fields(&mut obj)?;
    let patch = ListingPatch {
        quantity: shared.quantity,
        quantity_delta: obj
            .take_some("quantity_delta")
            .map(|v| input::integer(&v, "quantity_delta"))
            .transpose()?,
        condition: shared.condition,
        price: shared.price,
        start_selling_at: shared.start_selling_at,
    };
    let outcome = state
        .service
        .execute(Command::PatchListing {
            seller,
            sku,
            store,
            patch,
            if_match,
        })
        .await?;
    let (view, _, affected) = changed_listing(&state, outcome)?;
    let body = json!({
        "listing": render::listing_view(&view),
        "affected_stores": render::stores(&affected),
    });
    Ok(view_response(StatusCode::OK, &view, body))
}

async fn set_closed(
    state: AppState,
    seller: Seller,
    sku: String,
    store: String,
    closed: bool,
) -> ApiResult<Response> {
    let sku = input::sku(&sku, "sku")?;
    let store = input::store(state.service.region(), &store)?;
    let outcome = state
        .service
        .execute(Command::SetClosed {
            seller: seller.0,
            sku,
            store,
            closed,
        })
        .await?;
    let (view, _, _) = changed_listing(&state, outcome)?;
    Ok(view_response(
        StatusCode::OK,
        &view,
        render::listing_view(&view),
    ))
}

/// `POST /v1/listings/{sku}/stores/{store}/close`
pub async fn close(
    State(state): State<AppState>,
    seller: Seller,
    PathParams((sku, store)): PathParams<(String, String)>,
) -> ApiResult<Response> {
    set_closed(state, seller, sku, store, true).await
}

/// `POST /v1/listings/{sku}/stores/{store}/relist`
pub async fn relist(
    State(state): State<AppState>,
    seller: Seller,
    PathParams((sku, store)): PathParams<(String, String)>,
) -> ApiResult<Response> {
    set_closed(state, seller, sku, store, false).await
}

/// `DELETE /v1/listings/{sku}`
pub async fn delete(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(sku): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let sku = input::sku(&sku, "sku")?;
    let outcome = state
        .service
        .execute(Command::DeleteSku {
            seller,
            sku,
            source: Source::Api,
        })
        .await?;
    match outcome {
        Outcome::Deleted {
            sku,
            deleted_stores,
        } => Ok(Json(json!({
            "sku": sku.as_str(),
            "deleted_stores": render::stores(&deleted_stores),
        }))),
        other => Err(ApiError::Internal(format!(
            "unexpected outcome for a delete: {other:?}"
        ))),
    }
}

/// `GET /v1/listings/{sku}`
pub async fn get(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(raw): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let sku = input::sku(&raw, "sku")?;
    let s = sku.clone();
    let views = state
        .service
        .read(move |tx, ctx| {
            let sku_state = tx.load_sku(&seller, &s)?;
            Ok(rules::sku_views(ctx.region, &sku_state, ctx.now))
        })
        .await?;
    if views.is_empty() {
        return Err(ApiError::not_found(format!(
            "You have no listing of SKU {sku}."
        )));
    }
    Ok(Json(json!({
        "sku": sku.as_str(),
        "listings": views.iter().map(render::listing_view).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct PageQuery {
    store: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/listings?store=&status=&cursor=&limit=`
pub async fn page(
    State(state): State<AppState>,
    Seller(seller): Seller,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Value>> {
    let region = state.service.region();
    let store = q
        .store
        .as_deref()
        .map(|s| input::store(region, s))
        .transpose()?;
    let active = match q.status.as_deref() {
        None => None,
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid(
                "status",
                format!("status is \"active\" or \"inactive\"; got {other:?}."),
            ));
        }
    };
    let after = q
        .cursor
        .as_deref()
        .map(|c| input::decode_cursor(c, region))
        .transpose()?;
    let limit = match q.limit.as_deref() {
        None => PAGE_LIMIT_DEFAULT,
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_LIMIT_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("limit is a whole number from 1 to {PAGE_LIMIT_MAX}; got {raw:?}."),
                )
            })?,
    };
    let (items, next) = state
        .service
        .read(move |tx, ctx| {
            rules::listing_page(
                tx,
                ctx.region,
                &seller,
                store.as_ref(),
                active,
                after,
                limit,
                ctx.now,
            )
        })
        .await?;
    Ok(Json(json!({
        "items": items.iter().map(render::listing_view).collect::<Vec<_>>(),
        "next_cursor": next.map(|(sku, store)| input::encode_cursor(&sku, &store)),
    })))
}

/// `GET /v1/listings/{sku}/ledger`
pub async fn ledger(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(raw): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let sku = input::sku(&raw, "sku")?;
    let s = sku.clone();
    let (entries, listed) = state
        .service
        .read(move |tx, _| {
            let entries = tx.ledger(&seller, &s)?;
            let listed = !tx.load_sku(&seller, &s)?.listings.is_empty();
            Ok((entries, listed))
        })
        .await?;
    if entries.is_empty() && !listed {
        return Err(ApiError::not_found(format!(
            "You have no listing of SKU {sku} and no ledger history for it."
        )));
    }
    Ok(Json(json!({
        "entries": entries.iter().map(render::ledger_entry).collect::<Vec<_>>(),
    })))
}
