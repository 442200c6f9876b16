//! The rules of SPEC.md section 3, as commands run on a storage transaction.
//!
//! Every command follows one ladder: load what it needs, check every rule (a refusal is
//! a `DomainError` and nothing has been written yet), then write. Because nothing is
//! written before the last check, many commands can share one database transaction
//! (group commit) and a refused one leaves the others untouched.

use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::catalog;
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
        } => put_listing(tx, ctx, seller, sku, store, input, source, *if_match),
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

// ---------------------------------------------------------------------------
// Sellers

fn create_seller(tx: &mut dyn Tx, ctx: Ctx<'_>, name: &str, token_sha256: &str) -> Decision {
    let name = name.trim();
    check!(check_text("name", name));
    if name.is_empty() || name.chars().count() > 200 {
        return Ok(Err(DomainError::invalid(
            "name",
            "A seller needs a name of 1 to 200 characters.",
        )));
    }
    let seller = Seller {
        seller_id: SellerId::generate(),
        name: name.to_owned(),
        token_sha256: token_sha256.to_owned(),
        created_at: ctx.now,
    };
    tx.insert_seller(&seller)?;
    Ok(Ok(Outcome::Seller(seller)))
}

// ---------------------------------------------------------------------------
// Catalog (R2, R3, R4, R5, R17)

fn create_product(tx: &mut dyn Tx, ctx: Ctx<'_>, p: &NewProduct) -> Decision {
    let store = check!(ctx.region.store(&p.store));
    let title = p.title.trim();
    let brand = p.brand.trim();
    let product_type = p.product_type.trim().to_ascii_uppercase();
    check!(check_text("title", title));
    check!(check_text("brand", brand));
    check!(check_text("description", &p.description));
    if title.is_empty() || title.chars().count() > 500 {
        return Ok(Err(DomainError::invalid(
            "title",
            "A product needs a title of 1 to 500 characters.",
        )));
    }
    if brand.is_empty() || brand.chars().count() > 100 {
        return Ok(Err(DomainError::invalid(
            "brand",
            "A product needs a brand of 1 to 100 characters.",
        )));
    }
    if product_type.is_empty()
        || product_type.len() > 64
        || !product_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Ok(Err(DomainError::invalid(
            "product_type",
            "A product type is 1 to 64 letters, digits or underscores, such as KITCHEN.",
        )));
    }
    let language = check!(
        catalog::language_part(&p.language)
            .filter(|l| store.languages.contains(l))
            .ok_or_else(|| DomainError::new(
                ErrorCode::LanguageNotSupported,
                format!(
                    "Store {} takes detail pages in {}; {:?} is not one of them.",
                    store.code,
                    store.languages.join(", "),
                    p.language
                ),
            )
            .field("language"))
    );
    let mut identifiers: Vec<Identifier> = Vec::new();
    for (kind, value) in &p.identifiers {
        let id = check!(catalog::parse_identifier(kind, value));
        if !identifiers.contains(&id) {
            identifiers.push(id);
        }
    }
    if store.restricts(&product_type) {
        return Ok(Err(restricted(store, &product_type)));
    }
    check!(catalog::check_language(&language, title, &p.description));

    // R3: a page with the same identifier in this store is the product itself.
    let mut elsewhere: Option<DetailPage> = None;
    let mut same_store: Vec<Match> = Vec::new();
    for id in &identifiers {
        for page in tx.pages_by_identifier(&id.value)? {
            if page.store == store.code {
                if !same_store.iter().any(|m| m.asin == page.asin.as_str()) {
                    same_store.push(page_match(&page));
                }
            } else if elsewhere.is_none() {
                elsewhere = Some(page);
            }
        }
    }
    if !same_store.is_empty() {
        return Ok(Err(possible_match(
            format!(
                "Store {} already has this product (same identifier); list your offer against the ASIN given in matches.",
                store.code
            ),
            same_store,
        )));
    }
    let page_for = |asin: Asin| DetailPage {
        asin,
        store: store.code.clone(),
        title: title.to_owned(),
        brand: brand.to_owned(),
        description: p.description.trim().to_owned(),
        language: language.clone(),
        product_type: product_type.clone(),
        identifiers: identifiers.clone(),
    };
    // Same identifier, page only in other stores: the same ASIN gets a page here.
    if let Some(other) = elsewhere {
        let page = page_for(other.asin.clone());
        tx.insert_page(&page)?;
        return Ok(Ok(Outcome::Product {
            asin: other.asin,
            store: store.code.clone(),
            matched: true,
        }));
    }
    if !p.force_new {
        let wanted = catalog::normalize_title(title);
        let near: Vec<Match> = tx
            .pages_by_brand(&store.code, brand)?
            .iter()
            .filter(|page| catalog::normalize_title(&page.title) == wanted)
            .map(page_match)
            .collect();
        if !near.is_empty() {
            return Ok(Err(possible_match(
                format!(
                    "Store {} has a product of the same brand with nearly the same title; list against it, or send force_new: true to create a new product anyway.",
                    store.code
                ),
                near,
            )));
        }
    }
    let asin = loop {
        let candidate = Asin::generate();
        if tx.pages_of_asin(&candidate)?.is_empty() {
            break candidate;
        }
    };
    tx.insert_page(&page_for(asin.clone()))?;
    Ok(Ok(Outcome::Product {
        asin,
        store: store.code.clone(),
        matched: false,
    }))
}

fn possible_match(message: String, matches: Vec<Match>) -> DomainError {
    let mut e = DomainError::new(ErrorCode::PossibleMatch, message);
    e.matches = matches;
    e
}

fn page_match(page: &DetailPage) -> Match {
    Match {
        asin: page.asin.to_string(),
        store: page.store.to_string(),
        title: page.title.clone(),
    }
}

fn restricted(store: &Store, product_type: &str) -> DomainError {
    DomainError::new(
        ErrorCode::RestrictedInStore,
        format!(
            "Product type {product_type} may not be sold in store {}.",
            store.code
        ),
    )
}

/// R2 and R17: the ASIN's page in the store, where the store allows its product type.
fn page_in_store(
    tx: &mut dyn Tx,
    store: &Store,
    asin: &Asin,
) -> StoreResult<Result<DetailPage, DomainError>> {
    if let Some(page) = tx.page(asin, &store.code)? {
        if store.restricts(&page.product_type) {
            return Ok(Err(restricted(store, &page.product_type)));
        }
        return Ok(Ok(page));
    }
    let others = tx.pages_of_asin(asin)?;
    if let Some(p) = others.iter().find(|p| store.restricts(&p.product_type)) {
        return Ok(Err(restricted(store, &p.product_type)));
    }
    Ok(Err(DomainError::new(
        ErrorCode::AsinNotInStore,
        format!(
            "ASIN {asin} has no detail page in store {}; create the product there first (POST /v1/catalog/items).",
            store.code
        ),
    )
    .field("asin")))
}

// ---------------------------------------------------------------------------
// Store listings and pools (R1, R6–R17, R21)

fn check_price(store: &Store, price: &PriceInput) -> Result<(), DomainError> {
    if !price.currency.eq_ignore_ascii_case(&store.currency) {
        return Err(DomainError::new(
            ErrorCode::CurrencyMismatch,
            format!(
                "Prices in store {} are in {}; got {:?}.",
                store.code, store.currency, price.currency
            ),
        )
        .field("price.currency"));
    }
    Ok(())
}

fn shared_field_error(field: &str) -> DomainError {
    DomainError::new(
        ErrorCode::SharedFieldNotEditable,
        format!(
            "A listing that joins the SKU's shared pool takes its {field} from the pool; leave {field} out (change it on the pool through any of its listings with PATCH)."
        ),
    )
    .field(field)
}

/// Loads a SKU with its listings in the region's store order, so `pool_stores` and
/// every list of stores derived from it come out in store order.
fn load(tx: &mut dyn Tx, ctx: Ctx<'_>, seller: &SellerId, sku: &Sku) -> StoreResult<SkuState> {
    let mut state = tx.load_sku(seller, sku)?;
    sort_listings(ctx.region, &mut state);
    Ok(state)
}

/// The next number of a pool's version, for `ETag`s.
fn bump(pool: &mut Pool) {
    pool.version += 1;
}

#[allow(clippy::too_many_arguments)]
fn put_listing(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    seller: &SellerId,
    sku: &Sku,
    store_code: &StoreCode,
    input: &ListingInput,
    source: &Source,
    if_match: Option<i64>,
) -> Decision {
    let store = check!(ctx.region.store(store_code.as_str()));
    let mut state = load(tx, ctx, seller, sku)?;
    if let Some(existing) = state.listing(&store.code).cloned() {
        if let Some(asin) = &input.asin
            && asin != &existing.asin
        {
            return Ok(Err(DomainError::new(
                ErrorCode::SkuAsinMismatch,
                format!(
                    "SKU {sku} is listed on ASIN {} in store {}; a listing's ASIN cannot change. Delete the SKU first or use another SKU.",
                    existing.asin, store.code
                ),
            )
            .field("asin")));
        }
        let mode = state.share_mode(&existing);
        if let Some(asked) = input.share
            && asked != mode
        {
            return Ok(Err(DomainError::new(
                ErrorCode::SharingModeImmutable,
                format!(
                    "This listing's sharing mode is {:?}; it cannot change. Delete the listing and list it again to change it.",
                    mode.as_str()
                ),
            )
            .field("share")));
        }
        if *source == Source::Api && input.share == Some(ShareMode::Existing) {
            if input.quantity.is_some() {
                return Ok(Err(shared_field_error("quantity")));
            }
            if input.condition.is_some() {
                return Ok(Err(shared_field_error("condition")));
            }
        }
        if input.fulfillment == Some(Fulfillment::Marketplace)
            && existing.fulfillment != Fulfillment::Marketplace
            && mode == ShareMode::Existing
        {
            return Ok(Err(cannot_share(
                "A listing on the SKU's shared pool cannot be fulfilled by the marketplace.",
            )));
        }
        let patch = ListingPatch {
            quantity: input.quantity,
            quantity_delta: None,
            condition: input.condition,
            price: input.price.clone(),
            start_selling_at: input.start_selling_at,
        };
        return apply_patch(
            tx,
            ctx,
            store,
            state,
            &patch,
            if_match,
            source,
            input.fulfillment,
        );
    }

    // A new store listing.
    let asin = check!(input.asin.clone().ok_or_else(|| DomainError::invalid(
        "product-id",
        "A new listing needs the product it lists against (an ASIN or product identifier).",
    )));
    let price = check!(input.price.clone().ok_or_else(|| {
        DomainError::new(
            ErrorCode::PriceRequired,
            format!(
                "A listing in store {} needs a price in {}.",
                store.code, store.currency
            ),
        )
        .field("price")
    }));
    check!(check_price(store, &price));
    if let Some(other) = state.listings.iter().find(|l| l.asin != asin) {
        return Ok(Err(DomainError::new(
            ErrorCode::SkuAsinMismatch,
            format!(
                "SKU {sku} points to ASIN {} (store {}); one SKU lists one ASIN in the whole region. Use another SKU for this product.",
                other.asin, other.store
            ),
        )
        .field("asin")));
    }
    check!(page_in_store(tx, store, &asin)?);
    if let Some(q) = input.quantity {
        check!(check_quantity(q, "quantity"));
    }
    let fulfillment = input.fulfillment.unwrap_or(Fulfillment::Merchant);
    let upload = matches!(source, Source::Upload { .. });

    // R6, R7, R8, R9: which pool the listing stands on.
    enum Plan {
        Own { shared: bool },
        Join,
    }
    let shared_pool = state.shared_pool().cloned();
    let plan = match (fulfillment, input.share) {
        (Fulfillment::Marketplace, Some(ShareMode::Existing)) => {
            return Ok(Err(cannot_share(
                "Listings fulfilled by the marketplace never share a pool; send share: \"unique\" or leave it out.",
            )));
        }
        (Fulfillment::Marketplace, _) => Plan::Own { shared: false },
        (Fulfillment::Merchant, Some(ShareMode::Unique)) => Plan::Own { shared: false },
        (Fulfillment::Merchant, Some(ShareMode::Existing)) => match &shared_pool {
            Some(_) => Plan::Join,
            None => {
                let only_marketplace = !state.listings.is_empty()
                    && state
                        .listings
                        .iter()
                        .all(|l| l.fulfillment == Fulfillment::Marketplace);
                if only_marketplace {
                    return Ok(Err(cannot_share(
                        "This SKU's other listings are fulfilled by the marketplace, which never share a pool; send share: \"unique\" or leave share out.",
                    )));
                }
                return Ok(Err(DomainError::new(
                    ErrorCode::SharingNotAvailable,
                    format!(
                        "SKU {sku} has no shared pool in another store to join; leave share out to start one, or send share: \"unique\"."
                    ),
                )
                .field("share")));
            }
        },
        (Fulfillment::Merchant, None) => match &shared_pool {
            Some(_) => Plan::Join,
            None => Plan::Own { shared: true },
        },
    };
    if matches!(plan, Plan::Join) && !upload {
        if input.quantity.is_some() {
            return Ok(Err(shared_field_error("quantity")));
        }
        if input.condition.is_some() {
            return Ok(Err(shared_field_error("condition")));
        }
    }

    // Past this point the command succeeds: write.
    let reason = match source {
        Source::Api => LedgerReason::Set,
        Source::Upload { .. } => LedgerReason::Upload,
    };
    let mut changes: Vec<(i64, i64)> = Vec::new(); // (pool_id, delta)
    let pool_id = match plan {
        Plan::Join => {
            let pool_id = shared_pool.map(|p| p.pool_id).unwrap_or_default();
            // Uploads set the pool's figures: the last quantity uploaded wins.
            if let Some(pool) = state.pools.iter_mut().find(|p| p.pool_id == pool_id) {
                let mut changed = false;
                if let Some(q) = input.quantity
                    && q != pool.quantity
                {
                    changes.push((pool_id, q - pool.quantity));
                    pool.quantity = q;
                    changed = true;
                }
                if let Some(c) = input.condition
                    && c != pool.condition
                {
                    pool.condition = c;
                    changed = true;
                }
                if changed {
                    bump(pool);
                }
            }
            pool_id
        }
        Plan::Own { shared } => {
            let pool_id = tx.new_pool_id()?;
            let quantity = input.quantity.unwrap_or(0);
            state.pools.push(Pool {
                pool_id,
                shared,
                quantity,
                condition: input.condition.unwrap_or(Condition::New),
                version: 1,
            });
            if quantity != 0 {
                changes.push((pool_id, quantity));
            }
            pool_id
        }
    };
    state.listings.push(StoreListing {
        store: store.code.clone(),
        asin,
        pool_id,
        price: price.amount,
        fulfillment,
        start_selling_at: input.start_selling_at.flatten(),
        closed: false,
    });
    sort_listings(ctx.region, &mut state);
    tx.save_sku(&state)?;
    for (pool_id, delta) in changes {
        record_quantity_change(
            tx,
            ctx,
            &state,
            pool_id,
            delta,
            reason,
            &store.code,
            &source.reference(),
        )?;
    }
    record_listing_change(tx, ctx, &state, &store.code, vec![store.code.clone()])?;
    let affected = state.pool_stores(pool_id);
    Ok(Ok(Outcome::Listing {
        state,
        store: store.code.clone(),
        created: true,
        affected_stores: affected,
    }))
}

fn cannot_share(message: &str) -> DomainError {
    DomainError::new(ErrorCode::FulfillmentCannotShare, message).field("share")
}

fn listing_mut<'a>(state: &'a mut SkuState, store: &StoreCode) -> Option<&'a mut StoreListing> {
    state.listings.iter_mut().find(|l| &l.store == store)
}

fn listing_not_found(sku: &Sku, store: &StoreCode) -> DomainError {
    DomainError::not_found(format!(
        "You have no listing of SKU {sku} in store {store}."
    ))
}

#[allow(clippy::too_many_arguments)]
fn patch_listing(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    seller: &SellerId,
    sku: &Sku,
    store_code: &StoreCode,
    patch: &ListingPatch,
    if_match: Option<i64>,
) -> Decision {
    let store = check!(ctx.region.store(store_code.as_str()));
    let state = load(tx, ctx, seller, sku)?;
    if state.listing(&store.code).is_none() {
        return Ok(Err(listing_not_found(sku, &store.code)));
    }
    apply_patch(tx, ctx, store, state, patch, if_match, &Source::Api, None)
}

/// R11, R13, R15, R21: changes an existing listing and, through it, its pool.
#[allow(clippy::too_many_arguments)]
fn apply_patch(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    store: &Store,
    mut state: SkuState,
    patch: &ListingPatch,
    if_match: Option<i64>,
    source: &Source,
    fulfillment: Option<Fulfillment>,
) -> Decision {
    let listing = match state.listing(&store.code) {
        Some(l) => l.clone(),
        None => return Ok(Err(listing_not_found(&state.sku, &store.code))),
    };
    let Some(pool) = state.pool(listing.pool_id).cloned() else {
        return Ok(Err(listing_not_found(&state.sku, &store.code)));
    };
    if let Some(v) = if_match
        && v != pool.version
    {
        return Ok(Err(DomainError::new(
            ErrorCode::VersionMismatch,
            format!(
                "The pool is at version {} and you sent If-Match {v}; read the listing again and retry with its ETag.",
                pool.version
            ),
        )));
    }
    if patch.quantity.is_some() && patch.quantity_delta.is_some() {
        return Ok(Err(DomainError::invalid(
            "quantity_delta",
            "Send quantity or quantity_delta, not both.",
        )));
    }
    let mut new_quantity = pool.quantity;
    let mut reason = match source {
        Source::Api => LedgerReason::Set,
        Source::Upload { .. } => LedgerReason::Upload,
    };
    if let Some(q) = patch.quantity {
        new_quantity = check!(check_quantity(q, "quantity"));
    }
    if let Some(d) = patch.quantity_delta {
        reason = LedgerReason::Adjust;
        let after = pool.quantity.saturating_add(d);
        if after < 0 {
            return Ok(Err(DomainError::new(
                ErrorCode::InsufficientStock,
                format!(
                    "The pool holds {}; a change of {d} would take it below zero.",
                    pool.quantity
                ),
            )
            .field("quantity_delta")));
        }
        if after > QUANTITY_MAX {
            return Ok(Err(DomainError::new(
                ErrorCode::InvalidQuantity,
                format!("A pool holds at most {QUANTITY_MAX}; this change would make {after}."),
            )
            .field("quantity_delta")));
        }
        new_quantity = after;
    }
    if let Some(price) = &patch.price {
        check!(check_price(store, price));
    }

    // Past this point the command succeeds: write.
    let delta = new_quantity - pool.quantity;
    let condition_changed = patch.condition.is_some_and(|c| c != pool.condition);
    let pool_changed = delta != 0 || condition_changed;
    if let Some(p) = state.pools.iter_mut().find(|p| p.pool_id == pool.pool_id) {
        p.quantity = new_quantity;
        if let Some(c) = patch.condition {
            p.condition = c;
        }
        if pool_changed {
            bump(p);
        }
    }
    let before_status = listing_status(&state, &store.code, ctx.now);
    let mut listing_changed = false;
    if let Some(l) = listing_mut(&mut state, &store.code) {
        if let Some(price) = &patch.price
            && price.amount != l.price
        {
            l.price = price.amount;
            listing_changed = true;
        }
        if let Some(start) = patch.start_selling_at
            && start != l.start_selling_at
        {
            l.start_selling_at = start;
            listing_changed = true;
        }
        if let Some(f) = fulfillment
            && f != l.fulfillment
        {
            l.fulfillment = f;
            listing_changed = true;
        }
    }
    tx.save_sku(&state)?;
    let pool_stores = state.pool_stores(pool.pool_id);
    if delta != 0 {
        record_quantity_change(
            tx,
            ctx,
            &state,
            pool.pool_id,
            delta,
            reason,
            &store.code,
            &source.reference(),
        )?;
    }
    let status = listing_status(&state, &store.code, ctx.now);
    if condition_changed {
        record_listing_change(tx, ctx, &state, &store.code, pool_stores.clone())?;
    } else if listing_changed || (before_status != status && delta == 0) {
        record_listing_change(tx, ctx, &state, &store.code, vec![store.code.clone()])?;
    }
    let affected = if pool_changed {
        pool_stores
    } else {
        vec![store.code.clone()]
    };
    Ok(Ok(Outcome::Listing {
        state,
        store: store.code.clone(),
        created: false,
        affected_stores: affected,
    }))
}

/// A `listing_changed` event naming `stores`, with the status of the listing in `store`.
fn record_listing_change(
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
fn record_quantity_change(
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

fn set_closed(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    seller: &SellerId,
    sku: &Sku,
    store_code: &StoreCode,
    closed: bool,
) -> Decision {
    let store = check!(ctx.region.store(store_code.as_str()));
    let mut state = load(tx, ctx, seller, sku)?;
    let Some(l) = listing_mut(&mut state, &store.code) else {
        return Ok(Err(listing_not_found(sku, &store.code)));
    };
    if l.closed != closed {
        l.closed = closed;
        tx.save_sku(&state)?;
        record_listing_change(tx, ctx, &state, &store.code, vec![store.code.clone()])?;
    }
    Ok(Ok(Outcome::Listing {
        state,
        store: store.code.clone(),
        created: false,
        affected_stores: vec![store.code.clone()],
    }))
}

/// R16: every store listing of the SKU and their pools go; the ledger records each
/// pool's removal so its deltas still add up (to zero).
fn delete_sku(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    seller: &SellerId,
    sku: &Sku,
    source: &Source,
) -> Decision {
    let state = load(tx, ctx, seller, sku)?;
    if state.listings.is_empty() {
        return Ok(Err(DomainError::not_found(format!(
            "You have no listing of SKU {sku}."
        ))));
    }
    let stores: Vec<StoreCode> = state.listings.iter().map(|l| l.store.clone()).collect();
    let empty = SkuState::empty(seller.clone(), sku.clone());
    tx.save_sku(&empty)?;
    for pool in &state.pools {
        let store = state
            .listings
            .iter()
            .find(|l| l.pool_id == pool.pool_id)
            .map(|l| l.store.clone())
            .unwrap_or_else(|| stores[0].clone());
        record_pool_removal(tx, ctx, &state, pool, store, source)?;
    }
    tx.append_event(
        seller,
        ctx.now,
        &EventBody::ListingDeleted {
            sku: sku.clone(),
            stores: stores.clone(),
        },
    )?;
    Ok(Ok(Outcome::Deleted {
        sku: sku.clone(),
        deleted_stores: stores,
    }))
}

/// The ledger entry of a removed pool (R16, R20): its quantity goes to zero, so the
/// pool's deltas still add up.
fn record_pool_removal(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    state: &SkuState,
    pool: &Pool,
    store: StoreCode,
    source: &Source,
) -> StoreResult<()> {
    tx.append_ledger(&LedgerEntry {
        seq: 0,
        at: ctx.now,
        seller_id: state.seller_id.clone(),
        sku: state.sku.clone(),
        pool_id: pool.pool_id,
        delta: -pool.quantity,
        quantity_after: 0,
        reason: LedgerReason::Delete,
        store,
        reference: source.reference(),
    })
}

/// Upload `d`: the listing in this store only; its pool goes with it when no other
/// listing stands on it.
fn delete_in_store(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    seller: &SellerId,
    sku: &Sku,
    store: &StoreCode,
    source: &Source,
) -> Decision {
    let mut state = load(tx, ctx, seller, sku)?;
    let Some(listing) = state.listing(store).cloned() else {
        return Ok(Err(listing_not_found(sku, store)));
    };
    state.listings.retain(|l| &l.store != store);
    let orphan = !state.listings.iter().any(|l| l.pool_id == listing.pool_id);
    let removed_pool = if orphan {
        let p = state.pool(listing.pool_id).cloned();
        state.pools.retain(|p| p.pool_id != listing.pool_id);
        p
    } else {
        None
    };
    tx.save_sku(&state)?;
    if let Some(pool) = &removed_pool {
        record_pool_removal(tx, ctx, &state, pool, store.clone(), source)?;
    }
    tx.append_event(
        seller,
        ctx.now,
        &EventBody::ListingDeleted {
            sku: sku.clone(),
            stores: vec![store.clone()],
        },
    )?;
    Ok(Ok(Outcome::Deleted {
        sku: sku.clone(),
        deleted_stores: vec![store.clone()],
    }))
}

// ---------------------------------------------------------------------------
// Orders (R18, R19)

/// Adds up lines of the same (seller, SKU), keeping the order of first appearance.
fn merge_lines(lines: &[OrderLine]) -> Vec<OrderLine> {
    let mut merged: Vec<OrderLine> = Vec::new();
    for line in lines {
        match merged
            .iter_mut()
            .find(|m| m.seller_id == line.seller_id && m.sku == line.sku)
        {
            Some(m) => m.quantity = m.quantity.saturating_add(line.quantity),
            None => merged.push(line.clone()),
        }
    }
    merged
}

fn check_order_id(order_id: &str) -> Result<(), DomainError> {
    let n = order_id.chars().count();
    if n == 0 || n > ORDER_ID_CHARS_MAX || order_id.chars().any(|c| c.is_control()) {
        return Err(DomainError::invalid(
            "order_id",
            format!(
                "An order id is 1 to {ORDER_ID_CHARS_MAX} printable characters; got {n} characters."
            ),
        ));
    }
    Ok(())
}

fn place_order(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    store_code: &StoreCode,
    order_id: &str,
    lines: &[OrderLine],
) -> Decision {
    let store = check!(ctx.region.store(store_code.as_str()));
    check!(check_order_id(order_id));
    if lines.is_empty() || lines.len() > ORDER_LINES_MAX {
        return Ok(Err(DomainError::invalid(
            "lines",
            format!(
                "An order has 1 to {ORDER_LINES_MAX} lines; this one has {}.",
                lines.len()
            ),
        )));
    }
    for (i, line) in lines.iter().enumerate() {
        check!(check_text(
            &format!("lines[{i}].seller_id"),
            &line.seller_id.0
        ));
        if line.quantity < 1 || line.quantity > QUANTITY_MAX {
            return Ok(Err(DomainError::new(
                ErrorCode::InvalidQuantity,
                format!(
                    "Line {i} asks for {}; an order line asks for 1 to {QUANTITY_MAX}.",
                    line.quantity
                ),
            )
            .field(format!("lines[{i}].quantity"))));
        }
    }
    let merged = merge_lines(lines);
    let mut key = merged.clone();
    key.sort();
    // Lock the pools first, then look the order id up: on a server database another
    // process may be committing this very order while we wait for the locks, and its
    // answer must be replayed, not judged afresh against the stock it took.
    let mut states: Vec<SkuState> = Vec::with_capacity(merged.len());
    for line in &merged {
        states.push(load(tx, ctx, &line.seller_id, &line.sku)?);
    }
    if let Some(answer) = replay_of(tx, &store.code, order_id, &key)? {
        return Ok(answer);
    }

    // Check every line before touching any pool: all or nothing.
    if let Err(refusal) = check_order_lines(ctx, &store.code, &merged, &states) {
        // The first look-up may have been answered ahead of the pool locks: read the
        // id again now that they are held, so an order another process committed
        // meanwhile is replayed rather than refused against the stock it took.
        if let Some(answer) = replay_of(tx, &store.code, order_id, &key)? {
            return Ok(answer);
        }
        return Ok(Err(refusal));
    }

    // Past this point the order is accepted: write.
    let mut results = Vec::with_capacity(merged.len());
    for (line, mut state) in merged.iter().zip(states) {
        let pool_id = state
            .listing(&store.code)
            .map(|l| l.pool_id)
            .unwrap_or_default();
        let mut after = 0;
        if let Some(p) = state.pools.iter_mut().find(|p| p.pool_id == pool_id) {
            p.quantity -= line.quantity;
            after = p.quantity;
            bump(p);
        }
        tx.save_sku(&state)?;
        record_quantity_change(
            tx,
            ctx,
            &state,
            pool_id,
            -line.quantity,
            LedgerReason::Order,
            &store.code,
            order_id,
        )?;
        results.push(OrderLineResult {
            seller_id: line.seller_id.clone(),
            sku: line.sku.clone(),
            quantity: line.quantity,
            pool_id,
            quantity_after: after,
            stores: state.pool_stores(pool_id),
        });
    }
    let record = OrderRecord {
        store: store.code.clone(),
        order_id: order_id.to_owned(),
        lines: key,
        results,
        cancelled: false,
        at: ctx.now,
    };
    tx.save_order(&record)?;
    Ok(Ok(Outcome::Order {
        record,
        replay: false,
    }))
}

/// The answer to an order id already used in this store: the first answer for the same
/// lines (R19), `ORDER_ID_REUSED` for other lines; None when the id is new.
fn replay_of(
    tx: &mut dyn Tx,
    store: &StoreCode,
    order_id: &str,
    key: &[OrderLine],
) -> StoreResult<Option<Result<Outcome, DomainError>>> {
    let Some(first) = tx.order(store, order_id)? else {
        return Ok(None);
    };
    if first.lines == key {
        return Ok(Some(Ok(Outcome::Order {
            record: first,
            replay: true,
        })));
    }
    Ok(Some(Err(DomainError::new(
        ErrorCode::OrderIdReused,
        format!(
            "Order {order_id} was already placed in store {store} with other lines; use a new order id."
        ),
    )
    .field("order_id"))))
}

/// R18: every line must be buyable and have the stock it asks for.
fn check_order_lines(
    ctx: Ctx<'_>,
    store: &StoreCode,
    lines: &[OrderLine],
    states: &[SkuState],
) -> Result<(), DomainError> {
    for (i, (line, state)) in lines.iter().zip(states).enumerate() {
        let not_buyable = |why: &str| {
            Err(DomainError::new(
                ErrorCode::ListingNotBuyable,
                format!(
                    "Seller {} SKU {} cannot be bought in store {store}: {why}.",
                    line.seller_id, line.sku
                ),
            )
            .field(format!("lines[{i}]")))
        };
        let Some(listing) = state.listing(store) else {
            return not_buyable("there is no such listing");
        };
        if listing.closed {
            return not_buyable("the listing is closed");
        }
        if listing.start_selling_at.is_some_and(|t| t > ctx.now) {
            return not_buyable("the listing has not started selling yet");
        }
        let available = state.pool(listing.pool_id).map(|p| p.quantity).unwrap_or(0);
        if available < line.quantity {
            return Err(DomainError::new(
                ErrorCode::InsufficientStock,
                format!(
                    "Seller {} SKU {} has {available} in stock; the order asks for {}.",
                    line.seller_id, line.sku, line.quantity
                ),
            )
            .field(format!("lines[{i}].quantity")));
        }
    }
    Ok(())
}

/// R19: returns the quantities to the pools they came from, once. A pool deleted since
/// (R16) gets nothing back: its SKU's history ended with the deletion.
fn cancel_order(tx: &mut dyn Tx, ctx: Ctx<'_>, store_code: &StoreCode, order_id: &str) -> Decision {
    let store = check!(ctx.region.store(store_code.as_str()));
    check!(check_order_id(order_id));
    let Some(mut record) = tx.order(&store.code, order_id)? else {
        return Ok(Err(DomainError::not_found(format!(
            "There is no order {order_id:?} in store {}.",
            store.code
        ))));
    };
    if !record.cancelled {
        for line in &record.results {
            let mut state = load(tx, ctx, &line.seller_id, &line.sku)?;
            let Some(pool) = state.pools.iter_mut().find(|p| p.pool_id == line.pool_id) else {
                continue;
            };
            // A pool holds at most QUANTITY_MAX (R21), and the stock may have been
            // raised to it since the order: the cancel returns what fits, and the ledger
            // records what was returned, so its deltas still add up to the quantity (R20).
            let before = pool.quantity;
            pool.quantity = (pool.quantity + line.quantity).min(QUANTITY_MAX);
            let returned = pool.quantity - before;
            bump(pool);
            tx.save_sku(&state)?;
            record_quantity_change(
                tx,
                ctx,
                &state,
                line.pool_id,
                returned,
                LedgerReason::Cancel,
                &store.code,
                order_id,
            )?;
        }
        record.cancelled = true;
        tx.save_order(&record)?;
    }
    Ok(Ok(Outcome::Cancelled {
        order_id: order_id.to_owned(),
    }))
}

// ---------------------------------------------------------------------------
// Uploads (R23): each row is the same command the API would run.

fn apply_upload_rows(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    upload_id: &str,
    warnings: &[ReportLine],
    records: &[UploadRecord],
    done: bool,
) -> Decision {
    let Some(mut upload) = tx.upload(upload_id)? else {
        return Ok(Err(DomainError::not_found(format!(
            "There is no upload {upload_id}."
        ))));
    };
    if matches!(upload.status, UploadStatus::Done | UploadStatus::Fatal) {
        return Ok(Ok(Outcome::Upload(upload)));
    }
    let source = Source::Upload {
        upload_id: upload_id.to_owned(),
    };
    // Whole-file warnings belong to the first chunk applied; a chunk that another
    // worker already applied before this one must not repeat them.
    let mut report: Vec<ReportLine> = if upload.records_processed == 0 {
        warnings.to_vec()
    } else {
        Vec::new()
    };
    let keys: Vec<(SellerId, Sku)> = records
        .iter()
        .filter(|r| r.record > upload.checkpoint)
        .filter_map(|r| r.row.as_ref().ok())
        .map(|row| (upload.seller_id.clone(), row.sku.clone()))
        .collect();
    tx.prefetch_skus(&keys)?;
    for rec in records {
        // A resumed upload may be handed rows it already applied: skip them.
        if rec.record <= upload.checkpoint {
            continue;
        }
        let result = match &rec.row {
            Ok(row) => apply_upload_row(tx, ctx, &upload, row, &source)?,
            Err(e) => Err(e.clone()),
        };
        upload.records_processed += 1;
        match result {
            Ok(()) => upload.records_successful += 1,
            Err(e) => {
                upload.records_failed += 1;
                report.push(ReportLine {
                    record: rec.record,
                    sku: rec.sku.clone(),
                    code: e.code.as_str().to_owned(),
                    kind: ReportKind::Error,
                    message: e.message,
                });
            }
        }
        upload.checkpoint = rec.record;
    }
    if !report.is_empty() {
        tx.append_report(upload_id, &report)?;
    }
    upload.status = if done {
        UploadStatus::Done
    } else {
        UploadStatus::InProgress
    };
    tx.update_upload(&upload)?;
    Ok(Ok(Outcome::Upload(upload)))
}

fn apply_upload_row(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    upload: &Upload,
    row: &UploadRow,
    source: &Source,
) -> StoreResult<Result<(), DomainError>> {
    let seller = &upload.seller_id;
    let outcome = match row.action {
        UploadAction::DeleteEverywhere => delete_sku(tx, ctx, seller, &row.sku, source)?,
        UploadAction::DeleteInStore => {
            delete_in_store(tx, ctx, seller, &row.sku, &upload.store, source)?
        }
        UploadAction::AddOrUpdate => {
            let store = match ctx.region.store(upload.store.as_str()) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            let asin = match &row.product {
                None => None,
                Some(ProductRef::Asin(raw)) => match Asin::parse(raw) {
                    Ok(a) => Some(a),
                    Err(e) => return Ok(Err(e.field("product-id"))),
                },
                Some(ProductRef::Identifier { kind, value }) => {
                    let id = match catalog::parse_identifier(kind, value) {
                        Ok(id) => id,
                        Err(e) => return Ok(Err(e.field("product-id"))),
                    };
                    let pages = tx.pages_by_identifier(&id.value)?;
                    // A page in this store gives the ASIN; a page only elsewhere still
                    // names the product, so the listing rules (R2, R17) say why it
                    // cannot be listed here.
                    let page = pages
                        .iter()
                        .find(|p| p.store == store.code)
                        .or_else(|| pages.first());
                    match page {
                        Some(p) => Some(p.asin.clone()),
                        None => {
                            return Ok(Err(DomainError::new(
                                ErrorCode::AsinNotInStore,
                                format!(
                                    "No detail page in store {} has {} {}; create the product first.",
                                    store.code, id.kind, id.value
                                ),
                            )
                            .field("product-id")));
                        }
                    }
                }
            };
            let input = ListingInput {
                asin,
                price: row.price.map(|amount| PriceInput {
                    amount,
                    currency: store.currency.clone(),
                }),
                share: row.share,
                condition: row.condition,
                quantity: row.quantity,
                fulfillment: row.fulfillment,
                start_selling_at: row.start_selling_at.map(Some),
            };
            put_listing(tx, ctx, seller, &row.sku, &store.code, &input, source, None)?
        }
    };
    Ok(outcome.map(|_| ()))
}

fn fail_upload(tx: &mut dyn Tx, upload_id: &str, error: &str) -> Decision {
    let Some(mut upload) = tx.upload(upload_id)? else {
        return Ok(Err(DomainError::not_found(format!(
            "There is no upload {upload_id}."
        ))));
    };
    // Finished already (another worker got there first): the first end stands.
    if matches!(upload.status, UploadStatus::Done | UploadStatus::Fatal) {
        return Ok(Ok(Outcome::Upload(upload)));
    }
    upload.status = UploadStatus::Fatal;
    upload.error = Some(error.to_owned());
    tx.update_upload(&upload)?;
    Ok(Ok(Outcome::Upload(upload)))
}

// ---------------------------------------------------------------------------
// Views: what a listing looks like to its seller and to buyers (R8, R12).

/// Why a listing is not buyable now; empty when it is (R12).
pub fn inactive_reasons(
    state: &SkuState,
    store: &StoreCode,
    now: OffsetDateTime,
) -> Vec<InactiveReason> {
    let mut reasons = Vec::new();
    let Some(listing) = state.listing(store) else {
        return reasons;
    };
    if listing.closed {
        reasons.push(InactiveReason::Closed);
    }
    if listing.start_selling_at.is_some_and(|t| t > now) {
        reasons.push(InactiveReason::NotYetStarted);
    }
    if state.pool(listing.pool_id).is_none_or(|p| p.quantity <= 0) {
        reasons.push(InactiveReason::OutOfStock);
    }
    reasons
}

/// `active` or `inactive`.
pub fn listing_status(state: &SkuState, store: &StoreCode, now: OffsetDateTime) -> &'static str {
    if inactive_reasons(state, store, now).is_empty() {
        "active"
    } else {
        "inactive"
    }
}

/// Keeps listings in the region's store order, so every view lists them alike.
pub fn sort_listings(region: &Region, state: &mut SkuState) {
    state.listings.sort_by_key(|l| region.store_index(&l.store));
}

/// A store listing as its seller sees it (SPEC 4.1, listing view).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingView {
    pub sku: Sku,
    pub store: StoreCode,
    pub asin: Asin,
    pub share: ShareMode,
    pub pool_id: i64,
    pub pool_stores: Vec<StoreCode>,
    pub pool_version: i64,
    pub condition: Condition,
    pub quantity: i64,
    pub price: Decimal,
    pub currency: String,
    pub fulfillment: Fulfillment,
    pub start_selling_at: Option<OffsetDateTime>,
    pub closed: bool,
    pub active: bool,
    pub reasons: Vec<InactiveReason>,
}

/// The view of the SKU's listing in `store`, None when there is none.
pub fn listing_view(
    region: &Region,
    state: &SkuState,
    store: &StoreCode,
    now: OffsetDateTime,
) -> Option<ListingView> {
    let listing = state.listing(store)?;
    let pool = state.pool(listing.pool_id)?;
    let mut pool_stores = state.pool_stores(listing.pool_id);
    pool_stores.sort_by_key(|s| region.store_index(s));
    let reasons = inactive_reasons(state, store, now);
    let currency = region
        .store(store.as_str())
        .map(|s| s.currency.clone())
        .unwrap_or_default();
    Some(ListingView {
        sku: state.sku.clone(),
        store: store.clone(),
        asin: listing.asin.clone(),
        share: state.share_mode(listing),
        pool_id: pool.pool_id,
        pool_stores,
        pool_version: pool.version,
        condition: pool.condition,
        quantity: pool.quantity,
        price: listing.price,
        currency,
        fulfillment: listing.fulfillment,
        start_selling_at: listing.start_selling_at,
        closed: listing.closed,
        active: reasons.is_empty(),
        reasons,
    })
}

/// Every listing view of the SKU, in store order.
pub fn sku_views(region: &Region, state: &SkuState, now: OffsetDateTime) -> Vec<ListingView> {
    let mut views: Vec<ListingView> = state
        .listings
        .iter()
        .filter_map(|l| listing_view(region, state, &l.store, now))
        .collect();
    views.sort_by_key(|v| region.store_index(&v.store));
    views
}

/// Where a listing page ends: its last (SKU, store).
pub type ListingCursor = (Sku, StoreCode);

/// `GET /v1/listings`: one page of the seller's listings in (SKU, store) order.
/// `after` is the last (SKU, store) of the previous page. Returns the page and the
/// cursor of its last item when more may follow.
#[allow(clippy::too_many_arguments)]
pub fn listing_page(
    tx: &mut dyn Tx,
    region: &Region,
    seller: &SellerId,
    store: Option<&StoreCode>,
    active: Option<bool>,
    after: Option<(Sku, StoreCode)>,
    limit: usize,
    now: OffsetDateTime,
) -> StoreResult<(Vec<ListingView>, Option<ListingCursor>)> {
    /// SKUs read per storage call while filling a page.
    const SKUS_PER_READ: usize = 200;
    let mut items: Vec<ListingView> = Vec::new();
    let mut from = after.as_ref().map(|(s, _)| s.clone());
    // SKUs already looked at: `skus_from` starts at `from` included, so each read after
    // the first begins with the last SKU of the one before.
    let mut done_upto: Option<Sku> = None;
    loop {
        let chunk = tx.skus_from(seller, from.as_ref(), SKUS_PER_READ)?;
        let chunk_len = chunk.len();
        for state in &chunk {
            if done_upto.as_ref().is_some_and(|d| &state.sku <= d) {
                continue;
            }
            for view in sku_views(region, state, now) {
                if let Some((after_sku, after_store)) = &after {
                    let past = view.sku > *after_sku
                        || (view.sku == *after_sku
                            && region.store_index(&view.store) > region.store_index(after_store));
                    if !past {
                        continue;
                    }
                }
                if store.is_some_and(|s| s != &view.store) {
                    continue;
                }
                if active.is_some_and(|a| a != view.active) {
                    continue;
                }
                if items.len() == limit {
                    let last = items.last().map(|v| (v.sku.clone(), v.store.clone()));
                    return Ok((items, last));
                }
                items.push(view);
            }
            done_upto = Some(state.sku.clone());
        }
        if chunk_len < SKUS_PER_READ {
            return Ok((items, None));
        }
        from = done_upto.clone();
    }
}

/// An offer as the operator's storefront sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub seller_id: SellerId,
    pub sku: Sku,
    pub condition: Condition,
    pub price: Decimal,
    pub currency: String,
    pub quantity: i64,
    pub fulfillment: Fulfillment,
}

/// `GET /v1/stores/{store}/items/{asin}/offers`: buyable offers, lowest price first.
pub fn offers(
    tx: &mut dyn Tx,
    region: &Region,
    store: &StoreCode,
    asin: &Asin,
    now: OffsetDateTime,
) -> StoreResult<Vec<Offer>> {
    let mut offers: Vec<Offer> = tx
        .skus_on_asin(store, asin)?
        .iter()
        .filter_map(|state| listing_view(region, state, store, now).map(|v| (state, v)))
        .filter(|(_, v)| v.active && &v.asin == asin)
        .map(|(state, v)| Offer {
            seller_id: state.seller_id.clone(),
            sku: v.sku,
            condition: v.condition,
            price: v.price,
            currency: v.currency,
            quantity: v.quantity,
            fulfillment: v.fulfillment,
        })
        .collect();
    offers.sort_by(|a, b| {
        a.price
            .cmp(&b.price)
            .then_with(|| a.seller_id.cmp(&b.seller_id))
            .then_with(|| a.sku.cmp(&b.sku))
    });
    Ok(offers)
}
