//! Connecting to the cluster, and finding the blue Deployment.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Api, Client, Config};

use crate::error::{Error, Result};

/// How to reach the cluster: the kubeconfig (`KUBECONFIG` or `~/.kube/config`) or, without
/// one, the in-cluster service account, as kube-rs resolves them.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    /// The kubeconfig context to use instead of its current context.
    pub context: Option<String>,
    /// The namespace to use instead of the context's (or `default`).
    pub namespace: Option<String>,
}

/// A connected cluster and the namespace the commands work in.
#[derive(Clone)]
pub struct Cluster {
    /// The Kubernetes client.
    pub client: Client,
    /// The namespace.
    pub namespace: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Resolves the configuration (a missing context is named, with the contexts there
    /// are) and builds the client. Makes no request.
    pub async fn connect(options: &KubeOptions) -> Result<Cluster> {
        crate::tls::install_crypto_provider();
        let config = match &options.context {
            None => Config::infer().await.map_err(|e| Error::KubeConfig {
                message:
                    "no kubeconfig (KUBECONFIG or ~/.kube/config) and not running in a cluster"
                        .to_owned(),
                source: Some(Box::new(e)),
            })?,
            Some(context) => {
                let kube_options = KubeConfigOptions {
                    context: Some(context.clone()),
                    ..KubeConfigOptions::default()
                };
                Config::from_kubeconfig(&kube_options)
                    .await
                    .map_err(|e| context_error(context, e))?
            }
        };
        let namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| Error::KubeConfig {
            message: "cannot build the Kubernetes client".to_owned(),
            source: Some(Box::new(e)),
        })?;
        Ok(Cluster { client, namespace })
    }

    /// A cluster from a resolved configuration (tests, embedding), working in `namespace`.
    pub fn from_config(config: Config, namespace: impl Into<String>) -> Result<Cluster> {
        crate::tls::install_crypto_provider();
        let client = Client::try_from(config).map_err(|e| Error::KubeConfig {
            message: "cannot build the Kubernetes client".to_owned(),
            source: Some(Box::new(e)),
        })?;
        Ok(Cluster {
            client,
            namespace: namespace.into(),
        })
    }

    /// The namespaced API of `K`.
    pub(crate) fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// `namespace/name`, for messages.
    pub(crate) fn qualified(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }

    /// The blue Deployment: `name` if given, else the one labelled
    /// `app=<app>,version=blue`.
    pub(crate) async fn blue_deployment(
        &self,
        app: &str,
        name: Option<&str>,
    ) -> Result<Deployment> {
        let api: Api<Deployment> = self.api();
        if let Some(name) = name {
            return api
                .get_opt(name)
                .await
                .map_err(Error::kube(format!(
                    "get Deployment {}",
                    self.qualified(name)
                )))?
                .ok_or_else(|| Error::NotFound {
                    kind: "Deployment",
                    name: self.qualified(name),
                    hint: ": check --blue and --namespace".to_owned(),
                });
        }
        let selector = format!("app={app},version=blue");
        let found = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(Error::kube(format!(
                "list Deployments {selector} in {}",
                self.namespace
            )))?;
        let mut items = found.items;
        match items.len() {
            1 => Ok(items.remove(0)),
            0 => Err(Error::NotFound {
                kind: "Deployment",
                name: format!("labelled {selector} in namespace {}", self.namespace),
                hint: ": label the blue Deployment, or name it with --blue".to_owned(),
            }),
            _ => Err(Error::Mismatch(format!(
                "several Deployments are labelled {selector} in namespace {}: {}; name the blue one with --blue",
                self.namespace,
                items
                    .iter()
                    .filter_map(|d| d.metadata.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// A clear error for a kubeconfig without the requested context.
fn context_error(context: &str, err: KubeconfigError) -> Error {
    if matches!(err, KubeconfigError::LoadContext(_)) {
        let known = Kubeconfig::read()
            .map(|k| {
                k.contexts
                    .into_iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        return Error::KubeConfig {
            message: format!(
                "the kubeconfig has no context `{context}` (it has: {}); check --context or KUBECONFIG",
                if known.is_empty() { "none" } else { &known }
            ),
            source: None,
        };
    }
    Error::KubeConfig {
        message: format!("cannot load context `{context}` from the kubeconfig"),
        source: Some(Box::new(err)),
    }
}
