package protocol

import "sort"

// DiscoveryField is one field in the schema discovery document.
type DiscoveryField struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	MaxLength int    `json:"max_length,omitempty"`
	Format    Format `json:"format,omitempty"`
}

// DiscoveryEntry describes one frame type or body.
type DiscoveryEntry struct {
	Type        string           `json:"type,omitempty"`
	Key         string           `json:"key,omitempty"`
	Description string           `json:"description"`
	Required    []DiscoveryField `json:"required_fields"`
	Optional    []DiscoveryField `json:"optional_fields"`
}

// DiscoveryDoc is served at GET /api/schemas: the planned (never routed)
// schema discovery document of the original, built from the same schemas
// validation uses.
type DiscoveryDoc struct {
	Version   string           `json:"version"`
	WebSocket []DiscoveryEntry `json:"websocket"`
	HTTP      []DiscoveryEntry `json:"http"`
}

// Discovery builds the discovery document.
func Discovery() DiscoveryDoc {
	doc := DiscoveryDoc{Version: "1.0"}
	for _, t := range KnownFrameTypes() {
		e := describe(agentFrames[t])
		e.Type = t
		doc.WebSocket = append(doc.WebSocket, e)
	}
	keys := make([]string, 0, len(httpBodies))
	for k := range httpBodies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := describe(httpBodies[k])
		e.Key = k
		doc.HTTP = append(doc.HTTP, e)
	}
	return doc
}

func describe(s Schema) DiscoveryEntry {
	e := DiscoveryEntry{Description: s.Description, Required: []DiscoveryField{}, Optional: []DiscoveryField{}}
	for _, f := range s.Fields {
		df := DiscoveryField{Name: f.Name, Type: f.Kind.String(), Format: f.Format}
		if f.Kind == KindString {
			// Only strings are held to a length (a task_recovering
			// "description" may be any JSON).
			df.MaxLength = f.limit()
		}
		if f.Required {
			e.Required = append(e.Required, df)
		} else {
			e.Optional = append(e.Optional, df)
		}
	}
	return e
}
