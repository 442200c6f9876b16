//! The processing report of an upload (SPEC.md section 5), in the marketplace's
//! tab-separated layout, and the empty inventory-loader template.

use std::borrow::Cow;
use std::io::{self, Write};

use onestock_core::model::{ReportKind, ReportLine};

use super::parse::KNOWN_COLUMNS;

/// The column names line of the report's table.
pub const REPORT_HEADER: &str =
    "original-record-number\tsku\terror-code\terror-type\terror-message";

/// The report as text, exactly:
///
/// ```text
/// Feed Processing Summary:
/// \tNumber of records processed\t\t6
/// \tNumber of records successful\t\t3
///
/// original-record-number\tsku\terror-code\terror-type\terror-message
/// 3\tBAD-1\tINVALID_IDENTIFIER\tError\tThe UPC 012345678906 has a wrong check digit.
/// ```
///
/// Tabs and line ends inside a SKU, code or message become spaces, so every line has five
/// fields.
pub fn format_report(processed: i64, successful: i64, lines: &[ReportLine]) -> String {
    let mut out = Vec::with_capacity(200 + lines.len() * 80);
    // Writing to a Vec cannot fail.
    let _ = write_report(&mut out, processed, successful, lines);
    // Only `str`s were written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`format_report`], streamed to `w` (for reports of large files).
pub fn write_report<'a, W: Write>(
    mut w: W,
    processed: i64,
    successful: i64,
    lines: impl IntoIterator<Item = &'a ReportLine>,
) -> io::Result<()> {
    write!(
        w,
        "Feed Processing Summary:\n\tNumber of records processed\t\t{processed}\n\tNumber of records successful\t\t{successful}\n\n"
    )?;
    let mut lines = lines.into_iter().peekable();
    // A report without errors or warnings ends after the summary and its blank line, as
    // the marketplace's do (SPEC 5).
    if lines.peek().is_some() {
        writeln!(w, "{REPORT_HEADER}")?;
    }
    write_lines(&mut w, lines)?;
    w.flush()
}

/// Report lines without the summary: the rest of a report streamed a page at a time.
pub fn write_lines<'a, W: Write>(
    mut w: W,
    lines: impl IntoIterator<Item = &'a ReportLine>,
) -> io::Result<()> {
    for l in lines {
        let kind = match l.kind {
            ReportKind::Error => "Error",
            ReportKind::Warning => "Warning",
        };
        writeln!(
            w,
            "{}\t{}\t{}\t{}\t{}",
            l.record,
            one_line(&l.sku),
            one_line(&l.code),
            kind,
            one_line(&file_words(&l.message))
        )?;
    }
    Ok(())
}

/// The rules speak the API's words (`send share: "unique"`); a report is read by someone
/// who wrote a file, whose column is `inventory-sharing`. The rules' messages are shared
/// by every door, so the upload door says them in the file's words here.
pub fn file_words(message: &str) -> Cow<'_, str> {
    const WORDS: [(&str, &str); 7] = [
        (
            "send share: \"unique\" or leave it out",
            "put unique in inventory-sharing, or leave it empty",
        ),
        (
            "send share: \"unique\" or leave share out",
            "put unique in inventory-sharing, or leave inventory-sharing empty",
        ),
        ("send share: \"unique\"", "put unique in inventory-sharing"),
        (
            "send share: \"existing\"",
            "put existing in inventory-sharing",
        ),
        ("leave share out", "leave inventory-sharing empty"),
        ("share: \"", "inventory-sharing \""),
        // A file's reader creates products on the seller pages or in a category
        // template, not with the API call the rules' message names.
        (" (POST /v1/catalog/items)", ""),
    ];
    if !message.contains("share") && !message.contains("/v1/") {
        return Cow::Borrowed(message);
    }
    let mut out = message.to_owned();
    for (api, file) in WORDS {
        out = out.replace(api, file);
    }
    Cow::Owned(out)
}

fn one_line(s: &str) -> Cow<'_, str> {
    if s.contains(['\t', '\n', '\r']) {
        Cow::Owned(s.replace(['\t', '\n', '\r'], " "))
    } else {
        Cow::Borrowed(s)
    }
}

/// An empty inventory-loader template: a `TemplateType=` line and `#` lines (both skipped
/// when the file is uploaded) explaining each column, then the row of column names.
pub fn template() -> String {
    let mut t = String::from(
        "TemplateType=InventoryLoader\tVersion=2026.1\tRows above the column names are instructions and are skipped.\n",
    );
    for line in [
        "# One file per store. Save it as tab-separated text (UTF-8 or Windows-1252), comma-separated text with the same columns, or an .xlsx workbook (first sheet).",
        "# One row per SKU below the column names. An empty cell leaves that field unchanged.",
        "# sku: required. Your code for the item: 1 to 40 characters, no spaces at the ends, case-sensitive.",
        "# product-id: the ASIN or product identifier the row lists against (UPC 12 digits, EAN 13, GTIN 14, ISBN 10 or 13, with a valid check digit); leading zeros are kept.",
        "# product-id-type: 1 ASIN, 2 ISBN, 3 UPC, 4 EAN (or the words ASIN, ISBN, UPC, EAN, GTIN). When empty it is guessed from product-id.",
        "# price: in the store's currency, no currency symbol, no thousands separator: 19.99 (19,99 is accepted too).",
        "# item-condition: 11 new; 10 or 9 refurbished; 1 to 4 used like new, very good, good, acceptable; 5 to 8 collectible like new, very good, good, acceptable; or a name: new, refurbished, used_like_new, used_very_good, used_good, used_acceptable, collectible_like_new, collectible_very_good, collectible_good, collectible_acceptable.",
        "# quantity: a whole number from 0 to 1000000000. On a shared quantity it sets the quantity in every store that shares it.",
        "# add-delete: a to add or update (the default when empty); d to delete the SKU's listing in this store only; x to delete the product and its listings in every store.",
        "# inventory-sharing: existing to share the SKU's quantity and condition with its listings in other stores; unique for a quantity of its own; empty shares where possible, else starts the shared quantity.",
        "# fulfillment-channel: merchant or DEFAULT (you ship, the default); marketplace or AMAZON_NA (the marketplace ships; never shared).",
        "# start-selling-date: optional; a date like 2026-12-15 (midnight UTC) or a time like 2026-12-15T09:00:00-05:00 (RFC 3339). The listing is not for sale before it.",
        "# Other columns of the marketplace's templates (item-note, handling-time, ...) are accepted and ignored; other unknown columns give one warning.",
    ] {
        t.push_str(line);
        t.push('\n');
    }
    t.push_str(&KNOWN_COLUMNS.join("\t"));
    t.push('\n');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_messages_speak_of_the_files_column() {
        for m in [
            "Listings fulfilled by the marketplace never share a pool; send share: \"unique\" or leave it out.",
            "This SKU's other listings are fulfilled by the marketplace, which never share a pool; send share: \"unique\" or leave share out.",
            "SKU M has no shared pool in another store to join; leave share out to start one, or send share: \"unique\".",
        ] {
            let said = file_words(m);
            assert!(!said.contains("share:"), "{said}");
            assert!(said.contains("inventory-sharing"), "{said}");
        }
        assert_eq!(file_words("The UPC is wrong."), "The UPC is wrong.");
    }

    #[test]
    fn messages_name_no_api_call() {
        let said = file_words(
            "ASIN B0ABCD1234 has no detail page in store US; create the product there first (POST /v1/catalog/items).",
        );
        assert_eq!(
            said,
            "ASIN B0ABCD1234 has no detail page in store US; create the product there first."
        );
    }

    fn line(record: i64, sku: &str, code: &str, kind: ReportKind, message: &str) -> ReportLine {
        ReportLine {
            record,
            sku: sku.into(),
            code: code.into(),
            kind,
            message: message.into(),
        }
    }

    #[test]
    fn report_matches_the_spec_byte_for_byte() {
        let got = format_report(
            6,
            3,
            &[line(
                3,
                "BAD-1",
                "INVALID_IDENTIFIER",
                ReportKind::Error,
                "The UPC 012345678906 has a wrong check digit.",
            )],
        );
        let want = "Feed Processing Summary:\n\
                    \tNumber of records processed\t\t6\n\
                    \tNumber of records successful\t\t3\n\
                    \n\
                    original-record-number\tsku\terror-code\terror-type\terror-message\n\
                    3\tBAD-1\tINVALID_IDENTIFIER\tError\tThe UPC 012345678906 has a wrong check digit.\n";
        assert_eq!(got, want);
        assert_eq!(got.as_bytes(), want.as_bytes());
    }

    #[test]
    fn report_without_lines_and_with_warnings() {
        assert_eq!(
            format_report(0, 0, &[]),
            "Feed Processing Summary:\n\tNumber of records processed\t\t0\n\tNumber of records successful\t\t0\n\n"
        );
        let got = format_report(
            2,
            2,
            &[line(
                0,
                "",
                "UNKNOWN_COLUMN",
                ReportKind::Warning,
                "Unknown columns were ignored: colour.",
            )],
        );
        assert!(
            got.ends_with(
                "\n0\t\tUNKNOWN_COLUMN\tWarning\tUnknown columns were ignored: colour.\n"
            )
        );
    }

    #[test]
    fn tabs_and_line_ends_in_fields_become_spaces() {
        let got = format_report(
            1,
            0,
            &[line(
                1,
                "A\tB",
                "INVALID_PRICE",
                ReportKind::Error,
                "bad\r\nprice\there",
            )],
        );
        let last = got.lines().last().unwrap();
        assert_eq!(last, "1\tA B\tINVALID_PRICE\tError\tbad  price here");
        assert_eq!(last.split('\t').count(), 5);
        assert_eq!(got.lines().count(), 6);
    }

    #[test]
    fn write_report_streams_the_same_text() {
        let lines = vec![line(2, "X", "INVALID_QUANTITY", ReportKind::Error, "q")];
        let mut out = Vec::new();
        write_report(&mut out, 2, 1, &lines).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format_report(2, 1, &lines));
    }

    #[test]
    fn template_shape() {
        let t = template();
        assert!(t.starts_with("TemplateType=InventoryLoader\tVersion=2026.1\t"));
        let last = t.lines().last().unwrap();
        assert_eq!(
            last,
            "sku\tproduct-id\tproduct-id-type\tprice\titem-condition\tquantity\tadd-delete\tinventory-sharing\tfulfillment-channel\tstart-selling-date"
        );
        for l in t.lines().skip(1) {
            assert!(l.starts_with('#') || l == last, "{l}");
        }
        for c in KNOWN_COLUMNS {
            assert!(t.contains(&format!("# {c}:")), "{c} is not explained");
        }
    }

    #[test]
    fn template_reads_back_as_a_file_with_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("template.txt");
        std::fs::write(&path, template()).unwrap();
        let mut rows = super::super::parse::open(&path).unwrap();
        assert_eq!(rows.format(), super::super::parse::FileFormat::Tsv);
        assert!(rows.unknown_columns().is_empty());
        assert!(rows.next().is_none());
    }
}
