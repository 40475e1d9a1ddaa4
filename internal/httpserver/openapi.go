package httpserver

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// openAPIYAML is the OpenAPI 3 document of the REST routes, generated from
// the protos by gnostic's protoc-gen-openapi (buf generate; see
// buf.gen.yaml), which writes YAML only.
//
//go:embed openapi/openapi.yaml
var openAPIYAML []byte

// OpenAPI returns the OpenAPI 3 document served at /openapi.json: the
// generated one in JSON, with the statuses rest gives where a gRPC answer
// has none (201 for a create, 204 for a delete), and the watch feed. It fails only when the
// embedded document does not decode.
func OpenAPI() ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	restatus := func(path, method, code, description string) {
		p, _ := paths[path].(map[string]any)
		op, _ := p[method].(map[string]any)
		responses, _ := op["responses"].(map[string]any)
		ok, found := responses["200"].(map[string]any)
		if !found {
			return
		}
		delete(responses, "200")
		ok["description"] = description
		if code == "204" {
			delete(ok, "content")
		}
		responses[code] = ok
	}
	restatus("/v1/people", "post", "201", "Created; Location names the person")
	restatus("/v1/people/{name}", "delete", "204", "Deleted")
	if paths != nil {
		paths["/v1/people:watch"] = watchPath
	}
	return json.MarshalIndent(doc, "", "  ")
}

// watchPath describes the watch feed, which no google.api.http rule can:
// WatchPeople's answers as Server-Sent Events (see watchHandler).
var watchPath = map[string]any{
	"get": map[string]any{
		"tags":        []any{"RouteGuide"},
		"operationId": "RouteGuide_WatchPeopleEvents",
		"description": "Every change to the directory as a Server-Sent Event: `id:` its revision, `event:` added, updated or deleted, `data:` the WatchPeopleResponse as JSON. With current=true, everyone first as `current` events (no id), then `synced`. Last-Event-ID resumes after that revision; a revision no longer kept is an `event: reset`. `: ping` comments keep an idle feed open; an `error` event ends it.",
		"parameters": []any{
			map[string]any{"name": "current", "in": "query", "description": "Send everyone first.", "schema": map[string]any{"type": "boolean"}},
			map[string]any{"name": "Last-Event-ID", "in": "header", "description": "The last revision the client saw.", "schema": map[string]any{"type": "string"}},
		},
		"responses": map[string]any{
			"200": map[string]any{
				"description": "The feed",
				"content":     map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{"type": "string"}}},
			},
			"default": map[string]any{
				"description": "An error before the feed starts",
				"content":     map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Status"}}},
			},
		},
	},
}
