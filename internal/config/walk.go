package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// setting is one leaf key of the configuration.
type setting struct {
	Path  []string // TOML key path, e.g. ["smtp", "listen"]
	Field reflect.StructField
	Value reflect.Value // addressable when walked from a pointer
}

// Env is the environment variable that overrides the key.
func (s setting) Env() string {
	return EnvPrefix + strings.ToUpper(strings.Join(s.Path, "_"))
}

// Secret reports whether the value must never be printed.
func (s setting) Secret() bool { return s.Field.Tag.Get("secret") == "true" }

// settings lists the leaves of cfg in declaration order. Sections are
// structs that do not decode themselves from text.
func settings(cfg *Config) []setting {
	var out []setting
	var walk func(v reflect.Value, path []string)
	walk = func(v reflect.Value, path []string) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			key := f.Tag.Get("toml")
			if key == "" || key == "-" {
				continue
			}
			fv := v.Field(i)
			p := append(append([]string(nil), path...), key)
			if isSection(fv) {
				walk(fv, p)
				continue
			}
			out = append(out, setting{Path: p, Field: f, Value: fv})
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), nil)
	return out
}

func isSection(v reflect.Value) bool {
	if v.Kind() != reflect.Struct {
		return false
	}
	_, ok := v.Addr().Interface().(encoding.TextUnmarshaler)
	return !ok
}

// applyEnv sets each key whose PARLEY_* variable is present in env.
// A present but empty variable sets the empty value (which for
// database.url means "embedded").
func applyEnv(cfg *Config, env []string) error {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	var errs []error
	var known []string
	for _, s := range settings(cfg) {
		known = append(known, s.Env())
	}
	errs = append(errs, unknownEnv(known, vars)...)
	for _, s := range settings(cfg) {
		raw, ok := vars[s.Env()]
		if !ok {
			continue
		}
		if err := setText(s.Value, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Env(), err))
		}
	}
	return errors.Join(errs...)
}

// setText assigns a textual value to a leaf setting.
func setText(v reflect.Value, raw string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

// textOf renders a leaf value as it would be written in TOML.
func textOf(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return strconv.Quote(string(b))
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	}
	return fmt.Sprint(v.Interface())
}
