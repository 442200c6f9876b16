//! The operator's calls: sellers, storefront offers, orders and cancels.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use onestock_core::model::OrderLine;
use onestock_core::rules::{self, Command, Outcome};
use onestock_core::types::{Asin, SellerId};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Obj, Operator, PathParams, QueryParams};
use super::input;
use super::render;
use super::schema;
use crate::server::AppState;
use crate::service::{new_token, token_digest};

/// The fields of `schema::NewSeller` (a test keeps the two equal).
pub const SELLER_FIELDS: &[&str] = &["name"];

/// Create a seller and its bearer token; the token is shown this once.
///
/// Who: operator.
#[utoipa::path(post, path = "/v1/sellers", operation_id = "createSeller", tag = "operator",
    request_body = schema::NewSeller,
    responses(
        (status = 201, description = "Created", body = schema::NewSellerAnswer),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a JSON body over 1 MiB", body = schema::ErrorBody),
    ))]
pub async fn create_seller(
    State(state): State<AppState>,
    _op: Operator,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<schema::NewSellerAnswer>)> {
    let mut obj = Obj::new(body, "", SELLER_FIELDS)?;
    let name = obj.req_str("name")?;
    let token = new_token("sk");
    let outcome = state
        .service
        .execute(Command::CreateSeller {
            name,
            token_sha256: token_digest(&token),
        })
        .await?;
    match outcome {
        Outcome::Seller(seller) => Ok((
            StatusCode::CREATED,
            Json(schema::NewSellerAnswer {
                seller_id: seller.seller_id.as_str().to_owned(),
                token,
            }),
        )),
        other => Err(ApiError::Internal(format!(
            "unexpected outcome for a new seller: {other:?}"
        ))),
    }
}

#[derive(Deserialize)]
pub struct SellersQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

/// Sellers per page by default and at most: a page stays one small answer however many
/// sellers the marketplace has.
const SELLERS_LIMIT_DEFAULT: usize = 100;
const SELLERS_LIMIT_MAX: usize = 1000;

/// The sellers, in id order; a token is never shown again.
///
/// Who: operator.
#[utoipa::path(get, path = "/v1/sellers", operation_id = "listSellers", tag = "operator",
    params(
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page (the last seller id it held)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Sellers per page, 1 to 1,000; 100 unless given."),
    ),
    responses((status = 200, description = "One page", body = schema::SellerPage)))]
pub async fn list_sellers(
    State(state): State<AppState>,
    _op: Operator,
    QueryParams(q): QueryParams<SellersQuery>,
) -> ApiResult<Json<schema::SellerPage>> {
    let limit = input::page_limit(q.limit.as_deref(), SELLERS_LIMIT_DEFAULT, SELLERS_LIMIT_MAX)?;
    let after = q
        .cursor
        .filter(|c| !c.trim().is_empty())
        .map(|c| SellerId(c.trim().to_owned()));
    let page = state
        .service
        .read(move |tx, _| tx.sellers(after.as_ref(), limit + 1))
        .await?;
    let next_cursor = (page.len() > limit)
        .then(|| page.get(limit - 1).map(|s| s.seller_id.as_str().to_owned()))
        .flatten();
    let sellers = page
        .iter()
        .take(limit)
        .map(|s| schema::Seller {
            seller_id: s.seller_id.as_str().to_owned(),
            name: s.name.clone(),
            created_at: render::time(s.created_at),
        })
        .collect();
    Ok(Json(schema::SellerPage {
        sellers,
        next_cursor,
    }))
}

/// Buyable offers for an item in a store, lowest price first.
///
/// Who: operator.
#[utoipa::path(get, path = "/v1/stores/{store}/items/{asin}/offers", operation_id = "listOffers", tag = "operator",
    params(("store" = String, Path, example = "US", description = "A store code of the region (US, CA, MX by default); matched without regard to case."), ("asin" = String, Path, pattern = "^[A-Za-z0-9]{10}$", example = "B0ABCD1234", description = "A 10-character ASIN.")),
    responses((status = 200, description = "The offers", body = schema::OffersAnswer)))]
pub async fn offers(
    State(state): State<AppState>,
    _op: Operator,
    PathParams((store, asin)): PathParams<(String, String)>,
) -> ApiResult<Json<schema::OffersAnswer>> {
    let store = input::store(state.service.region(), &store)?;
    let asin = Asin::parse(&asin)?;
    let (s, a) = (store.clone(), asin.clone());
    let offers = state
        .service
        .read(move |tx, ctx| rules::offers(tx, ctx.region, &s, &a, ctx.now))
        .await?;
    Ok(Json(schema::OffersAnswer {
        asin: asin.as_str().to_owned(),
        store: store.as_str().to_owned(),
        offers: offers.iter().map(render::offer).collect(),
    }))
}

/// The fields of `schema::Order` and `schema::OrderLine` (a test keeps them equal).
pub const ORDER_FIELDS: &[&str] = &["order_id", "lines"];
pub const ORDER_LINE_FIELDS: &[&str] = &["seller_id", "sku", "quantity"];

/// Place a store order: every line applied, or none (R18); a replay of the same order id
/// answers the first answer again (R19).
///
/// Who: operator.
#[utoipa::path(post, path = "/v1/stores/{store}/orders", operation_id = "placeOrder", tag = "operator",
    params(("store" = String, Path, example = "US", description = "A store code of the region (US, CA, MX by default); matched without regard to case.")),
    request_body = schema::Order,
    responses(
        (status = 201, description = "Accepted", body = schema::OrderAnswer),
        (status = 200, description = "A replay of an accepted order: the first answer", body = schema::OrderAnswer),
        (status = 409, description = "INSUFFICIENT_STOCK, LISTING_NOT_BUYABLE (also a listing that was deleted or never existed) or ORDER_ID_REUSED: nothing was applied", body = schema::ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a JSON body over 1 MiB", body = schema::ErrorBody),
    ))]
pub async fn place_order(
    State(state): State<AppState>,
    _op: Operator,
    PathParams(store): PathParams<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<schema::OrderAnswer>)> {
    let store = input::store(state.service.region(), &store)?;
    let mut obj = Obj::new(body, "", ORDER_FIELDS)?;
    let order_id = obj.req_str("order_id")?;
    if order_id.is_empty() {
        return Err(ApiError::invalid(
            "order_id",
            "An order id is 1 to 128 printable characters; got an empty one.",
        ));
    }
    let mut lines = Vec::new();
    for (i, item) in obj.req_array("lines")?.into_iter().enumerate() {
        let at = format!("lines[{i}]");
        let mut line = Obj::new(item, &at, ORDER_LINE_FIELDS)?;
        let seller_id = SellerId(line.req_str("seller_id")?);
        let sku = input::sku(&line.req_str("sku")?, &format!("{at}.sku"))?;
        let quantity_field = format!("{at}.quantity");
        let quantity = match line.take_some("quantity") {
            Some(v) => input::order_quantity(&v, &quantity_field)?,
            None => {
                return Err(ApiError::invalid(
                    &quantity_field,
                    format!("Missing field {quantity_field:?} (a whole number from 1)."),
                ));
            }
        };
        lines.push(OrderLine {
            seller_id,
            sku,
            quantity,
        });
    }
    let outcome = state
        .service
        .execute(Command::PlaceOrder {
            store,
            order_id,
            lines,
        })
        .await?;
    match outcome {
        Outcome::Order { record, replay } => {
            let status = if replay {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((status, Json(render::order(&record))))
        }
        other => Err(ApiError::Internal(format!(
            "unexpected outcome for an order: {other:?}"
        ))),
    }
}

/// Cancel an accepted order: its quantities return, once (R19).
///
/// Who: operator.
#[utoipa::path(post, path = "/v1/stores/{store}/orders/{order_id}/cancel", operation_id = "cancelOrder", tag = "operator",
    params(("store" = String, Path, example = "US", description = "A store code of the region (US, CA, MX by default); matched without regard to case."), ("order_id" = String, Path, description = "The order id the order was placed with.")),
    responses(
        (status = 200, description = "Cancelled (also when it already was)", body = schema::CancelAnswer),
        (status = 404, description = "NOT_FOUND: no such order in this store", body = schema::ErrorBody),
    ))]
pub async fn cancel_order(
    State(state): State<AppState>,
    _op: Operator,
    PathParams((store, order_id)): PathParams<(String, String)>,
) -> ApiResult<Json<schema::CancelAnswer>> {
    let store = input::store(state.service.region(), &store)?;
    let outcome = state
        .service
        .execute(Command::CancelOrder { store, order_id })
        .await?;
    match outcome {
        Outcome::Cancelled { order_id } => Ok(Json(schema::CancelAnswer {
            order_id,
            status: "cancelled",
        })),
        other => Err(ApiError::Internal(format!(
            "unexpected outcome for a cancel: {other:?}"
        ))),
    }
}
