//! `micro stream SERVICE ENDPOINT [REQUEST]`: a server stream with the one request given, or
//! with `--stdin` a client or bidirectional stream fed from stdin; prints each response, one
//! JSON per line.

use std::process::ExitCode;

use micro_runtime::{CallOptions, Client, Error};
use serde_json::Value;

use super::common::{CallArgs, call_options, internal, parse_json};

/// What `micro stream` takes.
#[derive(clap::Args)]
pub(crate) struct StreamArgs {
    #[command(flatten)]
    call: CallArgs,
    /// Send stdin's lines as the requests (the request argument is then not taken).
    #[arg(long, conflicts_with = "request")]
    stdin: bool,
}

/// Opens the stream and prints its responses until it ends.
pub(crate) async fn run(client: &Client, args: StreamArgs) -> micro_runtime::Result<ExitCode> {
    let StreamArgs { call: args, stdin } = args;
    let options = call_options(&args)?;
    if stdin {
        return stream_stdin(client, &args, &options).await;
    }
    let request = parse_json(args.request.as_deref().unwrap_or("{}"))?;
    let mut replies = client
        .server_stream_endpoint::<Value, Value>(&args.service, &args.endpoint, &request, &options)
        .await?;
    while let Some(reply) = replies.recv().await? {
        println!("{reply}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A client or bidirectional stream: stdin's lines (one JSON request each, blank lines
/// skipped) go out as they are read, responses are printed as they come; the requests end
/// with stdin.
async fn stream_stdin(
    client: &Client,
    args: &CallArgs,
    options: &CallOptions,
) -> micro_runtime::Result<ExitCode> {
    use tokio::io::AsyncBufReadExt;
    let stream = client
        .stream_endpoint::<Value, Value>(&args.service, &args.endpoint, options)
        .await?;
    let (mut sender, mut replies) = stream.split();
    // Ok(Err(_)): a send failed, the stream is over (the server's answer tells why);
    // Err(_): stdin failed us, the call is abandoned.
    let send = async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await.map_err(internal)? {
            if !line.trim().is_empty()
                && let Err(e) = sender.send(parse_json(&line)?).await
            {
                return Ok(Err(e));
            }
        }
        sender.close_send();
        Ok::<_, Error>(Ok(()))
    };
    let receive = async {
        while let Some(reply) = replies.recv().await? {
            println!("{reply}");
        }
        Ok::<_, Error>(())
    };
    let (mut send, mut receive) = (std::pin::pin!(send), std::pin::pin!(receive));
    let (mut sending, mut sent) = (true, Ok(()));
    loop {
        tokio::select! {
            result = &mut send, if sending => {
                sending = false;
                sent = result?;
            }
            // The stream is over (stdin may still be open): the server's answer says more
            // than a send it cut short.
            received = &mut receive => {
                received?;
                return sent.map(|()| ExitCode::SUCCESS);
            }
        }
    }
}
