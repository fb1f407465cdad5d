//! The timeline of one move, and its chart: what QEMU, the two hosts, the two leaves and
//! the two streams did, on the host's clock, in ms since the source QEMU stopped the VM.

use std::path::Path;

/// One thing that happened (`until_ms`: it lasted, e.g. a stream's stall).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mark {
    pub lane: String,
    pub label: String,
    pub at_ms: f64,
    pub until_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timeline {
    /// The origin, µs since the epoch (the source QEMU's `STOP`).
    pub origin_us: u64,
    pub marks: Vec<Mark>,
}

impl Timeline {
    pub fn new(origin_us: u64) -> Timeline {
        Timeline { origin_us, marks: Vec::new() }
    }

    fn ms(&self, us: u64) -> f64 {
        (us as f64 - self.origin_us as f64) / 1000.0
    }

    /// Something at `us` (µs since the epoch).
    pub fn at(&mut self, lane: &str, label: &str, us: u64) {
        let at_ms = self.ms(us);
        self.marks.push(Mark { lane: lane.into(), label: label.into(), at_ms, until_ms: None });
    }

    /// Something from `from_us` to `to_us`.
    pub fn span(&mut self, lane: &str, label: &str, from_us: u64, to_us: u64) {
        let (at_ms, until_ms) = (self.ms(from_us), Some(self.ms(to_us)));
        self.marks.push(Mark { lane: lane.into(), label: label.into(), at_ms, until_ms });
    }

    /// The chart, as a PNG: one lane per source of events, top to bottom in the order
    /// they first appear, labels beside their marks.
    pub fn chart(&self, path: &Path, title: &str) -> Result<(), String> {
        use plotters::prelude::*;
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
            .map_err(|e| format!("DejaVuSans.ttf (apt-get install fonts-dejavu-core): {e}"))?;
        plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
            .map_err(|_| "bad font".to_string())?;
        let mut lanes: Vec<&str> = Vec::new();
        for m in &self.marks {
            if !lanes.contains(&m.lane.as_str()) {
                lanes.push(&m.lane);
            }
        }
        let lo = self.marks.iter().map(|m| m.at_ms).fold(0.0, f64::min) - 20.0;
        let hi = self.marks.iter().map(|m| m.until_ms.unwrap_or(m.at_ms)).fold(0.0, f64::max) + 60.0;
        let root = BitMapBackend::new(path, (1400, 120 + 70 * lanes.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut ch = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(230)
            .build_cartesian_2d(lo..hi, 0.0..lanes.len() as f64)
            .map_err(|e| err(&e))?;
        let names: Vec<String> = lanes.iter().map(|l| l.to_string()).collect();
        ch.configure_mesh()
            .disable_y_mesh()
            .y_labels(lanes.len() * 2 + 1)
            .y_label_formatter(&|y| {
                let i = *y - 0.5;
                let k = i.round();
                if (i - k).abs() < 0.01 && k >= 0.0 && (k as usize) < names.len() {
                    names[names.len() - 1 - k as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_desc("ms since the source QEMU stopped the VM (its STOP event)")
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| err(&e))?;
        let colors = [
            RGBColor(31, 119, 180),
            RGBColor(214, 39, 40),
            RGBColor(44, 160, 44),
            RGBColor(255, 127, 14),
            RGBColor(148, 103, 189),
            RGBColor(140, 86, 75),
        ];
        // Labels in one lane alternate above and below their marks, so close ones stay apart.
        let mut in_lane = vec![0usize; lanes.len()];
        for m in &self.marks {
            let k = lanes.iter().position(|l| *l == m.lane).expect("a lane");
            let y = (lanes.len() - 1 - k) as f64 + 0.5;
            let color = colors[k % colors.len()];
            let n = in_lane[k];
            in_lane[k] += 1;
            let dy = if n % 2 == 0 { 0.22 } else { -0.36 };
            match m.until_ms {
                Some(until) => {
                    ch.draw_series([Rectangle::new([(m.at_ms, y - 0.12), (until, y + 0.12)], color.mix(0.5).filled())])
                        .map_err(|e| err(&e))?;
                }
                None => {
                    ch.draw_series([Circle::new((m.at_ms, y), 5, color.filled())]).map_err(|e| err(&e))?;
                }
            }
            ch.draw_series([Text::new(m.label.clone(), (m.at_ms, y + dy), ("sans-serif", 13))]).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
}

/// A stream from a client (`name` at `ip`, on host `host`) to A (10.1.1.1) across a move
/// from host `from` to `to`: its stall as a span from the last echo before to the first
/// after, on the host's clock. The echoes that cross a leaf are captured there
/// (`captured[leaf]`): after the move, those to a client on the old host (they leave the new host for the
/// leaf); before it, those to a client on the new host (they left the old host). The other
/// end of the span is that one minus (or plus) the stall the client measured.
pub fn stream_span(
    t: &mut Timeline,
    captured: &[Vec<(u64, Vec<u8>)>],
    (name, ip, host): (&str, &str, usize),
    (from, to): (usize, usize),
    stall: f64,
    (stopped, resumed): (u64, u64),
) {
    let dst: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    let echoes = |frames: &Vec<(u64, Vec<u8>)>| -> Vec<u64> {
        frames
            .iter()
            .filter(|(_, f)| {
                f.len() >= 54
                    && f[12..14] == [8, 0]
                    && f[23] == 6
                    && f[26..30] == [10, 1, 1, 1]
                    && f[30..34] == dst[..]
                    && f[34..36] == 5001u16.to_be_bytes()
                    && {
                        let total = u16::from_be_bytes([f[16], f[17]]) as usize;
                        total > 20 + ((f[46] >> 4) as usize) * 4
                    }
            })
            .map(|(at, _)| *at)
            .collect()
    };
    let stall_us = (stall * 1000.0) as u64;
    let lane = format!("{} → A", name.to_uppercase());
    if host == from {
        if let Some(first) = echoes(&captured[to]).into_iter().find(|at| *at >= resumed) {
            t.span(&lane, &format!("stall {stall:.0} ms"), first.saturating_sub(stall_us), first);
        }
    } else if let Some(last) = echoes(&captured[from]).into_iter().rfind(|at| *at <= stopped + 20_000) {
        t.span(&lane, &format!("stall {stall:.0} ms"), last, last + stall_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_is_charted_as_a_png_with_every_mark_relative_to_its_origin() {
        let mut t = Timeline::new(1_000_000);
        t.at("QEMU", "source STOP", 1_000_000);
        t.at("QEMU", "destination RESUME", 1_080_000);
        t.at("host 2 (destination)", "A's link up", 1_083_000);
        t.span("B → A", "stall 120 ms", 990_000, 1_110_000);
        assert_eq!(t.marks[1].at_ms, 80.0);
        assert_eq!((t.marks[3].at_ms, t.marks[3].until_ms), (-10.0, Some(110.0)));
        let path = std::env::temp_dir().join(format!("roam-timeline-{}.png", std::process::id()));
        t.chart(&path, "a test move").expect("charting");
        let png = std::fs::read(&path).expect("the chart");
        if std::env::var_os("ROAM_KEEP_TESTDIR").is_none() {
            let _ = std::fs::remove_file(&path);
        }
        assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "{} bytes", png.len());
    }
}
