//! The marketplace's own file layouts (issue 10, SPEC section 5) and the rule they lean
//! on, R3 "the same product information", through the real HTTP API on SQLite and
//! PostgreSQL:
//!
//! - `PRODUCT_DATA_CONFLICT` from `POST /v1/catalog/items`: another brand, another
//!   product type, identifiers of two ASINs; and the brand written another way, which is
//!   the same brand.
//! - A category template (`TemplateType=fptcustom`, two header rows) as tab-separated
//!   UTF-8 text and as an `.xlsx` workbook in the marketplace's sheet layout: rows that
//!   create products, list on existing pages by UPC, `PartialUpdate`, `Delete`, and a
//!   row whose brand conflicts with the page in another store.
//! - Inventory Loader and Price & Quantity text templates with their real two header
//!   rows (Japanese labels in UTF-8, English labels in Windows-1252 with CRLF), and the
//!   full US attribute row accepted without a warning.

mod common;

use common::{Client, Resp, product_body, usd};
use reqwest::Method;
use serde_json::{Value, json};

/// Valid UPCs (check digit), unused by any other product of these tests.
const UPC_MUG: &str = "012345000010";
const UPC_CUP: &str = "012345000027";
const UPC_CHAIR: &str = "012345000034";
const UPC_LAMP: &str = "012345000041";
const UPC_KETTLE: &str = "012345000058";

const REPORT_HEADER: &str = "original-record-number\tsku\terror-code\terror-type\terror-message";

// ------------------------------------------------------------------------ helpers

async fn start_upload(s: &Client, store: &str, body: Vec<u8>) -> String {
    let r = s
        .raw(
            Method::POST,
            &format!("/v1/uploads?store={store}"),
            Some(body),
            "application/octet-stream",
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "POST /v1/uploads: {}", r.text);
    r.body["upload_id"].as_str().expect("upload_id").to_string()
}

/// Posts a file, waits for DONE, checks the counts and returns the report's text.
async fn upload(s: &Client, store: &str, body: Vec<u8>, processed: i64, successful: i64) -> String {
    let id = start_upload(s, store, body).await;
    let b = s.wait_upload(&id).await;
    assert_eq!(b["status"], "DONE", "{b}");
    assert_eq!(
        (
            b["records_processed"].as_i64(),
            b["records_successful"].as_i64(),
            b["records_failed"].as_i64()
        ),
        (
            Some(processed),
            Some(successful),
            Some(processed - successful)
        ),
        "counts: {b}"
    );
    let r = s.get(&format!("/v1/uploads/{id}/report")).await;
    assert_eq!(r.status, 200, "report: {}", r.text);
    r.text
}

/// The report, byte for byte: the summary, then (when there are lines) the column names
/// and the lines `(record, sku, code, type, message)`.
#[track_caller]
fn assert_report(
    text: &str,
    processed: i64,
    successful: i64,
    lines: &[(i64, &str, &str, &str, &str)],
) {
    let mut want = format!(
        "Feed Processing Summary:\n\tNumber of records processed\t\t{processed}\n\tNumber of records successful\t\t{successful}\n\n"
    );
    if !lines.is_empty() {
        want.push_str(REPORT_HEADER);
        want.push('\n');
    }
    for (record, sku, code, kind, message) in lines {
        want.push_str(&format!("{record}\t{sku}\t{code}\t{kind}\t{message}\n"));
    }
    assert_eq!(text, want, "report");
}

/// The message of the report line for `sku` (for lines whose wording is the rules').
fn message_of<'a>(report: &'a str, sku: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 5 && f[1] == sku).then(|| f[4])
        })
        .unwrap_or_else(|| panic!("no report line for {sku}:\n{report}"))
}

async fn create(s: &Client, body: Value) -> Resp {
    s.post("/v1/catalog/items", body).await
}

/// A product (201) of type HOME; its ASIN.
async fn product(s: &Client, store: &str, title: &str, brand: &str, upc: &str) -> String {
    let r = create(
        s,
        product_body(store, "HOME", title, brand, "en", &[("UPC", upc)]),
    )
    .await;
    assert_eq!(r.status, 201, "create {title} in {store}: {}", r.text);
    r.body["asin"].as_str().expect("asin").to_string()
}

/// The `asin`s of a refusal's `matches`, sorted, with their stores.
fn matches(r: &Resp) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = r.body["error"]["matches"]
        .as_array()
        .or_else(|| r.body["matches"].as_array())
        .unwrap_or_else(|| panic!("no matches: {}", r.text))
        .iter()
        .map(|m| {
            (
                m["asin"].as_str().unwrap_or("").to_string(),
                m["store"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    m.sort();
    m
}

fn error_message(r: &Resp) -> String {
    r.body["error"]["message"]
        .as_str()
        .or_else(|| r.body["message"].as_str())
        .unwrap_or_else(|| panic!("no message: {}", r.text))
        .to_string()
}

/// `GET /v1/listings/{sku}`: the listing views, or None for 404.
async fn listings(s: &Client, sku: &str) -> Option<Vec<Value>> {
    let r = s.get(&format!("/v1/listings/{sku}")).await;
    if r.status == 404 {
        return None;
    }
    assert_eq!(r.status, 200, "{}", r.text);
    Some(r.body["listings"].as_array().expect("listings").clone())
}

/// Tab-separated lines, each ended by `end`.
fn tsv(rows: &[Vec<&str>], end: &str) -> String {
    rows.iter()
        .map(|r| format!("{}{end}", r.join("\t")))
        .collect()
}

// ---------------------------------------------------------- the category template

const CATEGORY_LABELS: [&str; 15] = [
    "Product Type",
    "Seller SKU",
    "Brand Name",
    "Title",
    "Product ID",
    "Product ID Type",
    "Standard Price",
    "Quantity",
    "Update Delete",
    "Condition Type",
    "Product Description",
    "Fulfillment Center ID",
    "Language",
    "Key Product Features",
    "Main Image URL",
];

const CATEGORY_ATTRIBUTES: [&str; 15] = [
    "feed_product_type",
    "item_sku",
    "brand_name",
    "item_name",
    "external_product_id",
    "external_product_id_type",
    "standard_price",
    "quantity",
    "update_delete",
    "condition_type",
    "product_description",
    "fulfillment_center_id",
    "language_value",
    "bullet_point1",
    "main_image_url",
];

/// The data rows of the category file, as a seller fills them in.
fn category_rows() -> Vec<Vec<&'static str>> {
    vec![
        // 1. A new product (its UPC has no page anywhere): created, then listed.
        vec![
            "HOME",
            "NEW-LAMP",
            "Acme",
            "Brass Desk Lamp with Linen Shade",
            UPC_LAMP,
            "UPC",
            "39.99",
            "7",
            "Update",
            "New",
            "A brass desk lamp with a linen shade.",
            "DEFAULT",
            "English",
            "Warm light",
            "https://example.com/lamp.jpg",
        ],
        // 2. Lists on the existing US page found by its UPC ("Sell yours").
        vec![
            "HOME",
            "MUG-LISTED",
            "Acme",
            "Blue Ceramic Mug 350 ml",
            UPC_MUG,
            "UPC",
            "14.50",
            "3",
            "",
            "Used - Like New",
            "",
            "",
            "",
            "",
            "",
        ],
        // 3. PartialUpdate: only the quantity of a listing that exists.
        vec![
            "",
            "PART-1",
            "",
            "",
            "",
            "",
            "",
            "9",
            "PartialUpdate",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
        // 4. Delete: the listing in this store.
        vec![
            "", "GONE-1", "", "", "", "", "", "", "Delete", "", "", "", "", "", "",
        ],
        // 5. The UPC of a CA-only page, brand written another way: a US page for the
        //    same ASIN, then listed; fulfilled by the marketplace.
        vec![
            "home",
            "CUP-US",
            "ACME inc.",
            "Red Enamel Camping Cup",
            UPC_CUP,
            "UPC",
            "8.99",
            "4",
            "Update",
            "New",
            "",
            "AMAZON_NA",
            "",
            "",
            "",
        ],
        // 6. The UPC of a CA-only page of another brand: PRODUCT_DATA_CONFLICT.
        vec![
            "HOME",
            "CHAIR-US",
            "Initech",
            "Folding Garden Chair",
            UPC_CHAIR,
            "UPC",
            "25.00",
            "1",
            "Update",
            "New",
            "",
            "",
            "",
            "",
            "",
        ],
        // 7. PartialUpdate of a SKU with no listing here: it fails alone.
        vec![
            "",
            "PART-2",
            "",
            "",
            "",
            "",
            "19.00",
            "",
            "PartialUpdate",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
        // 8. Product information but no product-id: nothing is created.
        vec![
            "HOME",
            "NOID-1",
            "Acme",
            "Copper Tea Kettle",
            "",
            "",
            "20.00",
            "1",
            "Update",
            "New",
            "",
            "",
            "",
            "",
            "",
        ],
        // 9. A new UPC, but the title of a page of the same brand here: a file cannot
        //    force a new product.
        vec![
            "HOME",
            "NEAR-MUG",
            "Acme",
            "Blue ceramic mug, 350ml",
            UPC_KETTLE,
            "UPC",
            "9.00",
            "1",
            "Update",
            "New",
            "",
            "",
            "",
            "",
            "",
        ],
    ]
}

fn category_text() -> Vec<u8> {
    let mut rows = vec![
        vec![
            "TemplateType=fptcustom",
            "Version=2020.0414",
            "TemplateSignature=SE9NRQ==",
            "The top 3 rows are for Amazon.com use only. Do not modify or delete the top 3 rows.",
        ],
        CATEGORY_LABELS.to_vec(),
        CATEGORY_ATTRIBUTES.to_vec(),
    ];
    rows.extend(category_rows());
    tsv(&rows, "\n").into_bytes()
}

/// The category workbook in the marketplace's layout: hidden sheets first, the data on
/// `Template` (three header rows), the workbook opening on `Instructions`.
fn category_xlsx() -> Vec<u8> {
    use rust_xlsxwriter::Workbook;
    let mut wb = Workbook::new();
    for (name, hidden) in [
        ("icons", true),
        ("International URLs", true),
        ("International Settings", true),
        ("Instructions", false),
        ("Images", false),
        ("Data Definitions", false),
        ("Dropdown Lists", true),
    ] {
        let ws = wb.add_worksheet();
        ws.set_name(name).expect("sheet name");
        ws.write_string(0, 0, "sku").expect("cell");
        ws.write_string(1, 0, format!("not data: {name}"))
            .expect("cell");
        if hidden {
            ws.set_hidden(true);
        }
        if name == "Instructions" {
            ws.set_active(true);
        }
    }
    let ws = wb.add_worksheet();
    ws.set_name("Template").expect("sheet name");
    ws.write_string(0, 0, "TemplateType=fptcustom")
        .expect("cell");
    ws.write_string(0, 1, "Version=2020.0414").expect("cell");
    ws.write_string(0, 2, "TemplateSignature=SE9NRQ==")
        .expect("cell");
    for (c, (label, attr)) in CATEGORY_LABELS.iter().zip(CATEGORY_ATTRIBUTES).enumerate() {
        ws.write_string(1, c as u16, *label).expect("cell");
        ws.write_string(2, c as u16, attr).expect("cell");
    }
    for (r, row) in category_rows().iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            // Quantities as numbers, as a spreadsheet keeps them.
            match (CATEGORY_ATTRIBUTES[c], v.parse::<f64>()) {
                ("quantity", Ok(n)) => ws.write_number(r as u32 + 3, c as u16, n),
                _ => ws.write_string(r as u32 + 3, c as u16, *v),
            }
            .expect("cell");
        }
    }
    for name in [
        "Data Validation",
        "International Data",
        "DropdownSizer",
        "International Translations",
    ] {
        let ws = wb.add_worksheet();
        ws.set_name(name).expect("sheet name");
        ws.write_string(0, 0, "sku").expect("cell");
        ws.write_string(1, 0, "not data").expect("cell");
        if name == "International Translations" {
            ws.set_hidden(true);
        }
    }
    wb.save_to_buffer().expect("workbook")
}

/// Sets up the pages and listings the category file meets, uploads it to US and checks
/// every row's effect and the report.
async fn category_template(app: &common::TestApp, file: Vec<u8>) {
    let s = app.new_seller("Template Goods").await;
    let mug = product(&s, "US", "Blue Ceramic Mug 350 ml", "Acme", UPC_MUG).await;
    let cup = product(&s, "CA", "Red Enamel Camping Cup", "Acme Inc", UPC_CUP).await;
    let chair = product(&s, "CA", "Folding Garden Chair", "Globex", UPC_CHAIR).await;
    for (sku, qty) in [("PART-1", 5), ("GONE-1", 2)] {
        let r = s
            .list(
                sku,
                "US",
                json!({"asin": mug, "price": usd("10.00"), "quantity": qty, "share": "unique"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    let report = upload(&s, "US", file, 9, 5).await;
    let conflict = "This product's identifiers lead to an existing product in other stores, but the information differs (brand: \"Initech\" here, \"Globex\" on the existing page); give the same product information as the existing page (see matches), or use the identifiers of this product.";
    assert_report(
        &report,
        9,
        5,
        &[
            (6, "CHAIR-US", "PRODUCT_DATA_CONFLICT", "Error", conflict),
            (
                7,
                "PART-2",
                "NOT_FOUND",
                "Error",
                "PartialUpdate changes a listing that exists, and SKU PART-2 has no listing in store US; use Update to create it.",
            ),
            (
                8,
                "NOID-1",
                "INVALID_REQUEST",
                "Error",
                "A new listing needs the product it lists against (an ASIN or product identifier).",
            ),
            (
                9,
                "NEAR-MUG",
                "POSSIBLE_MATCH",
                "Error",
                "This store has a product of the same brand with nearly the same title; list against it (its ASIN in the product-id column), or create the new product with POST /v1/catalog/items and force_new: true.",
            ),
        ],
    );

    // 1. A new ASIN with its US page, and the listing on it.
    let lamp = listings(&s, "NEW-LAMP").await.expect("NEW-LAMP");
    assert_eq!(lamp.len(), 1, "{lamp:?}");
    let lamp_asin = lamp[0]["asin"].as_str().expect("asin").to_string();
    assert!(![&mug, &cup, &chair].contains(&&lamp_asin), "a new ASIN");
    assert_eq!(
        (
            &lamp[0]["store"],
            &lamp[0]["price"],
            &lamp[0]["quantity"],
            &lamp[0]["condition"],
            &lamp[0]["fulfillment"]
        ),
        (
            &json!("US"),
            &usd("39.99"),
            &json!(7),
            &json!("new"),
            &json!("merchant")
        )
    );
    let found = s
        .get(&format!(
            "/v1/catalog/search?store=US&identifier={UPC_LAMP}"
        ))
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(
        found.text.contains(&lamp_asin) && found.text.contains("Brass Desk Lamp"),
        "{}",
        found.text
    );

    // 2. On the existing page.
    let listed = listings(&s, "MUG-LISTED").await.expect("MUG-LISTED");
    assert_eq!(
        (
            &listed[0]["asin"],
            &listed[0]["price"],
            &listed[0]["quantity"],
            &listed[0]["condition"]
        ),
        (
            &json!(mug),
            &usd("14.50"),
            &json!(3),
            &json!("used_like_new")
        )
    );

    // 3. PartialUpdate changed the quantity only.
    let part = listings(&s, "PART-1").await.expect("PART-1");
    assert_eq!(
        (&part[0]["price"], &part[0]["quantity"]),
        (&usd("10.00"), &json!(9))
    );

    // 4. Deleted.
    assert!(listings(&s, "GONE-1").await.is_none(), "GONE-1 deleted");

    // 5. The CA product's ASIN got a US page (R3 matched) and the listing.
    let cup_us = listings(&s, "CUP-US").await.expect("CUP-US");
    assert_eq!(
        (
            &cup_us[0]["asin"],
            &cup_us[0]["store"],
            &cup_us[0]["fulfillment"]
        ),
        (&json!(cup), &json!("US"), &json!("marketplace"))
    );

    // 6. Nothing of the conflicting row: no listing, no US page for the chair.
    assert!(listings(&s, "CHAIR-US").await.is_none());
    let chair_pages = s
        .get(&format!(
            "/v1/catalog/search?store=US&identifier={UPC_CHAIR}"
        ))
        .await;
    assert_eq!(chair_pages.status, 200, "{}", chair_pages.text);
    assert!(
        !chair_pages.text.contains(&chair),
        "no US page: {}",
        chair_pages.text
    );
    // 7, 8, 9. Nothing for PART-2, NOID-1, NEAR-MUG; no page for the kettle's UPC.
    for sku in ["PART-2", "NOID-1", "NEAR-MUG"] {
        assert!(listings(&s, sku).await.is_none(), "{sku}");
    }
    let kettle = s
        .get(&format!(
            "/v1/catalog/search?store=US&identifier={UPC_KETTLE}"
        ))
        .await;
    assert_eq!(kettle.status, 200, "{}", kettle.text);
    assert!(
        !kettle.text.contains("Blue ceramic mug, 350ml"),
        "{}",
        kettle.text
    );

    // The same file again: every product now has its page, every SKU its listing; the
    // conflicting row still fails alone.
    let again = upload(&s, "US", category_text(), 9, 4).await;
    let codes: Vec<&str> = again
        .lines()
        .skip(5)
        .map(|l| l.split('\t').nth(2).unwrap_or(""))
        .collect();
    assert_eq!(
        codes,
        [
            "NOT_FOUND",
            "PRODUCT_DATA_CONFLICT",
            "NOT_FOUND",
            "INVALID_REQUEST",
            "POSSIBLE_MATCH"
        ],
        "{again}"
    );
}

// ------------------------------------------------------ inventory loader templates

/// The full attribute row of the US Inventory Loader template (issue 10).
const US_INVENTORY_LOADER: &str = "sku\tproduct-id\tproduct-id-type\tprice\tminimum-seller-allowed-price\tmaximum-seller-allowed-price\titem-condition\tquantity\tadd-delete\twill-ship-internationally\texpedited-shipping\titem-note\tfulfillment-center-id\tproduct-tax-code\thandling-time\tmerchant_shipping_group_name\tbatteries_required\tare_batteries_included\tbattery_cell_composition\tbattery_type\tnumber_of_batteries\tbattery_weight\tbattery_weight_unit_of_measure\tnumber_of_lithium_ion_cells\tnumber_of_lithium_metal_cells\tlithium_battery_packaging\tlithium_battery_energy_content\tlithium_battery_energy_content_unit_of_measure\tlithium_battery_weight\tlithium_battery_weight_unit_of_measure\tsupplier_declared_dg_hz_regulation1\tsupplier_declared_dg_hz_regulation2\tsupplier_declared_dg_hz_regulation3\tsupplier_declared_dg_hz_regulation4\tsupplier_declared_dg_hz_regulation5\thazmat_united_nations_regulatory_id\tsafety_data_sheet_url\titem_weight\titem_weight_unit_of_measure\titem_volume\titem_volume_unit_of_measure\tflash_point\tghs_classification_class1\tghs_classification_class2\tghs_classification_class3";

backend_tests! {

fn conflict_other_brand(app) {
    let s = app.new_seller("Brands").await;
    let asin = product(&s, "US", "Stainless Steel Kettle 1.7 l", "Acme", UPC_KETTLE).await;
    let r = create(&s, product_body("MX", "HOME", "Hervidor de acero inoxidable", "Globex", "es", &[("UPC", UPC_KETTLE)])).await;
    r.expect(409, "PRODUCT_DATA_CONFLICT");
    let m = error_message(&r);
    assert!(m.contains("brand: \"Globex\" here, \"Acme\" on the existing page"), "{m}");
    assert!(!m.contains("product_type"), "only the brand differs: {m}");
    assert_eq!(matches(&r), [(asin.clone(), "US".to_string())]);
    // Nothing was written: MX has no page, and the right brand is matched.
    let ok = create(&s, product_body("MX", "HOME", "Hervidor de acero inoxidable", "acme", "es", &[("UPC", UPC_KETTLE)])).await;
    assert_eq!((ok.status, &ok.body["asin"], &ok.body["matched"]), (201, &json!(asin), &json!(true)), "{}", ok.text);
}

fn conflict_other_product_type(app) {
    let s = app.new_seller("Types").await;
    let asin = product(&s, "US", "Stainless Steel Kettle 1.7 l", "Acme", UPC_KETTLE).await;
    let r = create(&s, product_body("CA", "GARDEN", "Stainless Steel Kettle 1.7 l", "Acme", "en", &[("UPC", UPC_KETTLE)])).await;
    r.expect(409, "PRODUCT_DATA_CONFLICT");
    let m = error_message(&r);
    assert!(m.contains("product_type: \"GARDEN\" here, \"HOME\" on the existing page"), "{m}");
    assert!(!m.contains("brand:"), "only the product type differs: {m}");
    assert_eq!(matches(&r), [(asin.clone(), "US".to_string())]);
    // Brand and type both differ: both are named.
    let r = create(&s, product_body("CA", "GARDEN", "Stainless Steel Kettle 1.7 l", "Globex", "en", &[("UPC", UPC_KETTLE)])).await;
    r.expect(409, "PRODUCT_DATA_CONFLICT");
    let m = error_message(&r);
    assert!(m.contains("brand:") && m.contains("product_type:"), "{m}");
    // The product type is compared without regard to case.
    let ok = create(&s, product_body("CA", "home", "Stainless Steel Kettle 1.7 l", "Acme", "en", &[("UPC", UPC_KETTLE)])).await;
    assert_eq!((ok.status, &ok.body["asin"], &ok.body["matched"]), (201, &json!(asin), &json!(true)), "{}", ok.text);
}

fn conflict_identifiers_of_two_asins(app) {
    let s = app.new_seller("Two products").await;
    let kettle = product(&s, "US", "Stainless Steel Kettle 1.7 l", "Acme", UPC_KETTLE).await;
    let mug = product(&s, "US", "Blue Ceramic Mug 350 ml", "Acme", UPC_MUG).await;
    let mug_ca = product(&s, "CA", "Blue Ceramic Mug 350 ml", "Acme", UPC_MUG).await;
    assert_eq!(mug_ca, mug);
    let r = create(&s, product_body("MX", "HOME", "Hervidor de acero inoxidable", "Acme", "es", &[("UPC", UPC_KETTLE), ("UPC", UPC_MUG)])).await;
    r.expect(409, "PRODUCT_DATA_CONFLICT");
    let m = error_message(&r);
    assert!(m.contains("identifiers: they lead to 2 different ASINs"), "{m}");
    let mut want = vec![
        (kettle.clone(), "US".to_string()),
        (mug.clone(), "CA".to_string()),
        (mug.clone(), "US".to_string()),
    ];
    want.sort();
    assert_eq!(matches(&r), want, "every page an identifier leads to");
    assert_eq!(r.body["error"]["field"].as_str().or(r.body["field"].as_str()), Some("identifiers"), "{}", r.text);
}

fn normalised_brand_is_the_same_brand(app) {
    let s = app.new_seller("Normalised").await;
    let asin = product(&s, "US", "Stainless Steel Kettle 1.7 l", "ACME inc.", UPC_KETTLE).await;
    let ca = create(&s, product_body("CA", "HOME", "Stainless Steel Kettle 1.7 l", "Acme Inc", "en", &[("UPC", UPC_KETTLE)])).await;
    assert_eq!((ca.status, &ca.body["asin"], &ca.body["matched"]), (201, &json!(asin), &json!(true)), "{}", ca.text);
    // Accents, spaces and punctuation do not count either.
    let mx = create(&s, product_body("MX", "Home", "Hervidor de acero inoxidable", "Ácme-Inc", "es", &[("UPC", UPC_KETTLE)])).await;
    assert_eq!((mx.status, &mx.body["asin"], &mx.body["matched"]), (201, &json!(asin), &json!(true)), "{}", mx.text);
}

fn category_template_text(app) {
    category_template(&app, category_text()).await;
}

fn category_template_xlsx(app) {
    category_template(&app, category_xlsx()).await;
}

fn inventory_loader_japanese_labels_utf8(app) {
    let s = app.new_seller("Nihon").await;
    let mug = product(&s, "US", "Blue Ceramic Mug 350 ml", "Acme", UPC_MUG).await;
    let file = tsv(
        &[
            vec!["TemplateType=InventoryLoader", "Version=2020.0805"],
            vec!["商品管理番号", "商品コード(JANコード等)", "商品コードのタイプ", "販売価格", "商品のコンディション", "在庫数", "登録/削除"],
            vec!["sku", "product-id", "product-id-type", "price", "item-condition", "quantity", "add-delete"],
            vec!["JP-1", UPC_MUG, "3", "11.00", "11", "2", "a"],
            vec!["JP-2", UPC_MUG, "3", "12.00", "11", "many", "a"],
            vec!["JP-3", &mug, "1", "13.00", "1", "1", ""],
        ],
        "\n",
    );
    let report = upload(&s, "US", file.into_bytes(), 3, 2).await;
    assert_report(&report, 3, 2, &[(2, "JP-2", "INVALID_QUANTITY", "Error", message_of(&report, "JP-2"))]);
    let jp1 = listings(&s, "JP-1").await.expect("JP-1");
    assert_eq!((&jp1[0]["asin"], &jp1[0]["quantity"]), (&json!(mug), &json!(2)));
    let jp3 = listings(&s, "JP-3").await.expect("JP-3");
    assert_eq!(jp3[0]["condition"], "used_like_new");
}

fn inventory_loader_english_labels_windows_1252_crlf(app) {
    let s = app.new_seller("Latin").await;
    let mug = product(&s, "US", "Blue Ceramic Mug 350 ml", "Acme", UPC_MUG).await;
    let attrs: Vec<&str> = US_INVENTORY_LOADER.split('\t').collect();
    let mut labels = vec!["SKU", "Product ID", "Product ID Type", "Price", "Minimum Seller Allowed Price", "Maximum Seller Allowed Price", "Item Condition", "Quantity", "Add Delete"];
    labels.resize(attrs.len(), "");
    let row = |sku: &'static str, qty: &'static str, note: &'static str| {
        let mut r = vec![""; attrs.len()];
        r[0] = sku;
        r[1] = UPC_MUG;
        r[2] = "3";
        r[3] = "15.00";
        r[6] = "11";
        r[7] = qty;
        r[8] = "a";
        r[11] = note;
        r[12] = "DEFAULT";
        r[14] = "2";
        r
    };
    let text = tsv(
        &[
            vec!["TemplateType=InventoryLoader", "Version=2020.0805"],
            labels,
            attrs.clone(),
            row("EN-1", "4", "CAF\u{c9} mug, boxed"),
            row("EN-2", "-1", ""),
            row("EN-3", "6", "na\u{ef}ve \u{2013} gift"),
        ],
        "\r\n",
    );
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
    assert!(!unmappable);
    assert!(bytes.contains(&0xC9), "Windows-1252 bytes");
    let report = upload(&s, "US", bytes.into_owned(), 3, 2).await;
    // The full attribute row: no UNKNOWN_COLUMN; record 1 is the first row after it.
    assert_report(&report, 3, 2, &[(2, "EN-2", "INVALID_QUANTITY", "Error", message_of(&report, "EN-2"))]);
    for (sku, qty) in [("EN-1", 4), ("EN-3", 6)] {
        let v = listings(&s, sku).await.expect(sku);
        assert_eq!((&v[0]["asin"], &v[0]["quantity"], &v[0]["price"]), (&json!(mug), &json!(qty), &usd("15.00")), "{sku}");
    }

    // A column no template has: one UNKNOWN_COLUMN warning, the rows applied.
    let text = tsv(
        &[
            vec!["TemplateType=InventoryLoader", "Version=2020.0805"],
            vec!["SKU", "Price", "My Notes"],
            vec!["sku", "price", "my-notes"],
            vec!["EN-1", "16.00", "x"],
        ],
        "\r\n",
    );
    let report = upload(&s, "US", text.into_bytes(), 1, 1).await;
    assert_report(&report, 1, 1, &[(0, "", "UNKNOWN_COLUMN", "Warning", "Unknown columns were ignored: my-notes.")]);
}

fn price_and_quantity_template(app) {
    let s = app.new_seller("Prices").await;
    let mug = product(&s, "US", "Blue Ceramic Mug 350 ml", "Acme", UPC_MUG).await;
    let r = s.list("PQ-1", "US", json!({"asin": mug, "price": usd("10.00"), "quantity": 1})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The attribute row has an empty cell, as the marketplace's does.
    let text = tsv(
        &[
            vec!["TemplateType=PriceInventory", "Version=2018.0924"],
            vec!["SKU", "Price", "", "Quantity", "Currency", "Sale Price", "Sale Start Date", "Sale End Date", "Handling Time", "Fulfillment Channel"],
            vec!["sku", "price", "", "quantity", "currency", "sale-price", "sale-start-date", "sale-end-date", "leadtime-to-ship", "fulfillment-channel"],
            vec!["PQ-1", "12.50", "", "8", "USD", "", "", "", "2", ""],
            vec!["PQ-2", "", "", "x", "USD", "", "", "", "", ""],
        ],
        "\r\n",
    );
    let report = upload(&s, "US", text.into_bytes(), 2, 1).await;
    assert_report(&report, 2, 1, &[(2, "PQ-2", "INVALID_QUANTITY", "Error", message_of(&report, "PQ-2"))]);
    let v = listings(&s, "PQ-1").await.expect("PQ-1");
    assert_eq!((&v[0]["price"], &v[0]["quantity"]), (&usd("12.50"), &json!(8)));
}

}
