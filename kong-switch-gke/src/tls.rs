//! The process-wide rustls crypto provider.

/// Installs aws-lc-rs as the process's default rustls crypto provider, unless one is
/// installed already.
///
/// The binary links two providers (ring, through reqwest and kube, and aws-lc-rs, through
/// Google's auth library), so rustls cannot pick one by itself; the Firestore credentials
/// sign with the default one. Called before building the Firestore and Kubernetes clients.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is all this needs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
