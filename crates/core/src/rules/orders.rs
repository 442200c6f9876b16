//! Orders: R18 (all or nothing), R19 (once only), R20 (ledger entries of orders and cancels).

use super::*;

pub(super) fn merge_lines(lines: &[OrderLine]) -> Vec<OrderLine> {
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

pub(super) fn check_order_id(order_id: &str) -> Result<(), DomainError> {
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

pub(super) fn place_order(
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
pub(super) fn replay_of(
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
pub(super) fn check_order_lines(
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
pub(super) fn cancel_order(
    tx: &mut dyn Tx,
    ctx: Ctx<'_>,
    store_code: &StoreCode,
    order_id: &str,
) -> Decision {
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
