package config

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Environment variables with the PARLEY_ prefix that are not settings.
// PARLEY_TEST_* belong to the test suite.
var notSettings = map[string]bool{"PARLEY_CONFIG": true}

// unknownEnv reports each PARLEY_* variable that names no setting, with
// the closest setting's variable when one is near: a typo never silently
// leaves a default in force, as an unknown key in the file does not.
func unknownEnv(known []string, vars map[string]string) []error {
	var errs []error
	for _, k := range sortedKeys(vars) {
		if notSettings[k] || strings.HasPrefix(k, EnvPrefix+"TEST_") || slices.Contains(known, k) {
			continue
		}
		msg := fmt.Sprintf("%s: no such setting", k)
		if near := closest(k, known); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		errs = append(errs, errors.New(msg))
	}
	return errs
}

// closest returns the name in names nearest to s, when it is near
// enough to be a typo of it (at most a third of its letters differ).
func closest(s string, names []string) string {
	best, bestD := "", len(s)/3+1
	for _, n := range names {
		if d := distance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b (ASCII names).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// bareValue is a "key = value" line whose value is not a TOML value: a
// string someone forgot to quote.
var bareValue = regexp.MustCompile(`^\s*([A-Za-z0-9_.-]+)\s*=\s*([^"'\[{\s#][^#]*?)\s*(#.*)?$`)

// quoteHint adds, to a TOML syntax error, what the line should say when
// the cause is a string value without quotes (hostname = lists.example.org).
func quoteHint(path string, err error) string {
	var pe toml.ParseError
	if !errors.As(err, &pe) || pe.Position.Line == 0 {
		return ""
	}
	f, ferr := os.Open(path)
	if ferr != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if n != pe.Position.Line {
			continue
		}
		m := bareValue.FindStringSubmatch(sc.Text())
		if m == nil || isTOMLScalar(m[2]) {
			return ""
		}
		return fmt.Sprintf("\n  line %d: the value of %s needs quotes: %s = %q", n, m[1], m[1], m[2])
	}
	return ""
}

// isTOMLScalar reports whether v reads as a TOML number, boolean or date.
func isTOMLScalar(v string) bool {
	var x struct{ V any }
	_, err := toml.Decode("V = "+v, &x)
	return err == nil
}
