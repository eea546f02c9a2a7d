//! `tessera`: one tool for data in object storage.
//!
//! The binary is thin: it parses arguments and calls the library crates
//! (`tessera-store`, `tessera-manifest`, …), which hold all the logic.

mod cli;
mod datasets;
#[allow(unsafe_code)] // maps local input files into memory (memmap2)
mod files;
mod ls;
mod manifest;
mod output;
mod pack;
mod quickstart;
mod serve;
mod slice;

use clap::Parser;
use tessera_store::StoreOptions;

#[allow(unsafe_code)] // a `GlobalAlloc` wrapper, and madvise through libc
mod alloc;

#[cfg(target_os = "linux")]
#[global_allocator]
static GLOBAL: alloc::HugePages<std::alloc::System> = alloc::HugePages(std::alloc::System);

fn main() {
    #[cfg(target_os = "linux")]
    alloc::configure();
    // `tessera serve` reads TESSERA_* settings from ./.env too.
    if std::env::args().any(|a| a == "serve") {
        let _ = dotenvy::dotenv();
    }
    let args = cli::Cli::parse();
    init_logging(args.global.verbose, args.global.quiet);
    let opts = args.global.store_options();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(run(args, &opts)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", opts.redact(&message(&e)));
            1
        }
    };
    rt.shutdown_background();
    std::process::exit(code);
}

async fn run(args: cli::Cli, opts: &StoreOptions) -> anyhow::Result<i32> {
    let quiet = args.global.quiet;
    match args.command {
        cli::Command::Ls(a) => ls::run(a, opts).await,
        cli::Command::Manifest(cli::ManifestCommand::Build(a)) => {
            manifest::build(a, opts, quiet).await
        }
        cli::Command::Manifest(cli::ManifestCommand::Query(a)) => manifest::query(a, opts).await,
        cli::Command::Pack(a) => pack::run(a, opts, quiet).await,
        cli::Command::Put(a) => datasets::put(a, opts, quiet).await,
        cli::Command::Get(a) => datasets::get(a, opts, args.global.verbose).await,
        cli::Command::Datasets(c) => datasets::admin(c, opts).await,
        cli::Command::Serve(a) => serve::run(a, opts).await,
        cli::Command::Index(a) => slice::index(a, opts, quiet).await,
        cli::Command::Slice(a) => slice::run(a, opts, quiet).await,
        cli::Command::Quickstart(a) => quickstart::run(a, opts).await,
    }
}

/// The error's message, with what a user of this tool can do about a store
/// that refuses or cannot be reached (the library's messages name no flag).
fn message(e: &anyhow::Error) -> String {
    use tessera_store::Error as E;
    let hint = match store_error(e) {
        Some(E::PermissionDenied { .. } | E::Unauthenticated { .. }) => {
            " (check the credentials: AWS_ACCESS_KEY_ID / AWS_PROFILE / --profile)"
        }
        Some(E::Unreachable { .. }) => " (check --endpoint / AWS_ENDPOINT_URL and the network)",
        _ => "",
    };
    format!("{}{hint}", chain_once(e))
}

/// The error and its causes, `: `-separated, each cause once: many errors
/// print their cause in their own message and also return it as their
/// source, so `{e:#}` would repeat it at every level.
fn chain_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The store error behind `e`, also when a library wraps it.
fn store_error(e: &anyhow::Error) -> Option<&tessera_store::Error> {
    fn from_formats(e: &tessera_formats::Error) -> Option<&tessera_store::Error> {
        match e {
            tessera_formats::Error::Store(s) => Some(s),
            _ => None,
        }
    }
    e.chain().find_map(|c| {
        if let Some(s) = c.downcast_ref::<tessera_store::Error>() {
            return Some(s);
        }
        if let Some(f) = c.downcast_ref::<tessera_formats::Error>() {
            return from_formats(f);
        }
        if let Some(e) = c.downcast_ref::<tessera_manifest::Error>() {
            return match e {
                tessera_manifest::Error::Store(s) => Some(s),
                _ => None,
            };
        }
        if let Some(e) = c.downcast_ref::<tessera_slice::Error>() {
            return match e {
                tessera_slice::Error::Store(s) => Some(s),
                _ => None,
            };
        }
        if let Some(e) = c.downcast_ref::<tessera_pack::Error>() {
            return match e {
                tessera_pack::Error::Store(s) => Some(s),
                tessera_pack::Error::Format(f) => from_formats(f),
                _ => None,
            };
        }
        if let Some(e) = c.downcast_ref::<tessera_datasets::Error>() {
            return match e {
                tessera_datasets::Error::Store(s) => Some(s),
                tessera_datasets::Error::Format(f) => from_formats(f),
                _ => None,
            };
        }
        None
    })
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,tessera=info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Root;
    impl fmt::Display for Root {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("PUT failed: connection refused")
        }
    }
    impl std::error::Error for Root {}

    /// Prints its cause and also returns it as its source.
    #[derive(Debug)]
    struct Wraps(Root);
    impl fmt::Display for Wraps {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "s3://b/k: {}", self.0)
        }
    }
    impl std::error::Error for Wraps {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_printed_once() {
        let e = anyhow::Error::new(Wraps(Root)).context("cannot pack");
        assert_eq!(
            chain_once(&e),
            "cannot pack: s3://b/k: PUT failed: connection refused"
        );
        // A cause that adds to the message is kept.
        let e = anyhow::Error::new(Root).context("upload");
        assert_eq!(chain_once(&e), "upload: PUT failed: connection refused");
    }
}
