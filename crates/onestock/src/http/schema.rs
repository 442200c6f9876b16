//! The JSON API's request and answer types. Handlers answer with these types, and the
//! OpenAPI document (`http/openapi.rs`) is derived from them, so the document cannot
//! say one shape while the code sends another.
//!
//! Request bodies are parsed field by field by `extract::Obj` (for the error of SPEC
//! 4.2 that names the field at fault); their types here are what the document shows,
//! and a test holds each handler's list of accepted fields equal to its type's
//! properties (`fields_of`), so the two cannot drift either.
//!
//! Enumerations are spelled by the core (`Condition::ALL`, `as_str`), never retyped.

use onestock_core::model::{InactiveReason, LedgerReason, UploadStatus};
use onestock_core::types::{Condition, Fulfillment, ShareMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};

/// A string schema with the given values, in the core's spelling.
fn string_enum<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.into_iter().map(str::to_owned)))
        .into()
}

/// The conditions of SPEC section 3, as the API spells them.
pub fn condition_schema() -> Schema {
    string_enum(
        "The item's condition.",
        Condition::ALL.iter().map(|c| c.as_str()),
    )
}

fn share_schema() -> Schema {
    string_enum(
        "unique: the listing keeps its own pool; existing: it joins the SKU's shared pool (R9).",
        [ShareMode::Unique.as_str(), ShareMode::Existing.as_str()],
    )
}

fn fulfillment_schema() -> Schema {
    string_enum(
        "Who ships the item; merchant unless given.",
        [
            Fulfillment::Merchant.as_str(),
            Fulfillment::Marketplace.as_str(),
        ],
    )
}

fn ledger_reason_schema() -> Schema {
    string_enum(
        "What changed the quantity.",
        [
            LedgerReason::Order,
            LedgerReason::Cancel,
            LedgerReason::Set,
            LedgerReason::Adjust,
            LedgerReason::Upload,
            LedgerReason::Delete,
        ]
        .map(LedgerReason::as_str),
    )
}

fn reasons_schema() -> Schema {
    ArrayBuilder::new()
        .items(RefOr::T(string_enum(
            "Why the listing is not for sale.",
            [
                InactiveReason::OutOfStock,
                InactiveReason::Closed,
                InactiveReason::NotYetStarted,
            ]
            .map(InactiveReason::as_str),
        )))
        .into()
}

fn upload_status_schema() -> Schema {
    string_enum(
        "IN_QUEUE, then IN_PROGRESS, then DONE (rows may have failed; see the report) or FATAL (the file could not be read).",
        [
            UploadStatus::InQueue,
            UploadStatus::InProgress,
            UploadStatus::Done,
            UploadStatus::Fatal,
        ]
        .map(UploadStatus::as_str),
    )
}

fn quantity_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(onestock_core::types::QUANTITY_MAX))
        .description(Some("An absolute quantity, 0 to 1,000,000,000."))
        .into()
}

fn time_or_null_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::DateTime,
        )))
        .description(Some(
            "When the listing may start selling (RFC 3339); null: at once.",
        ))
        .into()
}

fn const_string(value: &str) -> Schema {
    string_enum("Always this value.", [value])
}

fn accepted_schema() -> Schema {
    const_string("accepted")
}

fn cancelled_schema() -> Schema {
    const_string("cancelled")
}

fn ok_schema() -> Schema {
    const_string("ok")
}

/// The property names of a request type's schema: the fields its handler accepts (the
/// tests hold each handler's field list equal to it).
#[cfg(test)]
pub fn fields_of<T: ToSchema>() -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

// ----- answers -----

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(schema_with = ok_schema)]
    pub status: &'static str,
}

/// The error shape of every refusal (SPEC 4.2).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code of the error table (docs/api.md).
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// The field at fault, where one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// POSSIBLE_MATCH and PRODUCT_DATA_CONFLICT only: the pages that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<Match>>,
}

/// A page a new product resembles.
#[derive(Serialize, ToSchema)]
pub struct Match {
    pub asin: String,
    pub store: String,
    pub title: String,
}

/// A seller just created; the token is shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewSellerAnswer {
    pub seller_id: String,
    /// The seller's bearer token, shown once.
    pub token: String,
}

/// A seller (its token is never shown again).
#[derive(Serialize, ToSchema)]
pub struct Seller {
    pub seller_id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `GET /v1/sellers`: one page, in id order.
#[derive(Serialize, ToSchema)]
pub struct SellerPage {
    pub sellers: Vec<Seller>,
    /// Give it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A store of the region.
#[derive(Serialize, ToSchema)]
pub struct Store {
    /// The store code (US, CA, MX by default).
    pub code: String,
    pub name: String,
    /// The store's ISO 4217 currency.
    pub currency: String,
    /// The languages detail pages of the store may be in.
    pub languages: Vec<String>,
    /// The marketplace id of the store (the SP-API's `marketplaceIds`).
    pub marketplace_id: String,
}

/// `GET /v1/stores`.
#[derive(Serialize, ToSchema)]
pub struct StoreList {
    /// In region order.
    pub stores: Vec<Store>,
}

/// A price in the store's currency.
#[derive(Serialize, ToSchema)]
pub struct Price {
    /// A decimal with at most two digits after the point, above zero, as a string.
    #[schema(example = "19.99")]
    pub amount: String,
    /// The store's ISO 4217 currency.
    #[schema(example = "USD")]
    pub currency: String,
}

/// A product identifier.
#[derive(Serialize, ToSchema)]
pub struct Identifier {
    /// UPC, EAN, GTIN or ISBN; matched without regard to case.
    #[serde(rename = "type")]
    #[schema(example = "UPC")]
    pub kind: String,
    #[schema(example = "036000291452")]
    pub value: String,
}

/// A product's detail page in one store.
#[derive(Serialize, ToSchema)]
pub struct DetailPage {
    pub asin: String,
    pub store: String,
    pub title: String,
    pub brand: String,
    /// Empty when the page has none.
    pub description: String,
    /// The page's two-letter language.
    pub language: String,
    /// Upper case (`FIREWORKS`).
    pub product_type: String,
    pub identifiers: Vec<Identifier>,
}

/// `POST /v1/catalog/items`.
#[derive(Serialize, ToSchema)]
pub struct NewProductAnswer {
    pub asin: String,
    pub store: String,
    /// true: an existing ASIN got a page in this store (R3).
    pub matched: bool,
}

/// `GET /v1/catalog/search`.
#[derive(Serialize, ToSchema)]
pub struct SearchAnswer {
    /// Best first, at most 50.
    pub items: Vec<DetailPage>,
}

/// A store listing as the seller sees it.
#[derive(Serialize, ToSchema)]
pub struct ListingView {
    pub sku: String,
    pub store: String,
    pub asin: String,
    #[schema(schema_with = share_schema)]
    pub share: String,
    /// The pool whose quantity this listing sells from.
    pub pool_id: i64,
    /// Every store selling from the pool, in region order.
    pub pool_stores: Vec<String>,
    /// Goes up with every change of the pool; send it as If-Match (R21).
    pub pool_version: i64,
    #[schema(schema_with = condition_schema)]
    pub condition: String,
    /// The pool's quantity.
    pub quantity: i64,
    pub price: Price,
    #[schema(schema_with = fulfillment_schema)]
    pub fulfillment: String,
    #[schema(schema_with = time_or_null_schema)]
    pub start_selling_at: Option<String>,
    /// Closed in this store only (R14).
    pub closed: bool,
    /// active: buyable now; inactive: see reasons.
    #[schema(schema_with = status_schema)]
    pub status: &'static str,
    #[schema(schema_with = reasons_schema)]
    pub reasons: Vec<&'static str>,
}

fn status_schema() -> Schema {
    string_enum(
        "Whether the listing is for sale now.",
        ["active", "inactive"],
    )
}

/// `GET /v1/listings`: one page.
#[derive(Serialize, ToSchema)]
pub struct ListingPage {
    pub items: Vec<ListingView>,
    /// Give it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/listings/{sku}`.
#[derive(Serialize, ToSchema)]
pub struct SkuListings {
    pub sku: String,
    /// In store order.
    pub listings: Vec<ListingView>,
}

/// `PATCH /v1/listings/{sku}/stores/{store}`.
#[derive(Serialize, ToSchema)]
pub struct PatchAnswer {
    pub listing: ListingView,
    /// Every store whose listing the change reached (a pool change reaches all of them).
    pub affected_stores: Vec<String>,
}

/// `DELETE /v1/listings/{sku}`.
#[derive(Serialize, ToSchema)]
pub struct DeleteAnswer {
    pub sku: String,
    pub deleted_stores: Vec<String>,
}

/// A change of a pool's quantity (R20).
#[derive(Serialize, ToSchema)]
pub struct LedgerEntry {
    pub seq: i64,
    #[schema(format = DateTime)]
    pub at: String,
    pub pool_id: i64,
    pub delta: i64,
    pub quantity_after: i64,
    #[schema(schema_with = ledger_reason_schema)]
    pub reason: &'static str,
    /// The store the change came through.
    pub store: String,
    /// The order id or upload id behind the change; null for direct API changes.
    pub reference: Option<String>,
}

/// `GET /v1/listings/{sku}/ledger`.
#[derive(Serialize, ToSchema)]
pub struct LedgerAnswer {
    /// Oldest first.
    pub entries: Vec<LedgerEntry>,
}

/// A buyable offer.
#[derive(Serialize, ToSchema)]
pub struct Offer {
    pub seller_id: String,
    pub sku: String,
    #[schema(schema_with = condition_schema)]
    pub condition: String,
    pub price: Price,
    pub quantity: i64,
    #[schema(schema_with = fulfillment_schema)]
    pub fulfillment: String,
}

/// `GET /v1/stores/{store}/items/{asin}/offers`.
#[derive(Serialize, ToSchema)]
pub struct OffersAnswer {
    pub asin: String,
    pub store: String,
    /// Lowest price first.
    pub offers: Vec<Offer>,
}

/// An order line as applied.
#[derive(Serialize, ToSchema)]
pub struct OrderLineResult {
    pub seller_id: String,
    pub sku: String,
    pub quantity: i64,
    pub pool_id: i64,
    /// The pool's quantity after this order.
    pub quantity_after: i64,
    /// Every store selling from the pool.
    pub stores: Vec<String>,
}

/// An accepted order (the same body again for a replay).
#[derive(Serialize, ToSchema)]
pub struct OrderAnswer {
    pub order_id: String,
    #[schema(schema_with = accepted_schema)]
    pub status: &'static str,
    pub lines: Vec<OrderLineResult>,
}

/// `POST /v1/stores/{store}/orders/{order_id}/cancel`.
#[derive(Serialize, ToSchema)]
pub struct CancelAnswer {
    pub order_id: String,
    #[schema(schema_with = cancelled_schema)]
    pub status: &'static str,
}

/// An upload and its counts.
#[derive(Serialize, ToSchema)]
pub struct UploadJson {
    pub upload_id: String,
    pub store: String,
    #[schema(schema_with = upload_status_schema)]
    pub status: &'static str,
    pub records_processed: i64,
    pub records_successful: i64,
    pub records_failed: i64,
    /// FATAL only: why the file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /v1/uploads`: the file is queued.
#[derive(Serialize, ToSchema)]
pub struct UploadQueued {
    pub upload_id: String,
    pub store: String,
    #[schema(schema_with = upload_status_schema)]
    pub status: &'static str,
}

/// `GET /v1/uploads`: one page, newest first.
#[derive(Serialize, ToSchema)]
pub struct UploadPage {
    pub items: Vec<UploadJson>,
    /// Give it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An event of the seller's feed (SPEC 4.3); `type` says which fields follow. `seq`
/// increases by one per event of the seller.
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventJson {
    /// A pool's quantity changed; every store selling from it is named.
    QuantityChanged {
        seq: i64,
        #[schema(format = DateTime)]
        at: String,
        sku: String,
        stores: Vec<String>,
        pool_id: i64,
        quantity: i64,
        delta: i64,
        #[schema(schema_with = ledger_reason_schema)]
        reason: &'static str,
    },
    /// Listings of the SKU changed status (for sale or not).
    ListingChanged {
        seq: i64,
        #[schema(format = DateTime)]
        at: String,
        sku: String,
        stores: Vec<String>,
        #[schema(schema_with = status_schema)]
        status: String,
    },
    /// The SKU's listings in these stores are gone.
    ListingDeleted {
        seq: i64,
        #[schema(format = DateTime)]
        at: String,
        sku: String,
        stores: Vec<String>,
    },
}

/// `GET /v1/events`.
#[derive(Serialize, ToSchema)]
pub struct EventsAnswer {
    /// Oldest first, at most 500.
    pub events: Vec<EventJson>,
    /// The seq to give as `after` next time.
    pub last_seq: i64,
}

// ----- requests -----

/// `POST /v1/sellers`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read field by field; this type is the document's and the field list's
pub struct NewSeller {
    /// The seller's name, as the pages show it.
    pub name: String,
}

/// `POST /v1/catalog/items`: a new product's detail page in one store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewProduct {
    /// The store of the page.
    pub store: String,
    pub product_type: String,
    pub title: String,
    pub brand: String,
    pub description: Option<String>,
    /// es, es-MX or es_MX: the language part must be one of the store's.
    pub language: String,
    pub identifiers: Option<Vec<NewIdentifier>>,
    /// Create the product despite a near-identical page (never despite a shared identifier).
    pub force_new: Option<bool>,
}

/// An identifier of a new product.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewIdentifier {
    /// UPC, EAN, GTIN or ISBN; matched without regard to case.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// A price as a request gives it: the amount is a string, never a JSON number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PriceInput {
    /// A decimal above zero with at most two digits after the point.
    #[schema(example = "19.99")]
    pub amount: String,
    /// The store's ISO 4217 currency.
    #[schema(example = "USD")]
    pub currency: String,
}

/// `PUT /v1/listings/{sku}/stores/{store}`: a new listing, or a change as PATCH.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ListingBody {
    /// The product's ASIN; it must have a detail page in the store.
    #[schema(pattern = "^[A-Za-z0-9]{10}$", example = "B0ABCD1234")]
    pub asin: String,
    /// Required for a new listing.
    pub price: Option<PriceInput>,
    #[schema(schema_with = share_schema)]
    pub share: Option<String>,
    #[schema(schema_with = condition_schema)]
    pub condition: Option<String>,
    #[schema(schema_with = quantity_schema)]
    pub quantity: Option<i64>,
    #[schema(schema_with = fulfillment_schema)]
    pub fulfillment: Option<String>,
    #[schema(schema_with = time_or_null_schema)]
    pub start_selling_at: Option<String>,
}

/// `PATCH /v1/listings/{sku}/stores/{store}`: quantity, condition and start time are
/// the pool's (they reach every store of the pool); price is this store's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ListingChange {
    #[schema(schema_with = quantity_schema)]
    pub quantity: Option<i64>,
    /// Added to the quantity (never below 0); not with quantity.
    pub quantity_delta: Option<i64>,
    #[schema(schema_with = condition_schema)]
    pub condition: Option<String>,
    pub price: Option<PriceInput>,
    #[schema(schema_with = time_or_null_schema)]
    pub start_selling_at: Option<String>,
}

/// A line of a new order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct OrderLine {
    pub seller_id: String,
    #[schema(min_length = 1, max_length = 40)]
    pub sku: String,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub quantity: i64,
}

/// `POST /v1/stores/{store}/orders`: all lines or none (R18).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Order {
    /// The marketplace's order id, 1 to 128 printable characters; a replay answers the
    /// first answer again (R19).
    #[schema(min_length = 1, max_length = 128)]
    pub order_id: String,
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<OrderLine>,
}

/// `POST /v1/uploads`: the file's bytes as the request body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // the body is streamed to disk; this type is the document's
pub struct UploadFile(Vec<u8>);
