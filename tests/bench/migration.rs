//! roam-migration-bench (run by `scripts/migration-bench`; not in CI): many live migrations
//! of VM-A between two hosts under two TCP streams (the live-migration scenario), for each
//! of: leafd's fix-ups on and off, and the source port removed at once, 2 s later, or
//! never. It writes every move (JSON lines), a Markdown table of stall − QEMU downtime
//! (median, p90, worst) per combination, and a timeline chart (PNG) of one move.
//!
//!   roam-migration-bench [--moves N] [--out DIR]

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use roam_tests::migration::{Move, Removal, Scenario};

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut moves, mut out) = (10usize, PathBuf::from("target/migration-bench"));
    while let Some(a) = args.next() {
        match a.as_str() {
            "--moves" => moves = args.next().and_then(|v| v.parse().ok()).expect("--moves N"),
            "--out" => out = args.next().map(PathBuf::from).expect("--out DIR"),
            _ => {
                eprintln!("usage: roam-migration-bench [--moves N] [--out DIR]");
                std::process::exit(2);
            }
        }
    }
    std::fs::create_dir_all(&out).expect("creating the output directory");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let removals = [Removal::AtOnce, Removal::After(Duration::from_secs(2)), Removal::Never];
    let mut log = std::fs::File::create(out.join("moves.jsonl")).expect("moves.jsonl");
    let mut rows = String::new();
    let mut charted = false;
    for fixups in [true, false] {
        let mut s = Scenario::start(fixups, false, if fixups { "bf" } else { "bn" });
        let mut results: Vec<Vec<Move>> = vec![Vec::new(); removals.len()];
        for k in 0..moves * removals.len() {
            let r = k % removals.len();
            let m = s.migrate(removals[r]);
            let line = serde_json::json!({
                "fixups": fixups, "removal": m.removal.label(), "from": m.from + 1, "to": m.to + 1,
                "downtime_ms": m.migration.downtime_ms, "blackout_ms": m.blackout_ms,
                "stall_b_ms": m.stall_b, "stall_c_ms": m.stall_c, "stall_b6_ms": m.stall_b6, "stall_c6_ms": m.stall_c6,
                "excess_ms": m.excess_ms(),
                "trigger": m.trigger, "resume_to_seen_ms": m.resume_to_seen_ms,
                "resume_to_first_frame_ms": m.resume_to_first_frame_ms, "fixup_ms": m.fixup_ms,
                "held": m.held, "rerouted": m.rerouted, "released_by_fixup": m.released_by_fixup,
                "timeline": m.timeline,
            });
            writeln!(log, "{line}").expect("writing moves.jsonl");
            eprintln!(
                "{}",
                Move::table(&[(format!("{} {}", if fixups { "fix-ups" } else { "no fix-ups" }, k + 1), &m)])
            );
            if fixups && m.removal == Removal::AtOnce && !charted {
                let title =
                    format!("One move, host {} → {}, fix-ups on, port removed at once ({cpu})", m.from + 1, m.to + 1);
                match m.timeline.chart(&out.join("timeline.png"), &title) {
                    Ok(()) => charted = true,
                    Err(e) => eprintln!("timeline chart: {e}"),
                }
            }
            results[r].push(m);
        }
        for (r, ms) in removals.iter().zip(&results) {
            let mut excess: Vec<f64> = ms.iter().map(Move::excess_ms).collect();
            excess.sort_by(f64::total_cmp);
            let worst_stall = ms.iter().map(Move::worst_stall).fold(0.0, f64::max);
            let mut downtime: Vec<f64> = ms.iter().map(|m| m.migration.downtime_ms as f64).collect();
            downtime.sort_by(f64::total_cmp);
            let mut warmup: Vec<f64> = ms.iter().filter_map(|m| m.resume_to_first_frame_ms).collect();
            warmup.sort_by(f64::total_cmp);
            rows += &format!(
                "| {} | {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} |\n",
                if fixups { "on" } else { "off" },
                r.label(),
                ms.len(),
                quantile(&excess, 0.5),
                quantile(&excess, 0.9),
                excess.last().copied().unwrap_or(0.0),
                worst_stall,
                quantile(&downtime, 0.5),
                if warmup.is_empty() { "-".to_string() } else { format!("{:.0} ms", quantile(&warmup, 0.5)) },
            );
        }
    }
    let table = format!(
        "Stall − QEMU downtime (the worst of the four streams, B and C to A over IPv4 and IPv6, each move), {cpu}:\n\n| fix-ups | source port removed | moves | median | p90 | worst | longest stall | median downtime | median RESUME → A's first frame |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n{rows}"
    );
    std::fs::write(out.join("summary.md"), &table).expect("summary.md");
    println!("{table}");
    println!(
        "moves: {}; summary: {}; chart: {}",
        out.join("moves.jsonl").display(),
        out.join("summary.md").display(),
        out.join("timeline.png").display()
    );
}
