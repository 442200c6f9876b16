//! The catalog: stores of the region, detail pages, product creation and search.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use onestock_core::rules::{Command, NewProduct, Outcome};
use onestock_core::types::Asin;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::extract::{Anyone, JsonBody, Obj, PathParams, QueryParams, Seller};
use super::input;
use super::render;
use super::schema;
use crate::server::AppState;

/// Pages a search answers at most.
pub const SEARCH_RESULTS_MAX: usize = 50;
/// Longest search text, in characters: longer than any title, short enough to keep a
/// query cheap.
const SEARCH_TEXT_CHARS_MAX: usize = 500;

/// The region's stores, in region order.
///
/// Who: any token.
#[utoipa::path(get, path = "/v1/stores", operation_id = "listStores", tag = "anyone",
    responses((status = 200, description = "The stores in region order", body = schema::StoreList)))]
pub async fn stores(State(state): State<AppState>, _who: Anyone) -> Json<schema::StoreList> {
    let stores = state
        .service
        .region()
        .stores
        .iter()
        .map(|s| schema::Store {
            code: s.code.as_str().to_owned(),
            name: s.name.clone(),
            currency: s.currency.clone(),
            languages: s.languages.clone(),
            marketplace_id: s.marketplace_id.clone(),
        })
        .collect();
    Json(schema::StoreList { stores })
}

/// The fields of `schema::NewProduct` (a test keeps the two equal).
pub const PRODUCT_FIELDS: &[&str] = &[
    "store",
    "product_type",
    "title",
    "brand",
    "description",
    "language",
    "identifiers",
    "force_new",
];

/// Create a product (R3): a detail page in one store, or a page for an existing ASIN
/// that matches it.
///
/// Who: seller.
#[utoipa::path(post, path = "/v1/catalog/items", operation_id = "createProduct", tag = "seller",
    request_body = schema::NewProduct,
    responses(
        (status = 201, description = "Created, or matched to an existing ASIN", body = schema::NewProductAnswer),
        (status = 409, description = "POSSIBLE_MATCH (send force_new: true to create anyway) or PRODUCT_DATA_CONFLICT, with the matches", body = schema::ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a JSON body over 1 MiB", body = schema::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _seller: Seller,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<schema::NewProductAnswer>)> {
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
            Json(schema::NewProductAnswer {
                asin: asin.as_str().to_owned(),
                store: store.as_str().to_owned(),
                matched,
            }),
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

/// A product's detail page in one store.
///
/// Who: any token.
#[utoipa::path(get, path = "/v1/catalog/items/{asin}", operation_id = "getProduct", tag = "anyone",
    params(
        ("asin" = String, Path, pattern = "^[A-Za-z0-9]{10}$", example = "B0ABCD1234", description = "A 10-character ASIN."),
        ("store" = String, Query, example = "US", description = "The store of the page."),
    ),
    responses(
        (status = 200, description = "The page", body = schema::DetailPage),
        (status = 404, description = "NOT_FOUND: the ASIN has no page in this store", body = schema::ErrorBody),
    ))]
pub async fn item(
    State(state): State<AppState>,
    _who: Anyone,
    PathParams(raw): PathParams<String>,
    QueryParams(q): QueryParams<StoreQuery>,
) -> ApiResult<Json<schema::DetailPage>> {
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

/// Search a store's catalog by words of the title or brand, or by an identifier; best
/// first, at most 50 pages.
///
/// Who: any token.
#[utoipa::path(get, path = "/v1/catalog/search", operation_id = "searchCatalog", tag = "anyone",
    params(
        ("store" = String, Query, example = "US", description = "The store to search."),
        ("q" = Option<String>, Query, description = "Words of the title or brand (give q or identifier; at most 500 characters)."),
        ("identifier" = Option<String>, Query, description = "A UPC, EAN, GTIN, ISBN or ASIN."),
    ),
    responses((status = 200, description = "Best first", body = schema::SearchAnswer)))]
pub async fn search(
    State(state): State<AppState>,
    _who: Anyone,
    QueryParams(q): QueryParams<SearchQuery>,
) -> ApiResult<Json<schema::SearchAnswer>> {
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
    Ok(Json(schema::SearchAnswer {
        items: pages.iter().map(render::page).collect(),
    }))
}
