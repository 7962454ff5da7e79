//! Charts as SVG drawn on the server: no script, no third party. Each chart has a
//! `<title>` and a `<desc>` (named by `aria-labelledby`), and the page puts a data
//! table with the same figures beside it, which is what a screen reader reads and
//! what prints exactly.

use maud::{Markup, html};

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// A "nice" upper bound for an axis and its step (1, 2 or 5 × 10^n).
fn nice_max(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (4.0, 1.0);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let step = if step < 1.0 { 1.0 } else { step };
    ((max / step).ceil() * step, step)
}

fn fmt(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// Monthly bars: this year beside the year before, month by month.
pub fn monthly_bars(
    id: &str,
    title: &str,
    desc: &str,
    labels: &[String; 12],
    this: &[Option<f64>; 12],
    last: &[Option<f64>; 12],
) -> Markup {
    let max = this
        .iter()
        .chain(last.iter())
        .flatten()
        .fold(0.0f64, |a, b| a.max(*b));
    let (top, step) = nice_max(max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / 12.0;
    let bar = slot * 0.36;
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let ticks: Vec<f64> = (0..=((top / step).round() as usize))
        .map(|i| i as f64 * step)
        .collect();
    html! {
        svg.chart viewBox=(format!("0 0 {W} {H}")) role="img"
            aria-labelledby=(format!("{id}-title {id}-desc")) preserveAspectRatio="xMidYMid meet" {
            title id=(format!("{id}-title")) { (title) }
            desc id=(format!("{id}-desc")) { (desc) }
            @for t in &ticks {
                line.grid x1=(LEFT) x2=(W - RIGHT) y1=(y(*t)) y2=(y(*t)) {}
                text.axis x=(LEFT - 6.0) y=(y(*t) + 4.0) text-anchor="end" { (fmt(*t)) }
            }
            @for i in 0..12 {
                @let x0 = LEFT + slot * i as f64 + slot * 0.12;
                @if let Some(v) = last[i] {
                    rect.last x=(x0) y=(y(v)) width=(bar) height=((TOP + plot_h - y(v)).max(0.0)) {}
                }
                @if let Some(v) = this[i] {
                    rect.this x=(x0 + bar + 2.0) y=(y(v)) width=(bar) height=((TOP + plot_h - y(v)).max(0.0)) {}
                }
                text.axis x=(LEFT + slot * i as f64 + slot / 2.0) y=(H - BOTTOM + 18.0) text-anchor="middle" { (labels[i]) }
            }
            line.base x1=(LEFT) x2=(W - RIGHT) y1=(TOP + plot_h) y2=(TOP + plot_h) {}
        }
        p.legend aria-hidden="true" {
            span.swatch.this {} "今年度　"
            span.swatch.last {} "前年度"
        }
    }
}

/// Horizontal bars for a sequence of stages (a funnel, a cohort): this year's
/// value beside the year before's for each stage.
pub fn stage_bars(
    id: &str,
    title: &str,
    desc: &str,
    stages: &[(String, f64, Option<f64>)],
) -> Markup {
    let max = stages
        .iter()
        .flat_map(|(_, a, b)| [Some(*a), *b])
        .flatten()
        .fold(0.0f64, f64::max);
    let (top, _) = nice_max(max);
    let label_w = 200.0;
    let row_h = 44.0;
    let h = row_h * stages.len() as f64 + 10.0;
    let plot_w = W - label_w - 80.0;
    let len = |v: f64| if top > 0.0 { v / top * plot_w } else { 0.0 };
    html! {
        svg.chart viewBox=(format!("0 0 {W} {h}")) role="img"
            aria-labelledby=(format!("{id}-title {id}-desc")) preserveAspectRatio="xMidYMid meet" {
            title id=(format!("{id}-title")) { (title) }
            desc id=(format!("{id}-desc")) { (desc) }
            @for (i, (label, this, last)) in stages.iter().enumerate() {
                @let y0 = 6.0 + row_h * i as f64;
                text.axis x=(label_w - 8.0) y=(y0 + 22.0) text-anchor="end" { (label) }
                @if let Some(l) = last {
                    rect.last x=(label_w) y=(y0 + 2.0) width=(len(*l)) height="16" {}
                    text.value x=(label_w + len(*l) + 6.0) y=(y0 + 15.0) { "前年度 " (fmt(*l)) }
                }
                rect.this x=(label_w) y=(y0 + 20.0) width=(len(*this)) height="18" {}
                text.value x=(label_w + len(*this) + 6.0) y=(y0 + 34.0) { (fmt(*this)) }
            }
        }
        p.legend aria-hidden="true" {
            span.swatch.this {} "今年度　"
            span.swatch.last {} "前年度"
        }
    }
}

/// The charts' styles (print keeps the colours).
pub const CSS: &str = "
svg.chart{width:100%;height:auto;max-width:52rem;display:block;background:#fff;border:1px solid #c9c9c5;border-radius:4px;margin:0 0 .25rem}
svg.chart .grid{stroke:#e4e4e0;stroke-width:1}
svg.chart .base{stroke:#4a4a4a;stroke-width:1}
svg.chart .axis{font-size:12px;fill:#4a4a4a}
svg.chart .value{font-size:12px;fill:#1a1a1a}
svg.chart .this{fill:#00387a}
svg.chart .last{fill:#9db3d1}
.legend{font-size:.85rem;margin:0 0 1rem}
.swatch{display:inline-block;width:.9rem;height:.9rem;vertical-align:middle;margin-right:.3rem;border:1px solid #4a4a4a}
.swatch.this{background:#00387a}
.swatch.last{background:#9db3d1}
table.kpi td,table.kpi th{white-space:nowrap;text-align:right}
table.kpi th[scope=row]{text-align:left;white-space:normal;min-width:12rem}
table.kpi .ly{display:block;font-size:.75rem;color:#4a4a4a}
.kpi-summary{display:grid;grid-template-columns:repeat(auto-fit,minmax(13rem,1fr));gap:.75rem;margin:0 0 1.5rem;padding:0;list-style:none}
.kpi-summary li{background:#fff;border:1px solid #c9c9c5;border-radius:4px;padding:.75rem}
.kpi-summary .big{display:block;font-size:1.6rem;font-weight:700;color:#00387a}
.fy-form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin:0 0 1rem}
.fy-form .field{margin:0}
.fy-form select{width:auto}
@media print{svg.chart,.swatch{-webkit-print-color-adjust:exact;print-color-adjust:exact}section.kpi-group{break-inside:avoid-page}.fy-form{display:none}}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_max(0.0), (4.0, 1.0));
        assert_eq!(nice_max(7.0), (8.0, 2.0));
        assert_eq!(nice_max(130.0), (150.0, 50.0));
        assert_eq!(nice_max(3.0), (3.0, 1.0));
    }

    #[test]
    fn a_chart_is_an_image_with_a_title_and_a_description() {
        let labels: [String; 12] = std::array::from_fn(|i| format!("{}月", (i + 3) % 12 + 1));
        let svg = monthly_bars(
            "c1",
            "新規相談 <b>",
            "説明",
            &labels,
            &[Some(3.0); 12],
            &[None; 12],
        )
        .into_string();
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("aria-labelledby=\"c1-title c1-desc\""));
        assert!(svg.contains("<title id=\"c1-title\">新規相談 &lt;b&gt;</title>"));
        assert_eq!(svg.matches("class=\"this\"").count(), 12);
    }
}
