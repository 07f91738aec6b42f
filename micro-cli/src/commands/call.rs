//! `micro call SERVICE ENDPOINT [REQUEST]`: a unary call with a JSON request; prints the
//! JSON response.

use std::process::ExitCode;

use micro_runtime::Client;
use serde_json::Value;

use super::common::{CallArgs, call_options, invalid, parse_json, pretty};

/// Calls the endpoint (refused up front when the registry marks it a streaming one).
pub(crate) async fn run(client: &Client, args: CallArgs) -> micro_runtime::Result<ExitCode> {
    refuse_streams(client, &args).await?;
    let options = call_options(&args)?;
    let request = parse_json(args.request.as_deref().unwrap_or("{}"))?;
    let rsp: Value = client
        .call_endpoint_with(&args.service, &args.endpoint, &request, &options)
        .await?;
    println!("{}", pretty(&rsp));
    Ok(ExitCode::SUCCESS)
}

/// Fails, before anything is sent, when the registry marks the endpoint `micro call` was
/// given as a streaming one (`stream: "true"`): a unary call can't carry it.
async fn refuse_streams(client: &Client, args: &CallArgs) -> micro_runtime::Result<()> {
    // A call to a fixed address is not looked up; a lookup that fails is the call's to
    // report.
    if args.address.is_some() {
        return Ok(());
    }
    let Ok(records) = client.registry().get_service(&args.service).await else {
        return Ok(());
    };
    let streaming = records
        .iter()
        .flat_map(|r| &r.endpoints)
        .any(|e| e.name == args.endpoint && e.metadata.get("stream").is_some_and(|s| s == "true"));
    if streaming {
        return Err(invalid(format!(
            "{} of {} is a streaming endpoint: call it with `micro stream {} {}` (--stdin for client and bidirectional streams)",
            args.endpoint, args.service, args.service, args.endpoint
        )));
    }
    Ok(())
}
