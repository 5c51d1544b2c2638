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
        Format::Xlsx => read_xlsx(bytes)?,
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
    Ok(Table {
        header: header.into_iter().map(|h| h.trim().to_string()).collect(),
        rows,
    })
}

/// Rows with their spreadsheet row numbers.
type Grid = Vec<(usize, Vec<String>)>;

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
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_string(),
        _ => cell.to_string(),
    }
}

/// Makes a CSV cell safe to open in a spreadsheet: a cell starting with
/// `=`, `+`, `-`, `@`, tab or carriage return gets a leading apostrophe, so
/// it is shown as text instead of run as a formula (OWASP, "CSV Injection").
pub fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
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
                return Err(RosterError::UnknownColumn(h.clone(), known));
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
    let has = |k: &str| values.contains_key(k);
    let get = |k: &str| values.get(k).copied().unwrap_or("");
    let mut errors = Vec::new();

    let display_name = profile::person_name("name", get("name"))
        .map_err(|e| errors.push(from_profile(e, "name")))
        .ok();
    let phone = PhoneNumber::parse(get("phone"))
        .map_err(|e| errors.push(err("phone", "invalid_phone", e.to_string())))
        .ok();
    let team = if !get("team_id").is_empty() {
        match get("team_id").parse::<i64>() {
            Ok(id) => Some(TeamRef::Id(id)),
            Err(_) => {
                errors.push(err("team_id", "invalid_team", format!("team_id \"{}\" is not a number; give the team's id, or use the team column for its name", get("team_id"))));
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
                    errors.push(err("radius_km", "invalid_radius", format!("service radius \"{text}\" is not a number; give km as a number above 0 and at most 200, e.g. 10")));
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
                None => errors.push(err("qualifications", "invalid_qualification", format!("unknown qualification \"{label}\"; use 驾照, 教师, 心理咨询, 医师, 急救, 外语 (or driving_licence, teacher, counsellor, medical_licence, first_aid, language)"))),
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
                        errors.push(err(
                            "emergency_contact_phone",
                            "invalid_phone",
                            e.to_string(),
                        ))
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
                    errors.push(err("vehicle_seats", "invalid_vehicle_seats", format!("vehicle seats \"{text}\" is not a whole number; give 1 to 60, or leave it empty")));
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
                            "\"{text}\" is not a whole number; give 1 to 10, or leave it empty"
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
    let table = read_table(bytes, format)?;
    let columns = map_header(&table.header, options.default_team.is_some())?;
    let mut parsed: Vec<Result<RosterRow, Vec<RowError>>> = table
        .rows
        .iter()
        .map(|(row, cells)| parse_row(*row, &columns, cells, options.default_team.as_ref()))
        .collect();
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
        text(v.gender().map_or("", Gender::label_zh)),
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
        text(&v.vetting_state),
        text(if v.on_duty != 0 { "是" } else { "否" }),
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
    let rows: Vec<ExportRow<'_>> = volunteers
        .iter()
        .map(|v| ExportRow {
            volunteer: v,
            valid_qualifications: valid.remove(&v.user_id).unwrap_or_default(),
        })
        .collect();
    let bytes = export(&rows, format).map_err(RosterError::Write)?;
    Ok((bytes, rows.len()))
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

    #[test]
    fn decodes_utf8_bom_and_gb18030() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFa").unwrap(), "a");
        let (gb, _, _) = encoding_rs::GB18030.encode("姓名,张三");
        assert_eq!(decode_text(&gb).unwrap(), "姓名,张三");
    }

    #[test]
    fn neutralises_formulas_both_ways() {
        for bad in ["=1+1", "+86", "-3", "@SUM(A1)"] {
            assert_eq!(neutralise(bad), format!("'{bad}"));
            assert_eq!(unneutralise(&neutralise(bad)), bad);
        }
        assert_eq!(neutralise("张三"), "张三");
        assert_eq!(unneutralise("'hello"), "'hello");
    }

    #[test]
    fn csv_rows_keep_spreadsheet_numbers() {
        let t = read_table("姓名,手机号\n\n张三,13800138000\n".as_bytes(), Format::Csv).unwrap();
        assert_eq!(t.header, vec!["姓名", "手机号"]);
        assert_eq!(t.rows[0].0, 3);
    }
}
