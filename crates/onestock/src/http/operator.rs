//! The operator's calls: sellers, storefront offers, orders and cancels.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use onestock_core::model::OrderLine;
use onestock_core::rules::{self, Command, Outcome};
use onestock_core::types::{Asin, SellerId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, Obj, Operator, PathParams, QueryParams};
use super::input;
use super::render;
use crate::server::AppState;
use crate::service::{new_token, token_digest};

/// `POST /v1/sellers`
pub async fn create_seller(
    State(state): State<AppState>,
    _op: Operator,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut obj = Obj::new(body, "", &["name"])?;
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
            Json(json!({"seller_id": seller.seller_id.as_str(), "token": token})),
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

/// `GET /v1/sellers?cursor=&limit=`: the sellers in id order. The cursor is the last
/// seller id of the page before; a token is never shown again.
pub async fn list_sellers(
    State(state): State<AppState>,
    _op: Operator,
    QueryParams(q): QueryParams<SellersQuery>,
) -> ApiResult<Json<Value>> {
    let limit = match q.limit.as_deref() {
        None => SELLERS_LIMIT_DEFAULT,
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=SELLERS_LIMIT_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("limit is a whole number from 1 to {SELLERS_LIMIT_MAX}; got {raw:?}."),
                )
            })?,
    };
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
    let sellers: Vec<Value> = page
        .iter()
        .take(limit)
        .map(|s| {
            json!({
                "seller_id": s.seller_id.as_str(),
                "name": s.name,
                "created_at": render::time(s.created_at),
            })
        })
        .collect();
    Ok(Json(
        json!({ "sellers": sellers, "next_cursor": next_cursor }),
    ))
}

/// `GET /v1/stores/{store}/items/{asin}/offers`
pub async fn offers(
    State(state): State<AppState>,
    _op: Operator,
    PathParams((store, asin)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    let store = input::store(state.service.region(), &store)?;
    let asin = Asin::parse(&asin)?;
    let (s, a) = (store.clone(), asin.clone());
    let offers = state
        .service
        .read(move |tx, ctx| rules::offers(tx, ctx.region, &s, &a, ctx.now))
        .await?;
    Ok(Json(json!({
        "asin": asin.as_str(),
        "store": store.as_str(),
        "offers": offers.iter().map(render::offer).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/stores/{store}/orders`
pub async fn place_order(
    State(state): State<AppState>,
    _op: Operator,
    PathParams(store): PathParams<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let store = input::store(state.service.region(), &store)?;
    let mut obj = Obj::new(body, "", &["order_id", "lines"])?;
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
        let mut line = Obj::new(item, &at, &["seller_id", "sku", "quantity"])?;
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

/// `POST /v1/stores/{store}/orders/{order_id}/cancel`
pub async fn cancel_order(
    State(state): State<AppState>,
    _op: Operator,
    PathParams((store, order_id)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    let store = input::store(state.service.region(), &store)?;
    let outcome = state
        .service
        .execute(Command::CancelOrder { store, order_id })
        .await?;
    match outcome {
        Outcome::Cancelled { order_id } => {
            Ok(Json(json!({"order_id": order_id, "status": "cancelled"})))
        }
        other => Err(ApiError::Internal(format!(
            "unexpected outcome for a cancel: {other:?}"
        ))),
    }
}
