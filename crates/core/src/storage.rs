//! The storage trait: what the rules need from a database, and nothing about which one.
//!
//! Architecture Invariant: only `onestock-store` implements this trait and knows SQL.
//! A `Tx` is one database transaction. The rules in `rules` decide everything before
//! they write, so a rule that refuses a request leaves the transaction untouched and
//! other requests batched into the same transaction are unaffected.

use time::OffsetDateTime;

use crate::model::{
    DetailPage, Event, EventBody, LedgerEntry, OrderRecord, ReportLine, Seller, SkuState, Upload,
};
use crate::types::{Asin, PoolId, SellerId, Sku, StoreCode};

/// A failure of the storage itself, never of a rule.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A serialization failure, a deadlock or a lost race on a unique key: the whole
    /// transaction is safe to run again, and `Database::write` does so (bounded).
    #[error("transaction must be retried: {0}")]
    Retry(String),
    #[error("storage error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One transaction on the database. Every method may be called in any order; writes are
/// visible to later reads of the same transaction.
pub trait Tx {
    // --- sellers and settings ---
    fn insert_seller(&mut self, seller: &Seller) -> StoreResult<()>;
    fn seller_by_token(&mut self, token_sha256: &str) -> StoreResult<Option<Seller>>;
    /// Sellers in id order (byte order of the UTF-8 string), those after `after` when
    /// given, at most `limit`.
    fn sellers(&mut self, after: Option<&SellerId>, limit: usize) -> StoreResult<Vec<Seller>>;
    /// A small key/value table for the server's own settings (the operator token's hash).
    fn setting(&mut self, key: &str) -> StoreResult<Option<String>>;
    fn set_setting(&mut self, key: &str, value: &str) -> StoreResult<()>;

    // --- catalog ---
    fn insert_page(&mut self, page: &DetailPage) -> StoreResult<()>;
    fn page(&mut self, asin: &Asin, store: &StoreCode) -> StoreResult<Option<DetailPage>>;
    /// Every page of the ASIN, in any store.
    fn pages_of_asin(&mut self, asin: &Asin) -> StoreResult<Vec<DetailPage>>;
    /// Pages in any store with an identifier of exactly this value (digits as given).
    fn pages_by_identifier(&mut self, value: &str) -> StoreResult<Vec<DetailPage>>;
    /// A hint that `pages_by_identifier` is about to be asked for these values, as a
    /// chunk of upload rows does: a server database may read them all in one round trip
    /// instead of one each. The answers are the same either way.
    fn prefetch_pages_by_identifier(&mut self, values: &[String]) -> StoreResult<()> {
        let _ = values;
        Ok(())
    }
    /// Pages in the store whose brand equals this one without regard to case and whose
    /// title normalises ([`crate::catalog::normalize_title`]) to `title_key`, in ASIN
    /// order. The store keeps each page's key with the page, so this is one index look-up
    /// however many pages the brand has.
    fn pages_by_brand_and_title(
        &mut self,
        store: &StoreCode,
        brand: &str,
        title_key: &str,
    ) -> StoreResult<Vec<DetailPage>>;
    /// Keyword search over title and brand in one store, best match first, with stemming
    /// suited to each page's language.
    fn search_pages(
        &mut self,
        store: &StoreCode,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<DetailPage>>;

    // --- store listings and pools ---
    /// The SKU with all its listings and pools, or an empty state. On a server database
    /// this locks the SKU until the transaction ends.
    fn load_sku(&mut self, seller: &SellerId, sku: &Sku) -> StoreResult<SkuState>;
    /// A hint that these SKUs are about to be loaded: a server database may read (and
    /// lock) them all in a few round trips instead of one each. `load_sku` answers the
    /// same either way.
    fn prefetch_skus(&mut self, keys: &[(SellerId, Sku)]) -> StoreResult<()> {
        let _ = keys;
        Ok(())
    }
    /// Makes the stored SKU equal to `state`: listings and pools not in it are removed.
    fn save_sku(&mut self, state: &SkuState) -> StoreResult<()>;
    fn new_pool_id(&mut self) -> StoreResult<PoolId>;
    /// The seller's SKUs that have at least one listing, in SKU order (byte order of the
    /// UTF-8 string), starting at `from` included, at most `limit`.
    fn skus_from(
        &mut self,
        seller: &SellerId,
        from: Option<&Sku>,
        limit: usize,
    ) -> StoreResult<Vec<SkuState>>;
    /// Every SKU (of any seller) with a listing on this ASIN in this store.
    fn skus_on_asin(&mut self, store: &StoreCode, asin: &Asin) -> StoreResult<Vec<SkuState>>;

    // --- ledger ---
    /// Stores the entry; `entry.seq` is ignored and assigned by the database.
    fn append_ledger(&mut self, entry: &LedgerEntry) -> StoreResult<()>;
    /// Up to `limit` of the SKU's entries with `seq` above `after`, including those of
    /// deleted pools: oldest first, or newest first when `newest_first`. The one read of
    /// the ledger each backend writes; the others are made of it.
    fn ledger_entries(
        &mut self,
        seller: &SellerId,
        sku: &Sku,
        after: i64,
        limit: usize,
        newest_first: bool,
    ) -> StoreResult<Vec<LedgerEntry>>;
    /// Up to `limit` of the SKU's entries with `seq` above `after`, oldest first: a ledger
    /// of any length is read a page at a time.
    fn ledger_page(
        &mut self,
        seller: &SellerId,
        sku: &Sku,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<LedgerEntry>> {
        self.ledger_entries(seller, sku, after, limit, false)
    }
    /// The SKU's newest `limit` entries, oldest first: what a page shows of a long ledger.
    fn ledger_newest(
        &mut self,
        seller: &SellerId,
        sku: &Sku,
        limit: usize,
    ) -> StoreResult<Vec<LedgerEntry>> {
        let mut newest_first = self.ledger_entries(seller, sku, 0, limit, true)?;
        newest_first.reverse();
        Ok(newest_first)
    }
    /// The SKU's whole ledger, oldest first (for callers that need all of it at once).
    fn ledger(&mut self, seller: &SellerId, sku: &Sku) -> StoreResult<Vec<LedgerEntry>> {
        const PAGE: usize = 10_000;
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &LedgerEntry| e.seq);
            let page = self.ledger_page(seller, sku, after, PAGE)?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    // --- events ---
    /// Numbers the event with the seller's next `seq` (1, 2, 3, ... without gaps) and
    /// stores it. Returns the seq.
    fn append_event(
        &mut self,
        seller: &SellerId,
        at: OffsetDateTime,
        body: &EventBody,
    ) -> StoreResult<i64>;
    fn events_after(
        &mut self,
        seller: &SellerId,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<Event>>;
    /// The seller's last event seq, 0 when none.
    fn last_event_seq(&mut self, seller: &SellerId) -> StoreResult<i64>;

    // --- orders ---
    fn order(&mut self, store: &StoreCode, order_id: &str) -> StoreResult<Option<OrderRecord>>;
    /// A hint that orders with these ids are about to be placed: a server database may
    /// look them all up in one round trip. The next `order()` of each id may then answer
    /// from that look-up, which can be stale (another process may commit the id
    /// meanwhile); a second `order()` of the same id reads afresh. The rules read afresh
    /// before refusing an order, and a stale "absent" that leads to an insert loses on
    /// the unique key and the transaction is retried.
    fn prefetch_orders(&mut self, keys: &[(StoreCode, String)]) -> StoreResult<()> {
        let _ = keys;
        Ok(())
    }
    /// Inserts the order, or updates it (`cancelled`) when it exists.
    fn save_order(&mut self, order: &OrderRecord) -> StoreResult<()>;

    // --- uploads ---
    fn insert_upload(&mut self, upload: &Upload) -> StoreResult<()>;
    /// Overwrites status, counts, checkpoint and error.
    fn update_upload(&mut self, upload: &Upload) -> StoreResult<()>;
    fn upload(&mut self, upload_id: &str) -> StoreResult<Option<Upload>>;
    /// The seller's uploads (of one store, or all), newest first, those older than
    /// `before` (an upload id) when given, at most `limit`.
    fn uploads_of_seller(
        &mut self,
        seller: &SellerId,
        store: Option<&StoreCode>,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Upload>>;
    /// Uploads `IN_QUEUE` or `IN_PROGRESS`, oldest first, of every seller.
    fn unfinished_uploads(&mut self) -> StoreResult<Vec<Upload>>;
    fn append_report(&mut self, upload_id: &str, lines: &[ReportLine]) -> StoreResult<()>;
    /// The report lines, by record number, in the order they were appended.
    fn report(&mut self, upload_id: &str) -> StoreResult<Vec<ReportLine>>;
    /// At most `limit` report lines in the order of [`Tx::report`], after the line whose
    /// cursor is `after` (from the start when `None`); each comes with its cursor. Lets a
    /// report of millions of lines be sent a page at a time.
    fn report_page(
        &mut self,
        upload_id: &str,
        after: Option<(i64, i64)>,
        limit: usize,
    ) -> StoreResult<Vec<((i64, i64), ReportLine)>> {
        Ok(self
            .report(upload_id)?
            .into_iter()
            .enumerate()
            .map(|(i, l)| ((l.record, i as i64), l))
            .filter(|(c, _)| after.is_none_or(|a| *c > a))
            .take(limit)
            .collect())
    }
}
