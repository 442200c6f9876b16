//! The header of a file (SPEC 5): template preambles (`#`, `TemplateType=`), the two header rows of the marketplace templates, column names and their mapping, known and ignored columns.

use super::*;

/// The columns of SPEC.md section 5, in the order of the template.
pub const KNOWN_COLUMNS: [&str; 10] = [
    "sku",
    "product-id",
    "product-id-type",
    "price",
    "item-condition",
    "quantity",
    "add-delete",
    "inventory-sharing",
    "fulfillment-channel",
    "start-selling-date",
];

/// Columns of the marketplace's templates that are accepted and never read (in the form
/// names are compared in: lower case, `-` for `_` and spaces).
pub const IGNORED_COLUMNS: &[&str] = &[
    "item-note",
    "will-ship-internationally",
    "expedited-shipping",
    "handling-time",
    "minimum-seller-allowed-price",
    "maximum-seller-allowed-price",
    "product-tax-code",
    "merchant-shipping-group-name",
    "merchant-shipping-group",
    "item-name",
    "item-description",
    "leadtime-to-ship",
    "batteries-required",
    "are-batteries-included",
    "item-is-marketplace",
    "item-package-quantity",
    "number-of-items",
    "list-price",
    "sale-price",
    "sale-from-date",
    "sale-through-date",
    "sale-start-date",
    "sale-end-date",
    "restock-date",
    "max-order-quantity",
    "max-aggregate-ship-quantity",
    "offering-can-be-gift-messaged",
    "offering-can-be-giftwrapped",
    "is-discontinued-by-manufacturer",
    "main-image-url",
    "other-image-url",
    "other-image-url1",
    "other-image-url2",
    "other-image-url3",
    "swatch-image-url",
    "brand-name",
    "brand",
    "manufacturer",
    "part-number",
    "model",
    "product-type",
    "feed-product-type",
    "item-type",
    "bullet-point1",
    "bullet-point2",
    "bullet-point3",
    "bullet-point4",
    "bullet-point5",
    "generic-keywords",
    "search-terms",
    "condition-note",
    "currency",
    "ship-internationally",
    "item-weight",
    "item-weight-unit-of-measure",
    "shipping-weight",
    "website-shipping-weight",
    "website-shipping-weight-unit-of-measure",
    "fulfillment-center-id",
    "package-height",
    "package-width",
    "package-length",
    "package-length-unit-of-measure",
    "package-weight",
    "package-weight-unit-of-measure",
    "business-price",
    "quantity-price-type",
    "progressive-discount-type",
    "national-stock-number",
    "unspsc-code",
    "pricing-action",
    "update-delete",
    "external-product-id",
    "external-product-id-type",
    "item-sku",
    "parent-child",
    "parent-sku",
    "relationship-type",
    "variation-theme",
    "country-of-origin",
    "warranty-description",
    "legal-disclaimer-description",
    "safety-warning",
];

/// A column name as it is matched: without regard to case or surrounding spaces, `_` or
/// a space counting as `-`.
pub(super) fn column_key(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

pub(super) fn names_have_sku(names: &[String]) -> bool {
    names.iter().any(|n| column_key(n) == KNOWN_COLUMNS[0])
}

pub(super) fn no_sku_column(names: &[String]) -> FileError {
    let mut found: String = names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect();
    if found.is_empty() {
        found.push_str("nothing");
    }
    FileError::NoSkuColumn(format!(
        "the first row after the template lines must hold the column names, one of them sku; found: {found}"
    ))
}

/// Maps the header's names to columns; FATAL without a `sku` column, with more columns
/// than a workbook can have, or with a known column named twice (which of the two the
/// seller meant cannot be told).
pub(super) fn reader_for(
    names: &[String],
    source: Source,
    format: FileFormat,
) -> Result<RowReader, FileError> {
    if names.len() > xlsx::COLUMNS_MAX {
        return Err(FileError::TooLarge(format!(
            "the row of column names has {} columns; a file may have at most {}",
            names.len(),
            xlsx::COLUMNS_MAX
        )));
    }
    let mut columns = Vec::with_capacity(names.len());
    let mut seen: [Option<usize>; 10] = [None; 10];
    let mut unknown = Vec::new();
    for (at, name) in names.iter().enumerate() {
        let norm = column_key(name);
        if norm.is_empty() {
            columns.push(None);
            continue;
        }
        if let Some(k) = KNOWN_COLUMNS.iter().position(|c| *c == norm) {
            if let Some(first) = seen[k] {
                let shown: String = name.chars().filter(|c| !c.is_control()).take(60).collect();
                return Err(FileError::DuplicateColumn(format!(
                    "the column {} is named twice (columns {} and {}, as {:?} and {:?}); keep one of them and upload the file again",
                    KNOWN_COLUMNS[k],
                    first + 1,
                    at + 1,
                    names[first],
                    shown
                )));
            }
            seen[k] = Some(at);
            columns.push(Some(k));
            continue;
        }
        if !IGNORED_COLUMNS.contains(&norm.as_str()) {
            unknown.push(name.clone());
        }
        columns.push(None);
    }
    if seen[0].is_none() {
        return Err(no_sku_column(names));
    }
    Ok(RowReader {
        source,
        columns,
        unknown,
        format,
        encoding: None,
        records: 0,
        error: None,
        done: false,
    })
}

/// Skips a sheet's template preamble and reads its row of column names (the attribute
/// row of a two-row template header). `None` for a sheet with no rows.
pub(super) fn sheet_header(rows: &mut SheetRows) -> Result<Option<Vec<String>>, FileError> {
    let mut preamble = false;
    let mut template = false;
    loop {
        let Some(row) = rows.next_row().map_err(xlsx_fatal)? else {
            return if preamble {
                Err(FileError::NoSkuColumn(
                    "the sheet has template lines (# or TemplateType=) but no row of column names after them".into(),
                ))
            } else {
                Ok(None)
            };
        };
        let Some(first) = row.cells.iter().map(|c| c.1.trim()).find(|t| !t.is_empty()) else {
            continue;
        };
        if let Some(is_template) = preamble_line(first) {
            preamble = true;
            template |= is_template;
            continue;
        }
        if template && let Some(next) = rows.next_row().map_err(xlsx_fatal)? {
            if next.cells.iter().any(|(_, t)| is_attribute_row_cell(t)) {
                return Ok(Some(sheet_names(&next)));
            }
            rows.push_back(next);
        }
        return Ok(Some(sheet_names(&row)));
    }
}

pub(super) fn sheet_names(row: &SheetRow) -> Vec<String> {
    let width = row.cells.iter().map(|c| c.0 + 1).max().unwrap_or(0);
    let mut names = vec![String::new(); width];
    for (c, t) in &row.cells {
        names[*c] = t.trim().to_owned();
    }
    names
}

/// Whether a line (its first cell) belongs to a template preamble: `Some(true)` for a
/// `TemplateType=` line, `Some(false)` for a `#` comment.
pub(super) fn preamble_line(first: &str) -> Option<bool> {
    let t = first.trim();
    let t = t.strip_prefix('"').unwrap_or(t);
    if t.starts_with('#') {
        return Some(false);
    }
    t.get(..13)
        .is_some_and(|p| p.eq_ignore_ascii_case("templatetype="))
        .then_some(true)
}

/// A cell that marks the attribute row of a two-row template header (SPEC 5: attribute
/// names are lower case, so the label `SKU` is not one).
pub(super) fn is_attribute_row_cell(cell: &str) -> bool {
    let t = cell.trim();
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t);
    t == "sku" || t == "item_sku"
}
