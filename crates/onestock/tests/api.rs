//! The rules of SPEC.md section 3 and the error codes of section 4.2, proved through the
//! real HTTP API, the same tests on SQLite and on PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Resp, TestApp, cad, mxn, price, strs, upc, usd};
use reqwest::Method;
use serde_json::{Value, json};

const UPC_A: &str = "036000291452";
const EAN_A: &str = "4006381333931";
const UPC_B: &str = "012000161155";
const EAN_B: &str = "5901234123457";
const ISBN_A: &str = "9780306406157";
const GTIN_A: &str = "00036000291452";
const UPC_BAD: &str = "036000291453";

/// A seller and a product with pages in US, CA and MX.
async fn seller_with_product(app: &TestApp) -> (Client, String) {
    let s = app.new_seller("Acme Goods").await;
    let asin = s.product_everywhere(UPC_A).await;
    (s, asin)
}

/// A SKU on one shared pool in US, CA and MX with `quantity`.
async fn shared_everywhere(s: &Client, sku: &str, asin: &str, quantity: i64) {
    s.list(
        sku,
        "US",
        json!({"asin": asin, "price": usd("19.99"), "quantity": quantity}),
    )
    .await
    .ok(201);
    s.list(
        sku,
        "CA",
        json!({"asin": asin, "price": cad("24.99"), "share": "existing"}),
    )
    .await
    .ok(201);
    s.list(
        sku,
        "MX",
        json!({"asin": asin, "price": mxn("349.00"), "share": "existing"}),
    )
    .await
    .ok(201);
}

fn is_generated_asin(a: &str) -> bool {
    a.len() == 10
        && a.starts_with("B0")
        && a[2..]
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

fn ledger_sum(entries: &[Value]) -> i64 {
    entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum()
}

fn reasons(v: &Value) -> Vec<String> {
    let mut r = strs(&v["reasons"]);
    r.sort();
    r
}

backend_tests! {

// ---------------------------------------------------------------- basics, auth

fn healthz_answers_without_auth(app) {
    let r = app.anonymous().get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn stores_lists_the_region(app) {
    let s = app.new_seller("s").await;
    for c in [&s, &app.operator()] {
        let r = c.get("/v1/stores").await;
        let b = r.ok(200);
        assert_eq!(
            b["stores"],
            json!([
                {"code": "US", "name": "United States", "currency": "USD", "languages": ["en"], "marketplace_id": "ATVPDKIKX0DER"},
                {"code": "CA", "name": "Canada", "currency": "CAD", "languages": ["en", "fr"], "marketplace_id": "A2EUQ1WTGCTBG2"},
                {"code": "MX", "name": "Mexico", "currency": "MXN", "languages": ["es"], "marketplace_id": "A1AM78C64UM0Y8"},
            ])
        );
    }
}

fn unauthenticated_without_or_with_unknown_token(app) {
    app.anonymous().get("/v1/stores").await.expect(401, "UNAUTHENTICATED");
    app.with_token("not-a-token").get("/v1/stores").await.expect(401, "UNAUTHENTICATED");
    app.anonymous().get("/v1/listings/X").await.expect(401, "UNAUTHENTICATED");
    app.anonymous()
        .post("/v1/sellers", json!({"name": "x"}))
        .await
        .expect(401, "UNAUTHENTICATED");
    // A malformed Authorization header is no token either.
    app.anonymous()
        .send(Method::GET, "/v1/stores", None, &[("authorization", "Basic abc")])
        .await
        .expect(401, "UNAUTHENTICATED");
}

fn forbidden_for_the_wrong_role(app) {
    let s = app.new_seller("s").await;
    let op = app.operator();
    s.post("/v1/sellers", json!({"name": "other"})).await.expect(403, "FORBIDDEN");
    op.get("/v1/listings/SKU1").await.expect(403, "FORBIDDEN");
    op.get("/v1/listings").await.expect(403, "FORBIDDEN");
    op.list("SKU1", "US", json!({"asin": "B000000001", "price": usd("1.00")}))
        .await
        .expect(403, "FORBIDDEN");
    op.get("/v1/events?after=0").await.expect(403, "FORBIDDEN");
    op.post("/v1/catalog/items", common::product_body("US", "HOME", "Mug", "Acme", "en", &[("UPC", UPC_A)]))
        .await
        .expect(403, "FORBIDDEN");
    s.post("/v1/stores/US/orders", json!({"order_id": "o1", "lines": [{"seller_id": s.seller_id, "sku": "A", "quantity": 1}]}))
        .await
        .expect(403, "FORBIDDEN");
    s.get("/v1/stores/US/items/B000000001/offers").await.expect(403, "FORBIDDEN");
}

fn sellers_get_distinct_ids_and_tokens(app) {
    let r1 = app.operator().post("/v1/sellers", json!({"name": "one"})).await;
    let r2 = app.operator().post("/v1/sellers", json!({"name": "two"})).await;
    let (b1, b2) = (r1.ok(201), r2.ok(201));
    assert_ne!(b1["seller_id"], b2["seller_id"]);
    assert_ne!(b1["token"], b2["token"]);
    assert!(b1["token"].as_str().is_some_and(|t| !t.is_empty()));
    app.operator().post("/v1/sellers", json!({})).await.expect(400, "INVALID_REQUEST");
}

// ---------------------------------------------------------------- R3 catalog

fn r3_create_product_makes_a_new_asin(app) {
    let s = app.new_seller("s").await;
    let r = s.create_product("US", "Steel Mug 350 ml", "Acme", "en", &[("UPC", UPC_A)]).await;
    let b = r.ok(201);
    assert_eq!(b["matched"], json!(false));
    assert_eq!(b["store"], json!("US"));
    let asin = b["asin"].as_str().unwrap().to_string();
    assert!(is_generated_asin(&asin), "ASIN shape: {asin}");

    let page = s.get(&format!("/v1/catalog/items/{asin}?store=US")).await;
    let p = page.ok(200);
    assert_eq!(p["asin"], json!(asin));
    assert_eq!(p["store"], json!("US"));
    assert_eq!(p["title"], json!("Steel Mug 350 ml"));
    assert_eq!(p["brand"], json!("Acme"));
    assert_eq!(p["language"], json!("en"));
    assert_eq!(p["product_type"], json!("HOME"));
    assert_eq!(p["identifiers"][0]["value"], json!(UPC_A));
    // The operator reads the catalog too ("any").
    app.operator().get(&format!("/v1/catalog/items/{asin}?store=US")).await.ok(200);
    // No page in MX, and an unknown ASIN: 404.
    s.get(&format!("/v1/catalog/items/{asin}?store=MX")).await.expect(404, "NOT_FOUND");
    s.get("/v1/catalog/items/B0ZZZZZZZZ?store=US").await.expect(404, "NOT_FOUND");
    // A second product gets another ASIN.
    let other = s.product("US", "Garden Hose 15 m", "Hoseco", "en", &[("EAN", EAN_A)]).await;
    assert_ne!(other, asin);
    assert!(is_generated_asin(&other));
}

fn r3_same_identifier_same_store_is_a_possible_match(app) {
    let s = app.new_seller("s").await;
    let asin = s.product("US", "Steel Mug 350 ml", "Acme", "en", &[("UPC", UPC_A)]).await;
    let r = s.create_product("US", "Completely Different Lamp", "Lumo", "en", &[("UPC", UPC_A)]).await;
    r.expect(409, "POSSIBLE_MATCH");
    let m = &r.body["error"]["matches"][0];
    assert_eq!(m["asin"], json!(asin));
    assert_eq!(m["store"], json!("US"));
    assert_eq!(m["title"], json!("Steel Mug 350 ml"));

    let mut forced = common::product_body("US", "HOME", "Completely Different Lamp", "Lumo", "en", &[("UPC", UPC_A)]);
    forced["force_new"] = json!(true);
    let r = s.post("/v1/catalog/items", forced).await;
    r.expect(409, "POSSIBLE_MATCH");
    assert_eq!(r.body["error"]["matches"][0]["asin"], json!(asin));
    // Another seller is refused the same way: the catalog is shared.
    let t = app.new_seller("t").await;
    t.create_product("US", "Mug", "Acme", "en", &[("UPC", UPC_A)]).await.expect(409, "POSSIBLE_MATCH");
}

fn r3_near_identical_title_is_a_possible_match_force_new_overrides(app) {
    let s = app.new_seller("s").await;
    let first = s.product("US", "Steel Mug 350 ml", "Acme", "en", &[("UPC", UPC_A)]).await;
    let r = s.create_product("US", "steel mug 350ml", "Acme", "en", &[("EAN", EAN_A)]).await;
    r.expect(409, "POSSIBLE_MATCH");
    assert_eq!(r.body["error"]["matches"][0]["asin"], json!(first));
    // Same title, other brand: not a match.
    s.product("US", "Steel Mug 350 ml", "Zenith", "en", &[("UPC", UPC_B)]).await;

    let mut forced = common::product_body("US", "HOME", "steel mug 350ml", "Acme", "en", &[("EAN", EAN_A)]);
    forced["force_new"] = json!(true);
    let r = s.post("/v1/catalog/items", forced).await;
    let b = r.ok(201);
    assert_eq!(b["matched"], json!(false));
    let second = b["asin"].as_str().unwrap();
    assert_ne!(second, first);
    assert!(is_generated_asin(second));
}

fn r3_same_identifier_in_another_store_reuses_the_asin(app) {
    let s = app.new_seller("s").await;
    let asin = s.product("US", "Steel Mug 350 ml", "Acme", "en", &[("UPC", UPC_A)]).await;
    let r = s.create_product("CA", "Steel Mug 350 ml (Canada)", "Acme", "en", &[("UPC", UPC_A)]).await;
    let b = r.ok(201);
    assert_eq!(b["asin"], json!(asin));
    assert_eq!(b["matched"], json!(true));
    assert_eq!(b["store"], json!("CA"));
    let page = s.get(&format!("/v1/catalog/items/{asin}?store=CA")).await;
    let p = page.ok(200);
    assert_eq!(p["store"], json!("CA"));
    assert_eq!(p["title"], json!("Steel Mug 350 ml (Canada)"));
    assert_eq!(p["asin"], json!(asin));
    // The US page is unchanged.
    let us = s.get(&format!("/v1/catalog/items/{asin}?store=US")).await;
    assert_eq!(us.ok(200)["title"], json!("Steel Mug 350 ml"));
    // Now the page exists in CA too: same identifier in CA is a possible match.
    s.create_product("CA", "Mug", "Acme", "en", &[("UPC", UPC_A)]).await.expect(409, "POSSIBLE_MATCH");
}

fn r3_search_by_keyword_and_identifier(app) {
    let s = app.new_seller("s").await;
    let bottles = s.product("US", "Insulated Water Bottles 750 ml", "Acme", "en", &[("UPC", UPC_A)]).await;
    let lamp = s.product("US", "Desk Lamp with Clamp", "Lumo", "en", &[("EAN", EAN_A)]).await;
    let r = s.get("/v1/catalog/search?store=US&q=bottle").await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    assert!(!items.is_empty(), "q=bottle finds the bottles: {}", r.text);
    assert_eq!(items[0]["asin"], json!(bottles));
    assert!(items.iter().all(|i| i["asin"] != json!(lamp)), "the lamp is no bottle: {}", r.text);
    assert_eq!(items[0]["title"], json!("Insulated Water Bottles 750 ml"));

    let r = s.get(&format!("/v1/catalog/search?store=US&identifier={EAN_A}")).await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{}", r.text);
    assert_eq!(items[0]["asin"], json!(lamp));
    // Pages of other stores are not found in this store.
    let r = s.get("/v1/catalog/search?store=MX&q=bottle").await;
    assert_eq!(r.ok(200)["items"], json!([]));
    // Operator may search too.
    app.operator().get("/v1/catalog/search?store=US&q=lamp").await.ok(200);
}

// ---------------------------------------------------------------- R4 identifiers

fn r4_identifiers_need_length_and_check_digit(app) {
    let s = app.new_seller("s").await;
    for (t, v) in [("UPC", UPC_BAD), ("UPC", "03600029145"), ("EAN", "400638133393"), ("EAN", "4006381333932"), ("ISBN", "9780306406158"), ("GTIN", "0003600029145"), ("UPC", "03600029145X")] {
        let r = s.create_product("US", &format!("Widget {v}"), "Acme", "en", &[(t, v)]).await;
        r.expect(400, "INVALID_IDENTIFIER");
    }
    // The valid ones of each kind are accepted.
    s.product("US", "Widget one", "Acme", "en", &[("UPC", UPC_A)]).await;
    s.product("US", "Widget two", "Acme", "en", &[("EAN", EAN_A)]).await;
    s.product("US", "Widget three", "Acme", "en", &[("ISBN", ISBN_A)]).await;
    s.product("US", "Widget four", "Acme", "en", &[("EAN", EAN_B)]).await;
    s.product("US", "Widget five", "Acme", "en", &[("UPC", UPC_B)]).await;
    s.product("MX", "Artilugio de prueba", "Acme", "es", &[("GTIN", GTIN_A)]).await;
    // Nothing was created by the refused ones.
    let r = s.get(&format!("/v1/catalog/search?store=US&identifier={UPC_BAD}")).await;
    if r.status == 200 {
        assert_eq!(r.body["items"], json!([]));
    }
}

// ---------------------------------------------------------------- R5 language

fn r5_language_must_be_one_of_the_store(app) {
    let s = app.new_seller("s").await;
    let r = s.create_product("MX", "Botella de agua de acero", "Acme", "fr", &[("UPC", UPC_A)]).await;
    r.expect(400, "LANGUAGE_NOT_SUPPORTED");
    s.create_product("MX", "Water bottle", "Acme", "en", &[("UPC", UPC_A)]).await.expect(400, "LANGUAGE_NOT_SUPPORTED");
    s.create_product("US", "Bottle", "Acme", "es", &[("UPC", UPC_A)]).await.expect(400, "LANGUAGE_NOT_SUPPORTED");
    let r = s.create_product("MX", "Botella de agua de acero inoxidable", "Acme", "es-MX", &[("UPC", UPC_A)]).await;
    assert_eq!(r.ok(201)["matched"], json!(false));
    s.product("MX", "Taza de cerámica grande", "Acme", "es_MX", &[("EAN", EAN_A)]).await;
    // French is a language of CA.
    s.product("CA", "Bouteille d'eau en acier inoxydable", "Acme", "fr", &[("UPC", UPC_B)]).await;
}

fn r5_clearly_other_language_is_a_mismatch(app) {
    let s = app.new_seller("s").await;
    let r = s
        .create_product("US", "Taza de cerámica para café con asa grande y diseño moderno", "Acme", "en", &[("UPC", UPC_A)])
        .await;
    r.expect(400, "LANGUAGE_MISMATCH");
    // A description in another language is refused too.
    let mut b = common::product_body("US", "HOME", "Coffee Mug", "Acme", "en", &[("UPC", UPC_A)]);
    b["description"] = json!("Esta taza de cerámica es perfecta para el café de la mañana y se puede lavar en el lavavajillas sin problemas.");
    s.post("/v1/catalog/items", b).await.expect(400, "LANGUAGE_MISMATCH");
    // Short or ambiguous text is accepted.
    s.product("US", "Taza", "Acme", "en", &[("UPC", UPC_A)]).await;
    s.product("US", "XL-200 Pro", "Acme", "en", &[("EAN", EAN_A)]).await;
}

// ---------------------------------------------------------------- R1, R2, R17

fn r1_a_sku_points_to_one_asin_in_the_region(app) {
    let s = app.new_seller("s").await;
    let a = s.product_everywhere(UPC_A).await;
    let b = s.product("CA", "Cast Iron Pan 28 cm", "Acme", "en", &[("EAN", EAN_A)]).await;
    s.list("SKU-1", "US", json!({"asin": a, "price": usd("10.00"), "quantity": 3})).await.ok(201);
    let r = s.list("SKU-1", "CA", json!({"asin": b, "price": cad("12.00"), "share": "unique", "quantity": 1})).await;
    r.expect(409, "SKU_ASIN_MISMATCH");
    let l = s.listings("SKU-1").await;
    assert_eq!(l["listings"].as_array().unwrap().len(), 1, "nothing listed in CA: {l}");
    // Another SKU on the other ASIN is fine.
    s.list("SKU-2", "CA", json!({"asin": b, "price": cad("12.00"), "quantity": 1})).await.ok(201);
}

fn r1_put_may_not_change_the_asin(app) {
    let s = app.new_seller("s").await;
    let a = s.product("US", "Cast Iron Pan 28 cm", "Acme", "en", &[("UPC", UPC_A)]).await;
    let b = s.product("US", "Wooden Spoon Set", "Acme", "en", &[("EAN", EAN_A)]).await;
    s.list("SKU-1", "US", json!({"asin": a, "price": usd("10.00"), "quantity": 3})).await.ok(201);
    s.list("SKU-1", "US", json!({"asin": b, "price": usd("10.00")})).await.expect(409, "SKU_ASIN_MISMATCH");
    assert_eq!(s.view("SKU-1", "US").await["asin"], json!(a));
    // The same ASIN again changes the price: 200.
    let r = s.list("SKU-1", "US", json!({"asin": a, "price": usd("11.00")})).await;
    assert_eq!(r.ok(200)["price"], usd("11.00"));
}

fn r2_listing_needs_a_page_in_the_store(app) {
    let s = app.new_seller("s").await;
    let asin = s.product("US", "Cast Iron Pan 28 cm", "Acme", "en", &[("UPC", UPC_A)]).await;
    s.list("SKU-1", "MX", json!({"asin": asin, "price": mxn("100.00"), "quantity": 1}))
        .await
        .expect(409, "ASIN_NOT_IN_STORE");
    s.list("SKU-2", "US", json!({"asin": "B0ZZZZZZZZ", "price": usd("1.00"), "quantity": 1}))
        .await
        .expect(409, "ASIN_NOT_IN_STORE");
    s.get("/v1/listings/SKU-1").await.expect(404, "NOT_FOUND");
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("10.00"), "quantity": 1})).await;
    r.ok(201);
    // Joining the pool in a store without a page is refused the same way.
    s.list("SKU-1", "MX", json!({"asin": asin, "price": mxn("100.00"), "share": "existing"}))
        .await
        .expect(409, "ASIN_NOT_IN_STORE");
}

fn r17_restricted_product_type_in_store(app: restricted_region) {
    let s = app.new_seller("s").await;
    let fw = common::product_body("US", "FIREWORKS", "Rocket Fountain Pack", "Boomco", "en", &[("UPC", UPC_A)]);
    let asin = s.post("/v1/catalog/items", fw).await.ok(201)["asin"].as_str().unwrap().to_string();
    // No detail page in CA.
    let fw_ca = common::product_body("CA", "FIREWORKS", "Rocket Fountain Pack", "Boomco", "en", &[("UPC", UPC_A)]);
    s.post("/v1/catalog/items", fw_ca).await.expect(409, "RESTRICTED_IN_STORE");
    let fw_ca_new = common::product_body("CA", "FIREWORKS", "Sparkler Box", "Boomco", "en", &[("EAN", EAN_A)]);
    s.post("/v1/catalog/items", fw_ca_new).await.expect(409, "RESTRICTED_IN_STORE");
    s.get(&format!("/v1/catalog/items/{asin}?store=CA")).await.expect(404, "NOT_FOUND");
    // Listed in US, may not be listed nor join the pool in CA.
    s.list("FW-1", "US", json!({"asin": asin, "price": usd("30.00"), "quantity": 5})).await.ok(201);
    s.list("FW-1", "CA", json!({"asin": asin, "price": cad("40.00"), "share": "existing"}))
        .await
        .expect(409, "RESTRICTED_IN_STORE");
    s.list("FW-1", "CA", json!({"asin": asin, "price": cad("40.00")}))
        .await
        .expect(409, "RESTRICTED_IN_STORE");
    s.list("FW-2", "CA", json!({"asin": asin, "price": cad("40.00"), "share": "unique", "quantity": 1}))
        .await
        .expect(409, "RESTRICTED_IN_STORE");
    // MX allows it.
    let mx = common::product_body("MX", "FIREWORKS", "Paquete de fuegos artificiales", "Boomco", "es", &[("UPC", UPC_A)]);
    let r = s.post("/v1/catalog/items", mx).await;
    assert_eq!(r.ok(201)["asin"], json!(asin));
    let v = s.list("FW-1", "MX", json!({"asin": asin, "price": mxn("300.00"), "share": "existing"})).await;
    assert_eq!(strs(&v.ok(201)["pool_stores"]), ["US", "MX"]);
}

// ---------------------------------------------------------------- R6, R7, R8, R9

fn r6_existing_offer_joins_the_shared_pool(app) {
    let (s, asin) = seller_with_product(&app).await;
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await;
    let us = r.ok(201).clone();
    assert_eq!(us["sku"], json!("SKU-1"));
    assert_eq!(us["store"], json!("US"));
    assert_eq!(us["asin"], json!(asin));
    assert_eq!(us["share"], json!("existing"));
    assert_eq!(strs(&us["pool_stores"]), ["US"]);
    assert_eq!(us["quantity"], json!(10));
    assert_eq!(us["condition"], json!("new"));
    assert_eq!(us["price"], usd("19.99"));
    assert_eq!(us["fulfillment"], json!("merchant"));
    assert_eq!(us["start_selling_at"], Value::Null);
    assert_eq!(us["closed"], json!(false));
    assert_eq!(us["status"], json!("active"));
    assert_eq!(us["reasons"], json!([]));
    assert!(us["pool_version"].is_u64(), "pool_version: {us}");
    assert_eq!(r.etag(), us["pool_version"].as_u64(), "ETag = pool_version");

    let r = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "existing"})).await;
    let ca = r.ok(201).clone();
    assert_eq!(ca["share"], json!("existing"));
    assert_eq!(strs(&ca["pool_stores"]), ["US", "CA"]);
    assert_eq!(ca["quantity"], json!(10));
    assert_eq!(ca["condition"], json!("new"));
    assert_eq!(ca["price"], cad("24.99"));
    assert_eq!(ca["pool_id"], us["pool_id"]);

    let all = s.listings("SKU-1").await;
    assert_eq!(all["sku"], json!("SKU-1"));
    let ls = all["listings"].as_array().unwrap();
    assert_eq!(ls.iter().map(|l| l["store"].as_str().unwrap()).collect::<Vec<_>>(), ["US", "CA"]);
    for l in ls {
        assert_eq!(strs(&l["pool_stores"]), ["US", "CA"]);
        assert_eq!(l["share"], json!("existing"));
        assert_eq!(l["quantity"], json!(10));
    }
    assert_eq!(ls[0]["price"], usd("19.99"));
    assert_eq!(ls[1]["price"], cad("24.99"));
}

fn r6_shared_fields_may_not_be_given_when_joining(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201);
    let r = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "existing", "quantity": 5})).await;
    r.expect(400, "SHARED_FIELD_NOT_EDITABLE");
    assert_eq!(r.body["error"]["field"], json!("quantity"));
    let r = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "existing", "condition": "used_good"})).await;
    r.expect(400, "SHARED_FIELD_NOT_EDITABLE");
    assert_eq!(r.body["error"]["field"], json!("condition"));
    // Share left out joins the pool too, so the same holds (R7, listing body).
    s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "quantity": 5}))
        .await
        .expect(400, "SHARED_FIELD_NOT_EDITABLE");
    // Nothing changed.
    let l = s.listings("SKU-1").await;
    assert_eq!(l["listings"].as_array().unwrap().len(), 1);
    assert_eq!(s.quantity("SKU-1", "US").await, 10);
}

fn r7_share_left_out_joins_the_shared_pool(app) {
    let (s, asin) = seller_with_product(&app).await;
    let us = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10, "condition": "used_like_new"})).await;
    let us = us.ok(201).clone();
    let r = s.list("SKU-1", "MX", json!({"asin": asin, "price": mxn("300.00")})).await;
    let mx = r.ok(201);
    assert_eq!(mx["share"], json!("existing"));
    assert_eq!(mx["pool_id"], us["pool_id"]);
    assert_eq!(strs(&mx["pool_stores"]), ["US", "MX"]);
    assert_eq!(mx["quantity"], json!(10));
    assert_eq!(mx["condition"], json!("used_like_new"));
}

fn r7_unique_offer_has_its_own_pool(app) {
    let (s, asin) = seller_with_product(&app).await;
    let us = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201).clone();
    let r = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "unique", "quantity": 3, "condition": "used_good"})).await;
    let ca = r.ok(201).clone();
    assert_eq!(ca["share"], json!("unique"));
    assert_ne!(ca["pool_id"], us["pool_id"]);
    assert_eq!(strs(&ca["pool_stores"]), ["CA"]);
    assert_eq!(ca["quantity"], json!(3));
    assert_eq!(ca["condition"], json!("used_good"));
    // Unique offer without quantity: 0 and new by default.
    // The US pool did not change.
    let v = s.view("SKU-1", "US").await;
    assert_eq!(v["quantity"], json!(10));
    assert_eq!(strs(&v["pool_stores"]), ["US"]);
    // MX joining joins the shared pool, never the unique one.
    let mx = s.list("SKU-1", "MX", json!({"asin": asin, "price": mxn("300.00"), "share": "existing"})).await.ok(201).clone();
    assert_eq!(mx["pool_id"], us["pool_id"]);
    assert_eq!(strs(&mx["pool_stores"]), ["US", "MX"]);
    // A sale in CA touches only CA's pool.
    app.order("CA", "o-ca", &[(&s, "SKU-1", 1)]).await.ok(201);
    assert_eq!(s.quantity("SKU-1", "CA").await, 2);
    assert_eq!(s.quantity("SKU-1", "US").await, 10);
    assert_eq!(s.quantity("SKU-1", "MX").await, 10);
}

fn r7_unique_first_then_share_left_out_starts_the_shared_pool(app) {
    let (s, asin) = seller_with_product(&app).await;
    let us = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "share": "unique"})).await.ok(201).clone();
    assert_eq!(us["share"], json!("unique"));
    assert_eq!(us["quantity"], json!(0));
    assert_eq!(us["condition"], json!("new"));
    let ca = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "quantity": 4})).await.ok(201).clone();
    assert_eq!(ca["share"], json!("existing"));
    assert_ne!(ca["pool_id"], us["pool_id"]);
    assert_eq!(strs(&ca["pool_stores"]), ["CA"]);
    assert_eq!(ca["quantity"], json!(4));
    let mx = s.list("SKU-1", "MX", json!({"asin": asin, "price": mxn("99.00"), "share": "existing"})).await.ok(201).clone();
    assert_eq!(mx["pool_id"], ca["pool_id"]);
    assert_eq!(strs(&mx["pool_stores"]), ["CA", "MX"]);
}

fn r8_sharing_not_available_without_a_shared_pool(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "share": "existing"}))
        .await
        .expect(409, "SHARING_NOT_AVAILABLE");
    s.get("/v1/listings/SKU-1").await.expect(404, "NOT_FOUND");
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "share": "unique", "quantity": 2})).await.ok(201);
    s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("19.99"), "share": "existing"}))
        .await
        .expect(409, "SHARING_NOT_AVAILABLE");
}

fn r8_sharing_mode_is_immutable(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201);
    s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "unique", "quantity": 2})).await.ok(201);
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "share": "unique"}))
        .await
        .expect(409, "SHARING_MODE_IMMUTABLE");
    s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "existing"}))
        .await
        .expect(409, "SHARING_MODE_IMMUTABLE");
    // Unchanged.
    assert_eq!(s.view("SKU-1", "US").await["share"], json!("existing"));
    assert_eq!(s.view("SKU-1", "CA").await["share"], json!("unique"));
    // Giving the same mode is fine: 200.
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("18.99"), "share": "existing"})).await;
    assert_eq!(r.ok(200)["price"], usd("18.99"));
    let r = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("23.99"), "share": "unique", "quantity": 5})).await;
    assert_eq!(r.ok(200)["quantity"], json!(5));
}

fn r9_marketplace_fulfilment_never_shares(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "fulfillment": "marketplace", "share": "existing"}))
        .await
        .expect(409, "FULFILLMENT_CANNOT_SHARE");
    let us = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "fulfillment": "marketplace", "quantity": 5})).await;
    let us = us.ok(201).clone();
    assert_eq!(us["fulfillment"], json!("marketplace"));
    assert_eq!(us["share"], json!("unique"));
    assert_eq!(strs(&us["pool_stores"]), ["US"]);
    // The only listing elsewhere is marketplace-fulfilled.
    s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "existing"}))
        .await
        .expect(409, "FULFILLMENT_CANNOT_SHARE");
    // Share left out: a merchant listing starts the shared pool instead.
    let ca = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "quantity": 2})).await.ok(201).clone();
    assert_eq!(ca["share"], json!("existing"));
    assert_ne!(ca["pool_id"], us["pool_id"]);
    assert_eq!(strs(&ca["pool_stores"]), ["CA"]);
    // Marketplace fulfilment asking to join an existing merchant pool: refused.
    s.list("SKU-1", "MX", json!({"asin": asin, "price": mxn("300.00"), "fulfillment": "marketplace", "share": "existing"}))
        .await
        .expect(409, "FULFILLMENT_CANNOT_SHARE");
    // Marketplace with share left out gets a pool of its own.
    let mx = s.list("SKU-1", "MX", json!({"asin": asin, "price": mxn("300.00"), "fulfillment": "marketplace", "quantity": 7})).await.ok(201).clone();
    assert_eq!(strs(&mx["pool_stores"]), ["MX"]);
    assert_eq!(mx["quantity"], json!(7));
    assert_eq!(s.quantity("SKU-1", "CA").await, 2);
}

// ---------------------------------------------------------------- R10 prices

fn r10_price_in_the_store_currency(app) {
    let (s, asin) = seller_with_product(&app).await;
    let r = s.list("SKU-1", "US", json!({"asin": asin, "quantity": 1})).await;
    r.expect(400, "PRICE_REQUIRED");
    s.list("SKU-1", "CA", json!({"asin": asin, "price": usd("10.00"), "quantity": 1}))
        .await
        .expect(400, "CURRENCY_MISMATCH");
    s.list("SKU-1", "MX", json!({"asin": asin, "price": cad("10.00"), "quantity": 1}))
        .await
        .expect(400, "CURRENCY_MISMATCH");
    for bad in [json!("abc"), json!("1.999"), json!(19.99), json!("0"), json!("-1.00"), json!(""), json!("0.00")] {
        let r = s.list("SKU-1", "US", json!({"asin": asin, "price": {"amount": bad, "currency": "USD"}, "quantity": 1})).await;
        r.expect(400, "INVALID_PRICE");
    }
    s.get("/v1/listings/SKU-1").await.expect(404, "NOT_FOUND");
    // Good prices: kept as strings, two decimals at most.
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("0.01"), "quantity": 1})).await;
    assert_eq!(r.ok(201)["price"]["currency"], json!("USD"));
    assert!(r.body["price"]["amount"].is_string(), "price amount is a string: {}", r.text);
    // PATCH checks prices the same way.
    s.change("SKU-1", "US", json!({"price": usd("1.999")})).await.expect(400, "INVALID_PRICE");
    s.change("SKU-1", "US", json!({"price": cad("2.00")})).await.expect(400, "CURRENCY_MISMATCH");
    let r = s.change("SKU-1", "US", json!({"price": usd("12.50")})).await;
    assert_eq!(r.ok(200)["listing"]["price"], usd("12.50"));
}

// ---------------------------------------------------------------- R11 one quantity

fn r11_a_sale_anywhere_lowers_the_pool_everywhere(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let r = app.order("MX", "o-1", &[(&s, "SKU-1", 3)]).await;
    let b = r.ok(201).clone();
    assert_eq!(b["order_id"], json!("o-1"));
    assert_eq!(b["status"], json!("accepted"));
    let line = &b["lines"][0];
    assert_eq!(line["sku"], json!("SKU-1"));
    assert_eq!(line["seller_id"], s.seller_id);
    assert_eq!(line["quantity"], json!(3));
    assert_eq!(line["quantity_after"], json!(7));
    assert_eq!(strs(&line["stores"]), ["US", "CA", "MX"]);
    assert_eq!(line["pool_id"], s.view("SKU-1", "US").await["pool_id"]);
    for store in ["US", "CA", "MX"] {
        assert_eq!(s.quantity("SKU-1", store).await, 7, "{store} sees the sale at once");
    }
}

fn r11_a_change_through_one_store_changes_the_pool(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let before = s.view("SKU-1", "US").await["pool_version"].as_u64().unwrap();
    let r = s.change("SKU-1", "CA", json!({"quantity": 4})).await;
    let b = r.ok(200).clone();
    assert_eq!(b["listing"]["store"], json!("CA"));
    assert_eq!(b["listing"]["quantity"], json!(4));
    assert_eq!(strs(&b["affected_stores"]), ["US", "CA", "MX"]);
    let v1 = b["listing"]["pool_version"].as_u64().unwrap();
    assert!(v1 > before, "pool_version grows: {before} -> {v1}");
    assert_eq!(r.etag(), Some(v1), "ETag = pool_version");
    for store in ["US", "CA", "MX"] {
        let v = s.view("SKU-1", store).await;
        assert_eq!(v["quantity"], json!(4));
        assert_eq!(v["pool_version"], json!(v1));
    }
    let r = s.change("SKU-1", "MX", json!({"condition": "used_very_good"})).await;
    let b = r.ok(200).clone();
    assert_eq!(strs(&b["affected_stores"]), ["US", "CA", "MX"]);
    let v2 = b["listing"]["pool_version"].as_u64().unwrap();
    assert!(v2 > v1);
    assert_eq!(r.etag(), Some(v2));
    for store in ["US", "CA", "MX"] {
        assert_eq!(s.view("SKU-1", store).await["condition"], json!("used_very_good"));
    }
    // A price is per store: affects that store only.
    let r = s.change("SKU-1", "US", json!({"price": usd("15.00")})).await;
    assert_eq!(strs(&r.ok(200)["affected_stores"]), ["US"]);
    assert_eq!(s.view("SKU-1", "CA").await["price"], cad("24.99"));
    // quantity_delta through US.
    let r = s.change("SKU-1", "US", json!({"quantity_delta": 6})).await;
    assert_eq!(r.ok(200)["listing"]["quantity"], json!(10));
    assert_eq!(s.quantity("SKU-1", "MX").await, 10);
    // The GET of the SKU carries the ETag of... at least every view has the same version.
    let l = s.listings("SKU-1").await;
    let versions: Vec<_> = l["listings"].as_array().unwrap().iter().map(|v| v["pool_version"].clone()).collect();
    assert!(versions.iter().all(|v| *v == versions[0]));
}

// ---------------------------------------------------------------- R12-R15 status

fn r12_r13_quantity_zero_is_out_of_stock_everywhere(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 0).await;
    for store in ["US", "CA", "MX"] {
        let v = s.view("SKU-1", store).await;
        assert_eq!(v["status"], json!("inactive"));
        assert_eq!(v["reasons"], json!(["OUT_OF_STOCK"]));
    }
    s.change("SKU-1", "MX", json!({"quantity": 5})).await.ok(200);
    for store in ["US", "CA", "MX"] {
        let v = s.view("SKU-1", store).await;
        assert_eq!(v["status"], json!("active"), "{v}");
        assert_eq!(v["reasons"], json!([]));
    }
    // R13: quantity 0 through one store takes the listing off every store of the pool.
    let r = s.change("SKU-1", "US", json!({"quantity": 0})).await;
    let b = r.ok(200);
    assert_eq!(b["listing"]["status"], json!("inactive"));
    assert_eq!(strs(&b["affected_stores"]), ["US", "CA", "MX"]);
    for store in ["US", "CA", "MX"] {
        let v = s.view("SKU-1", store).await;
        assert_eq!(v["status"], json!("inactive"));
        assert_eq!(v["reasons"], json!(["OUT_OF_STOCK"]));
    }
    app.order("CA", "o-1", &[(&s, "SKU-1", 1)]).await.expect(409, "INSUFFICIENT_STOCK");
}

fn r14_close_takes_one_store_off_relist_opens_it(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let r = s.close("SKU-1", "CA").await;
    let v = r.ok(200);
    assert_eq!(v["store"], json!("CA"));
    assert_eq!(v["closed"], json!(true));
    assert_eq!(v["status"], json!("inactive"));
    assert_eq!(v["reasons"], json!(["CLOSED"]));
    assert_eq!(v["quantity"], json!(10));
    for store in ["US", "MX"] {
        let v = s.view("SKU-1", store).await;
        assert_eq!(v["closed"], json!(false));
        assert_eq!(v["status"], json!("active"));
        assert_eq!(v["quantity"], json!(10));
    }
    app.order("CA", "o-ca", &[(&s, "SKU-1", 1)]).await.expect(409, "LISTING_NOT_BUYABLE");
    let r = app.order("US", "o-us", &[(&s, "SKU-1", 1)]).await;
    assert_eq!(r.ok(201)["lines"][0]["quantity_after"], json!(9));
    // The closed listing still shows the pool's figures.
    assert_eq!(s.quantity("SKU-1", "CA").await, 9);
    // Closed and out of stock: both reasons.
    s.change("SKU-1", "US", json!({"quantity": 0})).await.ok(200);
    let v = s.view("SKU-1", "CA").await;
    assert_eq!(reasons(&v), ["CLOSED", "OUT_OF_STOCK"]);
    s.change("SKU-1", "US", json!({"quantity": 9})).await.ok(200);
    let r = s.relist("SKU-1", "CA").await;
    let v = r.ok(200);
    assert_eq!(v["closed"], json!(false));
    assert_eq!(v["status"], json!("active"));
    assert_eq!(v["reasons"], json!([]));
    app.order("CA", "o-ca", &[(&s, "SKU-1", 1)]).await.ok(201);
    // Close / relist of what does not exist.
    s.close("NOPE", "US").await.expect(404, "NOT_FOUND");
    s.relist("NOPE", "US").await.expect(404, "NOT_FOUND");
}

fn r15_start_selling_later_keeps_one_store_off_sale(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201);
    let later = "2025-06-03T00:00:00Z";
    let r = s.list("SKU-1", "MX", json!({"asin": asin, "price": mxn("300.00"), "start_selling_at": later})).await;
    let v = r.ok(201);
    assert_eq!(v["status"], json!("inactive"));
    assert_eq!(v["reasons"], json!(["NOT_YET_STARTED"]));
    let at = v["start_selling_at"].as_str().unwrap();
    assert!(at.starts_with("2025-06-03T00:00:00"), "start_selling_at: {at}");
    assert_eq!(s.view("SKU-1", "US").await["status"], json!("active"));
    app.order("MX", "o-mx", &[(&s, "SKU-1", 1)]).await.expect(409, "LISTING_NOT_BUYABLE");
    assert_eq!(s.quantity("SKU-1", "US").await, 10);

    // Time passes: on sale without anyone touching it.
    app.clock.advance(time::Duration::days(2));
    let v = s.view("SKU-1", "MX").await;
    assert_eq!(v["status"], json!("active"), "{v}");
    assert_eq!(v["reasons"], json!([]));
    app.order("MX", "o-mx", &[(&s, "SKU-1", 1)]).await.ok(201);

    // A future time set by PATCH, then removed with null.
    let r = s.change("SKU-1", "US", json!({"start_selling_at": "2026-01-01T00:00:00Z"})).await;
    assert_eq!(r.ok(200)["listing"]["reasons"], json!(["NOT_YET_STARTED"]));
    assert_eq!(strs(&r.body["affected_stores"]), ["US"]);
    assert_eq!(s.view("SKU-1", "MX").await["status"], json!("active"));
    let r = s.change("SKU-1", "US", json!({"start_selling_at": null})).await;
    let v = r.ok(200)["listing"].clone();
    assert_eq!(v["start_selling_at"], Value::Null);
    assert_eq!(v["status"], json!("active"));
    // A bad time is a bad request.
    s.change("SKU-1", "US", json!({"start_selling_at": "tomorrow"})).await.expect(400, "INVALID_REQUEST");
}

// ---------------------------------------------------------------- R16 delete

fn r16_delete_removes_every_store_and_keeps_the_ledger(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let old_pool = s.view("SKU-1", "US").await["pool_id"].clone();
    app.order("US", "o-1", &[(&s, "SKU-1", 2)]).await.ok(201);
    let r = s.delete("/v1/listings/SKU-1").await;
    let b = r.ok(200);
    assert_eq!(b["sku"], json!("SKU-1"));
    let mut deleted = strs(&b["deleted_stores"]);
    deleted.sort();
    assert_eq!(deleted, ["CA", "MX", "US"]);
    s.get("/v1/listings/SKU-1").await.expect(404, "NOT_FOUND");
    s.change("SKU-1", "US", json!({"quantity": 1})).await.expect(404, "NOT_FOUND");
    s.delete("/v1/listings/SKU-1").await.expect(404, "NOT_FOUND");
    app.order("CA", "o-2", &[(&s, "SKU-1", 1)]).await.expect(409, "LISTING_NOT_BUYABLE");

    let ledger = s.ledger("SKU-1").await;
    let del: Vec<_> = ledger.iter().filter(|e| e["reason"] == "delete").collect();
    assert_eq!(del.len(), 1, "{ledger:?}");
    assert_eq!(del[0]["delta"], json!(-8));
    assert_eq!(del[0]["quantity_after"], json!(0));
    assert_eq!(del[0]["pool_id"], old_pool);
    assert_eq!(ledger_sum(&ledger), 0);

    // Listed again, afresh: a new pool.
    let r = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("20.00"), "quantity": 2})).await;
    let v = r.ok(201);
    assert_ne!(v["pool_id"], old_pool);
    assert_eq!(strs(&v["pool_stores"]), ["CA"]);
    assert_eq!(v["quantity"], json!(2));
    assert_eq!(v["share"], json!("existing"));
    let l = s.listings("SKU-1").await;
    assert_eq!(l["listings"].as_array().unwrap().len(), 1);
    // The old history is still there, and the new one adds up.
    let ledger = s.ledger("SKU-1").await;
    assert!(ledger.iter().any(|e| e["reason"] == "delete"));
    assert_eq!(ledger_sum(&ledger), 2);
    // The old order's id in its store is still remembered (R19): a replay answers 200.
    app.order("US", "o-1", &[(&s, "SKU-1", 2)]).await.ok(200);
}

// ---------------------------------------------------------------- R18 orders

fn r18_an_order_takes_all_lines_or_none(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("A", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5})).await.ok(201);
    s.list("B", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 1})).await.ok(201);
    let r = app.order("US", "o-1", &[(&s, "A", 2), (&s, "B", 2)]).await;
    r.expect(409, "INSUFFICIENT_STOCK");
    assert_eq!(s.quantity("A", "US").await, 5);
    assert_eq!(s.quantity("B", "US").await, 1);
    assert!(s.ledger("A").await.iter().all(|e| e["reason"] != "order"));
    let r = app.order("US", "o-2", &[(&s, "A", 2), (&s, "B", 1)]).await;
    let b = r.ok(201);
    assert_eq!(b["lines"].as_array().unwrap().len(), 2);
    assert_eq!(b["lines"][0]["sku"], json!("A"));
    assert_eq!(b["lines"][0]["quantity_after"], json!(3));
    assert_eq!(b["lines"][1]["sku"], json!("B"));
    assert_eq!(b["lines"][1]["quantity_after"], json!(0));
    // Zero stock: insufficient, not "not buyable".
    app.order("US", "o-3", &[(&s, "B", 1)]).await.expect(409, "INSUFFICIENT_STOCK");
}

fn r18_lines_on_unbuyable_listings_fail_the_order(app) {
    let (s, asin) = seller_with_product(&app).await;
    let t = app.new_seller("t").await;
    s.list("OK", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5})).await.ok(201);
    s.list("CLOSED", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5})).await.ok(201);
    s.close("CLOSED", "US").await.ok(200);
    s.list("LATER", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5, "start_selling_at": "2030-01-01T00:00:00Z"})).await.ok(201);
    s.list("GONE", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5})).await.ok(201);
    s.delete("/v1/listings/GONE").await.ok(200);
    s.list("CA-ONLY", "CA", json!({"asin": asin, "price": cad("5.00"), "quantity": 5})).await.ok(201);
    for (i, sku) in ["CLOSED", "LATER", "GONE", "NEVER", "CA-ONLY"].iter().enumerate() {
        let r = app.order("US", &format!("o-{i}"), &[(&s, "OK", 1), (&s, sku, 1)]).await;
        r.expect(409, "LISTING_NOT_BUYABLE");
    }
    // Another seller's SKU of the same name does not exist for this seller.
    app.order("US", "o-t", &[(&t, "OK", 1)]).await.expect(409, "LISTING_NOT_BUYABLE");
    // An unknown seller id.
    let r = app.operator().post("/v1/stores/US/orders", json!({"order_id": "o-x", "lines": [{"seller_id": "no-such-seller", "sku": "OK", "quantity": 1}]})).await;
    assert!(r.status == 409 && r.code() == "LISTING_NOT_BUYABLE" || r.status == 400, "unknown seller: {} {}", r.status, r.text);
    assert_eq!(s.quantity("OK", "US").await, 5, "nothing taken");
    assert_eq!(s.quantity("CLOSED", "US").await, 5);
}

fn r18_lines_of_the_same_sku_are_added_up(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("A", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 3})).await.ok(201);
    app.order("US", "o-1", &[(&s, "A", 2), (&s, "A", 2)]).await.expect(409, "INSUFFICIENT_STOCK");
    assert_eq!(s.quantity("A", "US").await, 3);
    app.order("US", "o-2", &[(&s, "A", 1), (&s, "A", 2)]).await.ok(201);
    assert_eq!(s.quantity("A", "US").await, 0);
    // Cancel returns the sum.
    app.cancel("US", "o-2").await.ok(200);
    assert_eq!(s.quantity("A", "US").await, 3);
}

fn r18_order_line_quantity_must_be_positive(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("A", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 3})).await.ok(201);
    for q in [0, -1] {
        let r = app.order("US", &format!("o{q}"), &[(&s, "A", q)]).await;
        assert_eq!(r.status, 400, "line quantity {q}: {}", r.text);
        assert!(["INVALID_QUANTITY", "INVALID_REQUEST"].contains(&r.code()), "{}", r.text);
    }
    assert_eq!(s.quantity("A", "US").await, 3);
}

// ---------------------------------------------------------------- R19 once only

fn r19_replay_returns_the_first_answer(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let first = app.order("CA", "o-1", &[(&s, "SKU-1", 2)]).await;
    first.ok(201);
    let again = app.order("CA", "o-1", &[(&s, "SKU-1", 2)]).await;
    assert_eq!(again.ok(200), &first.body, "a replay answers the same body");
    assert_eq!(s.quantity("SKU-1", "US").await, 8, "changed once");
    let r = app.order("CA", "o-1", &[(&s, "SKU-1", 3)]).await;
    r.expect(409, "ORDER_ID_REUSED");
    assert_eq!(s.quantity("SKU-1", "US").await, 8);
    // An order id is per store: the same id in MX is another order.
    let r = app.order("MX", "o-1", &[(&s, "SKU-1", 1)]).await;
    assert_eq!(r.ok(201)["lines"][0]["quantity_after"], json!(7));
    let orders = s.ledger("SKU-1").await.into_iter().filter(|e| e["reason"] == "order").count();
    assert_eq!(orders, 2);
}

fn r19_a_refused_order_is_not_recorded(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("A", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 3})).await.ok(201);
    app.order("US", "o-1", &[(&s, "A", 5)]).await.expect(409, "INSUFFICIENT_STOCK");
    s.change("A", "US", json!({"quantity": 10})).await.ok(200);
    let r = app.order("US", "o-1", &[(&s, "A", 5)]).await;
    assert_eq!(r.ok(201)["lines"][0]["quantity_after"], json!(5));
    // And with other lines than the refused attempt: judged afresh, no ORDER_ID_REUSED.
    s.close("A", "US").await.ok(200);
    app.order("US", "o-2", &[(&s, "A", 1)]).await.expect(409, "LISTING_NOT_BUYABLE");
    s.relist("A", "US").await.ok(200);
    app.order("US", "o-2", &[(&s, "A", 2)]).await.ok(201);
    assert_eq!(s.quantity("A", "US").await, 3);
}

fn r19_cancel_returns_the_stock_once(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    s.list("B", "MX", json!({"asin": asin, "price": mxn("50.00"), "quantity": 4})).await.ok(201);
    app.order("MX", "o-1", &[(&s, "SKU-1", 3), (&s, "B", 1)]).await.ok(201);
    assert_eq!(s.quantity("SKU-1", "US").await, 7);
    let r = app.cancel("MX", "o-1").await;
    assert_eq!(r.ok(200), &json!({"order_id": "o-1", "status": "cancelled"}));
    assert_eq!(s.quantity("SKU-1", "US").await, 10);
    assert_eq!(s.quantity("B", "MX").await, 4);
    let r = app.cancel("MX", "o-1").await;
    assert_eq!(r.ok(200)["status"], json!("cancelled"));
    assert_eq!(s.quantity("SKU-1", "CA").await, 10, "returned once only");
    assert_eq!(s.quantity("B", "MX").await, 4);
    let ledger = s.ledger("SKU-1").await;
    let cancels: Vec<_> = ledger.iter().filter(|e| e["reason"] == "cancel").collect();
    assert_eq!(cancels.len(), 1, "{ledger:?}");
    assert_eq!(cancels[0]["delta"], json!(3));
    assert_eq!(cancels[0]["reference"], json!("o-1"));
    assert_eq!(ledger_sum(&ledger), 10);
    // Cancel in another store, or an unknown order: 404.
    app.cancel("US", "o-1").await.expect(404, "NOT_FOUND");
    app.cancel("MX", "no-such-order").await.expect(404, "NOT_FOUND");
    // A replay of a cancelled order changes nothing.
    let r = app.order("MX", "o-1", &[(&s, "SKU-1", 3), (&s, "B", 1)]).await;
    assert!(r.status == 200 || r.status == 409, "replay of a cancelled order: {}", r.text);
    assert_eq!(s.quantity("SKU-1", "US").await, 10);
}

// ---------------------------------------------------------------- R20 ledger

fn r20_ledger_records_every_change(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let pool = s.view("SKU-1", "US").await["pool_id"].clone();
    s.change("SKU-1", "CA", json!({"quantity_delta": -2})).await.ok(200);
    s.change("SKU-1", "MX", json!({"quantity": 12})).await.ok(200);
    app.order("MX", "ord-7", &[(&s, "SKU-1", 5)]).await.ok(201);
    app.cancel("MX", "ord-7").await.ok(200);
    app.order("US", "ord-8", &[(&s, "SKU-1", 1)]).await.ok(201);

    let e = s.ledger("SKU-1").await;
    let got: Vec<(String, i64, i64, String)> = e
        .iter()
        .map(|x| (
            x["reason"].as_str().unwrap().to_string(),
            x["delta"].as_i64().unwrap(),
            x["quantity_after"].as_i64().unwrap(),
            x["store"].as_str().unwrap_or("").to_string(),
        ))
        .collect();
    let want = vec![
        ("set".to_string(), 10, 10, "US".to_string()),
        ("adjust".to_string(), -2, 8, "CA".to_string()),
        ("set".to_string(), 4, 12, "MX".to_string()),
        ("order".to_string(), -5, 7, "MX".to_string()),
        ("cancel".to_string(), 5, 12, "MX".to_string()),
        ("order".to_string(), -1, 11, "US".to_string()),
    ];
    assert_eq!(got, want, "{e:?}");
    assert_eq!(e[3]["reference"], json!("ord-7"));
    assert_eq!(e[4]["reference"], json!("ord-7"));
    assert_eq!(e[5]["reference"], json!("ord-8"));
    let mut last = 0;
    for x in &e {
        assert_eq!(x["pool_id"], pool);
        let seq = x["seq"].as_u64().unwrap();
        assert!(seq > last, "seq grows");
        last = seq;
        let at = x["at"].as_str().unwrap();
        assert!(time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(), "at: {at}");
        assert!(at.ends_with('Z') || at.ends_with("+00:00"), "UTC: {at}");
    }
    assert_eq!(ledger_sum(&e), s.quantity("SKU-1", "US").await);
    assert_eq!(ledger_sum(&e), 11);
    // Unknown SKU: 404.
    s.get("/v1/listings/NOPE/ledger").await.expect(404, "NOT_FOUND");
}

// ---------------------------------------------------------------- R21 lost updates

fn r21_if_match_guards_against_lost_updates(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let r = s.get("/v1/listings/SKU-1").await;
    r.ok(200);
    let v0 = s.view("SKU-1", "US").await["pool_version"].as_u64().unwrap();
    let stale = format!("\"{v0}\"");
    // Someone else changes the pool.
    app.order("CA", "o-1", &[(&s, "SKU-1", 1)]).await.ok(201);
    let r = s
        .send(Method::PATCH, "/v1/listings/SKU-1/stores/US", Some(json!({"quantity": 50})), &[("if-match", &stale)])
        .await;
    r.expect(412, "VERSION_MISMATCH");
    assert_eq!(s.quantity("SKU-1", "US").await, 9, "nothing changed");
    // Unquoted stale version too.
    let r = s
        .send(Method::PATCH, "/v1/listings/SKU-1/stores/US", Some(json!({"quantity": 50})), &[("if-match", &v0.to_string())])
        .await;
    r.expect(412, "VERSION_MISMATCH");
    // A fresh one passes.
    let fresh = s.view("SKU-1", "US").await["pool_version"].as_u64().unwrap();
    let r = s
        .send(Method::PATCH, "/v1/listings/SKU-1/stores/MX", Some(json!({"quantity": 50})), &[("if-match", &format!("\"{fresh}\""))])
        .await;
    let b = r.ok(200);
    assert_eq!(b["listing"]["quantity"], json!(50));
    let newer = b["listing"]["pool_version"].as_u64().unwrap();
    assert!(newer > fresh);
    assert_eq!(r.etag(), Some(newer));
    // The ETag as answered works as If-Match.
    let etag = r.etag_raw();
    let r = s
        .send(Method::PATCH, "/v1/listings/SKU-1/stores/CA", Some(json!({"quantity": 40})), &[("if-match", &etag)])
        .await;
    r.ok(200);
    // A relative change never needs one, even when others changed the pool.
    s.change("SKU-1", "US", json!({"quantity_delta": -5})).await.ok(200);
    assert_eq!(s.quantity("SKU-1", "US").await, 35);
}

fn r21_quantity_bounds(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 3})).await.ok(201);
    s.change("SKU-1", "US", json!({"quantity_delta": -4})).await.expect(409, "INSUFFICIENT_STOCK");
    assert_eq!(s.quantity("SKU-1", "US").await, 3);
    s.change("SKU-1", "US", json!({"quantity": 1000000001})).await.expect(400, "INVALID_QUANTITY");
    s.change("SKU-1", "US", json!({"quantity": -1})).await.expect(400, "INVALID_QUANTITY");
    s.list("SKU-2", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": -1})).await.expect(400, "INVALID_QUANTITY");
    s.list("SKU-2", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 1000000001})).await.expect(400, "INVALID_QUANTITY");
    s.get("/v1/listings/SKU-2").await.expect(404, "NOT_FOUND");
    let r = s.change("SKU-1", "US", json!({"quantity": 1000000000})).await;
    assert_eq!(r.ok(200)["listing"]["quantity"], json!(1000000000));
    s.change("SKU-1", "US", json!({"quantity_delta": 1})).await.expect(400, "INVALID_QUANTITY");
    assert_eq!(s.quantity("SKU-1", "US").await, 1000000000);
    s.change("SKU-1", "US", json!({"quantity_delta": -1000000000})).await.ok(200);
    assert_eq!(s.quantity("SKU-1", "US").await, 0);
    let r = s.change("SKU-1", "US", json!({"quantity": 1.5})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(["INVALID_QUANTITY", "INVALID_REQUEST"].contains(&r.code()), "{}", r.text);
}

// ---------------------------------------------------------------- R22 isolation

fn r22_another_sellers_sku_is_not_found(app) {
    let (a, asin) = seller_with_product(&app).await;
    let b = app.new_seller("B").await;
    shared_everywhere(&a, "A-SKU", &asin, 10).await;
    let missing = b.get("/v1/listings/NO-SUCH-SKU").await;
    missing.expect(404, "NOT_FOUND");
    for (r, m) in [
        (b.get("/v1/listings/A-SKU").await, b.get("/v1/listings/NO-SUCH").await),
        (b.change("A-SKU", "US", json!({"quantity": 0})).await, b.change("NO-SUCH", "US", json!({"quantity": 0})).await),
        (b.delete("/v1/listings/A-SKU").await, b.delete("/v1/listings/NO-SUCH").await),
        (b.close("A-SKU", "US").await, b.close("NO-SUCH", "US").await),
        (b.relist("A-SKU", "US").await, b.relist("NO-SUCH", "US").await),
        (b.get("/v1/listings/A-SKU/ledger").await, b.get("/v1/listings/NO-SUCH/ledger").await),
    ] {
        r.expect(404, "NOT_FOUND");
        assert_eq!((r.status, r.code()), (m.status, m.code()), "same as a missing SKU");
        assert_eq!(r.body["error"]["field"], m.body["error"]["field"]);
    }
    // A's listing is untouched.
    assert_eq!(a.quantity("A-SKU", "US").await, 10);
    assert_eq!(a.listings("A-SKU").await["listings"].as_array().unwrap().len(), 3);
    // B's pages, ledger and events do not show A's.
    let r = b.get("/v1/listings").await;
    assert_eq!(r.ok(200)["items"], json!([]));
    let ev = b.events(0).await;
    assert_eq!(ev["events"], json!([]), "B sees none of A's events");
    // B may use the same SKU name: its own listing.
    b.list("A-SKU", "US", json!({"asin": asin, "price": usd("9.00"), "quantity": 1})).await.ok(201);
    assert_eq!(b.quantity("A-SKU", "US").await, 1);
    assert_eq!(a.quantity("A-SKU", "US").await, 10);
    let ev = b.events(0).await;
    for e in ev["events"].as_array().unwrap() {
        assert_eq!(e["sku"], json!("A-SKU"));
    }
    let ledger = b.ledger("A-SKU").await;
    assert_eq!(ledger_sum(&ledger), 1, "B's ledger only: {ledger:?}");
    assert!(a.events(0).await["events"].as_array().unwrap().len() >= 3);
}

// ---------------------------------------------------------------- events

fn events_are_numbered_without_gaps(app) {
    let (s, asin) = seller_with_product(&app).await;
    let e0 = s.events(0).await;
    assert_eq!(e0["events"], json!([]));
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201);
    app.order("US", "o-1", &[(&s, "SKU-1", 2)]).await.ok(201);
    s.close("SKU-1", "US").await.ok(200);
    s.delete("/v1/listings/SKU-1").await.ok(200);
    let b = s.events(0).await;
    let evs = b["events"].as_array().unwrap().clone();
    assert!(evs.len() >= 4, "{b}");
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["seq"], json!(i as u64 + 1), "seq 1,2,3... no gaps: {b}");
        assert_eq!(e["sku"], json!("SKU-1"));
        assert!(e["stores"].is_array());
        let at = e["at"].as_str().unwrap();
        assert!(time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(), "at: {at}");
    }
    assert_eq!(b["last_seq"], json!(evs.len() as u64));
    let sale = evs
        .iter()
        .find(|e| e["type"] == "quantity_changed" && e["reason"] == "order")
        .unwrap_or_else(|| panic!("a quantity_changed event for the order: {b}"));
    assert_eq!(sale["delta"], json!(-2));
    assert_eq!(sale["quantity"], json!(8));
    assert_eq!(strs(&sale["stores"]), ["US"]);
    assert!(!sale["pool_id"].is_null());
    let set = evs
        .iter()
        .find(|e| e["type"] == "quantity_changed" && e["reason"] == "set")
        .unwrap_or_else(|| panic!("a quantity_changed event for the PUT: {b}"));
    assert_eq!(set["quantity"], json!(10));
    assert_eq!(set["delta"], json!(10));
    let closed = evs
        .iter()
        .find(|e| e["type"] == "listing_changed" && e["status"] == "inactive")
        .unwrap_or_else(|| panic!("a listing_changed event for the close: {b}"));
    assert_eq!(strs(&closed["stores"]), ["US"]);
    let last = evs.last().unwrap();
    assert_eq!(last["type"], json!("listing_deleted"));
    assert_eq!(strs(&last["stores"]), ["US"]);
    // after= skips what was seen.
    let n = evs.len() as u64;
    let b2 = s.events(n - 1).await;
    assert_eq!(b2["events"].as_array().unwrap().len(), 1);
    assert_eq!(b2["events"][0]["seq"], json!(n));
    let b3 = s.events(n).await;
    assert_eq!(b3["events"], json!([]));
    assert_eq!(b3["last_seq"], json!(n));
}

fn events_long_poll_wakes_on_change_and_times_out(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201);
    let last = s.events(0).await["last_seq"].as_u64().unwrap();
    // Nothing happens: empty after the wait, with last_seq.
    let t = Instant::now();
    let r = s.get(&format!("/v1/events?after={last}&wait=1")).await;
    let b = r.ok(200);
    assert_eq!(b["events"], json!([]));
    assert_eq!(b["last_seq"], json!(last));
    assert!(t.elapsed() >= Duration::from_millis(900), "waited: {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(5), "waited: {:?}", t.elapsed());
    // A change meanwhile: answered early.
    let s2 = s.clone();
    common::after(Duration::from_millis(300), async move {
        s2.change("SKU-1", "US", json!({"quantity": 7})).await.ok(200);
    });
    let t = Instant::now();
    let r = s.get(&format!("/v1/events?after={last}&wait=2")).await;
    let took = t.elapsed();
    let b = r.ok(200);
    let evs = b["events"].as_array().unwrap();
    assert!(!evs.is_empty(), "woken by the change: {b}");
    assert_eq!(evs[0]["seq"], json!(last + 1));
    assert_eq!(evs[0]["type"], json!("quantity_changed"));
    assert_eq!(evs[0]["quantity"], json!(7));
    assert!(took < Duration::from_millis(1800), "answered early: {took:?}");
    assert!(took >= Duration::from_millis(250), "not before the change: {took:?}");
}

// ---------------------------------------------------------------- listing pages

fn listing_pages_span_many_storage_reads(app) {
    // More SKUs than one storage read holds (200), with a filter that skips most: the
    // walk must neither repeat nor lose a listing across reads.
    let (s, asin) = seller_with_product(&app).await;
    for i in 0..450 {
        let sku = format!("K-{i:03}");
        let quantity = if i % 3 == 0 { 1 } else { 0 };
        s.list(&sku, "US", json!({"asin": asin, "price": usd("5.00"), "quantity": quantity}))
            .await
            .ok(201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/v1/listings?status=active&limit=37&cursor={c}"),
            None => "/v1/listings?status=active&limit=37".to_string(),
        };
        let b = s.get(&path).await.ok(200).clone();
        for it in b["items"].as_array().unwrap() {
            seen.push(it["sku"].as_str().unwrap().to_string());
        }
        match &b["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            _ => break,
        }
    }
    let expected: Vec<String> = (0..450).filter(|i| i % 3 == 0).map(|i| format!("K-{i:03}")).collect();
    assert_eq!(seen, expected);
    let all = s.get("/v1/listings?limit=1000").await.ok(200).clone();
    assert_eq!(all["items"].as_array().unwrap().len(), 450);
}

fn listing_pages_walk_in_sku_order(app) {
    let (s, asin) = seller_with_product(&app).await;
    for sku in ["E-5", "A-1", "C-3", "B-2", "D-4"] {
        s.list(sku, "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 1})).await.ok(201);
    }
    s.list("C-3", "CA", json!({"asin": asin, "price": cad("5.00"), "share": "existing"})).await.ok(201);
    s.close("D-4", "US").await.ok(200);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/listings?store=US&limit=2&cursor={c}"),
            None => "/v1/listings?store=US&limit=2".to_string(),
        };
        let r = s.get(&path).await;
        let b = r.ok(200).clone();
        let items = b["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for it in items {
            assert_eq!(it["store"], json!("US"));
            seen.push(it["sku"].as_str().unwrap().to_string());
        }
        pages += 1;
        assert!(pages < 10, "the walk ends");
        match &b["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            Value::Null => break,
            other => panic!("next_cursor: {other}"),
        }
    }
    assert_eq!(seen, ["A-1", "B-2", "C-3", "D-4", "E-5"]);
    // Without a store: every listing view, SKU order.
    let r = s.get("/v1/listings").await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    let keys: Vec<(String, String)> = items
        .iter()
        .map(|i| (i["sku"].as_str().unwrap().to_string(), i["store"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    let skus: Vec<_> = keys.iter().map(|k| k.0.clone()).collect();
    let mut sorted = skus.clone();
    sorted.sort();
    assert_eq!(skus, sorted);
    assert_eq!(r.body["next_cursor"], Value::Null);
    // store= filter.
    let r = s.get("/v1/listings?store=CA").await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sku"], json!("C-3"));
    assert_eq!(items[0]["store"], json!("CA"));
    // status filter.
    let r = s.get("/v1/listings?status=inactive").await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{}", r.text);
    assert_eq!(items[0]["sku"], json!("D-4"));
    assert_eq!(items[0]["reasons"], json!(["CLOSED"]));
    let r = s.get("/v1/listings?status=active&store=US").await;
    assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), 4);
    // Bad parameters.
    s.get("/v1/listings?limit=0").await.expect(400, "INVALID_REQUEST");
    s.get("/v1/listings?limit=5000").await.expect(400, "INVALID_REQUEST");
    s.get("/v1/listings?limit=abc").await.expect(400, "INVALID_REQUEST");
    s.get("/v1/listings?status=sleepy").await.expect(400, "INVALID_REQUEST");
    s.get("/v1/listings?cursor=%00garbage").await.expect(400, "INVALID_REQUEST");
    s.get("/v1/listings?limit=1000").await.ok(200);
    s.get("/v1/listings?store=ZZ").await.expect(400, "UNKNOWN_STORE");
}

// ---------------------------------------------------------------- offers

fn offers_are_buyable_ones_lowest_price_first(app) {
    let (a, asin) = seller_with_product(&app).await;
    let b = app.new_seller("B").await;
    let c = app.new_seller("C").await;
    let d = app.new_seller("D").await;
    let e = app.new_seller("E").await;
    a.list("A1", "US", json!({"asin": asin, "price": usd("20.00"), "quantity": 5})).await.ok(201);
    b.list("B1", "US", json!({"asin": asin, "price": usd("9.50"), "quantity": 2, "condition": "used_good"})).await.ok(201);
    c.list("C1", "US", json!({"asin": asin, "price": usd("1.00"), "quantity": 0})).await.ok(201);
    d.list("D1", "US", json!({"asin": asin, "price": usd("2.00"), "quantity": 9})).await.ok(201);
    d.close("D1", "US").await.ok(200);
    e.list("E1", "US", json!({"asin": asin, "price": usd("15.00"), "quantity": 1, "fulfillment": "marketplace"})).await.ok(201);
    a.list("A1", "CA", json!({"asin": asin, "price": cad("3.00")})).await.ok(201);
    let r = app.operator().get(&format!("/v1/stores/US/items/{asin}/offers")).await;
    let body = r.ok(200);
    assert_eq!(body["asin"], json!(asin));
    assert_eq!(body["store"], json!("US"));
    let offers = body["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 3, "{body}");
    assert_eq!(offers[0], json!({"seller_id": b.seller_id, "sku": "B1", "condition": "used_good", "price": usd("9.50"), "quantity": 2, "fulfillment": "merchant"}));
    assert_eq!(offers[1]["sku"], json!("E1"));
    assert_eq!(offers[1]["fulfillment"], json!("marketplace"));
    assert_eq!(offers[2]["sku"], json!("A1"));
    assert_eq!(offers[2]["price"], usd("20.00"));
    let r = app.operator().get(&format!("/v1/stores/CA/items/{asin}/offers")).await;
    let offers = r.ok(200)["offers"].as_array().unwrap().clone();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0]["price"], cad("3.00"));
    assert_eq!(offers[0]["quantity"], json!(5));
    let r = app.operator().get(&format!("/v1/stores/MX/items/{asin}/offers")).await;
    assert_eq!(r.ok(200)["offers"], json!([]));
}

// ---------------------------------------------------------------- bad input

fn bad_input_is_refused_and_the_server_keeps_serving(app) {
    let (s, asin) = seller_with_product(&app).await;
    let put = |body: &'static str| {
        let s = s.clone();
        async move {
            s.raw(Method::PUT, "/v1/listings/SKU-1/stores/US", Some(body.as_bytes().to_vec()), "application/json", &[]).await
        }
    };
    put("{\"asin\": \"B0").await.expect(400, "INVALID_REQUEST");
    put("").await.expect(400, "INVALID_REQUEST");
    put("[]").await.expect(400, "INVALID_REQUEST");
    put("not json at all").await.expect(400, "INVALID_REQUEST");
    put("\u{0}\u{1}\u{2}").await.expect(400, "INVALID_REQUEST");
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("1.00"), "colour": "red"})).await.expect(400, "INVALID_REQUEST");
    s.list("SKU-1", "US", json!({"price": usd("1.00")})).await.expect(400, "INVALID_REQUEST");
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("1.00"), "condition": "mint"})).await.expect(400, "INVALID_REQUEST");
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("1.00"), "share": "sometimes"})).await.expect(400, "INVALID_REQUEST");
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("1.00"), "fulfillment": "drone"})).await.expect(400, "INVALID_REQUEST");
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("1.00"), "quantity": "5"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(["INVALID_REQUEST", "INVALID_QUANTITY"].contains(&r.code()), "{}", r.text);
    s.change("SKU-1", "US", json!({"quantity": 1, "bogus": true})).await.expect(400, "INVALID_REQUEST");
    // Wrong content type with a JSON body.
    let r = s.raw(Method::PUT, "/v1/listings/SKU-1/stores/US", Some(b"asin=x".to_vec()), "application/x-www-form-urlencoded", &[]).await;
    assert!(r.status == 400 || r.status == 415, "{}", r.text);
    // SKU: 1 to 40 characters, no spaces at the ends.
    let sku41 = "A".repeat(41);
    s.list(&sku41, "US", json!({"asin": asin, "price": usd("1.00")})).await.expect(400, "INVALID_REQUEST");
    s.get(&format!("/v1/listings/{sku41}")).await.expect(400, "INVALID_REQUEST");
    s.list("%20LEAD", "US", json!({"asin": asin, "price": usd("1.00")})).await.expect(400, "INVALID_REQUEST");
    s.list("TRAIL%20", "US", json!({"asin": asin, "price": usd("1.00")})).await.expect(400, "INVALID_REQUEST");
    let sku40 = "B".repeat(40);
    s.list(&sku40, "US", json!({"asin": asin, "price": usd("1.00"), "quantity": 1})).await.ok(201);
    // SKUs are case-sensitive and may hold inner spaces.
    s.list("in%20side", "US", json!({"asin": asin, "price": usd("1.00"), "quantity": 1})).await.ok(201);
    s.list("IN%20SIDE", "US", json!({"asin": asin, "price": usd("1.00"), "quantity": 2})).await.ok(201);
    assert_eq!(s.quantity("in%20side", "US").await, 1);
    // Stores: unknown in path and query; lowercase accepted, answered in capitals.
    s.list("SKU-1", "XX", json!({"asin": asin, "price": usd("1.00")})).await.expect(400, "UNKNOWN_STORE");
    s.get(&format!("/v1/catalog/items/{asin}?store=ZZ")).await.expect(400, "UNKNOWN_STORE");
    s.get("/v1/catalog/search?store=ZZ&q=x").await.expect(400, "UNKNOWN_STORE");
    s.create_product("FR", "Bouteille", "Acme", "fr", &[("UPC", UPC_B)]).await.expect(400, "UNKNOWN_STORE");
    app.operator().get(&format!("/v1/stores/ZZ/items/{asin}/offers")).await.expect(400, "UNKNOWN_STORE");
    app.operator().post("/v1/stores/ZZ/orders", json!({"order_id": "o", "lines": [{"seller_id": s.seller_id, "sku": "X", "quantity": 1}]})).await.expect(400, "UNKNOWN_STORE");
    let r = s.list("LOWER", "ca", json!({"asin": asin, "price": cad("1.00"), "quantity": 1})).await;
    assert_eq!(r.ok(201)["store"], json!("CA"));
    let r = s.get(&format!("/v1/catalog/items/{asin}?store=ca")).await;
    assert_eq!(r.ok(200)["store"], json!("CA"));
    // Orders: empty id, 0 and 101 lines.
    let op = app.operator();
    let line = json!({"seller_id": s.seller_id, "sku": "LOWER", "quantity": 1});
    op.post("/v1/stores/CA/orders", json!({"order_id": "", "lines": [line]})).await.expect(400, "INVALID_REQUEST");
    op.post("/v1/stores/CA/orders", json!({"order_id": "o-0", "lines": []})).await.expect(400, "INVALID_REQUEST");
    let many: Vec<Value> = (0..101).map(|_| line.clone()).collect();
    op.post("/v1/stores/CA/orders", json!({"order_id": "o-101", "lines": many})).await.expect(400, "INVALID_REQUEST");
    op.post("/v1/stores/CA/orders", json!({"lines": [line]})).await.expect(400, "INVALID_REQUEST");
    assert_eq!(s.quantity("LOWER", "CA").await, 1);
    // 100 lines are fine (added up: 100 units needed, 1 there → insufficient, not invalid).
    let hundred: Vec<Value> = (0..100).map(|_| line.clone()).collect();
    op.post("/v1/stores/CA/orders", json!({"order_id": "o-100", "lines": hundred})).await.expect(409, "INSUFFICIENT_STOCK");
    // A 2 MiB body.
    let big = format!("{{\"asin\": \"{asin}\", \"price\": {{\"amount\": \"1.00\", \"currency\": \"USD\"}}, \"pad\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = s.raw(Method::PUT, "/v1/listings/BIG/stores/US", Some(big.into_bytes()), "application/json", &[]).await;
    r.expect(413, "PAYLOAD_TOO_LARGE");
    // Unknown routes and methods.
    s.get("/v1/nothing-here").await.expect(404, "NOT_FOUND");
    app.anonymous().get("/nothing").await;
    let r = s.get("/v2/listings").await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["code"].is_string(), "a JSON error: {}", r.text);
    let r = s.send(Method::DELETE, "/v1/stores", None, &[]).await;
    assert!(r.status == 405 || r.status == 404, "{}", r.text);
    assert!(r.body["error"]["code"].is_string(), "a JSON error: {}", r.text);
    // Catalog input.
    s.post("/v1/catalog/items", json!({"store": "US", "title": "x"})).await.expect(400, "INVALID_REQUEST");
    let mut b = common::product_body("US", "HOME", "Thing", "Acme", "en", &[("UPC", UPC_B)]);
    b["identifiers"] = json!([{"type": "SERIAL", "value": "123"}]);
    let r = s.post("/v1/catalog/items", b).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(["INVALID_REQUEST", "INVALID_IDENTIFIER"].contains(&r.code()), "{}", r.text);
    s.get("/v1/catalog/search?store=US").await.expect(400, "INVALID_REQUEST");
    s.get("/v1/events?after=abc").await.expect(400, "INVALID_REQUEST");
    app.assert_healthy().await;
    // Still serving real work.
    s.list("AFTER", "US", json!({"asin": asin, "price": usd("1.00"), "quantity": 1})).await.ok(201);
}

fn json_errors_carry_code_message_and_field(app) {
    let (s, asin) = seller_with_product(&app).await;
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("1.999"), "quantity": 1})).await;
    r.expect(400, "INVALID_PRICE");
    let err = r.body["error"].as_object().unwrap();
    assert!(err.contains_key("code") && err.contains_key("message"));
    assert!(r.headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/json")));
    let r = s.change("NOPE", "US", json!({"quantity": 1})).await;
    r.expect(404, "NOT_FOUND");
    let _ = Resp::code(&r);
    let _ = price("1", "USD");
    let _ = upc(1);
}

// ---------------------------------------------------------------- more edges

fn r3_near_identical_title_in_another_store_is_no_match(app) {
    let s = app.new_seller("s").await;
    let us = s.product("US", "Steel Mug 350 ml", "Acme", "en", &[("UPC", UPC_A)]).await;
    let r = s.create_product("CA", "steel mug 350ml", "Acme", "en", &[("EAN", EAN_A)]).await;
    let b = r.ok(201);
    assert_eq!(b["matched"], json!(false));
    assert_ne!(b["asin"], json!(us));
}

fn r4_isbn10_with_x_check_digit(app) {
    let s = app.new_seller("s").await;
    s.product("US", "A Book About Things", "Pubco", "en", &[("ISBN", "080442957X")]).await;
    s.create_product("US", "Another Book", "Pubco", "en", &[("ISBN", "0804429571")])
        .await
        .expect(400, "INVALID_IDENTIFIER");
}

fn r9_a_shared_listing_may_not_switch_to_marketplace(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201);
    s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "existing"})).await.ok(201);
    let r = s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "fulfillment": "marketplace"})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "FULFILLMENT_CANNOT_SHARE", "{}", r.text);
    let v = s.view("SKU-1", "CA").await;
    assert_eq!(v["fulfillment"], json!("merchant"));
    assert_eq!(strs(&v["pool_stores"]), ["US", "CA"]);
}

fn r12_status_filters_and_offers_follow_the_clock(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("LATER", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5, "start_selling_at": "2025-06-01T13:00:00Z"})).await.ok(201);
    let r = s.get("/v1/listings?status=inactive").await;
    assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), 1);
    let r = s.get("/v1/listings?status=active").await;
    assert_eq!(r.ok(200)["items"], json!([]));
    let r = app.operator().get(&format!("/v1/stores/US/items/{asin}/offers")).await;
    assert_eq!(r.ok(200)["offers"], json!([]));
    app.clock.advance(time::Duration::hours(2));
    let r = s.get("/v1/listings?status=active").await;
    assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), 1, "active once the time has come: {}", r.text);
    let r = s.get("/v1/listings?status=inactive").await;
    assert_eq!(r.ok(200)["items"], json!([]));
    let r = app.operator().get(&format!("/v1/stores/US/items/{asin}/offers")).await;
    assert_eq!(r.ok(200)["offers"].as_array().unwrap().len(), 1, "{}", r.text);
}

fn r15_start_time_now_is_on_sale_and_times_are_utc(app) {
    let (s, asin) = seller_with_product(&app).await;
    let r = s.list("NOW", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5, "start_selling_at": "2025-06-01T12:00:00Z"})).await;
    assert_eq!(r.ok(201)["status"], json!("active"), "a start time not in the future: {}", r.text);
    let r = s.list("PAST", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5, "start_selling_at": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(r.ok(201)["status"], json!("active"));
    let r = s.list("OFFSET", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 5, "start_selling_at": "2025-06-03T02:00:00+02:00"})).await;
    let at = r.ok(201)["start_selling_at"].as_str().unwrap().to_string();
    let parsed = time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(parsed, time::macros::datetime!(2025-06-03 00:00 UTC));
    assert!(at.ends_with('Z') || at.ends_with("+00:00"), "answered in UTC: {at}");
}

fn r16_delete_removes_unique_pools_too(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201);
    s.list("SKU-1", "CA", json!({"asin": asin, "price": cad("24.99"), "share": "unique", "quantity": 4})).await.ok(201);
    let pools: Vec<Value> = s.listings("SKU-1").await["listings"].as_array().unwrap().iter().map(|l| l["pool_id"].clone()).collect();
    let r = s.delete("/v1/listings/SKU-1").await;
    let mut deleted = strs(&r.ok(200)["deleted_stores"]);
    deleted.sort();
    assert_eq!(deleted, ["CA", "US"]);
    let ledger = s.ledger("SKU-1").await;
    for pool in &pools {
        let entries: Vec<&Value> = ledger.iter().filter(|e| e["pool_id"] == *pool).collect();
        let sum: i64 = entries.iter().map(|e| e["delta"].as_i64().unwrap()).sum();
        assert_eq!(sum, 0, "pool {pool} removed: {ledger:?}");
        assert_eq!(entries.last().unwrap()["reason"], json!("delete"));
    }
    app.order("CA", "o-1", &[(&s, "SKU-1", 1)]).await.expect(409, "LISTING_NOT_BUYABLE");
}

fn r19_cancel_after_delete_is_no_defect(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await.ok(201);
    app.order("US", "o-1", &[(&s, "SKU-1", 2)]).await.ok(201);
    s.delete("/v1/listings/SKU-1").await.ok(200);
    let r = app.cancel("US", "o-1").await;
    assert!(r.status == 200 || r.status == 404 || r.status == 409, "{}", r.text);
    // The SKU listed afresh does not get the old order's units.
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 1})).await.ok(201);
    app.cancel("US", "o-1").await;
    assert_eq!(s.quantity("SKU-1", "US").await, 1);
    let ledger = s.ledger("SKU-1").await;
    let new_pool = s.view("SKU-1", "US").await["pool_id"].clone();
    let sum: i64 = ledger.iter().filter(|e| e["pool_id"] == new_pool).map(|e| e["delta"].as_i64().unwrap()).sum();
    assert_eq!(sum, 1);
}

fn r21_put_honours_if_match(app) {
    let (s, asin) = seller_with_product(&app).await;
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 10})).await;
    let etag = r.etag_raw();
    assert!(!etag.is_empty(), "PUT answers an ETag");
    s.change("SKU-1", "US", json!({"quantity_delta": -1})).await.ok(200);
    let r = s
        .send(Method::PUT, "/v1/listings/SKU-1/stores/US", Some(json!({"asin": asin, "price": usd("19.99"), "quantity": 30})), &[("if-match", &etag)])
        .await;
    r.expect(412, "VERSION_MISMATCH");
    assert_eq!(s.quantity("SKU-1", "US").await, 9);
}

fn r21_bad_if_match_etags_and_one_quantity_field(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("19.99"), "quantity": 9})).await.ok(201);
    let r = s
        .send(Method::PATCH, "/v1/listings/SKU-1/stores/US", Some(json!({"quantity": 30})), &[("if-match", "banana")])
        .await;
    assert!(matches!((r.status, r.code()), (400, "INVALID_REQUEST") | (412, "VERSION_MISMATCH")), "{}", r.text);
    assert_eq!(s.quantity("SKU-1", "US").await, 9);
    // The close / relist answers carry the ETag too.
    let r = s.close("SKU-1", "US").await;
    assert_eq!(r.etag(), r.ok(200)["pool_version"].as_u64());
    let r = s.relist("SKU-1", "US").await;
    assert_eq!(r.etag(), r.ok(200)["pool_version"].as_u64());
    // quantity and quantity_delta together: one or the other.
    let r = s.change("SKU-1", "US", json!({"quantity": 3, "quantity_delta": 1})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(s.quantity("SKU-1", "US").await, 9);
}

fn huge_numbers_are_refused_not_overflowed(app) {
    let (s, asin) = seller_with_product(&app).await;
    s.list("SKU-1", "US", json!({"asin": asin, "price": usd("5.00"), "quantity": 3})).await.ok(201);
    for d in [json!(i64::MIN), json!(i64::MAX), json!(u64::MAX), json!(1e300), json!(-1e300)] {
        let r = s.change("SKU-1", "US", json!({"quantity_delta": d})).await;
        assert!(r.status == 400 || r.status == 409, "quantity_delta {d}: {}", r.text);
    }
    for q in [json!(u64::MAX), json!(i64::MIN), json!(1e300)] {
        let r = s.change("SKU-1", "US", json!({"quantity": q})).await;
        assert_eq!(r.status, 400, "quantity {q}: {}", r.text);
    }
    let op = app.operator();
    for q in [json!(i64::MAX), json!(u64::MAX), json!(4_611_686_018_427_387_904_i64)] {
        let line = json!({"seller_id": s.seller_id, "sku": "SKU-1", "quantity": q});
        let r = op.post("/v1/stores/US/orders", json!({"order_id": format!("big-{q}"), "lines": [line.clone(), line]})).await;
        assert!(r.status == 400 || r.status == 409, "order lines of {q}: {}", r.text);
    }
    assert_eq!(s.quantity("SKU-1", "US").await, 3);
    let r = s.list("SKU-2", "US", json!({"asin": asin, "price": usd("99999999999999999999999999999999999.00"), "quantity": 1})).await;
    assert!(r.status == 201 || r.status == 400, "{}", r.text);
    // A long poll with an absurd wait still answers (woken by a change).
    let last = s.events(0).await["last_seq"].as_u64().unwrap();
    let s2 = s.clone();
    common::after(Duration::from_millis(300), async move {
        s2.change("SKU-1", "US", json!({"quantity": 4})).await.ok(200);
    });
    let r = s.get(&format!("/v1/events?after={last}&wait={}", u64::MAX)).await;
    assert!(r.status == 200 || r.status == 400, "{}", r.text);
    let r = s.get("/v1/events?after=0&wait=-1").await;
    assert_eq!(r.status, 400, "{}", r.text);
    app.assert_healthy().await;
}

fn prices_that_are_not_decimals(app) {
    let (s, asin) = seller_with_product(&app).await;
    for bad in ["1e2", "NaN", "Infinity", "1,00", "$1.00", "0x10", "1..0", "1 00", "-0.01"] {
        let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd(bad), "quantity": 1})).await;
        r.expect(400, "INVALID_PRICE");
    }
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": {"amount": "1.00"}, "quantity": 1})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": "1.00", "quantity": 1})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s.list("SKU-1", "US", json!({"asin": asin, "price": usd("10"), "quantity": 1})).await;
    let amount = r.ok(201)["price"]["amount"].as_str().unwrap().to_string();
    assert!(amount == "10" || amount == "10.00", "amount: {amount}");
}

fn search_text_is_never_a_query_error(app) {
    let s = app.new_seller("s").await;
    s.product("US", "Insulated Water Bottles 750 ml", "Acme", "en", &[("UPC", UPC_A)]).await;
    for q in ["%22", "%27", "*", "OR", "bottle%20AND", "(", ")", "NEAR(", "-", "%5E", "bottle:", "%25", "%5C", "%3B%20DROP%20TABLE%20x", "%C3%A9", "bottles%22%20OR%20%221"] {
        let r = s.get(&format!("/v1/catalog/search?store=US&q={q}")).await;
        assert_eq!(r.status, 200, "q={q}: {}", r.text);
        assert!(r.body["items"].is_array(), "q={q}: {}", r.text);
    }
    for id in ["abc", "%27", "0"] {
        let r = s.get(&format!("/v1/catalog/search?store=US&identifier={id}")).await;
        assert!(r.status == 200 || r.status == 400, "identifier={id}: {}", r.text);
    }
}

fn transport_level_garbage(app) {
    let (s, asin) = seller_with_product(&app).await;
    let raw = |bytes: Vec<u8>, ct: &'static str| {
        let s = s.clone();
        async move { s.raw(Method::PUT, "/v1/listings/SKU-1/stores/US", Some(bytes), ct, &[]).await }
    };
    raw(vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'], "application/json").await.expect(400, "INVALID_REQUEST");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    raw(deep.into_bytes(), "application/json").await.expect(400, "INVALID_REQUEST");
    let deep_obj = format!("{{\"asin\": {}1{}}}", "{\"a\":".repeat(5000), "}".repeat(5000));
    raw(deep_obj.into_bytes(), "application/json").await.expect(400, "INVALID_REQUEST");
    let dup = format!("{{\"asin\": \"{asin}\", \"asin\": \"{asin}\", \"price\": {{\"amount\": \"1.00\", \"currency\": \"USD\"}}}}");
    let r = raw(dup.into_bytes(), "application/json").await;
    assert!(r.status == 400 || r.status == 201, "{}", r.text);
    let r = s.raw(Method::PUT, "/v1/listings/NOCT/stores/US", Some(serde_json::to_vec(&json!({"asin": asin, "price": usd("1.00")})).unwrap()), "", &[]).await;
    assert!(r.status == 201 || r.status == 400 || r.status == 415, "{}", r.text);
    let r = s.get("/v1/listings/%ZZ").await;
    assert!(r.status == 400 || r.status == 404, "{}", r.text);
    s.get("/v1/listings/%01CTRL").await.expect(400, "INVALID_REQUEST");
    s.get("/v1/listings/%FF%FE").await.expect(400, "INVALID_REQUEST");
    let long = "L".repeat(20_000);
    let r = s.get(&format!("/v1/listings/{long}")).await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    let r = s.get(&format!("/v1/listings?cursor={long}")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app.operator().post("/v1/stores/US/orders", json!({"order_id": "x".repeat(5000), "lines": [{"seller_id": s.seller_id, "sku": "SKU-1", "quantity": 1}]})).await;
    assert!((400..500).contains(&r.status), "{}", r.text);
    let r = app.operator().post("/v1/stores/US/orders", json!({"order_id": "o", "lines": [{"seller_id": s.seller_id, "sku": "A".repeat(41), "quantity": 1}]})).await;
    assert!(r.status == 400 || r.status == 409, "{}", r.text);
    app.operator().post("/v1/sellers", json!({"name": 42})).await.expect(400, "INVALID_REQUEST");
    app.assert_healthy().await;
}

fn events_record_cancels_and_joins(app) {
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let last = s.events(0).await["last_seq"].as_u64().unwrap();
    app.order("CA", "o-1", &[(&s, "SKU-1", 4)]).await.ok(201);
    app.cancel("CA", "o-1").await.ok(200);
    let b = s.events(last).await;
    let evs = b["events"].as_array().unwrap();
    let q: Vec<(String, i64, i64)> = evs
        .iter()
        .filter(|e| e["type"] == "quantity_changed")
        .map(|e| (e["reason"].as_str().unwrap().to_string(), e["delta"].as_i64().unwrap(), e["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(q, [("order".to_string(), -4, 6), ("cancel".to_string(), 4, 10)], "{b}");
    for e in evs.iter().filter(|e| e["type"] == "quantity_changed") {
        assert_eq!(strs(&e["stores"]), ["US", "CA", "MX"]);
    }
    // Relist after close: listing_changed to active.
    s.close("SKU-1", "MX").await.ok(200);
    let last = s.events(0).await["last_seq"].as_u64().unwrap();
    s.relist("SKU-1", "MX").await.ok(200);
    let b = s.events(last).await;
    let e = b["events"].as_array().unwrap().iter().find(|e| e["type"] == "listing_changed").cloned().unwrap_or_else(|| panic!("{b}"));
    assert_eq!(e["status"], json!("active"));
    assert_eq!(strs(&e["stores"]), ["MX"]);
}

fn rate_limited_past_a_tokens_rate(app) {
    let mut app = app;
    app.rate_limit = 5;
    app.restart().await;
    let s = app.new_seller("other").await;
    let busy = app.new_seller("busy").await;
    for _ in 0..5 {
        busy.get("/v1/stores").await.ok(200);
    }
    let r = busy.get("/v1/stores").await;
    r.expect(429, "RATE_LIMITED");
    assert!(r.headers.get("retry-after").is_some(), "429 carries Retry-After");
    // SPEC 4.2: the operator's token carries every storefront's orders and is not
    // limited unless the operator asks for it at start.
    let op = app.operator();
    for _ in 0..20 {
        op.get("/v1/stores").await.ok(200);
    }
    // Another token has its own allowance, and health checks are never limited.
    s.get("/v1/stores").await.ok(200);
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

fn data_survives_a_restart(app) {
    let mut app = app;
    let (s, asin) = seller_with_product(&app).await;
    shared_everywhere(&s, "SKU-1", &asin, 10).await;
    let order = app.order("MX", "o-1", &[(&s, "SKU-1", 3)]).await;
    order.ok(201);
    let before = s.listings("SKU-1").await;
    let ledger = s.ledger("SKU-1").await;
    let events = s.events(0).await;
    app.restart().await;
    let s = Client { http: app.http.clone(), ..s };
    assert_eq!(s.listings("SKU-1").await, before);
    assert_eq!(s.ledger("SKU-1").await, ledger);
    assert_eq!(s.events(0).await, events);
    let again = app.order("MX", "o-1", &[(&s, "SKU-1", 3)]).await;
    assert_eq!(again.ok(200), &order.body);
    assert_eq!(s.quantity("SKU-1", "US").await, 7);
    app.order("MX", "o-2", &[(&s, "SKU-1", 1)]).await.ok(201);
    let ev = s.events(0).await;
    let seqs: Vec<u64> = ev["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no gaps across a restart");
}

}

#[test]
fn upc_helper_makes_valid_check_digits() {
    assert_eq!(upc(3600029145), UPC_A);
}
