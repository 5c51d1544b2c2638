//! Stand-in for `homefront dispatch solve` until the CLI is wired:
//! `solve --instance FILE.csv [--assignments OUT.csv] [--repeat N]`.
//!
//! Prints `{"matched": K, "total_cost": X, "solve_ms": T}` where `T` excludes
//! reading the file; with `--repeat N` (a benchmarking aid) the fastest of
//! N solves is reported.

use std::{fs::File, io::BufReader, process::ExitCode, time::Instant};

use homefront_dispatch::{read_instance, solve_instance, write_assignments};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("solve: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (mut instance, mut assignments, mut repeat) = (None, None, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--instance" => instance = args.next(),
            "--assignments" => assignments = args.next(),
            "--repeat" => repeat = args.next().ok_or("--repeat needs a number")?.parse()?,
            other => return Err(format!("unexpected argument {other:?}").into()),
        }
    }
    let path = instance.ok_or("usage: solve --instance FILE.csv [--assignments OUT.csv]")?;
    let edges =
        read_instance(BufReader::new(File::open(&path)?)).map_err(|e| format!("{path}: {e}"))?;
    let mut best_ms = f64::INFINITY;
    let mut solution = None;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let s = solve_instance(&edges);
        best_ms = best_ms.min(started.elapsed().as_secs_f64() * 1000.0);
        solution = Some(s);
    }
    let solution = solution.expect("at least one solve");
    if let Some(out) = assignments {
        write_assignments(File::create(out)?, &solution.assignments)?;
    }
    println!(
        r#"{{"matched": {}, "total_cost": {:.9}, "solve_ms": {:.3}}}"#,
        solution.matched, solution.total_cost, best_ms
    );
    Ok(())
}
