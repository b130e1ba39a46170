//! Global flags → the core's `AdminConfig`, reading the files they name.

use std::fs;
use std::path::Path;

use kong_switch_core::admin::{AdminConfig, KongClient};
use secrecy::SecretString;

use crate::cli::GlobalArgs;
use crate::error::CliError;

/// Builds the Admin API client from the global flags.
pub fn admin_client(args: &GlobalArgs) -> Result<KongClient, CliError> {
    let mut builder = AdminConfig::builder(&args.admin_url)?;
    if let Some(token) = admin_token(args)? {
        builder = builder.token(token);
    }
    for header in &args.headers {
        let (name, value) = header.split_once(':').ok_or_else(|| {
            CliError::usage(format!(
                "--header `{}` is not `Name: value`; write e.g. --header 'X-Team: payments'",
                header_name_only(header)
            ))
        })?;
        builder = builder.header(name.trim(), value.trim())?;
    }
    if let Some(ws) = &args.workspace {
        builder = builder.workspace(ws.clone());
    }
    if let Some(path) = &args.ca_cert {
        builder = builder.ca_bundle_pem(read_file("--ca-cert", path)?);
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        let mut pem = read_file("--client-cert", cert)?;
        pem.push(b'\n');
        pem.extend(read_file("--client-key", key)?);
        builder = builder.client_identity_pem(pem);
    }
    if args.insecure_skip_verify {
        tracing::warn!("--insecure-skip-verify: the Admin API's TLS certificate is not checked");
        builder = builder.insecure_skip_verify(true);
    }
    let config = builder.request_timeout(args.timeout).build()?;
    Ok(KongClient::new(config)?)
}

fn admin_token(args: &GlobalArgs) -> Result<Option<SecretString>, CliError> {
    if let Some(path) = &args.admin_token_file {
        let raw = read_file("--admin-token-file", path)?;
        let text = String::from_utf8(raw).map_err(|_| {
            CliError::usage(format!(
                "--admin-token-file {}: the file is not UTF-8 text; put the token alone on the first line",
                path.display()
            ))
        })?;
        let token = text.lines().next().unwrap_or_default().trim().to_owned();
        if token.is_empty() {
            return Err(CliError::usage(format!(
                "--admin-token-file {}: the file is empty; put the token on its first line",
                path.display()
            )));
        }
        return Ok(Some(SecretString::from(token)));
    }
    Ok(args
        .admin_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_owned())))
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|e| {
        CliError::usage(format!(
            "{flag} {}: cannot read the file ({e}); check the path and its permissions",
            path.display()
        ))
    })
}

/// Never echo a header value: it may be a credential.
fn header_name_only(header: &str) -> &str {
    header.split([':', '=']).next().unwrap_or_default().trim()
}
