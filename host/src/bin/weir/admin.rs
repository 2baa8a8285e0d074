//! `weir status`, `weir apply` and `weir plugins load|unload|reload`: requests to a
//! running weir.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use weir_host::admin::protocol::{Request, Response};

/// Long enough for an upgrade: connecting the new version and draining the old one each
/// take up to the run's drain timeout (10 s by default).
const TIMEOUT: Duration = Duration::from_secs(120);

fn ask(socket: &Path, request: &Request) -> Result<Response, ExitCode> {
    weir_host::admin::call(socket, request, TIMEOUT).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::FAILURE
    })
}

/// Prints an error answer; the exit status for it.
fn failed(response: &Response) -> ExitCode {
    let message = response
        .error
        .as_ref()
        .map_or("the request failed", |e| e.message.as_str());
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// `weir status`.
pub(crate) fn status(socket: &Path, json: bool) -> ExitCode {
    let response = match ask(socket, &Request::Status {}) {
        Ok(response) => response,
        Err(code) => return code,
    };
    if !response.ok {
        return failed(&response);
    }
    let result = response.result.unwrap_or_default();
    if json {
        println!("{result}");
        return ExitCode::SUCCESS;
    }
    let connectors = result["connectors"].as_array().cloned().unwrap_or_default();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows: Vec<[String; 9]> = connectors
        .iter()
        .map(|c| {
            let m = &c["metrics"];
            [
                text(&c["id"]),
                text(&c["plugin"]),
                text(&c["version"]),
                text(&c["state"]),
                text(&m["in"]),
                text(&m["out"]),
                text(&m["acks"]),
                text(&m["fails"]),
                text(&c["file"]),
            ]
        })
        .collect();
    let header = [
        "ID", "PLUGIN", "VERSION", "STATE", "IN", "OUT", "ACKS", "FAILS", "FILE",
    ];
    for line in crate::table::lines(header, &rows) {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// `weir apply FILE`.
pub(crate) fn apply(socket: &Path, file: &Path, json: bool) -> ExitCode {
    let Some(path) = file.to_str() else {
        eprintln!(
            "error: {}: the path is not UTF-8, which the admin protocol carries paths as \
             (rename the file or link it from a UTF-8 path)",
            file.display()
        );
        return ExitCode::FAILURE;
    };
    let request = Request::Apply {
        file: path.to_owned(),
    };
    let response = match ask(socket, &request) {
        Ok(response) => response,
        Err(code) => return code,
    };
    if json {
        // The whole answer, errors included, for tools.
        println!(
            "{}",
            serde_json::to_string(&response).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
        return if response.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if let Some(result) = &response.result {
        print_applied(result);
    }
    if response.ok {
        ExitCode::SUCCESS
    } else {
        failed(&response)
    }
}

fn print_applied(result: &serde_json::Value) {
    let names = |key: &str| -> Vec<String> {
        result[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    for (label, key) in [
        ("started", "started"),
        ("stopped", "stopped"),
        ("rewired", "rewired"),
        ("unchanged", "unchanged"),
    ] {
        let ids = names(key);
        if !ids.is_empty() {
            println!("{label}: {}", ids.join(", "));
        }
    }
    for done in result["replaced"].as_array().into_iter().flatten() {
        println!(
            "replaced: {} ({} {} -> {} {}){}",
            done["connector"].as_str().unwrap_or("?"),
            done["from"]["plugin"].as_str().unwrap_or("?"),
            done["from"]["version"].as_str().unwrap_or("?"),
            done["to"]["plugin"].as_str().unwrap_or("?"),
            done["to"]["version"].as_str().unwrap_or("?"),
            match done["failed_back"].as_u64() {
                Some(0) | None => String::new(),
                Some(n) => format!(", {n} events failed back to the old instance"),
            }
        );
    }
    for warning in result["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning.as_str().unwrap_or("?"));
    }
}

/// `weir plugins load|unload|reload`.
pub(crate) fn plugins(socket: &Path, request: Request) -> ExitCode {
    let response = match ask(socket, &request) {
        Ok(response) => response,
        Err(code) => return code,
    };
    let result = response.result.clone().unwrap_or_default();
    match &request {
        Request::Reload { plugin } => {
            for done in result["upgraded"].as_array().into_iter().flatten() {
                println!(
                    "{}: {} {} -> {} ({}){}",
                    done["connector"].as_str().unwrap_or("?"),
                    plugin,
                    done["from"]["version"].as_str().unwrap_or("?"),
                    done["to"]["version"].as_str().unwrap_or("?"),
                    done["to"]["file"].as_str().unwrap_or("?"),
                    match done["failed_back"].as_u64() {
                        Some(0) | None => String::new(),
                        Some(n) => format!(", {n} events failed back to the old version"),
                    }
                );
            }
            if response.ok && result["upgraded"].as_array().is_none_or(Vec::is_empty) {
                println!("no connector runs {plugin}");
            }
        }
        Request::Load { .. } | Request::Unload { .. } if response.ok => {
            let verb = if matches!(request, Request::Load { .. }) {
                "loaded"
            } else {
                "unloaded"
            };
            println!(
                "{verb} {} {} ({}){}",
                result["plugin"].as_str().unwrap_or("?"),
                result["version"].as_str().unwrap_or("?"),
                result["file"].as_str().unwrap_or("?"),
                result["shadowed_by"]
                    .as_str()
                    .map(|by| format!(", shadowed by {by}"))
                    .unwrap_or_default()
            );
        }
        _ => {}
    }
    if response.ok {
        ExitCode::SUCCESS
    } else {
        failed(&response)
    }
}
