package hostconfig

import (
	"errors"
	"strings"
	"testing"
)

// wantErrorAt parses yaml and fails unless one of its errors stands at
// line:col with msg in its message, hint in its hint, and wraps sentinel
// (unless nil).
func wantErrorAt(t *testing.T, yaml string, line, col int, msg, hint string, sentinel error) {
	t.Helper()
	_, err := Parse("c.yaml", []byte(yaml))
	if err == nil {
		t.Fatalf("no error for:\n%s", yaml)
	}
	for _, e := range Errors(err) {
		if e.Line == line && e.Column == col && strings.Contains(e.Msg, msg) {
			if !strings.Contains(e.Hint, hint) {
				t.Errorf("hint %q lacks %q", e.Hint, hint)
			}
			if sentinel != nil && !errors.Is(e, sentinel) {
				t.Errorf("%v does not wrap %v", e, sentinel)
			}
			return
		}
	}
	t.Fatalf("no error at %d:%d with %q in: %v", line, col, msg, err)
}
