//! Bounded fuzzing (issue 7, "what CI must keep proving"): the upload parser (TSV, CSV,
//! xlsx), the region file parser and the JSON bodies of the API.
//!
//! Every run replays the committed corpus in `tests/fuzz-corpus/` first, then random
//! cases made by mutating it (and, for workbooks, by generating them part by part):
//! byte flips, truncations, NUL and control characters, invalid UTF-8, huge numbers, deep
//! nesting, duplicate header columns, extreme cell references (`XFD1048576`), declared
//! sizes that lie (dimensions, shared-string counts, ZIP entry sizes). The inputs stay
//! small: the point is that nothing may allocate from what a file declares.
//!
//! Bounds, per target: `FUZZ_CASES` random cases (default 2,000) and `FUZZ_SECONDS`
//! (default 60). `FUZZ_SEED` repeats a run's random cases (the seed is printed).
//! `FUZZ_MEMORY_MIB` (default 256) is the memory limit of a parser case.
//!
//! **Why the parser cases run in a child process.** A counting global allocator (below)
//! measures the heap, and in the child it refuses any allocation that would take the
//! heap above the limit. But a refused allocation cannot be turned into an error: Rust
//! aborts the process (`memory allocation of N bytes failed`), and so does a stack
//! overflow. A workbook with cells `A1` and `XFD1048576` makes calamine ask for 512 GiB
//! (issue 7, defect 1). So the parser and region cases run in a child: this same test
//! binary run again with `FUZZ_CHILD_CASES` naming a folder of cases, on one thread (the
//! peak is the case's own). The child says which case it starts and how it ended; when it
//! dies the parent records that case as failed (with the child's last words), saves the
//! input under `target/tmp/fuzz-failures/`, and starts a new child at the next case. A
//! case that runs longer than 20 s is a failure too (the child is killed). The JSON cases
//! go to a real server in this process.
//!
//! Regenerate the corpus with
//! `cargo test -p onestock --test fuzz -- --ignored write_corpus`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// The counting allocator.

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// 0: no limit (the parent). In the child: the heap may not grow beyond this.
static LIMIT: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn admit(size: usize) -> bool {
        let limit = LIMIT.load(Ordering::Relaxed);
        limit == 0 || CURRENT.load(Ordering::Relaxed).saturating_add(size) <= limit
    }
    fn grew(size: usize) {
        let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !Self::admit(new_size - old) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > old {
                Self::grew(new_size - old);
            } else {
                CURRENT.fetch_sub(old - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------------------------------
// Bounds and randomness.

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        _ => default,
    }
}

fn memory_limit() -> usize {
    env_number("FUZZ_MEMORY_MIB", 256) as usize * 1024 * 1024
}

fn seed() -> u64 {
    match std::env::var("FUZZ_SEED") {
        Ok(s) if !s.trim().is_empty() => s.trim().parse().expect("FUZZ_SEED: a number"),
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64,
    }
}

/// The same summary line in every run: libtest captures `print!`/`eprint!` of a passing
/// test, not a write to the process's stderr.
fn summary(line: &str) {
    println!("{line}");
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir().join(kind);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = format!("{kind}/{}", p.file_name().unwrap().to_string_lossy());
            (name, std::fs::read(&p).expect("corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

// ---------------------------------------------------------------------------------------
// Byte-level mutations.

const HUGE_NUMBERS: &[&str] = &[
    "99999999999999999999999999999999999999999999999999999999999999999999999999999999",
    "18446744073709551616",
    "9223372036854775808",
    "-9223372036854775809",
    "1e309",
    "-1e309",
    "1e-400",
    "NaN",
    "inf",
    "-0",
    "0x7fffffff",
    "1,000,000,000",
    "1000000001",
    "4294967296",
    "1E+308",
    "00000000000000000000000000000000000001",
];

const CONTROLS: &[&[u8]] = &[
    b"\0",
    b"\x01",
    b"\x07",
    b"\x08",
    b"\x0b",
    b"\x0c",
    b"\x1b",
    b"\x7f",
    b"\r",
    b"\n",
    b"\r\n",
    b"\t",
    b",",
    b"\"",
    "\u{2028}".as_bytes(),
    "\u{feff}".as_bytes(),
    "\u{202e}".as_bytes(),
];

const BAD_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xc3",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
    b"\x80",
    b"\xfe\xff",
];

fn insert(data: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let at = at.min(data.len());
    data.splice(at..at, bytes.iter().copied());
}

fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>) -> &'static str {
    let at = rng.below(data.len() + 1);
    match rng.below(11) {
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
            "bit flip"
        }
        1 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] = rng.next() as u8;
            "byte set"
        }
        2 => {
            data.truncate(at);
            "truncation"
        }
        3 => {
            let c = *rng.pick(CONTROLS);
            insert(data, at, c);
            "control character"
        }
        4 => {
            let c = *rng.pick(BAD_UTF8);
            insert(data, at, c);
            "invalid UTF-8"
        }
        5 => {
            let n = *rng.pick(HUGE_NUMBERS);
            insert(data, at, n.as_bytes());
            "huge number"
        }
        6 if !data.is_empty() => {
            let from = rng.below(data.len());
            let len = rng.below((data.len() - from).min(512)) + 1;
            let chunk: Vec<u8> = data[from..from + len].to_vec();
            for _ in 0..rng.below(4) + 1 {
                insert(data, at, &chunk);
            }
            "duplicated chunk"
        }
        7 if !data.is_empty() => {
            let from = rng.below(data.len());
            let len = rng.below((data.len() - from).min(256)) + 1;
            data.drain(from..from + len);
            "deleted chunk"
        }
        8 => {
            insert(
                data,
                0,
                *rng.pick::<&[u8]>(&[b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]),
            );
            "byte order mark"
        }
        9 => {
            let c = *rng.pick(&[&b"\0"[..], b"\t", b",", b"\n"]);
            let n = rng.pick(&[100usize, 1000, 20_000]);
            insert(data, at, &c.repeat(*n));
            "run of separators"
        }
        _ => {
            let i = rng.below(data.len() + 1);
            insert(data, i, "É€ß中".as_bytes());
            "non-ASCII text"
        }
    }
}

// ---------------------------------------------------------------------------------------
// Text tables.

const COLUMNS: &[&str] = &[
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
    "item_sku",
    "external_product_id",
    "external_product_id_type",
    "standard_price",
    "condition_type",
    "update_delete",
    "feed_product_type",
    "brand_name",
    "item_name",
    "product_description",
    "SKU",
    "QUANTITY",
    "colour",
    "",
];

const VALUES: &[&str] = &[
    "MUG-1",
    "B0C1234567",
    "036000291452",
    "9780306406157",
    "ASIN",
    "UPC",
    "1",
    "3",
    "4",
    "9.99",
    "19,99",
    "0",
    "-1",
    "11",
    "new",
    "used_good",
    "a",
    "d",
    "x",
    "existing",
    "unique",
    "DEFAULT",
    "AMAZON_NA",
    "2025-06-01",
    "2025-06-01T10:00:00Z",
    "Update",
    "PartialUpdate",
    "KITCHEN",
    "Acme",
    "Blue mug",
    "",
    " ",
    "\"quoted, text\"",
    "CAFÉ-U",
];

fn random_table(rng: &mut Rng) -> Vec<u8> {
    let delimiter = if rng.chance(50) { "\t" } else { "," };
    let line_end = if rng.chance(70) { "\n" } else { "\r\n" };
    let mut out = String::new();
    if rng.chance(20) {
        out.push_str("TemplateType=fptcustom\tVersion=2021.1\n");
        out.push_str(&format!("SKU{delimiter}Quantity{line_end}"));
    }
    let ncols = rng.below(8) + 1;
    let mut header: Vec<&str> = vec!["sku"];
    for _ in 1..ncols {
        header.push(*rng.pick(COLUMNS));
    }
    if rng.chance(20) {
        // A column named twice (issue 7, defect 10).
        let c = *rng.pick(&header);
        header.push(c);
    }
    let n = header.len();
    let i = rng.below(n);
    header.swap(0, i);
    out.push_str(&header.join(delimiter));
    out.push_str(line_end);
    for _ in 0..rng.below(30) {
        let fields: Vec<&str> = (0..rng.below(n + 2)).map(|_| *rng.pick(VALUES)).collect();
        out.push_str(&fields.join(delimiter));
        out.push_str(line_end);
    }
    out.into_bytes()
}

// ---------------------------------------------------------------------------------------
// Workbooks, written part by part into a ZIP archive of stored (uncompressed) entries, so
// every byte and every declared size can be chosen. The corpus also holds workbooks
// written by rust_xlsxwriter (deflated), as spreadsheets write them.

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A ZIP archive of stored entries. `declared`: the uncompressed size to declare for every
/// entry instead of the true one (a lie the reader must not allocate from).
fn zip_stored(entries: &[(String, Vec<u8>)], declared: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        let usize_ = declared.unwrap_or(size);
        let mut local = Vec::new();
        local.extend(0x0403_4b50u32.to_le_bytes());
        local.extend(20u16.to_le_bytes()); // version needed
        local.extend(0u16.to_le_bytes()); // flags
        local.extend(0u16.to_le_bytes()); // stored
        local.extend(0u16.to_le_bytes()); // time
        local.extend(0x5821u16.to_le_bytes()); // date
        local.extend(crc.to_le_bytes());
        local.extend(size.to_le_bytes());
        local.extend(usize_.to_le_bytes());
        local.extend((name.len() as u16).to_le_bytes());
        local.extend(0u16.to_le_bytes());
        out.extend(&local);
        out.extend(name.as_bytes());
        out.extend(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // made by
        central.extend(&local[4..]); // version needed .. extra length
        central.extend(0u16.to_le_bytes()); // comment length
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(0u32.to_le_bytes()); // external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let central_at = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(central_at.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A workbook described part by part.
#[derive(Clone)]
struct Book {
    /// (name, hidden, cells): cells as (reference, raw `<c>` inner XML and type).
    sheets: Vec<(String, bool, Vec<Cell>)>,
    shared: Vec<Vec<u8>>,
    /// `<sst count=.. uniqueCount=..>`, when they should lie.
    shared_count: Option<String>,
    dimension: Option<String>,
    /// Bytes put straight into the first sheet's `<sheetData>` (deep nesting etc.).
    extra_sheet_xml: Vec<u8>,
    /// Bytes before `<worksheet>` (a DOCTYPE with entities).
    prolog: Vec<u8>,
    without_shared_strings: bool,
    declared_size: Option<u32>,
}

#[derive(Clone)]
struct Cell {
    reference: String,
    /// `t` attribute: "s", "inlineStr", "n", "b", "e", "str".
    kind: &'static str,
    /// The `<v>` text, or for inline strings the text of `<is><t>`.
    value: Vec<u8>,
    /// A `r` attribute for the row element, when it should lie.
    row_attr: Option<String>,
}

fn column_name(mut col: usize) -> String {
    let mut s = Vec::new();
    col += 1;
    while col > 0 {
        col -= 1;
        s.push(b'A' + (col % 26) as u8);
        col /= 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

fn row_of(reference: &str) -> u64 {
    reference
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(1)
}

impl Book {
    fn table(rows: &[Vec<&str>]) -> Book {
        let mut shared: Vec<Vec<u8>> = Vec::new();
        let mut cells = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for (c, text) in row.iter().enumerate() {
                let reference = format!("{}{}", column_name(c), r + 1);
                if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.len() < 10 {
                    cells.push(Cell {
                        reference,
                        kind: "n",
                        value: text.as_bytes().to_vec(),
                        row_attr: None,
                    });
                } else {
                    shared.push(text.as_bytes().to_vec());
                    cells.push(Cell {
                        reference,
                        kind: "s",
                        value: (shared.len() - 1).to_string().into_bytes(),
                        row_attr: None,
                    });
                }
            }
        }
        Book {
            sheets: vec![("Sheet1".into(), false, cells)],
            shared,
            shared_count: None,
            dimension: None,
            extra_sheet_xml: Vec::new(),
            prolog: Vec::new(),
            without_shared_strings: false,
            declared_size: None,
        }
    }

    fn sheet_xml(&self, index: usize) -> Vec<u8> {
        let (_, _, cells) = &self.sheets[index];
        let mut x = b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n".to_vec();
        x.extend(&self.prolog);
        x.extend(b"<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">");
        if let Some(d) = &self.dimension {
            x.extend(format!("<dimension ref=\"{d}\"/>").as_bytes());
        }
        x.extend(b"<sheetData>");
        let mut rows: BTreeMap<u64, Vec<&Cell>> = BTreeMap::new();
        for c in cells {
            rows.entry(row_of(&c.reference)).or_default().push(c);
        }
        for (r, cells) in rows {
            let attr = cells
                .iter()
                .find_map(|c| c.row_attr.clone())
                .unwrap_or_else(|| r.to_string());
            x.extend(format!("<row r=\"{attr}\">").as_bytes());
            for c in cells {
                x.extend(format!("<c r=\"{}\" t=\"{}\">", c.reference, c.kind).as_bytes());
                if c.kind == "inlineStr" {
                    x.extend(b"<is><t>");
                    x.extend(&c.value);
                    x.extend(b"</t></is>");
                } else {
                    x.extend(b"<v>");
                    x.extend(&c.value);
                    x.extend(b"</v>");
                }
                x.extend(b"</c>");
            }
            x.extend(b"</row>");
        }
        if index == 0 {
            x.extend(&self.extra_sheet_xml);
        }
        x.extend(b"</sheetData></worksheet>");
        x
    }

    fn bytes(&self) -> Vec<u8> {
        let mut types = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>",
        );
        let mut sheets = String::new();
        let mut rels = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
        );
        let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
        for (i, (name, hidden, _)) in self.sheets.iter().enumerate() {
            let n = i + 1;
            types.push_str(&format!("<Override PartName=\"/xl/worksheets/sheet{n}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"));
            let state = if *hidden { " state=\"hidden\"" } else { "" };
            sheets.push_str(&format!(
                "<sheet name=\"{name}\" sheetId=\"{n}\"{state} r:id=\"rId{n}\"/>"
            ));
            rels.push_str(&format!("<Relationship Id=\"rId{n}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet{n}.xml\"/>"));
            parts.push((format!("xl/worksheets/sheet{n}.xml"), self.sheet_xml(i)));
        }
        if !self.without_shared_strings {
            types.push_str("<Override PartName=\"/xl/sharedStrings.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml\"/>");
            rels.push_str("<Relationship Id=\"rIdS\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings\" Target=\"sharedStrings.xml\"/>");
            let count = self
                .shared_count
                .clone()
                .unwrap_or_else(|| self.shared.len().to_string());
            let mut sst = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"{count}\" uniqueCount=\"{count}\">").into_bytes();
            for s in &self.shared {
                sst.extend(b"<si><t xml:space=\"preserve\">");
                sst.extend(s);
                sst.extend(b"</t></si>");
            }
            sst.extend(b"</sst>");
            parts.push(("xl/sharedStrings.xml".into(), sst));
        }
        types.push_str("</Types>");
        rels.push_str("</Relationships>");
        let workbook = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets>{sheets}</sheets></workbook>"
        );
        let mut entries: Vec<(String, Vec<u8>)> = vec![
            ("[Content_Types].xml".into(), types.into_bytes()),
            ("_rels/.rels".into(), b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>".to_vec()),
            ("xl/workbook.xml".into(), workbook.into_bytes()),
            ("xl/_rels/workbook.xml.rels".into(), rels.into_bytes()),
        ];
        entries.extend(parts);
        zip_stored(&entries, self.declared_size)
    }
}

fn basic_rows() -> Vec<Vec<&'static str>> {
    vec![
        vec!["sku", "product-id", "product-id-type", "price", "quantity"],
        vec!["MUG-1", "036000291452", "UPC", "9.99", "5"],
        vec!["MUG-2", "B0C1234567", "ASIN", "19,99", "0"],
    ]
}

/// One structural mutation of a workbook; returns its name.
fn mutate_book(rng: &mut Rng, book: &mut Book) -> &'static str {
    let far_col = || column_name(16_383);
    match rng.below(16) {
        0 => {
            // issue 7, defect 1: calamine sizes its grid from the cells' extent.
            let reference = match rng.below(3) {
                0 => format!("{}1048576", far_col()),
                1 => format!(
                    "{}{}",
                    column_name(rng.below(16_384)),
                    rng.below(1_048_576) + 1
                ),
                _ => format!("A{}", rng.below(1_048_576) + 1),
            };
            book.shared.push(b"x".to_vec());
            let v = (book.shared.len() - 1).to_string().into_bytes();
            book.sheets[0].2.push(Cell {
                reference,
                kind: "s",
                value: v,
                row_attr: None,
            });
            "far cell reference"
        }
        1 => {
            book.dimension = Some(
                rng.pick(&[
                    "A1:XFD1048576",
                    "A1:ZZZZZZ99999999999",
                    "XFD1048576",
                    "A1:A0",
                    "",
                ])
                .to_string(),
            );
            "declared dimension"
        }
        2 => {
            book.shared_count = Some(
                rng.pick(&["4294967295", "18446744073709551615", "-1", "999999999", "x"])
                    .to_string(),
            );
            "declared shared-string count"
        }
        3 => {
            if let Some(c) = book.sheets[0].2.first_mut() {
                c.row_attr = Some(
                    rng.pick(&["1048576", "4294967296", "0", "-5", "99999999999999999999"])
                        .to_string(),
                );
            }
            "row number"
        }
        4 => {
            let bad = *rng.pick(&[
                "XFE1",
                "A0",
                "A1048577",
                "AAAAAAAAAAAAAAAA1",
                "A99999999999999999999",
                "",
                "1A",
                "a1",
                "A-1",
            ]);
            if let Some(c) = book.sheets[0].2.last_mut() {
                c.reference = bad.into();
            }
            "bad cell reference"
        }
        5 => {
            let depth = *rng.pick(&[100usize, 1000, 10_000]);
            let mut x = Vec::new();
            for _ in 0..depth {
                x.extend(b"<r>");
            }
            for _ in 0..depth {
                x.extend(b"</r>");
            }
            if rng.chance(50) {
                book.extra_sheet_xml = x;
            } else if let Some(s) = book.shared.first_mut() {
                // Markup inside a shared string's text is not allowed; the reader must
                // refuse it, not recurse without end.
                *s = x;
            }
            "deep nesting"
        }
        6 => {
            if let Some(c) = book.sheets[0].2.iter_mut().find(|c| c.kind == "s") {
                c.value = rng
                    .pick(&["999999", "-1", "4294967296", "1.5", "", "x"])
                    .as_bytes()
                    .to_vec();
            }
            "shared string index"
        }
        7 => {
            if let Some(c) = book.sheets[0].2.last_mut() {
                c.kind = "n";
                c.value = rng.pick(HUGE_NUMBERS).as_bytes().to_vec();
            }
            "huge number cell"
        }
        8 => {
            if let Some(s) = book.shared.last_mut() {
                let bad: &[u8] = rng.pick::<&[u8]>(&[
                    b"\xff\xfe",
                    b"&#0;",
                    b"&#x1;",
                    b"\0",
                    b"&#xFFFF;",
                    b"&#99999999;",
                    b"&unknown;",
                    b"&amp",
                    b"\xc3",
                    b"]]>",
                ]);
                s.extend(bad);
            }
            "bad text in a string"
        }
        9 => {
            book.prolog = b"<!DOCTYPE worksheet [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">]>".to_vec();
            if let Some(c) = book.sheets[0].2.last_mut() {
                c.kind = "inlineStr";
                c.value = b"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;".to_vec();
            }
            "entity expansion"
        }
        10 => {
            // A column named twice (issue 7, defect 10).
            book.shared.push(b"sku".to_vec());
            let v = (book.shared.len() - 1).to_string().into_bytes();
            book.sheets[0].2.push(Cell {
                reference: "Z1".into(),
                kind: "s",
                value: v,
                row_attr: None,
            });
            "duplicate header column"
        }
        11 => {
            let mut cells = book.sheets[0].2.clone();
            book.sheets.insert(0, ("Hidden".into(), true, Vec::new()));
            cells.truncate(cells.len() / 2);
            let name = rng.pick(&["Template", "Plantilla", "Modèle", "Données", "sku"]);
            book.sheets[1].0 = name.to_string();
            book.sheets.push(("Other".into(), false, cells));
            "template sheet after a hidden one"
        }
        12 => {
            book.without_shared_strings = true;
            "no shared strings part"
        }
        13 => {
            book.declared_size = Some(*rng.pick(&[0xFFFF_FFFFu32, 0x7FFF_FFFF, 0, 1]));
            "declared ZIP entry size"
        }
        14 => {
            // A long shared string (small in the file, but not tiny).
            if let Some(s) = book.shared.last_mut() {
                *s = "ß"
                    .repeat(*rng.pick(&[1000usize, 70_000, 600_000]))
                    .into_bytes();
            }
            "long shared string"
        }
        _ => {
            let n = *rng.pick(&[100usize, 2000]);
            for i in 0..n {
                book.sheets[0].2.push(Cell {
                    reference: format!("A{}", i + 10),
                    kind: "n",
                    value: b"1".to_vec(),
                    row_attr: None,
                });
            }
            "many rows"
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cases.

struct Case {
    /// "upload" or "region".
    kind: &'static str,
    what: String,
    data: Vec<u8>,
}

fn random_upload_case(rng: &mut Rng, seeds: &[(String, Vec<u8>)], i: usize) -> Case {
    let mut steps: Vec<&str> = Vec::new();
    let (origin, mut data) = match rng.below(10) {
        0..=3 => {
            let (name, bytes) = rng.pick(seeds);
            (name.clone(), bytes.clone())
        }
        4..=5 => ("random table".to_string(), random_table(rng)),
        _ => {
            let mut book = Book::table(&basic_rows());
            for _ in 0..rng.below(3) + 1 {
                steps.push(mutate_book(rng, &mut book));
            }
            ("generated workbook".to_string(), book.bytes())
        }
    };
    let n = if steps.is_empty() {
        rng.below(4) + 1
    } else {
        // Most generated workbooks keep their ZIP intact, so the XML gets read.
        usize::from(rng.chance(25))
    };
    for _ in 0..n {
        steps.push(mutate_bytes(rng, &mut data));
    }
    Case {
        kind: "upload",
        what: format!("random #{i}: {origin} + {steps:?}"),
        data,
    }
}

fn random_region_case(rng: &mut Rng, seeds: &[(String, Vec<u8>)], i: usize) -> Case {
    let (name, bytes) = rng.pick(seeds);
    let mut data = bytes.clone();
    let mut steps: Vec<&str> = Vec::new();
    for _ in 0..rng.below(3) + 1 {
        let at = rng.below(data.len() + 1);
        let step = match rng.below(6) {
            0 => {
                let depth = *rng.pick(&[50usize, 500, 5000]);
                let x = format!("\ndeep = {}{}\n", "[".repeat(depth), "]".repeat(depth));
                data.extend(x.as_bytes());
                "deep nesting"
            }
            1 => {
                let depth = *rng.pick(&[50usize, 500, 5000]);
                let x = format!("\ndeep = {}1{}\n", "{a=".repeat(depth), "}".repeat(depth));
                data.extend(x.as_bytes());
                "deep tables"
            }
            2 => {
                data.extend(b"\n[[stores]]\ncode = \"US\"\nname = \"Again\"\ncurrency = \"USD\"\nlanguages = [\"en\"]\nmarketplace_id = \"X\"\n");
                "store twice"
            }
            3 => {
                let v = rng.pick(&[
                    "\"\\u0000\"",
                    "\"\u{7}\"",
                    "99999999999999999999999",
                    "[]",
                    "\"\"",
                    "\"usd\"",
                    "\"ZZZ\"",
                    "1979-05-27T07:32:00Z",
                ]);
                let key = rng.pick(&[
                    "code",
                    "currency",
                    "languages",
                    "name",
                    "marketplace_id",
                    "restricted_product_types",
                ]);
                data.extend(format!("\n[[stores]]\n{key} = {v}\n").as_bytes());
                "odd value"
            }
            _ => mutate_bytes(rng, &mut data),
        };
        let _ = at;
        steps.push(step);
    }
    Case {
        kind: "region",
        what: format!("random #{i}: {name} + {steps:?}"),
        data,
    }
}

// ---------------------------------------------------------------------------------------
// The child: runs cases from a folder, one at a time, and says how each ended.

fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

fn run_one(kind: &str, path: &Path) -> String {
    match kind {
        "upload" => match onestock::upload::parse::open(path) {
            Ok(reader) => {
                let unknown = reader.unknown_columns().len();
                let mut rows = 0usize;
                let mut ok = 0usize;
                for row in reader {
                    rows += 1;
                    if row.problem.is_none()
                        && onestock::upload::parse::parse_row(&row.fields).is_ok()
                    {
                        ok += 1;
                    }
                    if rows >= 5_000_000 {
                        break;
                    }
                }
                format!("rows={rows} typed={ok} unknown_columns={unknown}")
            }
            Err(e) => format!(
                "file error: {}",
                e.to_string().chars().take(120).collect::<String>()
            ),
        },
        "region" => {
            let bytes = std::fs::read(path).expect("case");
            let text = String::from_utf8_lossy(&bytes);
            match onestock_core::region::Region::from_toml(&text) {
                Ok(r) => format!("region with {} stores", r.stores.len()),
                Err(e) => format!("error: {}", e.chars().take(120).collect::<String>()),
            }
        }
        other => panic!("unknown case kind {other}"),
    }
}

/// Not a test of its own: the entry point of the child process (see the module
/// documentation). Without `FUZZ_CHILD_CASES` it does nothing.
#[test]
fn fuzz_child_entry_point() {
    let Ok(dir) = std::env::var("FUZZ_CHILD_CASES") else {
        return;
    };
    let from: usize = env_number("FUZZ_CHILD_FROM", 0) as usize;
    let limit = memory_limit();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("case folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    std::panic::set_hook(Box::new(|info| {
        let _ = std::io::stderr().write_all(format!("PANIC {info}\n").as_bytes());
    }));
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some((index, kind)) = name.split_once('.') else {
            continue;
        };
        let index: usize = index.parse().expect("case index");
        if index < from {
            continue;
        }
        say(&format!("START {index}"));
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        LIMIT.store(limit, Ordering::Relaxed);
        let outcome = std::panic::catch_unwind(|| run_one(kind, &path));
        LIMIT.store(0, Ordering::Relaxed);
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        match outcome {
            Ok(o) => say(&format!("END {index} peak={peak} {}", o.replace('\n', " "))),
            Err(_) => say(&format!("PANIC {index} peak={peak}")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The parent: writes the cases, runs children over them, collects failures.

struct Outcome {
    failures: Vec<String>,
    max_peak: usize,
    max_peak_case: String,
    file_errors: usize,
    parsed: usize,
}

const CASE_TIMEOUT: Duration = Duration::from_secs(20);

fn failure_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures")
}

/// What a failing case has to do with a defect already filed, for the report.
fn known_defect(what: &str) -> &'static str {
    if what.contains("extreme-reference") || what.contains("cell reference") {
        " [issue 7 defect 1 or like it: the workbook reader sizes its grid from cell references]"
    } else if what.contains("nul-") || what.contains("control character") {
        " [issue 7 defect 3: NUL in text]"
    } else {
        ""
    }
}

/// Runs `cases` (numbered from `first` in the report) in child processes.
fn run_cases(cases: &[Case], first: usize) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i:06}.{}", c.kind)), &c.data).expect("case");
    }
    let mut out = Outcome {
        failures: Vec::new(),
        max_peak: 0,
        max_peak_case: String::new(),
        file_errors: 0,
        parsed: 0,
    };
    let fail = |out: &mut Outcome, i: usize, why: String| {
        let c = &cases[i];
        let _ = std::fs::create_dir_all(failure_dir());
        let saved = failure_dir().join(format!(
            "{}-{}-{:06}.{}",
            std::process::id(),
            c.kind,
            first + i,
            if c.data.starts_with(b"PK") {
                "xlsx"
            } else {
                "bin"
            }
        ));
        let _ = std::fs::write(&saved, &c.data);
        out.failures.push(format!(
            "{} case {}{} ({} bytes, saved as {}): {why}",
            c.kind,
            c.what,
            known_defect(&c.what),
            c.data.len(),
            saved.display()
        ));
    };
    let mut next = 0usize;
    while next < cases.len() {
        let stderr_path = dir.path().join(format!("child-{next}.stderr"));
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "fuzz_child_entry_point",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env("FUZZ_CHILD_CASES", dir.path())
            .env("FUZZ_CHILD_FROM", next.to_string())
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("start the child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut started: Option<usize> = None;
        loop {
            match rx.recv_timeout(CASE_TIMEOUT) {
                Ok(line) => {
                    let mut words = line.splitn(4, ' ');
                    let tag = words.next().unwrap_or("");
                    let Some(i) = words.next().and_then(|w| w.parse::<usize>().ok()) else {
                        continue;
                    };
                    let peak: usize = words
                        .next()
                        .and_then(|w| w.strip_prefix("peak="))
                        .and_then(|w| w.parse().ok())
                        .unwrap_or(0);
                    let rest = words.next().unwrap_or("");
                    match tag {
                        "START" => started = Some(i),
                        "END" | "PANIC" => {
                            started = None;
                            next = i + 1;
                            if peak > out.max_peak {
                                out.max_peak = peak;
                                out.max_peak_case = cases[i].what.clone();
                            }
                            if tag == "PANIC" {
                                let msg = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                                let last = msg
                                    .lines()
                                    .rev()
                                    .find(|l| l.starts_with("PANIC"))
                                    .unwrap_or("")
                                    .to_owned();
                                fail(&mut out, i, format!("panicked: {last}"));
                            } else if rest.starts_with("file error") || rest.starts_with("error") {
                                out.file_errors += 1;
                            } else {
                                out.parsed += 1;
                            }
                        }
                        _ => {}
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let i = started.unwrap_or(next);
                    fail(
                        &mut out,
                        i,
                        format!("still running after {CASE_TIMEOUT:?} (killed)"),
                    );
                    next = i + 1;
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait for the child");
                    if let Some(i) = started {
                        let words = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                        let last: Vec<&str> = words
                            .lines()
                            .filter(|l| !l.trim().is_empty() && !l.starts_with("running"))
                            .collect();
                        let last = last[last.len().saturating_sub(3)..].join(" | ");
                        let over = if last.contains("memory allocation of") {
                            format!(
                                " (an allocation beyond the {} MiB limit was refused)",
                                memory_limit() >> 20
                            )
                        } else {
                            String::new()
                        };
                        fail(
                            &mut out,
                            i,
                            format!("the process died ({status}){over}: {last}"),
                        );
                        next = i + 1;
                    } else if next < cases.len() && !status.success() {
                        panic!(
                            "the fuzz child failed outside a case ({status}): {}",
                            std::fs::read_to_string(&stderr_path).unwrap_or_default()
                        );
                    } else {
                        next = next.max(cases.len());
                    }
                    break;
                }
            }
        }
    }
    out
}

fn report(target: &str, corpus: usize, random: usize, seed: u64, started: Instant, out: Outcome) {
    summary(&format!(
        "fuzz {target}: seed {seed}; {corpus} corpus cases + {random} random cases; {} read, {} refused as a whole, {} failures; \
         peak heap of one case {:.1} MiB ({}); {:.1?}",
        out.parsed,
        out.file_errors,
        out.failures.len(),
        out.max_peak as f64 / 1048576.0,
        out.max_peak_case,
        started.elapsed()
    ));
    if !out.failures.is_empty() {
        let shown: Vec<&str> = out.failures.iter().take(30).map(String::as_str).collect();
        panic!(
            "fuzz {target} (FUZZ_SEED={seed}): {} failing cases:\n{}",
            out.failures.len(),
            shown.join("\n")
        );
    }
}

fn random_cases(seed: u64, make: impl Fn(&mut Rng, usize) -> Case) -> Vec<Case> {
    let n = env_number("FUZZ_CASES", 2_000) as usize;
    let mut rng = Rng(seed);
    (0..n).map(|i| make(&mut rng, i)).collect()
}

/// Runs the corpus, then random cases in slices until the count or the time is spent.
fn fuzz_target(
    target: &str,
    kind: &'static str,
    make: fn(&mut Rng, &[(String, Vec<u8>)], usize) -> Case,
) {
    let started = Instant::now();
    let seed = seed();
    let seeds = corpus(kind);
    let budget = Duration::from_secs(env_number("FUZZ_SECONDS", 60));
    let mut cases: Vec<Case> = seeds
        .iter()
        .map(|(name, data)| Case {
            kind,
            what: format!("corpus {name}"),
            data: data.clone(),
        })
        .collect();
    let corpus_n = cases.len();
    let random = random_cases(seed, |rng, i| make(rng, &seeds, i));
    // The corpus first, then the random cases in slices, so the time bound can stop early.
    let mut all = run_cases(&cases, 0);
    let mut done = 0usize;
    let mut random = random.into_iter().peekable();
    while random.peek().is_some() && started.elapsed() < budget {
        cases = random.by_ref().take(250).collect();
        let o = run_cases(&cases, corpus_n + done);
        done += cases.len();
        all.failures.extend(o.failures);
        all.parsed += o.parsed;
        all.file_errors += o.file_errors;
        if o.max_peak > all.max_peak {
            all.max_peak = o.max_peak;
            all.max_peak_case = o.max_peak_case;
        }
    }
    report(target, corpus_n, done, seed, started, all);
}

#[test]
fn fuzz_upload_parser() {
    fuzz_target(
        "upload parser (TSV, CSV, xlsx)",
        "upload",
        random_upload_case,
    );
}

#[test]
fn fuzz_region_file() {
    fuzz_target("region file", "region", random_region_case);
}

// ---------------------------------------------------------------------------------------
// JSON bodies through a real server.

/// A request of the corpus: `METHOD PATH ROLE` on the first line, the body after it.
/// `{ASIN}`, `{SELLER}` and `{SKU}` are filled in at run time.
struct Request {
    name: String,
    method: Method,
    path: String,
    operator: bool,
    body: Vec<u8>,
}

fn requests() -> Vec<Request> {
    corpus("json")
        .into_iter()
        .map(|(name, data)| {
            let text = String::from_utf8_lossy(&data).into_owned();
            let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
            let mut w = first.split_whitespace();
            let method = Method::from_bytes(w.next().expect("method").as_bytes()).expect("method");
            let path = w.next().expect("path").to_owned();
            let operator = w.next() == Some("operator");
            Request {
                name,
                method,
                path,
                operator,
                body: body.as_bytes().to_vec(),
            }
        })
        .collect()
}

const RAW: &str = "\u{1}RAW\u{1}";

/// A node of `v`, `steps` random steps down (fewer where it ends).
fn pick_node<'a>(rng: &mut Rng, v: &'a mut Value, steps: usize) -> &'a mut Value {
    let inner = match &*v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    if steps == 0 || !inner {
        return v;
    }
    match v {
        Value::Object(m) => {
            let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
            pick_node(rng, m.get_mut(&k).unwrap(), steps - 1)
        }
        Value::Array(a) => {
            let i = rng.below(a.len());
            pick_node(rng, &mut a[i], steps - 1)
        }
        _ => unreachable!(),
    }
}

/// Replaces a random node of the JSON value; returns the mutation's name.
fn mutate_json(rng: &mut Rng, v: &mut Value, raw: &mut Vec<String>) -> &'static str {
    let steps = rng.below(4);
    let node = pick_node(rng, v, steps);
    let placeholder = |raw: &mut Vec<String>, text: String| {
        raw.push(text);
        Value::String(format!("{RAW}{}", raw.len() - 1))
    };
    match rng.below(12) {
        0 => {
            *node = placeholder(raw, rng.pick(HUGE_NUMBERS).to_string());
            "huge number"
        }
        1 => {
            let depth = *rng.pick(&[64usize, 200, 5000, 100_000]);
            *node = placeholder(raw, format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
            "deep nesting"
        }
        2 => {
            let depth = *rng.pick(&[64usize, 200, 5000]);
            *node = placeholder(
                raw,
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)),
            );
            "deep objects"
        }
        3 => {
            let c = rng.pick(&[
                "\0", "\u{1}", "\u{1b}", "\u{7f}", "\u{202e}", "\u{feff}", "\n", "\u{ffff}",
            ]);
            let base = node.as_str().unwrap_or("x").to_owned();
            let at = rng.below(base.len() + 1);
            let at = (0..=at)
                .rev()
                .find(|i| base.is_char_boundary(*i))
                .unwrap_or(0);
            *node = Value::String(format!("{}{c}{}", &base[..at], &base[at..]));
            "control character in text"
        }
        4 => {
            let n = *rng.pick(&[300usize, 70_000, 900_000]);
            *node = Value::String("é".repeat(n / 2));
            "long text"
        }
        5 => {
            *node = rng
                .pick(&[
                    Value::Null,
                    json!(true),
                    json!(-1),
                    json!(0),
                    json!(1.5),
                    json!(""),
                    json!([]),
                    json!({}),
                    json!("0"),
                    json!(1_000_000_001),
                    json!(i64::MIN),
                    json!(u64::MAX),
                ])
                .clone();
            "other type or value"
        }
        6 => {
            if let Value::Object(m) = node
                && !m.is_empty()
            {
                let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
                m.remove(&k);
            }
            "missing field"
        }
        7 => {
            if let Value::Object(m) = node {
                m.insert("unexpected".into(), json!(1));
            }
            "unknown field"
        }
        8 => {
            if let Value::Array(a) = node
                && let Some(first) = a.first().cloned()
            {
                for _ in 0..*rng.pick(&[2usize, 101, 5000]) {
                    a.push(first.clone());
                }
            }
            "many array items"
        }
        9 => {
            *node = placeholder(raw, "{\"a\":1,\"a\":2}".into());
            "duplicate key"
        }
        10 => {
            *node = Value::String(
                rng.pick(&["%00", "../..", "US\u{0}", "ü", "🙂", " ", "us"])
                    .to_string(),
            );
            "odd text"
        }
        _ => {
            *node = placeholder(
                raw,
                rng.pick(&["1e5", "-0", "01", "1.0", ".5", "+1", "0x10"])
                    .to_string(),
            );
            "odd number syntax"
        }
    }
}

fn fill(template: &[u8], asin: &str, seller: &str, sku: &str) -> Vec<u8> {
    String::from_utf8_lossy(template)
        .replace("{ASIN}", asin)
        .replace("{SELLER}", seller)
        .replace("{SKU}", sku)
        .into_bytes()
}

async fn fuzz_json(backend: common::Backend) {
    let started = Instant::now();
    let seed = seed();
    let n = env_number("FUZZ_CASES", 2_000) as usize;
    let budget = Duration::from_secs(env_number("FUZZ_SECONDS", 60));
    let Some(app) = common::TestApp::spawn(backend, common::default_region()).await else {
        panic!(
            "the JSON fuzz on {backend:?} needs PostgreSQL: set {}",
            common::POSTGRES_ENV
        );
    };
    let seller = app.new_seller("Fuzz Seller").await;
    let asin = seller.product_everywhere(&common::upc(424_242)).await;
    for (sku, store) in [("MUG", "US"), ("MUG", "CA"), ("MUG", "MX")] {
        let mut body =
            json!({"asin": asin, "price": common::price("9.99", common::currency(store))});
        if store == "US" {
            body["quantity"] = json!(1_000_000);
        } else {
            body["share"] = json!("existing");
        }
        seller.list(sku, store, body).await.ok(201);
    }
    let seller_id = match &seller.seller_id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let seller_token = seller.token.clone().expect("token");
    let templates = requests();
    let mut rng = Rng(seed);
    let mut failures: Vec<String> = Vec::new();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut sent = 0usize;
    let mut retried = 0usize;
    let mut previous = String::new();
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    let mut corpus_n = 0usize;
    let total = templates.len() + n;
    for i in 0..total {
        if i >= templates.len() && started.elapsed() > budget {
            break;
        }
        let sku = if i < templates.len() {
            "MUG"
        } else {
            *rng.pick(&["MUG", "NEW-SKU", "FUZZ-1"])
        };
        let (req, body, what) = if i < templates.len() {
            corpus_n += 1;
            let r = &templates[i];
            (
                r,
                fill(&r.body, &asin, &seller_id, sku),
                format!("corpus {}", r.name),
            )
        } else {
            let r = rng.pick(&templates);
            let filled = fill(&r.body, &asin, &seller_id, sku);
            let mut steps: Vec<&str> = Vec::new();
            let body = match serde_json::from_slice::<Value>(&filled) {
                Ok(mut v) if rng.chance(75) => {
                    let mut raw = Vec::new();
                    for _ in 0..*rng.pick(&[1, 1, 1, 2, 3]) {
                        steps.push(mutate_json(&mut rng, &mut v, &mut raw));
                    }
                    let mut text = serde_json::to_string(&v).expect("json");
                    for (k, r) in raw.iter().enumerate() {
                        text = text.replace(&format!("\"\\u0001RAW\\u0001{k}\""), r);
                    }
                    text.into_bytes()
                }
                _ => {
                    let mut b = filled;
                    for _ in 0..rng.below(3) + 1 {
                        steps.push(mutate_bytes(&mut rng, &mut b));
                    }
                    b
                }
            };
            (r, body, format!("random #{i}: {} + {steps:?}", r.name))
        };
        let path = String::from_utf8_lossy(&fill(req.path.as_bytes(), &asin, &seller_id, sku))
            .into_owned();
        let token = if req.operator {
            common::OPERATOR_TOKEN
        } else {
            &seller_token
        };
        let content_type = if rng.chance(95) {
            "application/json"
        } else {
            *rng.pick(&["text/plain", "application/json; charset=latin1", ""])
        };
        let request = |http: &reqwest::Client| {
            let rb = http
                .request(req.method.clone(), format!("{}{}", app.base, path))
                .bearer_auth(token)
                .body(body.clone());
            if content_type.is_empty() {
                rb
            } else {
                rb.header("content-type", content_type)
            }
        };
        sent += 1;
        let repro = || {
            let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            format!(
                "{what}: {} {path} ({} bytes{}): {shown:?}",
                req.method,
                body.len(),
                if body.len() > 300 {
                    ", first 300 shown"
                } else {
                    ""
                }
            )
        };
        let mut answer = request(&app.http).send().await;
        if answer.is_err() {
            // A kept-alive connection the server closed as the client reused it: the
            // same request again on a new connection must be answered.
            retried += 1;
            println!(
                "sent again after {:?}; the request before it: {previous}",
                answer.as_ref().err()
            );
            answer = request(&fresh).send().await;
        }
        match answer {
            Err(e) => failures.push(format!("no answer ({e}) to {}", repro())),
            Ok(r) => {
                let status = r.status().as_u16();
                previous = format!("{status} to {}", repro());
                *by_status.entry(status).or_default() += 1;
                let text = r.text().await.unwrap_or_default();
                if status >= 500 {
                    failures.push(format!(
                        "{status} {} to {}{}",
                        &text[..text.len().min(300)],
                        repro(),
                        known_defect(&what)
                    ));
                } else if status >= 400 {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if !v["error"]["code"].is_string() {
                        failures.push(format!(
                            "{status} without the SPEC's error shape ({}) to {}",
                            &text[..text.len().min(200)],
                            repro()
                        ));
                    }
                }
            }
        }
        if i % 200 == 199 {
            let h = app
                .http
                .get(format!("{}/healthz", app.base))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if !matches!(&h, Ok(r) if r.status().as_u16() == 200) {
                failures.push(format!(
                    "/healthz does not answer 200 after case {i}: {h:?}"
                ));
            }
        }
    }
    let h = app
        .http
        .get(format!("{}/healthz", app.base))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    if !matches!(&h, Ok(r) if r.status().as_u16() == 200) {
        failures.push(format!("/healthz does not answer 200 at the end: {h:?}"));
    }
    summary(&format!(
        "fuzz JSON bodies on {backend:?}: seed {seed}; {corpus_n} corpus cases + {} random cases; answers {by_status:?}; {retried} sent again after a transport error; {} failures; {:.1?}",
        sent - corpus_n,
        failures.len(),
        started.elapsed()
    ));
    if !failures.is_empty() {
        let shown: Vec<&str> = failures.iter().take(30).map(String::as_str).collect();
        panic!(
            "fuzz JSON bodies on {backend:?} (FUZZ_SEED={seed}): {} failures:\n{}",
            failures.len(),
            shown.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_json_bodies_sqlite() {
    fuzz_json(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_json_bodies_postgres() {
    fuzz_json(common::Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// The corpus, written by code so it can be read and regenerated.

#[test]
#[ignore = "writes tests/fuzz-corpus; run by hand"]
fn write_corpus() {
    let root = corpus_dir();
    for kind in ["upload", "region", "json"] {
        std::fs::create_dir_all(root.join(kind)).expect("corpus folder");
    }
    let put = |kind: &str, name: &str, data: &[u8]| {
        std::fs::write(root.join(kind).join(name), data).expect("write corpus file");
    };

    // Text uploads.
    let basic = "sku\tproduct-id\tproduct-id-type\tprice\tquantity\titem-condition\tadd-delete\n\
                 MUG-1\t036000291452\tUPC\t9.99\t5\t11\ta\n\
                 MUG-2\tB0C1234567\tASIN\t19,99\t0\tnew\t\n\
                 MUG-3\t\t\t\t\t\td\n";
    put("upload", "basic.tsv", basic.as_bytes());
    put("upload", "basic-crlf.csv", b"sku,product-id,product-id-type,price,quantity\r\nMUG-1,036000291452,3,9.99,5\r\n\"MUG,2\",\"B0C1234567\",1,\"19,99\",\"1\"\r\n");
    put("upload", "bom.tsv", format!("\u{feff}{basic}").as_bytes());
    put(
        "upload",
        "windows-1252.tsv",
        b"sku\tprice\tquantity\nCAF\xc9-U\t9.99\t1\n",
    );
    // UTF-8 with one byte that is not (issue 7, defect 10).
    put(
        "upload",
        "mixed-encoding.tsv",
        &[
            "sku\tprice\tquantity\nCAFÉ-U\t9.99\t1\n".as_bytes(),
            b"X\xff\t1\t1\n",
        ]
        .concat(),
    );
    put("upload", "template-preamble.tsv", b"TemplateType=fptcustom\tVersion=2021.1\tTemplateSignature=X\nSKU\tProduct ID\tQuantity\nitem_sku\texternal_product_id\tquantity\nMUG-1\t036000291452\t5\n");
    put("upload", "fptcustom.tsv", b"item_sku\texternal_product_id\texternal_product_id_type\tstandard_price\tquantity\tcondition_type\tupdate_delete\tfeed_product_type\tbrand_name\titem_name\tlanguage_value\nMUG-9\t036000291452\tUPC\t9.99\t3\tNew\tUpdate\tKITCHEN\tAcme\tBlue mug\ten\n");
    put(
        "upload",
        "duplicate-columns.tsv",
        b"sku\tquantity\tQUANTITY\tsku\nMUG-1\t1\t2\tOTHER\n",
    );
    put("upload", "nul.tsv", b"sku\tquantity\nMUG\x001\t1\n");
    put("upload", "utf16le.tsv", b"\xff\xfes\x00k\x00u\x00\n\x00");
    put(
        "upload",
        "unclosed-quote.csv",
        b"sku,quantity\n\"MUG-1,1\nMUG-2,2\n",
    );
    put("upload", "huge-numbers.tsv", format!("sku\tprice\tquantity\nA\t{}\t{}\nB\t1e309\t-1\nC\t9.999999999999999999999\t18446744073709551616\n", HUGE_NUMBERS[0], HUGE_NUMBERS[0]).as_bytes());
    put(
        "upload",
        "many-columns.tsv",
        format!("sku{}\nA{}\n", "\tc".repeat(5000), "\t1".repeat(5000)).as_bytes(),
    );
    put("upload", "empty.tsv", b"");
    put("upload", "only-header.tsv", b"sku\tquantity\n");
    put(
        "upload",
        "blank-lines.csv",
        b"\n\n,,,\nsku,quantity\n\n,,\nA,1\n\n",
    );
    put(
        "upload",
        "controls.tsv",
        b"sku\tquantity\nA\x1b[31m\t\x07\nB\x0b\t\x0c1\r\r\n",
    );
    put("upload", "no-sku.tsv", b"price\tquantity\n1\t1\n");
    put("upload", "cr-only.csv", b"sku,quantity\rA,1\rB,2\r");
    put("upload", "dates.tsv", b"sku\tstart-selling-date\nA\t2025-06-01\nB\t2025-06-01T10:00:00+02:00\nC\t9999-99-99\nD\t0000-01-01T00:00:00Z\n");

    // Workbooks by rust_xlsxwriter (deflated, as spreadsheets write them).
    {
        use rust_xlsxwriter::Workbook;
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        for (r, row) in basic_rows().iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                ws.write_string(r as u32, c as u16, *v).unwrap();
            }
        }
        ws.write_number(3, 0, 12345.0).unwrap();
        ws.write_number(3, 4, 1e300).unwrap();
        put(
            "upload",
            "xlsxwriter-basic.xlsx",
            &wb.save_to_buffer().unwrap(),
        );

        let mut wb = Workbook::new();
        let hidden = wb.add_worksheet();
        hidden.set_name("Instructions").unwrap();
        hidden.write_string(0, 0, "read me").unwrap();
        hidden.set_hidden(true);
        let t = wb.add_worksheet();
        t.set_name("Plantilla").unwrap();
        t.write_string(0, 0, "TemplateType=fptcustom").unwrap();
        t.write_string(1, 0, "SKU").unwrap();
        t.write_string(2, 0, "item_sku").unwrap();
        t.write_string(2, 1, "quantity").unwrap();
        t.write_string(3, 0, "MUG-1").unwrap();
        t.write_number(3, 1, 7.0).unwrap();
        put(
            "upload",
            "xlsxwriter-template.xlsx",
            &wb.save_to_buffer().unwrap(),
        );
    }

    // Workbooks part by part.
    let basic_book = Book::table(&basic_rows());
    put("upload", "stored-basic.xlsx", &basic_book.bytes());
    let mut b = Book::table(&[vec!["sku"]]);
    b.shared.push(b"x".to_vec());
    b.sheets[0].2.push(Cell {
        reference: "XFD1048576".into(),
        kind: "s",
        value: b"1".to_vec(),
        row_attr: None,
    });
    // issue 7, defect 1: A1 = sku, XFD1048576 = x (calamine asks for 512 GiB).
    put("upload", "extreme-reference.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.dimension = Some("A1:XFD1048576".into());
    put("upload", "declared-dimension.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.shared_count = Some("4294967295".into());
    put("upload", "declared-shared-count.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.declared_size = Some(0xFFFF_FFFF);
    put("upload", "declared-zip-size.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.sheets[0].2[0].row_attr = Some("4294967296".into());
    put("upload", "row-number.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.extra_sheet_xml = format!("{}{}", "<r>".repeat(5000), "</r>".repeat(5000)).into_bytes();
    put("upload", "deep-nesting.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.shared[1].extend(b"\xff&#0;\x01");
    put("upload", "bad-text.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.sheets[0].2[1].value = b"999999".to_vec();
    put("upload", "shared-index.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.prolog = b"<!DOCTYPE worksheet [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>".to_vec();
    put("upload", "entities.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.shared.push(b"sku".to_vec());
    let idx = (b.shared.len() - 1).to_string().into_bytes();
    b.sheets[0].2.push(Cell {
        reference: "F1".into(),
        kind: "s",
        value: idx,
        row_attr: None,
    });
    put("upload", "duplicate-columns.xlsx", &b.bytes());
    let mut b = basic_book.clone();
    b.without_shared_strings = true;
    put("upload", "no-shared-strings.xlsx", &b.bytes());
    let mut b = Book::table(&[vec!["sku", "quantity"], vec!["A", "1"]]);
    b.sheets[0].2.push(Cell {
        reference: "XFD1".into(),
        kind: "n",
        value: b"1".to_vec(),
        row_attr: None,
    });
    put("upload", "wide-header.xlsx", &b.bytes());
    let bytes = basic_book.bytes();
    put("upload", "truncated.xlsx", &bytes[..bytes.len() / 2]);
    put(
        "upload",
        "not-a-workbook.zip",
        &zip_stored(&[("hello.txt".into(), b"hello".to_vec())], None),
    );
    put("upload", "zip-magic-only.xlsx", b"PK\x03\x04");
    put(
        "upload",
        "xls-magic.xls",
        &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0],
    );

    // Region files.
    put(
        "region",
        "spec.toml",
        common::RESTRICTED_REGION_TOML.as_bytes(),
    );
    put("region", "one-store.toml", b"name = \"One\"\n[[stores]]\ncode = \"US\"\nname = \"United States\"\ncurrency = \"USD\"\nlanguages = [\"en\"]\nmarketplace_id = \"ATVPDKIKX0DER\"\n");
    put("region", "empty.toml", b"");
    put("region", "no-stores.toml", b"name = \"Nothing\"\n");
    put(
        "region",
        "missing-field.toml",
        b"name = \"X\"\n[[stores]]\ncode = \"US\"\ncurrency = \"USD\"\nlanguages = [\"en\"]\n",
    );
    put("region", "store-twice.toml", b"name = \"X\"\n[[stores]]\ncode = \"US\"\nname = \"A\"\ncurrency = \"USD\"\nlanguages = [\"en\"]\nmarketplace_id = \"A\"\n[[stores]]\ncode = \"US\"\nname = \"B\"\ncurrency = \"USD\"\nlanguages = [\"en\"]\nmarketplace_id = \"B\"\n");
    put("region", "odd-values.toml", b"name = \"X\\u0000\"\n[[stores]]\ncode = \"us\"\nname = 99999999999999999999\ncurrency = \"usd\"\nlanguages = []\nmarketplace_id = \"\"\n");
    put(
        "region",
        "deep.toml",
        format!(
            "name = \"X\"\ndeep = {}{}\n",
            "[".repeat(3000),
            "]".repeat(3000)
        )
        .as_bytes(),
    );
    put("region", "bad-utf8.toml", b"name = \"\xff\xfe\"\n");

    // JSON requests: `METHOD PATH ROLE`, then the body.
    put(
        "json",
        "seller.req",
        b"POST /v1/sellers operator\n{\"name\": \"Fuzzed Seller\"}",
    );
    put("json", "product.req", b"POST /v1/catalog/items seller\n{\"store\": \"US\", \"product_type\": \"KITCHEN\", \"title\": \"Red enamel mug\", \"brand\": \"Acme\", \"description\": \"A red mug.\", \"language\": \"en\", \"identifiers\": [{\"type\": \"EAN\", \"value\": \"4006381333931\"}], \"force_new\": false}");
    put("json", "put-listing.req", b"PUT /v1/listings/{SKU}/stores/US seller\n{\"asin\": \"{ASIN}\", \"price\": {\"amount\": \"9.99\", \"currency\": \"USD\"}, \"quantity\": 5, \"condition\": \"new\", \"fulfillment\": \"merchant\", \"start_selling_at\": \"2025-06-01T12:00:00Z\"}");
    put("json", "put-existing.req", b"PUT /v1/listings/{SKU}/stores/CA seller\n{\"asin\": \"{ASIN}\", \"price\": {\"amount\": \"12.99\", \"currency\": \"CAD\"}, \"share\": \"existing\"}");
    put("json", "patch.req", b"PATCH /v1/listings/MUG/stores/US seller\n{\"quantity_delta\": -1, \"price\": {\"amount\": \"8.99\", \"currency\": \"USD\"}, \"condition\": \"used_good\", \"start_selling_at\": null}");
    put(
        "json",
        "patch-quantity.req",
        b"PATCH /v1/listings/MUG/stores/MX seller\n{\"quantity\": 1000000}",
    );
    put("json", "order.req", b"POST /v1/stores/US/orders operator\n{\"order_id\": \"fuzz-order-1\", \"lines\": [{\"seller_id\": \"{SELLER}\", \"sku\": \"MUG\", \"quantity\": 1}, {\"seller_id\": \"{SELLER}\", \"sku\": \"MUG\", \"quantity\": 2}]}");
    put(
        "json",
        "cancel.req",
        b"POST /v1/stores/US/orders/fuzz-order-1/cancel operator\n{}",
    );
    put(
        "json",
        "close.req",
        b"POST /v1/listings/MUG/stores/CA/close seller\n{}",
    );
    put(
        "json",
        "deep.req",
        format!(
            "POST /v1/sellers operator\n{}{}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .as_bytes(),
    );
    put(
        "json",
        "nul-name.req",
        b"POST /v1/sellers operator\n{\"name\": \"a\\u0000b\"}",
    );
    put("json", "nul-order-id.req", b"POST /v1/stores/MX/orders operator\n{\"order_id\": \"o\\u0000\", \"lines\": [{\"seller_id\": \"{SELLER}\", \"sku\": \"MUG\", \"quantity\": 1}]}");
    put(
        "json",
        "huge-quantity.req",
        b"PATCH /v1/listings/MUG/stores/US seller\n{\"quantity\": 1e400}",
    );
}
