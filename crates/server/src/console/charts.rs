//! Charts drawn on the server as SVG: columns over time (series stacked) and horizontal
//! bars (the top keys and models). No script draws them, so they obey the console's
//! Content-Security-Policy; geometry is in SVG attributes and colours and fonts in the
//! stylesheet (the policy allows no inline style). Each drawing scales with its `viewBox`,
//! so one drawing fits a phone and a desktop, and carries its numbers as text: a `<title>`
//! and `<desc>` for screen readers, and a table of every value under it.
//!
//! Labels are user text (model names, key descriptions): maud escapes them like any value.

use maud::{html, Markup};

use super::i18n::Language;
use super::layout::records_table;

/// Width of every drawing in SVG units; the stylesheet scales it to its box (and draws the
/// text larger on a phone, where the drawing is shrunk to about 340 px: the layout leaves
/// room for text of 13 units).
const WIDTH: f64 = 360.0;
/// A column chart: its height and the margins around the plot (the unit above, axis
/// numbers on the left, room on the right for half the last column's label, the time
/// labels and the axis name below).
const COLUMN_HEIGHT: f64 = 190.0;
const PLOT_LEFT: f64 = 42.0;
const PLOT_RIGHT: f64 = 16.0;
const PLOT_TOP: f64 = 24.0;
const PLOT_BOTTOM: f64 = 36.0;
/// Share of its slot a column fills.
const COLUMN_FILL: f64 = 0.72;
/// At most this many time labels under a column chart, so that they never overlap; the
/// last column (the current period) always has one.
const MOST_TIME_LABELS: usize = 7;
/// A bar chart: the height of one bar's row (label above the bar), and its bar.
const BAR_ROW: f64 = 32.0;
const BAR_THICKNESS: f64 = 10.0;
/// Longest label drawn above a bar; longer ones are cut (the table has them whole). With
/// its value beside it, this fills the drawing's width in the phone's larger text.
const LONGEST_BAR_LABEL: usize = 40;

/// What a chart is called and what it counts.
pub struct ChartText<'a> {
    /// Unique on the page: the ids of the chart's heading, title and description start with it.
    pub id: &'a str,
    pub title: &'a str,
    /// What the values count, plural and lower case ("tokens", "requests").
    pub unit: &'a str,
    /// The language of the chart's own words (its description, its table's caption).
    pub language: Language,
}

/// One period of a chart over time.
pub struct Column {
    /// Under the axis: short ("14:00", "08-01").
    pub label: String,
    /// In the table and the tooltips: whole ("2026-08-01 14:00 UTC").
    pub full_label: String,
}

/// One series of a column chart: a value per column, stacked on the series before it.
pub struct Series<'a> {
    pub name: &'a str,
    /// The stylesheet class that colours it (and its swatch in the legend).
    pub class: &'a str,
    pub values: Vec<i64>,
}

/// One bar of a bar chart; `link` makes its label in the table a link.
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub link: Option<String>,
}

/// `1234567` as `1,234,567`.
pub fn grouped(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        text.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// An axis number, short: `1.5k`, `2M`, `0.5`.
fn compact(value: f64) -> String {
    let (scaled, suffix) = match value {
        value if value >= 1e9 => (value / 1e9, "G"),
        value if value >= 1e6 => (value / 1e6, "M"),
        value if value >= 1e3 => (value / 1e3, "k"),
        value => (value, ""),
    };
    let text = format!("{scaled:.1}");
    format!("{}{suffix}", text.strip_suffix(".0").unwrap_or(&text))
}

/// The top of a value axis: the smallest 1, 2 or 5 times a power of ten that holds `largest`.
fn axis_top(largest: i64) -> i64 {
    let mut magnitude: i64 = 1;
    while magnitude.saturating_mul(10) <= largest && magnitude < i64::MAX / 10 {
        magnitude *= 10;
    }
    [1, 2, 5, 10].into_iter().map(|step| magnitude.saturating_mul(step)).find(|top| *top >= largest).unwrap_or(i64::MAX)
}

/// `part` of `whole` as a length of `span` units (`whole` is never below 1).
fn scaled(part: i64, whole: i64, span: f64) -> f64 {
    part as f64 / whole.max(1) as f64 * span
}

/// An SVG coordinate, to a tenth of a unit.
fn at(value: f64) -> String {
    format!("{value:.1}")
}

/// `label` cut to `longest` characters, with an ellipsis when it was longer.
fn shortened(label: &str, longest: usize) -> String {
    if label.chars().count() <= longest {
        return label.to_string();
    }
    let kept: String = label.chars().take(longest - 1).collect();
    format!("{kept}…")
}

/// "Tokens" for "tokens".
fn capitalized(text: &str) -> String {
    let mut characters = text.chars();
    characters.next().map(|first| first.to_uppercase().chain(characters).collect()).unwrap_or_default()
}

/// The frame of every chart: a panel with a heading, the drawing (`role="img"`, named by its
/// title and described by `description`), what comes after it (a legend) and the table.
fn chart_panel(text: &ChartText, view_height: f64, description: &str, drawing: Markup, after: Markup, table: Markup) -> Markup {
    let id = text.id;
    html! {
        section.panel.chart aria-labelledby={ (id) "-heading" } {
            h2 id={ (id) "-heading" } { (text.title) }
            svg.chart-drawing xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (at(view_height)) } role="img" aria-labelledby={ (id) "-title " (id) "-desc" } {
                title id={ (id) "-title" } { (text.title) }
                desc id={ (id) "-desc" } { (description) }
                (drawing)
            }
            (after)
            details.chart-numbers {
                summary { (text.language.text("chart.numbers")) }
                (table)
            }
        }
    }
}

/// Columns over time, `series` stacked in each (every series has a value per column), with
/// a value axis, a time label under some columns, a legend and the table of every value.
pub fn column_chart(text: &ChartText, column_header: &str, columns: &[Column], series: &[Series]) -> Markup {
    let plot_width = WIDTH - PLOT_LEFT - PLOT_RIGHT;
    let plot_height = COLUMN_HEIGHT - PLOT_TOP - PLOT_BOTTOM;
    let baseline = PLOT_TOP + plot_height;
    let stack = |index: usize| series.iter().map(|one| one.values[index]).fold(0_i64, i64::saturating_add);
    let top = axis_top((0..columns.len()).map(stack).max().unwrap_or(0));
    let slot = plot_width / columns.len().max(1) as f64;
    let column_width = slot * COLUMN_FILL;
    let label_every = columns.len().div_ceil(MOST_TIME_LABELS).max(1);
    let ticks = [0.0, top as f64 / 2.0, top as f64];
    let language = text.language;
    let totals: Vec<String> = series
        .iter()
        .map(|one| format!("{} {} {}", one.name, grouped(one.values.iter().copied().fold(0, i64::saturating_add)), text.unit))
        .collect();
    let description = match (columns.first(), columns.last()) {
        (Some(first), Some(last)) => language
            .fill("chart.over_time", &[&text.title, &first.full_label, &last.full_label, &totals.join(language.text("chart.separator"))]),
        _ => language.fill("chart.nothing", &[&text.title]),
    };
    let drawing = html! {
        text.axis-unit x="0" y="10" { (text.unit) }
        @for tick in ticks {
            @let y = baseline - tick / top as f64 * plot_height;
            line.grid x1=(at(PLOT_LEFT)) x2=(at(WIDTH - PLOT_RIGHT)) y1=(at(y)) y2=(at(y)) {}
            text.axis-number x=(at(PLOT_LEFT - 4.0)) y=(at(y + 4.0)) text-anchor="end" { (compact(tick)) }
        }
        @for (index, column) in columns.iter().enumerate() {
            @let x = PLOT_LEFT + index as f64 * slot + (slot - column_width) / 2.0;
            @let mut bottom = baseline;
            @for one in series {
                @let value = one.values[index];
                @if value > 0 {
                    @let height = scaled(value, top, plot_height);
                    @let y = { bottom -= height; bottom };
                    rect class=(one.class) x=(at(x)) y=(at(y)) width=(at(column_width)) height=(at(height)) {
                        title { (column.full_label) ": " (one.name) " " (grouped(value)) " " (text.unit) }
                    }
                }
            }
            @if (columns.len() - 1 - index).is_multiple_of(label_every) {
                text.axis-label x=(at(x + column_width / 2.0)) y=(at(baseline + 14.0)) text-anchor="middle" { (column.label) }
            }
        }
        line.axis x1=(at(PLOT_LEFT)) x2=(at(WIDTH - PLOT_RIGHT)) y1=(at(baseline)) y2=(at(baseline)) {}
        text.axis-name x=(at(PLOT_LEFT + plot_width / 2.0)) y=(at(COLUMN_HEIGHT - 4.0)) text-anchor="middle" { (column_header) }
    };
    let legend = html! {
        ul.legend {
            @for one in series {
                li { span class={ "swatch " (one.class) } aria-hidden="true" {} (one.name) }
            }
        }
    };
    let mut headers = vec![column_header];
    headers.extend(series.iter().map(|one| one.name));
    let table = records_table(
        "chart-table",
        &language.fill("chart.caption", &[&text.title, &text.unit]),
        &headers,
        html! {
            @for (index, column) in columns.iter().enumerate() {
                tr {
                    td data-label=(column_header) { (column.full_label) }
                    @for one in series {
                        td.number data-label=(one.name) { (grouped(one.values[index])) }
                    }
                }
            }
        },
    );
    chart_panel(text, COLUMN_HEIGHT, &description, drawing, legend, table)
}

/// Horizontal bars, largest first as given, each under its label with its value beside
/// it, and the table of every value (`label_header` heads the labels' column).
pub fn bar_chart(text: &ChartText, label_header: &str, bars: &[Bar]) -> Markup {
    let largest = bars.iter().map(|bar| bar.value).max().unwrap_or(0);
    let height = bars.len().max(1) as f64 * BAR_ROW + 4.0;
    let language = text.language;
    let listed: Vec<String> = bars.iter().map(|bar| format!("{} {}", bar.label, grouped(bar.value))).collect();
    let listed =
        if listed.is_empty() { language.text("chart.none").to_string() } else { listed.join(language.text("chart.bar_separator")) };
    let description = language.fill("chart.bars", &[&text.title, &text.unit, &listed]);
    let drawing = html! {
        @for (index, bar) in bars.iter().enumerate() {
            @let row = index as f64 * BAR_ROW;
            text.bar-label x="0" y=(at(row + 13.0)) {
                (shortened(&bar.label, LONGEST_BAR_LABEL))
                title { (bar.label) }
            }
            text.bar-value x=(at(WIDTH)) y=(at(row + 13.0)) text-anchor="end" { (grouped(bar.value)) }
            rect.bar-track x="0" y=(at(row + 18.0)) width=(at(WIDTH)) height=(at(BAR_THICKNESS)) {}
            @if bar.value > 0 {
                rect.bar x="0" y=(at(row + 18.0)) width=(at(scaled(bar.value, largest, WIDTH))) height=(at(BAR_THICKNESS)) {
                    title { (bar.label) ": " (grouped(bar.value)) " " (text.unit) }
                }
            }
        }
    };
    let value_header = capitalized(text.unit);
    let table = records_table(
        "chart-table",
        &language.fill("chart.caption", &[&text.title, &text.unit]),
        &[label_header, &value_header],
        html! {
            @for bar in bars {
                tr {
                    td data-label=(label_header) {
                        @match &bar.link { Some(link) => { a href=(link) { (bar.label) } } None => { (bar.label) } }
                    }
                    td.number data-label=(value_header) { (grouped(bar.value)) }
                }
            }
        },
    );
    chart_panel(text, height, &description, drawing, html! {}, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of attribute `name` of every `<tag class="class" ...>` in `svg`, in order.
    fn attribute_values(svg: &str, tag_and_class: &str, name: &str) -> Vec<f64> {
        svg.split(tag_and_class)
            .skip(1)
            .map(|rest| {
                let element = &rest[..rest.find('>').unwrap()];
                let start = element.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                element[start..].split('"').next().unwrap().parse().unwrap()
            })
            .collect()
    }

    fn text(id: &str) -> ChartText<'_> {
        ChartText { id, title: "Tokens over time", unit: "tokens", language: Language::English }
    }

    fn columns(count: usize) -> Vec<Column> {
        (0..count).map(|index| Column { label: format!("{index:02}:00"), full_label: format!("2026-08-01 {index:02}:00 UTC") }).collect()
    }

    #[test]
    fn numbers_are_grouped_and_axis_numbers_short() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(-12_345), "-12,345");
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(2_500.0), "2.5k");
        assert_eq!(compact(2_000_000.0), "2M");
        assert_eq!(axis_top(0), 1);
        assert_eq!(axis_top(1), 1);
        assert_eq!(axis_top(3), 5);
        assert_eq!(axis_top(7), 10);
        assert_eq!(axis_top(120), 200);
        assert_eq!(axis_top(i64::MAX), i64::MAX);
    }

    #[test]
    fn columns_are_as_tall_as_their_values_and_stack() {
        let series = [
            Series { name: "Input", class: "series-input", values: vec![100, 0, 40] },
            Series { name: "Output", class: "series-output", values: vec![60, 0, 20] },
        ];
        let svg = column_chart(&text("tokens"), "Hour (UTC)", &columns(3), &series).into_string();
        // The axis tops at 200 (the tallest stack is 160) and the plot is 138 units high.
        let plot_height = COLUMN_HEIGHT - PLOT_TOP - PLOT_BOTTOM;
        let inputs = attribute_values(&svg, "<rect class=\"series-input\"", "height");
        let outputs = attribute_values(&svg, "<rect class=\"series-output\"", "height");
        assert_eq!(inputs.len(), 2, "a zero draws no column");
        for (drawn, value) in inputs.iter().zip([100.0, 40.0]).chain(outputs.iter().zip([60.0, 20.0])) {
            assert!((drawn - value / 200.0 * plot_height).abs() < 0.06, "{drawn} for {value}");
        }
        // Output sits on input: its bottom is input's top.
        let input_y = attribute_values(&svg, "<rect class=\"series-input\"", "y");
        let output_y = attribute_values(&svg, "<rect class=\"series-output\"", "y");
        assert!((output_y[0] + outputs[0] - input_y[0]).abs() < 0.11);
        assert!(svg.contains(r#"viewBox="0 0 360 190.0""#), "{svg}");
        assert!(svg.contains(r#"role="img" aria-labelledby="tokens-title tokens-desc""#));
        assert!(svg.contains("In all: Input 140 tokens, Output 80 tokens."));
        // Every value is in the table, with its period.
        assert!(
            svg.contains(r#"<td data-label="Hour (UTC)">2026-08-01 02:00 UTC</td><td class="number" data-label="Input">40</td>"#),
            "{svg}"
        );
        assert!(!svg.contains("style="));
    }

    #[test]
    fn time_labels_are_thinned_to_fit() {
        let series = [Series { name: "Requests", class: "series-requests", values: vec![1; 30] }];
        let svg = column_chart(&text("requests"), "Day (UTC)", &columns(30), &series).into_string();
        assert_eq!(svg.matches("class=\"axis-label\"").count(), 6);
        let svg = column_chart(&text("requests"), "Day (UTC)", &columns(7), &[Series { values: vec![1; 7], ..series[0] }]).into_string();
        assert_eq!(svg.matches("class=\"axis-label\"").count(), 7);
    }

    #[test]
    fn bars_are_as_long_as_their_values() {
        let bars = [
            Bar { label: "qwen-plus".into(), value: 2_000, link: None },
            Bar { label: "demo-echo".into(), value: 500, link: Some("/console/keys/7?region=ap-southeast-1".into()) },
            Bar { label: "idle".into(), value: 0, link: None },
        ];
        let svg =
            bar_chart(&ChartText { id: "top-models", title: "Top models", unit: "tokens", language: Language::English }, "Model", &bars)
                .into_string();
        let widths = attribute_values(&svg, "<rect class=\"bar\"", "width");
        assert_eq!(widths, [WIDTH, WIDTH / 4.0]);
        assert_eq!(svg.matches("class=\"bar-track\"").count(), 3);
        assert!(svg.contains(r#"<a href="/console/keys/7?region=ap-southeast-1">demo-echo</a>"#));
        assert!(svg.contains("Top models, in tokens: qwen-plus 2,000; demo-echo 500; idle 0."));
    }

    #[test]
    fn labels_are_escaped_and_long_ones_cut() {
        let hostile = "<script>alert(1)</script>&\"model\"-with-a-very-long-name-indeed";
        let bars = [Bar { label: hostile.into(), value: 1, link: None }];
        let svg =
            bar_chart(&ChartText { id: "top-models", title: "Top models", unit: "tokens", language: Language::English }, "Model", &bars)
                .into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;model&quot;-with-a-very-long-name-indeed</td>"));
        // Drawn cut to its first characters, whole in its tooltip.
        let drawn = maud::html! { (shortened(hostile, LONGEST_BAR_LABEL)) }.into_string();
        assert!(drawn.ends_with('…') && svg.contains(&format!("{drawn}<title>")), "{svg}");
        assert_eq!(shortened(hostile, LONGEST_BAR_LABEL).chars().count(), LONGEST_BAR_LABEL);

        let series = [Series { name: "<b>in</b>", class: "series-input", values: vec![3] }];
        let columns = [Column { label: "<i>".into(), full_label: "<i>day</i>".into() }];
        let svg = column_chart(&text("escaped"), "Day", &columns, &series).into_string();
        assert!(!svg.contains("<b>") && !svg.contains("<i>"), "{svg}");
        assert!(svg.contains("&lt;i&gt;day&lt;/i&gt;: &lt;b&gt;in&lt;/b&gt; 3 tokens"));
    }
}
