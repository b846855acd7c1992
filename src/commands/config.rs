//! `rtl config`: the effective settings and the source of each.

use rtl_config::{Loaded, KEYS};
use std::process::ExitCode;

pub fn run(loaded: &Loaded) -> Result<ExitCode, String> {
    match &loaded.file {
        Some(file) => println!("# settings file: {}", file.display()),
        None => println!("# no settings file; defaults and environment only"),
    }
    let width = KEYS.iter().map(|k| k.len()).max().unwrap_or(0);
    for key in KEYS {
        let source = loaded
            .sources
            .get(key)
            .map(ToString::to_string)
            .unwrap_or_default();
        let value = loaded.config.value_of(key);
        println!("{key:<width$} = {value:<24} # {source}");
    }
    Ok(ExitCode::SUCCESS)
}
