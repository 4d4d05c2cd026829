package hostconfig

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// structOptions returns the YAML decoder of an options struct O, made by
// reflection over its exported fields; it is the decoder of every registry
// entry that gives none (see [def]). A field's key is its name in
// lowerCamel case (DialTimeout: dialTimeout, TTL: ttl, MaxHalfOpenPerIP:
// maxHalfOpenPerIP), or the name in its `yaml:"name"` tag; `yaml:"-"`
// hides it. Fields decode by type, with the messages of the hand-written
// decoders:
//
//   - time.Duration: a Go duration string, more than 0;
//   - []time.Duration: a list of durations, each 0 or more;
//   - ints and uints: a whole number from 1 to 1<<30;
//   - float64 (and float32): a number; bool: true or false; string: text;
//   - []string: a list of non-empty strings;
//   - a struct: a nested mapping of its own fields (an embedded struct's
//     fields are promoted: they are keys of the outer mapping).
//
// Fields of any other type (funcs such as clocks, interfaces such as
// loggers, pointers, maps) are not configurable from YAML. A
// `hostconfig:"..."` tag, comma-separated, adjusts a field: min=N and
// max=N set an integer's range (min=0 lets a duration be 0), and off lets
// the word off stand for -1 (tcp's keepAlive: off).
//
// Unknown and repeated keys are errors at their position, as everywhere
// in the file. Then check (the entry's constructor) is called on the
// decoded options when the mapping held no error, and its error is
// reported at the options node, so that a value out of a range only the
// plugin knows is still found when the file is read (hint: the options
// type, "see plugins/utp Config for the ranges"). The checked plugin is
// closed again if it can be.
func structOptions[O, P any](check func(O, BuildOptions) (P, error)) func(*decoder, *yaml.Node, string) O {
	t := reflect.TypeFor[O]()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("hostconfig: structOptions of %v, not a struct", t))
	}
	tab := optionFields(t, nil)
	hint := fmt.Sprintf("see %s %s for the ranges", strings.TrimPrefix(t.PkgPath(), modulePath+"/"), t.Name())
	return func(d *decoder, v *yaml.Node, path string) O {
		var o O
		before := len(d.errs)
		d.decodeStruct(v, path, reflect.ValueOf(&o).Elem(), tab)
		if check != nil && len(d.errs) == before {
			p, err := check(o, BuildOptions{})
			if err != nil {
				d.errf(v, hint, "%s: %v", path, err)
			}
			if c, ok := any(p).(io.Closer); ok && err == nil {
				c.Close()
			}
		}
		return o
	}
}

// modulePath is trimmed from options types' package paths in hints.
const modulePath = "github.com/dwebswarm/dwebswarm-go"

// optionField is one YAML key of an options struct.
type optionField struct {
	key    string
	index  []int // reflect.Value.FieldByIndex
	lo, hi int64
	off    bool
	nested []optionField // for struct fields
}

var durationType = reflect.TypeFor[time.Duration]()

// optionFields lists the configurable fields of struct type t, with their
// index paths under prefix. It panics on a bad tag: the tables are made
// when the registry is, so any test finds it.
func optionFields(t reflect.Type, prefix []int) []optionField {
	var out []optionField
	for i := range t.NumField() {
		sf := t.Field(i)
		idx := append(append([]int(nil), prefix...), i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			out = append(out, optionFields(sf.Type, idx)...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if key == "-" {
			continue
		}
		if key == "" {
			key = lowerCamel(sf.Name)
		}
		f := optionField{key: key, index: idx, lo: 1, hi: 1 << 30}
		if !configurable(sf.Type) {
			continue
		}
		if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
			f.nested = optionFields(sf.Type, nil)
		}
		for opt := range strings.SplitSeq(sf.Tag.Get("hostconfig"), ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(opt), "=")
			var err error
			switch name {
			case "":
			case "min":
				f.lo, err = strconv.ParseInt(val, 10, 64)
			case "max":
				f.hi, err = strconv.ParseInt(val, 10, 64)
			case "off":
				f.off = true
			default:
				err = fmt.Errorf("unknown option %q", name)
			}
			if err != nil {
				panic(fmt.Sprintf("hostconfig: %v.%s: tag hostconfig:%q: %v", t, sf.Name, sf.Tag.Get("hostconfig"), err))
			}
		}
		if f.lo > f.hi || sf.Type == durationType && f.lo != 0 && f.lo != 1 {
			panic(fmt.Sprintf("hostconfig: %v.%s: bad range %d-%d", t, sf.Name, f.lo, f.hi))
		}
		out = append(out, f)
	}
	return out
}

// configurable reports whether structOptions can decode a field of type t.
func configurable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64, reflect.Struct,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String || t.Elem() == durationType
	}
	return false
}

// lowerCamel turns a Go field name into its YAML key: the leading
// capitals are lowered, except the last of several when a lower-case
// letter follows (TTL: ttl, IPAddr: ipAddr, DialTimeout: dialTimeout).
func lowerCamel(s string) string {
	r := []rune(s)
	n := 0
	for n < len(r) && unicode.IsUpper(r[n]) {
		n++
	}
	if n > 1 && n < len(r) && unicode.IsLower(r[n]) {
		n--
	}
	for i := range max(n, 1) {
		r[i] = unicode.ToLower(r[i])
	}
	return string(r)
}

// decodeStruct decodes mapping v into the struct sv by the field table.
func (d *decoder) decodeStruct(v *yaml.Node, path string, sv reflect.Value, tab []optionField) {
	fs := fields{}
	for _, f := range tab {
		fs[f.key] = func(_, n *yaml.Node) { d.decodeField(n, path+"."+f.key, sv.FieldByIndex(f.index), f) }
	}
	d.mapping(v, path, fs, nil)
}

func (d *decoder) decodeField(n *yaml.Node, path string, fv reflect.Value, f optionField) {
	if f.off && n.Kind == yaml.ScalarNode && n.Value == "off" {
		if fv.CanInt() {
			fv.SetInt(-1)
			return
		}
	}
	t := fv.Type()
	switch {
	case t == durationType:
		rule := positive
		if f.lo == 0 {
			rule = nonNeg
		}
		if x, ok := d.duration(n, path, rule, false); ok {
			fv.SetInt(int64(x))
		}
	case t.Kind() == reflect.Slice && t.Elem() == durationType:
		if xs, ok := d.durList(n, path, nonNeg); ok {
			fv.Set(reflect.ValueOf(xs).Convert(t))
		}
	case t.Kind() == reflect.Slice:
		if xs, ok := d.strList(n, path, ""); ok {
			fv.Set(reflect.ValueOf(xs).Convert(t))
		}
	case t.Kind() == reflect.Struct:
		d.decodeStruct(n, path, fv, f.nested)
	case fv.CanInt():
		lo, hi := f.lo, min(f.hi, int64(1)<<(t.Bits()-1)-1)
		if x, ok := d.integer(n, path, max(lo, -int64(1)<<(t.Bits()-1)), hi, ""); ok {
			fv.SetInt(int64(x))
		}
	case fv.CanUint():
		hi := f.hi
		if t.Bits() < 64 {
			hi = min(hi, int64(1)<<t.Bits()-1)
		}
		if x, ok := d.integer(n, path, max(f.lo, 0), hi, ""); ok {
			fv.SetUint(uint64(x))
		}
	case fv.CanFloat():
		if x, ok := d.number(n, path); ok {
			fv.SetFloat(x)
		}
	case t.Kind() == reflect.Bool:
		if x, ok := d.boolean(n, path); ok {
			fv.SetBool(x)
		}
	case t.Kind() == reflect.String:
		if s, ok := d.str(n, path); ok {
			fv.SetString(s)
		}
	}
}
