//! Reading an `.xlsx` workbook (SPEC section 5) as rows of cell text, streaming, within
//! fixed bounds.
//!
//! Why not a general spreadsheet library: an upload is untrusted input, and reading a
//! sheet into a grid sized by the cells it names lets a 2 KB file (cells `A1` and
//! `XFD1048576`) ask for half a terabyte, while unpacking a part whole lets a 1.5 MB file
//! become 4 GiB of text. Here nothing is sized from what the file declares: the ZIP
//! directory is checked before it is read, parts are unpacked as streams through
//! [`Bounded`], the sheet is read one `<row>` at a time and only the text of the cells is
//! kept. Every bound is a named constant below, and a file beyond one is `FATAL` with a
//! message that names it.
//!
//! What is read: the workbook's sheet list (names, hidden state, where each sheet is),
//! the shared strings, which cell styles are dates (so a date cell reads `2026-12-15` as a
//! tab-separated file would hold it) and the chosen sheet's rows. Formulas are read as
//! their cached values. Everything else in the package is ignored.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use super::parse::MAX_ROW_BYTES;

/// Entries in the ZIP directory at most. A template workbook has a few dozen; the bound
/// keeps the directory, which is read whole, small.
pub const ZIP_ENTRIES_MAX: u64 = 10_000;
/// Bytes of the ZIP directory at most, for the same reason.
pub const ZIP_DIRECTORY_BYTES_MAX: u64 = 8 << 20;
/// Unpacked bytes of one small part (the sheet list, relationships, styles).
pub const XLSX_PART_BYTES_MAX: u64 = 16 << 20;
/// Unpacked bytes of the chosen sheet. A million-row inventory sheet is about 300 MiB of
/// XML; past this, the file is refused rather than read for minutes.
pub const XLSX_SHEET_BYTES_MAX: u64 = 1 << 30;
/// Unpacked bytes of the shared strings part: its text is kept in memory while the sheet
/// is read, so this bounds the memory an upload takes.
pub const SHARED_STRINGS_XML_BYTES_MAX: u64 = 256 << 20;
/// Text kept from the shared strings, in bytes (the table's memory, with 4 bytes an entry).
pub const SHARED_STRINGS_TEXT_BYTES_MAX: usize = 64 << 20;
/// Entries of the shared strings table at most: two distinct strings (SKU, product id)
/// for each of a million rows, with room to spare.
pub const SHARED_STRINGS_MAX: usize = 4_000_000;
/// Longest stretch of unpacked XML without a `<`: one cell's text or one tag. Bounds what
/// the XML reader buffers for one event; a cell's text is at most one row's worth.
pub const XML_RUN_BYTES_MAX: u64 = (MAX_ROW_BYTES as u64) + (1 << 20);
/// Columns of a sheet: `XFD`, the last column a workbook can have.
pub const COLUMNS_MAX: usize = 16_384;
/// Sheets looked at when choosing the data sheet.
pub const SHEETS_MAX: usize = 256;

/// Sheet names that hold the data of the marketplace's template workbooks, in the
/// languages of its templates (compared without regard to case).
pub const TEMPLATE_SHEET_NAMES: &[&str] = &[
    "template",
    "plantilla",
    "modèle",
    "modele",
    "vorlage",
    "modello",
    "modelo",
    "sjabloon",
    "szablon",
    "mall",
    "şablon",
    "テンプレート",
    "模板",
];

/// Why a workbook could not be read: the caller makes it a `FATAL` reason.
#[derive(Debug)]
pub enum XlsxError {
    /// A bound of this module was passed; the text names it.
    TooLarge(String),
    /// Not a readable workbook.
    Invalid(String),
    /// The disk failed (not the file's fault: worth trying again).
    Io(io::Error),
}

impl std::fmt::Display for XlsxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XlsxError::TooLarge(s) | XlsxError::Invalid(s) => f.write_str(s),
            XlsxError::Io(e) => write!(f, "{e}"),
        }
    }
}

type XResult<T> = Result<T, XlsxError>;

fn invalid(s: impl Into<String>) -> XlsxError {
    XlsxError::Invalid(s.into())
}

/// Marks an I/O error as a passed bound, so it is told apart from a disk error after it
/// went through the XML reader.
const BOUND_MARK: &str = "onestock-bound: ";

/// A reader that refuses to yield more than `total_max` bytes, or a stretch of more than
/// `run_max` bytes without a `<`.
struct Bounded<R> {
    inner: R,
    what: &'static str,
    total: u64,
    total_max: u64,
    run: u64,
    run_max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total > self.total_max {
            return Err(io::Error::other(format!(
                "{BOUND_MARK}the {} unpacks to more than {} MiB, the most an upload may hold; split the file by rows",
                self.what,
                self.total_max >> 20
            )));
        }
        let data = &buf[..n];
        let over = match data.iter().rposition(|&b| b == b'<') {
            None => {
                self.run += n as u64;
                self.run > self.run_max
            }
            Some(last) => {
                // The stretch before the first `<` continues the previous one.
                let first = data.iter().position(|&b| b == b'<').unwrap_or(last);
                let before = self.run + first as u64 > self.run_max;
                self.run = (n - last - 1) as u64;
                before || self.run > self.run_max
            }
        };
        if over {
            return Err(io::Error::other(format!(
                "{BOUND_MARK}the {} holds a cell or tag longer than {} MiB; a cell holds at most {} MiB of text",
                self.what,
                self.run_max >> 20,
                MAX_ROW_BYTES >> 20
            )));
        }
        Ok(n)
    }
}

type XmlReader = quick_xml::Reader<BufReader<Bounded<Box<dyn Read + Send>>>>;

fn xml_error(e: quick_xml::Error, part: &str) -> XlsxError {
    if let quick_xml::Error::Io(io) = &e {
        let text = io.to_string();
        if let Some(reason) = text.strip_prefix(BOUND_MARK) {
            return XlsxError::TooLarge(reason.to_owned());
        }
        if io.kind() != io::ErrorKind::Other && io.kind() != io::ErrorKind::InvalidData {
            return XlsxError::Io(io::Error::new(io.kind(), text));
        }
        return invalid(format!("the part {part} could not be unpacked ({text})"));
    }
    invalid(format!("the part {part} is not well-formed XML ({e})"))
}

/// Where one ZIP entry's data lies in the file.
struct EntrySpan {
    start: u64,
    compressed: u64,
    deflated: bool,
}

/// An opened workbook: its sheet list and what every sheet's cells refer to.
pub struct Workbook {
    path: std::path::PathBuf,
    archive: zip::ZipArchive<File>,
    /// (name, part path, visible), in workbook order.
    sheets: Vec<(String, String, bool)>,
    cells: std::sync::Arc<CellContext>,
}

/// What the cells of every sheet refer to.
#[derive(Default)]
struct CellContext {
    shared: SharedStrings,
    /// For each cell style index, whether it formats a number as a date.
    date_styles: Vec<bool>,
    date1904: bool,
}

/// The shared strings, as one text and the end of each entry in it.
#[derive(Default)]
struct SharedStrings {
    text: String,
    ends: Vec<u32>,
}

impl SharedStrings {
    fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..end)
    }
}

/// Checks the ZIP end-of-directory record before the directory is read whole.
fn check_directory(file: &mut File) -> XResult<()> {
    let len = file.seek(SeekFrom::End(0)).map_err(XlsxError::Io)?;
    // The record is 22 bytes plus a comment of at most 64 KiB, at the end of the file.
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))
        .map_err(XlsxError::Io)?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail).map_err(XlsxError::Io)?;
    let Some(at) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..].starts_with(b"PK\x05\x06"))
    else {
        return Err(invalid(
            "the file starts like a ZIP archive but has no ZIP directory (it may be cut short); save the workbook again",
        ));
    };
    let rec = &tail[at..];
    let entries = u16::from_le_bytes([rec[10], rec[11]]) as u64;
    let size = u32::from_le_bytes([rec[12], rec[13], rec[14], rec[15]]) as u64;
    if entries == 0xFFFF || size == 0xFFFF_FFFF {
        return Err(XlsxError::TooLarge(
            "the workbook is a ZIP64 archive (over 4 GiB or 65,535 parts), larger than an upload may be".into(),
        ));
    }
    if entries > ZIP_ENTRIES_MAX || size > ZIP_DIRECTORY_BYTES_MAX {
        return Err(XlsxError::TooLarge(format!(
            "the workbook holds {entries} parts; a workbook may hold at most {ZIP_ENTRIES_MAX}"
        )));
    }
    file.seek(SeekFrom::Start(0)).map_err(XlsxError::Io)?;
    Ok(())
}

impl Workbook {
    /// Opens the workbook and reads its sheet list, styles and shared strings.
    pub fn open(path: &Path) -> XResult<Workbook> {
        let mut file = File::open(path).map_err(XlsxError::Io)?;
        check_directory(&mut file)?;
        let archive = zip::ZipArchive::new(file).map_err(|e| match e {
            zip::result::ZipError::Io(e) => XlsxError::Io(e),
            e => invalid(format!("the ZIP archive cannot be read ({e})")),
        })?;
        let mut book = Workbook {
            path: path.to_owned(),
            archive,
            sheets: Vec::new(),
            cells: Default::default(),
        };
        let mut ctx = CellContext::default();
        let workbook_part = book
            .office_document()?
            .unwrap_or_else(|| "xl/workbook.xml".to_owned());
        let dir = match workbook_part.rfind('/') {
            Some(i) => workbook_part[..i + 1].to_owned(),
            None => String::new(),
        };
        let rels_part = format!("{dir}_rels/{}.rels", &workbook_part[dir.len()..]);
        let targets = book.relationships(&rels_part, &dir)?;
        ctx.date1904 = book.read_sheet_list(&workbook_part, &targets)?;
        if let Some(styles) = targets.iter().find(|t| t.1.ends_with("/styles")) {
            let part = styles.2.clone();
            ctx.date_styles = book.read_styles(&part)?;
        }
        let shared_part = targets
            .iter()
            .find(|t| t.1.ends_with("/sharedStrings"))
            .map(|t| t.2.clone());
        if let Some(part) = shared_part {
            ctx.shared = book.read_shared_strings(&part)?;
        }
        book.cells = std::sync::Arc::new(ctx);
        Ok(book)
    }

    fn span(&mut self, name: &str) -> XResult<Option<EntrySpan>> {
        let f = match self.archive.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(zip::result::ZipError::Io(e)) => return Err(XlsxError::Io(e)),
            Err(e) => return Err(invalid(format!("the part {name} cannot be read ({e})"))),
        };
        let deflated = match f.compression() {
            zip::CompressionMethod::Stored => false,
            zip::CompressionMethod::Deflated => true,
            m => {
                return Err(invalid(format!(
                    "the part {name} is packed with {m:?}, which workbooks do not use; save the workbook again"
                )));
            }
        };
        Ok(Some(EntrySpan {
            start: f.data_start(),
            compressed: f.compressed_size(),
            deflated,
        }))
    }

    /// A part's unpacked bytes as a bounded stream, or `None` when the package lacks it.
    /// The stream reads the file through its own handle, so several can be open at once.
    fn part(
        &mut self,
        name: &str,
        what: &'static str,
        total_max: u64,
    ) -> XResult<Option<XmlReader>> {
        let Some(span) = self.span(name)? else {
            return Ok(None);
        };
        let mut file = File::open(&self.path).map_err(XlsxError::Io)?;
        file.seek(SeekFrom::Start(span.start))
            .map_err(XlsxError::Io)?;
        let raw = BufReader::with_capacity(64 * 1024, file).take(span.compressed);
        let inner: Box<dyn Read + Send> = if span.deflated {
            Box::new(flate2::read::DeflateDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        let bounded = Bounded {
            inner,
            what,
            total: 0,
            total_max,
            run: 0,
            run_max: XML_RUN_BYTES_MAX,
        };
        let mut reader =
            quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, bounded));
        let config = reader.config_mut();
        config.check_end_names = false;
        config.trim_text(false);
        Ok(Some(reader))
    }

    /// The main part named by the package's relationships.
    fn office_document(&mut self) -> XResult<Option<String>> {
        let rels = self.relationships("_rels/.rels", "")?;
        Ok(rels
            .into_iter()
            .find(|t| t.1.ends_with("/officeDocument"))
            .map(|t| t.2))
    }

    /// (id, type, part path) of a relationships part; targets resolved against `dir`.
    fn relationships(&mut self, part: &str, dir: &str) -> XResult<Vec<(String, String, String)>> {
        let Some(mut xml) = self.part(part, "relationships part", XLSX_PART_BYTES_MAX)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            let ev = xml
                .read_event_into(&mut buf)
                .map_err(|e| xml_error(e, part))?;
            match ev {
                Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"Relationship" => {
                    if out.len() >= ZIP_ENTRIES_MAX as usize {
                        break;
                    }
                    let id = attr(&e, b"Id").unwrap_or_default();
                    let kind = attr(&e, b"Type").unwrap_or_default();
                    let target = attr(&e, b"Target").unwrap_or_default();
                    let path = match target.strip_prefix('/') {
                        Some(abs) => abs.to_owned(),
                        None => normalize(&format!("{dir}{target}")),
                    };
                    out.push((id, kind, path));
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        Ok(out)
    }

    fn read_sheet_list(
        &mut self,
        part: &str,
        targets: &[(String, String, String)],
    ) -> XResult<bool> {
        let mut date1904 = false;
        let Some(mut xml) = self.part(part, "sheet list", XLSX_PART_BYTES_MAX)? else {
            return Err(invalid(
                "the ZIP archive holds no workbook (xl/workbook.xml); upload an .xlsx workbook or tab-separated text",
            ));
        };
        let mut buf = Vec::new();
        loop {
            let ev = xml
                .read_event_into(&mut buf)
                .map_err(|e| xml_error(e, part))?;
            match ev {
                Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                    b"sheet" if self.sheets.len() < SHEETS_MAX => {
                        let name = attr(&e, b"name").unwrap_or_default();
                        let state = attr(&e, b"state").unwrap_or_default();
                        let rid = attr(&e, b"id").unwrap_or_default();
                        if let Some(t) = targets.iter().find(|t| t.0 == rid) {
                            self.sheets.push((
                                name,
                                t.2.clone(),
                                state.is_empty() || state == "visible",
                            ));
                        }
                    }
                    b"workbookPr" => {
                        let v = attr(&e, b"date1904").unwrap_or_default();
                        date1904 = v == "1" || v.eq_ignore_ascii_case("true");
                    }
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        Ok(date1904)
    }

    fn read_styles(&mut self, part: &str) -> XResult<Vec<bool>> {
        let mut date_styles = Vec::new();
        let Some(mut xml) = self.part(part, "styles part", XLSX_PART_BYTES_MAX)? else {
            return Ok(date_styles);
        };
        let mut custom_dates: Vec<u32> = Vec::new();
        let mut in_cell_xfs = false;
        let mut buf = Vec::new();
        loop {
            let ev = xml
                .read_event_into(&mut buf)
                .map_err(|e| xml_error(e, part))?;
            match ev {
                Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                    b"numFmt" => {
                        let id = attr(&e, b"numFmtId").and_then(|v| v.parse().ok());
                        let code = attr(&e, b"formatCode").unwrap_or_default();
                        if let Some(id) = id
                            && is_date_format(&code)
                            && custom_dates.len() < COLUMNS_MAX
                        {
                            custom_dates.push(id);
                        }
                    }
                    b"cellXfs" => in_cell_xfs = true,
                    b"xf" if in_cell_xfs && date_styles.len() < COLUMNS_MAX * 4 => {
                        let id: u32 = attr(&e, b"numFmtId")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let builtin_date = matches!(id, 14..=22 | 27..=36 | 45..=47 | 50..=58);
                        date_styles.push(builtin_date || custom_dates.contains(&id));
                    }
                    _ => {}
                },
                Event::End(e) if e.local_name().as_ref() == b"cellXfs" => in_cell_xfs = false,
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        Ok(date_styles)
    }

    fn read_shared_strings(&mut self, part: &str) -> XResult<SharedStrings> {
        let Some(mut xml) = self.part(part, "shared strings part", SHARED_STRINGS_XML_BYTES_MAX)?
        else {
            return Ok(SharedStrings::default());
        };
        let mut shared = SharedStrings::default();
        let mut cur = String::new();
        let (mut in_t, mut in_phonetic) = (false, false);
        let mut buf = Vec::new();
        let too_large = |what: String| XlsxError::TooLarge(what);
        loop {
            let ev = xml
                .read_event_into(&mut buf)
                .map_err(|e| xml_error(e, part))?;
            let mut end_si = false;
            match ev {
                Event::Start(e) => match e.local_name().as_ref() {
                    b"si" => cur.clear(),
                    b"t" => in_t = true,
                    b"rPh" => in_phonetic = true,
                    _ => {}
                },
                Event::Empty(e) if e.local_name().as_ref() == b"si" => {
                    cur.clear();
                    end_si = true;
                }
                Event::End(e) => match e.local_name().as_ref() {
                    b"si" => end_si = true,
                    b"t" => in_t = false,
                    b"rPh" => in_phonetic = false,
                    _ => {}
                },
                Event::Text(t) if in_t && !in_phonetic => {
                    let s = t
                        .xml_content()
                        .map_err(|e| invalid(format!("{part}: {e}")))?;
                    push_capped(&mut cur, &s);
                }
                Event::CData(t) if in_t && !in_phonetic => {
                    push_capped(&mut cur, &String::from_utf8_lossy(&t));
                }
                Event::GeneralRef(r) if in_t && !in_phonetic => {
                    push_ref(&mut cur, &r);
                }
                Event::Eof => break,
                _ => {}
            }
            if end_si {
                if shared.ends.len() >= SHARED_STRINGS_MAX {
                    return Err(too_large(format!(
                        "the workbook's shared strings table holds more than {SHARED_STRINGS_MAX} entries, the most an upload may hold; split the file by rows"
                    )));
                }
                if shared.text.len() + cur.len() > SHARED_STRINGS_TEXT_BYTES_MAX {
                    return Err(too_large(format!(
                        "the workbook's shared strings hold more than {} MiB of text, the most an upload may hold; split the file by rows",
                        SHARED_STRINGS_TEXT_BYTES_MAX >> 20
                    )));
                }
                shared.text.push_str(&cur);
                shared.ends.push(shared.text.len() as u32);
                cur.clear();
            }
            buf.clear();
        }
        Ok(shared)
    }

    /// Sheets in workbook order: (name, visible).
    pub fn sheet_names(&self) -> impl Iterator<Item = (&str, bool)> {
        self.sheets.iter().map(|s| (s.0.as_str(), s.2))
    }

    /// The sheet that holds the template's data by its name (`Template`, `Plantilla`, ...).
    pub fn template_sheet(&self) -> Option<usize> {
        self.sheets.iter().position(|(name, _, _)| {
            let n = name.trim().to_lowercase();
            TEMPLATE_SHEET_NAMES.contains(&n.as_str())
        })
    }

    /// Opens the rows of sheet `index` (of [`Workbook::sheet_names`]).
    pub fn rows(&mut self, index: usize) -> XResult<SheetRows> {
        let Some((name, part, _)) = self.sheets.get(index).cloned() else {
            return Err(invalid("the workbook has no such sheet"));
        };
        let Some(xml) = self.part(&part, "sheet", XLSX_SHEET_BYTES_MAX)? else {
            return Err(invalid(format!(
                "the sheet {name:?} is listed but missing from the package; save the workbook again"
            )));
        };
        Ok(SheetRows {
            cells: self.cells.clone(),
            xml,
            part,
            buf: Vec::new(),
            pending: None,
        })
    }
}

/// One row of a sheet: the text of its non-empty cells by column index (0 for `A`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SheetRow {
    pub cells: Vec<(usize, String)>,
    /// Its cells' text passed [`MAX_ROW_BYTES`]; cells past that point were not kept.
    pub too_long: bool,
}

/// The rows of one sheet, one `<row>` at a time.
pub struct SheetRows {
    cells: std::sync::Arc<CellContext>,
    xml: XmlReader,
    part: String,
    buf: Vec<u8>,
    pending: Option<SheetRow>,
}

impl SheetRows {
    /// Gives `row` back, to be returned by the next [`SheetRows::next_row`].
    pub fn push_back(&mut self, row: SheetRow) {
        self.pending = Some(row);
    }

    /// The next `<row>` (possibly with no cells), or `None` at the end of the sheet.
    pub fn next_row(&mut self) -> XResult<Option<SheetRow>> {
        if let Some(r) = self.pending.take() {
            return Ok(Some(r));
        }
        let mut row: Option<SheetRow> = None;
        let mut row_bytes = 0usize;
        let mut next_col = 0usize;
        loop {
            self.buf.clear();
            let ev = self
                .xml
                .read_event_into(&mut self.buf)
                .map_err(|e| xml_error(e, &self.part))?;
            let (cell, empty) = match ev {
                Event::Start(e) if e.local_name().as_ref() == b"row" => {
                    row = Some(SheetRow::default());
                    next_col = 0;
                    row_bytes = 0;
                    continue;
                }
                Event::Empty(e) if e.local_name().as_ref() == b"row" => {
                    return Ok(Some(SheetRow::default()));
                }
                Event::End(e) if e.local_name().as_ref() == b"row" => {
                    return Ok(Some(row.take().unwrap_or_default()));
                }
                Event::Start(e) if e.local_name().as_ref() == b"c" => {
                    (CellHead::parse(&e, next_col)?, false)
                }
                Event::Empty(e) if e.local_name().as_ref() == b"c" => {
                    (CellHead::parse(&e, next_col)?, true)
                }
                Event::Eof => return Ok(row.take()),
                _ => continue,
            };
            next_col = cell.col + 1;
            let raw = if empty {
                String::new()
            } else {
                self.cell_value()?
            };
            let text = cell.text(raw, &self.cells)?;
            if let Some(r) = row.as_mut()
                && !text.is_empty()
                && !r.too_long
            {
                row_bytes += text.len() + 1;
                if row_bytes > MAX_ROW_BYTES + 1 {
                    r.too_long = true;
                } else {
                    r.cells.push((cell.col, text));
                }
            }
        }
    }

    /// The raw value of the `<c>` just opened: its `<v>`, or the text of its inline `<is>`.
    fn cell_value(&mut self) -> XResult<String> {
        let mut value = String::new();
        let (mut in_v, mut in_t, mut in_phonetic) = (false, false, false);
        loop {
            self.buf.clear();
            let ev = self
                .xml
                .read_event_into(&mut self.buf)
                .map_err(|e| xml_error(e, &self.part))?;
            match ev {
                Event::Start(e) => match e.local_name().as_ref() {
                    b"v" => in_v = true,
                    b"t" => in_t = true,
                    b"rPh" => in_phonetic = true,
                    _ => {}
                },
                Event::End(e) => match e.local_name().as_ref() {
                    b"c" => return Ok(value),
                    b"v" => in_v = false,
                    b"t" => in_t = false,
                    b"rPh" => in_phonetic = false,
                    _ => {}
                },
                Event::Text(t) if in_v || (in_t && !in_phonetic) => {
                    let s = t
                        .xml_content()
                        .map_err(|e| invalid(format!("{}: {e}", self.part)))?;
                    push_capped(&mut value, &s);
                }
                Event::CData(t) if in_v || (in_t && !in_phonetic) => {
                    push_capped(&mut value, &String::from_utf8_lossy(&t));
                }
                Event::GeneralRef(r) if in_v || (in_t && !in_phonetic) => push_ref(&mut value, &r),
                Event::Eof => return Ok(value),
                _ => {}
            }
        }
    }
}

/// What a `<c>` tag says of its cell.
struct CellHead {
    col: usize,
    kind: CellKind,
    style: usize,
}

enum CellKind {
    Number,
    Shared,
    Text,
    Bool,
}

impl CellHead {
    fn parse(e: &BytesStart<'_>, next_col: usize) -> XResult<CellHead> {
        let col = match attr(e, b"r") {
            Some(r) => column_of(&r)?,
            None => next_col,
        };
        if col >= COLUMNS_MAX {
            return Err(XlsxError::TooLarge(format!(
                "a cell lies beyond column XFD, the last column a workbook may have ({COLUMNS_MAX} columns)"
            )));
        }
        let kind = match attr(e, b"t").as_deref() {
            Some("s") => CellKind::Shared,
            Some("b") => CellKind::Bool,
            Some("str" | "inlineStr" | "e" | "d") => CellKind::Text,
            _ => CellKind::Number,
        };
        let style = attr(e, b"s").and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(CellHead { col, kind, style })
    }

    /// The cell as the text a tab-separated file would hold: whole numbers without `.0`,
    /// dates as `YYYY-MM-DD` (or RFC 3339 in UTC with a time of day).
    fn text(&self, raw: String, book: &CellContext) -> XResult<String> {
        Ok(match self.kind {
            CellKind::Text => raw,
            CellKind::Bool => match raw.trim() {
                "1" => "true".into(),
                "0" => "false".into(),
                other => other.to_owned(),
            },
            CellKind::Shared => {
                let t = raw.trim();
                if t.is_empty() {
                    return Ok(String::new());
                }
                let i: usize = t.parse().map_err(|_| {
                    invalid(format!(
                        "a cell names shared string {t:?}, which is not a number"
                    ))
                })?;
                book.shared
                    .get(i)
                    .ok_or_else(|| {
                        invalid(format!(
                            "a cell names shared string {i}, but the workbook has {}",
                            book.shared.ends.len()
                        ))
                    })?
                    .to_owned()
            }
            CellKind::Number => {
                let t = raw.trim();
                match t.parse::<f64>() {
                    Ok(v) if book.date_styles.get(self.style).copied().unwrap_or(false) => {
                        date_text(v, book.date1904).unwrap_or_else(|| float_text(v))
                    }
                    Ok(v) => float_text(v),
                    Err(_) => t.to_owned(),
                }
            }
        })
    }
}

/// The column index of a cell reference such as `B7` (0 for `A`).
fn column_of(r: &str) -> XResult<usize> {
    let mut col: usize = 0;
    let mut letters = 0;
    for b in r.bytes() {
        if b.is_ascii_alphabetic() {
            letters += 1;
            col = col * 26 + (b.to_ascii_uppercase() - b'A' + 1) as usize;
            if col > COLUMNS_MAX {
                return Err(XlsxError::TooLarge(format!(
                    "the cell {r:.20} lies beyond column XFD, the last column a workbook may have ({COLUMNS_MAX} columns)"
                )));
            }
        } else {
            break;
        }
    }
    if letters == 0 {
        return Err(invalid(format!("{r:.20} is not a cell reference")));
    }
    Ok(col - 1)
}

fn float_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// A date serial number as text; `None` outside the years a workbook can show.
fn date_text(serial: f64, date1904: bool) -> Option<String> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    // Serial 1 is 1900-01-01 in the 1900 system, whose day 60 is the non-existent
    // 1900-02-29; counting from 1899-12-30 is right from 1900-03-01 on.
    let base = if date1904 {
        time::macros::date!(1904 - 01 - 01)
    } else {
        time::macros::date!(1899 - 12 - 30)
    };
    let days = serial.floor() as i64;
    let secs = ((serial - serial.floor()) * 86_400.0).round() as i64;
    let (days, secs) = if secs >= 86_400 {
        (days + 1, secs - 86_400)
    } else {
        (days, secs)
    };
    let date = base.checked_add(time::Duration::days(days))?;
    Some(if secs == 0 {
        format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            date.month() as u8,
            date.day()
        )
    } else {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            date.year(),
            date.month() as u8,
            date.day(),
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    })
}

/// Whether a number format shows a date or time: it has a day, year or hour part
/// outside quoted text and `[...]` sections.
fn is_date_format(code: &str) -> bool {
    let mut quoted = false;
    let mut bracket = false;
    let mut prev_escape = false;
    for c in code.chars() {
        if prev_escape {
            prev_escape = false;
            continue;
        }
        match c {
            '\\' => prev_escape = true,
            '"' => quoted = !quoted,
            '[' if !quoted => bracket = true,
            ']' if !quoted => bracket = false,
            'd' | 'D' | 'y' | 'Y' | 'h' | 'H' if !quoted && !bracket => return true,
            _ => {}
        }
    }
    false
}

/// Appends to a cell's text, keeping at most one row's worth (the row is then flagged
/// as too long by its length).
fn push_capped(s: &mut String, add: &str) {
    let room = (MAX_ROW_BYTES + 2).saturating_sub(s.len());
    if add.len() <= room {
        s.push_str(add);
    } else {
        let mut cut = room;
        while cut > 0 && !add.is_char_boundary(cut) {
            cut -= 1;
        }
        s.push_str(&add[..cut]);
    }
}

fn push_ref(s: &mut String, r: &quick_xml::events::BytesRef<'_>) {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        let mut b = [0u8; 4];
        push_capped(s, c.encode_utf8(&mut b));
    } else if let Ok(name) = r.decode()
        && let Some(v) = quick_xml::escape::resolve_predefined_entity(&name)
    {
        push_capped(s, v);
    }
}

fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.local_name().as_ref() == local)
            .then(|| a.unescape_value().map(|v| v.into_owned()).ok())
            .flatten()
    })
}

/// Resolves `.` and `..` in a part path.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(column_of("A1").ok(), Some(0));
        assert_eq!(column_of("Z9").ok(), Some(25));
        assert_eq!(column_of("AA1").ok(), Some(26));
        assert_eq!(column_of("XFD1048576").ok(), Some(16_383));
        assert!(matches!(column_of("XFE1"), Err(XlsxError::TooLarge(_))));
        assert!(matches!(
            column_of("ZZZZZZZZZZZZZZZZ1"),
            Err(XlsxError::TooLarge(_))
        ));
        assert!(column_of("12").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(date_text(46_371.0, false).as_deref(), Some("2026-12-15"));
        assert_eq!(
            date_text(46_371.395_833_333_3, false).as_deref(),
            Some("2026-12-15T09:30:00Z")
        );
        assert!(is_date_format("yyyy-mm-dd"));
        assert!(is_date_format("[$-409]d-mmm-yy;@"));
        assert!(!is_date_format("0.00"));
        assert!(!is_date_format("\"day\" 0"));
    }

    #[test]
    fn bounded_reader_counts_runs_across_reads() {
        let data = [b'x'; 100];
        let mut b = Bounded {
            inner: &data[..],
            what: "sheet",
            total: 0,
            total_max: 1000,
            run: 0,
            run_max: 50,
        };
        let mut buf = [0u8; 30];
        assert!(b.read(&mut buf).is_ok());
        assert!(b.read(&mut buf).is_err());
        // A `<` ends a stretch: 40 + 40 bytes split by one never pass 50.
        let mut data = vec![b'x'; 40];
        data.push(b'<');
        data.extend(vec![b'y'; 40]);
        let mut b = Bounded {
            inner: &data[..],
            what: "sheet",
            total: 0,
            total_max: 1000,
            run: 0,
            run_max: 50,
        };
        let mut out = Vec::new();
        assert!(b.read_to_end(&mut out).is_ok());
    }
}
