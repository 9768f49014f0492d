//! Batch scoring as a library call: score a CSV file into Parquet with `wharf_batch`,
//! skipping bad rows to a reject file, with lineage written to a JSON-lines file.
//!
//! `cargo run --release -p wharf-batch --example batch_scoring`
//!
//! Everything is written under `./batch-scoring-example/`: the input (the bundled leads, with
//! two rows spoiled on purpose), the model, `scored.parquet`, `scored.parquet.rejects.jsonl`
//! and `lineage.jsonl`. The CLI does the same with
//! `wharf score --model lead@champion --input leads.csv --output scored.parquet --id lead_id --on-error skip`.

use std::path::Path;

use wharf_batch::{registered_facts, score_file, OnError, ScoreOptions};
use wharf_core::{FileLineage, FileRegistry, ModelServers, RegistryExt, RegistryPort, Selector};
use wharf_ml::{datasets, Trainer};

fn main() -> wharf_core::Result<()> {
    let dir = Path::new("batch-scoring-example");
    std::fs::create_dir_all(dir).map_err(|e| wharf_core::WharfError::io(dir, e))?;

    // A registered model, as production scoring finds it: by name and version.
    let registry = FileRegistry::new(dir.join("registry"));
    let trained = Trainer::logistic_regression().fit(&datasets::lead_scoring())?;
    let version = registry.register(&trained, "lead")?;
    let info = registry.version_info("lead", &Selector::Version(version))?;
    let model = registry.load("lead", &info.version.to_string())?;

    // The input: the bundled leads, with one unknown category and one unreadable number.
    let mut lines: Vec<String> = datasets::LEAD_SCORING_CSV.lines().map(str::to_string).collect();
    lines[10] = spoil(&lines[10], 2, "astrology");
    lines[20] = spoil(&lines[20], 3, "lots");
    let input = dir.join("leads.csv");
    std::fs::write(&input, lines.join("\n") + "\n").map_err(|e| wharf_core::WharfError::io(&input, e))?;

    let facts = registered_facts(&info);
    let options =
        ScoreOptions::new(&input, dir.join("scored.parquet")).ids(["lead_id"]).on_error(OnError::Skip).chunk_rows(256);
    let lineage = FileLineage::new(dir.join("lineage.jsonl"));
    // The model server comes from a factory; a container's (`Wharf::model_servers()`) follows
    // `serving.backend`, so the same job can score on BentoML.
    let server = ModelServers::local().serve(model)?;
    let summary = score_file(server.as_ref(), &facts, &options, &lineage, &mut |p| {
        eprint!("\r{} of {} bytes, {} rows scored", p.bytes_read, p.total_bytes, p.rows_scored);
    })?;
    eprintln!();

    println!(
        "scored {} of {} rows with lead@{} in {:.1} ms -> {}",
        summary.rows_scored,
        summary.rows_read,
        info.version,
        summary.elapsed.as_secs_f64() * 1e3,
        options.output.display()
    );
    println!("columns: {}", summary.columns.join(", "));
    if let Some(rejects) = &summary.reject_file {
        println!("{} rejected rows -> {}:", summary.rows_rejected, rejects.display());
        let text = std::fs::read_to_string(rejects).map_err(|e| wharf_core::WharfError::io(rejects, e))?;
        for line in text.lines() {
            let reject: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            println!("  row {}: {}", reject["row"], reject["reason"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// A CSV line with cell `column` replaced.
fn spoil(line: &str, column: usize, value: &str) -> String {
    let mut cells: Vec<&str> = line.split(',').collect();
    if let Some(cell) = cells.get_mut(column) {
        *cell = value;
    }
    cells.join(",")
}
