//! The catalog: stores of the region, detail pages, product creation and search.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use onestock_core::rules::{Command, NewProduct, Outcome};
use onestock_core::types::Asin;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{Anyone, JsonBody, Obj, PathParams, QueryParams, Seller};
use super::input;
use super::render;
use crate::server::AppState;

/// Pages a search answers at most.
const SEARCH_RESULTS_MAX: usize = 50;
/// Longest search text, in characters: longer than any title, short enough to keep a
/// query cheap.
const SEARCH_TEXT_CHARS_MAX: usize = 500;

/// `GET /v1/stores`
pub async fn stores(State(state): State<AppState>, _who: Anyone) -> Json<Value> {
    let stores: Vec<Value> = state
        .service
        .region()
        .stores
        .iter()
        .map(|s| {
            json!({
                "code": s.code.as_str(),
                "name": s.name,
                "currency": s.currency,
                "languages": s.languages,
                "marketplace_id": s.marketplace_id,
            })
        })
        .collect();
    Json(json!({ "stores": stores }))
}

const PRODUCT_FIELDS: &[&str] = &[
    "store",
    "product_type",
    "title",
    "brand",
    "description",
    "language",
    "identifiers",
    "force_new",
];

/// `POST /v1/catalog/items`
pub async fn create(
    State(state): State<AppState>,
    _seller: Seller,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut obj = Obj::new(body, "", PRODUCT_FIELDS)?;
    let store = obj.req_str("store")?;
    let product_type = obj.req_str("product_type")?;
    let title = obj.req_str("title")?;
    let brand = obj.req_str("brand")?;
    let description = obj.opt_str("description")?.unwrap_or_default();
    let language = obj.req_str("language")?;
    let mut identifiers = Vec::new();
    for (i, item) in obj
        .opt_array("identifiers")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let mut id = Obj::new(item, &format!("identifiers[{i}]"), &["type", "value"])?;
        let kind = id.req_str("type")?;
        let value = id.req_str("value")?;
        identifiers.push((kind, value));
    }
    let force_new = obj.opt_bool("force_new")?.unwrap_or(false);
    let outcome = state
        .service
        .execute(Command::CreateProduct(NewProduct {
            store,
            product_type,
            title,
            brand,
            description,
            language,
            identifiers,
            force_new,
        }))
        .await?;
    match outcome {
        Outcome::Product {
            asin,
            store,
            matched,
        } => Ok((
            StatusCode::CREATED,
            Json(json!({"asin": asin.as_str(), "store": store.as_str(), "matched": matched})),
        )),
        other => Err(ApiError::Internal(format!(
            "unexpected outcome for a new product: {other:?}"
        ))),
    }
}

#[derive(Deserialize)]
pub struct StoreQuery {
    store: Option<String>,
}

fn required_store(
    state: &AppState,
    raw: Option<&str>,
) -> ApiResult<onestock_core::types::StoreCode> {
    let raw =
        raw.ok_or_else(|| ApiError::invalid("store", "Give the store in the query: ?store=US."))?;
    input::store(state.service.region(), raw)
}

/// `GET /v1/catalog/items/{asin}?store=S`
pub async fn item(
    State(state): State<AppState>,
    _who: Anyone,
    PathParams(raw): PathParams<String>,
    QueryParams(q): QueryParams<StoreQuery>,
) -> ApiResult<Json<Value>> {
    let asin = Asin::parse(&raw)?;
    let store = required_store(&state, q.store.as_deref())?;
    let (a, s) = (asin.clone(), store.clone());
    let page = state.service.read(move |tx, _| tx.page(&a, &s)).await?;
    match page {
        Some(p) => Ok(Json(render::page(&p))),
        None => Err(ApiError::not_found(format!(
            "ASIN {asin} has no detail page in store {store}."
        ))),
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    store: Option<String>,
    q: Option<String>,
    identifier: Option<String>,
}

/// `GET /v1/catalog/search?store=S&q=TEXT` or `&identifier=VALUE`
pub async fn search(
    State(state): State<AppState>,
    _who: Anyone,
    QueryParams(q): QueryParams<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let store = required_store(&state, q.store.as_deref())?;
    let pages = match (q.identifier, q.q) {
        (Some(identifier), _) => {
            let value = identifier.trim().to_ascii_uppercase();
            if value.is_empty() {
                Vec::new()
            } else {
                state
                    .service
                    .read(move |tx, _| {
                        let mut pages = tx.pages_by_identifier(&value)?;
                        pages.retain(|p| p.store == store);
                        pages.truncate(SEARCH_RESULTS_MAX);
                        Ok(pages)
                    })
                    .await?
            }
        }
        (None, Some(text)) => {
            let text = text.trim().to_owned();
            if text.chars().count() > SEARCH_TEXT_CHARS_MAX {
                return Err(ApiError::invalid(
                    "q",
                    format!("A search text has at most {SEARCH_TEXT_CHARS_MAX} characters."),
                ));
            }
            if text.is_empty() {
                Vec::new()
            } else {
                state
                    .service
                    .read(move |tx, _| tx.search_pages(&store, &text, SEARCH_RESULTS_MAX))
                    .await?
            }
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Search with q=TEXT (words of the title or brand) or identifier=VALUE (a UPC, EAN, GTIN or ISBN).",
            ));
        }
    };
    Ok(Json(json!({
        "items": pages.iter().map(render::page).collect::<Vec<_>>(),
    })))
}
