//! Asking the rules beforehand: a command run on a read-only transaction through a `Tx`
//! that refuses every write. The rules check everything before their first write (the
//! ladder of ARCHITECTURE.md), so a refusal comes back as the rule's own `DomainError`,
//! and a command that would be taken reaches its first write, which stops it here.
//!
//! The offer form uses this to say, before the seller sends it, whether "Existing
//! offer" is possible (R8, R9, R17) and why not, without a copy of those rules.

use onestock_core::error::DomainError;
use onestock_core::model::{
    DetailPage, Event, EventBody, LedgerEntry, OrderRecord, ReportLine, Seller, SkuState, Upload,
};
use onestock_core::rules::{self, Command, Ctx};
use onestock_core::storage::{StoreError, StoreResult, Tx};
use onestock_core::types::{Asin, PoolId, SellerId, Sku, StoreCode};
use time::OffsetDateTime;

/// The error a write answers inside a dry run.
const DRY_RUN_STOP: &str = "dry run: the rules took the command and tried to write";

/// What the rules would answer.
pub enum Verdict {
    /// Every check passed.
    Taken,
    Refused(DomainError),
}

/// Runs `cmd` without changing anything.
pub fn judge(tx: &mut dyn Tx, ctx: Ctx<'_>, cmd: &Command) -> StoreResult<Verdict> {
    let mut dry = DryRun { inner: tx };
    match rules::execute(&mut dry, ctx, cmd) {
        Ok(Ok(_)) => Ok(Verdict::Taken),
        Ok(Err(e)) => Ok(Verdict::Refused(e)),
        Err(StoreError::Other(m)) if m == DRY_RUN_STOP => Ok(Verdict::Taken),
        Err(e) => Err(e),
    }
}

struct DryRun<'a> {
    inner: &'a mut dyn Tx,
}

fn stop<T>() -> StoreResult<T> {
    Err(StoreError::Other(DRY_RUN_STOP.into()))
}

impl Tx for DryRun<'_> {
    fn insert_seller(&mut self, _: &Seller) -> StoreResult<()> {
        stop()
    }
    fn seller_by_token(&mut self, d: &str) -> StoreResult<Option<Seller>> {
        self.inner.seller_by_token(d)
    }
    fn setting(&mut self, key: &str) -> StoreResult<Option<String>> {
        self.inner.setting(key)
    }
    fn set_setting(&mut self, _: &str, _: &str) -> StoreResult<()> {
        stop()
    }
    fn insert_page(&mut self, _: &DetailPage) -> StoreResult<()> {
        stop()
    }
    fn page(&mut self, asin: &Asin, store: &StoreCode) -> StoreResult<Option<DetailPage>> {
        self.inner.page(asin, store)
    }
    fn pages_of_asin(&mut self, asin: &Asin) -> StoreResult<Vec<DetailPage>> {
        self.inner.pages_of_asin(asin)
    }
    fn pages_by_identifier(&mut self, value: &str) -> StoreResult<Vec<DetailPage>> {
        self.inner.pages_by_identifier(value)
    }
    fn pages_by_brand(&mut self, store: &StoreCode, brand: &str) -> StoreResult<Vec<DetailPage>> {
        self.inner.pages_by_brand(store, brand)
    }
    fn search_pages(
        &mut self,
        store: &StoreCode,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<DetailPage>> {
        self.inner.search_pages(store, query, limit)
    }
    fn load_sku(&mut self, seller: &SellerId, sku: &Sku) -> StoreResult<SkuState> {
        self.inner.load_sku(seller, sku)
    }
    fn save_sku(&mut self, _: &SkuState) -> StoreResult<()> {
        stop()
    }
    fn new_pool_id(&mut self) -> StoreResult<PoolId> {
        stop()
    }
    fn skus_from(
        &mut self,
        seller: &SellerId,
        from: Option<&Sku>,
        limit: usize,
    ) -> StoreResult<Vec<SkuState>> {
        self.inner.skus_from(seller, from, limit)
    }
    fn skus_on_asin(&mut self, store: &StoreCode, asin: &Asin) -> StoreResult<Vec<SkuState>> {
        self.inner.skus_on_asin(store, asin)
    }
    fn append_ledger(&mut self, _: &LedgerEntry) -> StoreResult<()> {
        stop()
    }
    fn ledger(&mut self, seller: &SellerId, sku: &Sku) -> StoreResult<Vec<LedgerEntry>> {
        self.inner.ledger(seller, sku)
    }
    fn append_event(&mut self, _: &SellerId, _: OffsetDateTime, _: &EventBody) -> StoreResult<i64> {
        stop()
    }
    fn events_after(
        &mut self,
        seller: &SellerId,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<Event>> {
        self.inner.events_after(seller, after, limit)
    }
    fn last_event_seq(&mut self, seller: &SellerId) -> StoreResult<i64> {
        self.inner.last_event_seq(seller)
    }
    fn order(&mut self, store: &StoreCode, order_id: &str) -> StoreResult<Option<OrderRecord>> {
        self.inner.order(store, order_id)
    }
    fn save_order(&mut self, _: &OrderRecord) -> StoreResult<()> {
        stop()
    }
    fn insert_upload(&mut self, _: &Upload) -> StoreResult<()> {
        stop()
    }
    fn update_upload(&mut self, _: &Upload) -> StoreResult<()> {
        stop()
    }
    fn upload(&mut self, upload_id: &str) -> StoreResult<Option<Upload>> {
        self.inner.upload(upload_id)
    }
    fn unfinished_uploads(&mut self) -> StoreResult<Vec<Upload>> {
        self.inner.unfinished_uploads()
    }
    fn uploads_of_seller(
        &mut self,
        seller: &SellerId,
        store: Option<&StoreCode>,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Upload>> {
        self.inner.uploads_of_seller(seller, store, before, limit)
    }
    fn report_page(
        &mut self,
        upload_id: &str,
        after: Option<(i64, i64)>,
        limit: usize,
    ) -> StoreResult<Vec<((i64, i64), ReportLine)>> {
        self.inner.report_page(upload_id, after, limit)
    }
    fn append_report(&mut self, _: &str, _: &[ReportLine]) -> StoreResult<()> {
        stop()
    }
    fn report(&mut self, upload_id: &str) -> StoreResult<Vec<ReportLine>> {
        self.inner.report(upload_id)
    }
}
