//! Export files: orders and hours per volunteer as `.xlsx` (Chinese column
//! headers, real date cells in the division's local time) or `.csv` (UTF-8
//! with a byte-order mark so Excel reads it as UTF-8; text a spreadsheet
//! would evaluate as a formula neutralised, OWASP "CSV Injection").
//!
//! The rows are exactly those the API shows for the same filter and with
//! the same privacy: orders as list summaries ([`crate::api::orders::view`]
//! with no access: no address, phone, coordinates or notes), volunteers with
//! a masked phone. The API and the `homefront export` command both build
//! files here.
//!
//! Files are written row by row ([`SheetWriter`]): CSV straight to its
//! output, xlsx with rust_xlsxwriter's constant-memory mode (each row goes
//! to a temporary file as it is written, strings inline), so an export of
//! any size holds one row in memory, not the table. Over HTTP, [`body`]
//! streams the file as it is written.

use std::io::Write;

use axum::body::{Body, Bytes};
use chrono_tz::Tz;
use homefront_domain::catalogue::{Lane, Urgency};
use homefront_domain::order_state::OrderState;
use homefront_store::orders::OrderRow;
use rust_xlsxwriter::{ExcelDateTime, Format as XlsxFormat, Workbook};
use serde::Serialize;
use tokio::sync::mpsc;

pub use crate::roster::Format;
use crate::roster::neutralise;

/// One cell of an export row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Text (neutralised in CSV).
    Text(String),
    /// A number.
    Number(f64),
    /// An instant, epoch ms, shown in the time zone given.
    Time(i64, Tz),
    /// Nothing.
    Empty,
}

/// What a file's one sheet is: its name and Chinese header row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sheet {
    /// Worksheet name (xlsx).
    pub name: &'static str,
    /// Header row.
    pub headers: &'static [&'static str],
}

/// The orders sheet.
pub const ORDERS: Sheet = Sheet {
    name: "订单",
    headers: ORDER_HEADERS,
};

/// The hours-per-volunteer sheet.
pub const HOURS: Sheet = Sheet {
    name: "服务时长",
    headers: HOURS_HEADERS,
};

/// Order export columns.
pub const ORDER_HEADERS: &[&str] = &[
    "订单编号",
    "服务项目",
    "项目代码",
    "状态",
    "通道",
    "紧急程度",
    "服务地区",
    "开始时间",
    "结束时间",
    "下单时间",
    "完结时间",
    "公开备注",
];

/// Chinese label of an order state.
pub fn state_label(state: OrderState) -> &'static str {
    match state {
        OrderState::Submitted => "已提交",
        OrderState::Dispatching => "派单中",
        OrderState::Assigned => "已接单",
        OrderState::InService => "服务中",
        OrderState::Completed => "已完成",
        OrderState::Confirmed => "已确认",
        OrderState::Cancelled => "已取消",
        OrderState::Unfulfilled => "未能满足",
    }
}

fn lane_label(lane: Lane) -> &'static str {
    match lane {
        Lane::Priority => "优先",
        Lane::Urgent => "紧急",
        Lane::Standard => "普通",
    }
}

/// One order's row: the list summary's fields only.
pub fn order_cells(o: &OrderRow) -> Vec<Cell> {
    let tz = o.time_zone;
    vec![
        Cell::Number(o.id as f64),
        Cell::Text(o.item_name_zh.clone()),
        Cell::Text(o.item_code.clone()),
        Cell::Text(state_label(o.state).to_string()),
        Cell::Text(lane_label(o.lane).to_string()),
        Cell::Text(
            if o.urgency == Urgency::Urgent {
                "紧急"
            } else {
                "一般"
            }
            .to_string(),
        ),
        Cell::Text(o.division_name.clone()),
        Cell::Time(o.window_start, tz),
        Cell::Time(o.window_end, tz),
        Cell::Time(o.created_at, tz),
        o.ended_at.map_or(Cell::Empty, |t| Cell::Time(t, tz)),
        // The public note is shown to volunteers before they accept;
        // it is purged with the address.
        o.public_note.clone().map_or(Cell::Empty, Cell::Text),
    ]
}

/// One volunteer's hours in a period, as the API and the export show it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VolunteerHours {
    /// Account id.
    pub volunteer_user_id: i64,
    /// Display name.
    pub name: String,
    /// Phone with all but the last four digits hidden.
    pub masked_phone: String,
    /// Current team.
    pub team: String,
    /// Recorded minutes (check-in/out), net of adjustments.
    pub recorded_minutes: i64,
    /// Backfilled minutes, net of adjustments.
    pub backfilled_minutes: i64,
    /// Distinct orders served.
    pub orders: i64,
}

/// Hours export columns.
pub const HOURS_HEADERS: &[&str] = &[
    "志愿者编号",
    "姓名",
    "手机号(脱敏)",
    "所属队伍",
    "记录时长(小时)",
    "补录时长(小时)",
    "合计(小时)",
    "服务单数",
];

fn hours(minutes: i64) -> f64 {
    // Two decimals: minutes are whole, hours are what certificates show.
    (minutes as f64 / 60.0 * 100.0).round() / 100.0
}

/// One volunteer's hours row.
pub fn hours_cells(r: &VolunteerHours) -> Vec<Cell> {
    vec![
        Cell::Number(r.volunteer_user_id as f64),
        Cell::Text(r.name.clone()),
        Cell::Text(r.masked_phone.clone()),
        Cell::Text(r.team.clone()),
        Cell::Number(hours(r.recorded_minutes)),
        Cell::Number(hours(r.backfilled_minutes)),
        Cell::Number(hours(r.recorded_minutes + r.backfilled_minutes)),
        Cell::Number(r.orders as f64),
    ]
}

fn local(ms: i64, tz: Tz) -> Option<chrono::NaiveDateTime> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.with_timezone(&tz).naive_local())
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Writes one sheet row by row to `W`: CSV as each row comes, xlsx in
/// rust_xlsxwriter's constant-memory mode (rows go to a temporary file,
/// the zip is written to `W` by [`SheetWriter::finish`]).
pub struct SheetWriter<W: Write + Send> {
    inner: Inner<W>,
    rows: u64,
}

enum Inner<W: Write + Send> {
    Csv(csv::Writer<W>),
    Xlsx {
        book: Box<Workbook>,
        out: W,
        date: XlsxFormat,
    },
}

fn xlsx_error(e: rust_xlsxwriter::XlsxError) -> String {
    e.to_string()
}

impl<W: Write + Send> SheetWriter<W> {
    /// Starts a file of `sheet` in `format` on `out`, with the header row.
    ///
    /// # Errors
    /// Writer errors (as text), e.g. no writable temporary directory for xlsx.
    pub fn new(format: Format, sheet: Sheet, mut out: W) -> Result<Self, String> {
        let inner = match format {
            Format::Csv => {
                out.write_all(b"\xEF\xBB\xBF").map_err(|e| e.to_string())?;
                let mut w = csv::Writer::from_writer(out);
                w.write_record(sheet.headers).map_err(|e| e.to_string())?;
                Inner::Csv(w)
            }
            Format::Xlsx => {
                let mut book = Box::new(Workbook::new());
                let bold = XlsxFormat::new().set_bold();
                let ws = book
                    .add_worksheet_with_constant_memory()
                    .map_err(xlsx_error)?;
                ws.set_name(sheet.name).map_err(xlsx_error)?;
                for (c, h) in sheet.headers.iter().enumerate() {
                    let c = u16::try_from(c).map_err(|e| e.to_string())?;
                    ws.set_column_width(c, 16).map_err(xlsx_error)?;
                    ws.write_string_with_format(0, c, *h, &bold)
                        .map_err(xlsx_error)?;
                }
                ws.set_freeze_panes(1, 0).map_err(xlsx_error)?;
                Inner::Xlsx {
                    book,
                    out,
                    date: XlsxFormat::new().set_num_format("yyyy-mm-dd hh:mm"),
                }
            }
        };
        Ok(Self { inner, rows: 0 })
    }

    /// Rows written so far (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes one row, as long as the header.
    ///
    /// # Errors
    /// Writer errors (as text); xlsx holds at most 1,048,575 rows.
    pub fn row(&mut self, row: &[Cell]) -> Result<(), String> {
        match &mut self.inner {
            Inner::Csv(w) => {
                for c in row {
                    let text = match c {
                        Cell::Text(s) => neutralise(s),
                        // A negative number would start with '-': keep it a
                        // number for spreadsheets, which is not a formula.
                        Cell::Number(n) => number_text(*n),
                        Cell::Time(ms, tz) => local(*ms, *tz)
                            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default(),
                        Cell::Empty => String::new(),
                    };
                    w.write_field(text).map_err(|e| e.to_string())?;
                }
                w.write_record(None::<&[u8]>).map_err(|e| e.to_string())?;
            }
            Inner::Xlsx { book, date, .. } => {
                let r = u32::try_from(self.rows + 1).map_err(|e| e.to_string())?;
                let ws = book.worksheet_from_index(0).map_err(xlsx_error)?;
                for (c, cell) in row.iter().enumerate() {
                    let c = u16::try_from(c).map_err(|e| e.to_string())?;
                    match cell {
                        // write_string never makes a formula, whatever the text.
                        Cell::Text(s) if !s.is_empty() => {
                            ws.write_string(r, c, s).map_err(xlsx_error)?;
                        }
                        Cell::Number(n) => {
                            ws.write_number(r, c, *n).map_err(xlsx_error)?;
                        }
                        Cell::Time(ms, tz) => {
                            if let Some(d) = local(*ms, *tz) {
                                let secs = d.and_utc().timestamp();
                                let dt = ExcelDateTime::from_timestamp(secs).map_err(xlsx_error)?;
                                ws.write_datetime_with_format(r, c, &dt, &*date)
                                    .map_err(xlsx_error)?;
                            }
                        }
                        Cell::Text(_) | Cell::Empty => {}
                    }
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Ends the file (the xlsx zip is written now) and returns the output
    /// and the rows written.
    ///
    /// # Errors
    /// Writer errors (as text).
    pub fn finish(self) -> Result<(W, u64), String> {
        let out = match self.inner {
            Inner::Csv(w) => w.into_inner().map_err(|e| e.to_string())?,
            Inner::Xlsx {
                mut book, mut out, ..
            } => {
                book.save_to_writer(&mut out).map_err(xlsx_error)?;
                out
            }
        };
        Ok((out, self.rows))
    }
}

/// Writes `rows` of `sheet` in `format` into memory (small tables: tests,
/// the hours per volunteer).
///
/// # Errors
/// Writer errors, as text.
pub fn write(sheet: Sheet, rows: &[Vec<Cell>], format: Format) -> Result<Vec<u8>, String> {
    let mut w = SheetWriter::new(format, sheet, Vec::new())?;
    for r in rows {
        w.row(r)?;
    }
    Ok(w.finish()?.0)
}

/// Bytes sent to the HTTP body per chunk.
const CHUNK: usize = 64 * 1024;

/// A `Write` that hands 64 KiB chunks to an HTTP body as they fill. It
/// runs on a blocking thread and waits when the client reads slower than
/// the file is written (the channel is bounded), so memory stays flat.
struct ChunkSender {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChunkSender {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A row for [`body`]: the cells, or why the rows stopped (a database error).
pub type RowResult = Result<Vec<Cell>, String>;

/// An HTTP body that is the file of `sheet` in `format` with the rows
/// received on `rows`, written on a blocking thread as they arrive and
/// streamed out in 64 KiB chunks. A row error (or a writer error) ends the
/// body with an error, so the client sees a broken download, never a
/// file that silently lacks rows.
pub fn body(format: Format, sheet: Sheet, mut rows: mpsc::Receiver<RowResult>) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let fail = tx.clone();
    tokio::task::spawn_blocking(move || {
        let result = (|| -> Result<(), String> {
            let out = ChunkSender {
                buf: Vec::with_capacity(CHUNK),
                tx,
            };
            let mut w = SheetWriter::new(format, sheet, out)?;
            while let Some(row) = rows.blocking_recv() {
                w.row(&row?)?;
            }
            let (mut out, _) = w.finish()?;
            out.flush().map_err(|e| e.to_string())
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "export stopped");
            fail.blocking_send(Err(std::io::Error::other(e))).ok();
        }
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_bom_and_neutralised_formulas() {
        let sheet = Sheet {
            name: "t",
            headers: &["a", "b"],
        };
        let rows = vec![
            vec![Cell::Text("=1+2".into()), Cell::Number(-3.0)],
            vec![Cell::Text("@SUM(A1)".into()), Cell::Time(0, chrono_tz::UTC)],
        ];
        let bytes = write(sheet, &rows, Format::Csv).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        assert_eq!(text, "a,b\n'=1+2,-3\n'@SUM(A1),1970-01-01 00:00\n");
    }

    #[test]
    fn xlsx_rows_stream_through_constant_memory() {
        let sheet = Sheet {
            name: "t",
            headers: &["a", "b"],
        };
        let rows: Vec<Vec<Cell>> = (0..3000)
            .map(|i| vec![Cell::Number(f64::from(i)), Cell::Text(format!("行{i}"))])
            .collect();
        let bytes = write(sheet, &rows, Format::Xlsx).unwrap();
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        use calamine::Reader;
        let range = book.worksheet_range("t").unwrap();
        assert_eq!(range.height(), 3001);
        assert_eq!(
            range.get((3000, 1)),
            Some(&calamine::Data::String("行2999".into()))
        );
    }
}
