package config

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

const exampleHeader = `# parley configuration.
#
# Every key is shown with its default. Each key can also be set through the
# environment: the variable is PARLEY_ plus the key path in upper case with
# "." turned into "_" (smtp.listen -> PARLEY_SMTP_LISTEN); the environment
# wins over this file. Unknown keys are an error.
#
# This file is generated from internal/config (go test ./internal/config -update).
`

// WriteExample writes the documented example configuration: every key, its
// default, its documentation and its environment variable.
func WriteExample(w io.Writer) error {
	cfg := Default()
	return write(w, &cfg, true)
}

// WriteEffective writes cfg as TOML with secrets redacted, as printed by
// `parley config check`.
func WriteEffective(w io.Writer, cfg Config) error {
	return write(w, &cfg, false)
}

func write(w io.Writer, cfg *Config, docs bool) error {
	bw := bufio.NewWriter(w)
	if docs {
		bw.WriteString(exampleHeader)
	}
	section := ""
	for _, s := range settings(cfg) {
		if sec := strings.Join(s.Path[:len(s.Path)-1], "."); sec != section {
			section = sec
			fmt.Fprintf(bw, "\n[%s]\n", sec)
		}
		if docs {
			bw.WriteString("\n")
			for _, line := range wrap(s.Field.Tag.Get("doc"), 76) {
				fmt.Fprintf(bw, "# %s\n", line)
			}
			fmt.Fprintf(bw, "# Environment: %s\n", s.Env())
		}
		val := textOf(s.Value)
		if s.Secret() && !docs {
			val = strconv.Quote(redact(s.Value.String()))
		}
		fmt.Fprintf(bw, "%s = %s\n", s.Path[len(s.Path)-1], val)
	}
	return bw.Flush()
}

// redact hides the password of a connection URL (or the whole value when it
// is not a URL), so `config check` output can be pasted into a bug report.
func redact(v string) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		if strings.Contains(v, "password") {
			return "(set, not shown)"
		}
		return v
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// wrap splits text into lines of at most width runes at word boundaries.
func wrap(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, word := range strings.Fields(text) {
		if cur.Len() > 0 && cur.Len()+1+len(word) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}
