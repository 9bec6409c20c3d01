package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// def is one wire type with the texts its schema carries.
type def struct {
	v           any
	description string
	legacy      string
}

func wireDef(v any, description, legacy string) def { return def{v, description, legacy} }

// frameSchemas derives the schema of every agent frame type from its
// struct. It panics on a malformed tag: the tables are built when the
// package loads, so a bad tag fails every test at once.
func frameSchemas(defs ...def) map[string]Schema {
	out := make(map[string]Schema, len(defs))
	for _, d := range defs {
		name := d.v.(Frame).FrameType()
		if _, dup := out[name]; dup {
			panic("protocol: frame type " + name + " defined twice")
		}
		out[name] = schemaOf(name, d)
	}
	return out
}

// bodySchemas derives the schema of every HTTP body from its struct.
func bodySchemas(defs ...def) map[string]Schema {
	out := make(map[string]Schema, len(defs))
	for _, d := range defs {
		name := d.v.(Body).BodyName()
		if _, dup := out[name]; dup {
			panic("protocol: body " + name + " defined twice")
		}
		out[name] = schemaOf(name, d)
	}
	return out
}

// wireField ties a schema field to the struct field it decodes into.
type wireField struct {
	name  string
	index int
}

func schemaOf(name string, d def) Schema {
	t := reflect.TypeOf(d.v)
	s := Schema{Description: d.description, Legacy: d.legacy, goType: t, typeField: -1}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("protocol")
		if tag == "-" {
			if sf.Tag.Get("json") == "type" && sf.Type.Kind() == reflect.String {
				s.typeField = i // a frame's own type, set by decoding
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		jname, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if jname == "" || jname == "-" || sf.Anonymous {
			panic(fmt.Sprintf("protocol: %s.%s needs a json name", name, sf.Name))
		}
		f := Field{Name: jname, Kind: kindOf(sf.Type)}
		for opt := range strings.SplitSeq(tag, ",") {
			key, val, _ := strings.Cut(opt, "=")
			switch key {
			case "":
			case "required":
				f.Required = true
			case "kind":
				f.Kind = parseKind(name, val)
			case "max":
				n, err := strconv.Atoi(val)
				if err != nil || n <= 0 {
					panic(fmt.Sprintf("protocol: %s.%s: bad max %q", name, sf.Name, val))
				}
				f.MaxLen = n
			case "format":
				f.Format = Format(val)
				if f.Format != FormatAgentID && f.Format != FormatRecipient {
					panic(fmt.Sprintf("protocol: %s.%s: unknown format %q", name, sf.Name, val))
				}
			default:
				panic(fmt.Sprintf("protocol: %s.%s: unknown tag option %q", name, sf.Name, opt))
			}
		}
		s.Fields = append(s.Fields, f)
		s.wire = append(s.wire, wireField{name: jname, index: i})
	}
	s.checkOrder = checkOrder(s.Fields)
	return s
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// kindOf is the JSON kind a Go type holds when the tag does not say.
func kindOf(t reflect.Type) Kind {
	if t == rawMessageType {
		return KindAny
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return KindString
	case reflect.Int, reflect.Int64, reflect.Int32:
		return KindInteger
	case reflect.Bool:
		return KindBool
	case reflect.Map, reflect.Struct:
		return KindObject
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return KindStringArray
		}
	}
	return KindAny
}

func parseKind(name, s string) Kind {
	for k := KindAny; k <= KindBool; k++ {
		if k.String() == s {
			return k
		}
	}
	panic(fmt.Sprintf("protocol: %s: unknown kind %q", name, s))
}

// AgentFrameTypes lists the frame types an agent may send, sorted.
func AgentFrameTypes() []string { return KnownFrameTypes() }

// BodyNames lists the HTTP body schema names, sorted.
func BodyNames() []string {
	out := make([]string, 0, len(httpBodies))
	for k := range httpBodies {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// OutFrameTypes lists the frame types the hub sends on the agent socket,
// sorted.
func OutFrameTypes() []string {
	return []string{OutAgentJoined, OutAgentLeft, OutAgents, OutChannelAgentJoined, OutChannelHistory,
		OutChannelMessage, OutChannelPublished, OutChannelSubscribed, OutChannelUnsubscribed, OutChannels,
		OutError, OutIdentified, OutMessage, OutMessageSent, OutPong, OutPresence, OutStatusChanged, OutStatusUpdated,
		OutTaskAck, OutTaskAssign, OutTaskCancelled, OutTaskContinue, OutTaskReassign}
}

// MalformedError reports fields that passed validation but do not fit
// their Go type: a nested object of the wrong shape (usage, check). The
// frame or body is still returned, those fields left zero, so the
// handler refuses them where and how it always did.
type MalformedError struct {
	Fields []string
}

func (e *MalformedError) Error() string {
	return "malformed fields: " + strings.Join(e.Fields, ", ")
}

// Has reports whether field is among the malformed ones.
func (e *MalformedError) Has(field string) bool {
	return slices.Contains(e.Fields, field)
}

// DecodeFrame parses and validates one agent frame (DecodeObject, then
// ValidateFrame, unchanged: the same errors in the same order) and
// returns it as its wire type. A *MalformedError comes with a usable
// frame; any other error with none.
func DecodeFrame(data []byte) (string, Frame, error) {
	obj, err := DecodeObject(data)
	if err != nil {
		return "", nil, err
	}
	typ, err := ValidateFrame(obj)
	if err != nil {
		return typ, nil, err
	}
	v, err := decodeInto(agentFrames[typ], obj)
	return typ, v.(Frame), err
}

// DecodeBody validates obj as body T (ValidateBody, unchanged) and
// returns it as T. A *MalformedError comes with a usable body.
func DecodeBody[T Body](obj Object) (T, error) {
	var zero T
	name := zero.BodyName()
	if err := ValidateBody(name, obj); err != nil {
		return zero, err
	}
	v, err := decodeInto(httpBodies[name], obj)
	return v.(T), err
}

// DecodeBodyNamed is DecodeBody for a body known by name only (a route
// table's): the value's dynamic type is the body's struct. It panics on
// an unknown name, as ValidateBody does.
func DecodeBodyNamed(name string, obj Object) (Body, error) {
	if err := ValidateBody(name, obj); err != nil {
		return nil, err
	}
	v, err := decodeInto(httpBodies[name], obj)
	return v.(Body), err
}

// decodeInto fills a new value of s's type from a validated object, field
// by field: only the schema's exact names are read (encoding/json would
// match keys case-insensitively, letting an unvalidated "AGENT_ID"
// override the validated "agent_id").
func decodeInto(s Schema, obj Object) (any, error) {
	p := reflect.New(s.goType)
	var bad []string
	for _, wf := range s.wire {
		raw, ok := obj[wf.name]
		if !ok || raw == nil {
			continue
		}
		if err := setField(p.Elem().Field(wf.index), raw); err != nil {
			bad = append(bad, wf.name)
		}
	}
	if s.typeField >= 0 {
		p.Elem().Field(s.typeField).SetString(obj.String("type"))
	}
	if len(bad) > 0 {
		return p.Elem().Interface(), &MalformedError{Fields: bad}
	}
	return p.Elem().Interface(), nil
}

var errFieldType = errors.New("value does not fit the field")

// setField stores a decoded JSON value (json.Number for numbers) in v.
func setField(v reflect.Value, raw any) error {
	t := v.Type()
	switch {
	case t == rawMessageType:
		b, err := json.Marshal(raw)
		if err != nil {
			return err
		}
		v.SetBytes(b)
		return nil
	case t.Kind() == reflect.Interface:
		v.Set(reflect.ValueOf(raw))
		return nil
	case t.Kind() == reflect.String:
		s, ok := raw.(string)
		if !ok {
			return errFieldType
		}
		v.SetString(s)
		return nil
	case t.Kind() == reflect.Int64 || t.Kind() == reflect.Int:
		n, ok := raw.(json.Number)
		if !ok {
			return errFieldType
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(i)
		return nil
	case t.Kind() == reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return errFieldType
		}
		v.SetBool(b)
		return nil
	case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Interface:
		m, ok := raw.(map[string]any)
		if !ok {
			return errFieldType
		}
		v.Set(reflect.ValueOf(m))
		return nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		arr, ok := raw.([]any)
		if !ok {
			return errFieldType
		}
		out := reflect.MakeSlice(t, len(arr), len(arr))
		for i, el := range arr {
			s, ok := el.(string)
			if !ok {
				return errFieldType
			}
			out.Index(i).SetString(s)
		}
		v.Set(out)
		return nil
	case t.Kind() == reflect.Pointer && t.Elem().Kind() != reflect.Struct:
		p := reflect.New(t.Elem())
		if err := setField(p.Elem(), raw); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	// Nested shapes (structs, slices of structs) go through
	// encoding/json, as Object.Into does.
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	p := reflect.New(t)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers inside stay json.Number, as in Object
	if err := dec.Decode(p.Interface()); err != nil {
		return err
	}
	v.Set(p.Elem())
	return nil
}
