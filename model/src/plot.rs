//! The model's summary as a PNG: what Roam's design costs beside what it saves, on a log
//! scale (means over the moves and over the leaves).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use roam_model::{LeafTables, MoveCost};

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// A count as people write it: 48, 4 988, 999 999 (one decimal below 100).
fn count(v: f64) -> String {
    if v < 100.0 && v.fract().abs() > 0.05 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v.round());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

pub fn chart(path: &Path, moves: &[MoveCost], tables: &[LeafTables], vms: usize) -> Result<()> {
    use plotters::prelude::*;
    let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        .context("DejaVuSans.ttf (apt-get install fonts-dejavu-core)")?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| anyhow!("bad font"))?;
    let m = |f: &dyn Fn(&MoveCost) -> u64| mean(moves.iter().map(|x| f(x) as f64));
    let t = |f: &dyn Fn(&LeafTables) -> usize| mean(tables.iter().map(|x| f(x) as f64));
    // (label, Roam, the alternative, the alternative's name)
    let rows = [
        ("ARP/ND frames per move", m(&|x| x.fixup_frames), m(&|x| x.flood_frames), "flood"),
        ("host routes in a leaf's FIB", t(&|x| x.fib_on_demand), t(&|x| x.fib_all), "every route"),
        (
            "leaf's fabric neighbour entries",
            t(&|x| x.neighbours_fabric_on_demand),
            t(&|x| x.neighbours_fabric_all),
            "every route",
        ),
    ];
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = rows.iter().map(|r| r.2.max(r.1)).fold(10.0, f64::max) * 300.0;
    let mut ch = ChartBuilder::on(&root)
        .caption(
            format!(
                "Fabric model: {} leaves, {} VMs, {} moves (means)",
                count(tables.len() as f64),
                count(vms as f64),
                count(moves.len() as f64)
            ),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(260)
        .build_cartesian_2d((0.5f64..top).log_scale(), 0.0..rows.len() as f64)?;
    ch.configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let k = (*y - 0.5).round();
            if (*y - 0.5 - k).abs() < 0.01 && k >= 0.0 && (k as usize) < rows.len() {
                rows[rows.len() - 1 - k as usize].0.to_string()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|x| count(*x))
        .x_desc("count (log scale)")
        .label_style(("sans-serif", 15))
        .draw()?;
    let (roam, other) = (RGBColor(31, 119, 180), RGBColor(160, 160, 160));
    for (k, (_, ours, theirs, name)) in rows.iter().enumerate() {
        let y = (rows.len() - 1 - k) as f64;
        for (v, c, lo, label) in
            [(*ours, roam, y + 0.52, "Roam".to_string()), (*theirs, other, y + 0.12, name.to_string())]
        {
            let v = v.max(0.5);
            ch.draw_series([Rectangle::new([(0.5, lo), (v, lo + 0.36)], c.filled())])?;
            ch.draw_series([Text::new(format!("{label}: {}", count(v)), (v * 1.1, lo + 0.26), ("sans-serif", 14))])?;
        }
    }
    root.present()?;
    Ok(())
}
