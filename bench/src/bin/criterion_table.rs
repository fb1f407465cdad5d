//! Turns criterion's results under `target/criterion/<prefix>…` into a Markdown table:
//! one row per benchmark group, one column per contender, in million elements per second,
//! plus each contender's ratio to the first (Roam's).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Markdown table of criterion results (M elements/s and ratios)")]
struct Args {
    /// Benchmark group prefix, e.g. `mac_lookup` or `pipeline`.
    prefix: String,
    /// criterion's output directory.
    #[arg(long, default_value = "target/criterion")]
    dir: PathBuf,
}

/// (group path, contender) -> million elements per second.
fn collect(dir: &Path, prefix: &str) -> Result<BTreeMap<String, BTreeMap<String, f64>>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.file_name().is_none_or(|n| n != "benchmark.json") || !p.parent().is_some_and(|q| q.ends_with("new")) {
                continue;
            }
            let bench: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p)?)?;
            let group = bench["group_id"].as_str().unwrap_or_default().to_string();
            if !group.starts_with(prefix) {
                continue;
            }
            let function = bench["function_id"].as_str().unwrap_or_default().to_string();
            let elements = bench["throughput"]["Elements"].as_f64().unwrap_or(1.0);
            let est: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p.with_file_name("estimates.json"))?)?;
            let ns = est["median"]["point_estimate"].as_f64().context("median")?;
            out.entry(group).or_default().insert(function, elements / ns * 1e3);
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let results = collect(&args.dir, &args.prefix)?;
    let mut contenders: Vec<String> = Vec::new();
    for row in results.values() {
        for c in row.keys() {
            if !contenders.contains(c) {
                contenders.push(c.clone());
            }
        }
    }
    // Roam first: the ratios are against it.
    contenders.sort_by_key(|c| (!c.starts_with("roam"), c.clone()));
    let first = contenders.first().cloned().unwrap_or_default();
    print!("| benchmark |");
    for c in &contenders {
        print!(" {c} M/s |");
    }
    for c in contenders.iter().skip(1) {
        print!(" {first} / {c} |");
    }
    println!();
    println!("|{}", " --- |".repeat(1 + 2 * contenders.len() - 1));
    for (group, row) in &results {
        print!("| {} |", group.strip_prefix(&args.prefix).unwrap_or(group).trim_start_matches('/'));
        for c in &contenders {
            match row.get(c) {
                Some(v) => print!(" {v:.1} |"),
                None => print!(" – |"),
            }
        }
        for c in contenders.iter().skip(1) {
            match (row.get(&first), row.get(c)) {
                (Some(a), Some(b)) => print!(" {:.2} |", a / b),
                _ => print!(" – |"),
            }
        }
        println!();
    }
    Ok(())
}
