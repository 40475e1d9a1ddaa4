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
// has none (201 for a create, 204 for a delete). It fails only when the
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
	return json.MarshalIndent(doc, "", "  ")
}
