//! Export files: orders and hours per volunteer as `.xlsx` (Chinese column
//! headers, real date cells in the division's local time) or `.csv` (UTF-8
//! with a byte-order mark so Excel reads it as UTF-8; cells starting with
//! `=`, `+`, `-`, `@` neutralised against formula injection, OWASP "CSV
//! Injection").
//!
//! The rows are exactly those the API shows for the same filter and with
//! the same privacy: orders as list summaries ([`crate::api::orders::view`]
//! with no access: no address, phone, coordinates or notes), volunteers with
//! a masked phone. The API and the `homefront export` command both build
//! files here.

use homefront_store::orders::OrderRow;
use rust_xlsxwriter::{ExcelDateTime, Format as XlsxFormat, Workbook};
use serde::Serialize;

pub use crate::roster::Format;
use crate::roster::neutralise;

/// One cell of an export row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Text (neutralised in CSV).
    Text(String),
    /// A number.
    Number(f64),
    /// An instant, epoch ms, shown in the time zone (IANA name) given.
    Time(i64, String),
    /// Nothing.
    Empty,
}

/// A table to write: a sheet name, Chinese headers and rows.
#[derive(Clone, Debug)]
pub struct Table {
    /// Worksheet name.
    pub sheet: &'static str,
    /// Header row.
    pub headers: &'static [&'static str],
    /// Rows, each as long as `headers`.
    pub rows: Vec<Vec<Cell>>,
}

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
pub fn state_label(state: &str) -> &str {
    match state {
        "submitted" => "已提交",
        "dispatching" => "派单中",
        "assigned" => "已接单",
        "in_service" => "服务中",
        "completed" => "已完成",
        "confirmed" => "已确认",
        "cancelled" => "已取消",
        "unfulfilled" => "未能满足",
        other => other,
    }
}

fn lane_label(lane: &str) -> &str {
    match lane {
        "priority" => "优先",
        "urgent" => "紧急",
        "standard" => "普通",
        other => other,
    }
}

/// The orders table: one row per order, the list summary's fields only.
pub fn orders_table(orders: &[OrderRow]) -> Table {
    let rows = orders
        .iter()
        .map(|o| {
            let tz = o.time_zone.clone();
            vec![
                Cell::Number(o.id as f64),
                Cell::Text(o.item_name_zh.clone()),
                Cell::Text(o.item_code.clone()),
                Cell::Text(state_label(&o.state).to_string()),
                Cell::Text(lane_label(&o.lane).to_string()),
                Cell::Text(
                    if o.urgency == "urgent" {
                        "紧急"
                    } else {
                        "一般"
                    }
                    .to_string(),
                ),
                Cell::Text(o.division_name.clone()),
                Cell::Time(o.window_start, tz.clone()),
                Cell::Time(o.window_end, tz.clone()),
                Cell::Time(o.created_at, tz.clone()),
                o.ended_at
                    .map_or(Cell::Empty, |t| Cell::Time(t, tz.clone())),
                // The public note is shown to volunteers before they accept;
                // it is purged with the address.
                o.public_note.clone().map_or(Cell::Empty, Cell::Text),
            ]
        })
        .collect();
    Table {
        sheet: "订单",
        headers: ORDER_HEADERS,
        rows,
    }
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

/// The hours table: one row per volunteer.
pub fn hours_table(rows: &[VolunteerHours]) -> Table {
    let rows = rows
        .iter()
        .map(|r| {
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
        })
        .collect();
    Table {
        sheet: "服务时长",
        headers: HOURS_HEADERS,
        rows,
    }
}

fn local(ms: i64, tz: &str) -> Option<chrono::NaiveDateTime> {
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.with_timezone(&tz).naive_local())
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Writes `table` in `format`.
///
/// # Errors
/// Writer errors, as text.
pub fn write(table: &Table, format: Format) -> Result<Vec<u8>, String> {
    match format {
        Format::Csv => {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            {
                let mut w = csv::Writer::from_writer(&mut out);
                w.write_record(table.headers).map_err(|e| e.to_string())?;
                for row in &table.rows {
                    let cells: Vec<String> = row
                        .iter()
                        .map(|c| match c {
                            Cell::Text(s) => neutralise(s),
                            // A negative number would start with '-': keep it a
                            // number for spreadsheets, which is not a formula.
                            Cell::Number(n) => number_text(*n),
                            Cell::Time(ms, tz) => local(*ms, tz)
                                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                                .unwrap_or_default(),
                            Cell::Empty => String::new(),
                        })
                        .collect();
                    w.write_record(cells).map_err(|e| e.to_string())?;
                }
                w.flush().map_err(|e| e.to_string())?;
            }
            Ok(out)
        }
        Format::Xlsx => {
            let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
            let mut book = Workbook::new();
            let bold = XlsxFormat::new().set_bold();
            let date = XlsxFormat::new().set_num_format("yyyy-mm-dd hh:mm");
            let sheet = book.add_worksheet();
            sheet.set_name(table.sheet).map_err(e)?;
            for (c, h) in table.headers.iter().enumerate() {
                let c = u16::try_from(c).map_err(|e| e.to_string())?;
                sheet.write_string_with_format(0, c, *h, &bold).map_err(e)?;
                sheet.set_column_width(c, 16).map_err(e)?;
            }
            for (i, row) in table.rows.iter().enumerate() {
                let r = u32::try_from(i + 1).map_err(|e| e.to_string())?;
                for (c, cell) in row.iter().enumerate() {
                    let c = u16::try_from(c).map_err(|e| e.to_string())?;
                    match cell {
                        // write_string never makes a formula, whatever the text.
                        Cell::Text(s) if !s.is_empty() => {
                            sheet.write_string(r, c, s).map_err(e)?;
                        }
                        Cell::Number(n) => {
                            sheet.write_number(r, c, *n).map_err(e)?;
                        }
                        Cell::Time(ms, tz) => {
                            if let Some(d) = local(*ms, tz) {
                                let secs = d.and_utc().timestamp();
                                let dt = ExcelDateTime::from_timestamp(secs).map_err(e)?;
                                sheet
                                    .write_datetime_with_format(r, c, &dt, &date)
                                    .map_err(e)?;
                            }
                        }
                        Cell::Text(_) | Cell::Empty => {}
                    }
                }
            }
            sheet.set_freeze_panes(1, 0).map_err(e)?;
            book.save_to_buffer().map_err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_bom_and_neutralised_formulas() {
        let table = Table {
            sheet: "t",
            headers: &["a", "b"],
            rows: vec![
                vec![Cell::Text("=1+2".into()), Cell::Number(-3.0)],
                vec![Cell::Text("@SUM(A1)".into()), Cell::Time(0, "UTC".into())],
            ],
        };
        let bytes = write(&table, Format::Csv).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        assert_eq!(text, "a,b\n'=1+2,-3\n'@SUM(A1),1970-01-01 00:00\n");
    }
}
