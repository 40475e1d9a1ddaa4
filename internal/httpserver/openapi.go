package httpserver

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// openAPIYAML is the OpenAPI 3 document of the REST routes, generated from
// the protos by gnostic's protoc-gen-openapi (buf generate; see
// buf.gen.yaml), which writes YAML only.
//
//go:embed openapi/openapi.yaml
var openAPIYAML []byte

// OpenAPI returns the OpenAPI 3 document served at /openapi.json: the
// generated one in JSON, with the statuses rest gives where a gRPC answer
// has none (201 for a create, 204 for a delete), the answers of routes with
// a response_body (responseBodies), the headers of safe writes
// (safeWrites), the watch feed, and every method over Connect
// (connectPaths). It fails only when the embedded document does not decode.
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
	responseBodies(doc, routeGuideService)
	safeWrites(paths)
	if paths != nil {
		paths["/v1/people:watch"] = watchPath
	}
	connectPaths(doc, routeGuideService)
	return json.MarshalIndent(doc, "", "  ")
}

// safeWrites describes the headers of rest's safe writes, which no
// google.api.http rule can: the ETag of a person's answer, If-Match on a
// PATCH or DELETE with its 412, and Idempotency-Key on every write.
func safeWrites(paths map[string]any) {
	op := func(path, method string) map[string]any {
		p, _ := paths[path].(map[string]any)
		o, _ := p[method].(map[string]any)
		return o
	}
	response := func(o map[string]any, code string) map[string]any {
		responses, _ := o["responses"].(map[string]any)
		r, _ := responses[code].(map[string]any)
		return r
	}
	addParameters := func(o map[string]any, params ...any) {
		if o == nil {
			return
		}
		existing, _ := o["parameters"].([]any)
		o["parameters"] = append(existing, params...)
	}
	addHeaders := func(r map[string]any, headers map[string]any) {
		if r == nil {
			return
		}
		h, _ := r["headers"].(map[string]any)
		if h == nil {
			h = map[string]any{}
			r["headers"] = h
		}
		for k, v := range headers {
			h[k] = v
		}
	}
	etag := map[string]any{"ETag": map[string]any{
		"description": "The person's etag, a quoted strong entity tag (RFC 9110): send it back in If-Match to make a PATCH or DELETE conditional.",
		"schema":      map[string]any{"type": "string"},
	}}
	ifMatch := map[string]any{
		"name": "If-Match", "in": "header",
		"description": "Write only if the person's etag is still this one (one quoted strong etag, as ETag gives it); otherwise 412 and nothing changes. `*` or none: unconditional. The same as the etag parameter.",
		"schema":      map[string]any{"type": "string"},
	}
	idempotencyKey := map[string]any{
		"name": "Idempotency-Key", "in": "header",
		"description": "The write's request id (a UUID), as the requestId parameter: a retry with the same key and request answers what the first answered and changes nothing.",
		"schema":      map[string]any{"type": "string", "format": "uuid"},
	}
	preconditionFailed := map[string]any{
		"description": "Precondition Failed: the person's etag is no longer If-Match's (ABORTED over gRPC); nothing changed",
		"content":     map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Status"}}},
	}

	addHeaders(response(op("/v1/people/{name}", "get"), "200"), etag)

	post := op("/v1/people", "post")
	addParameters(post, idempotencyKey)
	created := response(post, "201")
	addHeaders(created, etag)
	addHeaders(created, map[string]any{"Location": map[string]any{"description": "The person's URL.", "schema": map[string]any{"type": "string"}}})

	for _, w := range []struct{ path, method string }{{"/v1/people/{person.name}", "patch"}, {"/v1/people/{name}", "delete"}} {
		o := op(w.path, w.method)
		if o == nil {
			continue
		}
		addParameters(o, ifMatch, idempotencyKey)
		responses, _ := o["responses"].(map[string]any)
		responses["412"] = preconditionFailed
	}
	addHeaders(response(op("/v1/people/{person.name}", "patch"), "200"), etag)
}

// responseBodies gives each REST route whose google.api.http rule has a
// response_body the schema of that field, which is what the route answers
// (vanguard sends the field alone); protoc-gen-openapi documents the whole
// response message instead.
func responseBodies(doc map[string]any, svc protoreflect.ServiceDescriptor) {
	paths, _ := doc["paths"].(map[string]any)
	components, _ := doc["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	if paths == nil || schemas == nil {
		return
	}
	methods := svc.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		field := m.Output().Fields().ByName(protoreflect.Name(rule.GetResponseBody()))
		if field == nil || field.Message() == nil {
			continue
		}
		verb, path := httpPattern(rule)
		p, _ := paths[path].(map[string]any)
		op, _ := p[verb].(map[string]any)
		responses, _ := op["responses"].(map[string]any)
		for code, r := range responses {
			r, _ := r.(map[string]any)
			if strings.HasPrefix(code, "2") && r["content"] != nil {
				r["content"] = map[string]any{"application/json": map[string]any{"schema": schemaRef(schemas, field.Message())}}
			}
		}
	}
}

// httpPattern returns the lower-case verb and the path of rule.
func httpPattern(rule *annotations.HttpRule) (verb, path string) {
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "get", p.Get
	case *annotations.HttpRule_Post:
		return "post", p.Post
	case *annotations.HttpRule_Put:
		return "put", p.Put
	case *annotations.HttpRule_Patch:
		return "patch", p.Patch
	case *annotations.HttpRule_Delete:
		return "delete", p.Delete
	case *annotations.HttpRule_Custom:
		return strings.ToLower(p.Custom.GetKind()), p.Custom.GetPath()
	}
	return "", ""
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
