package httpserver

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// routeGuideService is the RouteGuide service as its generated code
// describes it: every method the HTTP listener answers over Connect.
var routeGuideService = pb.File_route_guide_proto.Services().ByName("RouteGuide")

// connectErrorSchema names the schema of a Connect error (connectError).
const connectErrorSchema = "ConnectError"

// connectPaths adds to doc a path for each method of svc over Connect,
// POST /{service}/{method}, derived from the service's descriptor so that a
// new RPC is described with no other change: a unary method with its
// request and answer as JSON, a streaming one as Connect streaming
// (application/connect+json), whose enveloped messages OpenAPI can only
// name. Each message's schema is the one protoc-gen-openapi generated, by
// its name, or one made from the descriptor as protojson encodes it
// (messageSchema) when no REST route uses the message. The operation's
// description is the REST operation's for the same method, as the
// descriptor carries no comments.
func connectPaths(doc map[string]any, svc protoreflect.ServiceDescriptor) {
	paths, _ := doc["paths"].(map[string]any)
	components, _ := doc["components"].(map[string]any)
	if paths == nil || components == nil {
		return
	}
	schemas, _ := components["schemas"].(map[string]any)
	if schemas == nil {
		schemas = map[string]any{}
		components["schemas"] = schemas
	}
	schemas[connectErrorSchema] = connectError
	descriptions := map[string]any{}
	for _, p := range paths {
		ops, _ := p.(map[string]any)
		for _, o := range ops {
			op, _ := o.(map[string]any)
			if id, ok := op["operationId"].(string); ok {
				descriptions[id] = op["description"]
			}
		}
	}
	methods := svc.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		id := string(svc.Name()) + "_" + string(m.Name())
		op := map[string]any{
			"tags":        []any{string(svc.Name()) + " (Connect)"},
			"operationId": id + "_Connect",
			"parameters": []any{map[string]any{
				"name": "Connect-Protocol-Version", "in": "header",
				"description": "1; the server takes a unary call without it too.",
				"schema":      map[string]any{"type": "string", "enum": []any{"1"}},
			}},
		}
		if d, ok := descriptions[id].(string); ok {
			op["description"] = d
		}
		in, out := schemaRef(schemas, m.Input()), schemaRef(schemas, m.Output())
		errorAnswer := map[string]any{
			"description": "A Connect error, with the HTTP status of its code",
			"content":     map[string]any{"application/json": map[string]any{"schema": ref(connectErrorSchema)}},
		}
		if !m.IsStreamingClient() && !m.IsStreamingServer() {
			op["summary"] = "A unary call over Connect, JSON in and out (application/proto takes and answers the binary message)."
			op["requestBody"] = map[string]any{
				"required": true,
				"content":  map[string]any{"application/json": map[string]any{"schema": in}},
			}
			op["responses"] = map[string]any{
				"200":     map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": out}}},
				"default": errorAnswer,
			}
		} else {
			kind := "server"
			switch {
			case m.IsStreamingClient() && m.IsStreamingServer():
				kind = "bidirectional (HTTP/2 only)"
			case m.IsStreamingClient():
				kind = "client"
			}
			op["summary"] = "A " + kind + " streaming call over Connect: each message in a 5-byte envelope (flags, then the length, big-endian), the last answer's envelope (flags 2) holding the end of the stream, {\"error\":...} when it failed. The schemas are each message's."
			op["x-connect-streaming"] = kind
			op["requestBody"] = map[string]any{
				"required": true,
				"content":  map[string]any{"application/connect+json": map[string]any{"schema": in}},
			}
			op["responses"] = map[string]any{
				"200":     map[string]any{"description": "The stream", "content": map[string]any{"application/connect+json": map[string]any{"schema": out}}},
				"default": errorAnswer,
			}
		}
		paths["/"+string(svc.FullName())+"/"+string(m.Name())] = map[string]any{"post": op}
	}
}

func ref(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// schemaName is protoc-gen-openapi's name for md's schema (with
// naming=json): the names of md and the messages it is nested in, joined
// by "_", capitalized; google.protobuf's messages are prefixed
// GoogleProtobuf.
func schemaName(md protoreflect.MessageDescriptor) string {
	parts := []string{string(md.Name())}
	for p := md.Parent(); p != nil; p = p.Parent() {
		if pm, ok := p.(protoreflect.MessageDescriptor); ok {
			parts = append([]string{string(pm.Name())}, parts...)
		}
	}
	name := strings.Join(parts, "_")
	if md.ParentFile().Package() == "google.protobuf" {
		name = "GoogleProtobuf" + name
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// schemaRef returns the schema of a field or message of type md as
// protojson encodes it: the well-known types as their JSON forms, any
// other message as a reference to its schema in schemas, which it adds
// (messageSchema) when protoc-gen-openapi did not.
func schemaRef(schemas map[string]any, md protoreflect.MessageDescriptor) map[string]any {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return map[string]any{"type": "string", "format": "date-time"}
	case "google.protobuf.Duration":
		return map[string]any{"type": "string", "format": "duration"}
	case "google.protobuf.FieldMask":
		return map[string]any{"type": "string", "format": "field-mask"}
	case "google.protobuf.Empty":
		return map[string]any{"type": "object"}
	}
	name := schemaName(md)
	if _, ok := schemas[name]; !ok {
		schemas[name] = map[string]any{} // a message that holds itself refers to it
		schemas[name] = messageSchema(schemas, md)
	}
	return ref(name)
}

// messageSchema is md's schema as protojson encodes it: its fields by JSON
// name.
func messageSchema(schemas map[string]any, md protoreflect.MessageDescriptor) map[string]any {
	props := map[string]any{}
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		var s map[string]any
		switch {
		case f.IsMap():
			s = map[string]any{"type": "object", "additionalProperties": fieldSchema(schemas, f.MapValue())}
		case f.IsList():
			s = map[string]any{"type": "array", "items": fieldSchema(schemas, f)}
		default:
			s = fieldSchema(schemas, f)
		}
		props[f.JSONName()] = s
	}
	return map[string]any{
		"type":        "object",
		"properties":  props,
		"description": string(md.FullName()) + ", as protojson encodes it.",
	}
}

// fieldSchema is the schema of one value of f, as protojson encodes it.
func fieldSchema(schemas map[string]any, f protoreflect.FieldDescriptor) map[string]any {
	switch f.Kind() {
	case protoreflect.BoolKind:
		return map[string]any{"type": "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return map[string]any{"type": "integer", "format": "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return map[string]any{"type": "integer", "format": "uint32"}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return map[string]any{"type": "string", "format": "int64"}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return map[string]any{"type": "string", "format": "uint64"}
	case protoreflect.FloatKind:
		return map[string]any{"type": "number", "format": "float"}
	case protoreflect.DoubleKind:
		return map[string]any{"type": "number", "format": "double"}
	case protoreflect.StringKind:
		return map[string]any{"type": "string"}
	case protoreflect.BytesKind:
		return map[string]any{"type": "string", "format": "bytes"}
	case protoreflect.EnumKind:
		values := f.Enum().Values()
		names := make([]any, values.Len())
		for i := range values.Len() {
			names[i] = string(values.Get(i).Name())
		}
		return map[string]any{"type": "string", "format": "enum", "enum": names}
	default: // messages and groups
		return schemaRef(schemas, f.Message())
	}
}

// connectError is the schema of a Connect error (connectrpc.com's protocol
// specification): a code by name, and details as Any in base64.
var connectError = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"code":    map[string]any{"type": "string", "description": "The code, in snake case: invalid_argument, not_found, aborted..."},
		"message": map[string]any{"type": "string"},
		"details": map[string]any{
			"type": "array",
			"items": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"type":  map[string]any{"type": "string", "description": "The detail's message name, such as google.rpc.BadRequest."},
					"value": map[string]any{"type": "string", "format": "byte", "description": "The detail's binary message, base64."},
					"debug": map[string]any{"type": "object", "description": "The detail as JSON, when the server adds it."},
				},
			},
		},
	},
	"description": "A Connect error: the body of a failed unary call, and the error of a stream's end.",
}
