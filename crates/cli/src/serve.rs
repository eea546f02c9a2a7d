//! `tessera serve`.

use anyhow::{bail, Context};
use tessera_server::{Application, Config, StartError};
use tessera_store::StoreOptions;

use crate::cli::ServeArgs;

pub async fn run(a: ServeArgs, opts: &StoreOptions) -> anyhow::Result<i32> {
    if a.new_token {
        let role = a.role.to_ascii_lowercase();
        if !matches!(role.as_str(), "read" | "write" | "admin") {
            bail!("--role '{}': use read, write or admin", a.role);
        }
        tessera_datasets::name::check_namespace(&a.namespace).context("--namespace")?;
        let (token, hash) = tessera_server::new_token();
        eprintln!("# give this token to the caller (it is not stored anywhere):");
        eprintln!("#   {token}");
        println!(
            "[[tokens]]\nname = \"{}-{}\"\nsha256 = \"{hash}\"\nnamespace = \"{}\"\nrole = \"{role}\"",
            a.namespace,
            &hash[..8],
            a.namespace
        );
        return Ok(0);
    }
    let mut config = match &a.config {
        Some(p) => {
            let mut c = Config::from_file(p)?;
            c.apply_env(std::env::vars())?;
            c
        }
        None => Config::from_env()?,
    };
    if let Some(s) = a.store {
        config.store = s;
    }
    if let Some(b) = a.bind {
        config.bind = b;
    }
    if let Some(p) = a.auth {
        config.auth = Some(p);
    }
    config.insecure |= a.insecure;
    config.single_writer |= a.single_writer;
    config.store_options = opts.clone();
    let auth = if config.auth.is_some() { "on" } else { "off" };
    let store = config.store.clone();
    let app = Application::build(config).await.map_err(|e| match e {
        StartError::Unprotected { .. } => {
            anyhow::anyhow!("{e} (give --auth FILE, or pass --insecure)")
        }
        e => e.into(),
    })?;
    // The address goes to stdout so scripts (and tests) can pick up port 0.
    let addr = app.local_addr();
    let serving = app.run_until_stopped();
    println!("listening on http://{addr}");
    eprintln!(
        "tessera serve: store {store}, auth {auth}; docs at http://{addr}/docs/ (Ctrl-C to stop)"
    );
    serving.await?;
    Ok(0)
}
