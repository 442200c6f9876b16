use super::*;
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::str::FromStr;

fn examples(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(name)
}

fn open_bytes(bytes: &[u8]) -> Result<RowReader, FileError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload");
    std::fs::write(&path, bytes).unwrap();
    // The reader keeps the file open; the directory may go.
    open(&path)
}

fn rows(bytes: &[u8]) -> Vec<RawRow> {
    open_bytes(bytes).unwrap().collect()
}

fn fields(pairs: &[(&str, &str)]) -> RowFields {
    let mut f = RowFields {
        sku: Some("SKU-1".into()),
        ..RowFields::default()
    };
    for (k, v) in pairs {
        let v = Some(v.to_string());
        match *k {
            "sku" => f.sku = v,
            "product-id" => f.product_id = v,
            "product-id-type" => f.product_id_type = v,
            "price" => f.price = v,
            "item-condition" => f.item_condition = v,
            "quantity" => f.quantity = v,
            "add-delete" => f.add_delete = v,
            "inventory-sharing" => f.inventory_sharing = v,
            "fulfillment-channel" => f.fulfillment_channel = v,
            "start-selling-date" => f.start_selling_date = v,
            _ => panic!("{k}"),
        }
    }
    f
}

fn op(pairs: &[(&str, &str)]) -> RowOp {
    parse_row(&fields(pairs)).unwrap()
}

fn err(pairs: &[(&str, &str)]) -> DomainError {
    parse_row(&fields(pairs)).unwrap_err()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const FULL_HEADER: &str = "sku\tproduct-id\tproduct-id-type\tprice\titem-condition\tquantity\tadd-delete\tinventory-sharing\tfulfillment-channel\tstart-selling-date";

// ---- files -------------------------------------------------------------------

#[test]
fn tsv_every_column() {
    let text = format!(
        "{FULL_HEADER}\nMUG-1\t036000291452\t3\t19.99\t11\t5\ta\texisting\tmerchant\t2026-12-15\n"
    );
    let mut r = open_bytes(text.as_bytes()).unwrap();
    assert_eq!(r.format(), FileFormat::Tsv);
    assert_eq!(r.encoding(), Some(TextEncoding::Utf8));
    assert!(r.unknown_columns().is_empty());
    let row = r.next().unwrap();
    assert_eq!(row.record, 1);
    assert_eq!(row.problem, None);
    assert_eq!(
        row.fields,
        RowFields {
            sku: Some("MUG-1".into()),
            product_id: Some("036000291452".into()),
            product_id_type: Some("3".into()),
            price: Some("19.99".into()),
            item_condition: Some("11".into()),
            quantity: Some("5".into()),
            add_delete: Some("a".into()),
            inventory_sharing: Some("existing".into()),
            fulfillment_channel: Some("merchant".into()),
            start_selling_date: Some("2026-12-15".into()),
            ..RowFields::default()
        }
    );
    assert!(r.next().is_none());
    assert!(r.next().is_none());
    assert!(r.error().is_none());
}

#[test]
fn csv_with_quoted_commas_tabs_quotes_and_line_ends() {
    let text = "sku,price,item-note,quantity\n\
                \"LAMP, DESK\",\"34,90\",\"a\tb\",3\n\
                PLAIN,1.00,\"two\nlines, \"\"quoted\"\"\",4\n\
                LAST,2.00,,5\n";
    let mut r = open_bytes(text.as_bytes()).unwrap();
    assert_eq!(r.format(), FileFormat::Csv);
    let all: Vec<RawRow> = r.by_ref().collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].fields.sku.as_deref(), Some("LAMP, DESK"));
    assert_eq!(all[0].fields.price.as_deref(), Some("34,90"));
    assert_eq!(all[0].fields.quantity.as_deref(), Some("3"));
    assert_eq!(all[1].fields.sku.as_deref(), Some("PLAIN"));
    assert_eq!(all[1].fields.quantity.as_deref(), Some("4"));
    assert_eq!(
        (all[2].record, all[2].fields.sku.as_deref()),
        (3, Some("LAST"))
    );
    assert_eq!(parse_row(&all[0].fields).unwrap().price, Some(dec("34.90")));
}

#[test]
fn tsv_is_not_quoted() {
    let all = rows(b"sku\tprice\n\"Q\"\t1.00\nA\"B\t2.00\n");
    assert_eq!(all[0].fields.sku.as_deref(), Some("\"Q\""));
    assert_eq!(all[1].fields.sku.as_deref(), Some("A\"B"));
}

#[test]
fn utf8_with_and_without_bom_and_crlf() {
    let plain = "sku\tquantity\r\nCAFÉ-1\t3\r\nTHÉ\t4\r\n";
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(plain.as_bytes());
    for bytes in [plain.as_bytes(), &bom[..]] {
        let mut r = open_bytes(bytes).unwrap();
        assert_eq!(r.encoding(), Some(TextEncoding::Utf8));
        let all: Vec<RawRow> = r.by_ref().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].fields.sku.as_deref(), Some("CAFÉ-1"));
        assert_eq!(all[0].fields.quantity.as_deref(), Some("3"));
        assert_eq!(all[1].fields.quantity.as_deref(), Some("4"));
    }
}

#[test]
fn windows_1252() {
    let mut r = open_bytes(b"sku,price\r\nCAF\xC9-1,1.00\r\nPRIX-\x80,2.00\r\n").unwrap();
    assert_eq!(r.encoding(), Some(TextEncoding::Windows1252));
    let all: Vec<RawRow> = r.by_ref().collect();
    assert_eq!(all[0].fields.sku.as_deref(), Some("CAFÉ-1"));
    assert_eq!(all[1].fields.sku.as_deref(), Some("PRIX-€"));
}

#[test]
fn utf8_sequence_cut_at_a_chunk_boundary_is_still_utf8() {
    // 'é' (2 bytes) straddles byte 65536, the scan's chunk size.
    let mut text = b"sku\titem-note\nA\t".to_vec();
    text.resize(65535, b'x');
    text.extend_from_slice("é\nB-É\t1\n".as_bytes());
    let mut r = open_bytes(&text).unwrap();
    assert_eq!(r.encoding(), Some(TextEncoding::Utf8));
    let all: Vec<RawRow> = r.by_ref().collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].fields.sku.as_deref(), Some("B-É"));
    // A 2-byte sequence cut by the end of the file is not UTF-8.
    let mut r = open_bytes(b"sku\nA\xC3").unwrap();
    assert_eq!(r.encoding(), Some(TextEncoding::Windows1252));
    assert_eq!(r.next().unwrap().fields.sku.as_deref(), Some("AÃ"));
}

#[test]
fn bom_with_invalid_utf8_is_fatal() {
    let e = open_bytes(b"\xEF\xBB\xBFsku\nCAF\xC9\n").err().unwrap();
    assert!(matches!(e, FileError::Undecodable(_)), "{e}");
    assert!(e.to_string().starts_with("undecodable text"), "{e}");
}

#[test]
fn utf16_and_xls_are_fatal() {
    let e = open_bytes(b"\xFF\xFEs\0k\0u\0").err().unwrap();
    assert!(matches!(e, FileError::Undecodable(_)), "{e}");
    let e = open_bytes(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest")
        .err()
        .unwrap();
    assert!(matches!(e, FileError::NotATable(_)), "{e}");
}

#[test]
fn preamble_is_skipped() {
    let text = "TemplateType=InventoryLoader\tVersion=2026.1\tRows above...\n\
                # sku: your code\n\
                \n\
                #another, with a comma\n\
                sku\tquantity\n\
                A\t1\n";
    let all = rows(text.as_bytes());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].fields.sku.as_deref(), Some("A"));
    // As a spreadsheet saves it as CSV: quoted, lower case.
    let text = "\"templatetype=fptcustom,Version=1\",,\n\"# note, quoted\",,\nsku,quantity,price\nB,2,1.00\n";
    let all = rows(text.as_bytes());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].fields.sku.as_deref(), Some("B"));
}

#[test]
fn header_names_ignore_case_spaces_and_underscores() {
    let text =
        " SKU \tPrice\tITEM_CONDITION\tProduct ID\tQuantity\n A \t 1.00 \t 11 \t B0ABCD1234\t 7 \n";
    let mut r = open_bytes(text.as_bytes()).unwrap();
    assert!(r.unknown_columns().is_empty());
    let f = r.next().unwrap().fields;
    assert_eq!(f.sku.as_deref(), Some("A"));
    assert_eq!(f.price.as_deref(), Some("1.00"));
    assert_eq!(f.item_condition.as_deref(), Some("11"));
    assert_eq!(f.product_id.as_deref(), Some("B0ABCD1234"));
    assert_eq!(f.quantity.as_deref(), Some("7"));
}

#[test]
fn unknown_ignored_and_duplicate_columns() {
    let text = "sku\titem-note\tHandling-Time\tproduct_tax_code\tcolour\tprice\t\tsize\nA\tn\t2\tx\tred\t1.00\tq\tL\n";
    let mut r = open_bytes(text.as_bytes()).unwrap();
    assert_eq!(
        r.unknown_columns(),
        ["colour".to_string(), "size".to_string()]
    );
    assert_eq!(r.next().unwrap().fields.price.as_deref(), Some("1.00"));
    // A known column named twice is FATAL and names the column: which one the
    // seller meant cannot be told.
    for text in [
        "sku\tprice\tPRICE\nA\t1\t2\n",
        "sku\tsku\nA\tB\n",
        "sku,quantity,QUANTITY\nA,1,2\n",
    ] {
        match open_bytes(text.as_bytes()) {
            Err(FileError::DuplicateColumn(m)) => assert!(m.contains("named twice"), "{m}"),
            other => panic!("{text:?}: {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn category_template_columns() {
    let text = "TemplateType=fptcustom\tVersion=2020.0414\n\
Product Type\tSeller SKU\tBrand Name\tTitle\tProduct ID\tProduct ID Type\tStandard Price\tQuantity\tUpdate Delete\tCondition Type\tProduct Description\tFulfillment Center ID\tLanguage\tKey Product Features\tOther Image URL 8\n\
feed_product_type\titem_sku\tbrand_name\titem_name\texternal_product_id\texternal_product_id_type\tstandard_price\tquantity\tupdate_delete\tcondition_type\tproduct_description\tfulfillment_center_id\tlanguage_value\tbullet_point5\tother_image_url8\n\
home\tLAMP-1\tAcme\tDesk Lamp\t012345000041\tUPC\t39.99\t7\tPartialUpdate\tUsed - Very Good\tA lamp.\tAMAZON_NA\tSpanish\tx\ty\n";
    let mut r = open_bytes(text.as_bytes()).unwrap();
    assert!(r.unknown_columns().is_empty(), "{:?}", r.unknown_columns());
    let row = r.next().unwrap();
    assert_eq!(row.record, 1);
    let op = parse_row(&row.fields).unwrap();
    assert_eq!(op.sku.as_str(), "LAMP-1");
    assert_eq!(op.action, Action::PartialUpdate);
    assert_eq!(
        op.product,
        Some(ProductId::Identifier {
            kind: "UPC".into(),
            value: "012345000041".into()
        })
    );
    assert_eq!(op.price, Some(dec("39.99")));
    assert_eq!(op.quantity, Some(7));
    assert_eq!(op.condition, Some(Condition::UsedVeryGood));
    assert_eq!(op.fulfillment, Some(Fulfillment::Marketplace));
    assert_eq!(
        op.product_info,
        Some(ProductInfo {
            product_type: "home".into(),
            title: "Desk Lamp".into(),
            brand: "Acme".into(),
            description: "A lamp.".into(),
            language: Some("es".into()),
        })
    );
    // Without product information a row asks for no product.
    let op = parse_row(&fields(&[("product-id", "012345000041")])).unwrap();
    assert_eq!(op.product_info, None);
    // `sku` and `item_sku` name the same column.
    match open_bytes(b"sku\titem_sku\nA\tB\n") {
        Err(FileError::DuplicateColumn(m)) => assert!(m.contains("the column sku"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // Numbered template columns, any number; a column no template has is unknown.
    assert!(is_ignored_column("bullet-point5"));
    assert!(is_ignored_column("supplier-declared-dg-hz-regulation3"));
    assert!(!is_ignored_column("colour"));
}

#[test]
fn binary_garbage_is_fatal() {
    let e = open_bytes(b"\x7fELF\x02\x01\x01\0\0\0\0\0garbage")
        .err()
        .unwrap();
    assert!(matches!(e, FileError::NotATable(_)), "{e}");
    assert!(e.to_string().starts_with("not a table"));
    // No NUL, not UTF-8, no sku column.
    let e = open_bytes(&[0x89, 0xFA, 0x81, 0x9C, 0x0A, 0xE2, 0x28, 0xA1])
        .err()
        .unwrap();
    assert!(matches!(e, FileError::NoSkuColumn(_)), "{e}");
}

#[test]
fn no_panic_on_arbitrary_bytes() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet: &[u8] = b"sku,\t\n\r\"#aTemplateType=\xC3\xA9\xEF\xBB\xBF\x80\xFF 1.d";
    for _ in 0..300 {
        let len = (rnd() % 200) as usize;
        let mut bytes: Vec<u8> = if rnd() % 2 == 0 {
            b"sku,price\n".to_vec()
        } else {
            Vec::new()
        };
        for _ in 0..len {
            let r = rnd();
            bytes.push(if r % 4 == 0 {
                (r >> 8) as u8
            } else {
                alphabet[(r >> 8) as usize % alphabet.len()]
            });
        }
        if let Ok(r) = open_bytes(&bytes) {
            for row in r {
                let _ = parse_row(&row.fields);
            }
        }
    }
    // A ZIP magic in front of garbage.
    let e = open_bytes(b"PK\x03\x04not really a workbook")
        .err()
        .unwrap();
    assert!(matches!(e, FileError::NotATable(_)), "{e}");
}

#[test]
fn empty_files_are_fatal() {
    for bytes in [&b""[..], b"\n\n", b"\xEF\xBB\xBF", b"  \r\n\t\r\n"] {
        let e = open_bytes(bytes).err().unwrap();
        assert!(matches!(e, FileError::Empty), "{bytes:?}: {e}");
        assert!(e.to_string().starts_with("empty file"));
    }
}

#[test]
fn header_only_has_no_rows() {
    assert!(rows(FULL_HEADER.as_bytes()).is_empty());
    assert!(rows(format!("{FULL_HEADER}\r\n\r\n").as_bytes()).is_empty());
}

#[test]
fn no_sku_column_is_fatal() {
    let e = open_bytes(b"price\tquantity\n1.00\t2\n").err().unwrap();
    assert!(matches!(e, FileError::NoSkuColumn(_)), "{e}");
    assert!(e.to_string().starts_with("no sku column"), "{e}");
    assert!(e.to_string().contains("price, quantity"), "{e}");
    // The first line after the preamble is the header, even when sku comes later.
    let e = open_bytes(b"# x\nhello world\nsku\nA\n").err().unwrap();
    assert!(matches!(e, FileError::NoSkuColumn(_)), "{e}");
    let e = open_bytes(b"TemplateType=x\n# only a preamble\n")
        .err()
        .unwrap();
    assert!(matches!(e, FileError::NoSkuColumn(_)), "{e}");
    // "skus" is not "sku".
    assert!(open_bytes(b"skus,price\nA,1\n").is_err());
}

#[test]
fn ragged_rows() {
    let all = rows(b"sku,price,quantity\nA\nB,1.00\nC,2.00,3,extra,more\n");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].fields.price, None);
    assert_eq!(all[1].fields.price.as_deref(), Some("1.00"));
    assert_eq!(all[1].fields.quantity, None);
    assert_eq!(all[2].fields.quantity.as_deref(), Some("3"));
    assert!(all.iter().all(|r| r.problem.is_none()));
}

#[test]
fn blank_lines_take_no_record_number() {
    let all = rows(b"sku,price\n\nA,1.00\n,\n   ,  \r\nB,2.00\n\n");
    assert_eq!(
        all.iter()
            .map(|r| (r.record, r.fields.sku.clone().unwrap()))
            .collect::<Vec<_>>(),
        [(1, "A".to_string()), (2, "B".to_string())]
    );
    // A row with only an ignored column is a data row (with no sku).
    let all = rows(b"sku\titem-note\n\tnote\n");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].fields.sku, None);
    assert_eq!(
        parse_row(&all[0].fields).unwrap_err().field.as_deref(),
        Some("sku")
    );
}

#[test]
fn two_mib_line_is_a_problem_row_and_reading_goes_on() {
    let mut text = b"sku\titem-note\nA\t1\nLONG\t".to_vec();
    text.extend(std::iter::repeat_n(b'x', 2 << 20));
    text.extend_from_slice(b"\nB\t2\r\nC\t3");
    let all = rows(&text);
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].problem, None);
    let p = all[1].problem.as_ref().expect("a problem");
    assert_eq!(p.code, ErrorCode::InvalidRequest);
    assert_eq!(all[1].record, 2);
    assert_eq!(all[1].fields.sku.as_deref(), Some("LONG"));
    assert_eq!(
        (all[2].record, all[2].fields.sku.as_deref()),
        (3, Some("B"))
    );
    assert_eq!(all[2].problem, None);
    assert_eq!(
        (all[3].record, all[3].fields.sku.as_deref()),
        (4, Some("C"))
    );
}

#[test]
fn exactly_one_mib_is_fine() {
    let mut text = b"sku,item-note\n".to_vec();
    let mut line = b"A,".to_vec();
    line.resize(MAX_ROW_BYTES, b'y');
    text.extend_from_slice(&line);
    text.extend_from_slice(b"\r\nB,z\n");
    let all = rows(&text);
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.problem.is_none()));
    text.insert(20, b'y');
    let all = rows(&text);
    assert!(all[0].problem.is_some());
    assert!(all[1].problem.is_none());
}

#[test]
fn unclosed_quote_in_csv_runs_on_for_at_most_one_mib() {
    let mut text = b"sku,item-note\nA,\"never closed\n".to_vec();
    for i in 0..60_000 {
        text.extend_from_slice(format!("R{i},some note text\n").as_bytes());
    }
    text.extend_from_slice(b"LAST,x\n");
    let all = rows(&text);
    assert!(all[0].problem.is_some());
    assert_eq!(all[0].fields.sku.as_deref(), Some("A"));
    let last = all.last().unwrap();
    assert_eq!(last.fields.sku.as_deref(), Some("LAST"));
    assert!(last.problem.is_none());
    assert!(all.len() > 2 && all.len() < 60_000);
}

#[test]
fn skip_to_resumes_after_a_checkpoint() {
    let mut text = String::from("sku,quantity\n");
    for i in 1..=10 {
        text.push_str(&format!("S{i},{i}\n"));
        if i == 4 {
            text.push('\n');
        }
    }
    let mut r = open_bytes(text.as_bytes()).unwrap();
    r.skip_to(6);
    assert_eq!(r.records_read(), 5);
    let row = r.next().unwrap();
    assert_eq!((row.record, row.fields.sku.as_deref()), (6, Some("S6")));
    let mut r = open_bytes(text.as_bytes()).unwrap();
    r.skip_to(1);
    assert_eq!(r.next().unwrap().record, 1);
    let mut r = open_bytes(text.as_bytes()).unwrap();
    r.skip_to(50);
    assert!(r.next().is_none());
}

#[test]
fn xlsx_generated() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("book.bin"); // sniffed, not named
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "TemplateType=InventoryLoader")
        .unwrap();
    ws.write_string(1, 0, "# a note").unwrap();
    for (c, h) in [
        "SKU",
        "Price",
        "Quantity",
        "product-id",
        "start-selling-date",
        "Colour",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(2, c as u16, *h).unwrap();
    }
    ws.write_string(3, 0, "MUG-1").unwrap();
    ws.write_number(3, 1, 24.99).unwrap();
    ws.write_number(3, 2, 12).unwrap();
    ws.write_string(3, 3, "036000291452").unwrap();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    ws.write_datetime_with_format(3, 4, ExcelDateTime::from_ymd(2026, 12, 15).unwrap(), &date)
        .unwrap();
    let dt = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    ws.write_string(5, 0, "MUG-2").unwrap();
    ws.write_number(5, 3, 4006381333931.0).unwrap();
    ws.write_datetime_with_format(
        5,
        4,
        ExcelDateTime::parse_from_str("2026-12-15 09:30:00").unwrap(),
        &dt,
    )
    .unwrap();
    wb.save(&path).unwrap();

    let mut r = open(&path).unwrap();
    assert_eq!(r.format(), FileFormat::Xlsx);
    assert_eq!(r.encoding(), None);
    assert_eq!(r.unknown_columns(), ["Colour".to_string()]);
    let all: Vec<RawRow> = r.by_ref().collect();
    assert_eq!(all.len(), 2);
    let f = &all[0].fields;
    assert_eq!(f.sku.as_deref(), Some("MUG-1"));
    assert_eq!(f.price.as_deref(), Some("24.99"));
    assert_eq!(f.quantity.as_deref(), Some("12"));
    assert_eq!(f.product_id.as_deref(), Some("036000291452"));
    assert_eq!(f.start_selling_date.as_deref(), Some("2026-12-15"));
    let op0 = parse_row(f).unwrap();
    assert_eq!(op0.price, Some(dec("24.99")));
    assert_eq!(all[1].record, 2);
    assert_eq!(all[1].fields.product_id.as_deref(), Some("4006381333931"));
    assert_eq!(
        all[1].fields.start_selling_date.as_deref(),
        Some("2026-12-15T09:30:00Z")
    );
    assert!(
        parse_row(&all[1].fields)
            .unwrap()
            .start_selling_at
            .is_some()
    );
}

#[test]
fn xlsx_without_sku_or_rows() {
    use rust_xlsxwriter::Workbook;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.xlsx");
    let mut wb = Workbook::new();
    wb.add_worksheet().write_string(0, 0, "price").unwrap();
    wb.save(&path).unwrap();
    assert!(matches!(open(&path), Err(FileError::NoSkuColumn(_))));
    let mut wb = Workbook::new();
    wb.add_worksheet();
    wb.save(&path).unwrap();
    assert!(matches!(open(&path), Err(FileError::Empty)));
    let mut wb = Workbook::new();
    wb.add_worksheet().write_string(0, 0, "sku").unwrap();
    wb.save(&path).unwrap();
    assert_eq!(open(&path).unwrap().count(), 0);
}

// ---- the shared samples and the examples -------------------------------------

#[test]
fn sample_inventory_loader_ca() {
    let mut r = open(&examples("inventory-loader-CA.txt")).unwrap();
    assert_eq!(r.format(), FileFormat::Tsv);
    assert!(r.unknown_columns().is_empty(), "{:?}", r.unknown_columns());
    let all: Vec<RawRow> = r.by_ref().collect();
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|r| r.problem.is_none()));
    let ops: Vec<RowOp> = all.iter().map(|r| parse_row(&r.fields).unwrap()).collect();
    assert_eq!(ops[0].sku.as_str(), "MUG-BLUE-350");
    assert_eq!(ops[0].price, Some(dec("24.99")));
    assert_eq!(ops[0].quantity, Some(12));
    assert_eq!(
        ops[0].product,
        Some(ProductId::Identifier {
            kind: "UPC".into(),
            value: "036000291452".into()
        })
    );
    assert_eq!(ops[0].condition, Some(Condition::New));
    assert_eq!(ops[0].fulfillment, Some(Fulfillment::Merchant));
    assert_eq!(ops[0].share, None);
    assert_eq!(ops[1].sku.as_str(), "MUG-RED-350");
    assert_eq!(ops[1].price, Some(dec("24.99")));
    assert_eq!(ops[1].quantity, Some(0));
    assert_eq!(ops[1].share, Some(ShareMode::Unique));
    assert_eq!(
        ops[1].start_selling_at,
        Some(time::macros::datetime!(2026-12-15 0:00 UTC))
    );
    assert_eq!(
        ops[2].product,
        Some(ProductId::Identifier {
            kind: "EAN".into(),
            value: "4006381333931".into()
        })
    );
    assert_eq!(ops[2].condition, Some(Condition::UsedLikeNew));
    assert_eq!(ops[2].quantity, None);
    assert_eq!(
        (ops[3].sku.as_str(), ops[3].action),
        ("OLD-SKU-1", Action::DeleteInStore)
    );
    assert_eq!(
        (ops[4].sku.as_str(), ops[4].action),
        ("GONE-EVERYWHERE", Action::DeleteEverywhere)
    );
    assert_eq!(
        all.iter().map(|r| r.record).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
}

#[test]
fn sample_price_quantity_windows1252() {
    let mut r = open(&examples("price-quantity-CA-windows1252.csv")).unwrap();
    assert_eq!(r.format(), FileFormat::Csv);
    assert_eq!(r.encoding(), Some(TextEncoding::Windows1252));
    let ops: Vec<RowOp> = r.by_ref().map(|r| parse_row(&r.fields).unwrap()).collect();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0].sku.as_str(), "CAFÉ-MOULU-250");
    assert_eq!(ops[0].condition, Some(Condition::New));
    assert_eq!(ops[0].price, Some(dec("12.50")));
    assert_eq!(ops[0].quantity, Some(30));
    assert_eq!(ops[1].sku.as_str(), "THÉ-VERT-100");
    assert_eq!(ops[1].condition, Some(Condition::New));
    assert_eq!(ops[1].quantity, Some(0));
    assert_eq!(
        ops[1].product,
        Some(ProductId::Identifier {
            kind: "UPC".into(),
            value: "036000291452".into()
        })
    );
}

#[test]
fn examples_read_without_errors() {
    for (name, format, count) in [
        ("inventory-small.tsv", FileFormat::Tsv, 6),
        ("inventory-windows1252.tsv", FileFormat::Tsv, 4),
        ("inventory.csv", FileFormat::Csv, 4),
        ("inventory.xlsx", FileFormat::Xlsx, 3),
    ] {
        let mut r = open(&examples(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.format(), format, "{name}");
        assert!(r.unknown_columns().is_empty(), "{name}");
        let ops: Vec<RowOp> = r
            .by_ref()
            .map(|row| {
                assert!(row.problem.is_none(), "{name}");
                parse_row(&row.fields).unwrap_or_else(|e| panic!("{name} {}: {e}", row.record))
            })
            .collect();
        assert_eq!(ops.len(), count, "{name}");
    }
    let ops: Vec<RowOp> = open(&examples("inventory-windows1252.tsv"))
        .unwrap()
        .map(|r| parse_row(&r.fields).unwrap())
        .collect();
    assert_eq!(ops[0].sku.as_str(), "CAFÉ-1");
    assert_eq!(ops[3].sku.as_str(), "ÉPICES-€-SET");
    let ops: Vec<RowOp> = open(&examples("inventory.csv"))
        .unwrap()
        .map(|r| parse_row(&r.fields).unwrap())
        .collect();
    assert_eq!(ops[1].sku.as_str(), "LAMP, DESK");
    assert_eq!(ops[1].price, Some(dec("34.90")));
    let ops: Vec<RowOp> = open(&examples("inventory.xlsx"))
        .unwrap()
        .map(|r| parse_row(&r.fields).unwrap())
        .collect();
    assert_eq!(ops[1].price, Some(dec("39.50")));
    assert_eq!(
        ops[1].start_selling_at,
        Some(time::macros::datetime!(2026-12-15 0:00 UTC))
    );
    assert_eq!(ops[2].action, Action::DeleteInStore);
}

// ---- parse_row -----------------------------------------------------------------

#[test]
fn sku_is_required_and_checked() {
    let e = parse_row(&RowFields::default()).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidRequest, Some("sku"))
    );
    let e = err(&[("sku", &"x".repeat(41))]);
    assert_eq!(e.field.as_deref(), Some("sku"));
    assert_eq!(op(&[("sku", "MUG-1")]).sku.as_str(), "MUG-1");
    let bare = op(&[]);
    assert_eq!(bare.action, Action::AddOrUpdate);
    assert_eq!(
        (
            bare.product,
            bare.price,
            bare.condition,
            bare.quantity,
            bare.share,
            bare.fulfillment,
            bare.start_selling_at
        ),
        (None, None, None, None, None, None, None)
    );
}

#[test]
fn add_delete() {
    for (v, a) in [
        ("a", Action::AddOrUpdate),
        ("A", Action::AddOrUpdate),
        ("", Action::AddOrUpdate),
        ("d", Action::DeleteInStore),
        ("D", Action::DeleteInStore),
        ("x", Action::DeleteEverywhere),
        ("X", Action::DeleteEverywhere),
        // The category templates' update_delete fills the same column.
        ("Update", Action::AddOrUpdate),
        ("PartialUpdate", Action::PartialUpdate),
        ("partial_update", Action::PartialUpdate),
        ("Delete", Action::DeleteInStore),
    ] {
        assert_eq!(op(&[("add-delete", v)]).action, a, "{v}");
    }
    let e = err(&[("add-delete", "remove")]);
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidRequest, Some("add-delete"))
    );
    // Deletes read the SKU only.
    let o = op(&[("add-delete", "d"), ("price", "abc"), ("quantity", "-1")]);
    assert_eq!(
        (o.action, o.price, o.quantity),
        (Action::DeleteInStore, None, None)
    );
}

#[test]
fn product_id_and_type() {
    let ident = |kind: &'static str, v: &str| {
        Some(ProductId::Identifier {
            kind: kind.into(),
            value: v.into(),
        })
    };
    for (t, v, want) in [
        (
            "1",
            "b0abcd1234",
            Some(ProductId::Asin("B0ABCD1234".into())),
        ),
        (
            "ASIN",
            "B0ABCD1234",
            Some(ProductId::Asin("B0ABCD1234".into())),
        ),
        ("2", "0306406152", ident("ISBN", "0306406152")),
        ("isbn", "9780306406157", ident("ISBN", "9780306406157")),
        ("3", "036000291452", ident("UPC", "036000291452")),
        ("Upc", "036000291452", ident("UPC", "036000291452")),
        ("4", "4006381333931", ident("EAN", "4006381333931")),
        ("EAN", "4006381333931", ident("EAN", "4006381333931")),
        ("gtin", "10036000291459", ident("GTIN", "10036000291459")),
        // Check digits and lengths are the caller's (R4).
        ("3", "012345678906", ident("UPC", "012345678906")),
    ] {
        assert_eq!(
            op(&[("product-id-type", t), ("product-id", v)]).product,
            want,
            "{t} {v}"
        );
    }
    // Inferred.
    for (v, want) in [
        ("B0ABCD1234", Some(ProductId::Asin("B0ABCD1234".into()))),
        ("036000291452", ident("UPC", "036000291452")),
        ("4006381333931", ident("EAN", "4006381333931")),
        ("10036000291459", ident("GTIN", "10036000291459")),
        ("0306406152", ident("ISBN", "0306406152")),
        ("080442957X", ident("ISBN", "080442957X")),
    ] {
        assert_eq!(op(&[("product-id", v)]).product, want, "{v}");
    }
    let e = err(&[("product-id", "12345")]);
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidIdentifier, Some("product-id"))
    );
    let e = err(&[("product-id-type", "5"), ("product-id", "036000291452")]);
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidRequest, Some("product-id-type"))
    );
    let e = err(&[("product-id-type", "3")]);
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidRequest, Some("product-id"))
    );
    let e = err(&[("product-id-type", "ASIN"), ("product-id", "B0-SHORT")]);
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidRequest, Some("product-id"))
    );
}

#[test]
fn price() {
    assert_eq!(op(&[("price", "19.99")]).price, Some(dec("19.99")));
    assert_eq!(op(&[("price", "19,99")]).price, Some(dec("19.99")));
    assert_eq!(op(&[("price", "7")]).price, Some(dec("7")));
    for bad in [
        "0", "-1", "abc", "$5", "1,234.56", "1.234,56", "19.999", "1e3",
    ] {
        let e = err(&[("price", bad)]);
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidPrice, Some("price")),
            "{bad}"
        );
    }
}

#[test]
fn item_condition() {
    use Condition::*;
    for (v, c) in [
        ("11", New),
        ("10", Refurbished),
        ("9", Refurbished),
        ("1", UsedLikeNew),
        ("2", UsedVeryGood),
        ("3", UsedGood),
        ("4", UsedAcceptable),
        ("5", CollectibleLikeNew),
        ("6", CollectibleVeryGood),
        ("7", CollectibleGood),
        ("8", CollectibleAcceptable),
        ("new", New),
        ("NEW", New),
        ("used_very_good", UsedVeryGood),
        ("Used Like New", UsedLikeNew),
        ("collectible-acceptable", CollectibleAcceptable),
    ] {
        assert_eq!(op(&[("item-condition", v)]).condition, Some(c), "{v}");
    }
    for c in Condition::ALL {
        assert_eq!(op(&[("item-condition", c.as_str())]).condition, Some(c));
    }
    for bad in ["0", "12", "mint", "99999999999"] {
        let e = err(&[("item-condition", bad)]);
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidRequest, Some("item-condition")),
            "{bad}"
        );
    }
}

#[test]
fn quantity() {
    assert_eq!(op(&[("quantity", "0")]).quantity, Some(0));
    assert_eq!(op(&[("quantity", "25")]).quantity, Some(25));
    assert_eq!(op(&[("quantity", "12.00")]).quantity, Some(12));
    assert_eq!(
        op(&[("quantity", "1000000000")]).quantity,
        Some(1_000_000_000)
    );
    for bad in [
        "-1",
        "abc",
        "1000000001",
        "99999999999999999999",
        "1.5",
        "+3",
        "1 000",
    ] {
        let e = err(&[("quantity", bad)]);
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidQuantity, Some("quantity")),
            "{bad}"
        );
    }
}

#[test]
fn inventory_sharing_and_fulfillment() {
    assert_eq!(
        op(&[("inventory-sharing", "existing")]).share,
        Some(ShareMode::Existing)
    );
    assert_eq!(
        op(&[("inventory-sharing", "UNIQUE")]).share,
        Some(ShareMode::Unique)
    );
    let e = err(&[("inventory-sharing", "shared")]);
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidRequest, Some("inventory-sharing"))
    );
    for (v, f) in [
        ("merchant", Fulfillment::Merchant),
        ("DEFAULT", Fulfillment::Merchant),
        ("default", Fulfillment::Merchant),
        ("marketplace", Fulfillment::Marketplace),
        ("AMAZON_NA", Fulfillment::Marketplace),
        ("amazon_na", Fulfillment::Marketplace),
    ] {
        assert_eq!(
            op(&[("fulfillment-channel", v)]).fulfillment,
            Some(f),
            "{v}"
        );
    }
    let e = err(&[("fulfillment-channel", "AFN")]);
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidRequest, Some("fulfillment-channel"))
    );
}

#[test]
fn start_selling_date() {
    assert_eq!(
        op(&[("start-selling-date", "2026-12-15")]).start_selling_at,
        Some(time::macros::datetime!(2026-12-15 0:00 UTC))
    );
    assert_eq!(
        op(&[("start-selling-date", "2026-12-15T09:00:00-05:00")]).start_selling_at,
        Some(time::macros::datetime!(2026-12-15 14:00 UTC))
    );
    assert_eq!(
        op(&[("start-selling-date", "2026-12-15T09:00:00Z")]).start_selling_at,
        Some(time::macros::datetime!(2026-12-15 9:00 UTC))
    );
    for bad in [
        "15/12/2026",
        "2026-13-01",
        "tomorrow",
        "2026-12-15T09:00:00",
    ] {
        let e = err(&[("start-selling-date", bad)]);
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidRequest, Some("start-selling-date")),
            "{bad}"
        );
    }
}

#[test]
fn errors_name_the_first_column_at_fault() {
    let e = err(&[("price", "abc"), ("quantity", "abc")]);
    assert_eq!(e.code, ErrorCode::InvalidPrice);
    let e = err(&[("add-delete", "q"), ("price", "abc")]);
    assert_eq!(e.field.as_deref(), Some("add-delete"));
}
