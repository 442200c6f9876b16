//! The state the rules read and write: a seller's SKU with its store listings and pools
//! (one aggregate, changed as a whole), catalog pages, ledger entries, events, orders and
//! uploads. Plain data: the rules live in `rules`, the storage in `onestock-store`.

use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::types::{Asin, Condition, Fulfillment, PoolId, SellerId, ShareMode, Sku, StoreCode};

/// A product identifier of R4, already checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identifier {
    /// `UPC`, `EAN`, `GTIN` or `ISBN`.
    pub kind: String,
    /// Digits (and `X` for an ISBN-10), as given, leading zeros kept.
    pub value: String,
}

/// A product's page in one store (R2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailPage {
    pub asin: Asin,
    pub store: StoreCode,
    pub title: String,
    pub brand: String,
    pub description: String,
    /// The two-letter language of the page.
    pub language: String,
    /// Upper case (`FIREWORKS`).
    pub product_type: String,
    pub identifiers: Vec<Identifier>,
}

/// The quantity and condition behind one or more store listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub pool_id: PoolId,
    /// True for the SKU's shared pool (R6): other listings may join it.
    pub shared: bool,
    pub quantity: i64,
    pub condition: Condition,
    /// Grows with every change of the pool; the `ETag` (R21).
    pub version: i64,
}

/// One seller's offer for a SKU in one store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreListing {
    pub store: StoreCode,
    pub asin: Asin,
    pub pool_id: PoolId,
    pub price: Decimal,
    pub fulfillment: Fulfillment,
    pub start_selling_at: Option<OffsetDateTime>,
    pub closed: bool,
}

/// A seller's SKU: every store listing of it and every pool behind them. The rules read
/// and change it as a whole, so a change to a pool and to the listings it affects is
/// one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkuState {
    pub seller_id: SellerId,
    pub sku: Sku,
    pub listings: Vec<StoreListing>,
    pub pools: Vec<Pool>,
}

impl SkuState {
    pub fn empty(seller_id: SellerId, sku: Sku) -> SkuState {
        SkuState {
            seller_id,
            sku,
            listings: Vec::new(),
            pools: Vec::new(),
        }
    }
    pub fn listing(&self, store: &StoreCode) -> Option<&StoreListing> {
        self.listings.iter().find(|l| &l.store == store)
    }
    pub fn pool(&self, pool_id: PoolId) -> Option<&Pool> {
        self.pools.iter().find(|p| p.pool_id == pool_id)
    }
    pub fn shared_pool(&self) -> Option<&Pool> {
        self.pools.iter().find(|p| p.shared)
    }
    /// The stores whose listings stand on this pool, in the order given by `order`.
    pub fn pool_stores(&self, pool_id: PoolId) -> Vec<StoreCode> {
        self.listings
            .iter()
            .filter(|l| l.pool_id == pool_id)
            .map(|l| l.store.clone())
            .collect()
    }
    pub fn share_mode(&self, listing: &StoreListing) -> ShareMode {
        match self.pool(listing.pool_id) {
            Some(p) if p.shared => ShareMode::Existing,
            _ => ShareMode::Unique,
        }
    }
}

/// Why a store listing is not buyable (R12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InactiveReason {
    OutOfStock,
    Closed,
    NotYetStarted,
}

impl InactiveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            InactiveReason::OutOfStock => "OUT_OF_STOCK",
            InactiveReason::Closed => "CLOSED",
            InactiveReason::NotYetStarted => "NOT_YET_STARTED",
        }
    }
}

/// Why a pool's quantity changed (R20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerReason {
    Order,
    Cancel,
    Set,
    Adjust,
    Upload,
    Delete,
}

impl LedgerReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerReason::Order => "order",
            LedgerReason::Cancel => "cancel",
            LedgerReason::Set => "set",
            LedgerReason::Adjust => "adjust",
            LedgerReason::Upload => "upload",
            LedgerReason::Delete => "delete",
        }
    }
    pub fn parse(raw: &str) -> Option<LedgerReason> {
        [
            LedgerReason::Order,
            LedgerReason::Cancel,
            LedgerReason::Set,
            LedgerReason::Adjust,
            LedgerReason::Upload,
            LedgerReason::Delete,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }
}

/// One change of one pool's quantity. The storage numbers it (`seq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub seller_id: SellerId,
    pub sku: Sku,
    pub pool_id: PoolId,
    pub delta: i64,
    pub quantity_after: i64,
    pub reason: LedgerReason,
    /// The store the change came through.
    pub store: StoreCode,
    /// Order id, upload id, or empty.
    pub reference: String,
}

/// What a seller's event says (SPEC 4.1, events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    QuantityChanged {
        sku: Sku,
        pool_id: PoolId,
        stores: Vec<StoreCode>,
        quantity: i64,
        delta: i64,
        reason: LedgerReason,
    },
    ListingChanged {
        sku: Sku,
        stores: Vec<StoreCode>,
        /// `active` or `inactive`.
        status: String,
    },
    ListingDeleted {
        sku: Sku,
        stores: Vec<StoreCode>,
    },
}

impl EventBody {
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::QuantityChanged { .. } => "quantity_changed",
            EventBody::ListingChanged { .. } => "listing_changed",
            EventBody::ListingDeleted { .. } => "listing_deleted",
        }
    }
}

/// An event as stored: numbered per seller, from 1, without gaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub seller_id: SellerId,
    pub seq: i64,
    pub at: OffsetDateTime,
    pub body: EventBody,
}

/// One line of an accepted order, as answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLineResult {
    pub seller_id: SellerId,
    pub sku: Sku,
    pub quantity: i64,
    pub pool_id: PoolId,
    pub quantity_after: i64,
    pub stores: Vec<StoreCode>,
}

/// An order line as asked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderLine {
    pub seller_id: SellerId,
    pub sku: Sku,
    pub quantity: i64,
}

/// An accepted order, kept for replays (R19) and cancels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    pub store: StoreCode,
    pub order_id: String,
    /// The lines as asked, after adding up lines of the same (seller, SKU), sorted: a
    /// replay is the same order when these are equal.
    pub lines: Vec<OrderLine>,
    /// The first answer's lines, returned again on replay.
    pub results: Vec<OrderLineResult>,
    pub cancelled: bool,
    pub at: OffsetDateTime,
}

/// A seller account. The token itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seller {
    pub seller_id: SellerId,
    pub name: String,
    pub token_sha256: String,
    pub created_at: OffsetDateTime,
}

/// Upload statuses of SPEC section 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadStatus {
    InQueue,
    InProgress,
    Done,
    Fatal,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::InQueue => "IN_QUEUE",
            UploadStatus::InProgress => "IN_PROGRESS",
            UploadStatus::Done => "DONE",
            UploadStatus::Fatal => "FATAL",
        }
    }
    pub fn parse(raw: &str) -> Option<UploadStatus> {
        [
            UploadStatus::InQueue,
            UploadStatus::InProgress,
            UploadStatus::Done,
            UploadStatus::Fatal,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// An upload and its progress. `records_*` and `checkpoint` move together, in the same
/// transaction as the rows they count, so a restart resumes after the last applied row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub upload_id: String,
    pub seller_id: SellerId,
    pub store: StoreCode,
    pub status: UploadStatus,
    /// Where the file lies on disk.
    pub path: String,
    pub records_processed: i64,
    pub records_successful: i64,
    pub records_failed: i64,
    /// Data rows (counted from 1) applied so far: a restart starts at `checkpoint + 1`.
    pub checkpoint: i64,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
}

/// `Error` (the row was not applied) or `Warning` (applied, with a remark).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Error,
    Warning,
}

/// One line of an upload's processing report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportLine {
    pub record: i64,
    pub sku: String,
    pub code: String,
    pub kind: ReportKind,
    pub message: String,
}
