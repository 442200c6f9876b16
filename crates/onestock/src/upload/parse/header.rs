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

/// The columns a row reads beyond [`KNOWN_COLUMNS`] (SPEC 5): the category templates'
/// product information, and `fulfillment-center-id` (read where `fulfillment-channel`
/// is empty). Slots 10 to 15 of a row, in this order.
pub const PRODUCT_COLUMNS: [&str; 6] = [
    "feed-product-type",
    "brand-name",
    "item-name",
    "product-description",
    "language-value",
    "fulfillment-center-id",
];

/// Known columns in all: [`KNOWN_COLUMNS`] then [`PRODUCT_COLUMNS`].
pub(super) const SLOTS: usize = 16;

/// The category templates' names (`TemplateType=fptcustom`) of columns of section 5's
/// table, with the slot each fills.
pub const COLUMN_ALIASES: [(&str, usize); 6] = [
    ("item-sku", 0),
    ("external-product-id", 1),
    ("external-product-id-type", 2),
    ("standard-price", 3),
    ("condition-type", 4),
    ("update-delete", 6),
];

/// Columns of the marketplace's templates (the Inventory Loader's full attribute row,
/// Price & Quantity, and the category templates' common columns) that are accepted and
/// never read, in the form names are compared in: lower case, `-` for `_` and spaces.
/// A numbered column (`bullet_point1` ... `5`, `supplier_declared_dg_hz_regulation1`
/// ... `5`, `ghs_classification_class1` ... `3`) is listed by its name without the
/// number, and any number is accepted after it.
pub const IGNORED_COLUMNS: &[&str] = &[
    "minimum-seller-allowed-price",
    "maximum-seller-allowed-price",
    "will-ship-internationally",
    "expedited-shipping",
    "item-note",
    "product-tax-code",
    "handling-time",
    "merchant-shipping-group-name",
    "batteries-required",
    "are-batteries-included",
    "battery-cell-composition",
    "battery-type",
    "number-of-batteries",
    "battery-weight",
    "battery-weight-unit-of-measure",
    "number-of-lithium-ion-cells",
    "number-of-lithium-metal-cells",
    "lithium-battery-packaging",
    "lithium-battery-energy-content",
    "lithium-battery-energy-content-unit-of-measure",
    "lithium-battery-weight",
    "lithium-battery-weight-unit-of-measure",
    "supplier-declared-dg-hz-regulation",
    "hazmat-united-nations-regulatory-id",
    "safety-data-sheet-url",
    "item-weight",
    "item-weight-unit-of-measure",
    "item-volume",
    "item-volume-unit-of-measure",
    "flash-point",
    "ghs-classification-class",
    "item-is-marketplace",
    "leadtime-to-ship",
    "item-description",
    "merchant-shipping-group",
    "ship-internationally",
    "currency",
    "sale-price",
    "sale-start-date",
    "sale-end-date",
    "sale-from-date",
    "sale-through-date",
    "business-price",
    "quantity-price-type",
    "quantity-lower-bound",
    "quantity-price",
    "progressive-discount-type",
    "progressive-discount-lower-bound",
    "progressive-discount-value",
    "pricing-action",
    "national-stock-number",
    "unspsc-code",
    "list-price",
    "list-price-with-tax",
    "minimum-advertised-price",
    "map-price",
    "points",
    "restock-date",
    "max-order-quantity",
    "item-type",
    "condition-note",
    "manufacturer",
    "part-number",
    "mfr-part-number",
    "model",
    "model-name",
    "model-number",
    "model-year",
    "main-image-url",
    "other-image-url",
    "swatch-image-url",
    "parent-child",
    "parent-sku",
    "relationship-type",
    "variation-theme",
    "bullet-point",
    "generic-keywords",
    "target-audience-keywords",
    "specific-uses-keywords",
    "thesaurus-attribute-keywords",
    "platinum-keywords",
    "subject-keywords",
    "recommended-browse-nodes",
    "color-name",
    "color-map",
    "size-name",
    "size-map",
    "material-type",
    "material-composition",
    "department-name",
    "style-name",
    "pattern-name",
    "item-shape",
    "item-form",
    "item-length",
    "item-width",
    "item-height",
    "item-dimensions-unit-of-measure",
    "item-length-unit-of-measure",
    "item-width-unit-of-measure",
    "item-height-unit-of-measure",
    "item-display-length",
    "item-display-width",
    "item-display-height",
    "item-display-weight",
    "item-display-length-unit-of-measure",
    "item-display-width-unit-of-measure",
    "item-display-height-unit-of-measure",
    "item-display-weight-unit-of-measure",
    "item-display-volume",
    "item-display-volume-unit-of-measure",
    "shipping-weight",
    "website-shipping-weight",
    "website-shipping-weight-unit-of-measure",
    "package-height",
    "package-width",
    "package-length",
    "package-weight",
    "package-length-unit-of-measure",
    "package-height-unit-of-measure",
    "package-width-unit-of-measure",
    "package-weight-unit-of-measure",
    "package-dimensions-unit-of-measure",
    "package-level",
    "package-contains-quantity",
    "package-contains-identifier",
    "country-of-origin",
    "country-string",
    "cpsia-cautionary-statement",
    "cpsia-cautionary-description",
    "warranty-description",
    "legal-disclaimer-description",
    "safety-warning",
    "product-site-launch-date",
    "merchant-release-date",
    "offering-can-be-gift-messaged",
    "offering-can-be-giftwrapped",
    "is-discontinued-by-manufacturer",
    "max-aggregate-ship-quantity",
    "item-package-quantity",
    "number-of-items",
    "fulfillment-latency",
    "missing-keyset-reason",
    "gtin-exemption-reason",
    "included-components",
    "unit-count",
    "unit-count-type",
    "is-expiration-dated-product",
    "fabric-type",
    "import-designation",
    "special-features",
    "number-of-boxes",
    "number-of-pieces",
    "california-proposition-65-compliance-type",
    "california-proposition-65-chemical-names",
    "pesticide-marking-type",
    "pesticide-marking-registration-status",
    "pesticide-marking-certification-number",
    "manufacturer-contact-information",
    "target-gender",
    "age-range-description",
    "manufacturer-minimum-age",
    "manufacturer-maximum-age",
    "mfg-minimum",
    "mfg-maximum",
    "mfg-minimum-unit-of-measure",
    "mfg-maximum-unit-of-measure",
    "closure-type",
    "scent-name",
    "flavor-name",
    "capacity",
    "capacity-unit-of-measure",
    "wattage",
    "wattage-unit-of-measure",
    "voltage",
    "power-source-type",
    "is-assembly-required",
    "assembly-instructions",
    "finish-type",
    "collection-name",
    "theme",
    "item-type-name",
    "occasion-type",
    "lifestyle",
    "outer-material-type",
    "inner-material-type",
    "care-instructions",
    "water-resistance-level",
    "compliance-media-content-type",
    "compliance-media-content-language",
    "compliance-media-source-location",
    "product-compliance-certificate",
    "regulation-type",
    "regulatory-identification",
    "eu-toys-safety-directive-age-warning",
    "eu-toys-safety-directive-warning",
    "eu-toys-safety-directive-language",
    "external-testing-certification",
    "legal-compliance-certification-metadata",
    "legal-compliance-certification-expiration-date",
    "legal-compliance-certification-regulatory-organization-name",
    "legal-compliance-certification-status",
    "product-expiration-type",
    "fc-shelf-life",
    "fc-shelf-life-unit-of-measure",
    "brand",
    "product-type",
    "search-terms",
];

/// The slot a column name (already [`column_key`]) fills, if it is known.
pub(super) fn column_slot(key: &str) -> Option<usize> {
    KNOWN_COLUMNS
        .iter()
        .chain(PRODUCT_COLUMNS.iter())
        .position(|c| *c == key)
        .or_else(|| {
            COLUMN_ALIASES
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, slot)| *slot)
        })
}

/// The name of a slot, as section 5 names it.
pub(super) fn slot_name(slot: usize) -> &'static str {
    KNOWN_COLUMNS
        .iter()
        .chain(PRODUCT_COLUMNS.iter())
        .nth(slot)
        .copied()
        .unwrap_or("?")
}

/// Whether a column (already [`column_key`]) is one of the templates' that are never
/// read.
pub fn is_ignored_column(key: &str) -> bool {
    IGNORED_COLUMNS.contains(&key)
        || IGNORED_COLUMNS.contains(&key.trim_end_matches(|c: char| c.is_ascii_digit()))
}

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
    names.iter().any(|n| column_slot(&column_key(n)) == Some(0))
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
    let mut seen: [Option<usize>; SLOTS] = [None; SLOTS];
    let mut unknown = Vec::new();
    for (at, name) in names.iter().enumerate() {
        let norm = column_key(name);
        if norm.is_empty() {
            columns.push(None);
            continue;
        }
        if let Some(k) = column_slot(&norm) {
            if let Some(first) = seen[k] {
                let shown: String = name.chars().filter(|c| !c.is_control()).take(60).collect();
                return Err(FileError::DuplicateColumn(format!(
                    "the column {} is named twice (columns {} and {}, as {:?} and {:?}); keep one of them and upload the file again",
                    slot_name(k),
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
        if !is_ignored_column(&norm) {
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
