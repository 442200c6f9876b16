//! The marketplace's own API (SPEC 8) through the real server, on SQLite and PostgreSQL:
//! tokens, marketplace participations, Listings Items and Catalog Items, read back
//! through `/v1` too. `spapi_clients` runs the unmodified Python client libraries.

mod common;

use common::{Client, TestApp, upc};
use serde_json::{Value, json};

const US: &str = "ATVPDKIKX0DER";
const CA: &str = "A2EUQ1WTGCTBG2";
const MX: &str = "A1AM78C64UM0Y8";

/// A seller seen through SP-API: its access token and seller id.
struct Sp {
    http: reqwest::Client,
    base: String,
    access: String,
    seller_id: String,
    v1: Client,
}

struct R {
    status: u16,
    body: Value,
}

impl Sp {
    async fn new(app: &TestApp, name: &str) -> Sp {
        let v1 = app.new_seller(name).await;
        let refresh = v1.token.clone().unwrap_or_default();
        // Form-encoded, with the token's characters sent as they are.
        let r = app
            .http
            .post(format!("{}/auth/o2/token", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&refresh_token={refresh}&client_id=x&client_secret=y"
            ))
            .send()
            .await
            .expect("token request");
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.expect("token json");
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 3600);
        let access = body["access_token"].as_str().unwrap_or_default().to_owned();
        Sp {
            http: app.http.clone(),
            base: app.base.clone(),
            access,
            seller_id: v1.seller_id.as_str().unwrap_or_default().to_owned(),
            v1,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> R {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-amz-access-token", &self.access)
            // What python-amazon-sp-api sends: a host name cut from another URL.
            .header("host", "ellingpartnerapi-na.amazon.com");
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(status < 500, "{status} {path}: {text}");
        R { status, body }
    }

    fn item(&self, sku: &str) -> String {
        format!("/listings/2021-08-01/items/{}/{sku}", self.seller_id)
    }

    async fn get(&self, sku: &str, mp: &str) -> R {
        self.send(
            reqwest::Method::GET,
            &format!(
                "{}?marketplaceIds={mp}&includedData=summaries,attributes,offers,fulfillmentAvailability,issues",
                self.item(sku)
            ),
            None,
        )
        .await
    }

    async fn put(&self, sku: &str, mp: &str, query: &str, body: &str) -> R {
        self.send(
            reqwest::Method::PUT,
            &format!("{}?marketplaceIds={mp}{query}", self.item(sku)),
            Some(body),
        )
        .await
    }
}

/// A put body offering an existing ASIN, the price written as a JSON number.
fn offer(asin: &str, mp: &str, currency: &str, price: &str, quantity: Option<i64>) -> String {
    let fa = match quantity {
        Some(q) => format!(
            r#","fulfillment_availability":[{{"fulfillment_channel_code":"DEFAULT","quantity":{q}}}]"#
        ),
        None => String::new(),
    };
    format!(
        r#"{{"productType":"PRODUCT","requirements":"LISTING_OFFER_ONLY","marketplaceIds":["{mp}"],"attributes":{{
        "merchant_suggested_asin":[{{"value":"{asin}","marketplace_id":"{mp}"}}],
        "condition_type":[{{"value":"new_new","marketplace_id":"{mp}"}}],
        "purchasable_offer":[{{"marketplace_id":"{mp}","currency":"{currency}","our_price":[{{"schedule":[{{"value_with_tax":{price}}}]}}]}}]{fa}}}}}"#
    )
}

backend_tests! {
    fn tokens_and_participations(app) {
        let sp = Sp::new(&app, "token-seller").await;
        // JSON token body; an unknown refresh token is invalid_grant.
        let r = app.http.post(format!("{}/auth/o2/token", app.base))
            .json(&json!({"grant_type": "refresh_token", "refresh_token": "Atzr|nope", "client_id": "a", "client_secret": "b"}))
            .send().await.expect("token");
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "invalid_grant");
        let r = app.http.post(format!("{}/auth/o2/token", app.base))
            .json(&json!({"grant_type": "refresh_token", "refresh_token": sp.v1.token, "extra": 1}))
            .send().await.expect("token");
        assert_eq!(r.status(), 200);

        let r = sp.send(reqwest::Method::GET, "/sellers/v1/marketplaceParticipations", None).await;
        assert_eq!(r.status, 200);
        let ids: Vec<&str> = r.body["payload"].as_array().map(|a| a.iter().filter_map(|p| p["marketplace"]["id"].as_str()).collect()).unwrap_or_default();
        assert_eq!(ids, vec![US, CA, MX]);

        // Missing, unknown and expired tokens: 403 Unauthorized.
        let r = app.http.get(format!("{}/sellers/v1/marketplaceParticipations", app.base)).send().await.expect("get");
        assert_eq!(r.status(), 403);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["errors"][0]["code"], "Unauthorized");
        let r = app.http.get(format!("{}/sellers/v1/marketplaceParticipations", app.base))
            .header("x-amz-access-token", "Atza|made-up").send().await.expect("get");
        assert_eq!(r.status(), 403);
        app.clock.advance(time::Duration::seconds(3601));
        let r = sp.send(reqwest::Method::GET, "/sellers/v1/marketplaceParticipations", None).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.body["errors"][0]["code"], "Unauthorized");
    }

    fn listings_items_end_to_end(app) {
        let sp = Sp::new(&app, "sp-seller").await;
        let other = Sp::new(&app, "other-seller").await;
        let asin = sp.v1.product_everywhere(&upc(9001)).await;

        // An offer in US on an existing ASIN, price as a JSON number.
        let r = sp.put("MUG-1", US, "", &offer(&asin, US, "USD", "19.99", Some(7))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["status"], "ACCEPTED", "{}", r.body);
        let view = sp.v1.view("MUG-1", "US").await;
        assert_eq!(view["price"]["amount"], "19.99");
        assert_eq!(view["quantity"], 7);

        let r = sp.get("MUG-1", US).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["summaries"][0]["status"], json!(["BUYABLE", "DISCOVERABLE"]));
        assert_eq!(r.body["summaries"][0]["asin"], asin.as_str());
        assert_eq!(r.body["offers"][0]["price"]["amount"], "19.99");
        assert_eq!(r.body["fulfillmentAvailability"][0]["quantity"], 7);
        assert_eq!(r.body["attributes"]["condition_type"][0]["value"], "new_new");

        // The same SKU in CA joins the shared pool; a quantity given then sets the pool.
        let r = sp.put("MUG-1", CA, "", &offer(&asin, CA, "CAD", "24.50", Some(12))).await;
        assert_eq!(r.body["status"], "ACCEPTED", "{}", r.body);
        assert_eq!(sp.v1.quantity("MUG-1", "US").await, 12);
        let ca = sp.v1.view("MUG-1", "CA").await;
        assert_eq!(ca["share"], "existing");
        assert_eq!(ca["price"]["amount"], "24.50");
        assert_eq!(sp.get("MUG-1", US).await.body["fulfillmentAvailability"][0]["quantity"], 12);

        // An order in MX... first list MX, then an order there lowers what US shows.
        let r = sp.put("MUG-1", MX, "", &offer(&asin, MX, "MXN", "350", None)).await;
        assert_eq!(r.body["status"], "ACCEPTED", "{}", r.body);
        let o = app.order("MX", "o-1", &[(&sp.v1, "MUG-1", 2)]).await;
        assert_eq!(o.status, 201, "{}", o.body);
        assert_eq!(sp.get("MUG-1", US).await.body["fulfillmentAvailability"][0]["quantity"], 10);

        // One patch changes the prices of US and CA.
        let patch = r#"{"productType":"PRODUCT","patches":[{"op":"replace","path":"/attributes/purchasable_offer","value":[
            {"marketplace_id":"ATVPDKIKX0DER","currency":"USD","our_price":[{"schedule":[{"value_with_tax":21.10}]}]},
            {"marketplace_id":"A2EUQ1WTGCTBG2","currency":"CAD","our_price":[{"schedule":[{"value_with_tax":0.3e2}]}]}]}]}"#;
        let r = sp.send(reqwest::Method::PATCH,
            &format!("{}?marketplaceIds={US},{CA}", sp.item("MUG-1")), Some(patch)).await;
        assert_eq!(r.body["status"], "INVALID", "0.3e2 is not a price of two decimals: {}", r.body);
        assert_eq!(r.body["issues"][0]["code"], "INVALID_PRICE");
        assert_eq!(r.body["issues"][0]["attributeNames"], json!(["purchasable_offer"]));
        let patch = patch.replace("0.3e2", "30.05");
        let r = sp.send(reqwest::Method::PATCH,
            &format!("{}?marketplaceIds={US}&marketplaceIds={CA}", sp.item("MUG-1")), Some(&patch)).await;
        assert_eq!(r.body["status"], "ACCEPTED", "{}", r.body);
        assert_eq!(sp.v1.view("MUG-1", "US").await["price"]["amount"], "21.10");
        assert_eq!(sp.v1.view("MUG-1", "CA").await["price"]["amount"], "30.05");

        // VALIDATION_PREVIEW judges without changing.
        let r = sp.put("MUG-1", US, "&mode=VALIDATION_PREVIEW", &offer(&asin, US, "USD", "5.55", Some(1))).await;
        assert_eq!(r.body["status"], "VALID", "{}", r.body);
        assert_eq!(sp.v1.view("MUG-1", "US").await["price"]["amount"], "21.10");
        let r = sp.put("NEW-SKU", US, "&mode=VALIDATION_PREVIEW", &offer(&asin, US, "USD", "5.55", Some(1))).await;
        assert_eq!(r.body["status"], "VALID", "{}", r.body);
        assert_eq!(sp.get("NEW-SKU", US).await.status, 404);
        let r = sp.put("MUG-1", US, "&mode=VALIDATION_PREVIEW", &offer("B0ZZZZZZZZ", US, "USD", "5.55", None)).await;
        assert_eq!(r.body["status"], "INVALID");

        // A refused put: INVALID with the SPEC code.
        let r = sp.put("MUG-1", US, "", &offer(&asin, US, "CAD", "5.00", None)).await;
        assert_eq!(r.body["status"], "INVALID");
        assert_eq!(r.body["issues"][0]["code"], "CURRENCY_MISMATCH");
        assert_eq!(r.body["issues"][0]["severity"], "ERROR");

        // Search listings, and the wrong seller id.
        let r = sp.send(reqwest::Method::GET,
            &format!("/listings/2021-08-01/items/{}?marketplaceIds={US}&includedData=summaries,offers", sp.seller_id), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["items"][0]["sku"], "MUG-1");
        let r = other.send(reqwest::Method::GET,
            &format!("/listings/2021-08-01/items/{}/MUG-1?marketplaceIds={US}", sp.seller_id), None).await;
        assert_eq!(r.status, 403, "another seller's path");
        assert_eq!(r.body["errors"][0]["code"], "Unauthorized");
        let r = other.get("MUG-1", US).await;
        assert_eq!(r.status, 404, "R22: another seller's SKU is not found");
        assert_eq!(r.body["errors"][0]["code"], "NotFound");

        // Delete in one store leaves the others; then everywhere.
        let r = sp.send(reqwest::Method::DELETE,
            &format!("{}?marketplaceIds={CA}&MarketplaceIds={CA}&marketplace_ids={CA}", sp.item("MUG-1")), None).await;
        assert_eq!(r.body["status"], "ACCEPTED", "{}", r.body);
        assert_eq!(sp.get("MUG-1", CA).await.status, 404);
        assert_eq!(sp.get("MUG-1", US).await.status, 200);
        let r = sp.send(reqwest::Method::DELETE,
            &format!("{}?marketplaceIds={US},{MX}", sp.item("MUG-1")), None).await;
        assert_eq!(r.body["status"], "ACCEPTED", "{}", r.body);
        assert_eq!(sp.v1.get("/v1/listings/MUG-1").await.status, 404);
    }

    fn new_product_and_catalog(app) {
        let sp = Sp::new(&app, "catalog-seller").await;
        let code = upc(4242);
        let body = format!(r#"{{"productType":"HOME","requirements":"LISTING","attributes":{{
            "item_name":[{{"value":"Ceramic Coffee Mug With Lid","language_tag":"en_US","marketplace_id":"{US}"}}],
            "brand":[{{"value":"Potters"}}],
            "product_description":[{{"value":"A mug for coffee."}}],
            "externally_assigned_product_identifier":[{{"type":"upc","value":"{code}"}}],
            "condition_type":[{{"value":"new_new"}}],
            "purchasable_offer":[{{"currency":"USD","our_price":[{{"schedule":[{{"value_with_tax":12}}]}}]}}],
            "fulfillment_availability":[{{"fulfillment_channel_code":"DEFAULT","quantity":3}}]}}}}"#);
        let r = sp.put("NEW-1", US, "", &body).await;
        assert_eq!(r.body["status"], "ACCEPTED", "{}", r.body);
        let asin = r.body["identifiers"][0]["asin"].as_str().unwrap_or_default().to_owned();
        assert_eq!(sp.v1.view("NEW-1", "US").await["price"]["amount"], "12.00");

        let r = sp.send(reqwest::Method::GET,
            &format!("/catalog/2022-04-01/items?marketplaceIds={US}&identifiers={code}&identifiersType=UPC&includedData=summaries,identifiers,attributes,productTypes"), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["numberOfResults"], 1);
        assert_eq!(r.body["items"][0]["asin"], asin.as_str());
        assert_eq!(r.body["items"][0]["summaries"][0]["itemName"], "Ceramic Coffee Mug With Lid");
        assert_eq!(r.body["items"][0]["productTypes"][0]["productType"], "HOME");
        let r = sp.send(reqwest::Method::GET,
            &format!("/catalog/2022-04-01/items?marketplaceIds={US}&keywords=coffee%20mug"), None).await;
        assert_eq!(r.body["items"][0]["asin"], asin.as_str(), "{}", r.body);
        let r = sp.send(reqwest::Method::GET,
            &format!("/catalog/2022-04-01/items/{asin}?marketplaceIds={US}&includedData=summaries,attributes"), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["attributes"]["brand"][0]["value"], "Potters");
        let r = sp.send(reqwest::Method::GET,
            &format!("/catalog/2022-04-01/items/{asin}?marketplaceIds={MX}"), None).await;
        assert_eq!(r.status, 404);
        let r = sp.send(reqwest::Method::GET, "/catalog/2022-04-01/items?marketplaceIds=NOPE&keywords=x", None).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["errors"][0]["code"], "InvalidInput");
        // Malformed bodies are 400s in the marketplace's shape, never 500.
        let r = sp.put("NEW-1", US, "", "{not json").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["errors"][0]["code"], "InvalidInput");
    }
}

/// Feeds 2021-06-30: flat files, an upload of SPEC 5 underneath.
mod feeds {
    use super::*;

    /// Rows of the feed that keeps the upload worker busy while another one waits.
    const BUSY_ROWS: usize = 20_000;

    /// createFeedDocument, the upload (once), createFeed: the feed id.
    async fn create_feed(sp: &Sp, file: &str, feed_type: &str) -> String {
        let r = sp
            .send(
                reqwest::Method::POST,
                "/feeds/2021-06-30/documents",
                Some(r#"{"contentType":"text/tab-separated-values; charset=UTF-8"}"#),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let url = r.body["url"].as_str().unwrap_or_default().to_owned();
        assert!(
            url.starts_with(&sp.base),
            "the server's own address, not the Host: {url}"
        );
        let doc = r.body["feedDocumentId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // No token: the URL is the capability.
        let put = sp
            .http
            .put(&url)
            .body(file.to_owned())
            .send()
            .await
            .expect("upload");
        assert_eq!(put.status(), 200);
        let again = sp
            .http
            .put(&url)
            .body(file.to_owned())
            .send()
            .await
            .expect("upload");
        assert_eq!(again.status(), 403, "an upload URL is used once");
        let body = format!(
            r#"{{"feedType":"{feed_type}","marketplaceIds":["{US}"],"inputFeedDocumentId":"{doc}","feedOptions":{{}},"extra":1}}"#
        );
        let r = sp
            .send(
                reqwest::Method::POST,
                "/feeds/2021-06-30/feeds",
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        r.body["feedId"].as_str().unwrap_or_default().to_owned()
    }

    /// getFeed until it is DONE or FATAL.
    async fn wait_feed(sp: &Sp, feed: &str) -> R {
        let mut last = R {
            status: 0,
            body: Value::Null,
        };
        for _ in 0..3000 {
            last = sp
                .send(
                    reqwest::Method::GET,
                    &format!("/feeds/2021-06-30/feeds/{feed}"),
                    None,
                )
                .await;
            if matches!(
                last.body["processingStatus"].as_str(),
                Some("DONE" | "FATAL")
            ) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        last
    }

    async fn feed_of(sp: &Sp, file: &str, feed_type: &str) -> (String, R) {
        let feed = create_feed(sp, file, feed_type).await;
        let last = wait_feed(sp, &feed).await;
        (feed, last)
    }

    backend_tests! {
        fn flat_file_feeds(app) {
            let sp = Sp::new(&app, "feed-seller").await;
            let asin = sp.v1.product_everywhere(&upc(5151)).await;
            let file = format!(
                "sku\tproduct-id\tproduct-id-type\tprice\tquantity\titem-condition\nFEED-1\t{asin}\tASIN\t9.99\t3\t11\nBAD-1\tB0ZZZZZZZZ\tASIN\t1.00\t1\t11\n"
            );
            let (feed, done) = feed_of(&sp, &file, "POST_FLAT_FILE_INVLOADER_DATA").await;
            assert_eq!(done.body["processingStatus"], "DONE", "{}", done.body);
            assert_eq!(done.body["feedType"], "POST_FLAT_FILE_INVLOADER_DATA");
            assert_eq!(sp.v1.view("FEED-1", "US").await["price"]["amount"], "9.99");
            let result = done.body["resultFeedDocumentId"].as_str().unwrap_or_default().to_owned();
            let r = sp.send(reqwest::Method::GET, &format!("/feeds/2021-06-30/documents/{result}"), None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let url = r.body["url"].as_str().unwrap_or_default().to_owned();
            let report = sp.http.get(&url).send().await.expect("download").text().await.unwrap_or_default();
            assert!(report.contains("BAD-1") && report.contains("ASIN_NOT_IN_STORE"), "{report}");
            assert!(!report.contains("FEED-1\t"), "the applied row has no error line: {report}");

            let r = sp.send(reqwest::Method::GET, "/feeds/2021-06-30/feeds?feedTypes=POST_FLAT_FILE_INVLOADER_DATA&pageSize=5", None).await;
            assert_eq!(r.body["feeds"][0]["feedId"], feed.as_str(), "{}", r.body);
            let r = sp.send(reqwest::Method::DELETE, &format!("/feeds/2021-06-30/feeds/{feed}"), None).await;
            assert_eq!(r.status, 400, "a DONE feed cannot be cancelled");
            assert_eq!(r.body["errors"][0]["code"], "InvalidInput");

            let (_, done) = feed_of(&sp, "sku\tprice\tquantity\nFEED-1\t8.00\t1\nNOT-LISTED\t5.00\t1\n", "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA").await;
            assert_eq!(done.body["processingStatus"], "DONE", "{}", done.body);
            assert_eq!(sp.v1.view("FEED-1", "US").await["price"]["amount"], "8.00");
        // Modify only: a SKU not listed in the store fails with NOT_FOUND.
        let result = done.body["resultFeedDocumentId"].as_str().unwrap_or_default().to_owned();
        let r = sp.send(reqwest::Method::GET, &format!("/feeds/2021-06-30/documents/{result}"), None).await;
        let url = r.body["url"].as_str().unwrap_or_default().to_owned();
        let report = sp.http.get(&url).send().await.expect("download").text().await.unwrap_or_default();
        assert!(report.contains("NOT-LISTED") && report.contains("NOT_FOUND"), "{report}");
        assert_eq!(sp.v1.get("/v1/listings/NOT-LISTED").await.status, 404);

            // JSON_LISTINGS_FEED: messages in order, one row each; the JSON report.
            let json_feed = format!(
                r#"{{"header":{{"sellerId":"{}","version":"2.0","issueLocale":"en_US"}},"messages":[
                {{"messageId":1,"sku":"J-1","operationType":"UPDATE","productType":"PRODUCT","requirements":"LISTING_OFFER_ONLY","attributes":{{
                    "merchant_suggested_asin":[{{"value":"{asin}"}}],"condition_type":[{{"value":"new_new"}}],
                    "purchasable_offer":[{{"currency":"USD","our_price":[{{"schedule":[{{"value_with_tax":7.77}}]}}]}}],
                    "fulfillment_availability":[{{"fulfillment_channel_code":"DEFAULT","quantity":4}}]}}}},
                {{"messageId":2,"sku":"J-1","operationType":"PATCH","productType":"PRODUCT","patches":[{{"op":"replace","path":"/attributes/purchasable_offer","value":[{{"currency":"USD","our_price":[{{"schedule":[{{"value_with_tax":7.10}}]}}]}}]}}]}},
                {{"messageId":3,"sku":"J-2","operationType":"UPDATE","productType":"PRODUCT","attributes":{{
                    "merchant_suggested_asin":[{{"value":"{asin}"}}],
                    "purchasable_offer":[{{"currency":"USD","our_price":[{{"schedule":[{{"value_with_tax":1.5}}]}}]}}]}}}},
                {{"messageId":4,"sku":"J-2","operationType":"DELETE"}},
                {{"messageId":5,"sku":"J-3","operationType":"FROBNICATE"}},
                {{"messageId":6,"sku":"J-4","operationType":"PARTIAL_UPDATE","productType":"PRODUCT","attributes":{{"purchasable_offer":[{{"currency":"USD","our_price":[{{"schedule":[{{"value_with_tax":2}}]}}]}}]}}}}
                ]}}"#,
                sp.seller_id
            );
            let (jfeed, done) = feed_of(&sp, &json_feed, "JSON_LISTINGS_FEED").await;
            assert_eq!(done.body["processingStatus"], "DONE", "{}", done.body);
            assert_eq!(done.body["feedType"], "JSON_LISTINGS_FEED");
            let view = sp.v1.view("J-1", "US").await;
            assert_eq!(view["price"]["amount"], "7.10", "{view}");
            assert_eq!(view["quantity"], 4);
            assert_eq!(sp.v1.get("/v1/listings/J-2").await.status, 404, "updated, then deleted, in order");
            let result = done.body["resultFeedDocumentId"].as_str().unwrap_or_default().to_owned();
            let r = sp.send(reqwest::Method::GET, &format!("/feeds/2021-06-30/documents/{result}"), None).await;
            let url = r.body["url"].as_str().unwrap_or_default().to_owned();
            let report: Value = sp.http.get(&url).send().await.expect("download").json().await.expect("json report");
            assert_eq!(report["header"]["feedId"], jfeed.as_str(), "{report}");
            assert_eq!(report["summary"]["messagesProcessed"], 6, "{report}");
            assert_eq!(report["summary"]["messagesAccepted"], 4, "{report}");
            assert_eq!(report["summary"]["messagesInvalid"], 2, "{report}");
            let issues: Vec<(i64, String)> = report["issues"].as_array().map(|a| a.iter().map(|i| (i["messageId"].as_i64().unwrap_or(0), i["code"].as_str().unwrap_or("").to_owned())).collect()).unwrap_or_default();
            assert_eq!(issues, vec![(5, "INVALID_REQUEST".to_owned()), (6, "NOT_FOUND".to_owned())], "{report}");

            // cancelFeed while IN_QUEUE: a big feed keeps the one upload worker busy.
            let mut big = String::from("sku\tproduct-id\tproduct-id-type\tprice\tquantity\n");
            for i in 0..BUSY_ROWS {
                big.push_str(&format!("BULK-{i}\t{asin}\tASIN\t2.00\t1\n"));
            }
            let first = create_feed(&sp, &big, "POST_FLAT_FILE_INVLOADER_DATA").await;
            let late = format!("sku\tproduct-id\tproduct-id-type\tprice\nLATE-1\t{asin}\tASIN\t3.00\n");
            let queued = create_feed(&sp, &late, "POST_FLAT_FILE_INVLOADER_DATA").await;
            let r = sp.send(reqwest::Method::DELETE, &format!("/feeds/2021-06-30/feeds/{queued}"), None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let r = sp.send(reqwest::Method::GET, &format!("/feeds/2021-06-30/feeds/{queued}"), None).await;
            assert_eq!(r.body["processingStatus"], "CANCELLED", "{}", r.body);
            let done = wait_feed(&sp, &first).await;
            assert_eq!(done.body["processingStatus"], "DONE", "{}", done.body);
            let r = sp.send(reqwest::Method::GET, &format!("/feeds/2021-06-30/feeds/{queued}"), None).await;
            assert_eq!(r.body["processingStatus"], "CANCELLED", "{}", r.body);
            assert_eq!(sp.v1.get("/v1/listings/LATE-1").await.status, 404, "a cancelled feed applies nothing");

            let r = sp.http.put(format!("{}/spapi/feed-documents/up_nope", sp.base)).body("x").send().await.expect("put");
            assert_eq!(r.status(), 403);
            let r = sp.send(reqwest::Method::GET, "/feeds/2021-06-30/feeds/upl_nope", None).await;
            assert_eq!(r.status, 404);
            let r = sp.send(reqwest::Method::POST, "/feeds/2021-06-30/feeds", Some(r#"{"feedType":"JSON_LISTINGS_FEED","marketplaceIds":["ATVPDKIKX0DER"],"inputFeedDocumentId":"x"}"#)).await;
            assert_eq!(r.status, 400);
        }
    }
}

/// The unmodified Python client libraries (pinned in `spapi_clients/requirements.txt`)
/// against the real server: installed once into a virtual environment under `target/`;
/// a failed install fails the test.
mod real_clients {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// The script takes under 10 s.
    const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spapi_clients")
    }

    async fn run(cmd: &mut tokio::process::Command, limit: Duration, what: &str) -> String {
        let (ok, text) = common::python::run(cmd, limit, what).await;
        assert!(ok, "{what} failed:\n{text}");
        text
    }

    /// The virtual environment's python, made (or remade when the requirements changed).
    async fn venv() -> PathBuf {
        common::python::venv("spapi-venv", &dir().join("requirements.txt"))
            .await
            .join("bin/python")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_clients_end_to_end() {
        let python = venv().await;
        let Some(app) = TestApp::spawn(common::Backend::Sqlite, common::default_region()).await
        else {
            return;
        };
        let seller = app.new_seller("python-seller").await;
        let asin = seller.product_everywhere(&upc(7007)).await;
        let out = run(
            tokio::process::Command::new(&python)
                .arg(dir().join("test_clients.py"))
                .arg(&app.base)
                .arg(seller.token.clone().unwrap_or_default())
                .arg(seller.seller_id.as_str().unwrap_or_default())
                .arg(&asin)
                .arg(common::OPERATOR_TOKEN),
            SCRIPT_TIMEOUT,
            "test_clients.py",
        )
        .await;
        println!("{out}");
        assert!(out.contains("ALL OK"), "{out}");
        app.assert_healthy().await;
    }
}

/// Property: a price given as any JSON number with at most two decimals comes back as
/// exactly that decimal through `/v1` (never through `f64`).
mod price_property {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// Cases per run: each is a PUT and a GET through the real server.
    const CASES: u32 = 300;

    /// `units.cents` with 0, 1 or 2 decimals as written, and the two-decimal form.
    fn price() -> impl Strategy<Value = (String, String)> {
        (0u64..100_000_000u64, 0u64..100, 0usize..3).prop_filter_map(
            "a price is above zero",
            |(units, cents, decimals)| {
                let (text, cents) = match decimals {
                    0 => (units.to_string(), 0),
                    1 => (format!("{units}.{}", cents / 10), cents / 10 * 10),
                    _ => (format!("{units}.{cents:02}"), cents),
                };
                (units > 0 || cents > 0).then(|| (text, format!("{units}.{cents:02}")))
            },
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn json_numbers_are_read_as_their_decimal() {
        let Some(app) = TestApp::spawn(common::Backend::Sqlite, common::default_region()).await
        else {
            return;
        };
        let sp = Sp::new(&app, "price-seller").await;
        let asin = sp.v1.product_everywhere(&upc(3131)).await;
        let handle = tokio::runtime::Handle::current();
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            ..Config::default()
        });
        let result = tokio::task::block_in_place(|| {
            runner.run(&price(), |(text, expected)| {
                let got = handle.block_on(async {
                    let r = sp
                        .put("P-1", US, "", &offer(&asin, US, "USD", &text, None))
                        .await;
                    assert_eq!(r.body["status"], "ACCEPTED", "{text}: {}", r.body);
                    sp.v1.view("P-1", "US").await["price"]["amount"].clone()
                });
                prop_assert_eq!(got, json!(expected), "value_with_tax {}", text);
                Ok(())
            })
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}

/// Malformed requests of every kind answer 4xx in the marketplace's shape, never 5xx.
mod malformed {
    use super::*;

    backend_tests! {
        fn no_request_makes_a_5xx(app) {
            let sp = Sp::new(&app, "fuzz-seller").await;
            let asin = sp.v1.product_everywhere(&upc(6161)).await;
            let item = sp.item("FZ-1");
            let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
            let long_sku = "S".repeat(41);
            let put_bodies = [
                "[]".to_owned(),
                "".to_owned(),
                deep.clone(),
                r#"{"attributes":5}"#.to_owned(),
                r#"{"attributes":{"purchasable_offer":"x","condition_type":{"a":1}}}"#.to_owned(),
                format!(r#"{{"attributes":{{"merchant_suggested_asin":[{{"value":"{asin}"}}],"purchasable_offer":[{{"our_price":[{{"schedule":[{{"value_with_tax":1e400}}]}}]}}]}}}}"#),
                format!(r#"{{"attributes":{{"merchant_suggested_asin":[{{"value":"{asin}"}}],"purchasable_offer":[{{"our_price":[{{"schedule":[{{"value_with_tax":-1}}]}}]}}]}}}}"#),
                format!(r#"{{"attributes":{{"merchant_suggested_asin":[{{"value":"{asin}"}}],"purchasable_offer":[{{"our_price":[{{"schedule":[{{"value_with_tax":123456789012345678901234567890.12}}]}}]}}]}}}}"#),
                format!(r#"{{"attributes":{{"merchant_suggested_asin":[{{"value":"{asin}"}}],"purchasable_offer":[{{"our_price":[{{"schedule":[{{"value_with_tax":{{"x":1}}}}]}}]}}]}}}}"#),
                format!(r#"{{"attributes":{{"merchant_suggested_asin":[{{"value":"{asin}"}}],"fulfillment_availability":[{{"quantity":1e20,"fulfillment_channel_code":5}}]}}}}"#),
                r#"{"attributes":{"merchant_suggested_asin":[{"value":"x"}],"condition_type":[{"value":"mint"}]}}"#.to_owned(),
                r#"{"attributes":{"purchasable_offer":[{"start_at":{"value":"tomorrow"}}]}}"#.to_owned(),
                r#"{"requirements":"LISTING","attributes":{"item_name":[{"value":"x","language_tag":"zz"}]}}"#.to_owned(),
                "{\"attributes\":{\"brand\":[{\"value\":\"a\\u0000b\"}]}}".to_owned(),
            ];
            for b in &put_bodies {
                let r = sp.put("FZ-1", US, "", b).await;
                assert!(r.status == 200 || r.body["errors"][0]["code"].is_string(), "{b}: {} {}", r.status, r.body);
            }
            let patch_bodies = [
                r#"{"patches":5}"#,
                r#"{"patches":[{"path":5,"value":"x"}]}"#,
                r#"{"patches":[{"op":"delete","path":"/attributes/purchasable_offer","value":[{}]}]}"#,
                r#"{"patches":[{"op":"replace","path":"/attributes/fulfillment_availability","value":[{"quantity":-3}]}]}"#,
                r#"{}"#,
            ];
            for b in patch_bodies {
                let r = sp.send(reqwest::Method::PATCH, &format!("{item}?marketplaceIds={US}"), Some(b)).await;
                assert!(r.status == 200 || r.body["errors"][0]["code"].is_string(), "{b}: {}", r.body);
            }
            let seller = &sp.seller_id;
            let gets = [
                item.clone(),
                format!("{item}?marketplaceIds=NOPE"),
                format!("/listings/2021-08-01/items/{seller}/{long_sku}?marketplaceIds={US}"),
                format!("/listings/2021-08-01/items/{seller}?marketplaceIds={US}&pageSize=0"),
                format!("/listings/2021-08-01/items/{seller}?marketplaceIds={US}&pageToken=zz"),
                format!("/catalog/2022-04-01/items?marketplaceIds={US}"),
                format!("/catalog/2022-04-01/items?marketplaceIds={US}&identifiers=1"),
                format!("/catalog/2022-04-01/items?marketplaceIds={US}&identifiers={}&identifiersType=UPC", vec!["1"; 25].join(",")),
                format!("/catalog/2022-04-01/items?marketplaceIds={US}&keywords={}", "a".repeat(600)),
                format!("/catalog/2022-04-01/items?marketplaceIds={US}&keywords=x&pageToken=zz"),
                format!("/catalog/2022-04-01/items/notanasin?marketplaceIds={US}"),
                "/feeds/2021-06-30/feeds/upl_x".to_owned(),
                "/feeds/2021-06-30/feeds?pageSize=1000".to_owned(),
                "/feeds/2021-06-30/documents/result-upl_x".to_owned(),
                "/feeds/2021-06-30/documents/other".to_owned(),
                "/spapi/feed-results/nope".to_owned(),
            ];
            for path in &gets {
                let r = sp.send(reqwest::Method::GET, path, None).await;
                assert!((400..500).contains(&r.status), "{path}: {} {}", r.status, r.body);
                assert!(r.body["errors"][0]["code"].is_string(), "{path}: {}", r.body);
            }
            for b in ["", "[]", r#"{"contentType":5}"#, &deep] {
                let r = sp.send(reqwest::Method::POST, "/feeds/2021-06-30/documents", Some(b)).await;
                assert_eq!(r.status, 400, "{b}: {}", r.body);
            }
            for b in [r#"{"feedType":"POST_FLAT_FILE_INVLOADER_DATA","marketplaceIds":["ATVPDKIKX0DER","A2EUQ1WTGCTBG2"],"inputFeedDocumentId":"x"}"#,
                      r#"{"feedType":"POST_FLAT_FILE_INVLOADER_DATA","marketplaceIds":["ATVPDKIKX0DER"],"inputFeedDocumentId":"x"}"#,
                      r#"{"feedType":5}"#] {
                let r = sp.send(reqwest::Method::POST, "/feeds/2021-06-30/feeds", Some(b)).await;
                assert_eq!(r.status, 400, "{b}: {}", r.body);
            }
            for (ct, b) in [("application/json", "[1]"), ("application/x-www-form-urlencoded", ""),
                            ("application/x-www-form-urlencoded", "grant_type=password"),
                            ("application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=%ZZ%00")] {
                let r = app.http.post(format!("{}/auth/o2/token", app.base)).header("content-type", ct).body(b).send().await.expect("token");
                assert_eq!(r.status(), 400, "{b}");
            }
            let big = vec![b'a'; 2 * 1024 * 1024];
            let r = app.http.post(format!("{}/auth/o2/token", app.base)).body(big).send().await.expect("token");
            assert!(r.status().is_client_error());
            app.assert_healthy().await;
        }
    }
}
