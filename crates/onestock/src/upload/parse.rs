//! Reading an upload file (SPEC.md section 5) as rows, streaming.
//!
//! [`open`] sniffs the format, decides the text encoding, skips the template preamble and
//! reads the header row; the [`RowReader`] it returns then yields one [`RawRow`] per data
//! row. [`parse_row`] turns a row's fields into the core's typed upload row ([`RowOp`]). Nothing here touches the
//! rules or the storage.
//!
//! The parts, by concern: `text.rs` (reading text: encodings, lines, quoting),
//! `header.rs` (preamble, header rows, column mapping, known and ignored columns),
//! `row.rs` (typed rows: [`parse_row`] and its field parsers).
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

mod header;
mod row;
#[cfg(test)]
mod tests;
mod text;

use header::SLOTS;
pub use header::{
    COLUMN_ALIASES, IGNORED_COLUMNS, KNOWN_COLUMNS, PRODUCT_COLUMNS, is_ignored_column,
};
pub use row::{Action, ProductId, ProductInfo, RowOp, parse_row};

use header::{
    is_attribute_row_cell, names_have_sku, no_sku_column, preamble_line, reader_for, sheet_header,
};
use text::{decode, read_line_limited, read_record, scan_text, strip_line_end};

/// Longest data row read, in bytes, line end not counted.
pub const MAX_ROW_BYTES: usize = 1 << 20;

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
    /// The category templates' product information (SPEC 5).
    pub feed_product_type: Option<String>,
    pub brand_name: Option<String>,
    pub item_name: Option<String>,
    pub product_description: Option<String>,
    pub language_value: Option<String>,
    /// `DEFAULT` or `AMAZON_NA`: the channel where `fulfillment-channel` is empty.
    pub fulfillment_center_id: Option<String>,
}

impl RowFields {
    fn from_slots(slots: [Option<String>; SLOTS]) -> RowFields {
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
            feed_product_type,
            brand_name,
            item_name,
            product_description,
            language_value,
            fulfillment_center_id,
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
            feed_product_type,
            brand_name,
            item_name,
            product_description,
            language_value,
            fulfillment_center_id,
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
            let mut slots: [Option<String>; SLOTS] = Default::default();
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
            let mut slots: [Option<String>; SLOTS] = Default::default();
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
