package jsonschema

import (
	"errors"
	"strings"
	"testing"
)

const schema = `{
  "type": "object", "additionalProperties": false, "required": ["n", "list"],
  "properties": {
    "n": {"type": "integer", "minimum": 0, "maximum": 10},
    "s": {"type": "string", "pattern": "^[a-z]+$"},
    "e": {"type": "string", "enum": ["a", "b"]},
    "x": {"type": ["number", "null"]},
    "list": {"type": "array", "items": {"$ref": "#/$defs/item"}}
  },
  "$defs": {"item": {"type": "object", "required": ["k"], "properties": {"k": {"type": "boolean"}}}}
}`

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want []string // substrings of the error; none: valid
	}{
		{`{"n": 3, "list": [{"k": true}], "s": "abc", "e": "a", "x": null}`, nil},
		{`{"n": 3, "list": [], "x": 1.5}`, nil},
		{`{"list": []}`, []string{`/: required field "n" is missing`}},
		{`{"n": 3, "list": [], "extra": 1}`, []string{"/extra: unknown field"}},
		{`{"n": 1.5, "list": []}`, []string{"/n: is number, want integer"}},
		{`{"n": 11, "list": []}`, []string{"/n: 11 is above the maximum 10"}},
		{`{"n": -1, "list": []}`, []string{"/n: -1 is below the minimum 0"}},
		{`{"n": 1, "list": [], "s": "ABC"}`, []string{`/s: "ABC" does not match`}},
		{`{"n": 1, "list": [], "e": "c"}`, []string{"/e: c is not one of"}},
		{`{"n": 1, "list": [{}, {"k": 1}]}`, []string{`/list/0: required field "k"`, "/list/1/k: is integer, want boolean"}},
		{`{"n": 1, "list": null}`, []string{"/list: is null, want array"}},
		{`{"n": 1, "list": []} {}`, []string{"not JSON"}},
	} {
		err := Validate([]byte(schema), []byte(c.doc))
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.doc, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", c.doc, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.doc, err, w)
			}
		}
	}
}

func TestUnsupportedKeywordIsASchemaError(t *testing.T) {
	for _, s := range []string{`{"oneOf": []}`, `{"$ref": "other.json"}`, `{"$ref": "#/$defs/none"}`, `{"type": "string", "pattern": "("}`} {
		if err := Validate([]byte(s), []byte(`"x"`)); !errors.Is(err, ErrSchema) {
			t.Errorf("%s: %v, want ErrSchema", s, err)
		}
	}
}
