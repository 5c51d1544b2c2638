//! Dashboard charts as inline SVG, drawn by `plotters`' SVG backend on the
//! server (no script, no fonts or tiles from the internet). Each chart is
//! `role="img"` with an accessible name; the pages put the same numbers in
//! a table next to it for screen readers and for copying.
//!
//! The map is an equirectangular projection of the divisions'
//! representative points (longitude scaled by the cosine of the mean
//! latitude, so distances look right at Jiangsu's latitudes), with one
//! circle per division sized by its count: no base map is drawn.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colours of the order states, in board order (WCAG AA against white
/// where used for text; the bars carry a legend with the same colour).
pub const STATE_COLOURS: [(&str, RGBColor); 8] = [
    ("submitted", RGBColor(0x6b, 0x72, 0x80)),
    ("dispatching", RGBColor(0xb3, 0x59, 0x00)),
    ("assigned", RGBColor(0x0b, 0x5c, 0xad)),
    ("in_service", RGBColor(0x5b, 0x3d, 0xa8)),
    ("completed", RGBColor(0x1f, 0x7a, 0x4d)),
    ("confirmed", RGBColor(0x0f, 0x4d, 0x2e)),
    ("cancelled", RGBColor(0xa6, 0x1b, 0x1b)),
    ("unfulfilled", RGBColor(0x1a, 0x1a, 0x1a)),
];

/// `#rrggbb` of a state's colour, for the legend.
pub fn state_hex(state: &str) -> String {
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
        .x_label_area_size(36)
        .y_label_area_size(40)
        .build_cartesian_2d(0f64..n, 0f64..max)
        .map_err(|e| e.to_string())?;
    let step = (days.len() / 7).max(1);
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
        .label_style((FONT, 15))
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
    series: &[(&str, Vec<i64>)],
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
            .x_label_area_size(24)
            .y_label_area_size(170)
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
            .label_style((FONT, 15))
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

/// Most division names written on the map.
const MAP_LABELS: usize = 12;

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

/// The map of open orders and on-duty volunteers by division. Divisions
/// with neither are drawn as small grey dots so the area's shape shows.
///
/// # Errors
/// Drawing errors from plotters.
pub fn division_map(label: &str, dots: &[MapDot]) -> Result<String, String> {
    let (mut lon0, mut lon1, mut lat0, mut lat1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for d in dots {
        lon0 = lon0.min(d.longitude);
        lon1 = lon1.max(d.longitude);
        lat0 = lat0.min(d.latitude);
        lat1 = lat1.max(d.latitude);
    }
    if dots.is_empty() {
        (lon0, lon1, lat0, lat1) = (0.0, 1.0, 0.0, 1.0);
    }
    // Pad so edge dots and labels fit, and keep a minimum extent.
    let pad_lon = ((lon1 - lon0) * 0.08).max(0.1);
    let pad_lat = ((lat1 - lat0) * 0.08).max(0.1);
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
    // Only the busiest divisions get a name, so labels stay legible; the
    // table beside the map lists them all.
    let mut by_count: Vec<i64> = dots.iter().map(|d| d.open_orders + d.on_duty).collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    let label_floor = by_count.get(MAP_LABELS - 1).copied().unwrap_or(0).max(1);
    let mut labelled = 0;
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .build_cartesian_2d(lon0..lon1, lat0..lat1)
            .map_err(|e| e.to_string())?;
        let label_style = TextStyle::from((FONT, 16).into_font())
            .color(&GREY)
            .pos(Pos::new(HPos::Center, VPos::Top));
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
            if d.open_orders + d.on_duty < label_floor || labelled >= MAP_LABELS {
                continue;
            }
            labelled += 1;
            let (x, y) = chart.backend_coord(&at);
            root.draw(&Text::new(
                d.name.clone(),
                (x, y + r_orders.max(r_duty) + 2),
                label_style.clone(),
            ))
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
            &[("completed", vec![3, 1]), ("cancelled", vec![0, 2])],
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
            svg.matches(&state_hex("cancelled").to_uppercase()).count()
                + svg.matches(&state_hex("cancelled")).count(),
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
        let svg = division_map("Map & <stuff>", &dots).unwrap();
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
    fn nice_max_rounds_up_to_one_significant_digit() {
        assert!((nice_max(0.0) - 1.0).abs() < f64::EPSILON);
        assert!((nice_max(7.0) - 7.0).abs() < f64::EPSILON);
        assert!((nice_max(43.0) - 50.0).abs() < f64::EPSILON);
        assert!((nice_max(120.0) - 200.0).abs() < f64::EPSILON);
    }
}
