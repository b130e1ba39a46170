//! TLS options: CA bundles, client identities and the insecure flag are validated and wired.

use kong_switch_core::admin::{AdminConfig, Error, KongClient};

/// Two self-signed test CAs (P-256), concatenated: a PEM bundle with several certificates.
const CA_BUNDLE: &str = "-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgIUBmIoPHHcyjHftLNlTiIaK8xVbvkwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVa29uZy1zd2l0Y2ggdGVzdCBDQSAxMCAXDTI2MTEyNTAxMDYw
OFoYDzIxMjYxMTAxMDEwNjA4WjAgMR4wHAYDVQQDDBVrb25nLXN3aXRjaCB0ZXN0
IENBIDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT2Gb7Mzfa+oBvSbYEJg4gn
y6lxhJ+99ABLphpt90NeooF1ohhjuMTbgxLuTREgSKEGdM4Y2FVRhn4Yta/0NSvx
o1MwUTAdBgNVHQ4EFgQUwT87Fd0RM3TxBs33xMz7KZwbYSQwHwYDVR0jBBgwFoAU
wT87Fd0RM3TxBs33xMz7KZwbYSQwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNIADBFAiBvjQEh77p84dH1vU6U/HEby4+qH+n8jbQUER2tzH3d0QIhAJfJnDpa
TI3Nz2iv6FNiid8oryiU8LhDFTcAWEvCuntv
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIBmDCCAT2gAwIBAgIUGLsAfTp+ledFsS4bFjS4n7eU4xwwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVa29uZy1zd2l0Y2ggdGVzdCBDQSAyMCAXDTI2MTEyNTAxMDYw
OFoYDzIxMjYxMTAxMDEwNjA4WjAgMR4wHAYDVQQDDBVrb25nLXN3aXRjaCB0ZXN0
IENBIDIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASL8A3LETdhnZxHHxuqyZq5
AcW+FlaEKnFb12krGgA0h54LNbbeVv9T3vShLdlTUIO8GteUZ8gVG5IjD5gP3I7G
o1MwUTAdBgNVHQ4EFgQU0mnDAfrPEjtdnrOH2EEfDJYj5kowHwYDVR0jBBgwFoAU
0mnDAfrPEjtdnrOH2EEfDJYj5kowDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNJADBGAiEApGoSGBCSs4r4y8oSWxjzqHuE2IFOpHeTPDnqVs1koYsCIQCHR9iv
MYFTveZpbImlYGFGp6uSwsxcLrVYNBcqeOPbBg==
-----END CERTIFICATE-----";

/// A certificate and its PKCS#8 key in one PEM buffer. Test-only key, not used anywhere else.
const IDENTITY: &str = "-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgIUBmIoPHHcyjHftLNlTiIaK8xVbvkwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVa29uZy1zd2l0Y2ggdGVzdCBDQSAxMCAXDTI2MTEyNTAxMDYw
OFoYDzIxMjYxMTAxMDEwNjA4WjAgMR4wHAYDVQQDDBVrb25nLXN3aXRjaCB0ZXN0
IENBIDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT2Gb7Mzfa+oBvSbYEJg4gn
y6lxhJ+99ABLphpt90NeooF1ohhjuMTbgxLuTREgSKEGdM4Y2FVRhn4Yta/0NSvx
o1MwUTAdBgNVHQ4EFgQUwT87Fd0RM3TxBs33xMz7KZwbYSQwHwYDVR0jBBgwFoAU
wT87Fd0RM3TxBs33xMz7KZwbYSQwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNIADBFAiBvjQEh77p84dH1vU6U/HEby4+qH+n8jbQUER2tzH3d0QIhAJfJnDpa
TI3Nz2iv6FNiid8oryiU8LhDFTcAWEvCuntv
-----END CERTIFICATE-----
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgV9ZqoIlcGd4PqNqf
Gkb1uIzJmDoZ229pLL7nfUNPutGhRANCAAT2Gb7Mzfa+oBvSbYEJg4gny6lxhJ+9
9ABLphpt90NeooF1ohhjuMTbgxLuTREgSKEGdM4Y2FVRhn4Yta/0NSvx
-----END PRIVATE KEY-----";

const CERT_ONLY: &str = "-----BEGIN CERTIFICATE-----
MIIBmDCCAT2gAwIBAgIUGLsAfTp+ledFsS4bFjS4n7eU4xwwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVa29uZy1zd2l0Y2ggdGVzdCBDQSAyMCAXDTI2MTEyNTAxMDYw
OFoYDzIxMjYxMTAxMDEwNjA4WjAgMR4wHAYDVQQDDBVrb25nLXN3aXRjaCB0ZXN0
IENBIDIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASL8A3LETdhnZxHHxuqyZq5
AcW+FlaEKnFb12krGgA0h54LNbbeVv9T3vShLdlTUIO8GteUZ8gVG5IjD5gP3I7G
o1MwUTAdBgNVHQ4EFgQU0mnDAfrPEjtdnrOH2EEfDJYj5kowHwYDVR0jBBgwFoAU
0mnDAfrPEjtdnrOH2EEfDJYj5kowDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNJADBGAiEApGoSGBCSs4r4y8oSWxjzqHuE2IFOpHeTPDnqVs1koYsCIQCHR9iv
MYFTveZpbImlYGFGp6uSwsxcLrVYNBcqeOPbBg==
-----END CERTIFICATE-----";

fn builder() -> kong_switch_core::admin::AdminConfigBuilder {
    AdminConfig::builder("https://kong.example.com:8444").unwrap()
}

#[test]
fn a_pem_bundle_with_several_certificates_is_accepted() {
    let config = builder()
        .ca_bundle_pem(CA_BUNDLE.as_bytes().to_vec())
        .build()
        .unwrap();
    assert!(format!("{config:?}").contains("ca_certs: 2"), "{config:?}");
    KongClient::new(config).unwrap();
}

#[test]
fn a_ca_bundle_that_is_not_pem_is_a_clear_config_error() {
    for bad in [
        b"not a certificate at all".to_vec(),
        vec![0x30, 0x82, 0x01, 0x0a, 0x02],
    ] {
        let err = builder().ca_bundle_pem(bad).build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    field: "ca_bundle",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("PEM"), "{err}");
    }
}

#[test]
fn a_client_identity_with_certificate_and_key_is_accepted() {
    let config = builder()
        .client_identity_pem(IDENTITY.as_bytes().to_vec())
        .build()
        .unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    KongClient::new(config).unwrap();
}

#[test]
fn a_client_identity_without_a_key_or_garbage_is_refused() {
    for bad in [CERT_ONLY.as_bytes().to_vec(), b"garbage".to_vec()] {
        let err = builder().client_identity_pem(bad).build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    field: "client_identity",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("private key"), "{err}");
    }
}

#[test]
fn the_insecure_flag_is_accepted_and_reported() {
    let config = builder().insecure_skip_verify(true).build().unwrap();
    assert!(config.insecure_skip_verify());
    KongClient::new(config).unwrap();
    assert!(!builder().build().unwrap().insecure_skip_verify());
}

#[tokio::test]
async fn an_untrusted_https_server_fails_to_connect() {
    // A plain-HTTP wiremock spoken to over https: the TLS handshake fails, which is a connect
    // error (not a Kong error), and nothing is retried forever.
    let server = wiremock::MockServer::start().await;
    let base = server.uri().replace("http://", "https://");
    let config = AdminConfig::builder(&base)
        .unwrap()
        .retries(kong_switch_core::admin::RetryPolicy::none())
        .build()
        .unwrap();
    let err = KongClient::new(config)
        .unwrap()
        .node_info()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}
