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
