package hostconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// MaxKeyListSize bounds an allow file (a service's allowFile): about
// 16 000 keys with comments.
const MaxKeyListSize = 1 << 20

// ParseKeyList parses a list of public keys, one per line, as in a
// service's allowFile: a key in z-base-32 (what swarmhost key prints) or
// hex; '#' starts a comment that runs to the end of the line; blank lines
// are skipped. name is the file name used in error positions. On failure
// the error joins every problem (see [Errors]) at its file:line:col: a
// malformed key, two keys on a line, a key listed twice. Keys are in file
// order.
func ParseKeyList(name string, data []byte) ([]secure.PublicKey, error) {
	var (
		keys  []secure.PublicKey
		errs  []*Error
		first = map[secure.PublicKey]int{}
	)
	at := func(line, col int, hint, format string, args ...any) {
		errs = append(errs, &Error{File: name, Line: line, Column: col, Msg: fmt.Sprintf(format, args...), Hint: hint, Err: secure.ErrBadKey})
	}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := i + 1
		if c, _, ok := bytes.Cut(raw, []byte("#")); ok {
			raw = c
		}
		fields := strings.Fields(string(raw))
		if len(fields) == 0 {
			continue
		}
		col := bytes.Index(raw, []byte(fields[0])) + 1
		if len(fields) > 1 {
			end := col - 1 + len(fields[0])
			at(line, bytes.Index(raw[end:], []byte(fields[1]))+end+1, "one key per line; a comment starts with #", "more than one key on the line")
			continue
		}
		k, err := secure.ParsePublicKey(fields[0])
		if err != nil {
			at(line, col, keyHint, "%s", keyErrMsg(err))
			continue
		}
		if l, dup := first[k]; dup {
			at(line, col, fmt.Sprintf("the first is at line %d; list a key once", l), "duplicate key %s", k)
			continue
		}
		first[k] = line
		keys = append(keys, k)
	}
	return keys, joinErrors(errs)
}

// keyHint is the hint of a malformed key.
const keyHint = "a public key as swarmhost key prints it: 52 z-base-32 characters (or 64 hex digits)"

// keyErrMsg is a secure.ParsePublicKey error without its package prefix.
func keyErrMsg(err error) string {
	return "bad key: " + strings.TrimPrefix(err.Error(), secure.ErrBadKey.Error()+": ")
}

// ReadKeyList reads and parses the allow file at path ([ParseKeyList]).
func ReadKeyList(path string) ([]secure.PublicKey, error) {
	// a FIFO or device would block or never end: refuse before opening
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", secure.ErrBadKey, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyListSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxKeyListSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", secure.ErrBadKey, path, MaxKeyListSize)
	}
	return ParseKeyList(path, data)
}

// publicKey decodes a scalar public key.
func (d *decoder) publicKey(n *yaml.Node, path string) (secure.PublicKey, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return secure.PublicKey{}, false
	}
	k, err := secure.ParsePublicKey(s)
	if err != nil {
		d.add(n, secure.ErrBadKey, keyHint, "%s: %s", path, keyErrMsg(err))
		return secure.PublicKey{}, false
	}
	return k, true
}

// allowList decodes a service's allow: list of keys (each once).
func (d *decoder) allowList(n *yaml.Node, path string) ([]secure.PublicKey, bool) {
	items, ok := d.list(n, path, "[KEY, KEY] (swarmhost key prints a key)")
	if !ok {
		return nil, false
	}
	good := true
	out := []secure.PublicKey{}
	first := map[secure.PublicKey]*yaml.Node{}
	for i, it := range items {
		k, ok := d.publicKey(it, fmt.Sprintf("%s[%d]", path, i))
		if !ok {
			good = false
			continue
		}
		if f, dup := first[k]; dup {
			d.add(it, secure.ErrBadKey, fmt.Sprintf("the first is at line %d; list a key once", f.Line), "%s[%d]: duplicate key %s", path, i, k)
			good = false
			continue
		}
		first[k] = it
		out = append(out, k)
	}
	return out, good
}

// allowFile reads a service's allowFile (path relative to the config
// file's directory); problems inside it are reported at their position in
// it, a missing or unreadable file at n.
func (d *decoder) allowFile(n *yaml.Node, path string) (string, []secure.PublicKey, bool) {
	p, ok := d.nonEmpty(n, path)
	if !ok {
		return "", nil, false
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	keys, err := ReadKeyList(p)
	if errs := Errors(err); len(errs) > 0 {
		d.errs = append(d.errs, errs...)
		return p, nil, false
	}
	if err != nil {
		var sentinel error
		if errors.Is(err, secure.ErrBadKey) {
			sentinel = secure.ErrBadKey
		}
		d.add(n, sentinel, "a file of public keys, one per line, # comments", "%s: %v", path, unwrapPathErr(err))
		return p, nil, false
	}
	return p, keys, true
}
