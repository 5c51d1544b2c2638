//! Dashboard charts as inline SVG, drawn by `plotters`' SVG backend on the
//! server (no script, no fonts or tiles from the internet). Each chart is
//! `role="img"` with an accessible name; the pages put the same numbers in
//! a table next to it for screen readers and for copying.
//!
//! The map is an equirectangular projection of the divisions'
//! representative points (longitude scaled by the cosine of the mean
//! latitude, so distances look right at Jiangsu's latitudes), with one
//! circle per division sized by its count: no base map is drawn.

use homefront_domain::order_state::OrderState;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colours of the order states, in board order (WCAG AA against white
/// where used for text; the bars carry a legend with the same colour).
pub const STATE_COLOURS: [(OrderState, RGBColor); 8] = [
    (OrderState::Submitted, RGBColor(0x6b, 0x72, 0x80)),
    (OrderState::Dispatching, RGBColor(0xb3, 0x59, 0x00)),
    (OrderState::Assigned, RGBColor(0x0b, 0x5c, 0xad)),
    (OrderState::InService, RGBColor(0x5b, 0x3d, 0xa8)),
    (OrderState::Completed, RGBColor(0x1f, 0x7a, 0x4d)),
    (OrderState::Confirmed, RGBColor(0x0f, 0x4d, 0x2e)),
    (OrderState::Cancelled, RGBColor(0xa6, 0x1b, 0x1b)),
    (OrderState::Unfulfilled, RGBColor(0x1a, 0x1a, 0x1a)),
];

/// `#rrggbb` of a state's colour, for the legend.
pub fn state_hex(state: OrderState) -> String {
    let c = STATE_COLOURS
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(RGBColor(0x6b, 0x72, 0x80), |(_, c)| *c);
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

const PRIMARY: RGBColor = RGBColor(0x0b, 0x5c, 0xad);
const ACCENT: RGBColor = RGBColor(0xb3, 0x59, 0x00);
const GREY: RGBColor = RGBColor(0x4b, 0x55, 0x63);
const FONT: &str = "sans-serif";

/// Makes plotters' fixed-size root responsive and names it for assistive
/// technology: `<svg width=.. height=.. viewBox=..>` becomes
/// `<svg class="chart" role="img" aria-label=".." viewBox=..>`.
fn finish(svg: String, label: &str) -> String {
    let label = html_escape::encode_double_quoted_attribute(label);
    match (svg.find("<svg"), svg.find("viewBox=")) {
        (Some(start), Some(view)) if view > start => format!(
            "{}<svg class=\"chart\" role=\"img\" aria-label=\"{label}\" {}",
            &svg[..start],
            &svg[view..]
        ),
        _ => svg,
    }
}

fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf(max.log10().floor());
    ((max / step).ceil() * step).max(1.0)
}

/// Number of axis labels for a scale from 0 to `max` (see [`nice_max`]):
/// one per unit up to 10, else about six.
fn ticks(max: f64) -> usize {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    if max <= 10.0 { max as usize + 1 } else { 6 }
}

/// An axis label: whole numbers only (fractional positions stay blank,
/// so a scale of 0–2 reads 0, 1, 2, not 0, 0, 1, 1, 2).
fn tick_label(v: f64, max: f64) -> String {
    if max <= 10.0 && (v - v.round()).abs() > 1e-6 {
        String::new()
    } else {
        format!("{v:.0}")
    }
}

/// The chart frame both daily charts share: one column per day (labelled
/// `MM-DD`, about seven labels), a value axis from 0 to `max`.
fn day_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    days: &[String],
    max: f64,
) -> Result<
    ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    #[allow(clippy::cast_precision_loss)] // at most 367 days
    let n = days.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..n, 0f64..max)
        .map_err(|e| e.to_string())?;
    // At most six dates under the axis, so 20-unit labels stay apart.
    let step = days.len().div_ceil(6).max(1);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(days.len().min(8) + 1)
        .x_label_formatter(&|x| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = x.floor() as usize;
            if (x - x.floor()).abs() < f64::EPSILON && i < days.len() && i.is_multiple_of(step) {
                days[i].get(5..).unwrap_or(&days[i]).to_string()
            } else {
                String::new()
            }
        })
        .y_labels(ticks(max))
        .y_label_formatter(&|y| tick_label(*y, max))
        .label_style((FONT, 20))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// Stacked daily bars: `series` is (state, count per day), every vector as
/// long as `days`. Empty input draws empty axes.
///
/// # Errors
/// Drawing errors from plotters (none are expected on a string backend).
pub fn stacked_days(
    label: &str,
    days: &[String],
    series: &[(OrderState, Vec<i64>)],
) -> Result<String, String> {
    let totals: Vec<i64> = (0..days.len())
        .map(|d| {
            series
                .iter()
                .map(|(_, v)| v.get(d).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    #[allow(clippy::cast_precision_loss)] // counts are far below 2^52
    let max = nice_max(totals.iter().copied().max().unwrap_or(0) as f64);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (520, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = day_chart(&root, days, max)?;
        for d in 0..days.len() {
            let mut base = 0f64;
            for (state, counts) in series {
                #[allow(clippy::cast_precision_loss)]
                let v = counts.get(d).copied().unwrap_or(0) as f64;
                if v <= 0.0 {
                    continue;
                }
                let colour = STATE_COLOURS
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or(GREY, |(_, c)| *c);
                #[allow(clippy::cast_precision_loss)]
                let x = d as f64;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.15, base), (x + 0.85, base + v)],
                        colour.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                base += v;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(finish(buf, label))
}

/// Two lines over days (p50 and p90 of minutes to accept); days without
/// a value leave a gap.
///
/// # Errors
/// Drawing errors from plotters.
pub fn percentile_lines(
    label: &str,
    days: &[String],
    p50: &[Option<f64>],
    p90: &[Option<f64>],
) -> Result<String, String> {
    let max = nice_max(p90.iter().chain(p50).flatten().copied().fold(0.0, f64::max));
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (520, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = day_chart(&root, days, max)?;
        for (values, colour) in [(p50, PRIMARY), (p90, ACCENT)] {
            // One line per run of days with a value.
            let mut run: Vec<(f64, f64)> = Vec::new();
            let mut runs = Vec::new();
            for (d, v) in values.iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let x = d as f64 + 0.5;
                match v {
                    Some(v) => run.push((x, *v)),
                    None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                    None => {}
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
            for run in runs {
                chart
                    .draw_series(run.iter().map(|p| Circle::new(*p, 3, colour.filled())))
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series(LineSeries::new(run, colour.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(finish(buf, label))
}

/// Horizontal bars of hours, one per (name, recorded hours, backfilled
/// hours), recorded in the primary colour and backfilled stacked after it.
///
/// # Errors
/// Drawing errors from plotters.
pub fn hour_bars(label: &str, lines: &[(String, f64, f64)]) -> Result<String, String> {
    let n = lines.len().max(1);
    let max = nice_max(lines.iter().map(|(_, r, b)| r + b).fold(0.0, f64::max));
    let height = u32::try_from(44 + 32 * n).unwrap_or(600).min(900);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (520, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        #[allow(clippy::cast_precision_loss)]
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(200)
            .build_cartesian_2d(0f64..max, 0f64..n as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                // Rows are drawn top-down: row i spans [n-1-i, n-i).
                let centre = y - y.floor();
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let row = n.saturating_sub(1 + y.floor() as usize);
                if (centre - 0.5).abs() < 0.01 && row < lines.len() {
                    let name = &lines[row].0;
                    if name.chars().count() > 10 {
                        format!("{}…", name.chars().take(9).collect::<String>())
                    } else {
                        name.clone()
                    }
                } else {
                    String::new()
                }
            })
            .x_labels(ticks(max))
            .x_label_formatter(&|x| tick_label(*x, max))
            .label_style((FONT, 20))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (_, recorded, backfilled)) in lines.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let y = (n - 1 - i) as f64;
            chart
                .draw_series([
                    Rectangle::new([(0.0, y + 0.2), (*recorded, y + 0.8)], PRIMARY.filled()),
                    Rectangle::new(
                        [(*recorded, y + 0.2), (recorded + backfilled, y + 0.8)],
                        ACCENT.filled(),
                    ),
                ])
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(finish(buf, label))
}

/// One panel of [`panels`]: a figure's value per run (e.g. per dispatch
/// policy), with the target it should meet.
#[derive(Clone, Debug)]
pub struct Panel {
    /// The figure's name and unit, e.g. `unfulfilled (%)`.
    pub title: String,
    /// (run name, value), drawn top-down in this order.
    pub bars: Vec<(String, f64)>,
    /// The target, drawn as a vertical line; `None` for none.
    pub target: Option<f64>,
}

/// Small multiples: one horizontal bar chart per [`Panel`], stacked, all
/// runs in the same order and colour, each panel on its own scale with its
/// target as a vertical line in the accent colour.
///
/// # Errors
/// Drawing errors from plotters.
pub fn panels(label: &str, panels: &[Panel]) -> Result<String, String> {
    let rows = panels
        .iter()
        .map(|p| p.bars.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let panel_height = u32::try_from(70 + 30 * rows).unwrap_or(300);
    let count = u32::try_from(panels.len().max(1)).unwrap_or(1);
    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (560, panel_height * count)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let top = panel
                .bars
                .iter()
                .map(|(_, v)| *v)
                .chain(panel.target)
                .fold(0.0, f64::max);
            let max = nice_max(top * 1.05);
            #[allow(clippy::cast_precision_loss)]
            let n = rows as f64;
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .caption(&panel.title, (FONT, 22))
                .x_label_area_size(28)
                .y_label_area_size(120)
                .build_cartesian_2d(0f64..max, 0f64..n)
                .map_err(|e| e.to_string())?;
            let names: Vec<String> = panel.bars.iter().map(|(k, _)| k.clone()).collect();
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(rows * 2 + 1)
                .y_label_formatter(&|y| {
                    let centre = y - y.floor();
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let row = rows.saturating_sub(1 + y.floor() as usize);
                    if (centre - 0.5).abs() < 0.01 && row < names.len() {
                        names[row].clone()
                    } else {
                        String::new()
                    }
                })
                .x_labels(6)
                .x_label_formatter(&|x| {
                    if max < 10.0 {
                        format!("{x:.2}")
                    } else {
                        format!("{x:.0}")
                    }
                })
                .label_style((FONT, 18))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, (_, v)) in panel.bars.iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let y = (rows - 1 - i) as f64;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y + 0.2), (*v, y + 0.8)],
                        PRIMARY.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        if *v < 10.0 {
                            format!(" {v:.3}")
                        } else {
                            format!(" {v:.1}")
                        },
                        (*v, y + 0.5),
                        (FONT, 18)
                            .into_font()
                            .color(&GREY)
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            if let Some(t) = panel.target {
                chart
                    .draw_series(LineSeries::new([(t, 0.0), (t, n)], ACCENT.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(finish(buf, label))
}

/// Most division names written on the map (the busiest first; the table
/// beside the map lists every division).
const MAP_LABELS: usize = 12;

/// Font size of the map's labels in SVG units: the map is 520 units wide
/// and shown about 350 px wide on a phone, so 22 units read as ~15 px.
const MAP_FONT: u32 = 22;

/// A division on the map.
#[derive(Clone, Debug)]
pub struct MapDot {
    /// Name shown next to the dot.
    pub name: String,
    /// Decimal degrees.
    pub longitude: f64,
    /// Decimal degrees.
    pub latitude: f64,
    /// Open orders (orange circle, area proportional).
    pub open_orders: i64,
    /// On-duty volunteers (blue circle, area proportional).
    pub on_duty: i64,
}

/// The convex hull of `points` (longitude, latitude), counter-clockwise,
/// by Andrew's monotone chain (A. M. Andrew, "Another efficient algorithm
/// for convex hulls in two dimensions", 1979); fewer than three distinct
/// points give them back as they are.
pub fn convex_hull(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points.to_vec();
    p.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: (f64, f64), a: (f64, f64), b: (f64, f64)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(f64, f64)> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f64, f64)>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

/// `hull` pushed outwards from its centroid by `by` degrees, so the
/// divisions on its edge sit inside the outline rather than on it.
pub fn padded(hull: &[(f64, f64)], by: f64) -> Vec<(f64, f64)> {
    if hull.is_empty() {
        return Vec::new();
    }
    #[allow(clippy::cast_precision_loss)]
    let n = hull.len() as f64;
    let cx = hull.iter().map(|p| p.0).sum::<f64>() / n;
    let cy = hull.iter().map(|p| p.1).sum::<f64>() / n;
    hull.iter()
        .map(|&(x, y)| {
            let (dx, dy) = (x - cx, y - cy);
            let len = (dx * dx + dy * dy).sqrt().max(1e-9);
            (x + dx / len * by, y + dy / len * by)
        })
        .collect()
}

/// A label's box in pixels: (left, top, right, bottom).
type LabelBox = (i32, i32, i32, i32);

fn overlaps(a: LabelBox, b: LabelBox) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// The width of `text` at `size` units: CJK characters are square, Latin
/// ones about 0.55 of the size (sans-serif average).
fn text_width(text: &str, size: u32) -> i32 {
    let w: f64 = text
        .chars()
        .map(|c| if c.is_ascii() { 0.55 } else { 1.0 })
        .sum::<f64>()
        * f64::from(size);
    #[allow(clippy::cast_possible_truncation)]
    let w = w.ceil() as i32;
    w
}

/// Where each label goes: below, above, right of or left of its circle,
/// the first of these that stays inside the picture and clear of the
/// labels and circles already placed; a label that fits nowhere is left
/// out (the table lists it). `wanted` is (text, x, y, radius), busiest
/// first; the answer is (text, x, y, anchor) in the same order.
fn place_labels(
    wanted: &[(String, i32, i32, i32)],
    circles: &[(i32, i32, i32)],
    size: (i32, i32),
    font: u32,
) -> Vec<(String, i32, i32, HPos)> {
    let h = i32::try_from(font).unwrap_or(22) + 2;
    let mut placed: Vec<LabelBox> = Vec::new();
    let mut out = Vec::new();
    for (text, x, y, r) in wanted {
        let (x, y, r) = (*x, *y, *r);
        let w = text_width(text, font);
        let candidates = [
            ((x - w / 2, y + r + 2), HPos::Center),
            ((x - w / 2, y - r - 2 - h), HPos::Center),
            ((x + r + 4, y - h / 2), HPos::Left),
            ((x - r - 4 - w, y - h / 2), HPos::Left),
        ];
        // First a place clear of other divisions' circles too; failing
        // that, one clear of the other names (it may cross a circle).
        let spot = [true, false].into_iter().find_map(|avoid_circles| {
            candidates.iter().find_map(|&((left, top), anchor)| {
                let b = (left, top, left + w, top + h);
                let inside = b.0 >= 0 && b.1 >= 0 && b.2 <= size.0 && b.3 <= size.1;
                let crosses_circle = circles.iter().any(|&(cx, cy, cr)| {
                    (cx, cy) != (x, y) && overlaps((cx - cr, cy - cr, cx + cr, cy + cr), b)
                });
                let clear =
                    !placed.iter().any(|p| overlaps(*p, b)) && (!avoid_circles || !crosses_circle);
                (inside && clear).then_some((b, anchor))
            })
        });
        if let Some((b, anchor)) = spot {
            placed.push(b);
            let ax = if matches!(anchor, HPos::Center) {
                b.0 + w / 2
            } else {
                b.0
            };
            out.push((text.clone(), ax, b.1, anchor));
        }
    }
    out
}

/// The map of open orders and on-duty volunteers by division, over the
/// area's `outline` (longitude, latitude; e.g. the padded convex hull of
/// the province's division points, [`convex_hull`]), drawn as a light
/// shape. Divisions with neither are small grey dots so the area's shape
/// shows. The busiest divisions are named, at most [`MAP_LABELS`], where a
/// name does not cover another ([`place_labels`]).
///
/// # Errors
/// Drawing errors from plotters.
pub fn division_map(
    label: &str,
    dots: &[MapDot],
    outline: &[(f64, f64)],
) -> Result<String, String> {
    let (mut lon0, mut lon1, mut lat0, mut lat1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (lon, lat) in dots
        .iter()
        .map(|d| (d.longitude, d.latitude))
        .chain(outline.iter().copied())
    {
        lon0 = lon0.min(lon);
        lon1 = lon1.max(lon);
        lat0 = lat0.min(lat);
        lat1 = lat1.max(lat);
    }
    if dots.is_empty() && outline.is_empty() {
        (lon0, lon1, lat0, lat1) = (0.0, 1.0, 0.0, 1.0);
    }
    // Pad so edge dots and labels fit, and keep a minimum extent.
    let pad_lon = ((lon1 - lon0) * 0.05).max(0.1);
    let pad_lat = ((lat1 - lat0) * 0.05).max(0.1);
    let (lon0, lon1, lat0, lat1) = (
        lon0 - pad_lon,
        lon1 + pad_lon,
        lat0 - pad_lat,
        lat1 + pad_lat,
    );
    let cos = ((lat0 + lat1) / 2.0).to_radians().cos();
    let width = 520u32;
    let aspect = ((lat1 - lat0) / ((lon1 - lon0) * cos)).clamp(0.4, 1.3);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let height = (f64::from(width) * aspect) as u32;
    let max = dots
        .iter()
        .map(|d| d.open_orders.max(d.on_duty))
        .max()
        .unwrap_or(0)
        .max(1);
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let radius = |count: i64| -> i32 {
        if count <= 0 {
            0
        } else {
            (4.0 + 18.0 * (count as f64 / max as f64).sqrt()).round() as i32
        }
    };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .build_cartesian_2d(lon0..lon1, lat0..lat1)
            .map_err(|e| e.to_string())?;
        if outline.len() >= 3 {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline.to_vec(),
                    RGBColor(0xe8, 0xef, 0xf7).filled(),
                )))
                .map_err(|e| e.to_string())?;
            let mut ring = outline.to_vec();
            ring.push(outline[0]);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    ring,
                    GREY.mix(0.6).stroke_width(2),
                )))
                .map_err(|e| e.to_string())?;
        }
        let mut circles = Vec::new();
        let mut wanted = Vec::new();
        let mut busiest: Vec<&MapDot> = dots
            .iter()
            .filter(|d| d.open_orders + d.on_duty > 0)
            .collect();
        busiest.sort_by_key(|d| std::cmp::Reverse(d.open_orders + d.on_duty));
        for d in dots {
            let at = (d.longitude, d.latitude);
            let (r_orders, r_duty) = (radius(d.open_orders), radius(d.on_duty));
            if r_orders == 0 && r_duty == 0 {
                chart
                    .draw_series(std::iter::once(Circle::new(at, 3, GREY.mix(0.5).filled())))
                    .map_err(|e| e.to_string())?;
                continue;
            }
            if r_duty > 0 {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        at,
                        r_duty,
                        PRIMARY.mix(0.35).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            if r_orders > 0 {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        at,
                        r_orders,
                        ACCENT.stroke_width(3),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            let (x, y) = chart.backend_coord(&at);
            circles.push((x, y, r_orders.max(r_duty)));
        }
        for d in busiest.iter().take(MAP_LABELS) {
            let (x, y) = chart.backend_coord(&(d.longitude, d.latitude));
            let r = radius(d.open_orders).max(radius(d.on_duty));
            wanted.push((d.name.clone(), x, y, r));
        }
        let size = (
            i32::try_from(width).unwrap_or(520),
            i32::try_from(height).unwrap_or(520),
        );
        let ink = RGBColor(0x1f, 0x29, 0x37);
        for (text, x, y, anchor) in place_labels(&wanted, &circles, size, MAP_FONT) {
            let style = TextStyle::from((FONT, MAP_FONT).into_font())
                .color(&ink)
                .pos(Pos::new(anchor, VPos::Top));
            root.draw(&Text::new(text, (x, y), style))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(finish(buf, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_named_responsive_svg() {
        let days = vec!["2020-02-01".to_string(), "2020-02-02".to_string()];
        let svg = stacked_days(
            "Orders per day",
            &days,
            &[
                (OrderState::Completed, vec![3, 1]),
                (OrderState::Cancelled, vec![0, 2]),
            ],
        )
        .unwrap();
        assert!(svg.contains(
            r#"<svg class="chart" role="img" aria-label="Orders per day" viewBox="0 0 520 300""#
        ));
        let root = &svg[svg.find("<svg").unwrap()..];
        let root = &root[..root.find('>').unwrap()];
        assert!(!root.contains("width="), "{root}");
        // One rectangle per non-zero (day, state) cell, in the state's colour.
        assert_eq!(
            svg.matches(&state_hex(OrderState::Cancelled).to_uppercase())
                .count()
                + svg.matches(&state_hex(OrderState::Cancelled)).count(),
            1
        );
    }

    #[test]
    fn map_sizes_dots_by_count_and_names_divisions() {
        let dots = vec![
            MapDot {
                name: "玄武区".into(),
                longitude: 118.79,
                latitude: 32.05,
                open_orders: 4,
                on_duty: 0,
            },
            MapDot {
                name: "海门区".into(),
                longitude: 121.18,
                latitude: 31.87,
                open_orders: 0,
                on_duty: 0,
            },
        ];
        let svg = division_map("Map & <stuff>", &dots, &[]).unwrap();
        assert!(svg.contains("玄武区"));
        assert!(
            !svg.contains("海门区"),
            "divisions with nothing get no label"
        );
        assert!(svg.contains(r#"aria-label="Map &amp; &lt;stuff&gt;""#));
        assert!(
            svg.contains(r#"r="22""#),
            "the largest count gets the largest circle"
        );
    }

    #[test]
    fn the_hull_encloses_every_point_and_labels_never_overlap() {
        let pts = [
            (0.0, 0.0),
            (2.0, 0.0),
            (1.0, 1.0),
            (2.0, 2.0),
            (0.0, 2.0),
            (1.0, 0.5),
        ];
        let hull = convex_hull(&pts);
        assert_eq!(hull.len(), 4, "{hull:?}");
        assert!(!hull.contains(&(1.0, 1.0)) && !hull.contains(&(1.0, 0.5)));
        // Twenty busy divisions a few pixels apart (Nanjing's districts on
        // a province map): the names placed never cover one another.
        let wanted: Vec<(String, i32, i32, i32)> = (0..20)
            .map(|i| (format!("区{i}区"), 200 + (i % 5) * 6, 150 + (i / 5) * 6, 8))
            .collect();
        let placed = place_labels(&wanted, &[], (520, 400), MAP_FONT);
        assert!(!placed.is_empty() && placed.len() < wanted.len());
        let boxes: Vec<LabelBox> = placed
            .iter()
            .map(|(t, x, y, a)| {
                let w = text_width(t, MAP_FONT);
                let left = if matches!(a, HPos::Center) {
                    x - w / 2
                } else {
                    *x
                };
                (left, *y, left + w, y + 24)
            })
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(!overlaps(*a, *b), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn nice_max_rounds_up_to_one_significant_digit() {
        assert!((nice_max(0.0) - 1.0).abs() < f64::EPSILON);
        assert!((nice_max(7.0) - 7.0).abs() < f64::EPSILON);
        assert!((nice_max(43.0) - 50.0).abs() < f64::EPSILON);
        assert!((nice_max(120.0) - 200.0).abs() < f64::EPSILON);
    }
}
