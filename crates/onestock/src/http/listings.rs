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
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Obj, PathParams, QueryParams, Seller};
use super::input;
use super::render;
use super::schema;
use crate::server::AppState;

/// Listing pages hold 50 items unless asked otherwise, at most 1,000 (SPEC 4.1).
const PAGE_LIMIT_DEFAULT: usize = 50;
const PAGE_LIMIT_MAX: usize = 1000;

/// The fields of `schema::ListingBody` and `schema::ListingChange` (a test keeps each
/// equal to its type).
pub const LISTING_FIELDS: &[&str] = &[
    "asin",
    "price",
    "share",
    "condition",
    "quantity",
    "fulfillment",
    "start_selling_at",
];
pub const PATCH_FIELDS: &[&str] = &[
    "quantity",
    "quantity_delta",
    "condition",
    "price",
    "start_selling_at",
];

/// A listing view with its pool version as `ETag`.
fn view_response(status: StatusCode, view: &ListingView, body: impl Serialize) -> Response {
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

/// Create a store listing, or change one as PATCH does (R5 to R11).
///
/// Who: seller.
#[utoipa::path(put, path = "/v1/listings/{sku}/stores/{store}", operation_id = "putListing", tag = "seller",
    params(("sku" = String, Path, min_length = 1, max_length = 40, example = "MUG-BLUE-350", description = "The seller's SKU, percent-encoded (1 to 40 printable characters)."), ("store" = String, Path, example = "US", description = "A store code of the region (US, CA, MX by default); matched without regard to case."), ("If-Match" = Option<String>, Header, description = "The pool_version the change is based on, as ETag gave it (R21).")),
    request_body = schema::ListingBody,
    responses(
        (status = 201, description = "Created; ETag is its pool_version", body = schema::ListingView, headers(("ETag" = String, description = "The pool_version, quoted."))),
        (status = 200, description = "Changed; ETag is its pool_version", body = schema::ListingView, headers(("ETag" = String, description = "The pool_version, quoted."))),
        (status = 404, description = "NOT_FOUND: you have no such SKU or listing (also another seller's SKU, R22)", body = schema::ErrorBody), (status = 409, description = "A rule refused the change: one of the 409 codes", body = schema::ErrorBody), (status = 412, description = "VERSION_MISMATCH: If-Match named a stale pool version", body = schema::ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE: a JSON body over 1 MiB", body = schema::ErrorBody),
    ))]
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

/// Change a store listing and its pool: quantity, condition and start time reach every
/// store of the pool, the price only this one.
///
/// Who: seller.
#[utoipa::path(patch, path = "/v1/listings/{sku}/stores/{store}", operation_id = "patchListing", tag = "seller",
    params(("sku" = String, Path, min_length = 1, max_length = 40, example = "MUG-BLUE-350", description = "The seller's SKU, percent-encoded (1 to 40 printable characters)."), ("store" = String, Path, example = "US", description = "A store code of the region (US, CA, MX by default); matched without regard to case."), ("If-Match" = Option<String>, Header, description = "The pool_version the change is based on, as ETag gave it (R21).")),
    request_body = schema::ListingChange,
    responses(
        (status = 200, description = "Changed; ETag is its pool_version", body = schema::PatchAnswer, headers(("ETag" = String, description = "The pool_version, quoted."))),
        (status = 404, description = "NOT_FOUND: you have no such SKU or listing (also another seller's SKU, R22)", body = schema::ErrorBody), (status = 409, description = "A rule refused the change: one of the 409 codes", body = schema::ErrorBody), (status = 412, description = "VERSION_MISMATCH: If-Match named a stale pool version", body = schema::ErrorBody), (status = 413, description = "PAYLOAD_TOO_LARGE: a JSON body over 1 MiB", body = schema::ErrorBody),
    ))]
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
    let body = schema::PatchAnswer {
        listing: render::listing_view(&view),
        affected_stores: render::stores(&affected),
    };
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

/// Take the listing off sale in this store only (R14).
///
/// Who: seller.
#[utoipa::path(post, path = "/v1/listings/{sku}/stores/{store}/close", operation_id = "closeListing", tag = "seller",
    params(("sku" = String, Path, min_length = 1, max_length = 40, example = "MUG-BLUE-350", description = "The seller's SKU, percent-encoded (1 to 40 printable characters)."), ("store" = String, Path, example = "US", description = "A store code of the region (US, CA, MX by default); matched without regard to case.")),
    responses(
        (status = 200, description = "Closed; ETag is its pool_version", body = schema::ListingView, headers(("ETag" = String, description = "The pool_version, quoted."))),
        (status = 404, description = "NOT_FOUND: you have no such SKU or listing (also another seller's SKU, R22)", body = schema::ErrorBody),
    ))]
pub async fn close(
    State(state): State<AppState>,
    seller: Seller,
    PathParams((sku, store)): PathParams<(String, String)>,
) -> ApiResult<Response> {
    set_closed(state, seller, sku, store, true).await
}

/// Open a closed listing again (R14).
///
/// Who: seller.
#[utoipa::path(post, path = "/v1/listings/{sku}/stores/{store}/relist", operation_id = "relistListing", tag = "seller",
    params(("sku" = String, Path, min_length = 1, max_length = 40, example = "MUG-BLUE-350", description = "The seller's SKU, percent-encoded (1 to 40 printable characters)."), ("store" = String, Path, example = "US", description = "A store code of the region (US, CA, MX by default); matched without regard to case.")),
    responses(
        (status = 200, description = "Open again; ETag is its pool_version", body = schema::ListingView, headers(("ETag" = String, description = "The pool_version, quoted."))),
        (status = 404, description = "NOT_FOUND: you have no such SKU or listing (also another seller's SKU, R22)", body = schema::ErrorBody),
    ))]
pub async fn relist(
    State(state): State<AppState>,
    seller: Seller,
    PathParams((sku, store)): PathParams<(String, String)>,
) -> ApiResult<Response> {
    set_closed(state, seller, sku, store, false).await
}

/// Delete a SKU in every store (R16); its ledger stays.
///
/// Who: seller.
#[utoipa::path(delete, path = "/v1/listings/{sku}", operation_id = "deleteSku", tag = "seller",
    params(("sku" = String, Path, min_length = 1, max_length = 40, example = "MUG-BLUE-350", description = "The seller's SKU, percent-encoded (1 to 40 printable characters).")),
    responses(
        (status = 200, description = "Deleted", body = schema::DeleteAnswer),
        (status = 404, description = "NOT_FOUND: you have no such SKU or listing (also another seller's SKU, R22)", body = schema::ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(sku): PathParams<String>,
) -> ApiResult<Json<schema::DeleteAnswer>> {
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
        } => Ok(Json(schema::DeleteAnswer {
            sku: sku.as_str().to_owned(),
            deleted_stores: render::stores(&deleted_stores),
        })),
        other => Err(ApiError::Internal(format!(
            "unexpected outcome for a delete: {other:?}"
        ))),
    }
}

/// A SKU's store listings, in store order.
///
/// Who: seller.
#[utoipa::path(get, path = "/v1/listings/{sku}", operation_id = "getSku", tag = "seller",
    params(("sku" = String, Path, min_length = 1, max_length = 40, example = "MUG-BLUE-350", description = "The seller's SKU, percent-encoded (1 to 40 printable characters).")),
    responses(
        (status = 200, description = "The SKU", body = schema::SkuListings),
        (status = 404, description = "NOT_FOUND: you have no such SKU or listing (also another seller's SKU, R22)", body = schema::ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(raw): PathParams<String>,
) -> ApiResult<Json<schema::SkuListings>> {
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
    Ok(Json(schema::SkuListings {
        sku: sku.as_str().to_owned(),
        listings: views.iter().map(render::listing_view).collect(),
    }))
}

#[derive(Deserialize)]
pub struct PageQuery {
    store: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// A page of the seller's store listings, in SKU order, then store order.
///
/// Who: seller.
#[utoipa::path(get, path = "/v1/listings", operation_id = "listListings", tag = "seller",
    params(
        ("store" = Option<String>, Query, description = "Only this store."),
        ("status" = Option<String>, Query, description = "Only active or inactive listings: active or inactive."),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Listings per page, 1 to 1,000; 50 unless given."),
    ),
    responses((status = 200, description = "One page", body = schema::ListingPage)))]
pub async fn page(
    State(state): State<AppState>,
    Seller(seller): Seller,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<schema::ListingPage>> {
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
    let limit = input::page_limit(q.limit.as_deref(), PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX)?;
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
    Ok(Json(schema::ListingPage {
        items: items.iter().map(render::listing_view).collect(),
        next_cursor: next.map(|(sku, store)| input::encode_cursor(&sku, &store)),
    }))
}

/// Every change of the SKU's pools' quantities, oldest first (R20).
///
/// Who: seller.
#[utoipa::path(get, path = "/v1/listings/{sku}/ledger", operation_id = "getLedger", tag = "seller",
    params(("sku" = String, Path, min_length = 1, max_length = 40, example = "MUG-BLUE-350", description = "The seller's SKU, percent-encoded (1 to 40 printable characters).")),
    responses(
        (status = 200, description = "The ledger, oldest first", body = schema::LedgerAnswer),
        (status = 404, description = "NOT_FOUND: no listing and no ledger history for this SKU", body = schema::ErrorBody),
    ))]
pub async fn ledger(
    State(state): State<AppState>,
    Seller(seller): Seller,
    PathParams(raw): PathParams<String>,
) -> ApiResult<Response> {
    let sku = input::sku(&raw, "sku")?;
    let (s, who) = (sku.clone(), seller.clone());
    let (first, listed) = state
        .service
        .read(move |tx, _| {
            let entries = tx.ledger_page(&who, &s, 0, LEDGER_PAGE_ENTRIES)?;
            let listed = !tx.load_sku(&who, &s)?.listings.is_empty();
            Ok((entries, listed))
        })
        .await?;
    if first.is_empty() && !listed {
        return Err(ApiError::not_found(format!(
            "You have no listing of SKU {sku} and no ledger history for it."
        )));
    }
    if first.len() < LEDGER_PAGE_ENTRIES {
        let answer = schema::LedgerAnswer {
            entries: first.iter().map(render::ledger_entry).collect(),
        };
        return Ok(Json(answer).into_response());
    }
    Ok(ledger_stream(state, seller, sku, first))
}

/// Ledger entries read per storage read: a ledger of any length is answered with the
/// memory of one page, since a busy SKU's ledger grows with every order.
const LEDGER_PAGE_ENTRIES: usize = 5_000;

/// The answer of `LedgerAnswer`, written a page at a time as it is read.
fn ledger_stream(
    state: AppState,
    seller: onestock_core::types::SellerId,
    sku: onestock_core::types::Sku,
    first: Vec<onestock_core::model::LedgerEntry>,
) -> Response {
    fn entries_json(page: &[onestock_core::model::LedgerEntry], first: bool) -> Vec<u8> {
        let mut buf = Vec::with_capacity(page.len() * 180);
        for (i, e) in page.iter().enumerate() {
            if !(first && i == 0) {
                buf.push(b',');
            }
            // Writing a struct of strings and numbers into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut buf, &render::ledger_entry(e));
        }
        buf
    }
    let (send, body) = crate::streamed::body();
    tokio::spawn(async move {
        let mut head = b"{\"entries\":[".to_vec();
        head.extend(entries_json(&first, true));
        let mut after = first.last().map(|e| e.seq);
        if send.send(Ok(head)).await.is_err() {
            return;
        }
        while let Some(seq) = after {
            let (who, s) = (seller.clone(), sku.clone());
            let page = state
                .service
                .read(move |tx, _| tx.ledger_page(&who, &s, seq, LEDGER_PAGE_ENTRIES))
                .await;
            let chunk = match page {
                Ok(page) => {
                    after = (page.len() == LEDGER_PAGE_ENTRIES)
                        .then(|| page.last().map(|e| e.seq))
                        .flatten();
                    Ok(entries_json(&page, false))
                }
                Err(e) => {
                    tracing::error!(error = %e, "read a ledger page");
                    // Cut short, so the client sees a broken answer rather than a short ledger.
                    Err(std::io::Error::other(
                        "the ledger could not be read to its end",
                    ))
                }
            };
            let failed = chunk.is_err();
            if send.send(chunk).await.is_err() || failed {
                return;
            }
        }
        let _ = send.send(Ok(b"]}".to_vec())).await;
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
