//! Project automation for Petrel, run as `cargo xtask <command>`.
//!
//! * `cargo xtask ci` — the full CI gate: rustfmt, clippy, tests, rustdoc and cargo-deny, in that order,
//!   stopping at the first failure.
//! * `cargo xtask bench [-- ARGS]` — the criterion benchmarks of every crate (ARGS go to criterion, e.g.
//!   `--quick`), followed by the scenario benchmarks listed in [`scenario_benches`];
//!   `cargo xtask bench --scenario NAME [ARGS]` runs one scenario alone.
//! * `cargo xtask fuzz TARGET [--seconds N]` — one cargo-fuzz target for N seconds.
//! * `cargo xtask help` — usage.
//!
//! The crate uses the standard library only so that it builds in a couple of seconds. The tidy checks
//! (crate and module docs, no ignored tests, workspace dependencies) live in `src/tidy.rs` as `#[test]`s, so
//! `cargo test --workspace` runs them.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

mod rss;
#[cfg(test)]
mod tidy;

/// cargo-deny release installed when it is missing; builds with the pinned toolchain.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// cargo-fuzz release installed when it is missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Fuzzing time when `--seconds` is not given.
const DEFAULT_FUZZ_SECONDS: u64 = 60;

const USAGE: &str = "\
Petrel project automation

USAGE:
    cargo xtask <COMMAND> [ARGS]

COMMANDS:
    ci                          Run the CI gate, stopping at the first failure:
                                  1. cargo fmt --all -- --check
                                  2. cargo clippy --workspace --all-targets --locked -- -D warnings
                                  3. cargo test --workspace --locked   (includes the xtask tidy checks)
                                  4. cargo doc --workspace --no-deps --locked   (RUSTDOCFLAGS=-D warnings)
                                  5. cargo check of the fuzz targets (fuzz/, stable, no libFuzzer link)
                                  6. cargo deny check licenses bans sources   (installs cargo-deny if missing)
    bench [-- ARGS]             Run the criterion benchmarks of the workspace (ARGS are passed to criterion,
                                e.g. `cargo xtask bench -- --quick`), then the scenario benchmarks
                                (history-rss: peak RSS of history and full nodes syncing 50 and 200 epochs,
                                each its own process).
    bench --scenario NAME [ARGS]
                                Run one scenario benchmark alone, e.g.
                                `cargo xtask bench --scenario history-rss --rss-epochs 50,200`.
    sim [--nodes N]             Run the network simulation (tests/sim): N nodes (default 1000, 20 % adversarial)
                                of the four types with latency, loss and churn, in virtual time; prints
                                time-to-established percentiles per type and traffic per node, writes
                                target/sim.json, fails if an honest node never establishes on the right chain.
    fuzz TARGET [--seconds N]   Run the cargo-fuzz target TARGET in fuzz/ for N seconds (default 60).
                                Installs cargo-fuzz if missing; uses RUSTC_BOOTSTRAP=1 on a stable toolchain.
    help                        Print this text.
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    match command.as_str() {
        "ci" => ci(rest),
        "bench" => bench(rest),
        "fuzz" => fuzz(rest),
        "sim" => sim(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n");
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `cargo xtask sim [--nodes N]`: the simulation bench, in release.
fn sim(args: &[String]) -> ExitCode {
    let mut cmd = cargo_cmd(["bench", "--locked", "-p", "petrel-it", "--bench", "sim", "--", "--sim"]);
    match args {
        [] => {}
        [flag, n] if flag == "--nodes" && n.parse::<usize>().is_ok() => {
            cmd.args(["--nodes", n]);
        }
        _ => {
            eprintln!("usage: cargo xtask sim [--nodes N]");
            return ExitCode::from(2);
        }
    }
    match run(&mut cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask sim: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the workspace root").to_owned()
}

/// The cargo binary that runs us (`$CARGO`), so nested builds use the same toolchain.
fn cargo() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A cargo invocation run from the workspace root.
fn cargo_cmd<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(cargo());
    cmd.args(args).current_dir(workspace_root());
    cmd
}

/// Renders a command for headers and error messages.
fn display(cmd: &Command) -> String {
    let mut out = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            let _ = write!(out, "{}={} ", key.to_string_lossy(), value.to_string_lossy());
        }
    }
    let program = cmd.get_program().to_string_lossy();
    // Show `cargo` rather than the toolchain's absolute path.
    out.push_str(if program.ends_with("cargo") { "cargo" } else { &program });
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// Runs `cmd` with inherited stdio; `Err` carries a one-line description of the failure.
fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{}` failed ({status})", display(cmd))),
        Err(err) => Err(format!("could not start `{}`: {err}", display(cmd))),
    }
}

fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 { format!("{secs:.1}s") } else { format!("{}m{:04.1}s", (secs / 60.0) as u64, secs % 60.0) }
}

// ---------------------------------------------------------------------------------------------------------------
// ci
// ---------------------------------------------------------------------------------------------------------------

/// One step of the CI gate.
struct Step {
    name: &'static str,
    run: fn() -> Result<(), String>,
    describe: fn() -> String,
}

enum Outcome {
    Passed(Duration),
    Failed(Duration),
    NotRun,
}

fn fmt_check() -> Command {
    cargo_cmd(["fmt", "--all", "--", "--check"])
}

fn clippy() -> Command {
    cargo_cmd(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])
}

fn test() -> Command {
    cargo_cmd(["test", "--workspace", "--locked"])
}

fn doc() -> Command {
    let mut cmd = cargo_cmd(["doc", "--workspace", "--no-deps", "--locked"]);
    cmd.env("RUSTDOCFLAGS", "-D warnings");
    cmd
}

/// The fuzz targets, type-checked on the pinned stable toolchain so they cannot rot (running them
/// needs cargo-fuzz: `cargo xtask fuzz`); their corpora are replayed by `tests/tests/fuzz_corpora.rs`.
fn fuzz_check() -> Command {
    cargo_cmd(["check", "--manifest-path", "fuzz/Cargo.toml", "--bins", "--locked", "--no-default-features"])
}

fn deny_check() -> Command {
    // Not `advisories`: the advisory database cannot be fetched on the project's machines (see deny.toml).
    cargo_cmd(["deny", "--locked", "check", "licenses", "bans", "sources"])
}

fn deny_step() -> Result<(), String> {
    ensure_cargo_deny()?;
    run(&mut deny_check())
}

/// Installs the pinned cargo-deny unless a `0.20.x` release is already on the PATH.
fn ensure_cargo_deny() -> Result<(), String> {
    let wanted_minor = CARGO_DENY_VERSION.rsplit_once('.').map_or(CARGO_DENY_VERSION, |(minor, _)| minor);
    let installed = cargo_cmd(["deny", "--version"]).stderr(Stdio::null()).output().ok().filter(|o| o.status.success());
    match installed {
        Some(out) => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if version.split_whitespace().nth(1).is_some_and(|v| v.starts_with(&format!("{wanted_minor}."))) {
                println!("using {version}");
                return Ok(());
            }
            println!("found `{version}`, but deny.toml is written for cargo-deny {wanted_minor}.x; installing it");
        }
        None => println!("cargo-deny is not installed; installing it (a few minutes)"),
    }
    let start = Instant::now();
    run(&mut cargo_cmd(["install", "cargo-deny", "--version", CARGO_DENY_VERSION, "--locked"]))?;
    println!("installed cargo-deny {CARGO_DENY_VERSION} in {}", fmt_duration(start.elapsed()));
    Ok(())
}

fn ci_steps() -> Vec<Step> {
    vec![
        Step { name: "fmt", run: || run(&mut fmt_check()), describe: || display(&fmt_check()) },
        Step { name: "clippy", run: || run(&mut clippy()), describe: || display(&clippy()) },
        Step { name: "test", run: || run(&mut test()), describe: || display(&test()) },
        Step { name: "doc", run: || run(&mut doc()), describe: || display(&doc()) },
        Step { name: "fuzz", run: || run(&mut fuzz_check()), describe: || display(&fuzz_check()) },
        Step { name: "deny", run: deny_step, describe: || display(&deny_check()) },
    ]
}

fn ci(args: &[String]) -> ExitCode {
    if let Some(arg) = args.first() {
        eprintln!("xtask ci: unexpected argument `{arg}`");
        return ExitCode::from(2);
    }
    let steps = ci_steps();
    let mut outcomes: Vec<Outcome> = steps.iter().map(|_| Outcome::NotRun).collect();
    let total_start = Instant::now();
    let mut failure = None;
    for (i, step) in steps.iter().enumerate() {
        println!("\n==> [{}/{}] {}: {}", i + 1, steps.len(), step.name, (step.describe)());
        let start = Instant::now();
        let result = (step.run)();
        let elapsed = start.elapsed();
        match result {
            Ok(()) => {
                println!("==> {} passed in {}", step.name, fmt_duration(elapsed));
                outcomes[i] = Outcome::Passed(elapsed);
            }
            Err(message) => {
                println!("==> {} FAILED in {}", step.name, fmt_duration(elapsed));
                outcomes[i] = Outcome::Failed(elapsed);
                failure = Some((step.name, message));
                break;
            }
        }
    }

    println!("\n==> CI summary");
    println!("    {:<8} {:<8} {:>10}", "step", "result", "time");
    for (step, outcome) in steps.iter().zip(&outcomes) {
        let (result, time) = match outcome {
            Outcome::Passed(d) => ("ok", fmt_duration(*d)),
            Outcome::Failed(d) => ("FAILED", fmt_duration(*d)),
            Outcome::NotRun => ("not run", "-".to_owned()),
        };
        println!("    {:<8} {:<8} {:>10}", step.name, result, time);
    }
    println!("    {:<8} {:<8} {:>10}", "total", "", fmt_duration(total_start.elapsed()));

    match failure {
        None => {
            println!("\nCI passed: all {} steps succeeded.", steps.len());
            ExitCode::SUCCESS
        }
        Some((name, message)) => {
            eprintln!("\nCI FAILED at step `{name}`: {message}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// bench
// ---------------------------------------------------------------------------------------------------------------

/// A scenario benchmark: a whole-system measurement run after the criterion benches.
struct Scenario {
    name: &'static str,
    /// Runs the scenario; `extra` are the arguments given after `--`.
    run: fn(extra: &[String]) -> Result<(), String>,
}

/// The scenario benchmarks run by `cargo xtask bench` after the criterion benches.
///
/// Extend this list as scenarios appear (sync of a generated chain, devnet runs, ...); each entry is run in
/// order and a failure stops the bench run.
fn scenario_benches() -> Vec<Scenario> {
    vec![Scenario { name: "history-rss", run: rss::history_rss }]
}

fn bench(args: &[String]) -> ExitCode {
    // `--scenario NAME [ARGS]`: that scenario alone, with its own arguments.
    if let Some(("--scenario", rest)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        let Some((name, extra)) = rest.split_first() else {
            eprintln!("xtask bench: --scenario needs a name");
            return ExitCode::from(2);
        };
        let Some(scenario) = scenario_benches().into_iter().find(|s| s.name == name) else {
            eprintln!("xtask bench: no scenario `{name}`");
            return ExitCode::from(2);
        };
        return match (scenario.run)(extra) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("xtask bench: scenario `{name}` failed: {message}");
                ExitCode::FAILURE
            }
        };
    }
    // Criterion arguments normally follow `--`; accept them without it too.
    let extra = match args.split_first() {
        Some((sep, rest)) if sep == "--" => rest,
        _ => args,
    };
    // `--bench '*'` selects only the bench targets: the libtest harness of lib/bin targets would reject
    // criterion's arguments such as `--quick`.
    let mut cmd = cargo_cmd(["bench", "--workspace", "--bench", "*"]);
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    println!("==> criterion: {}", display(&cmd));
    let start = Instant::now();
    if let Err(message) = run(&mut cmd) {
        eprintln!("xtask bench: {message}");
        return ExitCode::FAILURE;
    }
    println!("==> criterion benches finished in {}", fmt_duration(start.elapsed()));

    for scenario in scenario_benches() {
        println!("==> scenario: {}", scenario.name);
        let start = Instant::now();
        if let Err(message) = (scenario.run)(extra) {
            eprintln!("xtask bench: scenario `{}` failed: {message}", scenario.name);
            return ExitCode::FAILURE;
        }
        println!("==> scenario {} finished in {}", scenario.name, fmt_duration(start.elapsed()));
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------------------------
// fuzz
// ---------------------------------------------------------------------------------------------------------------

fn fuzz(args: &[String]) -> ExitCode {
    let mut target = None;
    let mut seconds = DEFAULT_FUZZ_SECONDS;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = match arg.strip_prefix("--seconds") {
            Some("") => iter.next().map(String::as_str),
            Some(rest) if rest.starts_with('=') => Some(&rest[1..]),
            _ => {
                if arg.starts_with('-') || target.is_some() {
                    eprintln!("xtask fuzz: unexpected argument `{arg}`\nusage: cargo xtask fuzz TARGET [--seconds N]");
                    return ExitCode::from(2);
                }
                target = Some(arg.clone());
                continue;
            }
        };
        match value.and_then(|v| v.parse().ok()) {
            Some(n) => seconds = n,
            None => {
                eprintln!("xtask fuzz: `--seconds` needs a whole number of seconds");
                return ExitCode::from(2);
            }
        }
    }
    let Some(target) = target else {
        eprintln!("xtask fuzz: missing TARGET\nusage: cargo xtask fuzz TARGET [--seconds N]");
        return ExitCode::from(2);
    };

    let fuzz_dir = workspace_root().join("fuzz");
    if !fuzz_dir.join("Cargo.toml").is_file() {
        eprintln!("xtask fuzz: no fuzz crate at {} (the fuzz targets have not been added yet)", fuzz_dir.display());
        return ExitCode::from(2);
    }

    let installed = cargo_cmd(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        println!("cargo-fuzz is not installed; installing cargo-fuzz {CARGO_FUZZ_VERSION}");
        if let Err(message) =
            run(&mut cargo_cmd(["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION, "--locked"]))
        {
            eprintln!("xtask fuzz: {message}");
            return ExitCode::FAILURE;
        }
    }

    // cargo-fuzz passes nightly-only `-Z` flags (sanitizers, coverage instrumentation) to rustc; the pinned
    // toolchain is stable, and RUSTC_BOOTSTRAP=1 lets it accept them.
    let mut cmd = cargo_cmd(["fuzz", "run", &target, "--", &format!("-max_total_time={seconds}")]);
    cmd.current_dir(&fuzz_dir).env("RUSTC_BOOTSTRAP", "1");
    println!("==> fuzz: {} (in fuzz/)", display(&cmd));
    let start = Instant::now();
    match run(&mut cmd) {
        Ok(()) => {
            println!(
                "==> fuzz target {target}: no finding in {seconds}s of fuzzing (total {})",
                fmt_duration(start.elapsed())
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("xtask fuzz: {message}");
            ExitCode::FAILURE
        }
    }
}
