//! `rtl keygen`: writes a new cluster secret (mode 0600) where the settings
//! look for it, for the operator to copy to every machine of the cluster.

use rtl_config::Config;
use rtl_wire::auth::Secret;
use std::process::ExitCode;

pub fn run(config: &Config) -> Result<ExitCode, String> {
    let path = config.secret_path();
    Secret::generate(&path)?;
    println!(
        "wrote a new cluster secret to {} (readable only by you)",
        path.display()
    );
    println!(
        "copy it to the same place on every machine of the cluster (or point secret_file at it); \
         from now on every client and node must prove it holds it; restart rtl to use it"
    );
    Ok(ExitCode::SUCCESS)
}
