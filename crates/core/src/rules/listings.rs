//! Store listings and pools: R1 (one account), R6–R9 (sharing), R10 (price), R11 (one quantity), R12–R15 (buyable, quantity zero, close, start later), R16 (delete), R21 (lost updates).

use super::*;

pub(super) fn check_price(store: &Store, price: &PriceInput) -> Result<(), DomainError> {
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

pub(super) fn shared_field_error(field: &str) -> DomainError {
    DomainError::new(
        ErrorCode::SharedFieldNotEditable,
        format!(
            "A listing that joins the SKU's shared pool takes its {field} from the pool; leave {field} out (change it on the pool through any of its listings with PATCH)."
        ),
    )
    .field(field)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn put_listing(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    seller: &SellerId,
    sku: &Sku,
    store_code: &StoreCode,
    input: &ListingInput,
    source: &Source,
    if_match: Option<i64>,
    new_page: Option<&DetailPage>,
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
    // A page planned by the same command (an upload row that creates its product) has
    // passed R2 and R17 already; it is written with the listing.
    let planned = new_page.filter(|p| p.asin == asin && p.store == store.code);
    if planned.is_none() {
        check!(page_in_store(tx, store, &asin)?);
    }
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
    if let Some(page) = planned {
        tx.insert_page(page)?;
    }
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

pub(super) fn cannot_share(message: &str) -> DomainError {
    DomainError::new(ErrorCode::FulfillmentCannotShare, message).field("share")
}

pub(super) fn listing_mut<'a>(
    state: &'a mut SkuState,
    store: &StoreCode,
) -> Option<&'a mut StoreListing> {
    state.listings.iter_mut().find(|l| &l.store == store)
}

pub(super) fn listing_not_found(sku: &Sku, store: &StoreCode) -> DomainError {
    DomainError::not_found(format!(
        "You have no listing of SKU {sku} in store {store}."
    ))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn patch_listing(
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
pub(super) fn apply_patch(
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

pub(super) fn set_closed(
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
pub(super) fn delete_sku(
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
pub(super) fn record_pool_removal(
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
    })?;
    // Every ledger entry has its `quantity_changed` event (docs/decisions.md), so an
    // event reader sees the quantity go to zero in every store the pool had.
    tx.append_event(
        &state.seller_id,
        ctx.now,
        &EventBody::QuantityChanged {
            sku: state.sku.clone(),
            pool_id: pool.pool_id,
            stores: state.pool_stores(pool.pool_id),
            quantity: 0,
            delta: -pool.quantity,
            reason: LedgerReason::Delete,
        },
    )?;
    Ok(())
}

/// Upload `d`: the listing in this store only; its pool goes with it when no other
/// listing stands on it.
pub(super) fn delete_in_store(
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
