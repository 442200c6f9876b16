//! Asking the rules beforehand: a command judged by the very rules that would apply it,
//! on a transaction whose writes go nowhere. The rules load, check every rule, then write
//! (the ladder of ARCHITECTURE.md), so a refusal comes before any write and an accepted
//! command's writes are simply dropped here. Used by the SP-API's `VALIDATION_PREVIEW`
//! and by the seller pages to say ahead whether "Existing offer" is possible and why not,
//! without a copy of any rule.

use crate::model::{
    DetailPage, Event, EventBody, LedgerEntry, OrderRecord, ReportLine, Seller, SkuState, Upload,
};
use crate::storage::{StoreResult, Tx};
use crate::types::{Asin, PoolId, SellerId, Sku, StoreCode};
use time::OffsetDateTime;

/// Reads from the inner transaction; writes are accepted and dropped.
pub struct DryRun<'a> {
    pub inner: &'a mut dyn Tx,
    next_pool: PoolId,
}

impl<'a> DryRun<'a> {
    pub fn new(inner: &'a mut dyn Tx) -> DryRun<'a> {
        // Pool ids a preview hands out never reach storage; counting down from the top
        // keeps them apart from every real one.
        DryRun {
            inner,
            next_pool: PoolId::MAX,
        }
    }
}

impl Tx for DryRun<'_> {
    fn insert_seller(&mut self, _: &Seller) -> StoreResult<()> {
        Ok(())
    }
    fn seller_by_token(&mut self, token_sha256: &str) -> StoreResult<Option<Seller>> {
        self.inner.seller_by_token(token_sha256)
    }
    fn sellers(&mut self, after: Option<&SellerId>, limit: usize) -> StoreResult<Vec<Seller>> {
        self.inner.sellers(after, limit)
    }
    fn setting(&mut self, key: &str) -> StoreResult<Option<String>> {
        self.inner.setting(key)
    }
    fn set_setting(&mut self, _: &str, _: &str) -> StoreResult<()> {
        Ok(())
    }
    fn insert_page(&mut self, _: &DetailPage) -> StoreResult<()> {
        Ok(())
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
    fn pages_by_brand_and_title(
        &mut self,
        store: &StoreCode,
        brand: &str,
        title_key: &str,
    ) -> StoreResult<Vec<DetailPage>> {
        self.inner.pages_by_brand_and_title(store, brand, title_key)
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
        Ok(())
    }
    fn new_pool_id(&mut self) -> StoreResult<PoolId> {
        self.next_pool -= 1;
        Ok(self.next_pool)
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
        Ok(())
    }
    fn ledger_entries(
        &mut self,
        seller: &SellerId,
        sku: &Sku,
        after: i64,
        limit: usize,
        newest_first: bool,
    ) -> StoreResult<Vec<LedgerEntry>> {
        self.inner
            .ledger_entries(seller, sku, after, limit, newest_first)
    }
    fn append_event(&mut self, _: &SellerId, _: OffsetDateTime, _: &EventBody) -> StoreResult<i64> {
        Ok(0)
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
        Ok(())
    }
    fn insert_upload(&mut self, _: &Upload) -> StoreResult<()> {
        Ok(())
    }
    fn update_upload(&mut self, _: &Upload) -> StoreResult<()> {
        Ok(())
    }
    fn upload(&mut self, upload_id: &str) -> StoreResult<Option<Upload>> {
        self.inner.upload(upload_id)
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
    fn unfinished_uploads(&mut self) -> StoreResult<Vec<Upload>> {
        self.inner.unfinished_uploads()
    }
    fn append_report(&mut self, _: &str, _: &[ReportLine]) -> StoreResult<()> {
        Ok(())
    }
    fn report(&mut self, upload_id: &str) -> StoreResult<Vec<ReportLine>> {
        self.inner.report(upload_id)
    }
}

/// Runs `cmd` through the rules on `tx` without changing anything: the rules' answer.
pub fn preview(
    tx: &mut dyn Tx,
    ctx: crate::rules::Ctx<'_>,
    cmd: &crate::rules::Command,
) -> StoreResult<Result<crate::rules::Outcome, crate::error::DomainError>> {
    crate::rules::execute(&mut DryRun::new(tx), ctx, cmd)
}
