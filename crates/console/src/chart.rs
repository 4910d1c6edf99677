//! Charts as SVG drawn on the server: horizontal bars (counts by name) and lines (values
//! over time). Each chart has a title for assistive technology and its numbers in a table
//! under it; colours come from one fixed palette, so a series keeps its colour.

use maud::{Markup, html};

const PALETTE: [&str; 8] = [
    "#0b5cad", "#d4721a", "#2e7d32", "#8e24aa", "#c62828", "#00838f", "#6d4c41", "#546e7a",
];

fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Counts by name, largest first, as horizontal bars.
pub fn bars(id: &str, title: &str, items: &[(String, u64)]) -> Markup {
    const LABEL: f64 = 300.0;
    const BAR: f64 = 380.0;
    const ROW: f64 = 24.0;
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let height = ROW * items.len().max(1) as f64 + 8.0;
    html! {
        figure.chart id=(id) {
            figcaption { (title) }
            @if items.is_empty() {
                p.hint { "Nothing in this period." }
            } @else {
                svg role="img" aria-labelledby={ (id) "-t" } width=(LABEL + BAR + 90.0) height=(height)
                    viewBox={ "0 0 " (LABEL + BAR + 90.0) " " (height) } xmlns="http://www.w3.org/2000/svg" {
                    title id={ (id) "-t" } { (title) }
                    @for (i, (name, n)) in items.iter().enumerate() {
                        @let y = 4.0 + ROW * i as f64;
                        @let w = (*n as f64 / max * BAR).max(1.0);
                        text x=(LABEL - 8.0) y=(y + 15.0) text-anchor="end" font-size="12" fill="#1d232a" { (name) }
                        rect.bar x=(LABEL) y=(y + 3.0) width=(format!("{w:.1}")) height=(ROW - 8.0) fill=(colour(0)) data-name=(name) data-value=(n) {}
                        text x=(LABEL + w + 6.0) y=(y + 15.0) font-size="12" fill="#1d232a" { (n) }
                    }
                }
                details { summary { "Numbers" }
                    table { tbody { @for (name, n) in items { tr { th scope="row" { (name) } td { (n) } } } } }
                }
            }
        }
    }
}

/// Series of values over time, one line each, between `from` and `to` (epoch seconds).
pub fn lines(
    id: &str,
    title: &str,
    series: &[(String, Vec<(i64, f64)>)],
    (from, to): (i64, i64),
    unit: fn(f64) -> String,
) -> Markup {
    const W: f64 = 760.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 80.0;
    const BOTTOM: f64 = 28.0;
    const TOP: f64 = 10.0;
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let span = (to - from).max(1) as f64;
    let x = |t: i64| LEFT + (t - from) as f64 / span * (W - LEFT - 10.0);
    let y = |v: f64| TOP + (1.0 - v / max) * (H - TOP - BOTTOM);
    let date = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|d| {
                d.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]"
                ))
                .ok()
            })
            .unwrap_or_default()
    };
    html! {
        figure.chart id=(id) {
            figcaption { (title) }
            @if series.iter().all(|(_, p)| p.is_empty()) {
                p.hint { "Nothing in this period." }
            } @else {
                svg role="img" aria-labelledby={ (id) "-t" } width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } xmlns="http://www.w3.org/2000/svg" {
                    title id={ (id) "-t" } { (title) }
                    line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) stroke="#8a949e" {}
                    line x1=(LEFT) y1=(H - BOTTOM) x2=(W - 10.0) y2=(H - BOTTOM) stroke="#8a949e" {}
                    @for frac in [0.0, 0.5, 1.0] {
                        text x=(LEFT - 6.0) y=(y(max * frac) + 4.0) text-anchor="end" font-size="11" fill="#5b6670" { (unit(max * frac)) }
                    }
                    text x=(LEFT) y=(H - 8.0) font-size="11" fill="#5b6670" { (date(from)) }
                    text x=(W - 10.0) y=(H - 8.0) text-anchor="end" font-size="11" fill="#5b6670" { (date(to)) }
                    @for (i, (name, points)) in series.iter().enumerate() {
                        @let path = points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect::<Vec<_>>().join(" ");
                        polyline.series points=(path) fill="none" stroke=(colour(i)) stroke-width="2" data-name=(name) {}
                        @for (t, v) in points.iter().take(400) {
                            circle cx=(format!("{:.1}", x(*t))) cy=(format!("{:.1}", y(*v))) r="2.5" fill=(colour(i)) { title { (name) ": " (unit(*v)) " at " (date(*t)) } }
                        }
                    }
                }
                ul.legend {
                    @for (i, (name, points)) in series.iter().enumerate() {
                        li {
                            svg width="12" height="12" aria-hidden="true" { rect width="12" height="12" fill=(colour(i)) {} }
                            " " (name) ": " (points.last().map(|(_, v)| unit(*v)).unwrap_or_default())
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_as_long_as_their_counts() {
        let svg = bars("b", "t", &[("a".into(), 10), ("b".into(), 5)]).into_string();
        assert!(
            svg.contains(
                r##"width="380.0" height="16" fill="#0b5cad" data-name="a" data-value="10""##
            ),
            "{svg}"
        );
        assert!(
            svg.contains(
                r##"width="190.0" height="16" fill="#0b5cad" data-name="b" data-value="5""##
            ),
            "{svg}"
        );
    }

    #[test]
    fn lines_span_the_period() {
        let svg = lines(
            "l",
            "t",
            &[("s".into(), vec![(0, 0.0), (100, 10.0)])],
            (0, 100),
            |v| format!("{v}"),
        )
        .into_string();
        assert!(svg.contains(r#"points="80.0,212.0 750.0,10.0""#), "{svg}");
    }
}
