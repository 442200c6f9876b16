//! Views: what a listing looks like to its seller and to buyers: R8 (`share` in the view), R12 (buyable, reasons).

use super::*;

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
