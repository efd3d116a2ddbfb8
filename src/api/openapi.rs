//! `GET /api/v1/openapi.json`: the API described as OpenAPI 3.1. The schemas are
//! generated (schemars, JSON Schema 2020-12, which OpenAPI 3.1 uses as it is) from the
//! very types the handlers serialise, so the document cannot drift from the answers;
//! the operations are listed here, beside the router in [`super::router`], and a test
//! checks that every one of them is served.

use schemars::Schema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::routes::{
    ErrorBody, EvacuationsView, EventsPage, NoticeRequest, PauseRequest, ProviderView, Resumed,
    WorkloadView,
};
use crate::control::Pending;
use crate::store::{NoticeRecord, Pause};

/// Where the document is served, under the API's prefix.
pub const PATH: &str = "/api/v1/openapi.json";

/// One operation: what it answers, what it takes.
struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    /// Behind the bearer token (every `/api` route) or open (the probes).
    token: bool,
    /// The JSON body it takes, if any, and whether it may be left out.
    body: Option<(Schema, bool)>,
    /// Its `path` and `query` parameters: (name, where, schema, description).
    parameters: Vec<(&'static str, &'static str, Value, &'static str)>,
    /// Its answer when it succeeds: status, and a JSON schema (`None`: plain text, or
    /// no body at all for 204).
    ok: (u16, Option<Schema>),
    /// The refusals it may answer besides 401 and 500.
    refusals: &'static [(u16, &'static str)],
}

impl Operation {
    /// An `/api` operation, behind the token, with its answer when it succeeds.
    fn api(
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        ok: (u16, Option<Schema>),
    ) -> Operation {
        Operation {
            method,
            path,
            summary,
            token: true,
            body: None,
            parameters: Vec::new(),
            ok,
            refusals: &[],
        }
    }

    /// An open `GET` answering plain text (a probe, the metrics).
    fn probe(
        path: &'static str,
        summary: &'static str,
        refusals: &'static [(u16, &'static str)],
    ) -> Operation {
        Operation {
            token: false,
            refusals,
            ..Operation::api("get", path, summary, (200, None))
        }
    }

    fn with_parameters(
        self,
        parameters: Vec<(&'static str, &'static str, Value, &'static str)>,
    ) -> Operation {
        Operation { parameters, ..self }
    }

    fn with_body(self, schema: Schema, required: bool) -> Operation {
        Operation {
            body: Some((schema, required)),
            ..self
        }
    }

    fn refusing(self, refusals: &'static [(u16, &'static str)]) -> Operation {
        Operation { refusals, ..self }
    }
}

/// The whole document, with `version` as `info.version`.
pub fn document(version: &str) -> Value {
    // Answers are described as they are serialised, requests as they are read.
    let mut answers = generator(SchemaSettings::draft2020_12().for_serialize());
    let mut requests = generator(SchemaSettings::draft2020_12().for_deserialize());
    let pending = answers.subschema_for::<Pending>();
    let not_pending: &[(u16, &str)] = &[(404, "no pending evacuation has that id")];
    let bad_body: &[(u16, &str)] = &[
        (400, "a field is wrong; `field` names it"),
        (413, "the body is over `api.max_body_bytes`"),
        (415, "the body is not `application/json`"),
    ];
    let operations = vec![
        Operation::probe(
            "/healthz",
            "The process is alive (for a liveness probe).",
            &[],
        ),
        Operation::probe(
            "/readyz",
            "The store is writable, probe rounds are running and this instance leads (or \
             stands by in a cluster); 503 names what is wrong.",
            &[(503, "not ready, and why (plain text)")],
        ),
        Operation::probe(
            "/metrics",
            "Prometheus text exposition of every `lifeboat_` metric.",
            &[],
        ),
        Operation::api(
            "get",
            "/api/v1/providers",
            "Every provider of the configuration with its last derived condition.",
            (200, Some(answers.subschema_for::<Vec<ProviderView>>())),
        ),
        Operation::api(
            "get",
            "/api/v1/workloads",
            "Every workload: where it runs and the watch over its live copy.",
            (200, Some(answers.subschema_for::<Vec<WorkloadView>>())),
        ),
        Operation::api(
            "get",
            "/api/v1/evacuations",
            "The evacuation waiting for approval, the kill switch, the moves scheduled \
             before a deadline, and every evacuation run, newest first.",
            (200, Some(answers.subschema_for::<EvacuationsView>())),
        ),
        Operation::api(
            "post",
            "/api/v1/evacuations/{id}/approve",
            "Approves the pending evacuation `id` (mode `confirm`): it starts on the loop's \
             next turn.",
            (200, Some(pending.clone())),
        )
        .with_parameters(vec![evacuation_id()])
        .refusing(not_pending),
        Operation::api(
            "post",
            "/api/v1/evacuations/{id}/reject",
            "Drops the pending evacuation `id`; it is planned again only when the plan \
             changes.",
            (200, Some(pending)),
        )
        .with_parameters(vec![evacuation_id()])
        .refusing(not_pending),
        Operation::api(
            "get",
            "/api/v1/notices",
            "The notices and fences in force.",
            (200, Some(answers.subschema_for::<Vec<NoticeRecord>>())),
        ),
        Operation::api(
            "post",
            "/api/v1/notices",
            "Raises a notice: a vendor, account or provider must be left before the \
             deadline (without one: now, a fence).",
            (201, Some(answers.subschema_for::<NoticeRecord>())),
        )
        .with_body(requests.subschema_for::<NoticeRequest>(), true)
        .refusing(bad_body),
        Operation::api(
            "delete",
            "/api/v1/notices/{id}",
            "Lifts the notice `id`.",
            (204, None),
        )
        .with_parameters(vec![(
            "id",
            "path",
            json!({"type": "integer", "format": "int64"}),
            "The notice's id, as `GET /api/v1/notices` lists it.",
        )])
        .refusing(&[(404, "no notice in force has that id")]),
        Operation::api(
            "get",
            "/api/v1/events",
            "The journal's lines (every step of every move), oldest first, a page at a \
             time.",
            (200, Some(answers.subschema_for::<EventsPage>())),
        )
        .with_parameters(vec![
            (
                "after",
                "query",
                json!({"type": "integer", "format": "int64", "default": 0}),
                "Lines after this id: the `next` of the previous page.",
            ),
            (
                "limit",
                "query",
                json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
                "At most this many lines.",
            ),
        ])
        .refusing(&[(400, "`after` or `limit` is wrong; `field` names it")]),
        Operation::api(
            "post",
            "/api/v1/pause",
            "Throws the kill switch: probes, decisions and plans go on, no step starts. \
             Pausing a paused controller keeps the first reason and time.",
            (200, Some(answers.subschema_for::<Pause>())),
        )
        .with_body(requests.subschema_for::<PauseRequest>(), false)
        .refusing(bad_body),
        Operation::api(
            "post",
            "/api/v1/resume",
            "Releases the kill switch.",
            (200, Some(answers.subschema_for::<Resumed>())),
        ),
        Operation::api(
            "get",
            PATH,
            "This document.",
            (200, Some(schemars::json_schema!({"type": "object"}))),
        ),
    ];
    let error = answers.subschema_for::<ErrorBody>();

    let mut paths = Map::new();
    for op in operations {
        let item = paths
            .entry(op.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(op.method.to_owned(), operation(op, &error));
        }
    }
    let mut schemas = answers.take_definitions(true);
    for (name, schema) in requests.take_definitions(true) {
        schemas.entry(name).or_insert(schema);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "lifeboat",
            "version": version,
            "description": "The daemon's HTTP API: what it sees (providers, workloads, \
                evacuations, notices, the journal) and what an operator tells it (notices, \
                approvals, the kill switch). Every `/api` call needs the bearer token of \
                `api.token_file` or `api.token_env`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    })
}

fn generator(settings: SchemaSettings) -> SchemaGenerator {
    settings
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator()
}

fn evacuation_id() -> (&'static str, &'static str, Value, &'static str) {
    (
        "id",
        "path",
        json!({"type": "string"}),
        "The pending evacuation's id (`pe-...`), as `GET /api/v1/evacuations` shows it.",
    )
}

fn operation(op: Operation, error: &Schema) -> Value {
    let mut responses = Map::new();
    let (status, schema) = op.ok;
    let ok = match (status, schema) {
        (204, _) => json!({"description": "Done."}),
        (_, Some(schema)) => json!({
            "description": "Done.",
            "content": {"application/json": {"schema": schema}},
        }),
        (_, None) => json!({
            "description": "Done.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }),
    };
    responses.insert(status.to_string(), ok);
    let refused = |description: &str| json!({"description": description, "content": {"application/json": {"schema": error}}});
    for (status, description) in op.refusals {
        responses.insert(status.to_string(), refused(description));
    }
    if op.token {
        responses.insert(
            "401".into(),
            refused("the bearer token is missing or wrong"),
        );
        responses.insert("500".into(), refused("the state store failed"));
    }
    let mut out = json!({
        "summary": op.summary,
        "operationId": operation_id(op.method, op.path),
        "responses": responses,
    });
    out["security"] = if op.token {
        json!([{"token": []}])
    } else {
        json!([])
    };
    if !op.parameters.is_empty() {
        out["parameters"] = (op.parameters.into_iter())
            .map(|(name, place, schema, description)| {
                json!({
                    "name": name,
                    "in": place,
                    "required": place == "path",
                    "schema": schema,
                    "description": description,
                })
            })
            .collect();
    }
    if let Some((schema, required)) = op.body {
        out["requestBody"] = json!({
            "required": required,
            "content": {"application/json": {"schema": schema}},
        });
    }
    out
}

/// `getApiV1Providers`, `postApiV1EvacuationsIdApprove`: unique, stable, and what code
/// generators name their functions after.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// The schema of `T` alone (for tests of a single type).
#[cfg(test)]
fn schema_of<T: schemars::JsonSchema>() -> Value {
    let mut g = generator(SchemaSettings::draft2020_12().for_serialize());
    let root = g.subschema_for::<T>();
    json!({"root": root, "components": {"schemas": g.take_definitions(true)}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_unique_id_and_every_reference_resolves() {
        let doc = document("0.0.0");
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "{method} {path}: {id} twice");
            }
        }
        assert!(ids.contains("postApiV1EvacuationsIdApprove"), "{ids:?}");
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target} points outside the components"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{target} is not defined"
            );
        }
    }

    #[test]
    fn a_schema_admits_what_its_type_serialises_and_refuses_what_it_cannot() {
        let mut root = schema_of::<crate::watch::CopyWatch>();
        root["$ref"] = root["root"]["$ref"].clone();
        let validator = jsonschema::draft202012::new(&root).unwrap();
        let mut watch = crate::watch::CopyWatch::default();
        watch.observe(
            "metal-1",
            lifeboat_provider::Generation(2),
            crate::watch::Seen::Unhealthy {
                detail: "exited".into(),
            },
            jiff::Timestamp::from_second(1_900_000_000).unwrap(),
        );
        let good = serde_json::to_value(&watch).unwrap();
        assert!(validator.is_valid(&good), "{good}");
        let mut bad = good.clone();
        bad["last"]["health"] = json!("sort of");
        assert!(!validator.is_valid(&bad), "{bad}");
        let mut bad = good;
        bad["generation"] = json!("two");
        assert!(!validator.is_valid(&bad), "{bad}");
    }

    #[test]
    fn durations_and_accounts_are_described_as_the_text_they_are_written_as() {
        let schedule = schema_of::<crate::deadline::Schedule>();
        let schemas = &schedule["components"]["schemas"];
        assert_eq!(
            schemas["Schedule"]["properties"]["estimate"]["type"],
            "string"
        );
        let notice = schema_of::<crate::model::Notice>();
        assert_eq!(notice["components"]["schemas"]["Account"]["type"], "string");
    }
}
