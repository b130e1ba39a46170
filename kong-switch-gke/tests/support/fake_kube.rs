//! A small stateful fake of the Kubernetes API server, over plain HTTP.
//!
//! Serves namespaced objects under `/api/v1/namespaces/{ns}/{plural}` and
//! `/apis/{group}/{version}/namespaces/{ns}/{plural}` (Deployments, Services, HTTPRoutes,
//! anything): create, get, list with an equality `labelSelector`, replace (PUT), patch
//! (JSON merge; strategic merge is treated as merge) and delete. Writes carrying a stale
//! `metadata.resourceVersion` get `409 Conflict`, as do the next writes after
//! [`FakeKube::conflict_next`].
//!
//! A "kubelet" task plays the controllers: it marks each Deployment's replicas ready a
//! configurable delay after its spec changed, or, for an image given to
//! [`FakeKube::fail_image`], leaves its pods waiting with the given reason. Pods are listed
//! (`/api/v1/namespaces/{ns}/pods`) as the kubelet sees them.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

type Key = (String, String, String); // (plural, namespace, name)

#[derive(Default)]
struct Store {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    changed: HashMap<Key, Instant>,
    fail_images: HashMap<String, (String, String)>,
    ready_after: Duration,
    conflicts: usize,
    writes: Vec<String>,
}

impl Store {
    fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }
}

/// The fake API server; stops when dropped.
pub struct FakeKube {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl FakeKube {
    /// Starts the server and the kubelet; replicas become ready `ready_after` a change.
    pub async fn start(ready_after: Duration) -> FakeKube {
        let store = Arc::new(Mutex::new(Store {
            ready_after,
            ..Store::default()
        }));
        let app = Router::new()
            .route(
                "/api/{version}/namespaces/{ns}/{plural}",
                get(list).post(create),
            )
            .route(
                "/api/{version}/namespaces/{ns}/{plural}/{name}",
                get(get_one).put(replace).patch(patch).delete(delete),
            )
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}",
                get(list_group).post(create_group),
            )
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}",
                get(get_one_group)
                    .put(replace_group)
                    .patch(patch_group)
                    .delete(delete_group),
            )
            .fallback(|method: Method, uri: axum::http::Uri| async move {
                status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("fake API server: no route for {method} {uri}"),
                )
            })
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API server");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let kubelet = tokio::spawn(kubelet(store.clone()));
        FakeKube {
            addr,
            store,
            tasks: vec![server, kubelet],
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Pods of Deployments running `image` wait with `reason` (e.g. `ImagePullBackOff`).
    pub fn fail_image(&self, image: &str, reason: &str, message: &str) {
        self.store
            .lock()
            .expect("store")
            .fail_images
            .insert(image.to_owned(), (reason.to_owned(), message.to_owned()));
    }

    /// The next `n` writes (PUT, PATCH) answer `409 Conflict`.
    pub fn conflict_next(&self, n: usize) {
        self.store.lock().expect("store").conflicts = n;
    }

    /// Stores `object` as if created (kind and apiVersion must be set).
    pub fn insert(&self, plural: &str, object: Value) {
        let mut store = self.store.lock().expect("store");
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_owned();
        let rv = store.next_rv();
        let mut object = object;
        stamp_new(&mut object, &rv);
        let key = (plural.to_owned(), ns, name);
        store.changed.insert(key.clone(), Instant::now());
        store.objects.insert(key, object);
    }

    /// The stored object, if any.
    pub fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.store
            .lock()
            .expect("store")
            .objects
            .get(&(plural.to_owned(), namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The writes received, as `METHOD path`, in order.
    pub fn writes(&self) -> Vec<String> {
        self.store.lock().expect("store").writes.clone()
    }

    /// Writes a kubeconfig for this server with the context `fake` (namespace `namespace`)
    /// into `dir`, and returns its path.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        axum::Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()
        })),
    )
        .into_response()
}

fn kind_of(plural: &str) -> (&'static str, &'static str) {
    match plural {
        "deployments" => ("Deployment", "apps/v1"),
        "services" => ("Service", "v1"),
        "pods" => ("Pod", "v1"),
        "httproutes" => ("HTTPRoute", "gateway.networking.k8s.io/v1"),
        _ => ("Object", "v1"),
    }
}

fn stamp_new(object: &mut Value, rv: &str) {
    let meta = &mut object["metadata"];
    meta["resourceVersion"] = json!(rv);
    meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
    meta["generation"] = json!(1);
    meta["creationTimestamp"] = json!("2026-11-25T00:00:00Z");
}

fn matches_selector(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|pair| match pair.split_once('=') {
        Some((k, v)) => object["metadata"]["labels"][k.trim()].as_str() == Some(v.trim()),
        None => false,
    })
}

type Params = HashMap<String, String>;
type Shared = State<Arc<Mutex<Store>>>;

async fn list(
    state: Shared,
    UrlPath((_v, ns, plural)): UrlPath<(String, String, String)>,
    q: Query<Params>,
) -> Response {
    list_in(state, ns, plural, q).await
}
async fn list_group(
    state: Shared,
    UrlPath((_g, _v, ns, plural)): UrlPath<(String, String, String, String)>,
    q: Query<Params>,
) -> Response {
    list_in(state, ns, plural, q).await
}
async fn create(
    state: Shared,
    UrlPath((_v, ns, plural)): UrlPath<(String, String, String)>,
    body: axum::Json<Value>,
) -> Response {
    create_in(state, ns, plural, body.0).await
}
async fn create_group(
    state: Shared,
    UrlPath((_g, _v, ns, plural)): UrlPath<(String, String, String, String)>,
    body: axum::Json<Value>,
) -> Response {
    create_in(state, ns, plural, body.0).await
}
async fn get_one(
    state: Shared,
    UrlPath((_v, ns, plural, name)): UrlPath<(String, String, String, String)>,
) -> Response {
    get_in(state, (plural, ns, name)).await
}
async fn get_one_group(
    state: Shared,
    UrlPath((_g, _v, ns, plural, name)): UrlPath<(String, String, String, String, String)>,
) -> Response {
    get_in(state, (plural, ns, name)).await
}
async fn replace(
    state: Shared,
    UrlPath((_v, ns, plural, name)): UrlPath<(String, String, String, String)>,
    body: axum::Json<Value>,
) -> Response {
    write_in(state, (plural, ns, name), body.0, false).await
}
async fn replace_group(
    state: Shared,
    UrlPath((_g, _v, ns, plural, name)): UrlPath<(String, String, String, String, String)>,
    body: axum::Json<Value>,
) -> Response {
    write_in(state, (plural, ns, name), body.0, false).await
}
async fn patch(
    state: Shared,
    UrlPath((_v, ns, plural, name)): UrlPath<(String, String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    patch_in(state, (plural, ns, name), &headers, &body).await
}
async fn patch_group(
    state: Shared,
    UrlPath((_g, _v, ns, plural, name)): UrlPath<(String, String, String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    patch_in(state, (plural, ns, name), &headers, &body).await
}
async fn delete(
    state: Shared,
    UrlPath((_v, ns, plural, name)): UrlPath<(String, String, String, String)>,
) -> Response {
    delete_in(state, (plural, ns, name)).await
}
async fn delete_group(
    state: Shared,
    UrlPath((_g, _v, ns, plural, name)): UrlPath<(String, String, String, String, String)>,
) -> Response {
    delete_in(state, (plural, ns, name)).await
}

async fn list_in(
    State(store): Shared,
    ns: String,
    plural: String,
    Query(q): Query<Params>,
) -> Response {
    let store = store.lock().expect("store");
    let selector = q.get("labelSelector");
    let items: Vec<Value> = if plural == "pods" {
        pods(&store, &ns)
    } else {
        store
            .objects
            .iter()
            .filter(|((p, n, _), _)| *p == plural && *n == ns)
            .map(|(_, o)| o.clone())
            .collect()
    }
    .into_iter()
    .filter(|o| matches_selector(o, selector))
    .collect();
    let (kind, api_version) = kind_of(&plural);
    axum::Json(json!({
        "kind": format!("{kind}List"), "apiVersion": api_version,
        "metadata": {"resourceVersion": store.resource_version.to_string()},
        "items": items
    }))
    .into_response()
}

async fn create_in(
    State(store): Shared,
    ns: String,
    plural: String,
    mut object: Value,
) -> Response {
    let mut store = store.lock().expect("store");
    let Some(name) = object["metadata"]["name"].as_str().map(str::to_owned) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required value",
        );
    };
    let key = (plural.clone(), ns.clone(), name.clone());
    if store.objects.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{plural} \"{name}\" already exists"),
        );
    }
    store.writes.push(format!("POST {plural}/{name}"));
    let (kind, api_version) = kind_of(&plural);
    object["kind"] = json!(kind);
    object["apiVersion"] = json!(api_version);
    object["metadata"]["namespace"] = json!(ns);
    let rv = store.next_rv();
    stamp_new(&mut object, &rv);
    if plural == "services" {
        object["spec"]["clusterIP"] = json!(format!("10.96.0.{}", store.resource_version % 250));
    }
    store.changed.insert(key.clone(), Instant::now());
    store.objects.insert(key, object.clone());
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

async fn get_in(State(store): Shared, key: Key) -> Response {
    let store = store.lock().expect("store");
    match store.objects.get(&key) {
        Some(object) => axum::Json(object.clone()).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{}\" not found", key.0, key.2),
        ),
    }
}

async fn write_in(State(store): Shared, key: Key, mut desired: Value, is_patch: bool) -> Response {
    let mut store = store.lock().expect("store");
    let Some(current) = store.objects.get(&key).cloned() else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{}\" not found", key.0, key.2),
        );
    };
    store.writes.push(format!(
        "{} {}/{}",
        if is_patch { "PATCH" } else { "PUT" },
        key.0,
        key.2
    ));
    let conflict = || {
        status(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                key.0, key.2
            ),
        )
    };
    if store.conflicts > 0 {
        store.conflicts -= 1;
        return conflict();
    }
    if let Some(rv) = desired["metadata"]["resourceVersion"].as_str()
        && Some(rv) != current["metadata"]["resourceVersion"].as_str()
    {
        return conflict();
    }
    if key.0 == "services"
        && current["spec"]["clusterIP"] != desired["spec"]["clusterIP"]
        && !is_patch
    {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "spec.clusterIP: Invalid value: field is immutable",
        );
    }
    // The main resource never writes status; identity fields stay.
    desired["status"] = current["status"].clone();
    for field in ["uid", "creationTimestamp", "namespace", "name"] {
        desired["metadata"][field] = current["metadata"][field].clone();
    }
    desired["kind"] = current["kind"].clone();
    desired["apiVersion"] = current["apiVersion"].clone();
    let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
    let spec_changed = desired["spec"] != current["spec"];
    desired["metadata"]["generation"] = json!(if spec_changed {
        generation + 1
    } else {
        generation
    });
    let rv = store.next_rv();
    desired["metadata"]["resourceVersion"] = json!(rv);
    if spec_changed {
        store.changed.insert(key.clone(), Instant::now());
    }
    store.objects.insert(key, desired.clone());
    axum::Json(desired).into_response()
}

async fn patch_in(state: Shared, key: Key, headers: &HeaderMap, body: &str) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.contains("merge-patch") {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            &format!("fake API server: patch type {content_type} not supported"),
        );
    }
    let Ok(patch) = serde_json::from_str::<Value>(body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "patch is not JSON");
    };
    let current = {
        let store = state.0.lock().expect("store");
        store.objects.get(&key).cloned()
    };
    let Some(mut merged) = current else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{}\" not found", key.0, key.2),
        );
    };
    let rv_in_patch = patch["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    merge(&mut merged, &patch);
    if rv_in_patch.is_none() {
        // A patch without a resourceVersion applies to whatever is current.
        merged["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
    }
    write_in(state, key, merged, true).await
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (k, v) in fields {
                if v.is_null() {
                    target.as_object_mut().map(|t| t.remove(k));
                } else {
                    merge(&mut target[k], v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

async fn delete_in(State(store): Shared, key: Key) -> Response {
    let mut store = store.lock().expect("store");
    store.writes.push(format!("DELETE {}/{}", key.0, key.2));
    match store.objects.remove(&key) {
        Some(_) => axum::Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": key.2, "kind": key.0}
        }))
        .into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{}\" not found", key.0, key.2),
        ),
    }
}

fn image_of(deployment: &Value) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The pods the kubelet runs for the Deployments of `ns`.
fn pods(store: &Store, ns: &str) -> Vec<Value> {
    let mut pods = Vec::new();
    for ((plural, namespace, name), deployment) in &store.objects {
        if plural != "deployments" || namespace != ns {
            continue;
        }
        let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
        let image = image_of(deployment);
        let container = deployment["spec"]["template"]["spec"]["containers"][0]["name"].clone();
        let failing = store.fail_images.get(&image);
        for i in 0..replicas {
            let state = match failing {
                Some((reason, message)) => {
                    json!({"waiting": {"reason": reason, "message": message}})
                }
                None if i < ready => json!({"running": {"startedAt": "2026-11-25T00:00:00Z"}}),
                None => json!({"waiting": {"reason": "ContainerCreating"}}),
            };
            pods.push(json!({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {
                    "name": format!("{name}-{i}"), "namespace": ns,
                    "labels": deployment["spec"]["template"]["metadata"]["labels"].clone()
                },
                "status": {
                    "phase": if failing.is_none() && i < ready { "Running" } else { "Pending" },
                    "containerStatuses": [{
                        "name": container, "image": image, "imageID": "", "restartCount": 0,
                        "ready": failing.is_none() && i < ready, "state": state
                    }]
                }
            }));
        }
    }
    pods
}

/// Plays the Deployment controller and the kubelet.
async fn kubelet(store: Arc<Mutex<Store>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut store = store.lock().expect("store");
        let ready_after = store.ready_after;
        let keys: Vec<Key> = store
            .objects
            .keys()
            .filter(|(plural, _, _)| plural == "deployments")
            .cloned()
            .collect();
        for key in keys {
            let changed = store
                .changed
                .get(&key)
                .copied()
                .unwrap_or_else(Instant::now);
            let Some(deployment) = store.objects.get(&key).cloned() else {
                continue;
            };
            let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
            let failing = store.fail_images.contains_key(&image_of(&deployment));
            let ready = if failing || changed.elapsed() < ready_after {
                0
            } else {
                replicas
            };
            let status = json!({
                "observedGeneration": deployment["metadata"]["generation"].clone(),
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": replicas - ready,
            });
            if deployment["status"] != status {
                let rv = store.next_rv();
                if let Some(object) = store.objects.get_mut(&key) {
                    object["status"] = status;
                    object["metadata"]["resourceVersion"] = json!(rv);
                }
            }
        }
    }
}
