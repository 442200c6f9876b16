//! The rules of SPEC.md section 3, as commands run on a storage transaction.
//!
//! Every command follows one ladder: load what it needs, check every rule (a refusal is
//! a `DomainError` and nothing has been written yet), then write. Because nothing is
//! written before the last check, many commands can share one database transaction
//! (group commit) and a refused one leaves the others untouched.
//!
//! One file per concern; find a rule by its R-number:
//! - `sellers.rs`: accounts (SPEC 4.1 `POST /v1/sellers`)
//! - `catalog.rs`: R2, R3, R4, R5, R17 (detail pages, creating products)
//! - `listings.rs`: R1, R6–R17, R21 (store listings and pools)
//! - `orders.rs`: R18, R19, R20 (orders and cancels)
//! - `uploads.rs`: R23 (upload rows applied by the same rules)
//! - `views.rs`: R8, R12 (what a listing looks like)
//! - here: the commands, `execute`, and helpers every concern shares (R20 ledger).

use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::error::{DomainError, ErrorCode, Match};
use crate::model::{
    DetailPage, EventBody, Identifier, InactiveReason, LedgerEntry, LedgerReason, OrderLine,
    OrderLineResult, OrderRecord, Pool, ReportKind, ReportLine, Seller, SkuState, StoreListing,
    Upload, UploadStatus,
};
use crate::region::{Region, Store};
use crate::storage::{StoreResult, Tx};
use crate::types::{
    Asin, Condition, Fulfillment, QUANTITY_MAX, SellerId, ShareMode, Sku, StoreCode,
    check_quantity, check_text,
};

/// Lines an order may have (SPEC 4.1).
pub const ORDER_LINES_MAX: usize = 100;
/// Longest order id, in characters: long enough for any storefront's ids, short enough
/// to index.
pub const ORDER_ID_CHARS_MAX: usize = 128;

/// What every command is judged against: the region and the time of the request.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub region: &'a Region,
    pub now: OffsetDateTime,
}

/// A price as given: the amount (already checked by `types::parse_price_amount`) and the
/// currency it claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceInput {
    pub amount: Decimal,
    pub currency: String,
}

/// Which door a change came through: uploads set shared fields where the API refuses
/// them (SPEC section 5) and are recorded with their own ledger reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Api,
    Upload { upload_id: String },
}

impl Source {
    fn reference(&self) -> String {
        match self {
            Source::Api => String::new(),
            Source::Upload { upload_id } => upload_id.clone(),
        }
    }
}

/// The listing body of `PUT /v1/listings/{sku}/stores/{store}`, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListingInput {
    /// None only from an upload row that names no product for a listing that exists.
    pub asin: Option<Asin>,
    pub price: Option<PriceInput>,
    pub share: Option<ShareMode>,
    pub condition: Option<Condition>,
    pub quantity: Option<i64>,
    pub fulfillment: Option<Fulfillment>,
    /// `Some(None)`: remove the start-selling time.
    pub start_selling_at: Option<Option<OffsetDateTime>>,
}

/// The body of `PATCH /v1/listings/{sku}/stores/{store}`, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListingPatch {
    pub quantity: Option<i64>,
    pub quantity_delta: Option<i64>,
    pub condition: Option<Condition>,
    pub price: Option<PriceInput>,
    pub start_selling_at: Option<Option<OffsetDateTime>>,
}

/// `POST /v1/catalog/items`, parsed as far as it can be without the region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProduct {
    pub store: String,
    pub product_type: String,
    pub title: String,
    pub brand: String,
    pub description: String,
    pub language: String,
    /// (type, value) as given; checked by R4 here.
    pub identifiers: Vec<(String, String)>,
    pub force_new: bool,
}

/// What an upload row lists against (`product-id` and its type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductRef {
    Asin(String),
    /// `UPC`, `EAN`, `GTIN` or `ISBN` and the digits.
    Identifier {
        kind: String,
        value: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadAction {
    /// `a`: add or update.
    AddOrUpdate,
    /// `d`: delete the SKU's listing in this store only.
    DeleteInStore,
    /// `x`: delete product and listing in every store (R16).
    DeleteEverywhere,
    /// `PartialUpdate` (category templates): changes only the filled fields of a listing
    /// that exists; never creates a listing or a product.
    PartialUpdate,
}

/// The product information of a category template row (SPEC 5), from which a row whose
/// product has no page in the store creates it, as `POST /v1/catalog/items` would.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductInfo {
    /// `feed_product_type`.
    pub product_type: String,
    /// `item_name`.
    pub title: String,
    /// `brand_name`.
    pub brand: String,
    /// `product_description`.
    pub description: String,
    /// `language_value` as a code, None for the store's first language.
    pub language: Option<String>,
}

/// One data row of an upload file, parsed by the upload door.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRow {
    pub sku: Sku,
    pub action: UploadAction,
    pub product: Option<ProductRef>,
    pub price: Option<Decimal>,
    pub condition: Option<Condition>,
    pub quantity: Option<i64>,
    pub share: Option<ShareMode>,
    pub fulfillment: Option<Fulfillment>,
    pub start_selling_at: Option<OffsetDateTime>,
    /// Set when the row fills any of `feed_product_type`, `brand_name`, `item_name`.
    pub product_info: Option<ProductInfo>,
}

/// A row as the upload door read it: parsed, or already refused (bad value in a cell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    /// Data rows count from 1.
    pub record: i64,
    /// The SKU cell as written, for the report.
    pub sku: String,
    pub row: Result<UploadRow, DomainError>,
}

/// A change asked of the service. Every door builds these.
#[derive(Clone, Debug)]
pub enum Command {
    CreateSeller {
        name: String,
        token_sha256: String,
    },
    CreateProduct(NewProduct),
    PutListing {
        seller: SellerId,
        sku: Sku,
        store: StoreCode,
        input: ListingInput,
        source: Source,
        /// The pool version the change was based on (R21); only for a listing that
        /// exists.
        if_match: Option<i64>,
    },
    PatchListing {
        seller: SellerId,
        sku: Sku,
        store: StoreCode,
        patch: ListingPatch,
        if_match: Option<i64>,
    },
    SetClosed {
        seller: SellerId,
        sku: Sku,
        store: StoreCode,
        closed: bool,
    },
    DeleteSku {
        seller: SellerId,
        sku: Sku,
        source: Source,
    },
    PlaceOrder {
        store: StoreCode,
        order_id: String,
        lines: Vec<OrderLine>,
    },
    CancelOrder {
        store: StoreCode,
        order_id: String,
    },
    CreateUpload(Upload),
    /// Applies rows of an upload, moves its checkpoint past them and, with `done`,
    /// finishes it: all in the caller's one transaction, so each row is applied once.
    ApplyUploadRows {
        upload_id: String,
        warnings: Vec<ReportLine>,
        records: Vec<UploadRecord>,
        done: bool,
    },
    /// The file could not be read as a table: no row is applied.
    FailUpload {
        upload_id: String,
        error: String,
    },
}

/// What a command did.
#[derive(Clone, Debug)]
pub enum Outcome {
    Seller(Seller),
    Product {
        asin: Asin,
        store: StoreCode,
        matched: bool,
    },
    Listing {
        state: SkuState,
        store: StoreCode,
        created: bool,
        affected_stores: Vec<StoreCode>,
    },
    Deleted {
        sku: Sku,
        deleted_stores: Vec<StoreCode>,
    },
    Order {
        record: OrderRecord,
        replay: bool,
    },
    Cancelled {
        order_id: String,
    },
    Upload(Upload),
}

/// A command's answer: `Err` on the outside is the storage failing, on the inside a
/// rule refusing.
pub type Decision = StoreResult<Result<Outcome, DomainError>>;

/// Runs one command on the transaction.
pub fn execute(tx: &mut dyn Tx, ctx: Ctx<'_>, cmd: &Command) -> Decision {
    match cmd {
        Command::CreateSeller { name, token_sha256 } => create_seller(tx, ctx, name, token_sha256),
        Command::CreateProduct(p) => create_product(tx, ctx, p),
        Command::PutListing {
            seller,
            sku,
            store,
            input,
            source,
            if_match,
        } => put_listing(tx, ctx, seller, sku, store, input, source, *if_match, None),
        Command::PatchListing {
            seller,
            sku,
            store,
            patch,
            if_match,
        } => patch_listing(tx, ctx, seller, sku, store, patch, *if_match),
        Command::SetClosed {
            seller,
            sku,
            store,
            closed,
        } => set_closed(tx, ctx, seller, sku, store, *closed),
        Command::DeleteSku {
            seller,
            sku,
            source,
        } => delete_sku(tx, ctx, seller, sku, source),
        Command::PlaceOrder {
            store,
            order_id,
            lines,
        } => place_order(tx, ctx, store, order_id, lines),
        Command::CancelOrder { store, order_id } => cancel_order(tx, ctx, store, order_id),
        Command::CreateUpload(u) => {
            tx.insert_upload(u)?;
            Ok(Ok(Outcome::Upload(u.clone())))
        }
        Command::ApplyUploadRows {
            upload_id,
            warnings,
            records,
            done,
        } => apply_upload_rows(tx, ctx, upload_id, warnings, records, *done),
        Command::FailUpload { upload_id, error } => fail_upload(tx, upload_id, error),
    }
}

/// `?` for the rules' ladder: a refusal ends the command with `Ok(Err(..))`.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

mod catalog;
mod listings;
mod orders;
mod sellers;
mod uploads;
mod views;

use catalog::{create_product, page_in_store, plan_product};
use listings::{delete_in_store, delete_sku, patch_listing, put_listing, set_closed};
use orders::{cancel_order, place_order};
use sellers::create_seller;
use uploads::{apply_upload_rows, fail_upload};
pub use views::{
    ListingCursor, ListingView, Offer, inactive_reasons, listing_page, listing_status,
    listing_view, offers, sku_views, sort_listings,
};

// ---------------------------------------------------------------------------
// Shared by every concern

/// Loads a SKU with its listings in the region's store order, so `pool_stores` and
/// every list of stores derived from it come out in store order.
pub(super) fn load(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    seller: &SellerId,
    sku: &Sku,
) -> StoreResult<SkuState> {
    let mut state = tx.load_sku(seller, sku)?;
    sort_listings(ctx.region, &mut state);
    Ok(state)
}

/// The next number of a pool's version, for `ETag`s.
pub(super) fn bump(pool: &mut Pool) {
    pool.version += 1;
}

/// A `listing_changed` event naming `stores`, with the status of the listing in `store`.
pub(super) fn record_listing_change(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    state: &SkuState,
    store: &StoreCode,
    stores: Vec<StoreCode>,
) -> StoreResult<()> {
    tx.append_event(
        &state.seller_id,
        ctx.now,
        &EventBody::ListingChanged {
            sku: state.sku.clone(),
            stores,
            status: listing_status(state, store, ctx.now).to_owned(),
        },
    )?;
    Ok(())
}

/// A ledger entry and its `quantity_changed` event, for a pool already saved.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_quantity_change(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    state: &SkuState,
    pool_id: i64,
    delta: i64,
    reason: LedgerReason,
    store: &StoreCode,
    reference: &str,
) -> StoreResult<()> {
    let quantity_after = state.pool(pool_id).map(|p| p.quantity).unwrap_or(0);
    tx.append_ledger(&LedgerEntry {
        seq: 0,
        at: ctx.now,
        seller_id: state.seller_id.clone(),
        sku: state.sku.clone(),
        pool_id,
        delta,
        quantity_after,
        reason,
        store: store.clone(),
        reference: reference.to_owned(),
    })?;
    tx.append_event(
        &state.seller_id,
        ctx.now,
        &EventBody::QuantityChanged {
            sku: state.sku.clone(),
            pool_id,
            stores: state.pool_stores(pool_id),
            quantity: quantity_after,
            delta,
            reason,
        },
    )?;
    Ok(())
}
