//! deploy/kubernetes: every manifest parses (multi-document YAML), the
//! pieces refer to each other correctly, and the ConfigMap's gateway config
//! passes the same checks as `gwanmun check` (loading resolves no DNS).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Every document of every `*.yaml` file, keyed by `Kind/name`.
fn manifests() -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "manifests found: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in docs {
            let kind = doc["kind"].as_str().expect("kind").to_owned();
            assert!(
                doc["apiVersion"].is_string(),
                "{}: apiVersion",
                file.display()
            );
            let name = doc["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let key = format!("{kind}/{name}");
            assert!(all.insert(key.clone(), doc).is_none(), "duplicate {key}");
        }
    }
    all
}

fn get<'a>(all: &'a BTreeMap<String, Value>, key: &str) -> &'a Value {
    all.get(key)
        .unwrap_or_else(|| panic!("{key} missing; have {:?}", all.keys()))
}

#[test]
fn configmap_config_passes_gwanmun_check() {
    let all = manifests();
    let text = get(&all, "ConfigMap/gwanmun-config")["data"]["gwanmun.yaml"]
        .as_str()
        .expect("data.gwanmun.yaml");
    let snap = gwanmun::config::load_str(text, "ConfigMap gwanmun-config")
        .unwrap_or_else(|e| panic!("gwanmun check fails:\n{e}"));
    let summary = gwanmun::cli::summary("gwanmun-config", &snap);
    assert!(summary.contains("OK"), "{summary}");

    // Each domain upstream is found through its headless Service's DNS name.
    let cfg: Value = serde_saphyr::from_str(text).expect("yaml");
    for name in ["auth", "user", "task", "appointment"] {
        let dns = cfg["upstreams"][name]["discovery"]["dns"]
            .as_str()
            .unwrap_or_else(|| panic!("upstreams.{name}.discovery.dns"));
        assert_eq!(dns, format!("{name}.gwanmun.svc.cluster.local:8080"));
        let svc = get(&all, &format!("Service/{name}"));
        assert_eq!(svc["spec"]["clusterIP"], "None", "{name} is headless");
        assert_eq!(svc["metadata"]["namespace"], "gwanmun");
        assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
        let set = get(&all, &format!("StatefulSet/{name}"));
        assert_eq!(
            set["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"],
            svc["spec"]["selector"]["app.kubernetes.io/name"]
        );
    }
    assert!(cfg["auth"]["providers"][0]["jwks_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("http://auth.gwanmun.svc.cluster.local:8080/")));
}

#[test]
fn gateway_deployment_probes_and_drain() {
    let all = manifests();
    let dep = get(&all, "Deployment/gwanmun");
    let spec = &dep["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    // The probe paths are the gateway's own `health` routes in the ConfigMap's
    // config: readiness waits for the signing keys.
    let text = get(&all, "ConfigMap/gwanmun-config")["data"]["gwanmun.yaml"]
        .as_str()
        .expect("config");
    let cfg: Value = serde_saphyr::from_str(text).expect("yaml");
    let routes = cfg["routes"].as_array().expect("routes");
    for (path, kind) in [("/readyz", "ready"), ("/livez", "live")] {
        assert!(
            routes
                .iter()
                .any(|r| r["match"]["path"] == path && r["health"] == kind),
            "{path} must be a `health: {kind}` route"
        );
    }
    // preStop + drain fit in the grace period.
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("preStop sleep");
    let drain = cfg["limits"]["drain_timeout"]
        .as_str()
        .expect("drain_timeout");
    let drain: u64 = drain.trim_end_matches('s').parse().expect("seconds");
    assert!(pre_stop + drain < grace, "{pre_stop} + {drain} < {grace}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"], "gwanmun-config",
        "the config comes from the ConfigMap"
    );

    // Service -> Deployment, Ingress -> Service.
    let svc = get(&all, "Service/gwanmun");
    assert_eq!(
        svc["spec"]["selector"],
        spec["template"]["metadata"]["labels"]
    );
    let ing = get(&all, "Ingress/gwanmun");
    let rule = &ing["spec"]["rules"][0];
    assert!(rule["host"].is_string());
    let backend = &rule["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], "gwanmun");
    assert_eq!(backend["port"]["name"], svc["spec"]["ports"][0]["name"]);
}

#[test]
fn kustomization_lists_every_file() {
    let text = std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).expect("read");
    let k: Value = serde_saphyr::from_str(&text).expect("yaml");
    let listed: Vec<&str> = k["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for entry in std::fs::read_dir(deploy_dir()).expect("dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                listed.contains(&name.as_str()),
                "{name} not in kustomization"
            );
        }
    }
}

#[test]
fn dockerfile_is_multi_stage_and_non_root() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile"))
        .expect("Dockerfile");
    let stages: Vec<&str> = text.split("\nFROM ").skip(1).collect();
    assert!(stages.len() >= 3, "build, demo and gwanmun stages");
    for stage in &stages[1..] {
        assert!(
            stage.contains("\nUSER nonroot"),
            "runtime stage runs as non-root: {stage}"
        );
    }
}

#[test]
fn demo_config_loads_with_default_ports() {
    let snap = gwanmun::config::load_str(
        gwanmun_demo::system::CONFIG,
        gwanmun_demo::system::CONFIG_NAME,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.listeners[0].bind.port(), 8080);
}
