package hostconfig

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Error is one problem in a config file, at a position. Parse and Load
// return every problem they find at once, joined with [errors.Join]; use
// [Errors] to get them back one by one.
type Error struct {
	File         string
	Line, Column int    // 1-based
	Msg          string // what is wrong
	Hint         string // how to fix it (may be empty)
	// Err is the sentinel the problem wraps: framework.ErrInvalidOption by
	// default, framework.ErrInvalidTopic, framework.ErrInvalidPeer,
	// remote.ErrBinaryMissing, remote.ErrChecksum or secure.ErrBadKey
	// where they fit.
	Err error
}

// Error formats the problem as "file:line:col: message (hint)".
func (e *Error) Error() string {
	s := fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// Errors returns the positioned problems inside err (an error returned by
// Parse or Load), in file order. Nil when err holds none.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var e *Error
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

// joinErrors sorts the problems by position and joins them.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		if e.Err == nil {
			e.Err = framework.ErrInvalidOption
		}
		out[i] = e
	}
	return errors.Join(out...)
}

// suggest returns the known word closest to s, or "" when none is close.
func suggest(s string, known []string) string {
	norm := func(x string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(x))
	}
	for _, k := range known {
		if norm(k) == norm(s) {
			return k
		}
	}
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := levenshtein(strings.ToLower(s), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= max(1, min(3, len(s)/3)) {
		return best
	}
	return ""
}

// levenshtein is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours cost 1.
func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20 // not worth it
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// didYouMean is the hint for an unknown word.
func didYouMean(s string, known []string, what string) string {
	if k := suggest(s, known); k != "" {
		return fmt.Sprintf("did you mean %q?", k)
	}
	return fmt.Sprintf("known %s: %s", what, strings.Join(known, ", "))
}
