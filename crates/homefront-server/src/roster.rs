//! Volunteer rosters as files: the column template, reading `.xlsx` and
//! `.csv`, checking every cell, importing through
//! [`Store::import_roster`], and writing the roster back out.
//!
//! Used by `POST /api/v1/volunteers/import`, `GET
//! /api/v1/volunteers/export` and the `homefront import volunteers` /
//! `homefront export roster` commands. The template is documented in
//! `docs/roster-template.md`.
//!
//! # Encodings
//! `.xlsx` is read with calamine. A `.csv` that is valid UTF-8 (with or
//! without a byte-order mark) is read as UTF-8; anything else is decoded as
//! GB18030 (the superset of GBK/GB2312 that Excel on Chinese Windows
//! writes), and rejected if that also fails.
//!
//! # Rows
//! Row numbers are the spreadsheet's, 1-based, header = row 1; blank rows
//! are skipped. Every row is checked before anything is written; the
//! database stage then runs in one transaction (see [`ImportMode`]).

use std::collections::HashMap;
use std::io::Cursor;

use homefront_domain::credentials::Qualification;
use homefront_domain::org::OrgPath;
use homefront_domain::volunteer::{self as profile, DEFAULT_SERVICE_RADIUS_KM, Gender};
use homefront_domain::{Adcode, GeoPoint, PhoneNumber, Timestamp};
use homefront_store::roster::{ImportMode, RosterRow, RowError, RowOutcome, TeamRef};
use homefront_store::volunteers::{EmergencyContact, Volunteer};
use homefront_store::{Store, StoreError};
use serde::Serialize;
use thiserror::Error;

/// Most data rows one file may hold.
pub const MAX_ROWS: usize = 20_000;

/// Most bytes the parts of an xlsx workbook may unpack to, together,
/// checked before the workbook is parsed. A full 20,000-row roster of
/// every column unpacks to about 12 MiB; a "zip bomb" (a small file that
/// unpacks to gigabytes) is refused before it costs memory.
pub const MAX_UNPACKED_BYTES: u64 = 32 * 1024 * 1024;

/// Most parts (files inside the zip) an xlsx workbook may have.
pub const MAX_WORKBOOK_PARTS: usize = 1_000;

/// Longest cell, in characters. The longest a roster needs is a list of
/// languages or qualifications, well under this.
pub const MAX_CELL_CHARS: usize = 1_000;

pub use homefront_domain::text::quote;

/// One template column: the key (English name, also the report's `field`),
/// the Chinese header written in templates and exports, other accepted
/// header spellings, and help text.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// English name; accepted as a header.
    pub key: &'static str,
    /// Chinese header; written in templates and exports, accepted on import.
    pub zh: &'static str,
    /// Further accepted headers (compared after normalising case, spaces and
    /// full-width brackets).
    pub aliases: &'static [&'static str],
    /// Whether every file needs the column (`team` unless a default team is given).
    pub required: bool,
    /// What to put in the cell.
    pub help: &'static str,
}

/// The import columns, in template order.
pub const COLUMNS: [Column; 15] = [
    Column {
        key: "name",
        zh: "姓名",
        aliases: &["display_name", "名字"],
        required: true,
        help: "full name, 1–100 characters",
    },
    Column {
        key: "phone",
        zh: "手机号",
        aliases: &["手机", "手机号码", "电话", "mobile"],
        required: true,
        help: "mobile number, e.g. 13800138000 or +86 138 0013 8000; one row per phone (re-imports match on it)",
    },
    Column {
        key: "team",
        zh: "队伍",
        aliases: &["团队", "志愿服务队"],
        required: true,
        help: "team name (exact) or id; optional when a default team is given",
    },
    Column {
        key: "team_id",
        zh: "队伍编号",
        aliases: &[],
        required: false,
        help: "team id; wins over the team name when both are given",
    },
    Column {
        key: "adcode",
        zh: "区县代码",
        aliases: &["行政区划代码", "home_adcode"],
        required: false,
        help: "6-digit GB/T 2260 code of the home county, e.g. 320102; empty = the team's division",
    },
    Column {
        key: "longitude",
        zh: "经度",
        aliases: &["lon", "lng"],
        required: false,
        help: "home longitude in decimal degrees (with latitude); empty = the division's point",
    },
    Column {
        key: "latitude",
        zh: "纬度",
        aliases: &["lat"],
        required: false,
        help: "home latitude in decimal degrees (with longitude)",
    },
    Column {
        key: "radius_km",
        zh: "服务半径(公里)",
        aliases: &["服务半径", "service_radius_km", "radius"],
        required: false,
        help: "km above 0 and at most 200; empty = 10",
    },
    Column {
        key: "qualifications",
        zh: "资质",
        aliases: &["declared_qualifications"],
        required: false,
        help: "separated by , or 、: 驾照/driving_licence, 教师/teacher, 心理咨询/counsellor, 医师/medical_licence, 急救/first_aid, 外语/language",
    },
    Column {
        key: "languages",
        zh: "语言",
        aliases: &[],
        required: false,
        help: "languages spoken, separated by , or 、",
    },
    Column {
        key: "gender",
        zh: "性别",
        aliases: &["sex"],
        required: false,
        help: "女/female, 男/male, 未说明/unspecified, or empty",
    },
    Column {
        key: "emergency_contact_name",
        zh: "紧急联系人",
        aliases: &[],
        required: false,
        help: "name (with the phone)",
    },
    Column {
        key: "emergency_contact_phone",
        zh: "紧急联系电话",
        aliases: &[],
        required: false,
        help: "phone (with the name)",
    },
    Column {
        key: "vehicle_seats",
        zh: "车辆座位数",
        aliases: &["seats"],
        required: false,
        help: "passenger seats 1–60, drivers only (needs 驾照 in 资质)",
    },
    Column {
        key: "max_concurrent",
        zh: "最多同时接单",
        aliases: &["最大并发"],
        required: false,
        help: "orders served at once, 1–10; empty = 1",
    },
];

/// Columns an export adds after [`COLUMNS`]; an import ignores them, so an
/// exported file imports again unchanged.
pub const EXPORT_ONLY: [(&str, &str); 5] = [
    ("id", "编号"),
    ("vetting_state", "审核状态"),
    ("on_duty", "在岗"),
    ("valid_qualifications", "有效资质"),
    ("created_at", "登记时间"),
];

/// Qualification labels accepted in the 资质 column (besides the codes).
const QUALIFICATION_LABELS: [(&str, Qualification); 14] = [
    ("驾照", Qualification::DrivingLicence),
    ("驾驶证", Qualification::DrivingLicence),
    ("教师", Qualification::Teacher),
    ("教师资格", Qualification::Teacher),
    ("教师资格证", Qualification::Teacher),
    ("心理咨询", Qualification::Counsellor),
    ("心理咨询师", Qualification::Counsellor),
    ("医师", Qualification::MedicalLicence),
    ("执业医师", Qualification::MedicalLicence),
    ("医生", Qualification::MedicalLicence),
    ("急救", Qualification::FirstAid),
    ("急救证", Qualification::FirstAid),
    ("外语", Qualification::Language),
    ("语言", Qualification::Language),
];

/// The Chinese label written for a qualification in exports.
pub fn qualification_label(q: Qualification) -> &'static str {
    match q {
        Qualification::DrivingLicence => "驾照",
        Qualification::Teacher => "教师",
        Qualification::Counsellor => "心理咨询",
        Qualification::MedicalLicence => "医师",
        Qualification::FirstAid => "急救",
        Qualification::Language => "外语",
    }
}

/// A file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Office Open XML workbook; the first sheet is read.
    Xlsx,
    /// Comma-separated values.
    Csv,
}

impl Format {
    /// `xlsx` or `csv` (case-insensitive, leading dot allowed), e.g. from a
    /// file extension or a `format` query parameter.
    pub fn parse(text: &str) -> Option<Format> {
        match text.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "xlsx" => Some(Format::Xlsx),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// Guesses from the bytes: a ZIP signature (`PK\x03\x04`) is a workbook,
    /// anything else CSV.
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PK\x03\x04") {
            Format::Xlsx
        } else {
            Format::Csv
        }
    }

    /// MIME type for downloads.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
        }
    }
}

/// A whole file that cannot be imported. API: 422 with `field` = `file`.
#[derive(Debug, Error)]
pub enum RosterError {
    /// Not a readable workbook.
    #[error(
        "the file is not a readable .xlsx workbook ({0}); save it again from Excel or WPS as .xlsx, or as .csv"
    )]
    Workbook(String),
    /// Not UTF-8 and not GB18030.
    #[error("the .csv file is neither UTF-8 nor GB18030 text; save it again as \"CSV UTF-8\"")]
    Encoding,
    /// Malformed CSV.
    #[error(
        "the .csv file cannot be read at line {line}: {message}; check the quotes on that line"
    )]
    Csv {
        /// Line number.
        line: u64,
        /// The parser's message.
        message: String,
    },
    /// No header row.
    #[error(
        "the file has no header row; start from the template (GET /api/v1/volunteers/import/template)"
    )]
    Empty,
    /// An unknown header.
    #[error(
        "unknown column \"{0}\" in the header row; use the template's columns ({1}) or delete the column"
    )]
    UnknownColumn(String, String),
    /// A column appears twice.
    #[error("column \"{0}\" appears twice in the header row; keep one")]
    DuplicateColumn(String),
    /// A required column is missing.
    #[error("the header row has no {0} column; add it (see the template)")]
    MissingColumn(String),
    /// Too many rows.
    #[error("the file has more than {MAX_ROWS} rows; split it into smaller files")]
    TooManyRows,
    /// The workbook unpacks to more than [`MAX_UNPACKED_BYTES`], or has
    /// more than [`MAX_WORKBOOK_PARTS`] parts. API: 413.
    #[error(
        "the workbook unpacks to more than {} MiB (or has more than {MAX_WORKBOOK_PARTS} parts); a roster is far smaller: save it again from Excel or WPS, or split it",
        MAX_UNPACKED_BYTES / (1024 * 1024)
    )]
    WorkbookTooLarge,
    /// A cell longer than [`MAX_CELL_CHARS`].
    #[error(
        "row {row}, column \"{column}\" has more than {MAX_CELL_CHARS} characters (it starts \"{start}\"); shorten it"
    )]
    CellTooLong {
        /// Spreadsheet row number.
        row: usize,
        /// The column's header, quoted short.
        column: String,
        /// The cell's first characters.
        start: String,
    },
    /// Writing an export failed (a server fault, not the user's).
    #[error("could not write the file: {0}")]
    Write(String),
    /// A database error.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RosterError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            RosterError::Workbook(_) => "unreadable_workbook",
            RosterError::Encoding => "unknown_encoding",
            RosterError::Csv { .. } => "malformed_csv",
            RosterError::Empty => "empty_file",
            RosterError::UnknownColumn(..) => "unknown_column",
            RosterError::DuplicateColumn(_) => "duplicate_column",
            RosterError::MissingColumn(_) => "missing_column",
            RosterError::TooManyRows => "too_many_rows",
            RosterError::WorkbookTooLarge => "workbook_too_large",
            RosterError::CellTooLong { .. } => "cell_too_long",
            RosterError::Store(_) | RosterError::Write(_) => "internal",
        }
    }
}

/// A table read from a file: header cells and the data rows with their
/// spreadsheet row numbers (blank rows dropped).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Header cells, trimmed.
    pub header: Vec<String>,
    /// (row number, cells).
    pub rows: Vec<(usize, Vec<String>)>,
}

/// Reads the first sheet of a workbook or a CSV file.
///
/// # Errors
/// [`RosterError`] for unreadable files.
pub fn read_table(bytes: &[u8], format: Format) -> Result<Table, RosterError> {
    let mut grid = match format {
        Format::Xlsx => {
            check_unpacked_size(bytes)?;
            read_xlsx(bytes)?
        }
        Format::Csv => read_csv(bytes)?,
    };
    let header_at = grid
        .iter()
        .position(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .ok_or(RosterError::Empty)?;
    let rows = grid.split_off(header_at + 1);
    let (_, header) = grid.pop().ok_or(RosterError::Empty)?;
    let rows: Vec<(usize, Vec<String>)> = rows
        .into_iter()
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .collect();
    if rows.len() > MAX_ROWS {
        return Err(RosterError::TooManyRows);
    }
    for (row, cells) in std::iter::once(&(header_at + 1, header.clone())).chain(&rows) {
        for (i, cell) in cells.iter().enumerate() {
            if cell.chars().nth(MAX_CELL_CHARS).is_some() {
                return Err(RosterError::CellTooLong {
                    row: *row,
                    column: quote(header.get(i).map_or("", |h| h.trim())),
                    start: quote(cell),
                });
            }
        }
    }
    Ok(Table {
        header: header.into_iter().map(|h| h.trim().to_string()).collect(),
        rows,
    })
}

/// Rows with their spreadsheet row numbers.
type Grid = Vec<(usize, Vec<String>)>;

/// Unpacks every part of the workbook into nothing, counting the bytes the
/// zip reader yields (not the sizes the archive claims, which a crafted
/// file can understate), and stops as soon as the total passes
/// [`MAX_UNPACKED_BYTES`]: the cost of a hostile file is bounded by that
/// figure before the XML parser sees any of it.
fn check_unpacked_size(bytes: &[u8]) -> Result<(), RosterError> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| RosterError::Workbook(e.to_string()))?;
    if archive.len() > MAX_WORKBOOK_PARTS {
        return Err(RosterError::WorkbookTooLarge);
    }
    let mut left = MAX_UNPACKED_BYTES;
    for i in 0..archive.len() {
        let mut part = archive
            .by_index(i)
            .map_err(|e| RosterError::Workbook(e.to_string()))?;
        if part.size() > left {
            return Err(RosterError::WorkbookTooLarge);
        }
        let read = std::io::copy(&mut (&mut part).take(left + 1), &mut std::io::sink())
            .map_err(|e| RosterError::Workbook(e.to_string()))?;
        if read > left {
            return Err(RosterError::WorkbookTooLarge);
        }
        left -= read;
    }
    Ok(())
}

fn read_xlsx(bytes: &[u8]) -> Result<Grid, RosterError> {
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| RosterError::Workbook(e.to_string()))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or(RosterError::Empty)?
        .map_err(|e| RosterError::Workbook(e.to_string()))?;
    let (start_row, start_col) = range.start().unwrap_or((0, 0));
    let text = |d: &Data| -> String {
        match d {
            Data::Empty => String::new(),
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
            // Phones and adcodes typed as numbers arrive as floats.
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
            Data::Float(f) => f.to_string(),
            Data::Int(i) => i.to_string(),
            Data::Bool(b) => b.to_string(),
            Data::DateTime(d) => d.as_f64().to_string(),
            Data::Error(e) => format!("#{e:?}"),
        }
    };
    let rows = range
        .rows()
        .enumerate()
        .map(|(i, cells)| {
            // Columns left of the used range are empty: pad so positions hold.
            let mut out = vec![String::new(); start_col as usize];
            out.extend(cells.iter().map(text));
            (start_row as usize + i + 1, out)
        })
        .collect();
    Ok(rows)
}

/// Decodes CSV bytes: UTF-8 (BOM stripped) when valid, else GB18030.
///
/// # Errors
/// [`RosterError::Encoding`] when neither decodes cleanly.
pub fn decode_text(bytes: &[u8]) -> Result<String, RosterError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => {
            let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            if had_errors {
                Err(RosterError::Encoding)
            } else {
                Ok(text.into_owned())
            }
        }
    }
}

fn read_csv(bytes: &[u8]) -> Result<Grid, RosterError> {
    let text = decode_text(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    // Physical line of each record, counted from byte offsets (the reader's
    // own line count skips blank lines, which a spreadsheet still numbers).
    let (mut counted_to, mut line) = (0usize, 1usize);
    for record in reader.records() {
        let record = record.map_err(|e| RosterError::Csv {
            line: e.position().map_or(0, csv::Position::line),
            message: e.to_string(),
        })?;
        let mut start = record.position().map_or(counted_to, |p| {
            usize::try_from(p.byte()).unwrap_or(counted_to)
        });
        // The reported start may sit before blank lines the reader skipped.
        start += text.get(start..).map_or(0, |rest| {
            rest.len() - rest.trim_start_matches(['\r', '\n']).len()
        });
        if let Some(skipped) = text.get(counted_to..start) {
            line += skipped.matches('\n').count();
            counted_to = start;
        }
        let cells = record.iter().map(unneutralise).collect();
        rows.push((line, cells));
    }
    Ok(rows)
}

/// Undoes [`neutralise`]: `'=1` back to `=1`, so exported CSV re-imports.
fn unneutralise(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if spreadsheet_would_evaluate(rest) => rest.to_string(),
        _ => cell.to_string(),
    }
}

/// Whether a spreadsheet (Excel, LibreOffice Calc, Google Sheets) opening
/// a CSV would evaluate `cell` instead of showing it as text: the cells
/// OWASP's "CSV Injection" guidance lists, those starting with `=`, `@`,
/// tab or carriage return, and those starting with `+` or `-` (read as a
/// formula or a signed number), except text that cannot be a formula:
/// after the sign, two operators in a row where the second needs a left
/// operand (`*`, `/`, `^`), as in a masked phone `+86*******0001`. No
/// spreadsheet's formula grammar has such a sequence, so it is shown as
/// typed; text with quotes or brackets (which could hide one inside a
/// string or a structured reference) is guarded anyway.
pub fn spreadsheet_would_evaluate(cell: &str) -> bool {
    let Some(first) = cell.chars().next() else {
        return false;
    };
    match first {
        '=' | '@' | '\t' | '\r' => true,
        '+' | '-' => !cannot_be_formula(&cell[1..]),
        _ => false,
    }
}

/// Whether `rest` (a cell after its leading sign) is certainly no formula
/// expression: see [`spreadsheet_would_evaluate`].
fn cannot_be_formula(rest: &str) -> bool {
    if rest.contains(['"', '\'', '[', ']']) {
        return false;
    }
    const OPERATORS: [char; 9] = ['+', '-', '*', '/', '^', '&', '=', '<', '>'];
    const NEEDS_LEFT: [char; 3] = ['*', '/', '^'];
    // The sign itself is an operator: "+*2" is as malformed as "1+*2".
    let mut previous = '+';
    for c in rest.chars() {
        if OPERATORS.contains(&previous) && NEEDS_LEFT.contains(&c) {
            return true;
        }
        previous = c;
    }
    false
}

/// Makes a CSV cell safe to open in a spreadsheet: a cell a spreadsheet
/// would evaluate ([`spreadsheet_would_evaluate`]) gets a leading
/// apostrophe, so it is shown as text instead of run as a formula (OWASP,
/// "CSV Injection"); any other cell is written as it is, so a masked phone
/// `+86*******0001` reads as itself.
pub fn neutralise(cell: &str) -> String {
    if spreadsheet_would_evaluate(cell) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

fn normalise_header(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .replace(['（', '('], "(")
        .replace(['）', ')'], ")")
        .replace([' ', '\u{3000}', '_', '-'], "")
        .to_lowercase()
}

/// Maps each header cell to a template column key (`None` for export-only
/// columns, which are ignored).
///
/// # Errors
/// Unknown, duplicate or missing columns. `team` is only required when
/// `has_default_team` is false.
pub fn map_header(
    header: &[String],
    has_default_team: bool,
) -> Result<Vec<Option<&'static str>>, RosterError> {
    let mut out: Vec<Option<&'static str>> = Vec::with_capacity(header.len());
    for h in header {
        let n = normalise_header(h);
        if n.is_empty() {
            out.push(None);
            continue;
        }
        let column = COLUMNS.iter().find(|c| {
            normalise_header(c.key) == n
                || normalise_header(c.zh) == n
                || c.aliases.iter().any(|a| normalise_header(a) == n)
                // "姓名/name" style headers.
                || n == normalise_header(&format!("{}/{}", c.zh, c.key))
        });
        match column {
            Some(c) => {
                if out.contains(&Some(c.key)) {
                    return Err(RosterError::DuplicateColumn(h.clone()));
                }
                out.push(Some(c.key));
            }
            None if EXPORT_ONLY
                .iter()
                .any(|(k, zh)| normalise_header(k) == n || normalise_header(zh) == n) =>
            {
                out.push(None);
            }
            None => {
                let known = COLUMNS
                    .iter()
                    .map(|c| format!("{}/{}", c.zh, c.key))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(RosterError::UnknownColumn(quote(h), known));
            }
        }
    }
    for c in COLUMNS.iter().filter(|c| c.required) {
        let present = out.contains(&Some(c.key))
            || (c.key == "team" && (has_default_team || out.contains(&Some("team_id"))));
        if !present {
            return Err(RosterError::MissingColumn(format!("{}/{}", c.zh, c.key)));
        }
    }
    Ok(out)
}

fn split_list(cell: &str) -> Vec<String> {
    cell.split([',', '，', '、', ';', '；', '/', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_qualification(label: &str) -> Option<Qualification> {
    let l = label.trim();
    Qualification::parse(&l.to_lowercase()).ok().or_else(|| {
        QUALIFICATION_LABELS
            .iter()
            .find(|(t, _)| *t == l)
            .map(|(_, q)| *q)
    })
}

fn err(field: &str, code: &str, message: impl Into<String>) -> RowError {
    RowError {
        field: field.to_string(),
        code: code.to_string(),
        message: message.into(),
    }
}

fn from_profile(e: profile::ProfileError, field: &str) -> RowError {
    err(field, e.code, e.message)
}

/// Checks one data row. `cells` are aligned with `columns` (from
/// [`map_header`]); `default_team` fills an empty or missing team.
///
/// # Errors
/// Every problem in the row, each naming the column and the fix.
pub fn parse_row(
    row: usize,
    columns: &[Option<&'static str>],
    cells: &[String],
    default_team: Option<&TeamRef>,
) -> Result<RosterRow, Vec<RowError>> {
    let mut values: HashMap<&str, &str> = HashMap::new();
    for (i, key) in columns.iter().enumerate() {
        if let Some(k) = key {
            values.insert(k, cells.get(i).map_or("", |c| c.trim()));
        }
    }
    // The text rule first: a cell with a control character, a
    // bidirectional override or nothing visible is reported as that, not
    // as whatever its column's parser would make of it.
    let bad_text: Vec<RowError> = columns
        .iter()
        .zip(cells)
        .filter_map(|(key, cell)| {
            let key = (*key)?;
            homefront_domain::text::check(cell)
                .err()
                .map(|e| err(key, "invalid_text", format!("{key} {e}")))
        })
        .collect();
    if !bad_text.is_empty() {
        return Err(bad_text);
    }
    let has = |k: &str| values.contains_key(k);
    let get = |k: &str| values.get(k).copied().unwrap_or("");
    let mut errors = Vec::new();

    let display_name = profile::person_name("name", get("name"))
        .map_err(|e| errors.push(from_profile(e, "name")))
        .ok();
    let phone = PhoneNumber::parse(get("phone"))
        .map_err(|e| errors.push(err("phone", e.code(), e.to_string())))
        .ok();
    let team = if !get("team_id").is_empty() {
        match get("team_id").parse::<i64>() {
            Ok(id) => Some(TeamRef::Id(id)),
            Err(_) => {
                errors.push(err("team_id", "invalid_team", format!("team_id \"{}\" is not a number; give the team's id, or use the team column for its name", quote(get("team_id")))));
                None
            }
        }
    } else if !get("team").is_empty() {
        let t = get("team");
        Some(match t.parse::<i64>() {
            Ok(id) => TeamRef::Id(id),
            Err(_) => TeamRef::Name(t.to_string()),
        })
    } else if let Some(d) = default_team {
        Some(d.clone())
    } else {
        errors.push(err(
            "team",
            "team_required",
            "the team is empty; give the team's name or id, or choose a default team for the file",
        ));
        None
    };
    let home_adcode = match get("adcode") {
        "" => None,
        code => Adcode::parse(code)
            .map_err(|e| errors.push(err("adcode", "invalid_adcode", e.to_string())))
            .ok(),
    };
    let home_location = if has("longitude") || has("latitude") {
        match (get("longitude"), get("latitude")) {
            ("", "") => Some(None),
            ("", _) => {
                errors.push(err(
                    "longitude",
                    "invalid_coordinates",
                    "give the longitude together with the latitude, or leave both empty",
                ));
                None
            }
            (_, "") => {
                errors.push(err(
                    "latitude",
                    "invalid_coordinates",
                    "give the latitude together with the longitude, or leave both empty",
                ));
                None
            }
            (lon, lat) => match (lon.parse::<f64>(), lat.parse::<f64>()) {
                (Ok(lon), Ok(lat)) => match GeoPoint::new(lon, lat) {
                    Ok(p) => Some(Some(p)),
                    Err(e) => {
                        let field = if matches!(e, homefront_domain::geo::GeoError::Longitude(_)) {
                            "longitude"
                        } else {
                            "latitude"
                        };
                        errors.push(err(field, "invalid_coordinates", e.to_string()));
                        None
                    }
                },
                _ => {
                    errors.push(err(
                        "longitude",
                        "invalid_coordinates",
                        "longitude and latitude must be decimal degrees, e.g. 118.79 and 32.06",
                    ));
                    None
                }
            },
        }
    } else {
        None
    };
    let service_radius_km = if has("radius_km") {
        match get("radius_km") {
            "" => Some(DEFAULT_SERVICE_RADIUS_KM),
            text => match text.parse::<f64>() {
                Ok(km) => profile::service_radius_km(km)
                    .map_err(|e| errors.push(from_profile(e, "radius_km")))
                    .ok(),
                Err(_) => {
                    errors.push(err("radius_km", "invalid_radius", format!("service radius \"{}\" is not a number; give km as a number above 0 and at most 200, e.g. 10", quote(text))));
                    None
                }
            },
        }
    } else {
        None
    };
    let declared_qualifications = if has("qualifications") {
        let mut out = Vec::new();
        for label in split_list(get("qualifications")) {
            match parse_qualification(&label) {
                Some(q) if !out.contains(&q) => out.push(q),
                Some(_) => {}
                None => errors.push(err("qualifications", "invalid_qualification", format!("unknown qualification \"{}\"; use 驾照, 教师, 心理咨询, 医师, 急救, 外语 (or driving_licence, teacher, counsellor, medical_licence, first_aid, language)", quote(&label)))),
            }
        }
        Some(out)
    } else {
        None
    };
    let languages = if has("languages") {
        profile::languages(split_list(get("languages")))
            .map_err(|e| errors.push(from_profile(e, "languages")))
            .ok()
    } else {
        None
    };
    let gender = if has("gender") {
        match get("gender") {
            "" => Some(None),
            g => Gender::parse(g)
                .map(Some)
                .map_err(|e| errors.push(from_profile(e, "gender")))
                .ok(),
        }
    } else {
        None
    };
    let emergency_contact = if has("emergency_contact_name") || has("emergency_contact_phone") {
        match (
            get("emergency_contact_name"),
            get("emergency_contact_phone"),
        ) {
            ("", "") => Some(None),
            ("", _) => {
                errors.push(err(
                    "emergency_contact_name",
                    "incomplete_contact",
                    "give the emergency contact's name together with the phone",
                ));
                None
            }
            (_, "") => {
                errors.push(err(
                    "emergency_contact_phone",
                    "incomplete_contact",
                    "give the emergency contact's phone together with the name",
                ));
                None
            }
            (name, phone) => {
                let name = profile::person_name("emergency_contact_name", name)
                    .map_err(|e| errors.push(from_profile(e, "emergency_contact_name")))
                    .ok();
                let phone = PhoneNumber::parse(phone)
                    .map_err(|e| {
                        errors.push(err("emergency_contact_phone", e.code(), e.to_string()))
                    })
                    .ok();
                name.zip(phone)
                    .map(|(name, phone)| Some(EmergencyContact { name, phone }))
            }
        }
    } else {
        None
    };
    let drives = declared_qualifications
        .as_ref()
        .is_none_or(|q| q.contains(&Qualification::DrivingLicence));
    let vehicle_seats = if has("vehicle_seats") {
        match get("vehicle_seats") {
            "" => Some(None),
            text => match text.parse::<i64>() {
                Ok(n) => profile::vehicle_seats(n, drives)
                    .map(Some)
                    .map_err(|e| errors.push(from_profile(e, "vehicle_seats")))
                    .ok(),
                Err(_) => {
                    errors.push(err("vehicle_seats", "invalid_vehicle_seats", format!("vehicle seats \"{}\" is not a whole number; give 1 to 60, or leave it empty", quote(text))));
                    None
                }
            },
        }
    } else {
        None
    };
    let max_concurrent = if has("max_concurrent") {
        match get("max_concurrent") {
            "" => Some(profile::DEFAULT_MAX_CONCURRENT),
            text => match text.parse::<i64>() {
                Ok(n) => profile::max_concurrent(n)
                    .map_err(|e| errors.push(from_profile(e, "max_concurrent")))
                    .ok(),
                Err(_) => {
                    errors.push(err(
                        "max_concurrent",
                        "invalid_max_concurrent",
                        format!(
                            "\"{}\" is not a whole number; give 1 to 10, or leave it empty",
                            quote(text)
                        ),
                    ));
                    None
                }
            },
        }
    } else {
        None
    };
    match (display_name, phone, team) {
        (Some(display_name), Some(phone), Some(team)) if errors.is_empty() => Ok(RosterRow {
            row,
            phone,
            display_name,
            team,
            home_adcode,
            home_location,
            service_radius_km,
            declared_qualifications,
            vehicle_seats,
            languages,
            max_concurrent,
            gender,
            emergency_contact,
        }),
        _ => Err(errors),
    }
}

/// Options of an import.
#[derive(Clone, Debug)]
pub struct ImportOptions<'a> {
    /// Team for rows whose team cell is empty or missing.
    pub default_team: Option<TeamRef>,
    /// Import nothing when any row is rejected.
    pub all_or_nothing: bool,
    /// Check only; write nothing.
    pub dry_run: bool,
    /// Teams the importer may write to (subtrees); `None` = all (admin, CLI).
    pub scopes: Option<&'a [OrgPath]>,
    /// Who imports (vetting events name them); `None` = the system (CLI).
    pub actor: Option<i64>,
}

/// One row of an [`ImportReport`].
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RowReport {
    /// Spreadsheet row number (header = 1).
    pub row: usize,
    /// What happened (or, when `committed` is false, what would have).
    #[serde(flatten)]
    pub outcome: RowOutcome,
}

/// The answer of an import.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Whether the accepted rows were written. False for a dry run, and for
    /// an all-or-nothing import with a rejected row: then nothing was
    /// written and the counts say what would have happened.
    pub committed: bool,
    /// Data rows read (blank rows skipped).
    pub rows_read: usize,
    /// New volunteers.
    pub created: usize,
    /// Existing volunteers whose data changed.
    pub updated: usize,
    /// Existing volunteers the row matches.
    pub unchanged: usize,
    /// Rows not imported.
    pub rejected: usize,
    /// Every row, in file order.
    pub rows: Vec<RowReport>,
}

impl ImportReport {
    /// The rejected rows only.
    pub fn rejected_rows(&self) -> impl Iterator<Item = &RowReport> {
        self.rows
            .iter()
            .filter(|r| matches!(r.outcome, RowOutcome::Rejected { .. }))
    }
}

/// A row as read: parsed, or the errors that reject it.
type Checked = Vec<Result<RosterRow, Vec<RowError>>>;

/// Files read and checked at once, at most one per core: reading is CPU
/// work (unzipping, XML, every cell's checks) and runs on the blocking
/// pool, so a burst of uploads neither stalls the async runtime nor holds
/// more than this many workbooks in memory.
static READERS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from))
});

/// Reads the file and checks its header and every row, off the async
/// runtime ([`READERS`]).
async fn read_and_check(
    bytes: &[u8],
    format: Format,
    default_team: Option<TeamRef>,
) -> Result<(Table, Checked), RosterError> {
    let _permit = READERS
        .acquire()
        .await
        .map_err(|e| RosterError::Write(e.to_string()))?;
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        let table = read_table(&bytes, format)?;
        let columns = map_header(&table.header, default_team.is_some())?;
        let parsed = table
            .rows
            .iter()
            .map(|(row, cells)| parse_row(*row, &columns, cells, default_team.as_ref()))
            .collect();
        Ok((table, parsed))
    })
    .await
    .map_err(|e| RosterError::Write(e.to_string()))?
}

/// Reads, checks and imports a roster file: every row is checked first
/// (cells, then duplicates of a phone within the file), then the database
/// stage runs in one transaction ([`Store::import_roster`]).
///
/// # Errors
/// [`RosterError`] when the file as a whole cannot be read; database errors.
pub async fn import(
    store: &Store,
    bytes: &[u8],
    format: Format,
    options: &ImportOptions<'_>,
    now: Timestamp,
    progress: impl FnMut(usize, usize),
) -> Result<ImportReport, RosterError> {
    let (table, mut parsed) = read_and_check(bytes, format, options.default_team.clone()).await?;
    let mut first_row_of: HashMap<String, usize> = HashMap::new();
    for result in &mut parsed {
        if let Ok(r) = result {
            if let Some(first) = first_row_of.get(r.phone.as_str()) {
                *result = Err(vec![err(
                    "phone",
                    "duplicate_in_file",
                    format!("the same phone is on row {first}; keep one row per volunteer"),
                )]);
            } else {
                first_row_of.insert(r.phone.as_str().to_string(), r.row);
            }
        }
    }
    let any_invalid = parsed.iter().any(Result::is_err);
    let valid: Vec<RosterRow> = parsed
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mode = if options.dry_run || (options.all_or_nothing && any_invalid) {
        ImportMode::DryRun
    } else if options.all_or_nothing {
        ImportMode::AllOrNothing
    } else {
        ImportMode::ValidRows
    };
    let written = store
        .import_roster(&valid, options.scopes, options.actor, now, mode, progress)
        .await?;
    let mut db_outcomes = written.outcomes.into_iter();
    let mut report = ImportReport {
        committed: written.committed,
        rows_read: table.rows.len(),
        ..ImportReport::default()
    };
    for ((row, _), result) in table.rows.iter().zip(parsed) {
        let outcome = match result {
            Ok(_) => db_outcomes.next().unwrap_or_else(|| {
                RowOutcome::rejected(
                    "row",
                    "internal",
                    "row was not processed; run the import again",
                )
            }),
            Err(errors) => RowOutcome::Rejected { errors },
        };
        match &outcome {
            RowOutcome::Created { .. } => report.created += 1,
            RowOutcome::Updated { .. } => report.updated += 1,
            RowOutcome::Unchanged { .. } => report.unchanged += 1,
            RowOutcome::Rejected { .. } => report.rejected += 1,
        }
        report.rows.push(RowReport { row: *row, outcome });
    }
    Ok(report)
}

/// One exported volunteer: the stored profile plus the qualifications
/// valid at export time.
#[derive(Clone, Debug)]
pub struct ExportRow<'a> {
    /// The volunteer.
    pub volunteer: &'a Volunteer,
    /// Qualifications held by a valid credential at export time.
    pub valid_qualifications: Vec<Qualification>,
}

fn header_row() -> Vec<&'static str> {
    COLUMNS
        .iter()
        .map(|c| c.zh)
        .chain(EXPORT_ONLY.iter().map(|(_, zh)| *zh))
        .collect()
}

/// A cell of the export: text, or a number for xlsx.
enum Cell {
    Text(String),
    Number(f64),
}

fn phone_for_people(e164: &str) -> String {
    // Mainland numbers as people write them; others stay E.164.
    e164.strip_prefix("+86").unwrap_or(e164).to_string()
}

fn export_cells(r: &ExportRow<'_>) -> Vec<Cell> {
    let v = r.volunteer;
    let text = |s: &str| Cell::Text(s.to_string());
    let opt_num = |n: Option<f64>| n.map_or(Cell::Text(String::new()), Cell::Number);
    let short_adcode = v.home_adcode.as_deref().map_or(String::new(), |a| {
        a.strip_suffix("000000").unwrap_or(a).to_string()
    });
    let join = |items: Vec<String>| items.join("、");
    vec![
        text(&v.display_name),
        text(&phone_for_people(&v.phone)),
        text(&v.team_name),
        Cell::Number(v.team_id as f64),
        Cell::Text(short_adcode),
        opt_num(v.home_longitude.filter(|_| v.has_own_location())),
        opt_num(v.home_latitude.filter(|_| v.has_own_location())),
        Cell::Number(v.service_radius_km),
        Cell::Text(join(
            v.declared()
                .into_iter()
                .map(|q| qualification_label(q).to_string())
                .collect(),
        )),
        Cell::Text(join(v.language_list())),
        text(v.gender.map_or("", Gender::label_zh)),
        text(v.emergency_contact_name.as_deref().unwrap_or("")),
        Cell::Text(
            v.emergency_contact_phone
                .as_deref()
                .map(phone_for_people)
                .unwrap_or_default(),
        ),
        opt_num(v.vehicle_seats.map(|s| s as f64)),
        Cell::Number(v.max_concurrent as f64),
        Cell::Number(v.user_id as f64),
        text(v.vetting_state.as_str()),
        text(if v.on_duty { "是" } else { "否" }),
        Cell::Text(join(
            r.valid_qualifications
                .iter()
                .map(|q| qualification_label(*q).to_string())
                .collect(),
        )),
        Cell::Text(Timestamp(v.created_at).to_rfc3339()),
    ]
}

/// Writes a roster: Chinese headers (the template's columns, then
/// [`EXPORT_ONLY`]). CSV is UTF-8 with a byte-order mark (so Excel opens it
/// as UTF-8) and formula-injection safe ([`neutralise`]); xlsx cells are
/// written as text or numbers, never formulas.
///
/// # Errors
/// Writer errors (as text).
pub fn export(rows: &[ExportRow<'_>], format: Format) -> Result<Vec<u8>, String> {
    match format {
        Format::Csv => {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            {
                let mut w = csv::Writer::from_writer(&mut out);
                w.write_record(header_row()).map_err(|e| e.to_string())?;
                for r in rows {
                    let cells: Vec<String> = export_cells(r)
                        .into_iter()
                        .map(|c| match c {
                            Cell::Text(s) => neutralise(&s),
                            Cell::Number(n) => neutralise(&n.to_string()),
                        })
                        .collect();
                    w.write_record(cells).map_err(|e| e.to_string())?;
                }
                w.flush().map_err(|e| e.to_string())?;
            }
            Ok(out)
        }
        Format::Xlsx => {
            let mut book = rust_xlsxwriter::Workbook::new();
            let bold = rust_xlsxwriter::Format::new().set_bold();
            let sheet = book.add_worksheet();
            sheet.set_name("志愿者").map_err(|e| e.to_string())?;
            for (c, h) in header_row().iter().enumerate() {
                let c = u16::try_from(c).map_err(|e| e.to_string())?;
                sheet
                    .write_string_with_format(0, c, *h, &bold)
                    .map_err(|e| e.to_string())?;
                sheet.set_column_width(c, 14).map_err(|e| e.to_string())?;
            }
            for (i, r) in rows.iter().enumerate() {
                let row = u32::try_from(i + 1).map_err(|e| e.to_string())?;
                for (c, cell) in export_cells(r).into_iter().enumerate() {
                    let c = u16::try_from(c).map_err(|e| e.to_string())?;
                    match cell {
                        Cell::Text(s) if s.is_empty() => {}
                        Cell::Text(s) => {
                            sheet.write_string(row, c, s).map_err(|e| e.to_string())?;
                        }
                        Cell::Number(n) => {
                            sheet.write_number(row, c, n).map_err(|e| e.to_string())?;
                        }
                    }
                }
            }
            sheet.set_freeze_panes(1, 0).map_err(|e| e.to_string())?;
            book.save_to_buffer().map_err(|e| e.to_string())
        }
    }
}

/// Loads the volunteers matching `filter` with the qualifications valid at
/// `now` and writes them with [`export`]. Returns the file and the number of
/// volunteers in it.
///
/// # Errors
/// Database errors; writer errors as [`RosterError::Workbook`].
pub async fn export_roster(
    store: &Store,
    filter: &homefront_store::volunteers::VolunteerFilter<'_>,
    format: Format,
    now: Timestamp,
) -> Result<(Vec<u8>, usize), RosterError> {
    let volunteers = store.volunteers(filter).await?;
    let mut valid: HashMap<i64, Vec<Qualification>> = HashMap::new();
    for c in store.credentials_in_scope(filter.scopes).await? {
        if let Some(q) = c
            .effective()
            .filter(|e| e.is_valid_at(now))
            .and_then(|e| e.kind().qualification())
        {
            let list = valid.entry(c.volunteer_id).or_default();
            if !list.contains(&q) {
                list.push(q);
            }
        }
    }
    // Writing the workbook is CPU work (thousands of rows, zipped XML):
    // off the async runtime.
    tokio::task::spawn_blocking(move || {
        let rows: Vec<ExportRow<'_>> = volunteers
            .iter()
            .map(|v| ExportRow {
                volunteer: v,
                valid_qualifications: valid.remove(&v.user_id).unwrap_or_default(),
            })
            .collect();
        let bytes = export(&rows, format).map_err(RosterError::Write)?;
        Ok((bytes, rows.len()))
    })
    .await
    .map_err(|e| RosterError::Write(e.to_string()))?
}

/// The empty template: the header row (Chinese names); in xlsx a second
/// sheet `说明` lists every column with its English name and help.
///
/// # Errors
/// Writer errors (as text).
pub fn template(format: Format) -> Result<Vec<u8>, String> {
    let headers: Vec<&str> = COLUMNS.iter().map(|c| c.zh).collect();
    match format {
        Format::Csv => {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            {
                let mut w = csv::Writer::from_writer(&mut out);
                w.write_record(&headers).map_err(|e| e.to_string())?;
                w.flush().map_err(|e| e.to_string())?;
            }
            Ok(out)
        }
        Format::Xlsx => {
            let mut book = rust_xlsxwriter::Workbook::new();
            let bold = rust_xlsxwriter::Format::new().set_bold();
            let text = rust_xlsxwriter::Format::new().set_num_format("@");
            let sheet = book.add_worksheet();
            sheet.set_name("志愿者").map_err(|e| e.to_string())?;
            for (c, h) in headers.iter().enumerate() {
                let c = u16::try_from(c).map_err(|e| e.to_string())?;
                sheet
                    .write_string_with_format(0, c, *h, &bold)
                    .map_err(|e| e.to_string())?;
                // Text cells keep leading zeros and long phone numbers intact.
                sheet
                    .set_column_format(c, &text)
                    .map_err(|e| e.to_string())?;
                sheet.set_column_width(c, 14).map_err(|e| e.to_string())?;
            }
            sheet.set_freeze_panes(1, 0).map_err(|e| e.to_string())?;
            let help = book.add_worksheet();
            help.set_name("说明").map_err(|e| e.to_string())?;
            for (c, h) in ["列 column", "English", "必填 required", "说明 help"]
                .iter()
                .enumerate()
            {
                help.write_string_with_format(0, c as u16, *h, &bold)
                    .map_err(|e| e.to_string())?;
            }
            for (i, col) in COLUMNS.iter().enumerate() {
                let r = u32::try_from(i + 1).map_err(|e| e.to_string())?;
                help.write_string(r, 0, col.zh).map_err(|e| e.to_string())?;
                help.write_string(r, 1, col.key)
                    .map_err(|e| e.to_string())?;
                help.write_string(r, 2, if col.required { "是 yes" } else { "" })
                    .map_err(|e| e.to_string())?;
                help.write_string(r, 3, col.help)
                    .map_err(|e| e.to_string())?;
            }
            help.set_column_width(3, 90).map_err(|e| e.to_string())?;
            book.save_to_buffer().map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(h: &[&str]) -> Vec<Option<&'static str>> {
        map_header(&h.iter().map(|s| s.to_string()).collect::<Vec<_>>(), false).unwrap()
    }

    #[test]
    fn headers_in_chinese_english_and_mixed() {
        assert_eq!(
            cols(&["姓名", "Phone", "队伍", "服务半径（公里）", "编号"]),
            vec![
                Some("name"),
                Some("phone"),
                Some("team"),
                Some("radius_km"),
                None
            ]
        );
        assert_eq!(
            cols(&["姓名/name", "手机号/phone", "team_id"])[2],
            Some("team_id")
        );
        let e = map_header(
            &["姓名".into(), "手机号".into(), "队伍".into(), "x".into()],
            false,
        )
        .unwrap_err();
        assert_eq!(e.code(), "unknown_column");
        let e = map_header(&["姓名".into(), "队伍".into()], false).unwrap_err();
        assert!(e.to_string().contains("手机号/phone"), "{e}");
        assert!(map_header(&["姓名".into(), "手机号".into()], true).is_ok());
    }

    #[test]
    fn row_errors_name_every_field() {
        let columns = cols(&[
            "姓名",
            "手机号",
            "队伍",
            "服务半径(公里)",
            "资质",
            "车辆座位数",
        ]);
        let cells: Vec<String> = ["张三", "123", "", "-5", "教师", "4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let errors = parse_row(7, &columns, &cells, None).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["phone", "team", "radius_km", "vehicle_seats"]);
        let ok: Vec<String> = [
            "李四",
            "13800138000",
            "玄武区志愿服务队",
            "",
            "驾照、急救",
            "4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = parse_row(8, &columns, &ok, None).unwrap();
        assert_eq!(r.service_radius_km, Some(DEFAULT_SERVICE_RADIUS_KM));
        assert_eq!(
            r.declared_qualifications,
            Some(vec![Qualification::DrivingLicence, Qualification::FirstAid])
        );
        assert_eq!(r.vehicle_seats, Some(Some(4)));
        assert_eq!(r.team, TeamRef::Name("玄武区志愿服务队".into()));
        assert_eq!(r.gender, None);
    }

    /// Every problem a row can have is said in both page languages: the
    /// import report never falls back to the English message on a
    /// Chinese page. Each bad value below trips one check per column.
    #[test]
    fn every_row_error_has_a_message_in_both_catalogues() {
        use crate::ui::i18n::{Lang, Tr};
        let bad: &[(&str, &[&str])] = &[
            (
                "name",
                &["", "张三1234567890123456789012345678901234567890"],
            ),
            ("phone", &["123", "025-84681234 转 8", ""]),
            ("team_id", &["abc"]),
            ("adcode", &["12"]),
            ("longitude", &["200", "x", ""]),
            ("latitude", &["", "95"]),
            ("radius_km", &["-5", "x", "500"]),
            ("qualifications", &["飞行员"]),
            ("languages", &["中文!!"]),
            ("gender", &["未知"]),
            ("emergency_contact_name", &["", "王"]),
            ("emergency_contact_phone", &["1", ""]),
            ("vehicle_seats", &["x", "99", "4"]),
            ("max_concurrent", &["x", "0", "99"]),
        ];
        let mut codes = std::collections::BTreeSet::new();
        for (key, values) in bad {
            for v in *values {
                let zh = |k: &str| COLUMNS.iter().find(|c| c.key == k).unwrap().zh;
                let mut header = vec![zh("name"), zh("phone")];
                let mut cells = vec!["张三".to_string(), "13800138000".to_string()];
                match *key {
                    "name" => cells[0] = (*v).to_string(),
                    "phone" => cells[1] = (*v).to_string(),
                    k => {
                        header.push(zh(k));
                        cells.push((*v).to_string());
                    }
                }
                // The pairs a check compares: the other half filled in.
                for (k, partner) in [
                    ("longitude", ("latitude", "32.0")),
                    (
                        "emergency_contact_name",
                        ("emergency_contact_phone", "13800138000"),
                    ),
                    ("emergency_contact_phone", ("emergency_contact_name", "")),
                ] {
                    if *key == k {
                        header.push(zh(partner.0));
                        cells.push(partner.1.to_string());
                    }
                }
                let columns = map_header(
                    &header.iter().map(|h| (*h).to_string()).collect::<Vec<_>>(),
                    true,
                )
                .unwrap();
                if let Err(errors) = parse_row(2, &columns, &cells, None) {
                    codes.extend(errors.into_iter().map(|e| e.code));
                }
            }
        }
        codes.extend(
            [
                "unknown_adcode",
                "adcode_required",
                "unknown_team",
                "ambiguous_team",
                "volunteer_elsewhere",
            ]
            .map(String::from),
        );
        assert!(codes.len() > 15, "{codes:?}");
        for lang in [Lang::Zh, Lang::En] {
            for code in &codes {
                assert!(
                    Tr(lang).get(&format!("err.{code}")).is_some(),
                    "err.{code} missing in {lang:?}"
                );
            }
        }
    }

    #[test]
    fn decodes_utf8_bom_and_gb18030() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFa").unwrap(), "a");
        let (gb, _, _) = encoding_rs::GB18030.encode("姓名,张三");
        assert_eq!(decode_text(&gb).unwrap(), "姓名,张三");
    }

    #[test]
    fn neutralises_formulas_both_ways() {
        for bad in [
            "=1+1",
            "+86",
            "-3",
            "@SUM(A1)",
            "+8613800138000",
            "-2+3+cmd|' /C calc'!A0",
            "+cmd|' /C calc'!A0",
            "--备注",
            "+1*2",
            "-\"a**b\"&HYPERLINK(\"http://x\")",
            "+T[a**b]",
            "\t=1",
        ] {
            assert_eq!(neutralise(bad), format!("'{bad}"), "{bad}");
            assert_eq!(unneutralise(&neutralise(bad)), bad);
        }
        // Text no formula grammar can read: shown as typed.
        for plain in ["张三", "+86*******0001", "-**-", "+*", "1+1"] {
            assert_eq!(neutralise(plain), plain, "{plain}");
        }
        assert_eq!(unneutralise("'hello"), "'hello");
        assert_eq!(unneutralise("'+86*******0001"), "'+86*******0001");
    }

    #[test]
    fn csv_rows_keep_spreadsheet_numbers() {
        let t = read_table("姓名,手机号\n\n张三,13800138000\n".as_bytes(), Format::Csv).unwrap();
        assert_eq!(t.header, vec!["姓名", "手机号"]);
        assert_eq!(t.rows[0].0, 3);
    }
}
