//! Issue 7's defects of input through the real server, on SQLite and PostgreSQL: hostile
//! workbooks end `FATAL` with the bound they passed (or are read as the little they
//! hold) and never take the server down; a failing upload never holds up the seller's
//! later ones; a queue entry that keeps failing is given up; and surprises in a file's
//! header or encoding are said, not guessed.

mod common;

use std::io::Write;

use common::Client;
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;

/// One workbook part: (path, content written in pieces so large parts never sit in
/// memory whole).
type Part<'a> = (&'a str, Box<dyn Fn(&mut dyn Write) + 'a>);

/// A minimal `.xlsx` package around the given sheet XML and shared strings.
fn workbook(sheet: Part<'_>, shared: Option<Part<'_>>) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    let mut put = |name: &str, write: &dyn Fn(&mut dyn Write)| {
        zip.start_file(name, opts).unwrap();
        write(&mut zip);
    };
    put("[Content_Types].xml", &|w| {
        w.write_all(br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#).unwrap()
    });
    put("_rels/.rels", &|w| {
        w.write_all(br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#).unwrap()
    });
    put("xl/workbook.xml", &|w| {
        w.write_all(br#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#).unwrap()
    });
    put("xl/_rels/workbook.xml.rels", &|w| {
        w.write_all(br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#).unwrap()
    });
    put(sheet.0, &*sheet.1);
    if let Some((name, f)) = shared {
        put(name, &*f);
    }
    zip.finish().unwrap().into_inner()
}

fn sheet_xml<'a>(rows: &'a str) -> Part<'a> {
    (
        "xl/worksheets/sheet1.xml",
        Box::new(move |w: &mut dyn Write| {
            write!(w, r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#).unwrap()
        }),
    )
}

/// Writes `total` bytes of `piece` repeated, in 1 MiB writes.
fn repeat(w: &mut dyn Write, piece: &[u8], total: usize) {
    // Whole pieces per write, so that markup is never cut.
    let per = ((1 << 20) / piece.len()).max(1) * piece.len();
    let chunk: Vec<u8> = piece.iter().copied().cycle().take(per).collect();
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len());
        w.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
}

async fn post_upload(s: &Client, store: &str, body: Vec<u8>) -> String {
    let r = s
        .raw(
            reqwest::Method::POST,
            &format!("/v1/uploads?store={store}"),
            Some(body),
            "application/octet-stream",
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.body["upload_id"].as_str().unwrap().to_owned()
}

fn expect_fatal(b: &Value, words: &str) {
    assert_eq!(b["status"], "FATAL", "{b}");
    let e = b["error"].as_str().unwrap_or_default();
    assert!(e.contains(words), "error {e:?} should say {words:?}");
    assert_eq!(b["records_successful"], json!(0), "{b}");
}

/// Peak resident memory of this process (server and test), for the log.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kib| kib / 1024)
        .unwrap_or(0)
}

backend_tests! {
    // Defect 1: a workbook naming its last cell used to ask for 512 GiB and abort.
    fn a_far_cell_is_read_as_what_it_holds(app) {
        let s = app.new_seller("Far").await;
        let book = workbook(
            sheet_xml(r#"<row r="1"><c r="A1" t="inlineStr"><is><t>sku</t></is></c></row><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>"#),
            None,
        );
        assert!(book.len() < 4096);
        let id = post_upload(&s, "US", book).await;
        let b = s.wait_upload(&id).await;
        // One data row, with no SKU: it fails alone.
        assert_eq!(b["status"], "DONE", "{b}");
        assert_eq!(b["records_processed"], json!(1), "{b}");
        assert_eq!(b["records_failed"], json!(1), "{b}");
        // Past column XFD a workbook cannot go: FATAL, named.
        let id = post_upload(&s, "US", workbook(
            sheet_xml(r#"<row r="1"><c r="A1" t="inlineStr"><is><t>sku</t></is></c><c r="XFE1" t="inlineStr"><is><t>x</t></is></c></row>"#),
            None,
        )).await;
        expect_fatal(&s.wait_upload(&id).await, "column XFD");
        app.assert_healthy().await;
        eprintln!("peak RSS after far-cell workbooks: {} MiB", peak_rss_mib());
    }

    // Defect 2: unbounded decompression of one cell, one shared string, whitespace, and
    // a huge shared strings table. Then a later upload of the same seller is DONE after
    // them, in arrival order.
    fn workbook_bounds_are_fatal_and_named(app) {
        let s = app.new_seller("Bomb").await;
        let big_cell = workbook(
            ("xl/worksheets/sheet1.xml", Box::new(|w: &mut dyn Write| {
                w.write_all(br#"<worksheet><sheetData><row><c t="inlineStr"><is><t>sku</t></is></c></row><row><c t="inlineStr"><is><t>"#).unwrap();
                repeat(w, b"A", 64 << 20);
                w.write_all(b"</t></is></c></row></sheetData></worksheet>").unwrap();
            })),
            None,
        );
        let big_shared = workbook(
            sheet_xml(r#"<row><c t="s"><v>0</v></c></row>"#),
            Some(("xl/sharedStrings.xml", Box::new(|w: &mut dyn Write| {
                w.write_all(b"<sst><si><t>").unwrap();
                repeat(w, b"B", 64 << 20);
                w.write_all(b"</t></si></sst>").unwrap();
            }))),
        );
        let whitespace = workbook(
            ("xl/worksheets/sheet1.xml", Box::new(|w: &mut dyn Write| {
                w.write_all(b"<worksheet><sheetData>").unwrap();
                repeat(w, b" ", 64 << 20);
                w.write_all(b"</sheetData></worksheet>").unwrap();
            })),
            None,
        );
        let many_strings = workbook(
            sheet_xml(r#"<row><c t="s"><v>0</v></c></row>"#),
            Some(("xl/sharedStrings.xml", Box::new(|w: &mut dyn Write| {
                w.write_all(b"<sst>").unwrap();
                repeat(w, b"<si><t>s</t></si>", 4_100_000 * 17);
                w.write_all(b"</sst>").unwrap();
            }))),
        );
        for b in [&big_cell, &big_shared, &whitespace, &many_strings] {
            assert!(b.len() < 2 << 20, "test workbooks stay small: {}", b.len());
        }
        let ids = [
            post_upload(&s, "US", big_cell).await,
            post_upload(&s, "US", big_shared).await,
            post_upload(&s, "US", whitespace).await,
            post_upload(&s, "US", many_strings).await,
        ];
        let later = post_upload(&s, "US", b"sku\tprice\nLATER-1\t\n".to_vec()).await;
        let words = ["cell or tag longer", "cell or tag longer", "cell or tag longer", "more than 4000000 entries"];
        // Arrival order (SPEC 5): when the later upload is DONE, every earlier one of the
        // seller has already ended, each FATAL with the bound it passed.
        let b = s.wait_upload(&later).await;
        assert_eq!(b["status"], "DONE", "{b}");
        for (id, w) in ids.iter().zip(words) {
            let r = s.get(&format!("/v1/uploads/{id}")).await;
            expect_fatal(&r.body, w);
            assert!(r.body["error"].as_str().unwrap().starts_with("too large: "), "{}", r.body);
        }
        app.assert_healthy().await;
        eprintln!("peak RSS after hostile workbooks: {} MiB", peak_rss_mib());
    }

    // Defect 1 (the queue): an upload that keeps failing is given up as FATAL after a
    // bounded number of attempts, and the seller's next upload goes on.
    fn an_upload_that_keeps_failing_is_given_up(app) {
        let s = app.new_seller("Poison").await;
        // A first, long upload keeps the worker busy while the second waits in the queue.
        let busy = app.new_seller("Busy").await;
        let mut long = String::from("sku\tprice\tquantity\n");
        for i in 0..200_000 {
            long.push_str(&format!("LONG-{i}\t\t1\n"));
        }
        let first = post_upload(&busy, "US", long.into_bytes()).await;
        let poison = post_upload(&s, "US", b"sku\tquantity\nP-1\t1\n".to_vec()).await;
        let after = post_upload(&s, "US", b"sku\tquantity\nA-1\t1\n".to_vec()).await;
        // As if earlier processes had died on it UPLOAD_ATTEMPTS_MAX times.
        let url = app.database_url().to_owned();
        let key = format!("upload_attempts:{poison}");
        let value = format!("{} 0", onestock::upload::UPLOAD_ATTEMPTS_MAX);
        tokio::task::spawn_blocking(move || {
            let db = onestock_store::Database::open(&url).unwrap();
            db.write(|tx| tx.set_setting(&key, &value)).unwrap();
        })
        .await
        .unwrap();
        let b = busy.wait_upload(&first).await;
        assert_eq!(b["status"], "DONE", "{b}");
        expect_fatal(&s.wait_upload(&poison).await, "given up");
        let b = s.wait_upload(&after).await;
        assert_eq!(b["status"], "DONE", "{b}");
        app.assert_healthy().await;
    }

    // Defect 10: a known column named twice, and UTF-8 text with a stray byte.
    fn header_and_encoding_surprises_are_said(app) {
        let s = app.new_seller("Surprise").await;
        let id = post_upload(&s, "US", b"sku\tquantity\tQUANTITY\nA\t1\t2\n".to_vec()).await;
        expect_fatal(&s.wait_upload(&id).await, "named twice");
        let id = post_upload(&s, "US", b"sku\tSKU\nA\tB\n".to_vec()).await;
        expect_fatal(&s.wait_upload(&id).await, "the column sku is named twice");
        let mut mixed = "sku\tquantity\nCAFÉ-U\t1\n".as_bytes().to_vec();
        mixed.extend_from_slice(b"CAF\xC9-W\t2\n");
        let id = post_upload(&s, "US", mixed).await;
        let b = s.wait_upload(&id).await;
        expect_fatal(&b, "line 3");
        assert!(b["error"].as_str().unwrap().contains("UTF-8"), "{b}");
        // Windows-1252 throughout is still read as such.
        let id = post_upload(&s, "US", b"sku\tquantity\nCAF\xC9-W\t2\n".to_vec()).await;
        let b = s.wait_upload(&id).await;
        assert_eq!(b["status"], "DONE", "{b}");
    }

    // SPEC 5: two header rows after TemplateType= (labels for people, then attributes).
    fn template_label_row_is_not_the_header(app) {
        let s = app.new_seller("Labels").await;
        let text = "TemplateType=PriceInventory\tVersion=2018.0924\n商品管理番号\t販売価格\t\t在庫数\nsku\tprice\t\tquantity\nJP-1\t\t\t5\n";
        let id = post_upload(&s, "US", text.as_bytes().to_vec()).await;
        let b = s.wait_upload(&id).await;
        assert_eq!(b["status"], "DONE", "{b}");
        assert_eq!(b["records_processed"], json!(1), "{b}");
        let text = "TemplateType=InventoryLoader\tVersion=2020.0805\nSKU\tProduct ID\tQuantity\nsku\tproduct-id\tquantity\nEN-1\t\t5\n";
        let id = post_upload(&s, "US", text.as_bytes().to_vec()).await;
        let b = s.wait_upload(&id).await;
        assert_eq!(b["records_processed"], json!(1), "{b}");
        let r = s.get(&format!("/v1/uploads/{id}/report")).await;
        // Record 1 is EN-1 (no listing in US, no product named), not the attribute row.
        assert!(r.text.contains("1\tEN-1\tINVALID_REQUEST"), "{}", r.text);
    }

    // Defect 3: a NUL in text or an address was a 500 on PostgreSQL. Now both databases
    // answer INVALID_REQUEST naming the field, and store nothing.
    fn control_characters_are_refused_by_name(app) {
        let op = app.operator();
        let r = op.post("/v1/sellers", json!({"name": "Bad\u{0}Name"})).await;
        r.expect(400, "INVALID_REQUEST");
        assert_eq!(r.body["error"]["field"], "name", "{}", r.text);
        let s = app.new_seller("Nul").await;
        for field in ["title", "brand", "description"] {
            let mut body = common::product_body("US", "HOME", "Steel Bottle", "Acme", "en", &[]);
            body[field] = json!("Steel\u{0}Bottle");
            let r = s.post("/v1/catalog/items", body).await;
            r.expect(400, "INVALID_REQUEST");
            assert_eq!(r.body["error"]["field"], field, "{}", r.text);
        }
        let r = op
            .post("/v1/stores/US/orders", json!({"order_id": "o\u{0}1", "lines": [{"seller_id": s.seller_id, "sku": "A", "quantity": 1}]}))
            .await;
        r.expect(400, "INVALID_REQUEST");
        assert_eq!(r.body["error"]["field"], "order_id", "{}", r.text);
        let r = op
            .post("/v1/stores/US/orders", json!({"order_id": "o2", "lines": [{"seller_id": "sel\u{0}", "sku": "A", "quantity": 1}]}))
            .await;
        r.expect(400, "INVALID_REQUEST");
        assert_eq!(r.body["error"]["field"], "lines[0].seller_id", "{}", r.text);
        op.post("/v1/stores/US/orders/%00/cancel", json!({})).await.expect(400, "INVALID_REQUEST");
        s.get("/v1/uploads/%00").await.expect(400, "INVALID_REQUEST");
        s.get("/v1/uploads/%00/report").await.expect(400, "INVALID_REQUEST");
        s.get("/v1/catalog/search?store=US&identifier=%00").await.expect(400, "INVALID_REQUEST");
        s.get("/v1/listings/A%01B").await.expect(400, "INVALID_REQUEST");
        // Tabs and line ends are text, not control: a description may hold them.
        let mut body = common::product_body("US", "HOME", "Steel Bottle Two", "Acme", "en", &[]);
        body["description"] = json!("Line one.\nLine two,\tindented.");
        s.post("/v1/catalog/items", body).await.ok(201);
        app.assert_healthy().await;
    }

    // Defect 5: at the quantity cap, a cancel returns what fits and the ledger records
    // what was returned, so its deltas add up to the quantity (R20).
    fn ledger_sums_to_the_quantity_at_the_cap(app) {
        let s = app.new_seller("Cap").await;
        let asin = s.product("US", "Cap Bottle", "Acme", "en", &[]).await;
        s.list("CAP-1", "US", json!({"asin": asin, "price": common::usd("5.00"), "quantity": 1_000_000_000}))
            .await
            .ok(201);
        app.order("US", "cap-o1", &[(&s, "CAP-1", 1)]).await.ok(201);
        s.change("CAP-1", "US", json!({"quantity_delta": 1})).await.ok(200);
        app.cancel("US", "cap-o1").await.ok(200);
        let q = s.quantity("CAP-1", "US").await;
        assert_eq!(q, 1_000_000_000);
        let ledger = s.ledger("CAP-1").await;
        let sum: i64 = ledger.iter().map(|e| e["delta"].as_i64().unwrap()).sum();
        assert_eq!(sum, q, "ledger deltas add up to the quantity: {ledger:?}");
        let cancel = ledger.iter().find(|e| e["reason"] == "cancel").expect("a cancel entry");
        assert_eq!(cancel["delta"], json!(0), "{cancel}");
        assert_eq!(cancel["quantity_after"], json!(1_000_000_000), "{cancel}");
    }

    // Defect 6: the report was built whole in memory. It is now streamed a page at a
    // time: a report of many pages comes whole and in record order.
    fn a_large_report_streams_whole_and_in_order(app) {
        let s = app.new_seller("Report").await;
        let rows = 12_345;
        let mut text = String::from("sku\tquantity\n");
        for i in 1..=rows {
            text.push_str(&format!("NO-{i:05}\t1\n"));
        }
        let id = post_upload(&s, "US", text.into_bytes()).await;
        let b = s.wait_upload(&id).await;
        assert_eq!(b["records_failed"], json!(rows), "{b}");
        let r = s.get(&format!("/v1/uploads/{id}/report")).await;
        assert_eq!(r.status, 200);
        let lines: Vec<&str> = r.text.lines().skip(5).collect();
        assert_eq!(lines.len(), rows as usize, "one line a failed record");
        for (i, line) in lines.iter().enumerate() {
            let want = format!("{}\tNO-{:05}\tINVALID_REQUEST\tError\t", i + 1, i + 1);
            assert!(line.starts_with(&want), "line {i}: {line}");
        }
        assert!(r.text.starts_with(&format!("Feed Processing Summary:\n\tNumber of records processed\t\t{rows}\n")));
    }

    // SPEC 4.1: GET /v1/uploads, newest first, in pages, one seller's only.
    fn uploads_are_listed_newest_first_in_pages(app) {
        let s = app.new_seller("Lister").await;
        let other = app.new_seller("Other").await;
        let mut ids = Vec::new();
        for store in ["US", "CA", "US"] {
            let id = post_upload(&s, store, b"sku\tquantity\nL-1\t1\n".to_vec()).await;
            s.wait_upload(&id).await;
            ids.push(id);
        }
        let r = s.get("/v1/uploads?limit=2").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let got: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|u| u["upload_id"].as_str().unwrap()).collect();
        assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
        let cursor = r.body["next_cursor"].as_str().expect("a next page").to_owned();
        let r = s.get(&format!("/v1/uploads?limit=2&cursor={cursor}")).await;
        assert_eq!(r.body["items"][0]["upload_id"], json!(ids[0]), "{}", r.text);
        assert_eq!(r.body["next_cursor"], Value::Null);
        let r = s.get("/v1/uploads?store=ca").await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
        assert_eq!(r.body["items"][0]["store"], "CA");
        let r = other.get("/v1/uploads").await;
        assert_eq!(r.body["items"], json!([]), "R22: {}", r.text);
        s.get("/v1/uploads?limit=0").await.expect(400, "INVALID_REQUEST");
        s.get("/v1/uploads?store=XX").await.expect(400, "UNKNOWN_STORE");
    }
}
