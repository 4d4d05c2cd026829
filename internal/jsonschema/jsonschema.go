// Package jsonschema checks JSON documents against the subset of JSON Schema
// (draft 2020-12) that the repository's schemas use: type, enum, required,
// properties, additionalProperties, items, pattern, minimum, maximum and
// local references ("#/$defs/name"). A keyword outside that subset is an
// error, so that a schema never silently checks less than it says.
package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// ErrInvalid is wrapped by every error Validate returns for a document that
// does not match its schema.
var ErrInvalid = errors.New("document does not match the schema")

// ErrSchema is wrapped by the errors about the schema itself (malformed, a
// keyword this package does not implement, a reference it cannot resolve).
var ErrSchema = errors.New("unsupported or malformed schema")

var known = map[string]bool{
	"$schema": true, "$id": true, "title": true, "description": true, "$defs": true, "$ref": true,
	"type": true, "enum": true, "required": true, "properties": true, "additionalProperties": true,
	"items": true, "pattern": true, "minimum": true, "maximum": true,
}

// Validate checks doc against schema. The error lists every mismatch, each
// with the JSON pointer of the value; it wraps [ErrInvalid] (or [ErrSchema]).
func Validate(schema, doc []byte) error {
	var root map[string]any
	if err := decode(schema, &root); err != nil {
		return fmt.Errorf("%w: %v", ErrSchema, err)
	}
	var v any
	if err := decode(doc, &v); err != nil {
		return fmt.Errorf("%w: not JSON: %v", ErrInvalid, err)
	}
	c := &checker{root: root}
	c.check(root, v, "")
	if c.schemaErr != nil {
		return c.schemaErr
	}
	if len(c.errs) > 0 {
		return fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(c.errs, "\n  "))
	}
	return nil
}

func decode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

type checker struct {
	root      map[string]any
	errs      []string
	schemaErr error
}

func (c *checker) fail(ptr, format string, args ...any) {
	if ptr == "" {
		ptr = "/"
	}
	c.errs = append(c.errs, ptr+": "+fmt.Sprintf(format, args...))
}

func (c *checker) bad(format string, args ...any) {
	if c.schemaErr == nil {
		c.schemaErr = fmt.Errorf("%w: %s", ErrSchema, fmt.Sprintf(format, args...))
	}
}

func (c *checker) resolve(ref string) map[string]any {
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		c.bad("reference %q: only #/$defs/NAME is supported", ref)
		return nil
	}
	defs, _ := c.root["$defs"].(map[string]any)
	s, ok := defs[name].(map[string]any)
	if !ok {
		c.bad("reference %q: no such definition", ref)
		return nil
	}
	return s
}

func typeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, ok := new(big.Int).SetString(x.String(), 10); ok {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func (c *checker) check(s map[string]any, v any, ptr string) {
	if c.schemaErr != nil {
		return
	}
	for k := range s {
		if !known[k] {
			c.bad("keyword %q at %s is not supported", k, ptr)
			return
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		if r := c.resolve(ref); r != nil {
			c.check(r, v, ptr)
		}
	}
	got := typeOf(v)
	if t, ok := s["type"]; ok {
		var want []string
		switch x := t.(type) {
		case string:
			want = []string{x}
		case []any:
			for _, e := range x {
				if es, ok := e.(string); ok {
					want = append(want, es)
				}
			}
		}
		match := slices.Contains(want, got) || (got == "integer" && slices.Contains(want, "number"))
		if !match {
			c.fail(ptr, "is %s, want %s", got, strings.Join(want, " or "))
			return
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) && typeOf(e) == got {
				found = true
			}
		}
		if !found {
			c.fail(ptr, "%v is not one of %v", v, enum)
		}
	}
	switch x := v.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				c.bad("pattern %q: %v", p, err)
				return
			}
			if !re.MatchString(x) {
				c.fail(ptr, "%q does not match %s", x, p)
			}
		}
	case json.Number:
		f, _ := x.Float64()
		if m, ok := s["minimum"].(json.Number); ok {
			if min, _ := m.Float64(); f < min {
				c.fail(ptr, "%v is below the minimum %v", x, m)
			}
		}
		if m, ok := s["maximum"].(json.Number); ok {
			if max, _ := m.Float64(); f > max {
				c.fail(ptr, "%v is above the maximum %v", x, m)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				c.check(items, e, fmt.Sprintf("%s/%d", ptr, i))
			}
		}
	case map[string]any:
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if name, _ := r.(string); name != "" {
					if _, ok := x[name]; !ok {
						c.fail(ptr, "required field %q is missing", name)
					}
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := ptr + "/" + k
			if ps, ok := props[k].(map[string]any); ok {
				c.check(ps, x[k], p)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					c.fail(p, "unknown field (not in the schema)")
				}
			case map[string]any:
				c.check(ap, x[k], p)
			}
		}
	}
}
