//! The job language on arbitrary text: parsing as JSON and as TOML, with a
//! parameter set, then the relay's own check of a parsed plan (task names
//! and kwargs), which runs on plans from any client. Errors are fine;
//! panics are findings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtl_dsl::{Plan, Syntax};
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params = [("day".to_string(), "monday".to_string())];
    for syntax in [Syntax::Json, Syntax::Toml] {
        let parsed = Plan::parse_with(
            text,
            syntax,
            "<fuzz>",
            PathBuf::from("/nonexistent"),
            &params,
        );
        if let Ok(plan) = parsed {
            let _ = rtl_tasks::check_calls(&plan);
        }
    }
});
