//! The end-to-end harnesses' output: the Markdown table with ratios, and the PNG chart.

use std::path::Path;

use anyhow::{Context, Result};

use crate::median;

pub fn spread(v: &[f64]) -> String {
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    format!("{:.2}–{:.2}", lo / 1e6, hi / 1e6)
}

/// The Markdown table of rates, and of vswitchd's ratios to each contender of `against`;
/// `cases` are the workloads' names.
pub fn report(cases: &[String], results: &[Vec<(String, Vec<f64>)>], against: &[&str]) -> String {
    let mut t =
        String::from("| workload | contender | Mpps (median) | spread over rounds |\n| --- | --- | --- | --- |\n");
    let heads: Vec<String> = against.iter().map(|a| format!(" vswitchd / {a} |")).collect();
    let mut ratios = format!("\n| workload |{}\n| --- |{}\n", heads.concat(), " --- |".repeat(against.len()));
    for (c, r) in cases.iter().zip(results) {
        let get = |name: &str| r.iter().find(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| median(v));
        for (name, v) in r.iter().filter(|(_, v)| !v.is_empty()) {
            t += &format!("| {} | {name} | {:.2} | {} |\n", c, median(v) / 1e6, spread(v));
        }
        let ratio = |other: &str| match (get("vswitchd"), get(other)) {
            (Some(a), Some(b)) if b > 0.0 => format!(" {:.2} |", a / b),
            _ => " - |".into(),
        };
        ratios += &format!("| {c} |{}\n", against.iter().map(|a| ratio(a)).collect::<String>());
    }
    t + &ratios
}

/// A PNG bar chart of the medians, grouped by workload.
pub fn chart(path: &Path, cases: &[String], results: &[Vec<(String, Vec<f64>)>]) -> Result<()> {
    use plotters::prelude::*;
    let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        .context("DejaVuSans.ttf (apt-get install fonts-dejavu-core)")?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| anyhow::anyhow!("bad font"))?;
    let names: Vec<String> = results.first().map(|r| r.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
    let max = results.iter().flatten().filter(|(_, v)| !v.is_empty()).map(|(_, v)| median(v)).fold(0.0, f64::max) / 1e6;
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let groups = cases.len();
    let per = names.len() + 1;
    let mut ch = ChartBuilder::on(&root)
        .caption("Packet rate, one forwarding core (Mpps, median of rounds)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..(groups * per) as f64, 0.0..max * 1.15)?;
    ch.configure_mesh().disable_x_mesh().x_labels(0).y_desc("Mpps").label_style(("sans-serif", 15)).draw()?;
    let colors = [
        RGBColor(214, 39, 40),
        RGBColor(120, 120, 120),
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
    ];
    for (k, name) in names.iter().enumerate() {
        let color = colors[k % colors.len()];
        let bars: Vec<(f64, f64)> = results
            .iter()
            .enumerate()
            .filter_map(|(g, r)| {
                r.get(k).filter(|(_, v)| !v.is_empty()).map(|(_, v)| ((g * per + k) as f64, median(v) / 1e6))
            })
            .collect();
        ch.draw_series(bars.iter().map(|&(x, y)| Rectangle::new([(x + 0.1, 0.0), (x + 0.9, y)], color.filled())))?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
        ch.draw_series(
            bars.iter().map(|&(x, y)| Text::new(format!("{y:.1}"), (x + 0.15, y + max * 0.05), ("sans-serif", 13))),
        )?;
    }
    // The workload names under each group of bars.
    for (g, c) in cases.iter().enumerate() {
        let (px, py) = ch.backend_coord(&((g * per) as f64 + (per as f64 - 1.0) / 2.0, 0.0));
        let label = c.replace(", 4K", "\n4K").replace(", 2M", "\n2M");
        for (i, line) in label.lines().enumerate() {
            let w = line.len() as i32 * 7 / 2;
            root.draw(&Text::new(line.to_string(), (px - w, py + 8 + 17 * i as i32), ("sans-serif", 14)))?;
        }
    }
    ch.configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
