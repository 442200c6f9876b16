//! A flash sale through the real HTTP API: many clients at once on one shared pool.
//! R18 (never below zero, all or nothing) and R19 (once only) under concurrency, on
//! SQLite and on PostgreSQL.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{cad, mxn, usd};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

const CLIENTS: usize = 64;
const ORDERS: usize = 400;
const UNITS: i64 = 120;
const STORES: [&str; 3] = ["US", "CA", "MX"];

/// Sends every order once, `CLIENTS` at a time; answers by order index.
async fn send_all(app: &common::TestApp, seller_id: &Value) -> Vec<(u16, Value)> {
    let gate = Arc::new(Semaphore::new(CLIENTS));
    let mut tasks = Vec::with_capacity(ORDERS);
    for i in 0..ORDERS {
        // Each task its own client (own connections), like separate storefront servers.
        let op = common::Client {
            http: reqwest::Client::new(),
            ..app.operator()
        };
        let gate = gate.clone();
        let seller_id = seller_id.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let store = STORES[i % 3];
            let r = op
                .post(
                    &format!("/v1/stores/{store}/orders"),
                    json!({
                        "order_id": format!("flash-{i}"),
                        "lines": [{"seller_id": seller_id, "sku": "FLASH", "quantity": 1}],
                    }),
                )
                .await;
            (r.status, r.body)
        }));
    }
    let mut out = Vec::with_capacity(ORDERS);
    for t in tasks {
        out.push(t.await.expect("order task"));
    }
    out
}

backend_tests! {

fn flash_sale_never_oversells_and_replays_change_nothing(app) {
    let s = app.new_seller("Flash").await;
    let asin = s.product_everywhere("036000291452").await;
    s.list("FLASH", "US", json!({"asin": asin, "price": usd("9.99"), "quantity": UNITS})).await.ok(201);
    s.list("FLASH", "CA", json!({"asin": asin, "price": cad("12.99"), "share": "existing"})).await.ok(201);
    s.list("FLASH", "MX", json!({"asin": asin, "price": mxn("199.00"), "share": "existing"})).await.ok(201);

    let first = send_all(&app, &s.seller_id).await;
    let mut by_status: HashMap<(u16, String), usize> = HashMap::new();
    for (status, body) in &first {
        let code = body["error"]["code"].as_str().unwrap_or("").to_string();
        *by_status.entry((*status, code)).or_default() += 1;
    }
    assert_eq!(by_status.get(&(201, String::new())).copied().unwrap_or(0), UNITS as usize, "{by_status:?}");
    assert_eq!(
        by_status.get(&(409, "INSUFFICIENT_STOCK".to_string())).copied().unwrap_or(0),
        ORDERS - UNITS as usize,
        "{by_status:?}"
    );
    // Every accepted order saw a distinct quantity_after: 0..UNITS-1 exactly once.
    let mut afters: Vec<i64> = first
        .iter()
        .filter(|(st, _)| *st == 201)
        .map(|(_, b)| b["lines"][0]["quantity_after"].as_i64().expect("quantity_after"))
        .collect();
    afters.sort();
    assert_eq!(afters, (0..UNITS).collect::<Vec<_>>());

    for store in STORES {
        let v = s.view("FLASH", store).await;
        assert_eq!(v["quantity"], json!(0), "{store}");
        assert_eq!(v["reasons"], json!(["OUT_OF_STOCK"]));
    }
    let ledger = s.ledger("FLASH").await;
    let orders: Vec<&Value> = ledger.iter().filter(|e| e["reason"] == "order").collect();
    assert_eq!(orders.len(), UNITS as usize);
    assert_eq!(orders.iter().map(|e| e["delta"].as_i64().unwrap()).sum::<i64>(), -UNITS);
    assert_eq!(ledger.iter().map(|e| e["delta"].as_i64().unwrap()).sum::<i64>(), 0);
    let mut refs: Vec<&str> = orders.iter().map(|e| e["reference"].as_str().unwrap()).collect();
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), UNITS as usize, "one ledger entry per accepted order");

    // Replay everything at once: same answers for the accepted, nothing changes.
    let again = send_all(&app, &s.seller_id).await;
    for (i, ((st1, b1), (st2, b2))) in first.iter().zip(again.iter()).enumerate() {
        if *st1 == 201 {
            assert_eq!(*st2, 200, "replay of accepted flash-{i}: {b2}");
            assert_eq!(b2, b1, "replay of flash-{i} answers the first body");
        } else {
            assert_eq!((*st2, b2["error"]["code"].as_str().unwrap_or("")), (409, "INSUFFICIENT_STOCK"), "refused flash-{i} judged afresh: {b2}");
        }
    }
    for store in STORES {
        assert_eq!(s.quantity("FLASH", store).await, 0);
    }
    let after = s.ledger("FLASH").await;
    assert_eq!(after, ledger, "the ledger did not change");
    let mut from = 0;
    let mut seqs = Vec::new();
    loop {
        let b = s.events(from).await;
        let evs = b["events"].as_array().unwrap();
        if evs.is_empty() {
            break;
        }
        seqs.extend(evs.iter().map(|e| e["seq"].as_u64().unwrap()));
        from = *seqs.last().unwrap();
    }
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "events without gaps");
    app.assert_healthy().await;
}

fn the_same_order_sent_at_once_is_taken_once(app) {
    let s = app.new_seller("Twice").await;
    let asin = s.product_everywhere("036000291452").await;
    s.list("DUP", "US", json!({"asin": asin, "price": usd("9.99"), "quantity": 10})).await.ok(201);
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let op = common::Client { http: reqwest::Client::new(), ..app.operator() };
        let seller_id = s.seller_id.clone();
        tasks.push(tokio::spawn(async move {
            let r = op
                .post("/v1/stores/US/orders", json!({"order_id": "same", "lines": [{"seller_id": seller_id, "sku": "DUP", "quantity": 3}]}))
                .await;
            (r.status, r.body)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let created: Vec<&(u16, Value)> = answers.iter().filter(|(st, _)| *st == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for (st, body) in &answers {
        assert!(*st == 201 || *st == 200, "{st} {body}");
        assert_eq!(body, &created[0].1, "every answer is the first answer");
    }
    assert_eq!(s.quantity("DUP", "US").await, 7);
    let orders = s.ledger("DUP").await.into_iter().filter(|e| e["reason"] == "order").count();
    assert_eq!(orders, 1);

    // Cancels at once return the units once.
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let op = common::Client { http: reqwest::Client::new(), ..app.operator() };
        tasks.push(tokio::spawn(async move {
            op.post("/v1/stores/US/orders/same/cancel", json!({})).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(s.quantity("DUP", "US").await, 10);
    let cancels = s.ledger("DUP").await.into_iter().filter(|e| e["reason"] == "cancel").count();
    assert_eq!(cancels, 1);
}

fn first_listings_at_once_make_one_shared_pool(app) {
    let s = app.new_seller("Racer").await;
    let asin = s.product_everywhere("036000291452").await;
    for n in 0..6 {
        let sku = format!("RACE-{n}");
        let mut tasks = Vec::new();
        for store in STORES {
            let s = s.clone();
            let sku = sku.clone();
            let asin = asin.clone();
            let p = common::price("10.00", common::currency(store));
            tasks.push(tokio::spawn(async move {
                s.list(&sku, store, json!({"asin": asin, "price": p})).await.status
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 201);
        }
        let l = s.listings(&sku).await;
        let ls = l["listings"].as_array().unwrap();
        assert_eq!(ls.len(), 3);
        for v in ls {
            assert_eq!(v["pool_id"], ls[0]["pool_id"], "one shared pool: {l}");
            assert_eq!(common::strs(&v["pool_stores"]), ["US", "CA", "MX"]);
            assert_eq!(v["share"], json!("existing"));
        }
    }
}

fn the_same_identifier_created_at_once_makes_one_product(app) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = app.new_seller(&format!("s{i}")).await;
        tasks.push(tokio::spawn(async move {
            let r = s.create_product("US", &format!("Racing Mug number {i}"), &format!("Brand{i}"), "en", &[("UPC", "012000161155")]).await;
            (r.status, r.body)
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (st, body) = t.await.unwrap();
        match st {
            201 => created += 1,
            409 => assert_eq!(body["error"]["code"], json!("POSSIBLE_MATCH")),
            other => panic!("{other} {body}"),
        }
    }
    assert_eq!(created, 1);
}

fn multi_line_orders_adjustments_and_cancels_at_once_stay_consistent(app) {
    let s = app.new_seller("Mixed").await;
    let asin = s.product_everywhere("036000291452").await;
    for sku in ["X", "Y"] {
        s.list(sku, "US", json!({"asin": asin, "price": usd("9.99"), "quantity": 40})).await.ok(201);
        s.list(sku, "CA", json!({"asin": asin, "price": cad("12.99"), "share": "existing"})).await.ok(201);
        s.list(sku, "MX", json!({"asin": asin, "price": mxn("199.00"), "share": "existing"})).await.ok(201);
    }
    let gate = Arc::new(Semaphore::new(CLIENTS));
    let mut tasks = Vec::new();
    let mut seed: u64 = 12345;
    for i in 0..240usize {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let (qx, qy) = ((seed >> 33) % 3 + 1, (seed >> 40) % 3 + 1);
        let op = app.operator();
        let seller = s.clone();
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let store = STORES[i % 3];
            match i % 8 {
                // A restock through some store.
                7 => {
                    let r = seller.change(if i % 16 == 7 { "X" } else { "Y" }, store, json!({"quantity_delta": 2})).await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    ("adjust", i, 200, Value::Null)
                }
                _ => {
                    let r = op
                        .post(
                            &format!("/v1/stores/{store}/orders"),
                            json!({"order_id": format!("m-{i}"), "lines": [
                                {"seller_id": seller.seller_id, "sku": "X", "quantity": qx},
                                {"seller_id": seller.seller_id, "sku": "Y", "quantity": qy},
                            ]}),
                        )
                        .await;
                    if r.status == 201 && i % 5 == 0 {
                        let c = op.post(&format!("/v1/stores/{store}/orders/m-{i}/cancel"), json!({})).await;
                        assert_eq!(c.status, 200, "{}", c.text);
                        return ("cancelled", i, r.status, r.body);
                    }
                    ("order", i, r.status, r.body)
                }
            }
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for (kind, i, st, body) in &results {
        if *kind != "adjust" {
            assert!(*st == 201 || (*st == 409 && body["error"]["code"] == "INSUFFICIENT_STOCK"), "m-{i}: {st} {body}");
        }
    }
    for sku in ["X", "Y"] {
        let q = s.quantity(sku, "US").await;
        assert!(q >= 0);
        for store in ["CA", "MX"] {
            assert_eq!(s.quantity(sku, store).await, q);
        }
        let ledger = s.ledger(sku).await;
        assert_eq!(ledger.iter().map(|e| e["delta"].as_i64().unwrap()).sum::<i64>(), q, "{sku}: deltas add up");
        // Walk the ledger: quantity_after follows the deltas and never goes below zero.
        let mut running = 0;
        for e in &ledger {
            running += e["delta"].as_i64().unwrap();
            assert_eq!(e["quantity_after"].as_i64().unwrap(), running, "{e}");
            assert!(running >= 0);
        }
    }
    // All or nothing: each accepted order has one order entry on X and one on Y.
    let refs = |ledger: &[Value], reason: &str| {
        let mut v: Vec<String> = ledger.iter().filter(|e| e["reason"] == reason).map(|e| e["reference"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    let (lx, ly) = (s.ledger("X").await, s.ledger("Y").await);
    assert_eq!(refs(&lx, "order"), refs(&ly, "order"));
    assert_eq!(refs(&lx, "cancel"), refs(&ly, "cancel"));
    let mut accepted: Vec<String> = results.iter().filter(|r| r.2 == 201).map(|r| format!("m-{}", r.1)).collect();
    accepted.sort();
    assert_eq!(refs(&lx, "order"), accepted);
    // The events have no gaps.
    let mut after = 0;
    let mut seqs = Vec::new();
    loop {
        let b = s.events(after).await;
        let evs = b["events"].as_array().unwrap();
        if evs.is_empty() {
            break;
        }
        for e in evs {
            seqs.push(e["seq"].as_u64().unwrap());
        }
        after = *seqs.last().unwrap();
    }
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

}
