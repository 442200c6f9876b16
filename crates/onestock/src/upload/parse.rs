//! Reading an upload file (SPEC.md section 5) as rows, streaming.
//!
//! [`open`] sniffs the format, decides the text encoding, skips the template preamble and
//! reads the header row; the [`RowReader`] it returns then yields one [`RawRow`] per data
//! row. [`parse_row`] turns a row's fields into the core's typed upload row ([`RowOp`]). Nothing here touches the
//! rules or the storage.
//!
//! Decisions (where SPEC.md is silent):
//!
//! - **Formats.** A file that starts with the ZIP magic `PK\x03\x04` is read as an `.xlsx`
//!   workbook, streaming and within the bounds of [`super::xlsx`]: its sheet named
//!   `Template` (or a translation), else its first visible sheet whose column names
//!   include `sku`. Anything else is text: tab-separated when the header line holds a
//!   tab, else comma-separated. Comma-separated text uses RFC 4180 quoting (a quoted
//!   field may hold commas, tabs, quotes as `""` and line ends); tab-separated text is
//!   not quoted (a `"` is an ordinary character), as the marketplace writes it.
//! - **Encoding.** The whole file is scanned once before reading. It is UTF-8 if it starts
//!   with a UTF-8 byte order mark or is valid UTF-8 throughout, else Windows-1252 (which
//!   covers Latin-1's printable characters). A file with a UTF-8 byte order mark but bytes
//!   that are not UTF-8 is FATAL (`undecodable text`), and so is UTF-16 text, and so is
//!   text that mixes the two (UTF-8 characters beyond ASCII and bytes that are not
//!   UTF-8): reading it either way would turn part of it into the wrong characters, so
//!   the error names the first line at fault. A file that holds a NUL byte is not text
//!   (FATAL `not a table`).
//! - **Preamble.** Before the header row, lines that start with `#` or `TemplateType=`
//!   (either possibly after a `"`, as spreadsheets save them) and blank lines are skipped.
//!   After a `TemplateType=` line the marketplace's templates have two header rows, a
//!   row of labels for people and then the attribute row: the second is the header when
//!   one of its cells is exactly `sku` or `item_sku`, else the first is, as in a file
//!   with one header row. If the header names no `sku` column the file is FATAL.
//! - **Column names** are matched without regard to case or surrounding spaces, and `_`
//!   or a space counts as `-` (`item_condition` is `item-condition`). A known column
//!   named twice (`quantity` and `QUANTITY`) is FATAL (`duplicate column`), naming it:
//!   which of the two was meant cannot be told. Columns with no name are ignored
//!   silently; at most [`super::xlsx::COLUMNS_MAX`] columns.
//! - **Blank lines.** A line whose fields are all empty or spaces (`\n`, `,,,,`) is not a
//!   data row: it is skipped and takes no record number. Record numbers count the other
//!   lines after the header from 1.
//! - **Ragged rows.** Missing trailing fields are empty; fields beyond the header are
//!   ignored.
//! - **Long rows.** A row longer than [`MAX_ROW_BYTES`] (1 MiB, line end not counted) is
//!   still a data row with its record number, but carries a [`RawRow::problem`]
//!   (`INVALID_REQUEST`); its fields are read from its first MiB only (so the report can
//!   name its SKU) and the rest of it is skipped. In comma-separated text, a quote that is
//!   never closed makes a row run on over the next lines; it ends at the first line end
//!   after 1 MiB. Rows after it are read as usual.
//! - **Errors while reading** (the disk, not the content) end the iteration;
//!   [`RowReader::error`] then says why.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use encoding_rs::WINDOWS_1252;
use onestock_core::error::{DomainError, ErrorCode};
use onestock_core::types::{
    Asin, Condition, Fulfillment, ShareMode, Sku, check_quantity, parse_price_amount,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::xlsx::{self, SheetRow, SheetRows, Workbook, XlsxError};

/// Longest data row read, in bytes, line end not counted.
pub const MAX_ROW_BYTES: usize = 1 << 20;

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

/// Why a file as a whole could not be read (upload status `FATAL`). The `Display` text is
/// meant for the upload's `error` field.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "empty file: it holds no rows; the first row must hold the column names (sku, price, quantity, ...)"
    )]
    Empty,
    #[error("not a table: {0}")]
    NotATable(String),
    #[error("no sku column: {0}")]
    NoSkuColumn(String),
    #[error("undecodable text: {0}")]
    Undecodable(String),
    /// A bound on what one upload may hold was passed; the text names it.
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("duplicate column: {0}")]
    DuplicateColumn(String),
    #[error("the file could not be read: {0}")]
    Io(#[from] io::Error),
}

/// How the file was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Tsv,
    Csv,
    Xlsx,
}

/// The encoding of a text file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Windows1252,
}

/// The known columns of one row, trimmed; `None` where the column is absent or blank.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowFields {
    pub sku: Option<String>,
    pub product_id: Option<String>,
    pub product_id_type: Option<String>,
    pub price: Option<String>,
    pub item_condition: Option<String>,
    pub quantity: Option<String>,
    pub add_delete: Option<String>,
    pub inventory_sharing: Option<String>,
    pub fulfillment_channel: Option<String>,
    pub start_selling_date: Option<String>,
}

impl RowFields {
    fn from_slots(slots: [Option<String>; 10]) -> RowFields {
        let [
            sku,
            product_id,
            product_id_type,
            price,
            item_condition,
            quantity,
            add_delete,
            inventory_sharing,
            fulfillment_channel,
            start_selling_date,
        ] = slots;
        RowFields {
            sku,
            product_id,
            product_id_type,
            price,
            item_condition,
            quantity,
            add_delete,
            inventory_sharing,
            fulfillment_channel,
            start_selling_date,
        }
    }
}

/// One data row of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    /// Data rows counted from 1 (blank lines not counted).
    pub record: i64,
    pub fields: RowFields,
    /// Set when the row itself could not be read (over [`MAX_ROW_BYTES`], text that does
    /// not decode): report it as this record's error and do not apply the row. `fields`
    /// then holds what could be read, for the report's SKU.
    pub problem: Option<DomainError>,
}

/// The rows of an opened upload file, in order. See the module documentation.
pub struct RowReader {
    source: Source,
    /// For each column position, the index in [`KNOWN_COLUMNS`] it fills.
    columns: Vec<Option<usize>>,
    unknown: Vec<String>,
    format: FileFormat,
    encoding: Option<TextEncoding>,
    records: i64,
    error: Option<FileError>,
    done: bool,
}

enum Source {
    Text(TextSource),
    Sheet(SheetSource),
}

struct TextSource {
    reader: BufReader<File>,
    encoding: TextEncoding,
    delimiter: u8,
    quoting: bool,
    /// One reader for the whole file, fed one record at a time (its buffer is the
    /// cursor's): building a `csv::Reader` per row would cost more than reading the row.
    csv: csv::Reader<io::Cursor<Vec<u8>>>,
    record: csv::ByteRecord,
}

struct SheetSource {
    rows: SheetRows,
}

impl RowReader {
    /// Column names of the header that are neither of section 5 nor accepted template
    /// columns, as written in the file: the caller writes one `UNKNOWN_COLUMN` warning.
    pub fn unknown_columns(&self) -> &[String] {
        &self.unknown
    }
    pub fn format(&self) -> FileFormat {
        self.format
    }
    /// `None` for a workbook.
    pub fn encoding(&self) -> Option<TextEncoding> {
        self.encoding
    }
    /// Data rows returned (or skipped by [`RowReader::skip_to`]) so far.
    pub fn records_read(&self) -> i64 {
        self.records
    }
    /// Why the iteration stopped early, if it did (an I/O error, not the content).
    pub fn error(&self) -> Option<&FileError> {
        self.error.as_ref()
    }
    /// Skips rows so that the next row returned is the one numbered `record` (or the end of
    /// the file). A resumed upload whose rows up to `checkpoint` were applied calls
    /// `skip_to(checkpoint + 1)`. Rows already passed are not read again.
    pub fn skip_to(&mut self, record: i64) {
        while self.records + 1 < record {
            if self.next().is_none() {
                break;
            }
        }
    }

    fn next_text(&mut self) -> Option<RawRow> {
        let Source::Text(src) = &mut self.source else {
            return None;
        };
        loop {
            let buf = src.csv.get_mut().get_mut();
            let mut too_long = match read_record(&mut src.reader, buf, src.quoting, src.delimiter) {
                Ok(Some(t)) => t,
                Ok(None) => return None,
                Err(e) => {
                    self.error = Some(FileError::Io(e));
                    return None;
                }
            };
            strip_line_end(buf);
            if buf.len() > MAX_ROW_BYTES {
                too_long = true;
                buf.truncate(MAX_ROW_BYTES);
            }
            src.csv.get_mut().set_position(0);
            src.record.clear();
            let parsed = src
                .csv
                .seek_raw(SeekFrom::Start(0), csv::Position::new())
                .and_then(|()| src.csv.read_byte_record(&mut src.record));
            if !matches!(parsed, Ok(true)) && !too_long {
                continue;
            }
            let mut slots: [Option<String>; 10] = Default::default();
            let mut blank = true;
            let mut bad_text = false;
            for (i, raw) in src.record.iter().enumerate() {
                let text = match decode(raw, src.encoding) {
                    Some(t) => t,
                    None => {
                        bad_text = true;
                        String::from_utf8_lossy(raw)
                    }
                };
                let t = text.trim();
                if t.is_empty() {
                    continue;
                }
                blank = false;
                if let Some(Some(k)) = self.columns.get(i) {
                    slots[*k] = Some(t.to_owned());
                }
            }
            if blank && !too_long {
                continue;
            }
            self.records += 1;
            let problem = if too_long {
                Some(too_long_problem())
            } else if bad_text {
                Some(DomainError::new(
                    ErrorCode::InvalidRequest,
                    "This row holds bytes that are not text in the file's encoding; save the file again as UTF-8 and upload it again.",
                ))
            } else {
                None
            };
            return Some(RawRow {
                record: self.records,
                fields: RowFields::from_slots(slots),
                problem,
            });
        }
    }

    fn next_sheet(&mut self) -> Option<RawRow> {
        let Source::Sheet(src) = &mut self.source else {
            return None;
        };
        loop {
            let row = match src.rows.next_row() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => {
                    // The whole sheet was read once when the file was opened, so only the
                    // disk can fail here.
                    self.error = Some(xlsx_fatal(e));
                    return None;
                }
            };
            let mut slots: [Option<String>; 10] = Default::default();
            let mut blank = true;
            for (c, text) in &row.cells {
                let t = text.trim();
                if t.is_empty() {
                    continue;
                }
                blank = false;
                if let Some(Some(k)) = self.columns.get(*c) {
                    slots[*k] = Some(t.to_owned());
                }
            }
            if blank && !row.too_long {
                continue;
            }
            self.records += 1;
            return Some(RawRow {
                record: self.records,
                fields: RowFields::from_slots(slots),
                problem: row.too_long.then(too_long_problem),
            });
        }
    }
}

impl Iterator for RowReader {
    type Item = RawRow;

    fn next(&mut self) -> Option<RawRow> {
        if self.done {
            return None;
        }
        let row = match self.source {
            Source::Text(_) => self.next_text(),
            Source::Sheet(_) => self.next_sheet(),
        };
        if row.is_none() {
            self.done = true;
        }
        row
    }
}

fn too_long_problem() -> DomainError {
    DomainError::new(
        ErrorCode::InvalidRequest,
        format!(
            "This row is longer than {MAX_ROW_BYTES} bytes (1 MiB) and was not read; shorten its fields. In a comma-separated file, a quote \" that is never closed also makes a row run on."
        ),
    )
}

/// States of the RFC 4180 quoting of comma-separated text, as the `csv` crate reads it:
/// used to find where a record ends when a quoted field holds a line end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CsvState {
    StartField,
    InField,
    InQuoted,
    ClosingQuote,
}

impl CsvState {
    fn step(self, b: u8, delimiter: u8) -> CsvState {
        match self {
            CsvState::StartField if b == b'"' => CsvState::InQuoted,
            CsvState::StartField | CsvState::InField | CsvState::ClosingQuote if b == delimiter => {
                CsvState::StartField
            }
            CsvState::StartField | CsvState::InField => CsvState::InField,
            CsvState::InQuoted if b == b'"' => CsvState::ClosingQuote,
            CsvState::InQuoted => CsvState::InQuoted,
            CsvState::ClosingQuote if b == b'"' => CsvState::InQuoted,
            CsvState::ClosingQuote => CsvState::InField,
        }
    }
}

/// Reads the next record's bytes (line end included) into `buf`, at most
/// `MAX_ROW_BYTES + 2` of them; the rest of a longer record is skipped. `None` at the
/// end of the file, else whether the record was cut.
fn read_record(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    quoting: bool,
    delimiter: u8,
) -> io::Result<Option<bool>> {
    buf.clear();
    let limit = MAX_ROW_BYTES + 2;
    let mut cut = false;
    let mut state = CsvState::StartField;
    let mut any = false;
    loop {
        let avail = reader.fill_buf()?;
        if avail.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let end = if quoting && !cut {
            find_record_end(avail, &mut state, delimiter)
        } else {
            avail.iter().position(|&b| b == b'\n')
        };
        let take = end.map_or(avail.len(), |i| i + 1);
        if !cut {
            let room = limit - buf.len();
            if take > room {
                buf.extend_from_slice(&avail[..room]);
                cut = true;
            } else {
                buf.extend_from_slice(&avail[..take]);
            }
        }
        reader.consume(take);
        if end.is_some() {
            return Ok(Some(cut));
        }
    }
}

/// The index of the `\n` that ends the record in `bytes`, if there is one, given the
/// quoting state at its start; updates the state when there is none.
fn find_record_end(bytes: &[u8], state: &mut CsvState, delimiter: u8) -> Option<usize> {
    let mut from = 0;
    while from < bytes.len() {
        let rest = &bytes[from..];
        let nl = rest.iter().position(|&b| b == b'\n');
        let seg = &rest[..nl.unwrap_or(rest.len())];
        if *state != CsvState::InQuoted && !seg.contains(&b'"') {
            // No quote: the state cannot become InQuoted within this segment.
            if let Some(i) = nl {
                *state = CsvState::StartField;
                return Some(from + i);
            }
            if let Some(&last) = seg.last() {
                *state = if last == delimiter {
                    CsvState::StartField
                } else {
                    CsvState::InField
                };
            }
            return None;
        }
        for &b in seg {
            *state = state.step(b, delimiter);
        }
        match nl {
            Some(i) if *state != CsvState::InQuoted => {
                *state = CsvState::StartField;
                return Some(from + i);
            }
            Some(i) => from += i + 1, // a line end inside a quoted field
            None => return None,
        }
    }
    None
}

fn strip_line_end(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
}

fn decode(raw: &[u8], encoding: TextEncoding) -> Option<Cow<'_, str>> {
    match encoding {
        TextEncoding::Utf8 => std::str::from_utf8(raw).ok().map(Cow::Borrowed),
        TextEncoding::Windows1252 => Some(WINDOWS_1252.decode_without_bom_handling(raw).0),
    }
}

/// Reads one physical line (line end included) into `out`, at most `limit` bytes of it;
/// returns the bytes consumed and whether the line was cut.
fn read_line_limited(
    reader: &mut impl BufRead,
    out: &mut Vec<u8>,
    limit: usize,
) -> io::Result<(usize, bool)> {
    let mut total = 0;
    let mut cut = false;
    loop {
        let avail = reader.fill_buf()?;
        if avail.is_empty() {
            return Ok((total, cut));
        }
        let end = avail.iter().position(|&b| b == b'\n');
        let take = end.map_or(avail.len(), |i| i + 1);
        let room = limit.saturating_sub(out.len());
        if take > room {
            cut = true;
        }
        out.extend_from_slice(&avail[..take.min(room)]);
        reader.consume(take);
        total += take;
        if end.is_some() {
            return Ok((total, cut));
        }
    }
}

/// Opens an upload file: sniffs its format and encoding, skips the preamble and reads the
/// header row. FATAL problems of the file as a whole are errors here.
pub fn open(path: &Path) -> Result<RowReader, FileError> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        let got = file.read(&mut head[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    let head = &head[..n];
    if head.is_empty() {
        return Err(FileError::Empty);
    }
    if head.starts_with(b"PK\x03\x04") {
        drop(file);
        return open_xlsx(path);
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Err(FileError::NotATable(
            "this is an .xls workbook (Excel 97-2003), which is not accepted; save it as .xlsx or as tab-separated text".into(),
        ));
    }
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(FileError::Undecodable(
            "the text is UTF-16; save the file as UTF-8 (or Windows-1252) text".into(),
        ));
    }
    file.seek(SeekFrom::Start(0))?;
    let scan = scan_text(&mut file)?;
    if let Some(at) = scan.first_nul {
        return Err(FileError::NotATable(format!(
            "the file holds binary data (a NUL byte at byte {at}), not text; upload tab-separated text, comma-separated text or an .xlsx workbook"
        )));
    }
    if scan.bom && scan.first_invalid.is_some() {
        return Err(FileError::Undecodable(format!(
            "the file starts with a UTF-8 byte order mark but holds bytes that are not UTF-8 (at byte {}); save it again as UTF-8",
            scan.first_invalid.unwrap_or(0)
        )));
    }
    if let Some(at) = scan.first_invalid
        && scan.utf8_multibyte
    {
        return Err(FileError::Undecodable(format!(
            "the file is UTF-8 text, but line {} holds bytes that are not UTF-8 (at byte {at}): part of it was saved in another encoding; save the whole file again as UTF-8",
            scan.first_invalid_line
        )));
    }
    let encoding = if scan.first_invalid.is_none() {
        TextEncoding::Utf8
    } else {
        TextEncoding::Windows1252
    };
    file.seek(SeekFrom::Start(if scan.bom { 3 } else { 0 }))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);

    // Preamble and header row.
    let mut line = Vec::new();
    let mut preamble = false;
    let mut template = false;
    loop {
        line.clear();
        let (n, cut) = read_line_limited(&mut reader, &mut line, MAX_ROW_BYTES + 2)?;
        if n == 0 {
            return Err(if preamble {
                FileError::NoSkuColumn(
                    "the file has template lines (# or TemplateType=) but no row of column names after them".into(),
                )
            } else {
                FileError::Empty
            });
        }
        strip_line_end(&mut line);
        let text = decode(&line, encoding).unwrap_or_else(|| String::from_utf8_lossy(&line));
        let t = text.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(is_template) = preamble_line(t) {
            preamble = true;
            template |= is_template;
            continue;
        }
        if cut || line.len() > MAX_ROW_BYTES {
            return Err(FileError::NotATable(
                "the row of column names is longer than 1 MiB".into(),
            ));
        }
        break;
    }
    let delimiter = if line.contains(&b'\t') { b'\t' } else { b',' };
    if template {
        // The marketplace's templates put a row of labels for people between the
        // `TemplateType=` line and the attribute row (SPEC 5): the attribute row, when it
        // follows, names the columns. Otherwise the next line is data: read it again.
        let at = reader.stream_position()?;
        let mut next = Vec::new();
        let (_, cut) = read_line_limited(&mut reader, &mut next, MAX_ROW_BYTES + 2)?;
        strip_line_end(&mut next);
        let text = decode(&next, encoding).unwrap_or_else(|| String::from_utf8_lossy(&next));
        if !cut && text.split(delimiter as char).any(is_attribute_row_cell) {
            line = next;
        } else {
            reader.seek(SeekFrom::Start(at))?;
        }
    }
    let quoting = delimiter == b',';
    let mut builder = csv::ReaderBuilder::new();
    builder
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .quoting(quoting)
        .terminator(csv::Terminator::Any(b'\n'));
    let mut header = csv::ByteRecord::new();
    // Reading from a slice cannot fail; an empty result leaves `header` empty.
    let _ = builder.from_reader(&line[..]).read_byte_record(&mut header);
    let mut csv = builder.from_reader(io::Cursor::new(Vec::new()));
    // Reads the (empty) "headers" now, so that later seeks never take a record for them.
    let _ = csv.seek_raw(SeekFrom::Start(0), csv::Position::new());
    let names: Vec<String> = header
        .iter()
        .map(|raw| {
            let text = decode(raw, encoding).unwrap_or_else(|| String::from_utf8_lossy(raw));
            let t = text.trim().trim_start_matches('\u{feff}').trim();
            let t = if !quoting && t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
                t[1..t.len() - 1].trim()
            } else {
                t
            };
            t.to_owned()
        })
        .collect();
    let mut rr = reader_for(
        &names,
        Source::Text(TextSource {
            reader,
            encoding,
            delimiter,
            quoting,
            csv,
            record: csv::ByteRecord::new(),
        }),
        if quoting {
            FileFormat::Csv
        } else {
            FileFormat::Tsv
        },
    )?;
    rr.encoding = Some(encoding);
    Ok(rr)
}

/// A column name as it is matched: without regard to case or surrounding spaces, `_` or
/// a space counting as `-`.
fn column_key(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn names_have_sku(names: &[String]) -> bool {
    names.iter().any(|n| column_key(n) == KNOWN_COLUMNS[0])
}

fn no_sku_column(names: &[String]) -> FileError {
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
fn reader_for(
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

struct Scan {
    bom: bool,
    first_nul: Option<u64>,
    first_invalid: Option<u64>,
    /// The line (from 1) of `first_invalid`.
    first_invalid_line: u64,
    /// A valid UTF-8 sequence of more than one byte was seen: with an invalid byte too,
    /// the file mixes encodings.
    utf8_multibyte: bool,
}

/// One pass over the file: UTF-8 byte order mark, NUL bytes, UTF-8 validity (a sequence
/// cut at a chunk boundary is carried to the next chunk), and whether the text holds
/// UTF-8 characters beyond ASCII.
fn scan_text(file: &mut File) -> io::Result<Scan> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let mut pos: u64 = 0; // file offset of chunk[0]
    let mut lines: u64 = 1; // line of the first byte not yet counted
    let mut scan = Scan {
        bom: false,
        first_nul: None,
        first_invalid: None,
        first_invalid_line: 0,
        utf8_multibyte: false,
    };
    let mut first = true;
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        let data = &chunk[..n];
        if first {
            // A read may return fewer than 3 bytes; the BOM check then looks at what came.
            scan.bom = data.starts_with(&[0xEF, 0xBB, 0xBF]);
            first = false;
        }
        if let Some(i) = data.iter().position(|&b| b == 0) {
            scan.first_nul = Some(pos + i as u64);
            break;
        }
        let start = pos - carry.len() as u64;
        let joined: Cow<[u8]> = if carry.is_empty() {
            Cow::Borrowed(data)
        } else {
            let mut v = std::mem::take(&mut carry);
            v.extend_from_slice(data);
            Cow::Owned(v)
        };
        carry.clear();
        let mut rest: &[u8] = &joined;
        let mut at = start;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    scan.utf8_multibyte |= !valid.is_ascii();
                    if scan.first_invalid.is_none() {
                        lines += rest.iter().filter(|&&b| b == b'\n').count() as u64;
                    }
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    scan.utf8_multibyte |= !valid.is_ascii();
                    if scan.first_invalid.is_none() {
                        lines += valid.iter().filter(|&&b| b == b'\n').count() as u64;
                    }
                    match e.error_len() {
                        // Cut at the chunk's end: finish it with the next chunk.
                        None => {
                            carry.extend_from_slice(after);
                            break;
                        }
                        Some(len) => {
                            if scan.first_invalid.is_none() {
                                scan.first_invalid = Some(at + valid.len() as u64);
                                scan.first_invalid_line = lines;
                            }
                            at += (valid.len() + len) as u64;
                            rest = &after[len..];
                        }
                    }
                }
            }
        }
        pos += n as u64;
        if scan.first_invalid.is_some() && scan.utf8_multibyte {
            break;
        }
    }
    if scan.first_invalid.is_none() && !carry.is_empty() {
        scan.first_invalid = Some(pos - carry.len() as u64);
        scan.first_invalid_line = lines;
    }
    Ok(scan)
}

fn xlsx_fatal(e: XlsxError) -> FileError {
    match e {
        XlsxError::TooLarge(s) => FileError::TooLarge(s),
        XlsxError::Invalid(s) => FileError::NotATable(format!(
            "the file is a ZIP archive but not a readable .xlsx workbook: {s}"
        )),
        XlsxError::Io(e) => FileError::Io(e),
    }
}

/// Opens a workbook on its data sheet (SPEC 5): the sheet named `Template` or a
/// translation of it, else the first visible sheet whose column names include `sku`.
/// The sheet is read through once here, so that a file beyond a bound of
/// [`super::xlsx`] is `FATAL` before any of its rows is applied.
fn open_xlsx(path: &Path) -> Result<RowReader, FileError> {
    // Untrusted bytes: a panic in the reader must not take the server down.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open_xlsx_sheet(path))) {
        Ok(r) => r,
        Err(_) => Err(FileError::NotATable(
            "the file is a ZIP archive but not a readable .xlsx workbook".into(),
        )),
    }
}

fn open_xlsx_sheet(path: &Path) -> Result<RowReader, FileError> {
    let mut book = Workbook::open(path).map_err(xlsx_fatal)?;
    let candidates: Vec<usize> = match book.template_sheet() {
        Some(i) => vec![i],
        None => book
            .sheet_names()
            .enumerate()
            .filter(|(_, (_, visible))| *visible)
            .map(|(i, _)| i)
            .collect(),
    };
    let mut first_problem: Option<FileError> = None;
    for i in candidates {
        let mut rows = book.rows(i).map_err(xlsx_fatal)?;
        let names = match sheet_header(&mut rows) {
            Ok(Some(names)) if names_have_sku(&names) => names,
            Ok(Some(names)) => {
                first_problem.get_or_insert(no_sku_column(&names));
                continue;
            }
            Ok(None) => continue,
            Err(e @ (FileError::TooLarge(_) | FileError::Io(_))) => return Err(e),
            Err(e) => {
                first_problem.get_or_insert(e);
                continue;
            }
        };
        let mut check = book.rows(i).map_err(xlsx_fatal)?;
        sheet_header(&mut check)?;
        while check.next_row().map_err(xlsx_fatal)?.is_some() {}
        return reader_for(
            &names,
            Source::Sheet(SheetSource { rows }),
            FileFormat::Xlsx,
        );
    }
    Err(first_problem.unwrap_or(FileError::Empty))
}

/// Skips a sheet's template preamble and reads its row of column names (the attribute
/// row of a two-row template header). `None` for a sheet with no rows.
fn sheet_header(rows: &mut SheetRows) -> Result<Option<Vec<String>>, FileError> {
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

fn sheet_names(row: &SheetRow) -> Vec<String> {
    let width = row.cells.iter().map(|c| c.0 + 1).max().unwrap_or(0);
    let mut names = vec![String::new(); width];
    for (c, t) in &row.cells {
        names[*c] = t.trim().to_owned();
    }
    names
}

/// Whether a line (its first cell) belongs to a template preamble: `Some(true)` for a
/// `TemplateType=` line, `Some(false)` for a `#` comment.
fn preamble_line(first: &str) -> Option<bool> {
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
fn is_attribute_row_cell(cell: &str) -> bool {
    let t = cell.trim();
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t);
    t == "sku" || t == "item_sku"
}

// ---------------------------------------------------------------------------------------
// Typed rows.

/// Rows are typed straight into the core's upload row, so the upload door and the
/// rules share one definition of a row (R23).
pub use onestock_core::rules::{
    ProductRef as ProductId, UploadAction as Action, UploadRow as RowOp,
};

/// Types a row. The first column at fault (in the order of [`KNOWN_COLUMNS`], `add-delete`
/// first after `sku`) gives the error. Rows with `d` or `x` read only the SKU: their other
/// columns are ignored.
pub fn parse_row(fields: &RowFields) -> Result<RowOp, DomainError> {
    let sku = match fields.sku.as_deref() {
        Some(s) => Sku::parse(s)?,
        None => {
            return Err(DomainError::invalid(
                "sku",
                "Every row needs a sku: fill the sku column with your code for the item.",
            ));
        }
    };
    let action = parse_action(fields.add_delete.as_deref())?;
    let mut op = RowOp {
        sku,
        action,
        product: None,
        price: None,
        condition: None,
        quantity: None,
        share: None,
        fulfillment: None,
        start_selling_at: None,
    };
    if action != Action::AddOrUpdate {
        return Ok(op);
    }
    op.product = parse_product_id(
        fields.product_id.as_deref(),
        fields.product_id_type.as_deref(),
    )?;
    op.price = fields.price.as_deref().map(parse_price).transpose()?;
    op.condition = fields
        .item_condition
        .as_deref()
        .map(parse_condition)
        .transpose()?;
    op.quantity = fields.quantity.as_deref().map(parse_quantity).transpose()?;
    op.share = fields
        .inventory_sharing
        .as_deref()
        .map(|raw| {
            ShareMode::parse(raw).ok_or_else(|| {
                DomainError::invalid(
                    "inventory-sharing",
                    format!(
                        "inventory-sharing is existing (join the SKU's shared quantity), unique (a quantity of its own) or empty; got {raw:?}."
                    ),
                )
            })
        })
        .transpose()?;
    op.fulfillment = fields
        .fulfillment_channel
        .as_deref()
        .map(parse_fulfillment)
        .transpose()?;
    op.start_selling_at = fields
        .start_selling_date
        .as_deref()
        .map(parse_start)
        .transpose()?;
    Ok(op)
}

fn parse_action(raw: Option<&str>) -> Result<Action, DomainError> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("a") => Ok(Action::AddOrUpdate),
        Some("d") => Ok(Action::DeleteInStore),
        Some("x") => Ok(Action::DeleteEverywhere),
        Some(_) => Err(DomainError::invalid(
            "add-delete",
            format!(
                "add-delete is a (add or update, the default when empty), d (delete the listing in this store) or x (delete the product and listing in every store); got {:?}.",
                raw.unwrap_or_default()
            ),
        )),
    }
}

fn parse_product_id(
    id: Option<&str>,
    kind: Option<&str>,
) -> Result<Option<ProductId>, DomainError> {
    let Some(id) = id.map(str::trim).filter(|s| !s.is_empty()) else {
        if let Some(k) = kind.filter(|k| !k.trim().is_empty()) {
            return Err(DomainError::invalid(
                "product-id",
                format!(
                    "product-id-type is {k:?} but product-id is empty: give the ASIN or identifier in product-id, or clear product-id-type."
                ),
            ));
        }
        return Ok(None);
    };
    let kind = match kind.map(|k| k.trim().to_ascii_uppercase()).as_deref() {
        None | Some("") => None,
        Some("1") | Some("ASIN") => Some("ASIN"),
        Some("2") | Some("ISBN") => Some("ISBN"),
        Some("3") | Some("UPC") => Some("UPC"),
        Some("4") | Some("EAN") => Some("EAN"),
        Some("GTIN") => Some("GTIN"),
        Some(_) => {
            return Err(DomainError::invalid(
                "product-id-type",
                format!(
                    "product-id-type is 1 (ASIN), 2 (ISBN), 3 (UPC), 4 (EAN) or one of the words ASIN, ISBN, UPC, EAN, GTIN; got {:?}.",
                    kind.unwrap_or_default()
                ),
            ));
        }
    };
    let kind = match kind {
        Some(k) => k,
        None => infer_kind(id).ok_or_else(|| {
            DomainError::new(
                ErrorCode::InvalidIdentifier,
                format!(
                    "product-id {id:?} is neither an ASIN (10 letters and digits, starting with a letter) nor a UPC (12 digits), EAN (13), GTIN (14) or ISBN (10); fill product-id-type to say what it is."
                ),
            )
            .field("product-id")
        })?,
    };
    if kind == "ASIN" {
        let asin = Asin::parse(id).map_err(|mut e| {
            e.field = Some("product-id".into());
            e
        })?;
        return Ok(Some(ProductId::Asin(asin.as_str().to_owned())));
    }
    Ok(Some(ProductId::Identifier {
        kind: kind.to_owned(),
        value: id.to_owned(),
    }))
}

fn infer_kind(id: &str) -> Option<&'static str> {
    let b = id.as_bytes();
    if b.len() == 10 && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric) {
        return Some("ASIN");
    }
    let digits = b.iter().all(u8::is_ascii_digit);
    match b.len() {
        10 if digits => Some("ISBN"),
        10 if b[..9].iter().all(u8::is_ascii_digit) && (b[9] == b'X' || b[9] == b'x') => {
            Some("ISBN")
        }
        12 if digits => Some("UPC"),
        13 if digits => Some("EAN"),
        14 if digits => Some("GTIN"),
        _ => None,
    }
}

fn parse_price(raw: &str) -> Result<Decimal, DomainError> {
    let t = raw.trim();
    let dotted: Cow<str> = if t.matches(',').count() == 1 && !t.contains('.') {
        Cow::Owned(t.replace(',', "."))
    } else {
        Cow::Borrowed(t)
    };
    parse_price_amount(&dotted).map_err(|_| {
        DomainError::new(
            ErrorCode::InvalidPrice,
            format!(
                "price is a number greater than zero with at most two digits after the point, in the store's currency, with no symbol or thousands separator: 19.99 (19,99 is accepted too); got {raw:?}."
            ),
        )
        .field("price")
    })
}

fn parse_condition(raw: &str) -> Result<Condition, DomainError> {
    let t = raw.trim();
    let by_code = if !t.is_empty() && t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit()) {
        match t.parse::<u32>().unwrap_or(0) {
            11 => Some(Condition::New),
            10 | 9 => Some(Condition::Refurbished),
            1 => Some(Condition::UsedLikeNew),
            2 => Some(Condition::UsedVeryGood),
            3 => Some(Condition::UsedGood),
            4 => Some(Condition::UsedAcceptable),
            5 => Some(Condition::CollectibleLikeNew),
            6 => Some(Condition::CollectibleVeryGood),
            7 => Some(Condition::CollectibleGood),
            8 => Some(Condition::CollectibleAcceptable),
            _ => None,
        }
    } else {
        let squash = |s: &str| -> String {
            s.chars()
                .filter(|c| !matches!(c, '_' | '-' | ' '))
                .flat_map(char::to_lowercase)
                .collect()
        };
        let want = squash(t);
        Condition::ALL
            .into_iter()
            .find(|c| squash(c.as_str()) == want)
    };
    by_code.ok_or_else(|| {
        DomainError::invalid(
            "item-condition",
            format!(
                "item-condition is 11 (new), 10 or 9 (refurbished), 1 to 4 (used: like new, very good, good, acceptable), 5 to 8 (collectible: likewise) or a name such as new or used_like_new; got {raw:?}."
            ),
        )
    })
}

fn parse_quantity(raw: &str) -> Result<i64, DomainError> {
    let t = raw.trim();
    // "12.00", as spreadsheets write whole numbers, is 12.
    let whole = match t.split_once('.') {
        Some((w, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => w,
        _ => t,
    };
    let q = whole
        .parse::<i64>()
        .ok()
        .filter(|_| !whole.starts_with('+'))
        .ok_or_else(|| {
            DomainError::new(
                ErrorCode::InvalidQuantity,
                format!(
                    "quantity is a whole number from 0 to {}, with no sign, separators or decimals; got {raw:?}.",
                    onestock_core::types::QUANTITY_MAX
                ),
            )
            .field("quantity")
        })?;
    check_quantity(q, "quantity")
}

fn parse_fulfillment(raw: &str) -> Result<Fulfillment, DomainError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "merchant" | "default" => Ok(Fulfillment::Merchant),
        "marketplace" | "amazon_na" => Ok(Fulfillment::Marketplace),
        _ => Err(DomainError::invalid(
            "fulfillment-channel",
            format!(
                "fulfillment-channel is merchant or DEFAULT (you ship), or marketplace or AMAZON_NA (the marketplace ships); got {raw:?}."
            ),
        )),
    }
}

fn parse_start(raw: &str) -> Result<OffsetDateTime, DomainError> {
    use time::format_description::well_known::Rfc3339;
    let t = raw.trim();
    if let Ok(at) = OffsetDateTime::parse(t, &Rfc3339) {
        return Ok(at);
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(t, &day) {
        return Ok(d.midnight().assume_utc());
    }
    Err(DomainError::invalid(
        "start-selling-date",
        format!(
            "start-selling-date is a date like 2026-12-15 (midnight UTC) or a time like 2026-12-15T09:00:00-05:00 (RFC 3339); got {raw:?}."
        ),
    ))
}

#[cfg(test)]
mod tests {
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
        let text = " SKU \tPrice\tITEM_CONDITION\tProduct ID\tQuantity\n A \t 1.00 \t 11 \t B0ABCD1234\t 7 \n";
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
        ] {
            assert_eq!(op(&[("add-delete", v)]).action, a, "{v}");
        }
        let e = err(&[("add-delete", "delete")]);
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
}
