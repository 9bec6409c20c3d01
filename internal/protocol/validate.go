package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Validation error codes.
const (
	ErrRequired           = "required"
	ErrWrongType          = "wrong_type"
	ErrTooLong            = "too_long"
	ErrUnknownMessageType = "unknown_message_type"
	ErrInvalidValue       = "invalid_value"
	ErrOutOfRange         = "out_of_range"
	ErrTooLarge           = "too_large"
)

// FieldError is one problem with one field.
type FieldError struct {
	Field      string   `json:"field"`
	Error      string   `json:"error"`
	Detail     string   `json:"detail"`
	Value      any      `json:"value,omitempty"`
	KnownTypes []string `json:"known_types,omitempty"`
}

// ValidationError is returned when input fails its schema.
type ValidationError struct {
	// MessageType is the frame's raw "type" value ("unknown" when absent).
	MessageType any
	Errors      []FieldError
	// Legacy is the original hub's error string for this HTTP body, when
	// the failure is on a required field.
	Legacy string
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Field + ": " + fe.Detail
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// ErrInvalidJSON is returned for input that is not JSON at all.
var ErrInvalidJSON = errors.New("invalid_json")

// Object is a decoded JSON object whose numbers are json.Number, so
// integers and floats stay apart.
type Object map[string]any

// DecodeObject parses data as one JSON value. A value that is not an
// object is reported as a ValidationError on field "message".
func DecodeObject(data []byte) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, ErrInvalidJSON
	}
	if dec.More() {
		return nil, ErrInvalidJSON
	}
	if !finiteNumbers(v) {
		// 1e309 is valid JSON text but no float64: relayed, it would be a
		// frame other clients cannot decode (Go) or read as Infinity (JS).
		return nil, ErrInvalidJSON
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &ValidationError{MessageType: "unknown", Errors: []FieldError{{
			Field: "message", Error: ErrWrongType, Detail: "expected JSON object",
		}}}
	}
	return Object(obj), nil
}

// finiteNumbers reports whether every number in v fits a float64.
func finiteNumbers(v any) bool {
	switch x := v.(type) {
	case json.Number:
		_, err := strconv.ParseFloat(string(x), 64)
		return err == nil
	case map[string]any:
		for _, e := range x {
			if !finiteNumbers(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !finiteNumbers(e) {
				return false
			}
		}
	}
	return true
}

// ValidateFrame checks a decoded agent frame and returns its type.
func ValidateFrame(obj Object) (string, error) {
	rawType, present := obj["type"]
	if !present || rawType == nil {
		return "", &ValidationError{MessageType: "unknown", Errors: []FieldError{{
			Field: "type", Error: ErrRequired, Detail: "field is required"}}}
	}
	t, ok := rawType.(string)
	if !ok {
		return "", &ValidationError{MessageType: rawType, Errors: []FieldError{{
			Field: "type", Error: ErrWrongType, Detail: "expected string, got " + TypeName(rawType), Value: rawType}}}
	}
	s, ok := agentFrames[t]
	if !ok {
		return "", &ValidationError{MessageType: t, Errors: []FieldError{{
			Field: "type", Error: ErrUnknownMessageType, Detail: fmt.Sprintf("unknown message type '%s'", t),
			KnownTypes: KnownFrameTypes()}}}
	}
	if errs := check(s, obj); len(errs) > 0 {
		return t, &ValidationError{MessageType: t, Errors: errs}
	}
	return t, nil
}

// ValidateBody checks a decoded HTTP body against the named schema.
func ValidateBody(name string, obj Object) error {
	s, ok := httpBodies[name]
	if !ok {
		panic("protocol: no body schema " + name)
	}
	errs := check(s, obj)
	if len(errs) == 0 {
		return nil
	}
	ve := &ValidationError{MessageType: name, Errors: errs}
	// The original's error strings: "missing required field: x" only fits
	// an absent field; "missing or invalid field: x" fits any error of x.
	onlyMissing := strings.HasPrefix(s.Legacy, "missing required")
	for _, fe := range errs {
		if isRequired(s, fe.Field) && (!onlyMissing || fe.Error == ErrRequired) {
			ve.Legacy = s.Legacy
			break
		}
	}
	return ve
}

// BodySchema returns the named HTTP body schema.
func BodySchema(name string) (Schema, bool) {
	s, ok := httpBodies[name]
	s.Name = name
	return s, ok
}

func isRequired(s Schema, field string) bool {
	for _, f := range s.Fields {
		if f.Name == field {
			return f.Required
		}
	}
	return false
}

// checkOrder is fields in check's order: required first, then optional,
// each group in byte order of name.
func checkOrder(fields []Field) []Field {
	out := append([]Field(nil), fields...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Required != out[j].Required {
			return out[i].Required
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// check returns the errors of obj against s: required fields first, then
// optional ones, each group in byte order of field name, at most one error
// per field.
func check(s Schema, obj Object) []FieldError {
	fields := s.checkOrder
	if fields == nil {
		fields = checkOrder(s.Fields)
	}
	var errs []FieldError
	for _, f := range fields {
		v, present := obj[f.Name]
		if !present || v == nil {
			if f.Required {
				errs = append(errs, FieldError{Field: f.Name, Error: ErrRequired, Detail: "field is required"})
			}
			continue
		}
		if fe, bad := checkValue(f, v); bad {
			errs = append(errs, fe)
		}
	}
	return errs
}

func checkValue(f Field, v any) (FieldError, bool) {
	wrong := func(want string) (FieldError, bool) {
		return FieldError{Field: f.Name, Error: ErrWrongType, Detail: "expected " + want + ", got " + TypeName(v), Value: v}, true
	}
	switch f.Kind {
	case KindString:
		s, ok := v.(string)
		if !ok {
			return wrong("string")
		}
		if max := f.limit(); max > 0 && utf8.RuneCountInString(s) > max {
			return FieldError{Field: f.Name, Error: ErrTooLong,
				Detail: fmt.Sprintf("exceeds maximum length of %d characters", max), Value: truncate(s)}, true
		}
		if err := f.Format.check(s); err != nil {
			return FieldError{Field: f.Name, Error: ErrInvalidValue, Detail: err.Error(), Value: truncate(s)}, true
		}
	case KindInteger, KindPositiveInteger:
		n, ok := v.(json.Number)
		if !ok || !isIntegerToken(n) {
			return wrong("integer")
		}
		i, err := n.Int64()
		if err != nil {
			return FieldError{Field: f.Name, Error: ErrInvalidValue, Detail: "integer out of range", Value: v}, true
		}
		if f.Kind == KindPositiveInteger && i <= 0 {
			return FieldError{Field: f.Name, Error: ErrInvalidValue, Detail: "expected a positive integer", Value: v}, true
		}
	case KindObject:
		if _, ok := v.(map[string]any); !ok {
			return wrong("object")
		}
	case KindBool:
		if _, ok := v.(bool); !ok {
			return wrong("boolean")
		}
	case KindStringArray:
		arr, ok := v.([]any)
		if !ok {
			return wrong("array")
		}
		for i, el := range arr {
			if _, ok := el.(string); !ok {
				return FieldError{Field: fmt.Sprintf("%s[%d]", f.Name, i), Error: ErrWrongType,
					Detail: "expected string, got " + TypeName(el), Value: el}, true
			}
		}
	}
	return FieldError{}, false
}

// isIntegerToken reports whether a JSON number was written as an integer:
// 1 is, 1.0 and 1e3 are not.
func isIntegerToken(n json.Number) bool {
	return !strings.ContainsAny(string(n), ".eE")
}

func truncate(s string) string {
	if utf8.RuneCountInString(s) <= 50 {
		return s
	}
	r := []rune(s)
	return string(r[:50]) + "..."
}

// TypeName names the JSON type of a decoded value as validation errors do.
func TypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if isIntegerToken(x) {
			return "integer"
		}
		return "float"
	case float64:
		return "float"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "unknown"
}

// Accessors for validated objects. They return the zero value when the
// field is absent or null; validation has already fixed the type.

// String returns a string field.
func (o Object) String(k string) string {
	s, _ := o[k].(string)
	return s
}

// Has reports whether k is present and not null.
func (o Object) Has(k string) bool { return o[k] != nil }

// Int returns an integer field.
func (o Object) Int(k string) int64 {
	n, _ := o[k].(json.Number)
	i, _ := n.Int64()
	return i
}

// Map returns an object field.
func (o Object) Map(k string) map[string]any {
	m, _ := o[k].(map[string]any)
	return m
}

// Strings returns an array-of-strings field.
func (o Object) Strings(k string) []string {
	arr, _ := o[k].([]any)
	out := make([]string, 0, len(arr))
	for _, el := range arr {
		if s, ok := el.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Raw returns the field as decoded (json.Number for numbers).
func (o Object) Raw(k string) any { return o[k] }
