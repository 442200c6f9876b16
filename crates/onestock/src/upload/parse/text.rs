//! Reading text files (SPEC 5): the encoding scan (UTF-8 or Windows-1252), line and record reading within MAX_ROW_BYTES, RFC 4180 quoting of comma-separated text.

use super::*;

/// States of the RFC 4180 quoting of comma-separated text, as the `csv` crate reads it:
/// used to find where a record ends when a quoted field holds a line end.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CsvState {
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
pub(super) fn read_record(
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
pub(super) fn find_record_end(bytes: &[u8], state: &mut CsvState, delimiter: u8) -> Option<usize> {
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

pub(super) fn strip_line_end(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
}

pub(super) fn decode(raw: &[u8], encoding: TextEncoding) -> Option<Cow<'_, str>> {
    match encoding {
        TextEncoding::Utf8 => std::str::from_utf8(raw).ok().map(Cow::Borrowed),
        TextEncoding::Windows1252 => Some(WINDOWS_1252.decode_without_bom_handling(raw).0),
    }
}

/// Reads one physical line (line end included) into `out`, at most `limit` bytes of it;
/// returns the bytes consumed and whether the line was cut.
pub(super) fn read_line_limited(
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

pub(super) struct Scan {
    pub(super) bom: bool,
    pub(super) first_nul: Option<u64>,
    pub(super) first_invalid: Option<u64>,
    /// The line (from 1) of `first_invalid`.
    pub(super) first_invalid_line: u64,
    /// A valid UTF-8 sequence of more than one byte was seen: with an invalid byte too,
    /// the file mixes encodings.
    pub(super) utf8_multibyte: bool,
}

/// One pass over the file: UTF-8 byte order mark, NUL bytes, UTF-8 validity (a sequence
/// cut at a chunk boundary is carried to the next chunk), and whether the text holds
/// UTF-8 characters beyond ASCII.
pub(super) fn scan_text(file: &mut File) -> io::Result<Scan> {
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
