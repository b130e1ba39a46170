//! Kubernetes: deploy-green, retire-blue and the Kubernetes-level switches.
